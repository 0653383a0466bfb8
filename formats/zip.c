// Read-only ZIP reader (formats/zip.h). Structure facts from PKWARE APPNOTE.TXT 6.3.x, sections
// 4.3.7 (local header), 4.3.12 (central directory header), 4.3.14-4.3.16 (ZIP64 EOCD record,
// locator, EOCD), 4.5.3 (ZIP64 extended information extra field).
#define _POSIX_C_SOURCE 200809L
#include "formats/zip.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "formats/checked.h"
#include "formats/log.h"
#include "sembed/common.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOC64 0x07064b50u
#define ZIP_MAX_ENTRIES (1u << 20)
#define FN "sembed_convert"

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t u64(const uint8_t *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }

void sz_close(struct sz_archive *z) {
    if (!z) return;
    for (size_t i = 0; i < z->n; i++) free(z->e[i].name);
    free(z->e);
    memset(z, 0, sizeof *z);
}

long sz_find(const struct sz_archive *z, const char *name) {
    for (size_t i = 0; i < z->n; i++)
        if (!strcmp(z->e[i].name, name)) return (long)i;
    return -1;
}

static int cmp_off(const void *a, const void *b) {
    const struct sz_entry *x = *(const struct sz_entry *const *)a, *y = *(const struct sz_entry *const *)b;
    return x->data_off < y->data_off ? -1 : x->data_off > y->data_off;
}
static int cmp_name(const void *a, const void *b) {
    return strcmp((*(const struct sz_entry *const *)a)->name, (*(const struct sz_entry *const *)b)->name);
}

// ZIP64 extended information: replaces the 32-bit fields that hold 0xFFFFFFFF, in this order.
static int zip64_extra(const uint8_t *x, size_t n, uint64_t *usize, uint64_t *csize, uint64_t *loff, const char *label,
                       const char *name) {
    bool need_u = *usize == 0xFFFFFFFFu, need_c = *csize == 0xFFFFFFFFu, need_o = *loff == 0xFFFFFFFFu;
    size_t i = 0;
    while (i + 4 <= n) {
        uint16_t id = u16(x + i), sz = u16(x + i + 2);
        if (i + 4 + sz > n) break;
        if (id == 0x0001) {
            const uint8_t *f = x + i + 4;
            size_t k = 0;
            if (need_u) { if (k + 8 > sz) goto bad; *usize = u64(f + k); k += 8; need_u = false; }
            if (need_c) { if (k + 8 > sz) goto bad; *csize = u64(f + k); k += 8; need_c = false; }
            if (need_o) { if (k + 8 > sz) goto bad; *loff = u64(f + k); k += 8; need_o = false; }
        }
        i += 4 + (size_t)sz;
    }
    if (need_u || need_c || need_o) goto bad;
    return SEMBED_OK;
bad:
    return sembed_fail(SEMBED_ECORRUPT, FN, "%s: member '%s': ZIP64 sizes missing from the extra field", label, name);
}

