/*
 * formats/zip.h: read-only ZIP reader over a memory buffer, for PyTorch checkpoints (internal).
 *
 * Spec: PKWARE APPNOTE.TXT 6.3.x (end of central directory, central directory file header,
 * local file header, ZIP64 end of central directory record / locator / extended information
 * extra field 0x0001). Methods 0 (stored) and 8 (deflated, inflated with zlib); the CRC-32 of
 * every extracted member is checked with zlib's crc32(). No encryption, no multi-disk archives.
 *
 * sz_open() validates the directory up front: EOCD found within the last 64 KiB + 22 bytes,
 * entry count and directory size consistent with the buffer, every local header inside the
 * buffer with a matching name, every member's compressed bytes inside the buffer, stored members
 * with equal sizes, no two members overlapping, no duplicate names.
 *
 *     struct sz_archive z;
 *     if (sz_open(buf, len, "pytorch_model.bin", &z) == 0) {
 *         long i = sz_find(&z, "archive/data.pkl");
 *         const void *p; size_t n; void *owned;
 *         if (i >= 0 && sz_extract(&z, (size_t)i, 64 << 20, &p, &n, &owned) == 0) { use(p, n); free(owned); }
 *         sz_close(&z);
 *     }
 */
#ifndef SEMBED_FORMATS_ZIP_H
#define SEMBED_FORMATS_ZIP_H

#include <stddef.h>
#include <stdint.h>

struct sz_entry {
    char *name;        /* heap, NUL-terminated */
    uint16_t method;   /* 0 stored, 8 deflated */
    uint32_t crc;
    uint64_t csize, usize;
    uint64_t data_off; /* offset of the member's (compressed) bytes in the buffer */
};

struct sz_archive {
    const uint8_t *buf;
    size_t len;
    struct sz_entry *e;
    size_t n;
    const char *label; /* file name for error messages (borrowed) */
};

int sz_open(const void *buf, size_t len, const char *label, struct sz_archive *z);
/* Index of the member with this exact name, or -1. */
long sz_find(const struct sz_archive *z, const char *name);
/* The bytes of member i, CRC-checked. Stored members are zero-copy (*owned = NULL); deflated ones
 * are inflated into a heap buffer returned in *owned (free it). A member whose declared size
 * exceeds max_size is refused before anything is allocated. */
int sz_extract(const struct sz_archive *z, size_t i, size_t max_size, const void **data, size_t *size, void **owned);
/* Zero-copy access to a stored member without the CRC pass (the caller checks it with
 * sz_check_crc when convenient, e.g. while streaming). SEMBED_EUNSUPPORTED if deflated. */
int sz_stored(const struct sz_archive *z, size_t i, const void **data, size_t *size);
int sz_check_crc(const struct sz_archive *z, size_t i, const void *data, size_t size);
void sz_close(struct sz_archive *z);

#endif
