// .semb reader/writer: round trips, truncation, bit flips, and hostile directories.
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sembed/semb.h"
#include "testutil.h"

// ---------------------------------------------------------------- a raw builder (test-side
// second implementation of docs/format.md, so hostile files can be made field by field)
struct rb {
    uint8_t *p;
    size_t n, cap;
};
static void rb_put(struct rb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void rb_u32(struct rb *b, uint32_t v) { rb_put(b, &v, 4); }
static void rb_u64(struct rb *b, uint64_t v) { rb_put(b, &v, 8); }
static void rb_str(struct rb *b, const char *s) { rb_u64(b, strlen(s)); rb_put(b, s, strlen(s) + 1); }

struct rt { // one raw tensor directory entry
    const char *name;
    uint32_t dtype, n_dims;
    uint64_t dims[4], offset, nbytes;
};

// header + one u32 kv + tensors; data region of data_size bytes filled with a pattern.
// fix: compute header checksum. Returns malloc'd, 64-aligned buffer.
static uint8_t *raw_file(const struct rt *ts, int n_t, uint64_t data_size, size_t *len, uint64_t n_kv_field,
                         uint64_t n_t_field) {
    struct rb b = {0};
    rb_put(&b, "SEMB", 4);
    rb_u32(&b, 1);
    rb_u32(&b, 0x01020304u);
    rb_u32(&b, 0);
    rb_u64(&b, n_kv_field);
    rb_u64(&b, n_t_field);
    rb_u64(&b, 0); // dir_end, patched
    rb_u64(&b, 0); // data_offset, patched
    rb_u64(&b, data_size);
    rb_str(&b, "general.architecture");
    rb_u32(&b, 11);
    rb_str(&b, "bert");
    for (int i = 0; i < n_t; i++) {
        rb_str(&b, ts[i].name);
        rb_u32(&b, ts[i].dtype);
        rb_u32(&b, ts[i].n_dims);
        for (uint32_t d = 0; d < ts[i].n_dims && d < 4; d++) rb_u64(&b, ts[i].dims[d]);
        rb_u64(&b, ts[i].offset);
        rb_u64(&b, ts[i].nbytes);
        rb_u64(&b, 0);
    }
    uint64_t dir_end = b.n, data_off = (dir_end + 8 + 63) / 64 * 64;
    memcpy(b.p + 32, &dir_end, 8);
    memcpy(b.p + 40, &data_off, 8);
    uint64_t h = XXH3_64bits(b.p, dir_end);
    rb_u64(&b, h);
    *len = data_off + data_size;
    uint8_t *out = aligned_alloc(64, (*len + 63) / 64 * 64);
    memset(out, 0, *len);
    memcpy(out, b.p, b.n);
    for (uint64_t i = 0; i < data_size; i++) out[data_off + i] = (uint8_t)(i * 7 + 1);
    free(b.p);
    return out;
}

static void refix_checksum(uint8_t *buf) {
    uint64_t dir_end;
    memcpy(&dir_end, buf + 32, 8);
    uint64_t h = XXH3_64bits(buf, dir_end);
    memcpy(buf + dir_end, &h, 8);
}

static int open_raw(const uint8_t *buf, size_t len) {
    struct sembed_file *f = NULL;
    int rc = sembed_file_open_memory(buf, len, &f);
    if (rc == 0) cr_assert_not_null(f);
    else cr_assert_null(f, "failed open must not return an object");
    sembed_file_free(f);
    return rc;
}

static void quiet_log(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }
static void setup(void) { sembed_log_set(quiet_log, NULL); }

TestSuite(semb, .init = setup);

// ---------------------------------------------------------------- writer helpers
static char *g_dir;
static char *write_sample(int with_tensors) {
    if (!g_dir) g_dir = tu_mkdtemp();
    char *path = tu_path(g_dir, with_tensors ? "sample.semb" : "empty.semb");
    struct sembed_writer *w;
    cr_assert_eq(sembed_writer_create(path, &w), 0);
    cr_assert_eq(sembed_writer_add_str(w, "general.architecture", "bert"), 0);
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000;
    int32_t i32 = -2000000000;
    cr_assert_eq(sembed_writer_add_scalar(w, "t.u8", SEMBED_TYPE_U8, &u8), 0);
    cr_assert_eq(sembed_writer_add_scalar(w, "t.i8", SEMBED_TYPE_I8, &i8), 0);
    cr_assert_eq(sembed_writer_add_scalar(w, "t.u16", SEMBED_TYPE_U16, &u16), 0);
    cr_assert_eq(sembed_writer_add_scalar(w, "t.i16", SEMBED_TYPE_I16, &i16), 0);
    cr_assert_eq(sembed_writer_add_u32(w, "t.u32", 4000000000u), 0);
    cr_assert_eq(sembed_writer_add_scalar(w, "t.i32", SEMBED_TYPE_I32, &i32), 0);
    cr_assert_eq(sembed_writer_add_u64(w, "t.u64", 18000000000000000000ull), 0);
    cr_assert_eq(sembed_writer_add_i64(w, "t.i64", -9000000000000000000ll), 0);
    cr_assert_eq(sembed_writer_add_f32(w, "t.f32", 1e-12f), 0);
    cr_assert_eq(sembed_writer_add_f64(w, "t.f64", 3.141592653589793), 0);
    cr_assert_eq(sembed_writer_add_bool(w, "t.bool", true), 0);
    cr_assert_eq(sembed_writer_add_str(w, "t.str", "h\xc3\xa9llo \xe4\xb8\xad"), 0);
    cr_assert_eq(sembed_writer_add_str(w, "t.empty", ""), 0);
    const char *vocab[] = {"[PAD]", "[UNK]", "##ing", "\xc3\xa9t\xc3\xa9", ""};
    cr_assert_eq(sembed_writer_add_arr_str(w, "t.vocab", vocab, 5), 0);
    float fa[3] = {1.5f, -2.0f, INFINITY};
    cr_assert_eq(sembed_writer_add_arr(w, "t.f32s", SEMBED_TYPE_F32, fa, 3), 0);
    int64_t ia[2] = {-1, 1ll << 40};
    cr_assert_eq(sembed_writer_add_arr(w, "t.i64s", SEMBED_TYPE_I64, ia, 2), 0);
    uint8_t ba[2] = {0, 1};
    cr_assert_eq(sembed_writer_add_arr(w, "t.bools", SEMBED_TYPE_BOOL, ba, 2), 0);
    cr_assert_eq(sembed_writer_add_arr(w, "t.none", SEMBED_TYPE_U32, NULL, 0), 0);
    cr_assert_eq(sembed_writer_add_arr_str(w, "t.nostr", NULL, 0), 0); // fuzz regression: empty string array
    if (with_tensors) {
        // one tensor of every dtype, odd sizes so padding is exercised
        cr_assert_eq(sembed_writer_add_tensor(w, "a.f32", SEMBED_DTYPE_F32, 2, (int64_t[]){3, 5}), 0);
        cr_assert_eq(sembed_writer_add_tensor(w, "a.f16", SEMBED_DTYPE_F16, 1, (int64_t[]){7}), 0);
        cr_assert_eq(sembed_writer_add_tensor(w, "a.bf16", SEMBED_DTYPE_BF16, 3, (int64_t[]){2, 1, 3}), 0);
        cr_assert_eq(sembed_writer_add_tensor(w, "a.i32", SEMBED_DTYPE_I32, 4, (int64_t[]){1, 2, 1, 2}), 0);
        cr_assert_eq(sembed_writer_add_tensor(w, "a.i8", SEMBED_DTYPE_I8, 1, (int64_t[]){65}), 0);
        cr_assert_eq(sembed_writer_add_tensor(w, "a.q8", SEMBED_DTYPE_Q8_ROW, 2, (int64_t[]){3, 5}), 0);
        float f32[15];
        for (int i = 0; i < 15; i++) f32[i] = (float)i * 0.25f - 1.0f;
        cr_assert_eq(sembed_writer_write(w, f32, 10 * 4), 0); // split across calls
        cr_assert_eq(sembed_writer_write(w, f32 + 10, 5 * 4), 0);
        uint16_t h[7 + 6];
        for (int i = 0; i < 13; i++) h[i] = (uint16_t)(0x3c00 + i);
        int32_t i32s[4] = {1, -2, 3, -4};
        int8_t i8s[65];
        for (int i = 0; i < 65; i++) i8s[i] = (int8_t)(i - 32);
        uint8_t q8[64 + 12];
        memset(q8, 0, sizeof q8);
        for (int i = 0; i < 15; i++) q8[i] = (uint8_t)(int8_t)(i - 7);
        float sc[3] = {0.5f, 0.25f, 0.125f};
        memcpy(q8 + 64, sc, 12);
        // a single write spanning several tensors
        uint8_t all[14 + 12 + 16 + 65];
        memcpy(all, h, 14);
        memcpy(all + 14, h + 7, 12);
        memcpy(all + 26, i32s, 16);
        memcpy(all + 42, i8s, 65);
        cr_assert_eq(sembed_writer_write(w, all, sizeof all), 0);
        cr_assert_eq(sembed_writer_write(w, q8, sizeof q8), 0);
    }
    cr_assert_eq(sembed_writer_finish(w), 0);
    return path;
}

Test(semb, round_trip_every_type_and_dtype) {
    char *path = write_sample(1);
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(path, &f), 0, "open %s", path);
    const char *s;
    uint64_t n;
    cr_assert_eq(sembed_file_get_str(f, "general.architecture", &s, &n), 0);
    cr_assert_str_eq(s, "bert");
    cr_assert_eq(n, 4);
    uint32_t u32; int64_t i64; uint64_t u64; float f32; double f64; bool b;
    cr_assert_eq(sembed_file_get_u32(f, "t.u8", &u32), 0); cr_assert_eq(u32, 200);
    cr_assert_eq(sembed_file_get_i64(f, "t.i8", &i64), 0); cr_assert_eq(i64, -100);
    cr_assert_eq(sembed_file_get_u32(f, "t.u16", &u32), 0); cr_assert_eq(u32, 60000);
    cr_assert_eq(sembed_file_get_i64(f, "t.i16", &i64), 0); cr_assert_eq(i64, -30000);
    cr_assert_eq(sembed_file_get_u32(f, "t.u32", &u32), 0); cr_assert_eq(u32, 4000000000u);
    cr_assert_eq(sembed_file_get_i64(f, "t.i32", &i64), 0); cr_assert_eq(i64, -2000000000);
    cr_assert_eq(sembed_file_get_u64(f, "t.u64", &u64), 0); cr_assert_eq(u64, 18000000000000000000ull);
    cr_assert_eq(sembed_file_get_i64(f, "t.i64", &i64), 0); cr_assert_eq(i64, -9000000000000000000ll);
    cr_assert_eq(sembed_file_get_f32(f, "t.f32", &f32), 0); cr_assert_eq(f32, 1e-12f);
    cr_assert_eq(sembed_file_get_f64(f, "t.f64", &f64), 0); cr_assert_eq(f64, 3.141592653589793);
    cr_assert_eq(sembed_file_get_bool(f, "t.bool", &b), 0); cr_assert(b);
    cr_assert_eq(sembed_file_get_str(f, "t.str", &s, NULL), 0); cr_assert_str_eq(s, "h\xc3\xa9llo \xe4\xb8\xad");
    cr_assert_eq(sembed_file_get_str(f, "t.empty", &s, &n), 0); cr_assert_eq(n, 0); cr_assert_str_eq(s, "");
    // type checks and range checks
    cr_assert_eq(sembed_file_get_u32(f, "t.u64", &u32), SEMBED_ETYPE, "u64 value too big for u32");
    cr_assert_eq(sembed_file_get_u64(f, "t.i8", &u64), SEMBED_ETYPE, "negative into unsigned");
    cr_assert_eq(sembed_file_get_str(f, "t.u32", &s, NULL), SEMBED_ETYPE);
    cr_assert_eq(sembed_file_get_bool(f, "no.such_key", &b), SEMBED_ENOTFOUND);
    enum sembed_type et;
    const void *data;
    cr_assert_eq(sembed_file_get_arr(f, "t.vocab", &et, &n, &data), 0);
    cr_assert_eq(et, SEMBED_TYPE_STRING); cr_assert_eq(n, 5);
    const char *want[] = {"[PAD]", "[UNK]", "##ing", "\xc3\xa9t\xc3\xa9", ""};
    for (uint64_t i = 0; i < 5; i++) {
        cr_assert_eq(sembed_file_get_arr_str(f, "t.vocab", i, &s, NULL), 0);
        cr_assert_str_eq(s, want[i], "vocab[%llu]", (unsigned long long)i);
    }
    cr_assert_eq(sembed_file_get_arr_str(f, "t.vocab", 5, &s, NULL), SEMBED_EINVAL);
    cr_assert_eq(sembed_file_get_arr(f, "t.f32s", &et, &n, &data), 0);
    float fa[3];
    memcpy(fa, data, 12);
    cr_assert(et == SEMBED_TYPE_F32 && n == 3 && fa[0] == 1.5f && fa[1] == -2.0f && isinf(fa[2]));
    cr_assert_eq(sembed_file_get_arr(f, "t.i64s", &et, &n, &data), 0);
    int64_t ia[2];
    memcpy(ia, data, 16);
    cr_assert(n == 2 && ia[0] == -1 && ia[1] == 1ll << 40);
    cr_assert_eq(sembed_file_get_arr(f, "t.bools", &et, &n, &data), 0);
    cr_assert(et == SEMBED_TYPE_BOOL && n == 2 && ((const uint8_t *)data)[1] == 1);
    cr_assert_eq(sembed_file_get_arr(f, "t.none", &et, &n, &data), 0);
    cr_assert_eq(n, 0);
    // kv order is file order
    cr_assert_str_eq(sembed_file_kv_key(f, 0), "general.architecture");
    cr_assert_eq(sembed_file_n_kv(f), 20);
    cr_assert_eq(sembed_file_get_arr(f, "t.nostr", &et, &n, &data), 0);
    cr_assert(et == SEMBED_TYPE_STRING && n == 0);
    cr_assert_eq(sembed_file_get_arr_str(f, "t.nostr", 0, &s, NULL), SEMBED_EINVAL);

    cr_assert_eq(sembed_file_n_tensors(f), 6);
    struct sembed_tensor t;
    cr_assert_eq(sembed_file_find_tensor(f, "a.f32", &t), 0);
    cr_assert(t.dtype == SEMBED_DTYPE_F32 && t.n_dims == 2 && t.dims[0] == 3 && t.dims[1] == 5 && t.nbytes == 60);
    for (int i = 0; i < 15; i++) cr_assert_eq(((const float *)t.data)[i], (float)i * 0.25f - 1.0f);
    const char *names[] = {"a.f32", "a.f16", "a.bf16", "a.i32", "a.i8", "a.q8"};
    uint64_t sizes[] = {60, 14, 12, 16, 65, 64 + 12};
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(sembed_file_find_tensor(f, names[i], &t), 0, "%s", names[i]);
        cr_assert_eq(t.nbytes, sizes[i], "%s: nbytes %llu, want %llu", names[i], (unsigned long long)t.nbytes,
                     (unsigned long long)sizes[i]);
        cr_assert_eq((uintptr_t)t.data % 64, 0, "%s: data not 64-byte aligned", names[i]);
        cr_assert_eq(t.offset % 64, 0);
    }
    cr_assert_eq(sembed_file_find_tensor(f, "a.i8", &t), 0);
    for (int i = 0; i < 65; i++) cr_assert_eq(((const int8_t *)t.data)[i], i - 32);
    cr_assert_eq(sembed_file_find_tensor(f, "a.q8", &t), 0);
    float sc;
    memcpy(&sc, (const uint8_t *)t.data + 64 + 8, 4);
    cr_assert_eq(sc, 0.125f);
    cr_assert_eq(((const int8_t *)t.data)[14], 7);
    cr_assert_eq(sembed_file_find_tensor(f, "nope", &t), SEMBED_ENOTFOUND);
    int64_t bad;
    cr_assert_eq(sembed_file_verify(f, &bad), 0);
    cr_assert_eq(bad, -1);
    sembed_file_free(f);
    free(path);
}