int sz_open(const void *buf, size_t len, const char *label, struct sz_archive *z) {
    const uint8_t *b = buf;
    struct sz_archive a = {.buf = b, .len = len, .label = label};
    struct sz_entry **idx = NULL;
    int rc = SEMBED_OK;
    memset(z, 0, sizeof *z);
    if (len < 22) return sembed_fail(SEMBED_ETRUNCATED, FN, "%s: %zu bytes, too short for a zip archive", label, len);
    // End of central directory: the comment (<= 65535 bytes) must run exactly to the end.
    size_t eocd = SIZE_MAX;
    size_t lo = len - 22 > 65535 ? len - 22 - 65535 : 0;
    for (size_t i = len - 22 + 1; i-- > lo;)
        if (u32(b + i) == SIG_EOCD && i + 22 + u16(b + i + 20) == len) { eocd = i; break; }
    if (eocd == SIZE_MAX) return sembed_fail(SEMBED_EMAGIC, FN, "%s: no end-of-central-directory record: not a zip archive or truncated", label);
    uint64_t n_entries = u16(b + eocd + 10), cd_size = u32(b + eocd + 12), cd_off = u32(b + eocd + 16);
    if (u16(b + eocd + 4) != 0 || u16(b + eocd + 6) != 0 || u16(b + eocd + 8) != u16(b + eocd + 10))
        return sembed_fail(SEMBED_EUNSUPPORTED, FN, "%s: multi-disk zip archives are not supported", label);
    size_t cd_limit = eocd;
    if (eocd >= 20 && u32(b + eocd - 20) == SIG_LOC64) {
        uint64_t r = u64(b + eocd - 20 + 8);
        if (r > eocd - 20 || eocd - 20 - r < 56 || u32(b + r) != SIG_EOCD64)
            return sembed_fail(SEMBED_ECORRUPT, FN, "%s: ZIP64 end-of-central-directory record missing at %llu", label, (unsigned long long)r);
        n_entries = u64(b + r + 32);
        cd_size = u64(b + r + 40);
        cd_off = u64(b + r + 48);
        if (u64(b + r + 24) != n_entries) return sembed_fail(SEMBED_EUNSUPPORTED, FN, "%s: multi-disk zip archives are not supported", label);
        cd_limit = (size_t)r;
    }
    if (!ck_span_ok(cd_off, cd_size, cd_limit))
        return sembed_fail(SEMBED_EBOUNDS, FN, "%s: central directory [%llu, +%llu) outside the archive", label, (unsigned long long)cd_off,
                           (unsigned long long)cd_size);
    if (n_entries > cd_size / 46 || n_entries > ZIP_MAX_ENTRIES)
        return sembed_fail(SEMBED_ECORRUPT, FN, "%s: %llu entries cannot fit in a %llu-byte central directory", label,
                           (unsigned long long)n_entries, (unsigned long long)cd_size);
    a.e = calloc(n_entries ? (size_t)n_entries : 1, sizeof *a.e);
    if (!a.e) return SEMBED_ENOMEM;
    size_t pos = (size_t)cd_off, end = (size_t)(cd_off + cd_size);
#define FAIL(code, ...) do { rc = sembed_fail(code, FN, __VA_ARGS__); goto fail; } while (0)
    for (uint64_t k = 0; k < n_entries; k++) {
        if (end - pos < 46 || u32(b + pos) != SIG_CENTRAL)
            FAIL(SEMBED_ECORRUPT, "%s: central directory entry %llu at %zu is malformed", label, (unsigned long long)k, pos);
        const uint8_t *h = b + pos;
        uint16_t flags = u16(h + 8), method = u16(h + 10), nl = u16(h + 28), xl = u16(h + 30), cl = u16(h + 32);
        if ((size_t)46 + nl + xl + cl > end - pos) FAIL(SEMBED_EBOUNDS, "%s: central directory entry %llu runs past the directory", label, (unsigned long long)k);
        struct sz_entry *e = &a.e[a.n];
        if (nl == 0 || memchr(h + 46, 0, nl)) FAIL(SEMBED_ECORRUPT, "%s: entry %llu has an empty or NUL-containing name", label, (unsigned long long)k);
        e->name = strndup((const char *)h + 46, nl);
        if (!e->name) FAIL(SEMBED_ENOMEM, "%s: out of memory", label);
        a.n++;
        e->method = method;
        e->crc = u32(h + 16);
        e->csize = u32(h + 20);
        e->usize = u32(h + 24);
        uint64_t loff = u32(h + 42);
        if ((rc = zip64_extra(h + 46 + nl, xl, &e->usize, &e->csize, &loff, label, e->name))) goto fail;
        if (flags & 0x41) FAIL(SEMBED_EUNSUPPORTED, "%s: member '%s' is encrypted", label, e->name);
        if (method != 0 && method != 8) FAIL(SEMBED_EUNSUPPORTED, "%s: member '%s' uses compression method %u (stored and deflate supported)", label, e->name, method);
        if (method == 0 && e->csize != e->usize)
            FAIL(SEMBED_ECORRUPT, "%s: stored member '%s' has compressed size %llu != size %llu", label, e->name,
                 (unsigned long long)e->csize, (unsigned long long)e->usize);
        if (loff > cd_off || cd_off - loff < 30 || u32(b + loff) != SIG_LOCAL)
            FAIL(SEMBED_EBOUNDS, "%s: member '%s': local header offset %llu invalid", label, e->name, (unsigned long long)loff);
        const uint8_t *l = b + loff;
        uint64_t lnl = u16(l + 26), lxl = u16(l + 28);
        if (30 + lnl + lxl > cd_off - loff || lnl != nl || memcmp(l + 30, e->name, nl))
            FAIL(SEMBED_ECORRUPT, "%s: member '%s': local header does not match the central directory", label, e->name);
        if (u16(l + 8) != method) FAIL(SEMBED_ECORRUPT, "%s: member '%s': local and central compression methods differ", label, e->name);
        e->data_off = loff + 30 + lnl + lxl;
        if (!ck_span_ok(e->data_off, e->csize, cd_off))
            FAIL(SEMBED_EBOUNDS, "%s: member '%s' claims %llu bytes at %llu, past the central directory at %llu", label, e->name,
                 (unsigned long long)e->csize, (unsigned long long)e->data_off, (unsigned long long)cd_off);
        // Deflate cannot expand data more than ~1032:1 (RFC 1951 block limits); larger claims are bombs.
        if (method == 8 && e->usize / 1032 > e->csize + 64)  // csize < archive length: no wrap
            FAIL(SEMBED_ECORRUPT, "%s: member '%s' claims %llu bytes from %llu compressed: impossible ratio", label, e->name,
                 (unsigned long long)e->usize, (unsigned long long)e->csize);
        pos += 46 + (size_t)nl + xl + cl;
    }
    // No overlapping members (a known zip-bomb construction), no duplicate names.
    idx = malloc((a.n ? a.n : 1) * sizeof *idx);
    if (!idx) FAIL(SEMBED_ENOMEM, "%s: out of memory", label);
    for (size_t i = 0; i < a.n; i++) idx[i] = &a.e[i];
    qsort(idx, a.n, sizeof *idx, cmp_off);
    for (size_t i = 1; i < a.n; i++)
        if (!ck_span_ok(idx[i - 1]->data_off, idx[i - 1]->csize, idx[i]->data_off))
            FAIL(SEMBED_EOVERLAP, "%s: members '%s' and '%s' overlap", label, idx[i - 1]->name, idx[i]->name);
    qsort(idx, a.n, sizeof *idx, cmp_name);
    for (size_t i = 1; i < a.n; i++)
        if (!strcmp(idx[i - 1]->name, idx[i]->name)) FAIL(SEMBED_EDUPLICATE, "%s: member '%s' appears twice", label, idx[i]->name);
#undef FAIL
    free(idx);
    *z = a;
    return SEMBED_OK;
fail:
    free(idx);
    sz_close(&a);
    return rc;
}

