// safetensors reader: valid files, every structural lie refused, every truncation and bit flip
// handled without a crash.
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "sembed/common.h"
#include "testutil.h"

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

// header JSON + data bytes -> file image (heap).
static uint8_t *make(const char *json, size_t data_len, size_t *len) {
    size_t hl = strlen(json);
    uint8_t *b = malloc(8 + hl + data_len);
    uint64_t h = hl;
    memcpy(b, &h, 8);
    memcpy(b + 8, json, hl);
    for (size_t i = 0; i < data_len; i++) b[8 + hl + i] = (uint8_t)i;
    *len = 8 + hl + data_len;
    return b;
}

static int parse(const char *json, size_t data_len) {
    size_t len;
    uint8_t *b = make(json, data_len, &len);
    struct sf_file f;
    int rc = sf_parse(b, len, "t.safetensors", &f);
    if (rc == 0) sf_free(&f);
    free(b);
    return rc;
}

Test(safetensors, valid_file) {
    size_t len;
    uint8_t *b = make("{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[24,28]},"
                      "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}  ", 28, &len);
    struct sf_file f;
    int rc = sf_parse(b, len, "t", &f);
    cr_assert_eq(rc, 0, "rc %d", rc);
    cr_assert_eq(f.n, 2);
    long a = sf_find(&f, "a"), bb = sf_find(&f, "b");
    cr_assert(a >= 0 && bb >= 0);
    cr_assert_eq(f.t[a].dtype, SF_F32);
    cr_assert_eq(f.t[a].n_dims, 2);
    cr_assert_eq(f.t[a].dims[1], 3);
    cr_assert_eq(f.t[a].nbytes, 24);
    cr_assert_eq((const uint8_t *)f.t[bb].data - b, (long)(8 + f.header_len + 24));
    sf_free(&f);
    free(b);
}

Test(safetensors, structural_lies_refused) {
    sembed_log_set(quiet, NULL);
    struct { const char *json; size_t data; int rc; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, SEMBED_EBOUNDS},      // past the end
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, SEMBED_EDIMS},       // size lies
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, SEMBED_EOVERLAP},              // overlap
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, SEMBED_ECORRUPT},    // hole before
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, SEMBED_ECORRUPT},     // hole after
        {"{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, SEMBED_EDTYPE},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, SEMBED_EDIMS},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}", 8, SEMBED_EDIMS},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, SEMBED_EBOUNDS},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, SEMBED_EPARSE},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"x\":1}}", 8, SEMBED_EPARSE},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}} x", 8, SEMBED_EPARSE},       // trailing junk
        {"[1,2]", 0, SEMBED_EPARSE},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.5]}}", 8, SEMBED_EBOUNDS},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,18446744073709551615]}}", 8, SEMBED_EBOUNDS},
        {"{\"__metadata__\":{\"k\":1}}", 0, SEMBED_EPARSE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse(cases[i].json, cases[i].data);
        cr_expect_eq(rc, cases[i].rc, "case %zu (%s): got %s, expected %s", i, cases[i].json, sembed_strerror(rc), sembed_strerror(cases[i].rc));
    }
}

Test(safetensors, header_length_limits) {
    sembed_log_set(quiet, NULL);
    uint8_t b[16] = {0};
    struct sf_file f;
    uint64_t h = (uint64_t)1 << 62;
    memcpy(b, &h, 8);
    cr_assert_eq(sf_parse(b, sizeof b, "t", &f), SEMBED_ETOOLONG);
    h = 9; // more than the 8 bytes that follow
    memcpy(b, &h, 8);
    cr_assert_eq(sf_parse(b, sizeof b, "t", &f), SEMBED_ETRUNCATED);
    cr_assert_eq(sf_parse(b, 7, "t", &f), SEMBED_ETRUNCATED);
}

Test(safetensors, every_truncation_and_bit_flip_is_handled) {
    sembed_log_set(quiet, NULL);
    size_t len;
    uint8_t *b = make("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                      "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]}}", 22, &len);
    struct sf_file f;
    for (size_t n = 0; n < len; n++) {
        uint8_t *c = malloc(n ? n : 1); // exact-size copy so ASan catches any over-read
        memcpy(c, b, n);
        int rc = sf_parse(c, n, "t", &f);
        cr_assert_neq(rc, 0, "truncation to %zu of %zu bytes accepted", n, len);
        free(c);
    }
    int accepted = 0;
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *c = malloc(len);
            memcpy(c, b, len);
            c[i] ^= (uint8_t)(1u << bit);
            if (sf_parse(c, len, "t", &f) == 0) {
                accepted++; // e.g. a flipped data byte or name letter: still a consistent file
                for (size_t k = 0; k < f.n; k++) cr_assert((const uint8_t *)f.t[k].data + f.t[k].nbytes <= c + len);
                sf_free(&f);
            }
            free(c);
        }
    cr_assert(accepted > 0 && accepted < (int)(8 * len));
    free(b);
}
