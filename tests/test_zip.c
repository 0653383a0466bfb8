// ZIP reader: stored and deflated members, CRC-32, ZIP64 records, and hostile directories
// (huge size claims, out-of-range offsets, overlaps, duplicates, truncation, bit flips).
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "formats/zip.h"
#include "sembed/common.h"
#include "testutil.h"

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

// A second, test-side writer of APPNOTE structures, so each field can be made to lie.
struct zb { uint8_t *p; size_t n, cap; };
static void put(struct zb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 256; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void p16(struct zb *b, uint32_t v) { uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)}; put(b, x, 2); }
static void p32(struct zb *b, uint32_t v) { p16(b, v & 0xffff); p16(b, v >> 16); }
static void p64(struct zb *b, uint64_t v) { p32(b, (uint32_t)v); p32(b, (uint32_t)(v >> 32)); }

struct member { const char *name; const void *data; size_t n; int method; };
struct lie { uint64_t usize, csize; uint32_t crc_xor; int dup_name; };

static size_t deflate_raw(const void *in, size_t n, uint8_t *out, size_t cap) {
    z_stream s;
    memset(&s, 0, sizeof s);
    deflateInit2(&s, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    s.next_in = (Bytef *)(uintptr_t)in;
    s.avail_in = (uInt)n;
    s.next_out = out;
    s.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&s, Z_FINISH), Z_STREAM_END);
    size_t k = s.total_out;
    deflateEnd(&s);
    return k;
}

// Build an archive; lies[i] (may be NULL) overrides what the central directory says of member i.
static uint8_t *build(const struct member *m, int n, const struct lie *lies, int zip64, size_t *len) {
    struct zb b = {0};
    uint64_t off[8], cs[8];
    uint32_t crc[8];
    uint8_t comp[8][4096];
    for (int i = 0; i < n; i++) {
        crc[i] = (uint32_t)crc32(0, m[i].data, (uInt)m[i].n);
        if (m[i].method == 8) cs[i] = deflate_raw(m[i].data, m[i].n, comp[i], sizeof comp[i]);
        else { cs[i] = m[i].n; memcpy(comp[i], m[i].data, m[i].n); }
        off[i] = b.n;
        p32(&b, 0x04034b50); p16(&b, 20); p16(&b, 0); p16(&b, (uint32_t)m[i].method); p16(&b, 0); p16(&b, 0);
        p32(&b, crc[i]); p32(&b, (uint32_t)cs[i]); p32(&b, (uint32_t)m[i].n);
        p16(&b, (uint32_t)strlen(m[i].name)); p16(&b, 0);
        put(&b, m[i].name, strlen(m[i].name));
        put(&b, comp[i], cs[i]);
    }
    uint64_t cd = b.n;
    for (int i = 0; i < n; i++) {
        const struct lie *l = lies ? &lies[i] : NULL;
        uint64_t us = l && l->usize ? l->usize : m[i].n, c = l && l->csize ? l->csize : cs[i];
        p32(&b, 0x02014b50); p16(&b, 45); p16(&b, 45); p16(&b, 0); p16(&b, (uint32_t)m[i].method); p16(&b, 0); p16(&b, 0);
        p32(&b, crc[i] ^ (l ? l->crc_xor : 0));
        const char *name = l && l->dup_name ? m[0].name : m[i].name;
        if (zip64) {
            p32(&b, 0xffffffffu); p32(&b, 0xffffffffu);
            p16(&b, (uint32_t)strlen(name)); p16(&b, 28); p16(&b, 0); p16(&b, 0); p16(&b, 0); p32(&b, 0); p32(&b, 0xffffffffu);
            put(&b, name, strlen(name));
            p16(&b, 1); p16(&b, 24); p64(&b, us); p64(&b, c); p64(&b, off[i]);
        } else {
            p32(&b, (uint32_t)c); p32(&b, (uint32_t)us);
            p16(&b, (uint32_t)strlen(name)); p16(&b, 0); p16(&b, 0); p16(&b, 0); p16(&b, 0); p32(&b, 0); p32(&b, (uint32_t)off[i]);
            put(&b, name, strlen(name));
        }
    }
    uint64_t cd_size = b.n - cd;
    if (zip64) {
        uint64_t r = b.n;
        p32(&b, 0x06064b50); p64(&b, 44); p16(&b, 45); p16(&b, 45); p32(&b, 0); p32(&b, 0);
        p64(&b, (uint64_t)n); p64(&b, (uint64_t)n); p64(&b, cd_size); p64(&b, cd);
        p32(&b, 0x07064b50); p32(&b, 0); p64(&b, r); p32(&b, 1);
        p32(&b, 0x06054b50); p16(&b, 0); p16(&b, 0); p16(&b, 0xffff); p16(&b, 0xffff); p32(&b, 0xffffffffu); p32(&b, 0xffffffffu); p16(&b, 0);
    } else {
        p32(&b, 0x06054b50); p16(&b, 0); p16(&b, 0); p16(&b, (uint32_t)n); p16(&b, (uint32_t)n); p32(&b, (uint32_t)cd_size); p32(&b, (uint32_t)cd); p16(&b, 0);
    }
    *len = b.n;
    return b.p;
}

static const char text[] = "state dicts are plain tensors; state dicts are plain tensors; state dicts are plain tensors.";
static const float floats[6] = {1, 2, 3, 4, 5, 6};

