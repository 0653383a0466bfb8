// .semb reader: mmap, full structural validation without touching tensor bytes, lookups.
// Spec: docs/format.md.
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "formats/checked.h"
#include "formats/log.h"
#include "formats/semb_internal.h"

struct str_ref {
    const char *s;
    uint64_t len;
};

struct kv {
    const char *key;
    uint32_t type;
    uint32_t elem;        // arrays: element type
    uint64_t count;       // arrays: element count; strings: byte length
    const uint8_t *value; // scalars: the bytes; strings: the chars; arrays: first element
    uint64_t nbytes;      // arrays: bytes of the elements
    // String arrays: one entry per element, built on the first element lookup (most opens never
    // need one, and the 30,522-entry vocabulary's would be 477 KiB of fresh pages).
    _Atomic(struct str_ref *) strs;
};

struct sembed_file {
    const uint8_t *base;
    uint64_t size;
    int mapped;
    uint32_t version;
    uint64_t n_kv, n_tensors, dir_end, data_offset, data_size;
    struct kv *kvs;
    // Lookup by name: open-addressing tables of index + 1 (0 = empty), XXH3 of the name, linear
    // probing, at most half full. Built in one pass at open (sorting ~200 tensor names that share
    // long prefixes cost more than the rest of the directory).
    uint32_t *kv_slots, *t_slots;
    uint64_t kv_mask, t_mask;
    // Tensors: where each directory entry starts, in file order. Entries are decoded again on
    // lookup (they were validated at open): 8 bytes per tensor rather than a 88-byte struct
    // sembed_tensor keeps an open to a few fresh heap pages (each first touch is a page fault).
    uint64_t *t_entry;
};

static const char *const OPEN = "sembed_file_open";

// A bounds-checked cursor over [0, end) of the file.
struct cur {
    const uint8_t *base;
    uint64_t pos, end;
    int err;
    const char *what; // what was being read when an error hit
};

static int need(struct cur *c, uint64_t n) {
    if (c->err) return 0;
    if (n > c->end - c->pos) {
        c->err = sembed_fail(SEMBED_ECORRUPT, OPEN, "%s at offset %llu needs %llu bytes, only %llu remain before the directory end",
                             c->what, (unsigned long long)c->pos, (unsigned long long)n,
                             (unsigned long long)(c->end - c->pos));
        return 0;
    }
    return 1;
}

static uint32_t get32(struct cur *c) {
    if (!need(c, 4)) return 0;
    uint32_t v = semb_rd32(c->base + c->pos);
    c->pos += 4;
    return v;
}

static uint64_t get64(struct cur *c) {
    if (!need(c, 8)) return 0;
    uint64_t v = semb_rd64(c->base + c->pos);
    c->pos += 8;
    return v;
}

// True if s[0..n) is NUL-free ASCII, checked 8 bytes at a time; avail (> n) bytes may be read,
// so the tail is one (possibly over-reading, masked) load. False means "take the slow path".
static inline int ascii_fast(const uint8_t *s, uint64_t n, uint64_t avail) {
    const uint64_t hi = 0x8080808080808080ull, lo = 0x0101010101010101ull;
    uint64_t i = 0, w;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        if ((w & hi) || ((w - lo) & ~w & hi)) return 0;
    }
    if (i == n) return 1;
    uint64_t rem = n - i;
    w = 0;
    if (i + 8 <= avail) memcpy(&w, s + i, 8); // constant size: one load, not a call
    else memcpy(&w, s + i, (size_t)rem);
    uint64_t mask = (1ull << (rem * 8)) - 1;
    w = (w & mask) | (lo & ~mask); // bytes past the string count as 0x01: neither high nor zero
    return !((w & hi) || ((w - lo) & ~w & hi));
}

// string = u64 n | n bytes UTF-8 without NUL | 0x00
static const char *getstr(struct cur *c, uint64_t *len) {
    uint64_t n = get64(c);
    if (c->err) return NULL;
    if (n >= c->end - c->pos) { // also needs room for the terminator
        c->err = sembed_fail(SEMBED_ECORRUPT, OPEN, "%s at offset %llu: string length %llu exceeds the %llu bytes left",
                             c->what, (unsigned long long)(c->pos - 8), (unsigned long long)n,
                             (unsigned long long)(c->end - c->pos));
        return NULL;
    }
    const uint8_t *s = c->base + c->pos;
    if (s[n] != 0) {
        c->err = sembed_fail(SEMBED_ECORRUPT, OPEN, "%s at offset %llu: string is not NUL-terminated", c->what,
                             (unsigned long long)c->pos);
        return NULL;
    }
    if (!ascii_fast(s, n, c->end - c->pos) && !semb_utf8_valid(s, n)) {
        c->err = sembed_fail(SEMBED_EUTF8, OPEN, "%s at offset %llu: string is not valid UTF-8 (or holds a NUL byte)",
                             c->what, (unsigned long long)c->pos);
        return NULL;
    }
    c->pos += n + 1;
    *len = n;
    return (const char *)s;
}