int sz_check_crc(const struct sz_archive *z, size_t i, const void *data, size_t size) {
    uint32_t c = (uint32_t)crc32_z(0L, data, size);
    if (c != z->e[i].crc)
        return sembed_fail(SEMBED_ECHECKSUM, FN, "%s: member '%s': CRC-32 %08x, expected %08x", z->label, z->e[i].name, c, z->e[i].crc);
    return SEMBED_OK;
}

int sz_stored(const struct sz_archive *z, size_t i, const void **data, size_t *size) {
    const struct sz_entry *e = &z->e[i];
    if (e->method != 0) return sembed_fail(SEMBED_EUNSUPPORTED, FN, "%s: member '%s' is compressed", z->label, e->name);
    *data = z->buf + e->data_off;
    *size = (size_t)e->csize;
    return SEMBED_OK;
}

int sz_extract(const struct sz_archive *z, size_t i, size_t max_size, const void **data, size_t *size, void **owned) {
    const struct sz_entry *e = &z->e[i];
    *owned = NULL;
    if (e->usize > max_size)
        return sembed_fail(SEMBED_ETOOLONG, FN, "%s: member '%s' claims %llu bytes, more than the %zu allowed", z->label, e->name,
                           (unsigned long long)e->usize, max_size);
    int rc;
    if (e->method == 0) {
        if ((rc = sz_stored(z, i, data, size))) return rc;
        return sz_check_crc(z, i, *data, *size);
    }
    uint8_t *out = malloc(e->usize ? (size_t)e->usize : 1);
    if (!out) return SEMBED_ENOMEM;
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -15) != Z_OK) { free(out); return SEMBED_ENOMEM; } // raw deflate
    const uint8_t *in = z->buf + e->data_off;
    uint64_t in_left = e->csize, out_left = e->usize;
    int zr = Z_OK;
    s.next_out = out;
    while (zr == Z_OK) {
        if (s.avail_in == 0 && in_left) {
            s.next_in = (Bytef *)(uintptr_t)in; // zlib does not write through next_in
            s.avail_in = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
            in += s.avail_in;
            in_left -= s.avail_in;
        }
        if (s.avail_out == 0) {
            s.avail_out = out_left > (1u << 30) ? (1u << 30) : (uInt)out_left;
            out_left -= s.avail_out;
        }
        uLong before_in = s.total_in, before_out = s.total_out;
        zr = inflate(&s, Z_NO_FLUSH);
        if (zr == Z_BUF_ERROR && s.total_in == before_in && s.total_out == before_out) break; // no progress
    }
    uint64_t produced = s.total_out;
    inflateEnd(&s);
    if (zr != Z_STREAM_END || produced != e->usize) {
        free(out);
        return sembed_fail(SEMBED_ECORRUPT, FN, "%s: member '%s': deflate stream %s (%llu of %llu bytes)", z->label, e->name,
                           zr == Z_STREAM_END ? "has the wrong length" : "is corrupt or truncated", (unsigned long long)produced,
                           (unsigned long long)e->usize);
    }
    if ((rc = sz_check_crc(z, i, out, (size_t)e->usize))) { free(out); return rc; }
    *data = out;
    *size = (size_t)e->usize;
    *owned = out;
    return SEMBED_OK;
}