Test(semb, empty_file_round_trip_and_free_null) {
    char *path = write_sample(0);
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(path, &f), 0);
    cr_assert_eq(sembed_file_n_tensors(f), 0);
    cr_assert_eq(sembed_file_verify(f, NULL), 0);
    sembed_file_free(f);
    sembed_file_free(NULL);
    sembed_writer_free(NULL);
    free(path);
}

Test(semb, every_truncation_point_fails_cleanly) {
    char *path = write_sample(1);
    size_t len;
    uint8_t *buf = tu_read_file(path, &len);
    cr_assert_not_null(buf);
    uint8_t *copy = aligned_alloc(64, (len + 63) / 64 * 64);
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(copy, buf, cut);
        int rc = open_raw(copy, cut);
        int ok = rc == SEMBED_ETRUNCATED || (cut == 0 && rc == SEMBED_ETRUNCATED);
        cr_assert(ok, "truncated at %zu of %zu: got %d (%s), want SEMBED_ETRUNCATED", cut, len, rc, sembed_strerror(rc));
    }
    memcpy(copy, buf, len);
    cr_assert_eq(open_raw(copy, len), 0);
    free(copy);
    free(buf);
    free(path);
}

Test(semb, bit_flips_structure_caught_by_open_data_by_verify) {
    char *path = write_sample(1);
    size_t len;
    uint8_t *buf = tu_read_file(path, &len);
    uint8_t *copy = aligned_alloc(64, (len + 63) / 64 * 64);
    uint64_t dir_end, data_off;
    memcpy(&dir_end, buf + 32, 8);
    memcpy(&data_off, buf + 40, 8);
    for (size_t pos = 0; pos < len; pos++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(copy, buf, len);
            copy[pos] ^= (uint8_t)(1u << bit);
            struct sembed_file *f = NULL;
            int rc = sembed_file_open_memory(copy, len, &f);
            if (pos < dir_end + 8) {
                cr_assert_neq(rc, 0, "flip at header/directory byte %zu bit %d not caught by open", pos, bit);
            } else if (pos < data_off) {
                // padding is not covered by any checksum and not read: harmless
                cr_assert_eq(rc, 0);
            } else {
                cr_assert_eq(rc, 0, "flip in data at %zu broke open (%s)", pos, sembed_strerror(rc));
                int64_t badi;
                int vr = sembed_file_verify(f, &badi);
                // bytes between tensors are padding; inside a tensor verify must catch it
                struct sembed_tensor t;
                int inside = 0;
                for (int64_t i = 0; i < sembed_file_n_tensors(f); i++) {
                    sembed_file_tensor(f, i, &t);
                    uint64_t off = pos - data_off;
                    if (off >= t.offset && off < t.offset + t.nbytes) {
                        inside = 1;
                        cr_assert_eq(vr, SEMBED_ECHECKSUM, "flip in tensor '%s' not caught by verify", t.name);
                        cr_assert_eq(badi, i, "verify named tensor %lld, want %lld", (long long)badi, (long long)i);
                    }
                }
                if (!inside) cr_assert_eq(vr, 0);
            }
            sembed_file_free(f);
        }
    }
    free(copy);
    free(buf);
    free(path);
}