// count strings back to back from the cursor (a string array's elements): what getstr checks,
// in one tight loop, since tokenizer.vocab makes this the bulk of an open (30,522 strings for
// BERT). The 8-byte loads may reach past c->end: the header checksum's 8 bytes follow it.
static int strarr_check(struct cur *c, uint64_t count) {
    const uint8_t *b = c->base;
    const uint64_t end = c->end;
    uint64_t pos = c->pos;
    uint64_t i = 0;
    for (; i < count; i++) {
        if (end - pos < 9) break; // getstr below names the problem
        const uint64_t n = semb_rd64(b + pos);
        if (n > end - pos - 9) break;
        const uint8_t *s = b + pos + 8;
        if (s[n] != 0) break;
        if (n <= 8) { // most vocabulary entries: one masked load
            const uint64_t hi = 0x8080808080808080ull, lo = 0x0101010101010101ull;
            uint64_t w;
            memcpy(&w, s, 8);
            const uint64_t mask = n == 8 ? ~0ull : (1ull << (n * 8)) - 1;
            w = (w & mask) | (lo & ~mask);
            if (((w & hi) || ((w - lo) & ~w & hi)) && !semb_utf8_valid(s, n)) break;
        } else if (!ascii_fast(s, n, end - pos) && !semb_utf8_valid(s, n)) {
            break;
        }
        pos += 9 + n;
    }
    c->pos = pos;
    if (i == count) return 1;
    uint64_t len;
    getstr(c, &len); // fails on this string and logs why
    if (!c->err) c->err = sembed_fail(SEMBED_ECORRUPT, OPEN, "%s: string %llu is malformed", c->what, (unsigned long long)i);
    return 0;
}

// A directory entry's name: the string right at its start.
static const char *entry_name(const struct sembed_file *f, uint64_t e) { return (const char *)f->base + e + 8; }

// Decode the directory entry at header offset e (validated at open).
static void entry_decode(const struct sembed_file *f, uint64_t e, struct sembed_tensor *t) {
    const uint8_t *p = f->base + e;
    t->name = (const char *)p + 8;
    p += 9 + semb_rd64(p);
    t->dtype = (enum sembed_dtype)semb_rd32(p);
    t->n_dims = semb_rd32(p + 4);
    p += 8;
    for (uint32_t i = 0; i < SEMBED_MAX_DIMS; i++) t->dims[i] = i < t->n_dims ? (int64_t)semb_rd64(p + 8 * i) : 1;
    p += 8 * t->n_dims;
    t->offset = semb_rd64(p);
    t->nbytes = semb_rd64(p + 8);
    t->checksum = semb_rd64(p + 16);
    t->data = f->base + f->data_offset + t->offset;
}

// Name i of a lookup table: metadata key (tensors == 0) or tensor name, and its length.
static const char *name_at(const struct sembed_file *f, int tensors, uint64_t i, uint64_t *len) {
    const char *s = tensors ? entry_name(f, f->t_entry[i]) : f->kvs[i].key;
    *len = semb_rd64((const uint8_t *)s - 8); // names are strings: the length precedes them
    return s;
}

// Index of name[0..len) in a lookup table, or -1.
static int64_t names_find(const struct sembed_file *f, int tensors, const char *name, uint64_t len) {
    const uint32_t *slots = tensors ? f->t_slots : f->kv_slots;
    const uint64_t mask = tensors ? f->t_mask : f->kv_mask;
    for (uint64_t i = XXH3_64bits(name, (size_t)len) & mask;; i = (i + 1) & mask) {
        uint32_t s = slots[i];
        if (!s) return -1;
        uint64_t l;
        const char *o = name_at(f, tensors, s - 1, &l);
        if (l == len && memcmp(o, name, (size_t)len) == 0) return s - 1;
    }
}

// Add name idx to a lookup table; the index already holding the same name, or -1.
static int64_t names_add(struct sembed_file *f, int tensors, uint64_t idx) {
    uint32_t *slots = tensors ? f->t_slots : f->kv_slots;
    const uint64_t mask = tensors ? f->t_mask : f->kv_mask;
    uint64_t len;
    const char *name = name_at(f, tensors, idx, &len);
    uint64_t i = XXH3_64bits(name, (size_t)len) & mask;
    for (; slots[i]; i = (i + 1) & mask) {
        uint64_t l;
        const char *o = name_at(f, tensors, slots[i] - 1, &l);
        if (l == len && memcmp(o, name, (size_t)len) == 0) return slots[i] - 1;
    }
    slots[i] = (uint32_t)idx + 1;
    return -1;
}

static uint64_t table_cap(uint64_t n) {
    uint64_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    return cap;
}

