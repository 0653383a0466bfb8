// Error paths of the parsers that fuzzing reaches only by luck or not at all (issue 20: what
// tools/coverage.sh lists as unreached under the corpora): file-system conditions (a folder where a
// file is expected, an empty or oversized file), lengths beyond what a fuzzer feeds, JSON values of
// the wrong type, and the defensive checks of the tokenizer-index scan on raw bytes that a .semb
// file can never present (its vocabulary is validated at open). Each test names the status and the
// log line it expects and prints what it got.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/jsonx.h"
#include "formats/onnx.h"
#include "formats/semb_tokindex.h"
#include "sembed/common.h"
#include "testutil.h"

static char g_log[8192];
static void capture(enum sembed_log_level lvl, const char *msg, void *ud) {
    (void)lvl;
    (void)ud;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", msg);
}
static void log_reset(void) { g_log[0] = 0; sembed_log_set(capture, NULL); }

#define EXPECT_RC(got, want, needle, what)                                                                         \
    do {                                                                                                           \
        int rc_ = (got);                                                                                           \
        cr_expect(rc_ == (want), "%s: expected %d (%s), got %d (%s); log:\n%s", what, (want), sembed_strerror(want), \
                  rc_, sembed_strerror(rc_), g_log);                                                               \
        const char *nd_ = (needle);                                                                                \
        if (nd_) cr_expect(strstr(g_log, nd_) != NULL, "%s: the log should say \"%s\"; log:\n%s", what, nd_, g_log);     \
    } while (0)

/* ---------------------------------------------------------------- formats/jsonx.c */

Test(parser_errors, json_files) {
    char *dir = tu_mkdtemp();
    char *big = tu_path(dir, "big.json"), *bom = tu_path(dir, "bom.json"), *sub = tu_path(dir, "sub.json");
    struct json_object *o = NULL;
    log_reset();
    EXPECT_RC(sj_load_file(big, 1024, &o), SEMBED_ENOTFOUND, NULL, "a missing file");
    cr_expect(o == NULL);
    cr_assert_eq(mkdir(sub, 0700), 0);
    log_reset();
    EXPECT_RC(sj_load_file(sub, 1024, &o), SEMBED_EIO, "not a regular file", "a folder named .json");
    char text[2048];
    memset(text, ' ', sizeof text);
    memcpy(text, "{\"a\": 1}", 8);
    cr_assert_eq(tu_write_file(big, text, sizeof text), 0);
    log_reset();
    EXPECT_RC(sj_load_file(big, 1024, &o), SEMBED_ETOOLONG, "more than the 1024 allowed", "2048 bytes against a 1024 limit");
    log_reset();
    EXPECT_RC(sj_load_file(big, 2048, &o), SEMBED_OK, NULL, "the same file at its exact size");
    json_object_put(o);
    cr_assert_eq(tu_write_file(bom, "\xef\xbb\xbf{\"b\": true}", 14), 0);
    log_reset();
    EXPECT_RC(sj_load_file(bom, 1024, &o), SEMBED_OK, NULL, "a UTF-8 byte-order mark");
    bool b = false;
    cr_expect(o && sj_get_bool(o, "b", &b) == 0 && b, "value after the BOM: expected b = true");
    json_object_put(o);
    free(big);
    free(bom);
    free(sub);
    tu_rmtree(dir);
    free(dir);
}

Test(parser_errors, json_parse_limits) {
    struct json_object *o = NULL;
    static const char small[] = "{}";
    log_reset();
    // The length is checked before a byte is read: a fake length past INT32_MAX is safe here.
    EXPECT_RC(sj_parse(small, (size_t)INT32_MAX + 1, "huge", &o), SEMBED_ETOOLONG, "too large", "2^31 bytes of JSON");
    log_reset();
    EXPECT_RC(sj_parse("{} x", 4, "trailing", &o), SEMBED_EPARSE, "unexpected bytes after the JSON value at byte 3",
              "bytes after the value");
    log_reset();
    EXPECT_RC(sj_parse("{} \n\t\r", 6, "ws", &o), SEMBED_OK, NULL, "only whitespace after the value");
    json_object_put(o);
}