// Hostile directories, each with a correct header checksum so the structural check is what fires.
static uint8_t *one_tensor(struct rt t, uint64_t data_size, size_t *len) { return raw_file(&t, 1, data_size, len, 1, 1); }

Test(semb, raw_builder_valid_file_opens) {
    size_t len;
    uint8_t *b = one_tensor((struct rt){"x", 0, 2, {2, 3}, 0, 24}, 64, &len);
    cr_assert_eq(open_raw(b, len), 0);
    free(b);
}

Test(semb, offset_past_end) {
    size_t len;
    uint8_t *b = one_tensor((struct rt){"x", 0, 2, {2, 3}, 64, 24}, 64, &len);
    cr_assert_eq(open_raw(b, len), SEMBED_EBOUNDS);
    free(b);
    b = one_tensor((struct rt){"x", 0, 1, {4}, UINT64_MAX - 63, 16}, 64, &len); // wraps if added naively
    cr_assert_eq(open_raw(b, len), SEMBED_EBOUNDS);
    free(b);
}

Test(semb, size_does_not_match_shape) {
    size_t len;
    uint8_t *b = one_tensor((struct rt){"x", 0, 2, {2, 3}, 0, 20}, 64, &len);
    cr_assert_eq(open_raw(b, len), SEMBED_ECORRUPT);
    free(b);
}