static int cmp_tensor_off(const void *a, const void *b, void *ctx) {
    const struct sembed_file *f = ctx;
    struct sembed_tensor x, y;
    entry_decode(f, *(const uint64_t *)a, &x);
    entry_decode(f, *(const uint64_t *)b, &y);
    return x.offset < y.offset ? -1 : x.offset > y.offset;
}

// Parse one metadata entry at the cursor.
static int parse_kv(struct cur *c, struct kv *kv, uint64_t idx) {
    uint64_t klen = 0;
    c->what = "metadata key";
    kv->key = getstr(c, &klen);
    if (c->err) return c->err;
    if (!semb_key_valid(kv->key, klen))
        return sembed_fail(SEMBED_ECORRUPT, OPEN, "metadata entry %llu: invalid key '%.64s' (want 1..255 bytes of [a-z0-9_.] with a dot)",
                           (unsigned long long)idx, kv->key);
    c->what = kv->key;
    kv->type = get32(c);
    if (c->err) return c->err;
    if (kv->type >= SEMBED_TYPE_COUNT)
        return sembed_fail(SEMBED_ETYPE, OPEN, "metadata '%s': unknown value type %u", kv->key, kv->type);
    if (kv->type == SEMBED_TYPE_STRING) {
        kv->value = (const uint8_t *)getstr(c, &kv->count);
        return c->err;
    }
    if (kv->type != SEMBED_TYPE_ARRAY) {
        size_t sz = semb_type_size(kv->type);
        if (!need(c, sz)) return c->err;
        kv->value = c->base + c->pos;
        if (kv->type == SEMBED_TYPE_BOOL && kv->value[0] > 1)
            return sembed_fail(SEMBED_ECORRUPT, OPEN, "metadata '%s': bool byte is %u (want 0 or 1)", kv->key, kv->value[0]);
        c->pos += sz;
        return 0;
    }
    kv->elem = get32(c);
    kv->count = get64(c);
    if (c->err) return c->err;
    if (kv->elem >= SEMBED_TYPE_COUNT || kv->elem == SEMBED_TYPE_ARRAY)
        return sembed_fail(SEMBED_ETYPE, OPEN, "metadata '%s': invalid array element type %u", kv->key, kv->elem);
    kv->value = c->base + c->pos;
    const uint64_t start = c->pos;
    if (kv->elem != SEMBED_TYPE_STRING) {
        size_t sz = semb_type_size(kv->elem);
        if (kv->count > (c->end - c->pos) / sz)
            return sembed_fail(SEMBED_ECORRUPT, OPEN, "metadata '%s': array of %llu %s elements exceeds the %llu bytes left",
                               kv->key, (unsigned long long)kv->count, sembed_type_name(kv->elem),
                               (unsigned long long)(c->end - c->pos));
        if (kv->elem == SEMBED_TYPE_BOOL)
            for (uint64_t i = 0; i < kv->count; i++)
                if (kv->value[i] > 1) return sembed_fail(SEMBED_ECORRUPT, OPEN, "metadata '%s': bool element %llu is %u", kv->key, (unsigned long long)i, kv->value[i]);
        c->pos += kv->count * sz;
        kv->nbytes = c->pos - start;
        return 0;
    }
    // Each string needs at least 9 bytes: this bounds count before anything is allocated.
    if (kv->count > (c->end - c->pos) / 9)
        return sembed_fail(SEMBED_ECORRUPT, OPEN, "metadata '%s': array of %llu strings cannot fit in the %llu bytes left",
                           kv->key, (unsigned long long)kv->count, (unsigned long long)(c->end - c->pos));
    if (!strarr_check(c, kv->count)) return c->err; // validated here, indexed on demand
    kv->nbytes = c->pos - start;
    atomic_init(&kv->strs, NULL);
    return 0;
}