Test(parser_errors, json_typed_getters) {
    struct json_object *o = NULL;
    static const char js[] = "{\"i\": 7, \"d\": 512.0, \"big\": 1e30, \"frac\": 1.5, \"s\": \"x\", \"n\": null, \"b\": false, \"neg\": -1e30}";
    cr_assert_eq(sj_parse(js, sizeof js - 1, "getters", &o), 0);
    int64_t v = 0;
    double d = 0;
    bool b = true;
    const char *s = NULL;
    log_reset();
    cr_expect(sj_get_int(o, "i", &v) == 0 && v == 7, "i: expected 7, got %lld", (long long)v);
    cr_expect(sj_get_int(o, "d", &v) == 0 && v == 512, "512.0 is an integer: got %lld", (long long)v);
    cr_expect(sj_get_int(o, "big", &v) == 0 && v == INT64_MAX, "1e30 saturates to INT64_MAX: got %lld", (long long)v);
    EXPECT_RC(sj_get_int(o, "frac", &v), SEMBED_ETYPE, "JSON key \"frac\": expected an integer, found double", "1.5 as an integer");
    EXPECT_RC(sj_get_int(o, "neg", &v), SEMBED_ETYPE, "\"neg\"", "-1e30 as an integer");
    EXPECT_RC(sj_get_int(o, "s", &v), SEMBED_ETYPE, "found string", "a string as an integer");
    EXPECT_RC(sj_get_int(o, "n", &v), SEMBED_ENOTFOUND, NULL, "null");
    EXPECT_RC(sj_get_int(o, "absent", &v), SEMBED_ENOTFOUND, NULL, "an absent key");
    cr_expect(sj_get_num(o, "i", &d) == 0 && d == 7.0, "an integer as a number: got %g", d);
    EXPECT_RC(sj_get_num(o, "s", &d), SEMBED_ETYPE, "expected a number", "a string as a number");
    EXPECT_RC(sj_get_num(o, "absent", &d), SEMBED_ENOTFOUND, NULL, "an absent number");
    cr_expect(sj_get_bool(o, "b", &b) == 0 && !b, "b: expected false");
    EXPECT_RC(sj_get_bool(o, "i", &b), SEMBED_ETYPE, "expected a boolean, found int", "an integer as a boolean");
    EXPECT_RC(sj_get_bool(o, "n", &b), SEMBED_ENOTFOUND, NULL, "null as a boolean");
    cr_expect(sj_get_str(o, "s", &s) == 0 && s && !strcmp(s, "x"), "s: expected \"x\"");
    EXPECT_RC(sj_get_str(o, "b", &s), SEMBED_ETYPE, "expected a string, found boolean", "a boolean as a string");
    EXPECT_RC(sj_get_str(o, "absent", &s), SEMBED_ENOTFOUND, NULL, "an absent string");
    cr_expect(sj_get(NULL, "i") == NULL && sj_get(sj_get(o, "s"), "i") == NULL, "sj_get on NULL or a non-object");
    json_object_put(o);
}

/* ---------------------------------------------------------------- formats/onnx.c */

Test(parser_errors, onnx_files) {
    char *dir = tu_mkdtemp();
    char *empty = tu_path(dir, "empty.onnx"), *folder = tu_path(dir, "folder.onnx"), *missing = tu_path(dir, "missing.onnx");
    struct so_onnx *m = NULL;
    log_reset();
    EXPECT_RC(so_onnx_open(missing, &m), SEMBED_EIO, "cannot open", "a missing model");
    cr_assert_eq(mkdir(folder, 0700), 0);
    log_reset();
    EXPECT_RC(so_onnx_open(folder, &m), SEMBED_EIO, "not a regular file", "a folder named .onnx");
    cr_assert_eq(tu_write_file(empty, "", 0), 0);
    log_reset();
    EXPECT_RC(so_onnx_open(empty, &m), SEMBED_ETRUNCATED, "empty file", "an empty .onnx");
    cr_expect(m == NULL, "no model object after a failed open");
    log_reset();
    // The 2 GiB limit is checked before a byte is read.
    EXPECT_RC(so_onnx_open_memory("", (size_t)SO_ONNX_MAX_FILE + 1, NULL, NULL, &m), SEMBED_ETOOLONG, "2 GiB limit",
              "a buffer over protobuf's 2 GiB");
    free(empty);
    free(folder);
    free(missing);
    tu_rmtree(dir);
    free(dir);
}

