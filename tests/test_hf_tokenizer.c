// tokenizer.json tokenizers (runtime/tokenizer/hf*.c) against HF tokenizers (npm `tokenizers`):
// ids, type ids AND offsets, for tokenizer.json files of every model type trained by HF's own
// trainers (tests/tokenizer/make_hf_json.js -> tests/tokenizer/hf/*.json):
//  - golden: tests/tokenizer/hf/golden.txt (hand-written hard cases) against the committed HF
//    outputs tests/tokenizer/hf/<name>.golden (no node needed);
//  - corpus: the parity corpus of test_tokenizer (corpus.js over ../shared/data: 87k lines, 30k
//    pairs) against HF run live, when node and ../shared are there (skipped with the reason if not);
//  - hostile files: every malformed tokenizer.json gets an error naming the problem.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include "runtime/tokenizer/unicode.h"
#include "sembed/semb.h"
#include "sembed/tokenizer.h"
#include "testutil.h"

static char *src_file(const char *rel) { return tu_path(tu_source_dir(), rel); }

static struct sembed_tokenizer *load(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/tokenizer/hf/%s.json", name);
    char *p = src_file(rel);
    size_t len = 0;
    char *js = tu_read_file(p, &len);
    cr_assert(js, "cannot read %s", p);
    struct sembed_tokenizer *t = NULL;
    int rc = sembed_tokenizer_from_hf_json(js, len, 0, &t);
    cr_assert_eq(rc, 0, "%s: sembed_tokenizer_from_hf_json failed: %s", p, sembed_strerror(rc));
    free(js);
    free(p);
    return t;
}

// Valid UTF-8 copy of s (ill-formed subsequences -> U+FFFD, as the oracle's TextDecoder does).
static char *sanitize(const char *s, size_t n, size_t *out_len) {
    char *o = malloc(n * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        i += tk_utf8_decode((const uint8_t *)s + i, n - i, &c);
        k += tk_utf8_encode(c, o + k);
    }
    o[k] = 0;
    *out_len = k;
    return o;
}

// Code point offset of byte offset b in s, as HF's bindings convert them: the index of the
// character holding byte b (b may fall inside a character after byte-level offset trimming),
// and the character count at the end of the text.
static size_t cp_index(const char *s, size_t len, size_t b) {
    size_t n = 0;
    if (b >= len) {
        for (size_t i = 0; i < len; i++) n += ((uint8_t)s[i] & 0xC0) != 0x80;
        return n;
    }
    for (size_t i = 0; i <= b; i++) n += ((uint8_t)s[i] & 0xC0) != 0x80;
    return n - 1;
}

static size_t fmt_enc(char *got, const struct sembed_encoding *e, const char *a, size_t al, const char *b, size_t bl,
                      int cut) {
    size_t k = 0;
    for (size_t i = 0; i < e->n; i++) k += (size_t)sprintf(got + k, i ? " %d" : "%d", e->ids[i]);
    got[k++] = '\t';
    for (size_t i = 0; i < e->n; i++) k += (size_t)sprintf(got + k, i ? " %d" : "%d", e->type_ids[i]);
    got[k++] = '\t';
    for (size_t i = 0; i < e->n; i++) {
        const char *s = e->seq_ids[i] == 1 ? b : a;
        size_t sl = e->seq_ids[i] == 1 ? bl : al;
        size_t st = e->seq_ids[i] < 0 ? 0 : cp_index(s, sl, e->start[i]), en = e->seq_ids[i] < 0 ? 0 : cp_index(s, sl, e->end[i]);
        k += (size_t)sprintf(got + k, i ? " %zu,%zu" : "%zu,%zu", st, en);
    }
    if (cut >= 0) k += (size_t)sprintf(got + k, "\t%d", cut);
    got[k] = 0;
    return k;
}

