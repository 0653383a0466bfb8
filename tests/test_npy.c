// formats/npy.c: files written by NumPy itself (the fuzz seeds, made with np.save and
// numpy.lib.format.write_array v2.0/v3.0), hand-made headers for each rule, every truncation
// point and bit flips of a valid file (must fail cleanly or parse to a self-consistent array).
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"
#include "sembed/common.h"
#include "testutil.h"

static char last_msg[1024];
static void capture(enum sembed_log_level l, const char *m, void *u) {
    (void)l; (void)u;
    snprintf(last_msg, sizeof last_msg, "%s", m);
}
static void setup(void) { sembed_log_set(capture, NULL); }

static unsigned char *seed(const char *name, size_t *len) {
    char p[4200];
    snprintf(p, sizeof p, "%s/tests/fuzz/corpus/npy/%s", tu_source_dir(), name);
    unsigned char *b = tu_read_file(p, len);
    cr_assert(b, "cannot read %s", p);
    return b;
}

// A v1.0 file from a dict text (padded as NumPy pads) and n data bytes of 0x3f.
static unsigned char *make(const char *dict, size_t ndata, size_t *len) {
    size_t dl = strlen(dict), total = 10 + dl + 1, pad = (64 - total % 64) % 64, hl = dl + pad + 1;
    *len = 10 + hl + ndata;
    unsigned char *b = malloc(*len + 1);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (unsigned char)(hl & 0xff);
    b[9] = (unsigned char)(hl >> 8);
    memcpy(b + 10, dict, dl);
    memset(b + 10 + dl, ' ', pad);
    b[10 + dl + pad] = '\n';
    memset(b + 10 + hl, 0x3f, ndata);
    return b;
}

Test(npy, numpy_files_parse, .init = setup) {
    size_t len;
    unsigned char *b = seed("f32_3x4.npy", &len);
    struct npy_array a;
    cr_assert_eq(npy_f32_matrix(b, len, "f32_3x4", &a), 0, "%s", last_msg);
    cr_expect_eq(a.n_dims, 2u);
    cr_expect(a.dims[0] == 3 && a.dims[1] == 4, "shape: expected (3, 4) got (%llu, %llu)", (unsigned long long)a.dims[0],
              (unsigned long long)a.dims[1]);
    cr_expect_eq(a.data_offset % 64, 0u, "NumPy aligns data to 64 bytes, offset %zu", a.data_offset);
    for (int i = 0; i < 12; i++) {
        float v;
        memcpy(&v, (const unsigned char *)a.data + 4 * i, 4);
        cr_expect_eq(v, (float)i, "element %d: expected %d got %g", i, i, (double)v);
    }
    free(b);
    b = seed("f32_v2.npy", &len);
    cr_expect_eq(npy_f32_matrix(b, len, "v2", &a), 0, "%s", last_msg);
    cr_expect_eq(a.major, 2);
    free(b);
    b = seed("f32_0x5.npy", &len);
    cr_expect_eq(npy_f32_matrix(b, len, "0x5", &a), 0, "%s", last_msg);
    cr_expect(a.dims[0] == 0 && a.dims[1] == 5 && a.numel == 0);
    free(b);
    b = seed("i8_scalar.npy", &len);
    cr_expect_eq(npy_parse(b, len, "scalar", &a), 0, "%s", last_msg);
    cr_expect(a.n_dims == 0 && a.numel == 1 && a.itemsize == 1);
    free(b);
    b = seed("f64_2.npy", &len);
    cr_expect_eq(npy_parse(b, len, "f64", &a), 0, "%s", last_msg);
    cr_expect(a.n_dims == 1 && a.dims[0] == 2 && a.itemsize == 8);
    free(b);
}

static void expect_err(const char *file, int want_rc, const char *want_msg, int (*fn)(const void *, size_t, const char *, struct npy_array *)) {
    size_t len;
    unsigned char *b = seed(file, &len);
    struct npy_array a;
    last_msg[0] = 0;
    int rc = fn(b, len, file, &a);
    cr_expect_eq(rc, want_rc, "%s: expected %d got %d (%s)", file, want_rc, rc, last_msg);
    cr_expect(strstr(last_msg, want_msg), "%s: expected a message with '%s', got '%s'", file, want_msg, last_msg);
    free(b);
}

Test(npy, f32_matrix_rules_named, .init = setup) {
    expect_err("f64_2.npy", SEMBED_EDTYPE, "dtype '<f8': expected '<f4'", npy_f32_matrix);
    expect_err("bef4_v3.npy", SEMBED_EDTYPE, "dtype '>f4'", npy_f32_matrix);
    expect_err("f32_fortran.npy", SEMBED_EUNSUPPORTED, "fortran_order is True", npy_f32_matrix);
    expect_err("i8_scalar.npy", SEMBED_EDTYPE, "'|i1'", npy_f32_matrix);
}