/* ---------------------------------------------------------------- formats/semb_tokindex.c */

// Strings back to back as a .semb string array stores them (u64 n | n bytes | NUL), offsets beside.
static size_t put_strings(uint8_t *v, uint8_t *off, const char *const *s, int n) {
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(s[i]);
        if (off) semb_wr32(off + 4 * i, (uint32_t)pos);
        semb_wr64(v + pos, l);
        memcpy(v + pos + 8, s[i], l + 1);
        pos += 9 + l;
    }
    return pos;
}

Test(parser_errors, tokindex_scan_raw_bytes) {
    static const char *const toks[] = {"[UNK]", "##ab", "cd"};
    uint8_t v[128], off[16], out[16];
    memset(v, 0, sizeof v);
    const size_t vb = put_strings(v, off, toks, 3);
    struct semb_tokidx_stats st;
    const char *why = NULL;
    // the well-formed array, both ways: offsets checked and offsets written
    cr_expect(semb_tokidx_scan(v, vb, 3, off, NULL, "##", 2, &st, &why) == 0 && st.n_cont == 1 && st.max_all == 5 &&
                  st.max_cont == 2, "good offsets: got %s, n_cont %u, max %llu/%llu", why, st.n_cont,
              (unsigned long long)st.max_all, (unsigned long long)st.max_cont);
    cr_expect(semb_tokidx_scan(v, vb, 3, NULL, out, "##", 2, &st, &why) == 0 && !memcmp(out, off, 12), "offsets written");
    // checked offsets (off_in only): one more token than the bytes hold, a length past the end,
    // bytes after the last token
    uint8_t off4[16];
    memcpy(off4, off, 12);
    semb_wr32(off4 + 12, (uint32_t)vb);
    cr_expect(semb_tokidx_scan(v, vb, 4, off4, NULL, "##", 2, &st, &why) == 4 && strstr(why, "runs past the end"),
              "4 tokens in 3 strings: expected 4 (token 3) runs past the end, got '%s'", why);
    uint8_t w[128];
    memcpy(w, v, sizeof w);
    semb_wr64(w + 9 + 5, 1000); // token 1 claims 1000 bytes
    cr_expect(semb_tokidx_scan(w, vb, 3, off, NULL, "##", 2, &st, &why) == 2 && strstr(why, "runs past the end"),
              "a length past the end: expected 2, got '%s'", why);
    cr_expect(semb_tokidx_scan(v, vb + 1, 3, off, NULL, "##", 2, &st, &why) == 4 && strstr(why, "bytes remain"),
              "one byte after the last token: expected 4 (n + 1) bytes remain, got '%s'", why);
    cr_expect(semb_tokidx_scan(v, 8, 1, off, NULL, "##", 2, &st, &why) == 1 && strstr(why, "runs past the end"),
              "an array shorter than one string header: got '%s'", why);
    // walked (no stored offsets): the same defects, and checked offsets while writing
    cr_expect(semb_tokidx_scan(w, vb, 3, NULL, out, "##", 2, &st, &why) == 2 && strstr(why, "runs past the end"),
              "walk, a length past the end: got '%s'", why);
    cr_expect(semb_tokidx_scan(v, vb + 1, 3, NULL, out, "##", 2, &st, &why) == 4 && strstr(why, "bytes remain"),
              "walk, one byte after the last token: got '%s'", why);
    cr_expect(semb_tokidx_scan(v, vb, 4, NULL, out, "##", 2, &st, &why) == 4 && strstr(why, "runs past the end"),
              "walk, 4 tokens in 3 strings: got '%s'", why);
    semb_wr32(off4 + 4, 7);
    cr_expect(semb_tokidx_scan(v, vb, 3, off4, out, "##", 2, &st, &why) == 2 && strstr(why, "not where"),
              "walk with stored offsets, token 1 misplaced: expected 2, got '%s'", why);
    cr_expect(semb_tokidx_cap(0) == 0 && semb_tokidx_cap(1) == 16 && semb_tokidx_cap(9) == 32 &&
                  semb_tokidx_cap(SIZE_MAX / 2) == SIZE_MAX, "capacities: 0, 16, 32, SIZE_MAX");
}