Test(semb, misaligned_offset) {
    size_t len;
    uint8_t *b = one_tensor((struct rt){"x", 0, 1, {2}, 4, 8}, 64, &len);
    cr_assert_eq(open_raw(b, len), SEMBED_EALIGN);
    free(b);
}

Test(semb, overlapping_tensors) {
    struct rt ts[2] = {{"x", 0, 1, {32}, 0, 128}, {"y", 0, 1, {16}, 64, 64}};
    size_t len;
    uint8_t *b = raw_file(ts, 2, 192, &len, 1, 2);
    cr_assert_eq(open_raw(b, len), SEMBED_EOVERLAP);
    free(b);
}

Test(semb, duplicate_tensor_names) {
    struct rt ts[2] = {{"x", 0, 1, {16}, 0, 64}, {"x", 0, 1, {16}, 64, 64}};
    size_t len;
    uint8_t *b = raw_file(ts, 2, 128, &len, 1, 2);
    cr_assert_eq(open_raw(b, len), SEMBED_EDUPLICATE);
    free(b);
}

Test(semb, unknown_dtype_and_bad_dims) {
    size_t len;
    uint8_t *b = one_tensor((struct rt){"x", 99, 1, {4}, 0, 16}, 64, &len);
    cr_assert_eq(open_raw(b, len), SEMBED_EDTYPE);
    free(b);
    b = one_tensor((struct rt){"x", 0, 5, {1, 1, 1, 1}, 0, 4}, 64, &len);
    cr_assert_eq(open_raw(b, len), SEMBED_EDIMS, "5 dims");
    free(b);
    b = one_tensor((struct rt){"x", 0, 2, {0, 4}, 0, 0}, 64, &len);
    cr_assert_eq(open_raw(b, len), SEMBED_EDIMS);
    free(b);
    b = one_tensor((struct rt){"x", 0, 2, {1ull << 40, 1ull << 40}, 0, 16}, 64, &len); // product overflows
    cr_assert_eq(open_raw(b, len), SEMBED_EDIMS);
    free(b);
}

