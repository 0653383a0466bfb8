// Tokenizer tests: unit behaviour, the 46 golden cases shipped with the vocab, every code point's
// class against HF tokenizers, and id-for-id parity with HF tokenizers (npm `tokenizers`) on a
// corpus built at test time from ../shared/data plus tests/tokenizer/hard_cases.txt.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <xxhash.h>

#include "runtime/tokenizer/compat.h"
#include "runtime/tokenizer/tokenizer_internal.h"
#include "runtime/tokenizer/unicode.h"
#include "sembed/semb.h"
#include "sembed/tokenizer.h"
#include "testutil.h"

/* ------------------------------------------------------------------ helpers */

struct vocab {
    char *buf;
    char **tok;
    size_t n;
};

// The bert-base-uncased vocabulary (vendored in data/, so always found in a checkout).
static char *vocab_path(void) {
    TU_DATA_FILE_OR_SKIP(p, "vocab/bert-base-uncased/vocab.txt");
    return p;
}

// vocab.txt: token i = line i without its '\n'.
static int vocab_load(struct vocab *v) {
    char *p = vocab_path();
    size_t len = 0;
    v->buf = tu_read_file(p, &len);
    free(p);
    if (!v->buf) return -1;
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += v->buf[i] == '\n';
    v->tok = malloc((lines + 1) * sizeof *v->tok);
    v->n = 0;
    char *s = v->buf;
    for (size_t i = 0; i < len; i++)
        if (v->buf[i] == '\n') { v->buf[i] = 0; v->tok[v->n++] = s; s = v->buf + i + 1; }
    if (s < v->buf + len) v->tok[v->n++] = s;
    return 0;
}

static void vocab_free(struct vocab *v) { free(v->buf); free(v->tok); }

static struct vocab g_vocab;

static struct sembed_tokenizer *make_tok(bool lower, bool strip) {
    if (!g_vocab.buf && vocab_load(&g_vocab) != 0) {
        char *p = vocab_path();
        cr_log_error("cannot read %s", p);
        free(p);
        return NULL;
    }
    struct sembed_tokenizer_params p = sembed_tokenizer_default_params();
    p.lowercase = lower;
    p.strip_accents = strip;
    struct sembed_tokenizer *t = NULL;
    int rc = sembed_tokenizer_create((const char *const *)g_vocab.tok, g_vocab.n, &p, &t);
    cr_assert_eq(rc, 0, "sembed_tokenizer_create: expected 0, got %d (%s)", rc, sembed_strerror(rc));
    return t;
}

static void fini_vocab(void) {
    vocab_free(&g_vocab);
    memset(&g_vocab, 0, sizeof g_vocab);
}

// Ids of text (no specials) as "a b c".
static char *ids_str(const struct sembed_tokenizer *t, const char *text, size_t len) {
    size_t n = 0;
    int rc = sembed_tokenizer_encode(t, text, len, NULL, 0, &n);
    cr_assert_eq(rc, 0, "encode (count): %s", sembed_strerror(rc));
    int32_t *ids = malloc((n + 1) * sizeof *ids);
    size_t n2 = 0;
    rc = sembed_tokenizer_encode(t, text, len, ids, n, &n2);
    cr_assert_eq(rc, 0, "encode: %s", sembed_strerror(rc));
    cr_assert_eq(n2, n, "count changed between calls: %zu then %zu", n, n2);
    char *s = malloc(n * 12 + 1);
    size_t k = 0;
    s[0] = 0;
    for (size_t i = 0; i < n; i++) k += (size_t)sprintf(s + k, i ? " %d" : "%d", ids[i]);
    free(ids);
    return s;
}

static char *tokens_str(const struct sembed_tokenizer *t, const char *text) {
    int32_t ids[256];
    size_t n = 0;
    cr_assert_eq(sembed_tokenizer_encode(t, text, SIZE_MAX, ids, 256, &n), 0);
    cr_assert_leq(n, 256);
    size_t cap = 1, k = 0;
    for (size_t i = 0; i < n; i++) cap += strlen(sembed_tokenizer_token(t, ids[i])) + 1;
    char *s = malloc(cap);
    s[0] = 0;
    for (size_t i = 0; i < n; i++) k += (size_t)sprintf(s + k, i ? " %s" : "%s", sembed_tokenizer_token(t, ids[i]));
    return s;
}

#define EXPECT_TOKENS(t, text, want)                                                                  \
    do {                                                                                              \
        char *got_ = tokens_str(t, text);                                                             \
        cr_expect_str_eq(got_, want, "tokens of \"%s\": expected [%s], got [%s]", text, want, got_); \
        free(got_);                                                                                   \
    } while (0)

/* ------------------------------------------------------------------ unit behaviour */

TestSuite(tokenizer, .fini = fini_vocab);

Test(tokenizer, special_ids_looked_up_by_string) {
    struct sembed_tokenizer *t = make_tok(true, true);
    cr_assert(t);
    cr_expect_eq(sembed_tokenizer_vocab_size(t), 30522, "vocab size: expected 30522, got %zu", sembed_tokenizer_vocab_size(t));
    cr_expect_eq(sembed_tokenizer_pad_id(t), 0, "pad: got %d", sembed_tokenizer_pad_id(t));
    cr_expect_eq(sembed_tokenizer_unk_id(t), 100, "unk: got %d", sembed_tokenizer_unk_id(t));
    cr_expect_eq(sembed_tokenizer_cls_id(t), 101, "cls: got %d", sembed_tokenizer_cls_id(t));
    cr_expect_eq(sembed_tokenizer_sep_id(t), 102, "sep: got %d", sembed_tokenizer_sep_id(t));
    cr_expect_eq(sembed_tokenizer_mask_id(t), 103, "mask: got %d", sembed_tokenizer_mask_id(t));
    cr_expect_str_eq(sembed_tokenizer_token(t, 2088), "world");
    cr_expect_eq(sembed_tokenizer_id(t, "##ing"), 2075, "##ing: got %d", sembed_tokenizer_id(t, "##ing"));
    cr_expect_eq(sembed_tokenizer_id(t, "notatoken-xyz"), -1);
    cr_expect_null(sembed_tokenizer_token(t, -1));
    cr_expect_null(sembed_tokenizer_token(t, 30522));
    sembed_tokenizer_free(t);
    sembed_tokenizer_free(NULL);
}

Test(tokenizer, basic_wordpiece_and_normalization) {
    struct sembed_tokenizer *t = make_tok(true, true);
    cr_assert(t);
    EXPECT_TOKENS(t, "Hello, World!", "hello , world !");
    EXPECT_TOKENS(t, "unaffable", "una ##ffa ##ble");
    EXPECT_TOKENS(t, "Café naïve", "cafe naive");
    EXPECT_TOKENS(t, "\xe4\xb8\x80\xe4\xba\x8c\xe4\xb8\x89", "\xe4\xb8\x80 \xe4\xba\x8c \xe4\xb8\x89"); // CJK split: 一二三
    EXPECT_TOKENS(t, "a\tb\nc\r\nd\xc2\xa0" "e", "a b c d e");
    EXPECT_TOKENS(t, "zero\xe2\x80\x8bwidth", "zero ##wi ##dt ##h");               // U+200B (Cf) dropped
    EXPECT_TOKENS(t, "", "");
    sembed_tokenizer_free(t);
    t = make_tok(false, false);
    cr_assert(t);
    EXPECT_TOKENS(t, "Hello", "[UNK]"); // cased input, uncased vocab
    EXPECT_TOKENS(t, "hello caf\xc3\xa9", "hello [UNK]"); // no strip_accents: 'café' is not in the vocab
    sembed_tokenizer_free(t);
}

Test(tokenizer, rust_lowercase_special_cases) {
    // HF lowercases char by char (Rust char::to_lowercase): capital sigma is always σ, and
    // U+0130 becomes i + U+0307 (dropped again when strip_accents runs first).
    uint32_t o[2];
    cr_expect_eq(tk_lower_rust(0x3A3, o), 1);
    cr_expect_eq(o[0], 0x3C3, "lower(Σ): expected U+03C3, got U+%04X", o[0]);
    cr_expect_eq(tk_lower_rust(0x130, o), 2);
    cr_expect(o[0] == 'i' && o[1] == 0x307, "lower(İ): expected i U+0307, got U+%04X U+%04X", o[0], o[1]);
    // Python's str.lower (pre_lowercase) uses Final_Sigma in context.
    uint32_t in[] = {0x39F, 0x394, 0x39F, 0x3A3, ' ', 0x3A3, 0x391, 0x3A3, '.'}, out[18];
    size_t n = tk_lower_python(in, 9, out);
    cr_assert_eq(n, 9);
    cr_expect_eq(out[3], 0x3C2, "ΟΔΟΣ: final sigma expected U+03C2, got U+%04X", out[3]);
    cr_expect_eq(out[5], 0x3C3, "word-initial Σ: expected U+03C3, got U+%04X", out[5]);
    cr_expect_eq(out[7], 0x3C2, "ΣΑΣ.: final sigma expected U+03C2, got U+%04X", out[7]);
}