static void check_roundtrip(int zip64) {
    struct member m[2] = {{"archive/data.pkl", text, sizeof text, 8}, {"archive/data/0", floats, sizeof floats, 0}};
    size_t len;
    uint8_t *b = build(m, 2, NULL, zip64, &len);
    struct sz_archive z;
    int rc = sz_open(b, len, "t.zip", &z);
    cr_assert_eq(rc, 0, "open: %s", sembed_strerror(rc));
    cr_assert_eq(z.n, 2);
    for (int i = 0; i < 2; i++) {
        long k = sz_find(&z, m[i].name);
        cr_assert_geq(k, 0, "%s missing", m[i].name);
        const void *d;
        size_t n;
        void *owned;
        rc = sz_extract(&z, (size_t)k, 1 << 20, &d, &n, &owned);
        cr_assert_eq(rc, 0, "%s: %s", m[i].name, sembed_strerror(rc));
        cr_assert(n == m[i].n && !memcmp(d, m[i].data, n), "%s: bytes differ", m[i].name);
        cr_assert_eq(owned != NULL, m[i].method == 8, "stored members are zero-copy, deflated ones owned");
        free(owned);
    }
    sz_close(&z);
    free(b);
}

Test(zip, stored_and_deflated) { check_roundtrip(0); }
Test(zip, zip64_records) { check_roundtrip(1); }

Test(zip, torch_archive_opens) {
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/tests/fixtures/pickle/tiny.bin", tu_source_dir()) > 0);
    size_t len;
    void *b = tu_read_file(p, &len);
    cr_assert(b);
    struct sz_archive z;
    int rc = sz_open(b, len, p, &z);
    cr_assert_eq(rc, 0, "%s", sembed_strerror(rc));
    int pkl = 0;
    for (size_t i = 0; i < z.n; i++) {
        const void *d;
        size_t n;
        void *owned;
        cr_assert_eq(sz_extract(&z, i, 1 << 20, &d, &n, &owned), 0, "member %s", z.e[i].name);
        free(owned);
        pkl += strstr(z.e[i].name, "/data.pkl") != NULL;
    }
    cr_assert_eq(pkl, 1);
    sz_close(&z);
    free(b);
    free(p);
}

static int open_with(const struct lie *lies, int zip64, int extract_all) {
    struct member m[2] = {{"archive/data.pkl", text, sizeof text, 8}, {"archive/data/0", floats, sizeof floats, 0}};
    size_t len;
    uint8_t *b = build(m, 2, lies, zip64, &len);
    struct sz_archive z;
    int rc = sz_open(b, len, "t.zip", &z);
    for (size_t i = 0; rc == 0 && extract_all && i < z.n; i++) {
        const void *d;
        size_t n;
        void *owned;
        rc = sz_extract(&z, i, 1 << 20, &d, &n, &owned);
        free(owned);
    }
    if (z.e) sz_close(&z);
    free(b);
    return rc;
}

Test(zip, hostile_directories) {
    sembed_log_set(quiet, NULL);
    struct lie l[2];
    memset(l, 0, sizeof l);
    l[0].usize = (uint64_t)1 << 40; // a deflated member claiming 1 TiB
    cr_assert_eq(open_with(l, 1, 1), SEMBED_ECORRUPT, "impossible deflate ratio must be refused at open");
    memset(l, 0, sizeof l);
    l[0].usize = 1 << 21; // plausible ratio-wise? no: 2 MiB from ~60 bytes is still impossible
    cr_assert_eq(open_with(l, 0, 1), SEMBED_ECORRUPT);
    memset(l, 0, sizeof l);
    l[1].csize = l[1].usize = 1u << 30; // stored member running past the directory
    cr_assert_eq(open_with(l, 0, 0), SEMBED_EBOUNDS);
    memset(l, 0, sizeof l);
    l[1].usize = 3; // stored member whose sizes disagree
    cr_assert_eq(open_with(l, 0, 0), SEMBED_ECORRUPT);
    memset(l, 0, sizeof l);
    l[1].crc_xor = 1;
    cr_assert_eq(open_with(l, 0, 1), SEMBED_ECHECKSUM);
    memset(l, 0, sizeof l);
    l[0].crc_xor = 0x80000000u;
    cr_assert_eq(open_with(l, 1, 1), SEMBED_ECHECKSUM);
    memset(l, 0, sizeof l);
    l[0].csize = 200; // deflated member whose bytes overlap the next member
    cr_assert_neq(open_with(l, 0, 0), 0);
    // a member bigger than the caller allows is refused before allocation
    struct member m[1] = {{"a", text, sizeof text, 8}};
    size_t len;
    uint8_t *b = build(m, 1, NULL, 0, &len);
    struct sz_archive z;
    cr_assert_eq(sz_open(b, len, "t", &z), 0);
    const void *d;
    size_t n;
    void *owned;
    cr_assert_eq(sz_extract(&z, 0, 10, &d, &n, &owned), SEMBED_ETOOLONG);
    sz_close(&z);
    free(b);
}

Test(zip, every_truncation_and_bit_flip_is_handled) {
    sembed_log_set(quiet, NULL);
    struct member m[2] = {{"archive/data.pkl", text, sizeof text, 8}, {"archive/data/0", floats, sizeof floats, 0}};
    size_t len;
    uint8_t *b = build(m, 2, NULL, 1, &len);
    struct sz_archive z;
    for (size_t k = 0; k < len; k++) {
        uint8_t *c = malloc(k ? k : 1);
        memcpy(c, b, k);
        int rc = sz_open(c, k, "t", &z);
        cr_assert_neq(rc, 0, "truncation to %zu of %zu accepted", k, len);
        free(c);
    }
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *c = malloc(len);
            memcpy(c, b, len);
            c[i] ^= (uint8_t)(1u << bit);
            if (sz_open(c, len, "t", &z) == 0) {
                for (size_t e = 0; e < z.n; e++) {
                    const void *d;
                    size_t n;
                    void *owned;
                    if (sz_extract(&z, e, 1 << 20, &d, &n, &owned) == 0) free(owned);
                }
                sz_close(&z);
            }
            free(c);
        }
    free(b);
}