static void hdr_case(const char *dict, size_t ndata, int want_rc, const char *want_msg) {
    size_t len;
    unsigned char *b = make(dict, ndata, &len);
    struct npy_array a;
    last_msg[0] = 0;
    int rc = npy_parse(b, len, "h", &a);
    cr_expect_eq(rc, want_rc, "%s: expected rc %d got %d (%s)", dict, want_rc, rc, last_msg);
    if (want_msg) cr_expect(strstr(last_msg, want_msg), "%s: expected a message with '%s', got '%s'", dict, want_msg, last_msg);
    free(b);
}

Test(npy, header_rules, .init = setup) {
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24, 0, NULL);
    hdr_case("{\"shape\": (2, 3), \"descr\": \"<f4\", \"fortran_order\": False}", 24, 0, NULL); // any order, "quotes"
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 16, 0, NULL);
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (4), }", 16, SEMBED_EPARSE, "1-tuple");
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 23, SEMBED_ETRUNCATED, "needs 24 data bytes");
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 25, SEMBED_ECORRUPT, "needs 24 data bytes");
    hdr_case("{'descr': '<f4', 'fortran_order': False}", 0, SEMBED_EPARSE, "lacks key 'shape'");
    hdr_case("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4, SEMBED_EPARSE, "duplicate key 'descr'");
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", 4, SEMBED_EPARSE, "unexpected key 'extra'");
    hdr_case("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", 4, SEMBED_EPARSE, "True or False");
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2)}", 0, SEMBED_EPARSE, "non-negative integer");
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 2)}", 0, SEMBED_EPARSE, "overflows");
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", 0, SEMBED_ECORRUPT, "overflows");
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}", 4, SEMBED_EPARSE, "too many dimensions");
    hdr_case("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", 4, SEMBED_EPARSE, "structured");
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x", 4, SEMBED_EPARSE, "after the dictionary");
    hdr_case("{'descr': '<f4\\n', 'fortran_order': False, 'shape': (1,)}", 4, SEMBED_EPARSE, "unsupported character");
    hdr_case("{'descr': 'f', 'fortran_order': False, 'shape': (1,)}", 4, SEMBED_EDTYPE, "no item size");
    hdr_case("{'descr': '<f4', 'fortran_order': False, 'shape': (01,)}", 4, SEMBED_EPARSE, "leading zero");
}

Test(npy, magic_version_length, .init = setup) {
    size_t len;
    unsigned char *b = seed("f32_3x4.npy", &len);
    struct npy_array a;
    unsigned char *c = malloc(len);
    memcpy(c, b, len);
    c[1] = 'X';
    cr_expect_eq(npy_parse(c, len, "m", &a), SEMBED_EMAGIC);
    memcpy(c, b, len);
    c[6] = 9;
    cr_expect_eq(npy_parse(c, len, "v", &a), SEMBED_EVERSION);
    cr_expect(strstr(last_msg, "version 9.0"), "got '%s'", last_msg);
    memcpy(c, b, len);
    c[8] = 0xff; c[9] = 0xff; // header longer than the file
    cr_expect_eq(npy_parse(c, len, "l", &a), SEMBED_ETRUNCATED);
    memcpy(c, b, len);
    c[8] = (unsigned char)(c[8] - 1); // header no longer ends with '\n'
    cr_expect_neq(npy_parse(c, len, "n", &a), 0);
    free(c);
    free(b);
}

Test(npy, every_truncation_fails_cleanly, .init = setup) {
    size_t len;
    unsigned char *b = seed("f32_3x4.npy", &len);
    struct npy_array a;
    for (size_t n = 0; n < len; n++) {
        unsigned char *c = malloc(n ? n : 1); // exact-size copy: ASan sees any overread
        memcpy(c, b, n);
        int rc = npy_parse(c, n, "t", &a);
        cr_expect_neq(rc, 0, "truncated to %zu of %zu bytes: expected a failure", n, len);
        free(c);
    }
    free(b);
}

Test(npy, bit_flips_fail_or_stay_consistent, .init = setup) {
    size_t len;
    unsigned char *b = seed("f32_3x4.npy", &len);
    struct npy_array a;
    int ok = 0, failed = 0;
    for (size_t i = 0; i < 10 + 118; i++)
        for (int bit = 0; bit < 8; bit++) {
            unsigned char *c = malloc(len);
            memcpy(c, b, len);
            c[i] ^= (unsigned char)(1u << bit);
            if (npy_parse(c, len, "f", &a) == 0) {
                ok++;
                cr_expect_eq(a.data_offset + a.numel * a.itemsize, len, "flip %zu.%d: parsed sizes disagree with the file", i, bit);
            } else {
                failed++;
            }
            free(c);
        }
    printf("[npy bit flips] %d parsed (e.g. a space became another space-like byte), %d refused\n", ok, failed);
    cr_expect_gt(failed, 0);
    free(b);
}