struct words {
    char buf[4096];
    size_t len;
};

static int collect(void *ud, const char *w, size_t nb, size_t nchars) {
    (void)nchars;
    struct words *ws = ud;
    if (ws->len + nb + 2 >= sizeof ws->buf) return SEMBED_ENOMEM;
    if (ws->len) ws->buf[ws->len++] = '|';
    memcpy(ws->buf + ws->len, w, nb);
    ws->len += nb;
    ws->buf[ws->len] = 0;
    return 0;
}

Test(tokenizer, invalid_utf8_is_replaced_by_maximal_subparts) {
    // Unicode 15 section 3.9 examples: each maximal subpart becomes one U+FFFD.
    static const struct { const char *in; size_t len; size_t n_fffd; } cases[] = {
        {"\x80", 1, 1}, {"\xe2\x82", 2, 1}, {"\xf0\x9f\x98", 3, 1}, {"\xc0\xaf", 2, 2},
        {"\xe0\x80\xaf", 3, 3}, {"\xed\xa0\x80", 3, 3}, {"\xf4\x90\x80\x80", 4, 4}, {"\xf5", 1, 1},
        {"\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64", 13, 6}, // the standard's Table 3-8 example
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0, pos = 0;
        while (pos < cases[i].len) {
            uint32_t cp;
            size_t k = tk_utf8_decode((const uint8_t *)cases[i].in + pos, cases[i].len - pos, &cp);
            cr_assert(k >= 1 && k <= 4);
            pos += k;
            n += cp == 0xFFFD;
        }
        cr_expect_eq(n, cases[i].n_fffd, "case %zu: expected %zu U+FFFD, got %zu", i, cases[i].n_fffd, n);
    }
    // clean_text drops U+FFFD; without it the replacement characters stay in the words.
    struct sembed_tokenizer_params p = sembed_tokenizer_default_params();
    struct sembed_tokenizer *t = make_tok(true, true);
    cr_assert(t);
    struct words w = {{0}, 0};
    cr_assert_eq(tk_pretokenize(t, "ab\xe2\x82" "cd", 6, collect, &w), 0);
    cr_expect_str_eq(w.buf, "abcd");
    sembed_tokenizer_free(t);
    p.clean_text = false;
    cr_assert_eq(sembed_tokenizer_create((const char *const *)g_vocab.tok, g_vocab.n, &p, &t), 0);
    w.len = 0;
    cr_assert_eq(tk_pretokenize(t, "ab\xe2\x82" "cd", 6, collect, &w), 0);
    cr_expect_str_eq(w.buf, "ab\xef\xbf\xbd" "cd");
    sembed_tokenizer_free(t);
}

Test(tokenizer, long_words_become_unk) {
    struct sembed_tokenizer *t = make_tok(true, true);
    cr_assert(t);
    char w[512];
    memset(w, 'a', 100);
    w[100] = 0;
    char *s = ids_str(t, w, SIZE_MAX);
    cr_expect_neq(strcmp(s, "100"), 0, "100 chars must still be word-pieced, got %s", s);
    free(s);
    memset(w, 'a', 101);
    w[101] = 0;
    s = ids_str(t, w, SIZE_MAX);
    cr_expect_str_eq(s, "100", "101 chars: expected [UNK] (100), got %s", s);
    free(s);
    // 100 two-byte characters are 100 characters (not bytes): still word-pieced.
    for (int i = 0; i < 100; i++) memcpy(w + 2 * i, "\xc3\xa9", 2);
    w[200] = 0;
    s = ids_str(t, w, SIZE_MAX);
    cr_expect_neq(strcmp(s, "100"), 0, "100 x 'é' must be word-pieced, got %s", s);
    free(s);
    sembed_tokenizer_free(t);
}

Test(tokenizer, hostile_input_is_bounded) {
    struct sembed_tokenizer *t = make_tok(true, true);
    cr_assert(t);
    // 200k alternating combining marks of different classes after one base: must finish quickly
    // (no quadratic reordering) and not crash.
    size_t n = 200000;
    char *s = malloc(n * 2 + 2);
    s[0] = 'a';
    for (size_t i = 0; i < n; i++) memcpy(s + 1 + 2 * i, (i & 1) ? "\xcc\x81" : "\xcc\x96", 2); // U+0301 (230), U+0316 (220)
    size_t k = 0;
    cr_assert_eq(sembed_tokenizer_encode(t, s, 1 + 2 * n, NULL, 0, &k), 0);
    cr_expect_eq(k, 1, "expected 1 token, got %zu", k);
    // Random bytes: never crash, always some count.
    uint32_t x = 1;
    for (size_t i = 0; i < 2 * n; i++) { x = x * 1664525u + 1013904223u; s[i] = (char)(x >> 24); }
    cr_assert_eq(sembed_tokenizer_encode(t, s, 2 * n, NULL, 0, &k), 0);
    free(s);
    sembed_tokenizer_free(t);
}

Test(tokenizer, encode_cap_reports_full_count) {
    struct sembed_tokenizer *t = make_tok(true, true);
    cr_assert(t);
    int32_t ids[3] = {-7, -7, -7};
    size_t n = 0;
    cr_assert_eq(sembed_tokenizer_encode(t, "one two three four", SIZE_MAX, ids, 2, &n), 0);
    cr_expect_eq(n, 4, "expected full count 4, got %zu", n);
    cr_expect_eq(ids[2], -7, "wrote past cap");
    cr_expect_eq(sembed_tokenizer_encode(NULL, "x", 1, ids, 1, &n), SEMBED_EINVAL);
    cr_expect_eq(sembed_tokenizer_encode(t, "x", 1, NULL, 1, &n), SEMBED_EINVAL);
    sembed_tokenizer_free(t);
}

Test(tokenizer, create_rejects_bad_params) {
    const char *v[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##b"};
    struct sembed_tokenizer_params p = sembed_tokenizer_default_params();
    struct sembed_tokenizer *t = (struct sembed_tokenizer *)1;
    cr_expect_eq(sembed_tokenizer_create(v, 6, &p, &t), 0, "mask is optional");
    cr_expect_eq(sembed_tokenizer_mask_id(t), -1);
    sembed_tokenizer_free(t);
    p.unk_token = "<unk>";
    cr_expect_eq(sembed_tokenizer_create(v, 6, &p, &t), SEMBED_EINVAL);
    cr_expect_null(t, "out must be NULL on failure");
    p = sembed_tokenizer_default_params();
    cr_expect_eq(sembed_tokenizer_create(v, 0, &p, &t), SEMBED_EINVAL);
    cr_expect_eq(sembed_tokenizer_create(v, 6, NULL, &t), SEMBED_EINVAL);
    // Later duplicates win, as in HF's vocabulary map.
    const char *d[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "a"};
    cr_assert_eq(sembed_tokenizer_create(d, 6, &p, &t), 0);
    cr_expect_eq(sembed_tokenizer_id(t, "a"), 5);
    sembed_tokenizer_free(t);
}

Test(tokenizer, input_template_and_truncation) {
    struct sembed_tokenizer *t = make_tok(true, true);
    cr_assert(t);
    int32_t ids[16], types[16];
    uint32_t n = 0;
    bool cut = true;
    cr_assert_eq(sembed_tokenizer_encode_input(t, "hello world", SIZE_MAX, NULL, 0, 16, SEMBED_TRUNCATE_LONGEST_FIRST,
                                               ids, types, &n, &cut), 0);
    cr_expect_eq(n, 4);
    cr_expect(ids[0] == 101 && ids[1] == 7592 && ids[2] == 2088 && ids[3] == 102, "got %d %d %d %d", ids[0], ids[1], ids[2], ids[3]);
    cr_expect(!cut);
    // Pair, truncated to 8: a has 4 tokens, b has 3; room 5 -> HF gives a 3 and b 2.
    cr_assert_eq(sembed_tokenizer_encode_input(t, "Hello, World!", SIZE_MAX, "Second one here", SIZE_MAX, 8,
                                               SEMBED_TRUNCATE_LONGEST_FIRST, ids, types, &n, &cut), 0);
    static const int32_t want[] = {101, 7592, 1010, 2088, 102, 2117, 2028, 102};
    static const int32_t want_t[] = {0, 0, 0, 0, 0, 1, 1, 1};
    cr_assert_eq(n, 8, "expected 8 tokens, got %u", n);
    for (int i = 0; i < 8; i++) {
        cr_expect_eq(ids[i], want[i], "id %d: expected %d, got %d", i, want[i], ids[i]);
        cr_expect_eq(types[i], want_t[i], "type %d: expected %d, got %d", i, want_t[i], types[i]);
    }
    cr_expect(cut);
    cr_expect_eq(sembed_tokenizer_encode_input(t, "Hello, World!", SIZE_MAX, "Second one here", SIZE_MAX, 8,
                                               SEMBED_TRUNCATE_ERROR, ids, types, &n, &cut), SEMBED_ETOOLONG);
    cr_expect_eq(sembed_tokenizer_encode_input(t, "a b c", SIZE_MAX, NULL, 0, 4, SEMBED_TRUNCATE_ERROR, ids, NULL, &n, NULL),
                 SEMBED_ETOOLONG);
    cr_expect_eq(sembed_tokenizer_encode_input(t, "a b", SIZE_MAX, NULL, 0, 4, SEMBED_TRUNCATE_ERROR, ids, NULL, &n, NULL), 0);
    cr_expect_eq(sembed_tokenizer_encode_input(t, "a", SIZE_MAX, "b", SIZE_MAX, 2, SEMBED_TRUNCATE_LONGEST_FIRST, ids, NULL, &n, NULL),
                 SEMBED_EINVAL, "max_len 2 cannot hold a pair's 3 special tokens");
    sembed_tokenizer_free(t);
}

/* ------------------------------------------------------------------ golden cases */

Test(tokenizer, golden_bge_46_cases) {
    TU_DATA_FILE_OR_SKIP(inp_path, "vocab/bert-base-uncased/ggml-vocab-bert-bge.gguf.inp");
    TU_DATA_FILE_OR_SKIP(out_path, "vocab/bert-base-uncased/ggml-vocab-bert-bge.gguf.out");
    size_t inp_len = 0, out_len = 0;
    char *inp = tu_read_file(inp_path, &inp_len), *out = tu_read_file(out_path, &out_len);
    cr_assert(inp && out, "cannot read %s / %s", inp_path, out_path);
    struct sembed_tokenizer *t = make_tok(true, true);
    cr_assert(t);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *p = inp, *o = out;
    int n_cases = 0, n_bad = 0;
    for (;;) {
        char *e = strstr(p, sep);
        if (!e) break;
        char *oe = strchr(o, '\n');
        cr_assert(oe, "fewer expected lines than inputs at case %d", n_cases);
        *oe = 0;
        const char *want = o;
        while (*want == ' ') want++;
        char *got = ids_str(t, p, (size_t)(e - p));
        if (strcmp(got, want) != 0) {
            n_bad++;
            cr_log_error("golden case %d: expected [%s], got [%s]", n_cases, want, got);
        }
        free(got);
        n_cases++;
        p = e + sizeof sep - 1;
        o = oe + 1;
    }
    cr_expect_eq(n_cases, 46, "expected 46 golden cases, found %d", n_cases);
    cr_expect_eq(n_bad, 0, "%d of %d golden cases differ", n_bad, n_cases);
    sembed_tokenizer_free(t);
    free(inp);
    free(out);
    free(inp_path);
    free(out_path);
}

/* ------------------------------------------------------------------ HF oracle (node) */

static const char *node_skip_reason(void) {
    static char why[512];
    if (tu_run("node --version >/dev/null 2>&1", NULL) != 0) return "node is not installed (apt-get install nodejs)";
    char *m = tu_path(tu_source_dir(), "tools/node/node_modules/tokenizers/package.json");
    int ok = tu_file_exists(m);
    free(m);
    if (!ok) {
        snprintf(why, sizeof why, "HF tokenizers npm package missing: run (cd %s/tools/node && npm ci)", tu_source_dir());
        return why;
    }
    return NULL;
}

static long mtime_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_mtime : -1;
}