static int parse_tensor(struct sembed_file *f, struct cur *c, struct sembed_tensor *t, uint64_t idx) {
    uint64_t nlen = 0;
    c->what = "tensor name";
    t->name = getstr(c, &nlen);
    if (c->err) return c->err;
    if (nlen < 1 || nlen > SEMB_MAX_NAME)
        return sembed_fail(SEMBED_ECORRUPT, OPEN, "tensor %llu: name length %llu (want 1..255)", (unsigned long long)idx, (unsigned long long)nlen);
    c->what = t->name;
    uint32_t dtype = get32(c), nd = get32(c);
    if (c->err) return c->err;
    if (dtype >= SEMBED_DTYPE_COUNT)
        return sembed_fail(SEMBED_EDTYPE, OPEN, "tensor '%s': unknown dtype %u", t->name, dtype);
    if (nd < 1 || nd > SEMBED_MAX_DIMS)
        return sembed_fail(SEMBED_EDIMS, OPEN, "tensor '%s': %u dims (want 1..%d)", t->name, nd, SEMBED_MAX_DIMS);
    t->dtype = (enum sembed_dtype)dtype;
    t->n_dims = nd;
    for (int i = 0; i < SEMBED_MAX_DIMS; i++) t->dims[i] = 1;
    for (uint32_t i = 0; i < nd; i++) {
        uint64_t d = get64(c);
        if (c->err) return c->err;
        if (d < 1 || d > SEMB_MAX_DIM)
            return sembed_fail(SEMBED_EDIMS, OPEN, "tensor '%s': dim %u is %llu (want 1..2^40)", t->name, i, (unsigned long long)d);
        t->dims[i] = (int64_t)d;
    }
    t->offset = get64(c);
    t->nbytes = get64(c);
    t->checksum = get64(c);
    if (c->err) return c->err;
    uint64_t want = sembed_dtype_nbytes(t->dtype, nd, t->dims);
    if (want == 0)
        return sembed_fail(SEMBED_EDIMS, OPEN, "tensor '%s': shape is too large", t->name);
    if (t->nbytes != want)
        return sembed_fail(SEMBED_ECORRUPT, OPEN, "tensor '%s': %llu bytes stored, dtype %s and shape imply %llu", t->name,
                           (unsigned long long)t->nbytes, sembed_dtype_name(t->dtype), (unsigned long long)want);
    if (t->offset % SEMBED_ALIGNMENT)
        return sembed_fail(SEMBED_EALIGN, OPEN, "tensor '%s': offset %llu is not a multiple of %u", t->name,
                           (unsigned long long)t->offset, SEMBED_ALIGNMENT);
    if (!ck_span_ok(t->offset, t->nbytes, f->data_size))
        return sembed_fail(SEMBED_EBOUNDS, OPEN, "tensor '%s': bytes [%llu, %llu) run past the end of the data region (%llu bytes)",
                           t->name, (unsigned long long)t->offset, (unsigned long long)(t->offset + t->nbytes),
                           (unsigned long long)f->data_size);
    t->data = f->base + f->data_offset + t->offset;
    return 0;
}