// True when s holds a code point that our Unicode tables (utf8proc's or PCRE2's) call unassigned
// although it is not a noncharacter: HF's tables are newer (Unicode 15/16: e.g. U+1AC1..U+1ACE,
// U+105C0) and class, reorder and split such characters differently. Those lines are counted and
// reported apart; every other line must match.
static bool newer_unicode(const char *s, size_t n) {
    static pcre2_code *cn;
    static pcre2_match_data *md;
    if (!cn) {
        int err;
        PCRE2_SIZE off;
        cn = pcre2_compile((PCRE2_SPTR) "\\p{Cn}", PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
        md = pcre2_match_data_create(4, NULL);
    }
    for (size_t i = 0; i < n;) {
        uint32_t c;
        i += tk_utf8_decode((const uint8_t *)s + i, n - i, &c);
        if ((c & 0xFFFE) == 0xFFFE || (c >= 0xFDD0 && c <= 0xFDEF)) continue;
        if (utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_CN) return true;
    }
    return pcre2_match(cn, (PCRE2_SPTR)s, n, 0, 0, md, NULL) >= 0;
}

// Encode every line of input with t and compare with the oracle's lines; returns mismatches among
// the lines without newer code points (*n_newer of those, *bad_newer differing).
static size_t compare(const char *name, struct sembed_tokenizer *t, const char *input, const char *expected, bool pairs,
                      uint32_t max_len, size_t *n_lines, size_t *n_newer, size_t *bad_newer) {
    *n_newer = *bad_newer = 0;
    size_t in_len = 0, ex_len = 0;
    char *in = tu_read_file(input, &in_len), *ex = tu_read_file(expected, &ex_len);
    cr_assert(in && ex, "cannot read %s or %s", input, expected);
    size_t lines = 0, bad = 0;
    char *ip = in, *ep = ex;
    // SEMBED_HF_DIFFS=FILE: every differing line goes there (input, HF, ours), for investigation.
    FILE *dump = getenv("SEMBED_HF_DIFFS") ? fopen(getenv("SEMBED_HF_DIFFS"), "a") : NULL;
    while (ip < in + in_len) {
        char *ie = memchr(ip, '\n', (size_t)(in + in_len - ip));
        if (!ie) ie = in + in_len;
        char *ee = ep < ex + ex_len ? memchr(ep, '\n', (size_t)(ex + ex_len - ep)) : NULL;
        cr_assert(ee, "[%s] oracle output has fewer lines than the input (%zu)", name, lines);
        *ee = 0;
        size_t ln;
        char *line = sanitize(ip, (size_t)(ie - ip), &ln);
        char *a = line, *b = NULL;
        size_t al = ln, bl = 0;
        if (pairs) {
            char *tab = memchr(line, '\t', ln);
            if (tab) { *tab = 0; b = tab + 1; bl = ln - (size_t)(b - line); al = (size_t)(tab - line); }
            else b = line + ln;
        }
        struct sembed_encoding e;
        bool cut = false;
        int rc = sembed_tokenizer_encode_full(t, a, al, b, bl, true, max_len, SEMBED_TRUNCATE_LONGEST_FIRST, &e, &cut);
        cr_assert_eq(rc, 0, "[%s] line %zu: encode failed: %s", name, lines + 1, sembed_strerror(rc));
        char *got = malloc(e.n * 40 + 64);
        fmt_enc(got, &e, a, al, b, bl, max_len ? (int)cut : -1);
        bool newer = newer_unicode(line, ln);
        *n_newer += newer;
        if (strcmp(got, ep) != 0 && newer) {
            (*bad_newer)++;
        } else if (strcmp(got, ep) != 0) {
            if (bad < 5) {
                char esc[401];
                size_t m = 0;
                for (const char *q = ip; q < ie && m < 380; q++) {
                    unsigned char ch = (unsigned char)*q;
                    if (ch >= 0x20 && ch < 0x7f && ch != '\\') esc[m++] = (char)ch;
                    else m += (size_t)sprintf(esc + m, "\\x%02x", ch);
                }
                esc[m] = 0;
                cr_log_error("[%s] line %zu differs\n  text: %s\n  HF:   %.400s\n  ours: %.400s", name, lines + 1, esc, ep, got);
            }
            if (dump) fprintf(dump, "[%s] line %zu\n%.*s\n%s\n%s\n", name, lines + 1, (int)(ie - ip), ip, ep, got);
            bad++;
        }
        free(got);
        free(line);
        sembed_encoding_free(&e);
        lines++;
        ip = ie + 1;
        ep = ee + 1;
    }
    if (dump) fclose(dump);
    free(in);
    free(ex);
    *n_lines = lines;
    return bad;
}

/* ------------------------------------------------------------------ committed goldens */

static void golden(const char *name, bool pairs, uint32_t max_len, const char *suffix) {
    struct sembed_tokenizer *t = load(name);
    char rel[256];
    snprintf(rel, sizeof rel, "tests/tokenizer/hf/%s%s.golden", name, suffix);
    char *ex = src_file(rel), *in = src_file(pairs ? "tests/tokenizer/hf/golden_pairs.txt" : "tests/tokenizer/hf/golden.txt");
    size_t lines = 0, nn, bn, bad = compare(name, t, in, ex, pairs, max_len, &lines, &nn, &bn);
    cr_log_info("[%s%s] %zu/%zu golden lines match HF (ids, type ids, offsets)", name, suffix, lines - bad - bn, lines);
    cr_expect_eq(nn, 0, "golden lines use code points our Unicode tables know");
    cr_expect_eq(bad, 0, "[%s%s] %zu of %zu golden lines differ from HF", name, suffix, bad, lines);
    cr_expect_gt(lines, 50);
    free(ex);
    free(in);
    sembed_tokenizer_free(t);
}

#define GOLDEN(n)                                                                  \
    Test(hf_tokenizer, golden_##n) { golden(#n, false, 0, ""); }                   \
    Test(hf_tokenizer, golden_pairs_##n) { golden(#n, true, 24, ".pairs24"); }
GOLDEN(roberta_bpe)
GOLDEN(gpt2_bpe_prefix)
GOLDEN(xlmr_unigram)
GOLDEN(unigram_bytefallback)
GOLDEN(wordlevel)
GOLDEN(bert_wordpiece)
GOLDEN(wordpiece_split)

/* ------------------------------------------------------------------ corpus vs live HF */

static const char *node_skip_reason(void) {
    if (tu_run("node --version >/dev/null 2>&1", NULL) != 0) return "node is not installed (apt-get install nodejs)";
    char *m = tu_path(tu_source_dir(), "tools/node/node_modules/tokenizers/package.json");
    int ok = tu_file_exists(m);
    free(m);
    if (!ok) return "HF tokenizers npm package missing: run (cd tools/node && npm ci)";
    char *d = tu_path(tu_data_dir(), "train/wiki1m_head.txt");
    ok = tu_file_exists(d);
    free(d);
    if (!ok) return "../shared/data is absent: the corpus cannot be built";
    return NULL;
}

static long mtime_of(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_mtime : -1;
}

static void make_if_stale(const char *out, const char *const *deps, const char *cmd) {
    long tm = mtime_of(out);
    bool stale = tm < 0;
    for (const char *const *d = deps; *d && !stale; d++) stale = mtime_of(*d) >= tm;
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

// Every stride-th line of src into dst (rebuilt when src is newer). The full corpus under the
// sanitizer build takes ~1 min per tokenizer; SEMBED_HF_CORPUS_STRIDE=1 runs all of it.
static void subset(const char *src, const char *dst, unsigned stride) {
    if (mtime_of(dst) > mtime_of(src) && mtime_of(dst) >= 0) return;
    size_t n = 0;
    char *in = tu_read_file(src, &n);
    cr_assert(in, "cannot read %s", src);
    char *out = malloc(n + 1);
    size_t k = 0, line = 0;
    for (char *p = in; p < in + n;) {
        char *e = memchr(p, '\n', (size_t)(in + n - p));
        if (!e) e = in + n;
        if (line++ % stride == 0) { memcpy(out + k, p, (size_t)(e - p)); k += (size_t)(e - p); out[k++] = '\n'; }
        p = e + 1;
    }
    cr_assert_eq(tu_write_file(dst, out, k), 0);
    free(in);
    free(out);
}

static void corpus(const char *name, bool pairs, uint32_t max_len) {
    const char *why = node_skip_reason();
    if (why) cr_skip_test("%s", why);
    char *cjs = src_file("tests/tokenizer/corpus.js"), *hard = src_file("tests/tokenizer/hard_cases.txt");
    char *cin = tu_path(work_dir(), "corpus.txt"), *pin = tu_path(work_dir(), "pairs.tsv"), *cmd = NULL;
    cr_assert(asprintf(&cmd, "node '%s' '%s' '%s' '%s' 2>&1", cjs, tu_data_dir(), hard, work_dir()) > 0);
    const char *cdeps[] = {cjs, hard, NULL};
    make_if_stale(cin, cdeps, cmd);
    free(cmd);
    char rel[256], outn[256];
    snprintf(rel, sizeof rel, "tests/tokenizer/hf/%s.json", name);
    snprintf(outn, sizeof outn, "hfjson_%s%s_s%s.txt", name, pairs ? "_pairs" : "",
             getenv("SEMBED_HF_CORPUS_STRIDE") ? getenv("SEMBED_HF_CORPUS_STRIDE") : "8");
    char *tj = src_file(rel), *oracle = src_file("tests/tokenizer/hf_json_oracle.js"), *out = tu_path(work_dir(), outn);
    unsigned stride = getenv("SEMBED_HF_CORPUS_STRIDE") ? (unsigned)atoi(getenv("SEMBED_HF_CORPUS_STRIDE")) : 8;
    if (stride < 1) stride = 1;
    char sub[64];
    snprintf(sub, sizeof sub, "%s_s%u.txt", pairs ? "pairs" : "corpus", stride);
    char *subp = tu_path(work_dir(), sub);
    subset(pairs ? pin : cin, subp, stride);
    const char *input = subp;
    char lenarg[64] = "";
    if (max_len) snprintf(lenarg, sizeof lenarg, "--max-length %u", max_len);
    cr_assert(asprintf(&cmd, "node '%s' --tokenizer '%s' --input '%s' --output '%s' %s %s 2>&1", oracle, tj, input, out,
                       pairs ? "--pairs" : "", lenarg) > 0);
    const char *deps[] = {oracle, tj, input, NULL};
    make_if_stale(out, deps, cmd);
    struct sembed_tokenizer *t = load(name);
    size_t lines = 0, nn, bn, bad = compare(name, t, input, out, pairs, max_len, &lines, &nn, &bn);
    cr_log_info("[%s%s] %zu/%zu corpus lines match HF (ids, type ids, offsets); apart: %zu/%zu lines with code points "
                "newer than utf8proc %s / PCRE2's tables match", name, pairs ? " pairs" : "", lines - nn - bad,
                lines - nn, nn - bn, nn, utf8proc_unicode_version());
    cr_expect_eq(bad, 0, "[%s%s] %zu of %zu corpus lines differ from HF", name, pairs ? " pairs" : "", bad, lines - nn);
    cr_expect_gt(lines, 1000 / stride);
    sembed_tokenizer_free(t);
    free(cmd); free(cjs); free(hard); free(cin); free(pin); free(tj); free(oracle); free(out); free(subp);
}

#define CORPUS(n)                                                                                   \
    Test(hf_tokenizer, corpus_##n, .timeout = 900) { corpus(#n, false, 0); }                        \
    Test(hf_tokenizer, corpus_pairs_##n, .timeout = 900) { corpus(#n, true, 32); }
CORPUS(roberta_bpe)
CORPUS(gpt2_bpe_prefix)
CORPUS(xlmr_unigram)
CORPUS(unigram_bytefallback)
CORPUS(wordlevel)
CORPUS(bert_wordpiece)
CORPUS(wordpiece_split)