// Regenerate out (by running cmd) unless it is newer than every dependency.
static void make_if_stale(const char *out, const char *const *deps, const char *cmd) {
    long t = mtime_of(out);
    bool stale = t < 0;
    for (const char *const *d = deps; *d && !stale; d++) stale = mtime_of(*d) >= t;
    if (!stale) return;
    char *log = NULL;
    int rc = tu_run(cmd, &log);
    if (rc != 0) remove(out);
    cr_assert_eq(rc, 0, "command failed (exit %d): %s\n%s", rc, cmd, log ? log : "");
    free(log);
}

static const char *work_dir(void) {
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/tokenizer_parity", SEMBED_BINARY_DIR);
    mkdir(dir, 0755);
    return dir;
}

static char *src_file(const char *rel) { return tu_path(tu_source_dir(), rel); }

/* ------------------------------------------------------------------ every code point vs HF */

struct flags_run { uint32_t lo, hi; char flags[8]; };

Test(tokenizer, unicode_classes_match_hf_for_every_code_point, .timeout = 600) {
    const char *why = node_skip_reason();
    if (why) cr_skip_test("%s", why);
    char *js = src_file("tests/tokenizer/hf_classes.js");
    char *out = tu_path(work_dir(), "hf_classes.txt");
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "node '%s' '%s' 2>&1", js, out) > 0);
    const char *deps[] = {js, NULL};
    make_if_stale(out, deps, cmd);
    size_t len = 0;
    char *txt = tu_read_file(out, &len);
    cr_assert(txt, "cannot read %s", out);

    // Expected per code point: flags, lowercase and strip results.
    uint8_t *hf = calloc(0x110000, 1); // bit 1 o, 2 w, 4 p, 8 m
    uint32_t (*low)[3] = calloc(0x110000, sizeof *low);   // [0] = count + 1 when listed
    uint32_t (*strp)[5] = calloc(0x110000, sizeof *strp); // [0] = count + 1 when listed
    cr_assert(hf && low && strp);
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        char kind = line[0];
        char *p = line + 2, *end;
        unsigned long a = strtoul(p, &end, 16);
        if (a > 0x10FFFF) continue;
        if (kind == 'R') {
            unsigned long b = strtoul(end, &end, 16);
            while (*end == ' ') end++;
            uint8_t f = 0;
            for (char *c = end; *c; c++) f |= *c == 'o' ? 1 : *c == 'w' ? 2 : *c == 'p' ? 4 : *c == 'm' ? 8 : 0;
            for (unsigned long c = a; c <= b && c <= 0x10FFFF; c++) hf[c] = f;
        } else {
            uint32_t *dst = kind == 'L' ? low[a] : strp[a];
            size_t cap = kind == 'L' ? 2 : 4, n = 0;
            for (p = end; *p;) {
                unsigned long v = strtoul(p, &end, 16);
                if (end == p) break;
                if (n < cap) dst[1 + n] = (uint32_t)v;
                n++;
                p = end;
            }
            dst[0] = (uint32_t)(n > cap ? cap : n) + 1;
        }
    }
    size_t bad_class = 0, bad_lower = 0, bad_strip = 0;
    char suggestion[16384], lsug[8192];
    size_t sl = 0, lsl = 0;
    suggestion[0] = lsug[0] = 0;
    uint32_t run_lo = 0, run_hi = 0;
    int run_cls = -2;
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        // Skipped: surrogates, hf_classes.js's separator '0', and the three characters HF
        // special-cases by value (NUL, U+FFFD dropped; ' ' is its own whitespace).
        if ((c >= 0xD800 && c <= 0xDFFF) || c == '0' || c == 0 || c == 0xFFFD || c == ' ') continue;
        uint32_t d[16];
        bool decomposes = tk_nfd(c, d, 16) != 1 || d[0] != c;
        bool o = tk_is_control(c), w = !o && tk_is_whitespace(c), p = tk_is_punct(c);
        bool m = !decomposes && tk_is_mn(c);
        bool ho = hf[c] & 1, hw = (hf[c] & 2) != 0, hp = (hf[c] & 4) != 0, hm = (hf[c] & 8) != 0;
        if (decomposes) hm = false;
        if (o != ho || w != hw || p != hp || m != hm) {
            if (bad_class < 20)
                cr_log_error("U+%04X: ours o%d w%d p%d m%d, HF o%d w%d p%d m%d", c, o, w, p, m, ho, hw, hp, hm);
            bad_class++;
            int cls = ho ? TK_HF_OTHER : hp ? TK_HF_PUNCT : hm ? TK_HF_MN : TK_HF_NONE;
            if (cls == run_cls && c == run_hi + 1) run_hi = c;
            else {
                if (run_cls >= -1 && sl < sizeof suggestion - 64)
                    sl += (size_t)snprintf(suggestion + sl, sizeof suggestion - sl, "{0x%X, 0x%X, %d},\n", run_lo, run_hi, run_cls);
                run_lo = run_hi = c;
                run_cls = cls;
            }
        }
        uint32_t lw[2];
        size_t nl = tk_lower_rust(c, lw);
        bool lower_ok = low[c][0] ? (nl == low[c][0] - 1 && lw[0] == low[c][1] && (nl < 2 || lw[1] == low[c][2]))
                                  : (nl == 1 && lw[0] == c);
        if (!lower_ok) {
            if (bad_lower < 20) cr_log_error("lowercase U+%04X: ours U+%04X (%zu cps), HF listed=%u", c, lw[0], nl, low[c][0]);
            if (low[c][0] == 2 && lsl < sizeof lsug - 32)
                lsl += (size_t)snprintf(lsug + lsl, sizeof lsug - lsl, "{0x%X, 0x%X},\n", c, low[c][1]);
            bad_lower++;
        }
        // strip_accents alone: NFD, then drop Mn (reordering is irrelevant for one code point's
        // canonical decomposition, which is already in canonical order).
        size_t nd = tk_nfd(c, d, 16), k = 0;
        uint32_t kept[16];
        for (size_t i = 0; i < nd; i++) if (!tk_is_mn(d[i])) kept[k++] = d[i];
        bool strip_ok = strp[c][0] ? (k == strp[c][0] - 1 && (k == 0 || memcmp(kept, &strp[c][1], k * 4) == 0))
                                   : (k == 1 && kept[0] == c);
        if (!strip_ok) {
            if (bad_strip < 20) cr_log_error("strip U+%04X: ours %zu cps (first U+%04X), HF listed=%u", c, k, k ? kept[0] : 0, strp[c][0]);
            bad_strip++;
        }
    }
    if (run_cls >= -1) sl += (size_t)snprintf(suggestion + sl, sizeof suggestion - sl, "{0x%X, 0x%X, %d},\n", run_lo, run_hi, run_cls);
    if (bad_class) cr_log_error("compat ranges still needed (HF class per run):\n%s", suggestion);
    if (bad_lower) cr_log_error("compat lowercase pairs still needed:\n%s", lsug);
    cr_expect_eq(bad_class, 0, "%zu code points classed differently from HF (clean/whitespace/punct/Mn)", bad_class);
    cr_expect_eq(bad_lower, 0, "%zu code points lowercased differently from HF", bad_lower);
    cr_expect_eq(bad_strip, 0, "%zu code points accent-stripped differently from HF", bad_strip);
    free(hf);
    free(low);
    free(strp);
    free(txt);
    free(cmd);
    free(out);
    free(js);
}