static int parse(struct sembed_file *f) {
    const uint8_t *b = f->base;
    if (f->size < 4 || memcmp(b, SEMB_MAGIC, 4) != 0) {
        if (f->size < 4 && memcmp(b, SEMB_MAGIC, f->size) == 0)
            return sembed_fail(SEMBED_ETRUNCATED, OPEN, "file is %llu bytes, shorter than the magic", (unsigned long long)f->size);
        return sembed_fail(SEMBED_EMAGIC, OPEN, "bad magic: not a .semb file");
    }
    if (f->size < SEMB_FIXED_HEADER)
        return sembed_fail(SEMBED_ETRUNCATED, OPEN, "file is %llu bytes, shorter than the %u-byte header",
                           (unsigned long long)f->size, SEMB_FIXED_HEADER);
    f->version = semb_rd32(b + 4);
    if (f->version != SEMBED_FORMAT_VERSION)
        return sembed_fail(SEMBED_EVERSION, OPEN, "format version %u (this reader supports %u)", f->version, SEMBED_FORMAT_VERSION);
    uint32_t bom = semb_rd32(b + 8);
    if (bom != SEMB_BYTE_ORDER_MARK) {
        if (bom == 0x04030201u)
            return sembed_fail(SEMBED_EBYTEORDER, OPEN, "file is big-endian; version 1 files are little-endian only");
        return sembed_fail(SEMBED_EBYTEORDER, OPEN, "byte-order mark is 0x%08x (want 0x01020304)", bom);
    }
    uint32_t flags = semb_rd32(b + 12);
    if (flags != 0) return sembed_fail(SEMBED_EUNSUPPORTED, OPEN, "unknown header flags 0x%08x", flags);
    f->n_kv = semb_rd64(b + 16);
    f->n_tensors = semb_rd64(b + 24);
    f->dir_end = semb_rd64(b + 32);
    f->data_offset = semb_rd64(b + 40);
    f->data_size = semb_rd64(b + 48);
    uint64_t want;
    if (!ck_add_u64(f->data_offset, f->data_size, &want))
        return sembed_fail(SEMBED_ECORRUPT, OPEN, "data offset + size overflows");
    if (want > f->size)
        return sembed_fail(SEMBED_ETRUNCATED, OPEN, "file is %llu bytes but its header describes %llu: truncated",
                           (unsigned long long)f->size, (unsigned long long)want);
    if (want < f->size)
        return sembed_fail(SEMBED_ECORRUPT, OPEN, "file is %llu bytes but its header describes %llu: trailing bytes",
                           (unsigned long long)f->size, (unsigned long long)want);
    if (f->data_offset % SEMBED_ALIGNMENT)
        return sembed_fail(SEMBED_EALIGN, OPEN, "data offset %llu is not a multiple of %u", (unsigned long long)f->data_offset, SEMBED_ALIGNMENT);
    if (f->dir_end < SEMB_FIXED_HEADER || f->dir_end > f->data_offset || f->data_offset - f->dir_end < 8)
        return sembed_fail(SEMBED_ECORRUPT, OPEN, "directory end %llu is inconsistent with data offset %llu",
                           (unsigned long long)f->dir_end, (unsigned long long)f->data_offset);
    uint64_t stored = semb_rd64(b + f->dir_end), actual = XXH3_64bits(b, (size_t)f->dir_end);
    if (stored != actual)
        return sembed_fail(SEMBED_ECHECKSUM, OPEN, "header checksum mismatch (stored %016llx, computed %016llx): header or directory is corrupt",
                           (unsigned long long)stored, (unsigned long long)actual);
    // Each kv needs >= 13 bytes and each tensor >= 42: bounds the counts before allocating.
    uint64_t room = f->dir_end - SEMB_FIXED_HEADER;
    if (f->n_kv > room / 13 || f->n_tensors > room / 42 || f->n_kv * 13 + f->n_tensors * 42 > room ||
        f->n_kv >= UINT32_MAX / 2 || f->n_tensors >= UINT32_MAX / 2) // lookup tables hold 32-bit indices
        return sembed_fail(SEMBED_ECORRUPT, OPEN, "%llu metadata entries and %llu tensors cannot fit in a %llu-byte directory",
                           (unsigned long long)f->n_kv, (unsigned long long)f->n_tensors, (unsigned long long)room);

    f->kvs = calloc(f->n_kv ? f->n_kv : 1, sizeof *f->kvs);
    // Counts are bounded by the directory size above, and so fit the 32-bit slots.
    const uint64_t cap_kv = table_cap(f->n_kv), cap_t = table_cap(f->n_tensors);
    f->t_entry = calloc(f->n_tensors + (cap_kv + cap_t + 1) / 2, sizeof *f->t_entry); // + both tables' u32 slots
    if (!f->kvs || !f->t_entry) return sembed_fail(SEMBED_ENOMEM, OPEN, "no memory for the directory");
    f->kv_slots = (uint32_t *)(f->t_entry + f->n_tensors);
    f->t_slots = f->kv_slots + cap_kv;
    f->kv_mask = cap_kv - 1;
    f->t_mask = cap_t - 1;

    struct cur c = {.base = b, .pos = SEMB_FIXED_HEADER, .end = f->dir_end, .err = 0, .what = ""};
    int rc;
    for (uint64_t i = 0; i < f->n_kv; i++)
        if ((rc = parse_kv(&c, &f->kvs[i], i))) return rc;
    // Writers lay tensors out in directory order; then overlap is one comparison per neighbour.
    bool in_order = true;
    uint64_t prev_end = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        struct sembed_tensor t;
        f->t_entry[i] = c.pos;
        if ((rc = parse_tensor(f, &c, &t, i))) return rc;
        in_order = in_order && t.offset >= prev_end;
        prev_end = t.offset + t.nbytes;
    }
    if (c.pos != f->dir_end)
        return sembed_fail(SEMBED_ECORRUPT, OPEN, "directory ends at %llu but the header says %llu",
                           (unsigned long long)c.pos, (unsigned long long)f->dir_end);

    for (uint64_t i = 0; i < f->n_kv; i++)
        if (names_add(f, 0, i) >= 0)
            return sembed_fail(SEMBED_EDUPLICATE, OPEN, "duplicate metadata key '%s'", f->kvs[i].key);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (names_add(f, 1, i) >= 0)
            return sembed_fail(SEMBED_EDUPLICATE, OPEN, "duplicate tensor name '%s'", entry_name(f, f->t_entry[i]));
    // Overlap: tensors out of directory order are sorted by offset (a scratch copy) first.
    if (f->n_tensors > 1 && !in_order) {
        uint64_t *by_off = malloc(f->n_tensors * sizeof *by_off);
        if (!by_off) return sembed_fail(SEMBED_ENOMEM, OPEN, "no memory");
        memcpy(by_off, f->t_entry, f->n_tensors * sizeof *by_off);
        qsort_r(by_off, f->n_tensors, sizeof *by_off, cmp_tensor_off, f);
        rc = 0;
        for (uint64_t i = 1; i < f->n_tensors && !rc; i++) {
            struct sembed_tensor p, q;
            entry_decode(f, by_off[i - 1], &p);
            entry_decode(f, by_off[i], &q);
            if (p.offset + p.nbytes > q.offset)
                rc = sembed_fail(SEMBED_EOVERLAP, OPEN, "tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", p.name,
                                 (unsigned long long)p.offset, (unsigned long long)(p.offset + p.nbytes), q.name,
                                 (unsigned long long)q.offset, (unsigned long long)(q.offset + q.nbytes));
        }
        free(by_off);
        if (rc) return rc;
    }
    return 0;
}