Test(semb, huge_counts) {
    size_t len;
    struct rt t = {"x", 0, 1, {4}, 0, 16};
    uint8_t *b = raw_file(&t, 1, 64, &len, 1, UINT64_MAX);
    cr_assert_eq(open_raw(b, len), SEMBED_ECORRUPT);
    free(b);
    b = raw_file(&t, 1, 64, &len, 1ull << 62, 1);
    cr_assert_eq(open_raw(b, len), SEMBED_ECORRUPT);
    free(b);
    // a string length that claims far more than the file
    b = raw_file(&t, 1, 64, &len, 1, 1);
    uint64_t huge = 1ull << 60;
    memcpy(b + 56, &huge, 8); // the first key's length
    refix_checksum(b);
    cr_assert_eq(open_raw(b, len), SEMBED_ECORRUPT);
    free(b);
}

Test(semb, magic_version_byte_order_flags) {
    size_t len;
    struct rt t = {"x", 0, 1, {4}, 0, 16};
    uint8_t *b = raw_file(&t, 1, 64, &len, 1, 1);
    b[0] = 'G';
    cr_assert_eq(open_raw(b, len), SEMBED_EMAGIC);
    b[0] = 'S';
    b[4] = 2;
    cr_assert_eq(open_raw(b, len), SEMBED_EVERSION);
    b[4] = 1;
    uint32_t be = 0x04030201u;
    memcpy(b + 8, &be, 4);
    cr_assert_eq(open_raw(b, len), SEMBED_EBYTEORDER);
    uint32_t bom = 0x01020304u, flags = 1;
    memcpy(b + 8, &bom, 4);
    memcpy(b + 12, &flags, 4);
    cr_assert_eq(open_raw(b, len), SEMBED_EUNSUPPORTED);
    flags = 0;
    memcpy(b + 12, &flags, 4);
    cr_assert_eq(open_raw(b, len), 0);
    free(b);
}

Test(semb, trailing_bytes_and_header_checksum) {
    size_t len;
    struct rt t = {"x", 0, 1, {4}, 0, 16};
    uint8_t *b = raw_file(&t, 1, 64, &len, 1, 1);
    uint8_t *big = aligned_alloc(64, len + 64);
    memcpy(big, b, len);
    memset(big + len, 0, 64);
    cr_assert_eq(open_raw(big, len + 1), SEMBED_ECORRUPT, "trailing bytes");
    b[60] ^= 1; // inside the first key
    cr_assert_eq(open_raw(b, len), SEMBED_ECHECKSUM);
    free(big);
    free(b);
}

Test(semb, bad_utf8_and_bad_bool_and_nested_array) {
    size_t len;
    struct rt t = {"x", 0, 1, {4}, 0, 16};
    uint8_t *b = raw_file(&t, 1, 64, &len, 1, 1);
    // value string "bert" lives after key(8+20+1) and type(4): make it invalid UTF-8
    size_t vpos = 56 + 8 + 21 + 4 + 8;
    cr_assert_eq(memcmp(b + vpos, "bert", 4), 0);
    b[vpos] = 0xc0; // overlong lead byte
    b[vpos + 1] = 0x80;
    refix_checksum(b);
    cr_assert_eq(open_raw(b, len), SEMBED_EUTF8);
    memcpy(b + vpos, "b\0rt", 4); // NUL inside a string
    refix_checksum(b);
    cr_assert_neq(open_raw(b, len), 0);
    memcpy(b + vpos, "\xed\xa0\x80t", 4); // UTF-16 surrogate
    refix_checksum(b);
    cr_assert_eq(open_raw(b, len), SEMBED_EUTF8);
    free(b);
}

Test(semb, writer_rejects_misuse_and_leaves_no_file) {
    char *dir = tu_mkdtemp();
    char *path = tu_path(dir, "out.semb");
    struct sembed_writer *w;
    cr_assert_eq(sembed_writer_create(path, &w), 0);
    cr_assert_eq(sembed_writer_add_u32(w, "Bad Key", 1), SEMBED_EINVAL);
    cr_assert_eq(sembed_writer_add_u32(w, "nodot", 1), SEMBED_EINVAL);
    cr_assert_eq(sembed_writer_add_u32(w, "a.b", 1), 0);
    cr_assert_eq(sembed_writer_add_u32(w, "a.b", 2), SEMBED_EDUPLICATE);
    cr_assert_eq(sembed_writer_add_str(w, "a.s", "\xff"), SEMBED_EUTF8);
    cr_assert_eq(sembed_writer_add_tensor(w, "t", SEMBED_DTYPE_F32, 1, (int64_t[]){4}), 0);
    cr_assert_eq(sembed_writer_add_tensor(w, "t", SEMBED_DTYPE_F32, 1, (int64_t[]){4}), SEMBED_EDUPLICATE);
    cr_assert_eq(sembed_writer_add_tensor(w, "z", SEMBED_DTYPE_F32, 1, (int64_t[]){0}), SEMBED_EDIMS);
    cr_assert_eq(sembed_writer_add_tensor(w, "z", (enum sembed_dtype)77, 1, (int64_t[]){1}), SEMBED_EDTYPE);
    float x[4] = {0};
    cr_assert_eq(sembed_writer_write(w, x, 8), 0);
    cr_assert_eq(sembed_writer_add_u32(w, "a.late", 1), SEMBED_ESTATE);
    // only half the tensor written: finish must fail and leave nothing behind
    cr_assert_eq(sembed_writer_finish(w), SEMBED_ESTATE);
    cr_assert(!tu_file_exists(path), "destination must not exist after a failed finish");
    char *out = NULL;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    tu_run(cmd, &out);
    cr_assert_eq(atoi(out), 0, "temp files left behind: %s", out);
    free(out);
    // writing too much is an error too
    cr_assert_eq(sembed_writer_create(path, &w), 0);
    cr_assert_eq(sembed_writer_add_tensor(w, "t", SEMBED_DTYPE_F32, 1, (int64_t[]){1}), 0);
    cr_assert_eq(sembed_writer_write(w, x, 8), SEMBED_ESTATE);
    sembed_writer_free(w);
    cr_assert(!tu_file_exists(path));
    tu_rmtree(dir);
    free(path);
    free(dir);
}