/* ------------------------------------------------------------------ corpus parity with HF */

// Builds (once, cached in the build dir until its scripts change) the corpus from the data
// folders (vendored data/ and ../shared/data where present: tu_data_dirs).
static void build_corpus(char **corpus, char **pairs) {
    char *js = src_file("tests/tokenizer/corpus.js"), *hard = src_file("tests/tokenizer/hard_cases.txt");
    *corpus = tu_path(work_dir(), "corpus.txt");
    *pairs = tu_path(work_dir(), "pairs.tsv");
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "node '%s' '%s' '%s' '%s' 2>&1", js, tu_data_dirs(), hard, work_dir()) > 0);
    const char *deps[] = {js, hard, NULL};
    make_if_stale(*corpus, deps, cmd);
    free(cmd);
    free(js);
    free(hard);
}

struct parity_cfg {
    const char *name;
    bool lower, strip, clean, chinese, pre_lower;
    bool strip_follows;   // pass no --strip-accents to the oracle (HF's None)
    bool pairs;           // input is "a TAB b"
    uint32_t max_len;     // > 0: [CLS]/[SEP], token types and longest_first truncation
};

static void parity(const struct parity_cfg *c) {
    const char *why = node_skip_reason();
    if (why) cr_skip_test("%s", why);
    char *corpus, *pairs;
    build_corpus(&corpus, &pairs);
    const char *input = c->pairs ? pairs : corpus;
    char *oracle = src_file("tests/tokenizer/oracle.js"), *vocab = vocab_path();
    char name[256], tname[256];
    snprintf(name, sizeof name, "hf_%s.txt", c->name);
    snprintf(tname, sizeof tname, "hf_%s.time.json", c->name);
    char *out = tu_path(work_dir(), name), *tfile = tu_path(work_dir(), tname);
    char strip_arg[64] = "", len_arg[64] = "";
    if (!c->strip_follows) snprintf(strip_arg, sizeof strip_arg, "--strip-accents %d", c->strip);
    if (c->max_len) snprintf(len_arg, sizeof len_arg, "--specials --max-length %u", c->max_len);
    char *cmd = NULL;
    cr_assert(asprintf(&cmd, "node '%s' --vocab '%s' --input '%s' --output '%s' --lowercase %d %s --clean-text %d "
                             "--chinese %d --pre-lowercase %d %s %s 2>'%s'",
                       oracle, vocab, input, out, c->lower, strip_arg, c->clean, c->chinese, c->pre_lower,
                       c->pairs ? "--pairs" : "", len_arg, tfile) > 0);
    const char *deps[] = {oracle, input, NULL};
    make_if_stale(out, deps, cmd);

    if (!g_vocab.buf) cr_assert_eq(vocab_load(&g_vocab), 0);
    struct sembed_tokenizer_params p = sembed_tokenizer_default_params();
    p.lowercase = c->lower;
    p.strip_accents = c->strip;
    p.clean_text = c->clean;
    p.handle_chinese_chars = c->chinese;
    p.pre_lowercase = c->pre_lower;
    struct sembed_tokenizer *t = NULL;
    cr_assert_eq(sembed_tokenizer_create((const char *const *)g_vocab.tok, g_vocab.n, &p, &t), 0);

    size_t in_len = 0, ex_len = 0;
    char *in = tu_read_file(input, &in_len), *ex = tu_read_file(out, &ex_len);
    cr_assert(in && ex, "cannot read %s or %s", input, out);
    size_t cap = 1 << 16;
    int32_t *ids = malloc(cap * sizeof *ids), *types = malloc(cap * sizeof *types);
    char *got = malloc(cap * 24);
    size_t lines = 0, bad = 0, cut_lines = 0;
    char *ip = in, *ep = ex;
    struct timespec t0, t1;
    double secs = 0;
    while (ip < in + in_len) {
        char *ie = memchr(ip, '\n', (size_t)(in + in_len - ip));
        if (!ie) ie = in + in_len;
        char *ee = ep < ex + ex_len ? memchr(ep, '\n', (size_t)(ex + ex_len - ep)) : NULL;
        cr_assert(ee, "oracle output has fewer lines than the input (%zu)", lines);
        *ee = 0;
        size_t k = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (!c->max_len) {
            size_t n = 0;
            int rc = sembed_tokenizer_encode(t, ip, (size_t)(ie - ip), ids, cap, &n);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            cr_assert_eq(rc, 0, "line %zu: encode failed: %s", lines + 1, sembed_strerror(rc));
            cr_assert_leq(n, cap, "line %zu: %zu tokens", lines + 1, n);
            for (size_t i = 0; i < n; i++) k += (size_t)sprintf(got + k, i ? " %d" : "%d", ids[i]);
        } else {
            const char *a = ip, *b = NULL;
            size_t al = (size_t)(ie - ip), bl = 0;
            if (c->pairs) {
                char *tab = memchr(ip, '\t', al);
                if (tab) { b = tab + 1; bl = (size_t)(ie - b); al = (size_t)(tab - ip); }
                else { b = ""; bl = 0; }
            }
            uint32_t n = 0;
            bool was_cut = false;
            int rc = sembed_tokenizer_encode_input(t, a, al, b, bl, c->max_len, SEMBED_TRUNCATE_LONGEST_FIRST, ids,
                                                   types, &n, &was_cut);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            cr_assert_eq(rc, 0, "line %zu: encode_input failed: %s", lines + 1, sembed_strerror(rc));
            for (uint32_t i = 0; i < n; i++) k += (size_t)sprintf(got + k, i ? " %d" : "%d", ids[i]);
            got[k++] = '\t';
            for (uint32_t i = 0; i < n; i++) k += (size_t)sprintf(got + k, i ? " %d" : "%d", types[i]);
            k += (size_t)sprintf(got + k, "\t%d", was_cut);
            cut_lines += was_cut;
        }
        got[k] = 0;
        secs += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (strcmp(got, ep) != 0) {
            if (bad < 5) {
                char esc[401];
                size_t m = 0;
                for (const char *q = ip; q < ie && m < 380; q++) {
                    unsigned char ch = (unsigned char)*q;
                    if (ch >= 0x20 && ch < 0x7f && ch != '\\') esc[m++] = (char)ch;
                    else m += (size_t)sprintf(esc + m, "\\x%02x", ch);
                }
                esc[m] = 0;
                cr_log_error("[%s] line %zu differs\n  text: %s\n  HF:   %.300s\n  ours: %.300s", c->name, lines + 1, esc, ep, got);
            }
            bad++;
        }
        lines++;
        ip = ie + 1;
        ep = ee + 1;
    }
    char *timing = tu_read_file(tfile, NULL);
    fprintf(stderr, "tokenizer parity [%s]: %zu lines, %zu differ, %zu truncated; sembed %.0f lines/s (this build), HF %s",
            c->name, lines, bad, cut_lines, secs > 0 ? (double)lines / secs : 0.0, timing ? timing : "(no timing)\n");
    // With the full data set (../shared/data: wiki1m head, SICK, RTE, ...) the corpus has over
    // 20,000 lines; a lone clone has only the vendored STS-B dev besides the generated lines
    // (13,648 singles, 1,508 pairs), and must still have all of those.
    char *wiki = tu_data_file("train/wiki1m_head.txt");
    size_t min_lines = wiki ? 20000 : c->pairs ? 1500 : 13000;
    free(wiki);
    cr_expect_geq(lines, min_lines, "[%s] corpus too small: %zu lines, expected >= %zu (%s data)", c->name, lines,
                  min_lines, min_lines == 20000 ? "full" : "vendored-only");
    cr_expect_eq(bad, 0, "[%s] %zu of %zu lines differ from HF tokenizers", c->name, bad, lines);
    if (c->max_len) cr_expect_gt(cut_lines, 100, "[%s] only %zu lines exercised truncation", c->name, cut_lines);
    free(timing);
    free(ids);
    free(types);
    free(got);
    free(in);
    free(ex);
    sembed_tokenizer_free(t);
    free(cmd);
    free(out);
    free(tfile);
    free(oracle);
    free(vocab);
    free(corpus);
    free(pairs);
}