static int open_common(struct sembed_file *f, struct sembed_file **out) {
    int rc = parse(f);
    if (rc) {
        sembed_file_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

SEMBED_API int sembed_file_open_memory(const void *buf, size_t len, struct sembed_file **out) {
    if (!out) return SEMBED_EINVAL;
    *out = NULL;
    if (!buf && len) return SEMBED_EINVAL;
    struct sembed_file *f = calloc(1, sizeof *f);
    if (!f) return SEMBED_ENOMEM;
    static const uint8_t empty[1];
    f->base = len ? buf : empty;
    f->size = len;
    return open_common(f, out);
}

SEMBED_API int sembed_file_open(const char *path, struct sembed_file **out) {
    if (!out || !path) return SEMBED_EINVAL;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sembed_fail(errno == ENOENT ? SEMBED_ENOTFOUND : SEMBED_EIO, OPEN, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sembed_fail(SEMBED_EIO, OPEN, "%s: not a regular file", path);
    }
    struct sembed_file *f = calloc(1, sizeof *f);
    if (!f) { close(fd); return SEMBED_ENOMEM; }
    f->size = (uint64_t)st.st_size;
    if (f->size == 0) {
        close(fd);
        free(f);
        return sembed_fail(SEMBED_ETRUNCATED, OPEN, "%s: file is empty", path);
    }
    void *m = mmap(NULL, (size_t)f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        free(f);
        return sembed_fail(SEMBED_EIO, OPEN, "%s: mmap failed: %s", path, strerror(errno));
    }
    f->base = m;
    f->mapped = 1;
#ifdef MADV_POPULATE_READ
    // Prefault the header + directory in one call instead of one page fault per 4 KiB page (the
    // vocabulary makes it ~300 KB); tensor pages stay untouched. Best effort: older kernels say no.
    if (f->size >= SEMB_FIXED_HEADER) {
        uint64_t dir_end = semb_rd64((const uint8_t *)m + 32);
        if (dir_end <= f->size - 8) madvise(m, (size_t)dir_end + 8, MADV_POPULATE_READ);
    }
#endif
    return open_common(f, out);
}

SEMBED_API void sembed_file_free(struct sembed_file *f) {
    if (!f) return;
    if (f->mapped) munmap((void *)(uintptr_t)f->base, (size_t)f->size);
    for (uint64_t i = 0; f->kvs && i < f->n_kv; i++)
        if (f->kvs[i].type == SEMBED_TYPE_ARRAY && f->kvs[i].elem == SEMBED_TYPE_STRING)
            free(atomic_load_explicit(&f->kvs[i].strs, memory_order_acquire));
    free(f->kvs);
    free(f->t_entry);
    free(f);
}

SEMBED_API uint32_t sembed_file_version(const struct sembed_file *f) { return f->version; }
SEMBED_API uint64_t sembed_file_size(const struct sembed_file *f) { return f->size; }
SEMBED_API uint64_t sembed_file_data_offset(const struct sembed_file *f) { return f->data_offset; }
SEMBED_API int64_t sembed_file_n_kv(const struct sembed_file *f) { return (int64_t)f->n_kv; }
SEMBED_API int64_t sembed_file_n_tensors(const struct sembed_file *f) { return (int64_t)f->n_tensors; }

static const struct kv *kv_at(const struct sembed_file *f, int64_t i) {
    return (i >= 0 && (uint64_t)i < f->n_kv) ? &f->kvs[i] : NULL;
}

SEMBED_API const char *sembed_file_kv_key(const struct sembed_file *f, int64_t i) {
    const struct kv *kv = kv_at(f, i);
    return kv ? kv->key : NULL;
}

SEMBED_API enum sembed_type sembed_file_kv_type(const struct sembed_file *f, int64_t i) {
    const struct kv *kv = kv_at(f, i);
    return kv ? (enum sembed_type)kv->type : SEMBED_TYPE_COUNT;
}

SEMBED_API const void *sembed_file_kv_data(const struct sembed_file *f, int64_t i) {
    const struct kv *kv = kv_at(f, i);
    return kv ? kv->value : NULL;
}

SEMBED_API int sembed_file_kv_array_info(const struct sembed_file *f, int64_t i, enum sembed_type *elem, uint64_t *count) {
    const struct kv *kv = kv_at(f, i);
    if (!kv) return SEMBED_ENOTFOUND;
    if (kv->type != SEMBED_TYPE_ARRAY) return SEMBED_ETYPE;
    if (elem) *elem = (enum sembed_type)kv->elem;
    if (count) *count = kv->count;
    return 0;
}

SEMBED_API int64_t sembed_file_find_kv(const struct sembed_file *f, const char *key) {
    if (!f || !key) return -1;
    return names_find(f, 0, key, strlen(key));
}

static const struct kv *find(const struct sembed_file *f, const char *key) {
    int64_t i = sembed_file_find_kv(f, key);
    return i < 0 ? NULL : &f->kvs[i];
}

// Integer value of a scalar kv: *is_signed tells how to read *u / *s.
static int kv_int(const struct kv *kv, uint64_t *u, int64_t *s, int *is_signed) {
    const uint8_t *p = kv->value;
    *is_signed = 0;
    switch (kv->type) {
    case SEMBED_TYPE_U8: *u = p[0]; return 0;
    case SEMBED_TYPE_U16: *u = (uint64_t)p[0] | (uint64_t)p[1] << 8; return 0;
    case SEMBED_TYPE_U32: *u = semb_rd32(p); return 0;
    case SEMBED_TYPE_U64: *u = semb_rd64(p); return 0;
    case SEMBED_TYPE_I8: *s = (int8_t)p[0]; break;
    case SEMBED_TYPE_I16: *s = (int16_t)(uint16_t)((uint16_t)p[0] | (uint16_t)(p[1] << 8)); break;
    case SEMBED_TYPE_I32: *s = (int32_t)semb_rd32(p); break;
    case SEMBED_TYPE_I64: *s = (int64_t)semb_rd64(p); break;
    default: return SEMBED_ETYPE;
    }
    *is_signed = 1;
    return 0;
}

SEMBED_API int sembed_file_get_u64(const struct sembed_file *f, const char *key, uint64_t *out) {
    const struct kv *kv = find(f, key);
    if (!kv) return SEMBED_ENOTFOUND;
    uint64_t u = 0; int64_t s = 0; int sg;
    if (kv_int(kv, &u, &s, &sg)) return SEMBED_ETYPE;
    if (sg) { if (s < 0) return SEMBED_ETYPE; u = (uint64_t)s; }
    *out = u;
    return 0;
}

SEMBED_API int sembed_file_get_u32(const struct sembed_file *f, const char *key, uint32_t *out) {
    uint64_t v;
    int rc = sembed_file_get_u64(f, key, &v);
    if (rc) return rc;
    if (v > UINT32_MAX) return SEMBED_ETYPE;
    *out = (uint32_t)v;
    return 0;
}

SEMBED_API int sembed_file_get_i64(const struct sembed_file *f, const char *key, int64_t *out) {
    const struct kv *kv = find(f, key);
    if (!kv) return SEMBED_ENOTFOUND;
    uint64_t u = 0; int64_t s = 0; int sg;
    if (kv_int(kv, &u, &s, &sg)) return SEMBED_ETYPE;
    if (!sg) { if (u > INT64_MAX) return SEMBED_ETYPE; s = (int64_t)u; }
    *out = s;
    return 0;
}

SEMBED_API int sembed_file_get_f64(const struct sembed_file *f, const char *key, double *out) {
    const struct kv *kv = find(f, key);
    if (!kv) return SEMBED_ENOTFOUND;
    if (kv->type == SEMBED_TYPE_F32) { uint32_t b = semb_rd32(kv->value); float x; memcpy(&x, &b, 4); *out = x; return 0; }
    if (kv->type == SEMBED_TYPE_F64) { uint64_t b = semb_rd64(kv->value); memcpy(out, &b, 8); return 0; }
    return SEMBED_ETYPE;
}

SEMBED_API int sembed_file_get_f32(const struct sembed_file *f, const char *key, float *out) {
    double d;
    int rc = sembed_file_get_f64(f, key, &d);
    if (rc == 0) *out = (float)d;
    return rc;
}

SEMBED_API int sembed_file_get_bool(const struct sembed_file *f, const char *key, bool *out) {
    const struct kv *kv = find(f, key);
    if (!kv) return SEMBED_ENOTFOUND;
    if (kv->type != SEMBED_TYPE_BOOL) return SEMBED_ETYPE;
    *out = kv->value[0] != 0;
    return 0;
}

SEMBED_API int sembed_file_get_str(const struct sembed_file *f, const char *key, const char **s, uint64_t *len) {
    const struct kv *kv = find(f, key);
    if (!kv) return SEMBED_ENOTFOUND;
    if (kv->type != SEMBED_TYPE_STRING) return SEMBED_ETYPE;
    *s = (const char *)kv->value;
    if (len) *len = kv->count;
    return 0;
}

SEMBED_API int sembed_file_get_arr(const struct sembed_file *f, const char *key, enum sembed_type *elem, uint64_t *count,
                                   const void **data) {
    const struct kv *kv = find(f, key);
    if (!kv) return SEMBED_ENOTFOUND;
    if (kv->type != SEMBED_TYPE_ARRAY) return SEMBED_ETYPE;
    if (elem) *elem = (enum sembed_type)kv->elem;
    if (count) *count = kv->count;
    if (data) *data = kv->elem == SEMBED_TYPE_STRING ? NULL : kv->value;
    return 0;
}

SEMBED_API int sembed_file_get_arr_str(const struct sembed_file *f, const char *key, uint64_t i, const char **s,
                                       uint64_t *len) {
    int64_t k = sembed_file_find_kv(f, key);
    return k < 0 ? SEMBED_ENOTFOUND : sembed_file_kv_arr_str(f, k, i, s, len);
}

// Element pointers of string array e, built once on first use. The file is shared read-only
// across threads: whoever publishes first wins, a loser frees its copy.
static const struct str_ref *kv_strs(struct kv *e) {
    struct str_ref *p = atomic_load_explicit(&e->strs, memory_order_acquire);
    if (p) return p;
    p = malloc((size_t)e->count * sizeof *p);
    if (!p) return NULL;
    const uint8_t *q = e->value; // validated at open: count strings back to back
    for (uint64_t i = 0; i < e->count; i++) {
        p[i].len = semb_rd64(q);
        p[i].s = (const char *)q + 8;
        q += 9 + p[i].len;
    }
    struct str_ref *prev = NULL;
    if (!atomic_compare_exchange_strong_explicit(&e->strs, &prev, p, memory_order_acq_rel, memory_order_acquire)) {
        free(p);
        p = prev;
    }
    return p;
}

SEMBED_API int sembed_file_kv_arr_str(const struct sembed_file *f, int64_t kv, uint64_t i, const char **s, uint64_t *len) {
    if (!kv_at(f, kv)) return SEMBED_ENOTFOUND;
    struct kv *e = &f->kvs[kv];
    if (e->type != SEMBED_TYPE_ARRAY || e->elem != SEMBED_TYPE_STRING) return SEMBED_ETYPE;
    if (i >= e->count) return SEMBED_EINVAL;
    const struct str_ref *strs = kv_strs(e);
    if (!strs) return sembed_fail(SEMBED_ENOMEM, "sembed_file_kv_arr_str", "no memory to index '%s' (%llu strings)", e->key,
                                  (unsigned long long)e->count);
    *s = strs[i].s;
    if (len) *len = strs[i].len;
    return 0;
}

SEMBED_API int sembed_file_kv_arr_bytes(const struct sembed_file *f, int64_t kv, const void **data, uint64_t *nbytes) {
    const struct kv *e = kv_at(f, kv);
    if (!e) return SEMBED_ENOTFOUND;
    if (e->type != SEMBED_TYPE_ARRAY) return SEMBED_ETYPE;
    if (data) *data = e->value;
    if (nbytes) *nbytes = e->nbytes;
    return 0;
}

SEMBED_API int sembed_file_tensor(const struct sembed_file *f, int64_t i, struct sembed_tensor *out) {
    if (i < 0 || (uint64_t)i >= f->n_tensors) return SEMBED_ENOTFOUND;
    entry_decode(f, f->t_entry[i], out);
    return 0;
}

SEMBED_API int sembed_file_find_tensor(const struct sembed_file *f, const char *name, struct sembed_tensor *out) {
    if (!f || !name) return SEMBED_EINVAL;
    int64_t i = names_find(f, 1, name, strlen(name));
    if (i < 0) return SEMBED_ENOTFOUND;
    if (out) entry_decode(f, f->t_entry[i], out);
    return 0;
}

SEMBED_API int sembed_file_verify_tensor(const struct sembed_file *f, int64_t i) {
    if (i < 0 || (uint64_t)i >= f->n_tensors) return SEMBED_ENOTFOUND;
    struct sembed_tensor t;
    entry_decode(f, f->t_entry[i], &t);
    return XXH3_64bits(t.data, (size_t)t.nbytes) == t.checksum ? 0 : SEMBED_ECHECKSUM;
}

SEMBED_API void sembed_file_release(const struct sembed_file *f, const void *p, size_t n) {
    if (!f || !f->mapped || !p || n == 0) return;
    const uint8_t *b = p, *lo = f->base, *hi = f->base + f->size;
    if (b < lo || b > hi || n > (size_t)(hi - b)) return;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t s0 = ((uintptr_t)b + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1), s1 = ((uintptr_t)b + n) & ~(uintptr_t)(pg - 1);
    if (s1 > s0) (void)madvise((void *)s0, s1 - s0, MADV_DONTNEED); // read-only private mapping: pages refault from the file
}

int sembed_file_verify(const struct sembed_file *f, int64_t *first_bad) {
    int64_t bad = -1;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        if (sembed_file_verify_tensor(f, (int64_t)i) != 0) {
            struct sembed_tensor t;
            entry_decode(f, f->t_entry[i], &t);
            sembed_fail(SEMBED_ECHECKSUM, "sembed_file_verify", "tensor '%s': checksum mismatch (stored %016llx, computed %016llx)",
                        t.name, (unsigned long long)t.checksum, (unsigned long long)XXH3_64bits(t.data, (size_t)t.nbytes));
            if (bad < 0) bad = (int64_t)i;
        }
    }
    if (first_bad) *first_bad = bad;
    int rc = sembed_file_verify_tokenizer_index(f); // logs its own finding either way
    return bad >= 0 ? SEMBED_ECHECKSUM : rc;
}