Test(semb, failed_write_keeps_previous_file) {
    char *path = write_sample(0);
    size_t len0;
    uint8_t *before = tu_read_file(path, &len0);
    struct sembed_writer *w;
    cr_assert_eq(sembed_writer_create(path, &w), 0);
    cr_assert_eq(sembed_writer_add_tensor(w, "t", SEMBED_DTYPE_F32, 1, (int64_t[]){4}), 0);
    sembed_writer_free(w); // abandoned mid-way, like a crash
    size_t len1;
    uint8_t *after = tu_read_file(path, &len1);
    cr_assert(len0 == len1 && memcmp(before, after, len0) == 0, "the old file must be untouched");
    free(before);
    free(after);
    free(path);
}

Test(semb, strerror_names_every_code) {
    for (int c = 0; c >= -25; c--) cr_assert_str_neq(sembed_strerror(c), "unknown error", "code %d", c);
    cr_assert_str_eq(sembed_strerror(12345), "unknown error");
    cr_assert_eq(sembed_dtype_from_name("q8_row"), SEMBED_DTYPE_Q8_ROW);
    cr_assert_eq(sembed_dtype_from_name("f64"), -1);
}

Test(semb, string_array_by_index_matches_by_key) {
    char *path = write_sample(1);
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(path, &f), 0);
    int64_t kv = sembed_file_find_kv(f, "t.vocab");
    cr_assert_geq(kv, 0);
    for (uint64_t i = 0; i < 5; i++) {
        const char *a, *b;
        uint64_t la, lb;
        cr_assert_eq(sembed_file_kv_arr_str(f, kv, i, &a, &la), 0);
        cr_assert_eq(sembed_file_get_arr_str(f, "t.vocab", i, &b, &lb), 0);
        cr_assert(a == b && la == lb, "element %llu differs", (unsigned long long)i);
    }
    const char *s;
    cr_assert_eq(sembed_file_kv_arr_str(f, kv, 5, &s, NULL), SEMBED_EINVAL);
    cr_assert_eq(sembed_file_kv_arr_str(f, sembed_file_find_kv(f, "t.u32"), 0, &s, NULL), SEMBED_ETYPE);
    cr_assert_eq(sembed_file_kv_arr_str(f, 9999, 0, &s, NULL), SEMBED_ENOTFOUND);
    sembed_file_free(f);
    free(path);
}

// Rss (KiB) of this process's mapping of `path` (smaps), or -1.
static long mapping_rss_kb(const char *path) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[4096];
    long rss = -1;
    bool in = false;
    unsigned long lo, hi;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) in = strstr(line, path) != NULL; // a mapping's header
        else if (in && !strncmp(line, "Rss:", 4)) rss = (rss < 0 ? 0 : rss) + atol(line + 4);
    }
    fclose(f);
    return rss;
}

// sembed_file_release: the pages of a released range leave the mapping's resident set, the bytes
// read back unchanged, and ranges outside the file or memory-opened files are ignored.
Test(semb, release_drops_pages_keeps_bytes) {
    if (!g_dir) g_dir = tu_mkdtemp();
    char *path = tu_path(g_dir, "big.semb");
    const int64_t n = 1 << 20; // 4 MiB of f32
    float *v = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) v[i] = (float)(i % 9973) * 0.5f;
    struct sembed_writer *w;
    cr_assert_eq(sembed_writer_create(path, &w), 0);
    cr_assert_eq(sembed_writer_add_str(w, "general.architecture", "bert"), 0);
    cr_assert_eq(sembed_writer_add_tensor(w, "w", SEMBED_DTYPE_F32, 1, &n), 0);
    cr_assert_eq(sembed_writer_write(w, v, (size_t)n * 4), 0);
    cr_assert_eq(sembed_writer_finish(w), 0);
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(path, &f), 0);
    struct sembed_tensor t;
    cr_assert_eq(sembed_file_find_tensor(f, "w", &t), 0);
    volatile float sink = 0;
    for (int64_t i = 0; i < n; i += 1024) sink += ((const float *)t.data)[i]; // fault every page in
    long before = mapping_rss_kb(path);
    sembed_file_release(f, t.data, t.nbytes);
    long after = mapping_rss_kb(path);
    cr_expect(before >= 4000, "mapping resident before release: %ld KiB", before);
    cr_expect(after >= 0 && after <= before - 4000, "release must drop ~4 MiB: %ld -> %ld KiB", before, after);
    cr_expect_eq(memcmp(t.data, v, (size_t)n * 4), 0, "bytes read back unchanged after release");
    sembed_file_release(f, v, 16);                 // not in the file: ignored
    sembed_file_release(f, t.data, t.nbytes * 4);  // runs past the end: ignored
    sembed_file_release(NULL, t.data, 16);
    cr_expect_eq(memcmp(t.data, v, (size_t)n * 4), 0);
    sembed_file_free(f);
    // a file opened from memory: no-op, bytes stay
    size_t len;
    char *raw = tu_read_file(path, &len);
    cr_assert_not_null(raw);
    char *buf = aligned_alloc(64, (len + 63) / 64 * 64);
    memcpy(buf, raw, len);
    free(raw);
    cr_assert_eq(sembed_file_open_memory(buf, len, &f), 0);
    cr_assert_eq(sembed_file_find_tensor(f, "w", &t), 0);
    sembed_file_release(f, t.data, t.nbytes);
    cr_expect_eq(memcmp(t.data, v, (size_t)n * 4), 0);
    sembed_file_free(f);
    free(buf);
    free(v);
    free(path);
}