#define PARITY_TEST(id, ...)                                           \
    Test(tokenizer, parity_##id, .timeout = 900) {                     \
        struct parity_cfg c_ = {#id, __VA_ARGS__};                     \
        parity(&c_);                                                   \
    }

// lower, strip, clean, chinese, pre_lower, strip_follows, pairs, max_len
PARITY_TEST(lower, true, true, true, true, false, true, false, 0)
PARITY_TEST(cased, false, false, true, true, false, true, false, 0)
PARITY_TEST(lower_keep_accents, true, false, true, true, false, false, false, 0)
PARITY_TEST(cased_strip_accents, false, true, true, true, false, false, false, 0)
PARITY_TEST(lower_no_clean_no_cjk, true, true, false, false, false, true, false, 0)
PARITY_TEST(pre_lowercase_cased, false, false, true, true, true, false, false, 0)
PARITY_TEST(single_truncate_16, true, true, true, true, false, true, false, 16)
PARITY_TEST(pairs_truncate_32, true, true, true, true, false, true, true, 32)

/* ------------------------------------------------------------------ .semb files and the CLI */

// Writes a .semb holding only the tokenizer.* keys (docs/format.md) for the real vocab; `skip`
// names a key to leave out, `model` overrides tokenizer.model, `index` adds tokenizer.index.*.
static void write_tok_semb(const char *path, bool lower, const char *skip, const char *model, bool index) {
    if (!g_vocab.buf) cr_assert_eq(vocab_load(&g_vocab), 0, "cannot read the vocab");
    struct sembed_writer *w = NULL;
    cr_assert_eq(sembed_writer_create(path, &w), 0);
#define SKIP(k) (skip && !strcmp(skip, k))
    int rc = 0;
    if (!rc && !SKIP("general.architecture")) rc = sembed_writer_add_str(w, "general.architecture", "bert");
    if (!rc && !SKIP("tokenizer.model")) rc = sembed_writer_add_str(w, "tokenizer.model", model ? model : "wordpiece");
    if (!rc && !SKIP("tokenizer.vocab"))
        rc = sembed_writer_add_arr_str(w, "tokenizer.vocab", (const char *const *)g_vocab.tok, g_vocab.n);
    if (!rc && !SKIP("tokenizer.lowercase")) rc = sembed_writer_add_bool(w, "tokenizer.lowercase", lower);
    if (!rc && !SKIP("tokenizer.strip_accents")) rc = sembed_writer_add_bool(w, "tokenizer.strip_accents", lower);
    if (!rc && !SKIP("tokenizer.handle_chinese_chars")) rc = sembed_writer_add_bool(w, "tokenizer.handle_chinese_chars", true);
    if (!rc && !SKIP("tokenizer.clean_text")) rc = sembed_writer_add_bool(w, "tokenizer.clean_text", true);
    static const char *const sp[][2] = {{"tokenizer.unk_token", "[UNK]"}, {"tokenizer.cls_token", "[CLS]"},
                                        {"tokenizer.sep_token", "[SEP]"}, {"tokenizer.pad_token", "[PAD]"},
                                        {"tokenizer.mask_token", "[MASK]"}, {"tokenizer.continuing_prefix", "##"}};
    for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++)
        if (!rc && !SKIP(sp[i][0])) rc = sembed_writer_add_str(w, sp[i][0], sp[i][1]);
    if (!rc && !SKIP("tokenizer.max_input_chars_per_word")) rc = sembed_writer_add_u32(w, "tokenizer.max_input_chars_per_word", 100);
    if (!rc && !SKIP("tokenizer.model_max_length")) rc = sembed_writer_add_u32(w, "tokenizer.model_max_length", 128);
    if (!rc && index)
        rc = sembed_writer_add_tokenizer_index(w, (const char *const *)g_vocab.tok, g_vocab.n,
                                               SKIP("tokenizer.continuing_prefix") ? NULL : "##");
#undef SKIP
    if (rc) sembed_writer_free(w);
    cr_assert_eq(rc, 0, "writer: %s", sembed_strerror(rc));
    rc = sembed_writer_finish(w);
    cr_assert_eq(rc, 0, "sembed_writer_finish: %s", sembed_strerror(rc));
}

Test(tokenizer, from_file_matches_create) {
    char *dir = tu_mkdtemp(), *path = tu_path(dir, "tok.semb");
    write_tok_semb(path, true, NULL, NULL, false);
    struct sembed_file *f = NULL;
    cr_assert_eq(sembed_file_open(path, &f), 0);
    struct sembed_tokenizer *a = NULL, *b = make_tok(true, true);
    cr_assert_eq(sembed_tokenizer_from_file(f, &a), 0);
    cr_expect_eq(sembed_tokenizer_vocab_size(a), sembed_tokenizer_vocab_size(b));
    cr_expect_eq(sembed_tokenizer_params(a)->model_max_length, 128);
    cr_expect_eq(sembed_tokenizer_cls_id(a), 101);
    cr_expect_eq(sembed_tokenizer_mask_id(a), 103);
    const char *texts[] = {"Hello, World!", "Café ΣΑΣ 我想", "unaffable supercalifragilistic"};
    for (size_t i = 0; i < 3; i++) {
        char *x = ids_str(a, texts[i], SIZE_MAX), *y = ids_str(b, texts[i], SIZE_MAX);
        cr_expect_str_eq(x, y, "'%s': from file [%s], from create [%s]", texts[i], x, y);
        free(x);
        free(y);
    }
    sembed_tokenizer_free(a);
    sembed_tokenizer_free(b);
    sembed_file_free(f);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

Test(tokenizer, from_file_reports_missing_or_bad_keys) {
    char *dir = tu_mkdtemp(), *path = tu_path(dir, "tok.semb");
    static const struct { const char *skip, *model; int want; } cases[] = {
        {"tokenizer.vocab", NULL, SEMBED_EMISSING},      {"tokenizer.lowercase", NULL, SEMBED_EMISSING},
        {"tokenizer.cls_token", NULL, SEMBED_EMISSING},  {"tokenizer.model", NULL, SEMBED_EMISSING},
        {NULL, "bpe", SEMBED_EUNSUPPORTED},              {"tokenizer.mask_token", NULL, SEMBED_OK},
        {"tokenizer.continuing_prefix", NULL, SEMBED_OK}, {"tokenizer.model_max_length", NULL, SEMBED_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_tok_semb(path, true, cases[i].skip, cases[i].model, i % 2 == 0);
        struct sembed_file *f = NULL;
        cr_assert_eq(sembed_file_open(path, &f), 0);
        struct sembed_tokenizer *t = (struct sembed_tokenizer *)1;
        int rc = sembed_tokenizer_from_file(f, &t);
        cr_expect_eq(rc, cases[i].want, "without %s / model %s: expected %d, got %d (%s)", cases[i].skip ? cases[i].skip : "-",
                     cases[i].model ? cases[i].model : "wordpiece", cases[i].want, rc, sembed_strerror(rc));
        if (rc) cr_expect_null(t);
        sembed_tokenizer_free(rc ? NULL : t);
        sembed_file_free(f);
    }
    tu_rmtree(dir);
    free(path);
    free(dir);
}

static int run_cli(const char *args, const char *stdin_text, char **out) {
    char *cmd = NULL;
    if (stdin_text)
        cr_assert(asprintf(&cmd, "printf '%s' | '%s' tokenize %s", stdin_text, tu_cli(), args) > 0);
    else
        cr_assert(asprintf(&cmd, "'%s' tokenize %s </dev/null", tu_cli(), args) > 0);
    int rc = tu_run(cmd, out);
    free(cmd);
    return rc;
}

Test(tokenizer, cli_tokenize) {
    char *dir = tu_mkdtemp(), *path = tu_path(dir, "tok.semb");
    write_tok_semb(path, true, NULL, NULL, true);
    char args[4096], *out = NULL;
    int rc = run_cli("--help", NULL, &out);
    cr_expect_eq(rc, 0, "--help: exit %d", rc);
    cr_expect(out && strstr(out, "usage: sembed tokenize"), "--help prints usage to stdout");
    free(out);
    rc = run_cli("--bogus 2>/dev/null", NULL, NULL);
    cr_expect_eq(rc, 2, "unknown flag: expected exit 2, got %d", rc);
    rc = run_cli("'Hello' 2>/dev/null", NULL, NULL);
    cr_expect_eq(rc, 2, "missing -m: expected exit 2, got %d", rc);
    snprintf(args, sizeof args, "-m '%s/missing.semb' x 2>/dev/null", dir);
    cr_expect_eq(run_cli(args, NULL, NULL), 1, "missing file: exit 1");

    snprintf(args, sizeof args, "-m '%s' --ids 'Hello, world!' 'unaffable'", path);
    rc = run_cli(args, NULL, &out);
    cr_expect_eq(rc, 0);
    cr_expect_str_eq(out, "101 7592 1010 2088 999 102\n101 14477 20961 3468 102\n", "--ids output: got [%s]", out);
    free(out);

    snprintf(args, sizeof args, "-m '%s'", path);
    rc = run_cli(args, "Hello world\\nCafé\\n", &out);
    cr_expect_eq(rc, 0);
    cr_expect_str_eq(out, "[CLS] hello world [SEP]\t101 7592 2088 102\n[CLS] cafe [SEP]\t101 7668 102\n", "stdin output: got [%s]", out);
    free(out);

    snprintf(args, sizeof args, "-m '%s' --pairs --max-length 8 2>&1", path);
    rc = run_cli(args, "Hello, World!\\tSecond one here\\n", &out);
    cr_expect_eq(rc, 0);
    cr_expect_str_eq(out,
                     "[CLS] hello , world [SEP] second one [SEP]\t101 7592 1010 2088 102 2117 2028 102\t0 0 0 0 0 1 1 1\n"
                     "sembed tokenize: 1 of 1 inputs truncated to 8 tokens\n",
                     "pairs output: got [%s]", out);
    free(out);

    snprintf(args, sizeof args, "-m '%s' --max-length 4 --truncate error 'one two three' 2>/dev/null", path);
    cr_expect_eq(run_cli(args, NULL, NULL), 1, "--truncate error on a long input: exit 1");
    snprintf(args, sizeof args, "-m '%s' --max-length 4000 x 2>/dev/null", path);
    cr_expect_eq(run_cli(args, NULL, NULL), 2, "--max-length beyond the model: exit 2");
    tu_rmtree(dir);
    free(path);
    free(dir);
}

/* ------------------------------------------------------------------ the prebuilt index */

// Lines of the text sample the index tests tokenize: the wiki1m head of ../shared/data (capped),
// or the vendored STS-B dev lines where that is absent, and the hand-written hard cases (accents,
// CJK, punctuation, long words, invalid UTF-8).
static char **sample_lines(size_t *n) {
    char *p1 = tu_data_file("train/wiki1m_head.txt");
    if (!p1) p1 = tu_data_file("sts/STSBenchmark/sts-dev.csv");
    if (!p1) cr_skip_test("neither train/wiki1m_head.txt nor sts/STSBenchmark/sts-dev.csv found (%s)",
                          tu_data_dirs());
    char *p2 = tu_path(tu_source_dir(), "tests/tokenizer/hard_cases.txt");
    char *a = tu_read_file(p1, NULL), *b = tu_read_file(p2, NULL);
    cr_assert(a && b, "cannot read %s or %s", p1, p2);
    free(p1);
    free(p2);
    size_t cap = 4096, k = 0;
    char **v = malloc(cap * sizeof *v);
    char *bufs[2] = {a, b};
    for (int f = 0; f < 2; f++)
        for (char *s = bufs[f], *nl; *s && k < cap - 1; s = nl + 1) {
            nl = strchr(s, '\n');
            if (!nl) nl = s + strlen(s);
            v[k++] = strndup(s, (size_t)(nl - s));
            if (!*nl) break;
        }
    free(a);
    free(b);
    *n = k;
    return v;
}

// ids of every sample line under t, as one string (lines separated by '\n').
static char *sample_ids(const struct sembed_tokenizer *t, char **lines, size_t n) {
    size_t cap = 1 << 20, k = 0;
    char *out = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        char *x = ids_str(t, lines[i], SIZE_MAX);
        size_t l = strlen(x);
        while (k + l + 2 > cap) out = realloc(out, cap *= 2);
        memcpy(out + k, x, l);
        k += l;
        out[k++] = '\n';
        free(x);
    }
    out[k] = 0;
    return out;
}

static void first_diff(const char *a, const char *b, const char *what) {
    size_t i = 0, line = 0;
    while (a[i] && a[i] == b[i]) line += a[i++] == '\n';
    cr_expect(!a[i] && !b[i], "%s: ids differ first on sample line %zu", what, line);
}

// Indexed (borrowed in place), non-indexed (borrowed, tables built), copied and created
// tokenizers give the same ids on the real vocabulary and a text sample; the index is what the
// builder makes, and the borrowed tokenizer points into the file (no copy).
Test(tokenizer, index_and_fallback_tokenize_identically, .timeout = 300) {
    char *dir = tu_mkdtemp(), *pi = tu_path(dir, "indexed.semb"), *pn = tu_path(dir, "plain.semb");
    write_tok_semb(pi, true, NULL, NULL, true);
    write_tok_semb(pn, true, NULL, NULL, false);
    struct sembed_file *fi = NULL, *fn = NULL;
    cr_assert_eq(sembed_file_open(pi, &fi), 0);
    cr_assert_eq(sembed_file_open(pn, &fn), 0);
    cr_assert_eq(sembed_file_verify_tokenizer_index(fi), 0, "a freshly written index verifies");
    cr_assert_eq(sembed_file_verify_tokenizer_index(fn), 0, "no index: nothing to verify");
    struct sembed_tokenizer *t[4] = {make_tok(true, true), NULL, NULL, NULL};
    cr_assert_eq(sembed_tokenizer_borrow_file(fi, &t[1]), 0);
    cr_assert_eq(sembed_tokenizer_borrow_file(fn, &t[2]), 0);
    cr_assert_eq(sembed_tokenizer_from_file(fi, &t[3]), 0);
    static const char *const names[4] = {"create", "borrow+index", "borrow, no index", "from_file"};
    // every token maps back to its id (bert-base-uncased has no duplicates), id to token
    for (int k = 1; k < 4; k++) {
        cr_assert_eq(sembed_tokenizer_vocab_size(t[k]), g_vocab.n);
        size_t bad = 0;
        for (size_t i = 0; i < g_vocab.n; i++) {
            bad += sembed_tokenizer_id(t[k], g_vocab.tok[i]) != (int32_t)i;
            bad += strcmp(sembed_tokenizer_token(t[k], (int32_t)i), g_vocab.tok[i]) != 0;
        }
        cr_expect_eq(bad, 0, "%s: %zu token/id lookups wrong", names[k], bad);
        cr_expect_eq(sembed_tokenizer_cls_id(t[k]), 101);
        cr_expect_eq(sembed_tokenizer_mask_id(t[k]), 103);
    }
    // zero copy: token strings of the indexed tokenizer lie in the file's vocabulary bytes
    const void *vb;
    uint64_t vn;
    cr_assert_eq(sembed_file_kv_arr_bytes(fi, sembed_file_find_kv(fi, "tokenizer.vocab"), &vb, &vn), 0);
    const char *tok = sembed_tokenizer_token(t[1], 2088);
    cr_expect(tok >= (const char *)vb && tok < (const char *)vb + vn, "borrowed token strings point into the file");
    size_t n = 0;
    char **lines = sample_lines(&n);
    cr_assert_gt(n, 1000, "sample: %zu lines", n);
    char *want = sample_ids(t[0], lines, n);
    for (int k = 1; k < 4; k++) {
        char *got = sample_ids(t[k], lines, n);
        first_diff(want, got, names[k]);
        free(got);
    }
    free(want);
    for (size_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
    for (int k = 0; k < 4; k++) sembed_tokenizer_free(t[k]);
    sembed_file_free(fi);
    sembed_file_free(fn);
    tu_rmtree(dir);
    free(pi);
    free(pn);
    free(dir);
}

// Log capture: the last error message.
static char g_last_log[1024];
static void keep_log(enum sembed_log_level l, const char *m, void *u) {
    (void)u;
    if (l == SEMBED_LOG_ERROR) snprintf(g_last_log, sizeof g_last_log, "%s", m);
}

// A copy of an indexed file's bytes, with the index arrays located in it.
struct ixfile {
    uint8_t *buf;
    size_t len;
    uint8_t *off, *all, *cont; // inside buf
    uint64_t n_all, n_cont;
    unsigned w;                // slot width: 2 (u16, vocabularies up to 65535 tokens) or 4
};

static void ix_load(struct ixfile *x, const char *path) {
    char *raw = tu_read_file(path, &x->len);
    cr_assert_not_null(raw);
    x->buf = aligned_alloc(64, (x->len + 63) / 64 * 64);
    memcpy(x->buf, raw, x->len);
    free(raw);
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open_memory(x->buf, x->len, &f), 0);
    const void *p;
    uint64_t nb;
    cr_assert_eq(sembed_file_kv_arr_bytes(f, sembed_file_find_kv(f, "tokenizer.index.offsets"), &p, &nb), 0);
    x->off = x->buf + ((const uint8_t *)p - x->buf);
    enum sembed_type et;
    cr_assert_eq(sembed_file_kv_array_info(f, sembed_file_find_kv(f, "tokenizer.index.all"), &et, &x->n_all), 0);
    x->w = et == SEMBED_TYPE_U16 ? 2 : 4;
    cr_assert_eq(sembed_file_kv_arr_bytes(f, sembed_file_find_kv(f, "tokenizer.index.all"), &p, &nb), 0);
    x->all = x->buf + ((const uint8_t *)p - x->buf);
    cr_assert_eq(sembed_file_kv_arr_bytes(f, sembed_file_find_kv(f, "tokenizer.index.cont"), &p, &nb), 0);
    x->cont = x->buf + ((const uint8_t *)p - x->buf);
    x->n_cont = nb / x->w;
    sembed_file_free(f);
}

static uint32_t ix_off(const struct ixfile *x, uint64_t i) { uint32_t v; memcpy(&v, x->off + 4 * i, 4); return v; }
static void ix_set_off(struct ixfile *x, uint64_t i, uint32_t v) { memcpy(x->off + 4 * i, &v, 4); }
// Slot i of a table (all or cont) in x's slot width.
static uint32_t ix_get(const struct ixfile *x, const uint8_t *a, uint64_t i) {
    if (x->w == 4) { uint32_t v; memcpy(&v, a + 4 * i, 4); return v; }
    uint16_t v;
    memcpy(&v, a + 2 * i, 2);
    return v;
}
static void ix_set(const struct ixfile *x, uint8_t *a, uint64_t i, uint32_t v) {
    if (x->w == 4) { memcpy(a + 4 * i, &v, 4); return; }
    uint16_t h = (uint16_t)v;
    memcpy(a + 2 * i, &h, 2);
}

// Recompute the header checksum (as a buggy or hostile writer would), open, and check: the
// tokenizer still loads and tokenizes without crashing; full verification names the problem.
static void ix_expect(struct ixfile *x, const char *what, const char *want_in_log) {
    uint64_t dir_end;
    memcpy(&dir_end, x->buf + 32, 8);
    uint64_t h = XXH3_64bits(x->buf, (size_t)dir_end);
    memcpy(x->buf + dir_end, &h, 8);
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open_memory(x->buf, x->len, &f), 0, "%s: the header is well formed", what);
    struct sembed_tokenizer *t = NULL;
    int rc = sembed_tokenizer_borrow_file(f, &t);
    cr_expect(rc == 0 || rc == SEMBED_EINVAL, "%s: borrow gives 0 (or a missing special token), got %s", what,
              sembed_strerror(rc));
    if (!rc) {
        const char *texts[] = {"Hello, World! unaffable supercalifragilistic", "Café ΣΑΣ 我想 ##ing [CLS]"};
        for (int i = 0; i < 2; i++) {
            int32_t ids[128];
            size_t n = 0;
            cr_expect_eq(sembed_tokenizer_encode(t, texts[i], SIZE_MAX, ids, 128, &n), 0, "%s: encode", what);
            for (size_t k = 0; k < n && k < 128; k++) {
                cr_expect(ids[k] >= 0 && (size_t)ids[k] < g_vocab.n, "%s: id %d out of range", what, ids[k]);
                const char *s = sembed_tokenizer_token(t, ids[k]);
                cr_expect(s && strlen(s) < 4096, "%s: token string", what);
            }
        }
        for (size_t i = 0; i < g_vocab.n; i += 97) (void)sembed_tokenizer_id(t, g_vocab.tok[i]);
    }
    sembed_tokenizer_free(t);
    g_last_log[0] = 0;
    rc = sembed_file_verify_tokenizer_index(f);
    cr_expect_eq(rc, SEMBED_ECORRUPT, "%s: verify: expected ECORRUPT, got %s", what, sembed_strerror(rc));
    cr_expect(strstr(g_last_log, want_in_log), "%s: the error names '%s': [%s]", what, want_in_log, g_last_log);
    int64_t bad = 0;
    cr_expect_eq(sembed_file_verify(f, &bad), SEMBED_ECORRUPT, "%s: sembed_file_verify also reports it", what);
    cr_expect_eq(bad, -1, "%s: no tensor is blamed", what);
    sembed_file_free(f);
}