// ---------------------------------------------------------------- string arrays, raw bytes, lookups

struct walk_arg {
    const struct sembed_file *f;
    int64_t kv;
    const char *got[5];
    int rc;
};

static void *walk_vocab(void *p) {
    struct walk_arg *a = p;
    for (uint64_t i = 0; i < 5 && !a->rc; i++) a->rc = sembed_file_kv_arr_str(a->f, a->kv, i, &a->got[i], NULL);
    return NULL;
}

// The per-element index of a string array is built on first use; concurrent first uses agree.
Test(semb, string_array_index_built_once_across_threads) {
    char *path = write_sample(0);
    for (int round = 0; round < 20; round++) {
        struct sembed_file *f;
        cr_assert_eq(sembed_file_open(path, &f), 0);
        struct walk_arg a[4];
        pthread_t th[4];
        for (int k = 0; k < 4; k++) {
            a[k] = (struct walk_arg){.f = f, .kv = sembed_file_find_kv(f, "t.vocab")};
            cr_assert_eq(pthread_create(&th[k], NULL, walk_vocab, &a[k]), 0);
        }
        for (int k = 0; k < 4; k++) pthread_join(th[k], NULL);
        static const char *const want[5] = {"[PAD]", "[UNK]", "##ing", "\xc3\xa9t\xc3\xa9", ""};
        for (int k = 0; k < 4; k++) {
            cr_assert_eq(a[k].rc, 0, "thread %d: %s", k, sembed_strerror(a[k].rc));
            for (int i = 0; i < 5; i++) {
                cr_assert_str_eq(a[k].got[i], want[i], "thread %d element %d: '%s'", k, i, a[k].got[i]);
                cr_assert(a[k].got[i] == a[0].got[i], "thread %d element %d: another copy", k, i);
            }
        }
        sembed_file_free(f);
    }
    free(path);
}

Test(semb, array_bytes_are_the_stored_encoding) {
    char *path = write_sample(0);
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(path, &f), 0);
    const void *data = NULL;
    uint64_t nb = 0;
    // strings: u64 n | bytes | NUL, back to back
    cr_assert_eq(sembed_file_kv_arr_bytes(f, sembed_file_find_kv(f, "t.vocab"), &data, &nb), 0);
    static const char *const want[5] = {"[PAD]", "[UNK]", "##ing", "\xc3\xa9t\xc3\xa9", ""};
    const uint8_t *p = data;
    uint64_t pos = 0;
    for (int i = 0; i < 5; i++) {
        uint64_t n;
        memcpy(&n, p + pos, 8);
        cr_assert_eq(n, strlen(want[i]), "element %d length %llu", i, (unsigned long long)n);
        cr_assert_eq(memcmp(p + pos + 8, want[i], n + 1), 0, "element %d bytes", i);
        pos += 9 + n;
    }
    cr_assert_eq(nb, pos, "string array bytes: expected %llu, got %llu", (unsigned long long)pos, (unsigned long long)nb);
    cr_assert_eq(sembed_file_kv_arr_bytes(f, sembed_file_find_kv(f, "t.f32s"), &data, &nb), 0);
    cr_assert_eq(nb, 12);
    float fa[3];
    memcpy(fa, data, 12);
    cr_assert(fa[0] == 1.5f && fa[1] == -2.0f && isinf(fa[2]));
    cr_assert_eq(sembed_file_kv_arr_bytes(f, sembed_file_find_kv(f, "t.nostr"), &data, &nb), 0);
    cr_assert_eq(nb, 0);
    cr_assert_eq(sembed_file_kv_arr_bytes(f, sembed_file_find_kv(f, "t.u32"), &data, &nb), SEMBED_ETYPE);
    cr_assert_eq(sembed_file_kv_arr_bytes(f, -1, &data, &nb), SEMBED_ENOTFOUND);
    sembed_file_free(f);
    free(path);
}

// Each element of a string array is checked at open like any string, wherever it sits.
Test(semb, every_string_array_element_validated) {
    static const char *const items[] = {"a", "bcdefgh", "ijklmnopqrstuvwxyz", "\xe4\xb8\xad", "zz"};
    for (int victim = 0; victim < 5; victim++)
        for (int how = 0; how < 3; how++) {
            struct rb b = {0};
            rb_put(&b, "SEMB", 4);
            rb_u32(&b, 1);
            rb_u32(&b, 0x01020304u);
            rb_u32(&b, 0);
            rb_u64(&b, 1);
            rb_u64(&b, 0);
            rb_u64(&b, 0);
            rb_u64(&b, 0);
            rb_u64(&b, 0);
            rb_str(&b, "t.arr");
            rb_u32(&b, 12);
            rb_u32(&b, 11);
            rb_u64(&b, 5);
            size_t at = 0;
            for (int i = 0; i < 5; i++) {
                if (i == victim) at = b.n + 8;
                rb_str(&b, items[i]);
            }
            size_t n = strlen(items[victim]);
            int want;
            if (how == 0) { b.p[at + n] = 'x'; want = SEMBED_ECORRUPT; }     // terminator overwritten
            else if (how == 1) { b.p[at] = 0xff; want = SEMBED_EUTF8; }      // invalid UTF-8 byte
            else { b.p[at + n - 1] = 0; want = SEMBED_EUTF8; }              // NUL inside the string
            uint64_t dir_end = b.n, data_off = (dir_end + 8 + 63) / 64 * 64;
            memcpy(b.p + 32, &dir_end, 8);
            memcpy(b.p + 40, &data_off, 8);
            uint64_t h = XXH3_64bits(b.p, dir_end);
            rb_u64(&b, h);
            uint8_t *buf = aligned_alloc(64, data_off);
            memset(buf, 0, data_off);
            memcpy(buf, b.p, b.n);
            free(b.p);
            int rc = open_raw(buf, data_off);
            if (how == 0 && victim == 4) want = SEMBED_ECORRUPT; // the last one then runs into the checksum
            cr_expect_eq(rc, want, "element %d, damage %d: expected %s, got %s", victim, how, sembed_strerror(want),
                         sembed_strerror(rc));
            free(buf);
        }
}