Test(tokenizer, corrupt_index_is_harmless_and_named_by_verify, .timeout = 120) {
    char *dir = tu_mkdtemp(), *path = tu_path(dir, "tok.semb");
    write_tok_semb(path, true, NULL, NULL, true);
    sembed_log_set(keep_log, NULL);
    struct ixfile x;
    // two slots swapped: tokens land where the builder would not put them
    ix_load(&x, path);
    cr_assert_eq(x.w, 2, "bert-base-uncased's 30,522 ids fit u16 slots");
    uint64_t a = 0, b;
    while (!ix_get(&x, x.all, a)) a++;
    b = a + 1;
    while (!ix_get(&x, x.all, b) || ix_get(&x, x.all, b) == ix_get(&x, x.all, a)) b++;
    uint32_t va = ix_get(&x, x.all, a);
    ix_set(&x, x.all, a, ix_get(&x, x.all, b));
    ix_set(&x, x.all, b, va);
    ix_expect(&x, "swapped slots", "tokenizer.index.all disagrees with tokenizer.vocab: slot");
    free(x.buf);
    // an id beyond the vocabulary
    ix_load(&x, path);
    ix_set(&x, x.all, a, 65535);
    ix_expect(&x, "slot beyond the vocabulary", "above the vocabulary size");
    free(x.buf);
    // no empty slot left: every probe must still end
    ix_load(&x, path);
    for (uint64_t i = 0; i < x.n_cont; i++)
        if (!ix_get(&x, x.cont, i)) ix_set(&x, x.cont, i, 1 + (uint32_t)(i % g_vocab.n));
    ix_expect(&x, "full continuing table", "tokenizer.index.cont disagrees");
    free(x.buf);
    // an offset that points into the middle of a string, or far outside
    ix_load(&x, path);
    ix_set_off(&x, 2088, ix_off(&x, 2088) + 3);
    ix_set_off(&x, 7, 0xfffffff0u);
    ix_expect(&x, "offsets", "tokenizer.index.offsets[7]");
    free(x.buf);
    // every table entry pointing at one token, offsets all zero
    ix_load(&x, path);
    for (uint64_t i = 0; i < x.n_all; i++) ix_set(&x, x.all, i, 1);
    for (uint64_t i = 1; i < g_vocab.n; i++) ix_set_off(&x, i, 0);
    ix_expect(&x, "degenerate tables", "tokenizer.index.offsets[1]");
    free(x.buf);
    sembed_log_set(NULL, NULL);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

// Malformed index keys (wrong type, capacity, count, a missing key) refuse the load, naming the key.
Test(tokenizer, malformed_index_refused_with_its_key) {
    if (!g_vocab.buf) cr_assert_eq(vocab_load(&g_vocab), 0, "cannot read the vocab");
    char *dir = tu_mkdtemp(), *path = tu_path(dir, "tok.semb");
    const uint32_t n = (uint32_t)g_vocab.n;
    uint32_t *off = calloc(n, 4), *all = calloc(131072, 4);
    for (uint32_t i = 1; i < n; i++) off[i] = off[i - 1] + 9 + (uint32_t)strlen(g_vocab.tok[i - 1]);
    static const struct { const char *what, *key; int want; } cases[] = {
        {"all not a power of two", "tokenizer.index.all", SEMBED_ECORRUPT},
        {"all too small", "tokenizer.index.all", SEMBED_ECORRUPT},
        {"cont larger than all", "tokenizer.index.cont", SEMBED_ECORRUPT},
        {"offsets count", "tokenizer.index.offsets", SEMBED_ECORRUPT},
        {"all as u8", "tokenizer.index.all", SEMBED_ETYPE},
        {"missing max length", "tokenizer.index.cont_max_len", SEMBED_ECORRUPT},
    };
    sembed_log_set(keep_log, NULL);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        write_tok_semb(path, true, NULL, NULL, false);
        // rewrite with a hand-made index: copy the tokenizer file's keys, then add the index
        struct sembed_file *src;
        cr_assert_eq(sembed_file_open(path, &src), 0);
        char *p2 = tu_path(dir, "bad.semb");
        struct sembed_writer *w;
        cr_assert_eq(sembed_writer_create(p2, &w), 0);
        for (int64_t i = 0; i < sembed_file_n_kv(src); i++) {
            const char *k = sembed_file_kv_key(src, i);
            enum sembed_type ty = sembed_file_kv_type(src, i);
            if (ty == SEMBED_TYPE_STRING) {
                const char *v;
                sembed_file_get_str(src, k, &v, NULL);
                cr_assert_eq(sembed_writer_add_str(w, k, v), 0);
            } else if (ty == SEMBED_TYPE_ARRAY) {
                cr_assert_eq(sembed_writer_add_arr_str(w, k, (const char *const *)g_vocab.tok, g_vocab.n), 0);
            } else {
                uint64_t v = 0;
                memcpy(&v, sembed_file_kv_data(src, i), ty == SEMBED_TYPE_BOOL ? 1 : 4);
                cr_assert_eq(sembed_writer_add_scalar(w, k, ty, &v), 0);
            }
        }
        sembed_file_free(src);
        cr_assert_eq(sembed_writer_add_arr(w, "tokenizer.index.offsets", SEMBED_TYPE_U32, off, c == 3 ? n - 1 : n), 0);
        if (c == 4) cr_assert_eq(sembed_writer_add_arr(w, "tokenizer.index.all", SEMBED_TYPE_U8, all, 65536), 0);
        else cr_assert_eq(sembed_writer_add_arr(w, "tokenizer.index.all", SEMBED_TYPE_U32, all, c == 0 ? 65535 : c == 1 ? 32768 : 65536), 0);
        cr_assert_eq(sembed_writer_add_arr(w, "tokenizer.index.cont", SEMBED_TYPE_U32, all, c == 2 ? 131072 : 16384), 0);
        cr_assert_eq(sembed_writer_add_u32(w, "tokenizer.index.all_max_len", 18), 0);
        if (c != 5) cr_assert_eq(sembed_writer_add_u32(w, "tokenizer.index.cont_max_len", 16), 0);
        cr_assert_eq(sembed_writer_finish(w), 0);
        struct sembed_file *f;
        cr_assert_eq(sembed_file_open(p2, &f), 0);
        struct sembed_tokenizer *t = NULL;
        g_last_log[0] = 0;
        int rc = sembed_tokenizer_borrow_file(f, &t);
        cr_expect_eq(rc, cases[c].want, "%s: expected %s, got %s", cases[c].what, sembed_strerror(cases[c].want),
                     sembed_strerror(rc));
        cr_expect_null(t);
        cr_expect(strstr(g_last_log, cases[c].key), "%s: the error names %s: [%s]", cases[c].what, cases[c].key, g_last_log);
        cr_expect_eq(sembed_file_verify_tokenizer_index(f), cases[c].want, "%s: verify agrees", cases[c].what);
        // the copying tokenizer does not use the index: it still loads
        cr_expect_eq(sembed_tokenizer_from_file(f, &t), 0, "%s: from_file ignores the index", cases[c].what);
        sembed_tokenizer_free(t);
        sembed_file_free(f);
        free(p2);
    }
    sembed_log_set(NULL, NULL);
    free(off);
    free(all);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

// `sembed inspect --verify` checks the index too and names the bad key.
Test(tokenizer, inspect_verify_checks_the_index) {
    char *dir = tu_mkdtemp(), *path = tu_path(dir, "tok.semb");
    write_tok_semb(path, true, NULL, NULL, true);
    char *cmd = NULL, *out = NULL;
    cr_assert(asprintf(&cmd, "'%s' inspect --verify '%s' 2>&1", tu_cli(), path) > 0);
    int rc = tu_run(cmd, &out);
    cr_expect_eq(rc, 0, "good index: exit %d [%s]", rc, out);
    cr_expect(out && strstr(out, "tokenizer index matches"), "reports the index check: [%s]", out);
    free(out);
    struct ixfile x;
    ix_load(&x, path);
    uint64_t a = 0;
    while (!ix_get(&x, x.cont, a)) a++;
    ix_set(&x, x.cont, a, 0); // a continuing token can no longer be found
    uint64_t dir_end;
    memcpy(&dir_end, x.buf + 32, 8);
    uint64_t h = XXH3_64bits(x.buf, (size_t)dir_end);
    memcpy(x.buf + dir_end, &h, 8);
    cr_assert_eq(tu_write_file(path, x.buf, x.len), 0);
    free(x.buf);
    rc = tu_run(cmd, &out);
    cr_expect_eq(rc, 1, "corrupt index: exit %d", rc);
    cr_expect(out && strstr(out, "tokenizer.index.cont") && strstr(out, "slot"), "names the key and slot: [%s]", out);
    free(out);
    free(cmd);
    tu_rmtree(dir);
    free(path);
    free(dir);
}

// Above 65535 tokens the tables take u32 slots; a duplicate token resolves to its last id (HF's
// vocabulary map) in the index, the built tables and create() alike.
Test(tokenizer, large_vocabulary_u32_slots_and_duplicates, .timeout = 300) {
    if (!g_vocab.buf) cr_assert_eq(vocab_load(&g_vocab), 0, "cannot read the vocab");
    const size_t extra = 20000, n = g_vocab.n + 2 * extra + 1;
    char **v = malloc(n * sizeof *v);
    for (size_t i = 0; i < g_vocab.n; i++) v[i] = strdup(g_vocab.tok[i]);
    for (size_t i = 0; i < extra; i++) {
        cr_assert(asprintf(&v[g_vocab.n + 2 * i], "qz%zu", i) > 0);
        cr_assert(asprintf(&v[g_vocab.n + 2 * i + 1], "##qz%zu", i) > 0);
    }
    v[n - 1] = strdup("hello"); // a duplicate: the last one wins
    char *dir = tu_mkdtemp(), *paths[2] = {tu_path(dir, "indexed.semb"), tu_path(dir, "plain.semb")};
    for (int k = 0; k < 2; k++) {
        struct sembed_writer *w = NULL;
        cr_assert_eq(sembed_writer_create(paths[k], &w), 0);
        int rc = sembed_writer_add_str(w, "tokenizer.model", "wordpiece");
        if (!rc) rc = sembed_writer_add_arr_str(w, "tokenizer.vocab", (const char *const *)v, n);
        static const char *const b[] = {"tokenizer.lowercase", "tokenizer.strip_accents", "tokenizer.handle_chinese_chars",
                                        "tokenizer.clean_text"};
        for (int i = 0; i < 4 && !rc; i++) rc = sembed_writer_add_bool(w, b[i], true);
        static const char *const sp[][2] = {{"tokenizer.unk_token", "[UNK]"}, {"tokenizer.cls_token", "[CLS]"},
                                            {"tokenizer.sep_token", "[SEP]"}, {"tokenizer.pad_token", "[PAD]"}};
        for (int i = 0; i < 4 && !rc; i++) rc = sembed_writer_add_str(w, sp[i][0], sp[i][1]);
        if (!rc && k == 0) rc = sembed_writer_add_tokenizer_index(w, (const char *const *)v, n, NULL);
        cr_assert_eq(rc, 0, "writer: %s", sembed_strerror(rc));
        cr_assert_eq(sembed_writer_finish(w), 0);
    }
    struct sembed_file *f[2];
    struct sembed_tokenizer *t[3] = {NULL, NULL, NULL};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(sembed_file_open(paths[k], &f[k]), 0);
        cr_assert_eq(sembed_tokenizer_borrow_file(f[k], &t[k]), 0);
    }
    enum sembed_type et;
    uint64_t cap = 0;
    cr_assert_eq(sembed_file_kv_array_info(f[0], sembed_file_find_kv(f[0], "tokenizer.index.all"), &et, &cap), 0);
    cr_expect_eq(et, SEMBED_TYPE_U32, "%zu tokens need u32 slots, got %s", n, sembed_type_name(et));
    cr_expect_eq(cap, 262144, "smallest power of two >= 2 x %zu: got %llu", n, (unsigned long long)cap);
    cr_expect_eq(sembed_file_verify_tokenizer_index(f[0]), 0);
    struct sembed_tokenizer_params p = sembed_tokenizer_default_params();
    p.mask_token = NULL;
    cr_assert_eq(sembed_tokenizer_create((const char *const *)v, n, &p, &t[2]), 0);
    static const char *const names[3] = {"borrow+index", "borrow, no index", "create"};
    for (int k = 0; k < 3; k++) {
        cr_expect_eq(sembed_tokenizer_id(t[k], "hello"), (int32_t)(n - 1), "%s: duplicate 'hello' -> %d", names[k],
                     sembed_tokenizer_id(t[k], "hello"));
        cr_expect_eq(sembed_tokenizer_id(t[k], "##qz19999"), (int32_t)(n - 2), "%s", names[k]);
    }
    const char *texts[] = {"hello qz123 qz19999qz7 qz1qz2qz3 unaffable", "Hello, world! qz00001 café 我想", "qz5##qz5 hello"};
    for (int i = 0; i < 3; i++) {
        char *want = ids_str(t[2], texts[i], SIZE_MAX);
        for (int k = 0; k < 2; k++) {
            char *got = ids_str(t[k], texts[i], SIZE_MAX);
            cr_expect_str_eq(got, want, "%s on '%s': [%s], create: [%s]", names[k], texts[i], got, want);
            free(got);
        }
        free(want);
    }
    for (int k = 0; k < 3; k++) sembed_tokenizer_free(t[k]);
    for (int k = 0; k < 2; k++) {
        sembed_file_free(f[k]);
        free(paths[k]);
    }
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
    tu_rmtree(dir);
    free(dir);
}