// Tensors laid out out of directory order are fine; overlap is still caught whatever the order.
Test(semb, tensors_in_any_order_and_lookup_by_name) {
    struct rt ts[3] = {{"c", 0, 1, {16}, 128, 64}, {"a", 0, 1, {16}, 0, 64}, {"b", 0, 1, {16}, 64, 64}};
    size_t len;
    uint8_t *buf = raw_file(ts, 3, 192, &len, 1, 3);
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open_memory(buf, len, &f), 0);
    for (int i = 0; i < 3; i++) {
        struct sembed_tensor t;
        cr_assert_eq(sembed_file_find_tensor(f, ts[i].name, &t), 0);
        cr_assert_str_eq(t.name, ts[i].name);
        cr_assert_eq(t.offset, ts[i].offset);
        cr_assert_eq(sembed_file_tensor(f, i, &t), 0);
        cr_assert_str_eq(t.name, ts[i].name, "tensor %d in file order", i);
    }
    struct sembed_tensor t;
    cr_assert_eq(sembed_file_find_tensor(f, "d", &t), SEMBED_ENOTFOUND);
    cr_assert_eq(sembed_file_find_tensor(f, "", &t), SEMBED_ENOTFOUND);
    cr_assert_eq(sembed_file_find_kv(f, "general.architecture"), 0);
    cr_assert_eq(sembed_file_find_kv(f, "general.architecturf"), -1);
    sembed_file_free(f);
    free(buf);
    ts[0].offset = 64; // now c overlaps b, out of order
    buf = raw_file(ts, 3, 192, &len, 1, 3);
    cr_assert_eq(open_raw(buf, len), SEMBED_EOVERLAP);
    free(buf);
}

// sembed_writer_copy_kv: every type comes out with the same type and bytes.
Test(semb, copy_kv_preserves_every_type) {
    char *path = write_sample(0);
    char *out = tu_path(g_dir, "copy.semb");
    struct sembed_file *f, *g;
    cr_assert_eq(sembed_file_open(path, &f), 0);
    struct sembed_writer *w;
    cr_assert_eq(sembed_writer_create(out, &w), 0);
    for (int64_t i = 0; i < sembed_file_n_kv(f); i++) cr_assert_eq(sembed_writer_copy_kv(w, f, i), 0, "kv %lld", (long long)i);
    cr_assert_eq(sembed_writer_copy_kv(w, f, sembed_file_n_kv(f)), SEMBED_ENOTFOUND);
    cr_assert_eq(sembed_writer_finish(w), 0);
    cr_assert_eq(sembed_file_open(out, &g), 0);
    cr_assert_eq(sembed_file_n_kv(g), sembed_file_n_kv(f));
    for (int64_t i = 0; i < sembed_file_n_kv(f); i++) {
        const char *k = sembed_file_kv_key(f, i);
        cr_assert_str_eq(sembed_file_kv_key(g, i), k);
        enum sembed_type t = sembed_file_kv_type(f, i);
        cr_assert_eq(sembed_file_kv_type(g, i), t, "%s: type", k);
        const void *a, *b;
        uint64_t na, nb;
        if (t == SEMBED_TYPE_ARRAY) {
            enum sembed_type ea, eb;
            uint64_t ca, cb;
            cr_assert_eq(sembed_file_kv_array_info(f, i, &ea, &ca), 0);
            cr_assert_eq(sembed_file_kv_array_info(g, i, &eb, &cb), 0);
            cr_assert(ea == eb && ca == cb, "%s: element type or count", k);
            cr_assert_eq(sembed_file_kv_arr_bytes(f, i, &a, &na), 0);
            cr_assert_eq(sembed_file_kv_arr_bytes(g, i, &b, &nb), 0);
        } else if (t == SEMBED_TYPE_STRING) {
            const char *sa, *sb;
            cr_assert_eq(sembed_file_get_str(f, k, &sa, &na), 0);
            cr_assert_eq(sembed_file_get_str(g, k, &sb, &nb), 0);
            a = sa;
            b = sb;
        } else {
            a = sembed_file_kv_data(f, i);
            b = sembed_file_kv_data(g, i);
            na = nb = (t == SEMBED_TYPE_U8 || t == SEMBED_TYPE_I8 || t == SEMBED_TYPE_BOOL) ? 1
                      : (t == SEMBED_TYPE_U16 || t == SEMBED_TYPE_I16) ? 2
                      : (t == SEMBED_TYPE_U32 || t == SEMBED_TYPE_I32 || t == SEMBED_TYPE_F32) ? 4 : 8;
        }
        cr_assert(na == nb && (na == 0 || memcmp(a, b, (size_t)na) == 0), "%s: bytes differ", k);
    }
    sembed_file_free(g);
    sembed_file_free(f);
    free(out);
    free(path);
}
