// `sembed embed`, `sembed similarity` and `sembed bench` end to end: every output format carries
// exactly what the C API computes, stdin streaming keeps order over chunk boundaries, flags and
// failures give the documented exit codes.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/sembed.h"
#include "testutil.h"

static char model_path[1024];
static char *tmpdir;

static void setup(void) {
    if (tu_run("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1", NULL) != 0)
        cr_skip_test("/usr/bin/python3 with torch and numpy is not available");
    TU_DATA_FILE_OR_SKIP(vocab, "vocab/bert-base-uncased/vocab.txt");
    TU_DATA_FILE_OR_SKIP(sts, "sts/STSBenchmark/sts-dev.csv");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/models/gen/golden.py --out-dir %s/golden --name cli_tiny --shape bert-tiny "
             "--dense 48:tanh --normalize --singles 2 --pairs 1 --vocab '%s' --sts '%s'",
             tu_source_dir(), SEMBED_BINARY_DIR, vocab, sts);
    free(vocab);
    free(sts);
    cr_assert_eq(tu_run(cmd, NULL), 0, "golden.py failed: %s", cmd);
    snprintf(model_path, sizeof model_path, "%s/golden/cli_tiny.semb", SEMBED_BINARY_DIR);
    tmpdir = tu_mkdtemp();
    cr_assert(tmpdir);
}

static void teardown(void) {
    tu_rmtree(tmpdir);
    free(tmpdir);
    tmpdir = NULL;
}

TestSuite(embed_cli, .init = setup, .fini = teardown, .timeout = 600);

// Run a shell command line built from fmt; returns the exit status, output in *out (heap).
static int sh(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh(char **out, const char *fmt, ...) {
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    cr_assert(vasprintf(&cmd, fmt, ap) > 0);
    va_end(ap);
    int st = tu_run(cmd, out);
    free(cmd);
    return st;
}

// What the library computes for these inputs with the model's defaults.
static float *api_embed(const char *const *a, const char *const *b, size_t n, uint32_t *dim) {
    struct sembed_model *m = NULL;
    cr_assert_eq(sembed_model_load(model_path, NULL, &m), 0);
    struct sembed_context *ctx = NULL;
    cr_assert_eq(sembed_context_create(m, NULL, &ctx), 0);
    *dim = sembed_model_dim(m);
    float *e = malloc(n * *dim * sizeof(float));
    cr_assert(e);
    cr_assert_eq(sembed_embed_pairs(ctx, a, b, n, e), 0);
    sembed_context_free(ctx);
    sembed_model_free(m);
    return e;
}

// Parse rows of floats separated by sep (',' inside [..] for JSONL, '\t' for TSV).
static size_t parse_rows(const char *text, bool json, float *v, size_t cap, size_t *rows) {
    size_t n = 0;
    *rows = 0;
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        cr_assert(eol, "output does not end with a newline");
        const char *q = p;
        if (json) {
            cr_assert_eq(*q, '[', "JSONL line does not start with '[': %.40s", p);
            q++;
            cr_assert_eq(eol[-1], ']', "JSONL line does not end with ']'");
        }
        while (q < eol) {
            char *end = NULL;
            float x = strtof(q, &end);
            cr_assert(end != q, "not a number at: %.20s", q);
            cr_assert(n < cap, "more values than expected");
            v[n++] = x;
            q = end;
            if (*q == ',' || *q == '\t') q++;
            else if (*q == ']') q++;
        }
        (*rows)++;
        p = eol + 1;
    }
    return n;
}

Test(embed_cli, help_and_usage_errors) {
    char *out = NULL;
    cr_expect_eq(sh(&out, "%s embed --help", tu_cli()), 0);
    cr_expect(out && strstr(out, "usage: sembed embed"), "--help prints usage on stdout");
    free(out);
    cr_expect_eq(sh(NULL, "%s embed -m %s --bogus x 2>/dev/null", tu_cli(), model_path), 2, "unknown flag: exit 2");
    cr_expect_eq(sh(NULL, "%s embed x 2>/dev/null", tu_cli()), 2, "missing -m: exit 2");
    cr_expect_eq(sh(NULL, "%s embed -m %s --format xml x 2>/dev/null", tu_cli(), model_path), 2);
    cr_expect_eq(sh(NULL, "%s embed -m %s --pooling avg x 2>/dev/null", tu_cli(), model_path), 2);
    cr_expect_eq(sh(NULL, "%s embed -m %s --batch 0 x 2>/dev/null", tu_cli(), model_path), 2);
    cr_expect_eq(sh(NULL, "%s embed -m %s --max-length 100000 x 2>/dev/null", tu_cli(), model_path), 2,
                 "max length above the model's is a usage error");
    cr_expect_eq(sh(NULL, "%s embed -m %s/nope.semb x 2>/dev/null", tu_cli(), tmpdir), 1, "missing model: exit 1");
    cr_expect_eq(sh(NULL, "%s similarity --help >/dev/null", tu_cli()), 0);
    cr_expect_eq(sh(NULL, "%s similarity -m %s onlyone 2>/dev/null", tu_cli(), model_path), 2);
    cr_expect_eq(sh(NULL, "%s bench --help >/dev/null", tu_cli()), 0);
    cr_expect_eq(sh(NULL, "%s bench -m %s --batch x 2>/dev/null", tu_cli(), model_path), 2);
}

Test(embed_cli, jsonl_and_tsv_equal_the_api) {
    const char *texts[] = {"a man is playing a guitar .", "", "Ünïcödé and 漢字 and \xff invalid", "the cat sat"};
    uint32_t dim;
    float *want = api_embed(texts, NULL, 4, &dim);
    float *got = malloc(4 * dim * sizeof(float));
    char *out = NULL;
    size_t rows;
    // arguments
    cr_assert_eq(sh(&out, "%s embed -m %s 'a man is playing a guitar .' '' \"$(printf '\\303\\234n\\303\\257c\\303\\266d"
                          "\\303\\251 and \\346\\274\\242\\345\\255\\227 and \\377 invalid')\" 'the cat sat'",
                    tu_cli(), model_path),
                 0);
    cr_expect_eq(parse_rows(out, true, got, 4 * dim, &rows), 4 * dim);
    cr_expect_eq(rows, 4);
    for (size_t i = 0; i < 4 * dim; i++)
        cr_assert_eq(got[i], want[i], "JSONL value %zu: got %.9g, API %.9g", i, got[i], want[i]);
    free(out);
    // stdin, TSV
    char *in = tu_path(tmpdir, "in.txt");
    const char *lines = "a man is playing a guitar .\n\nÜnïcödé and 漢字 and \xff invalid\r\nthe cat sat";
    cr_assert_eq(tu_write_file(in, lines, strlen(lines)), 0);
    cr_assert_eq(sh(&out, "%s embed -m %s -f tsv < %s", tu_cli(), model_path, in), 0);
    cr_expect_eq(parse_rows(out, false, got, 4 * dim, &rows), 4 * dim);
    cr_expect_eq(rows, 4, "4 stdin lines (one empty, CRLF, no final newline) give 4 rows, got %zu", rows);
    for (size_t i = 0; i < 4 * dim; i++)
        cr_assert_eq(got[i], want[i], "TSV value %zu: got %.9g, API %.9g", i, got[i], want[i]);
    free(out);
    free(in);
    free(got);
    free(want);
}

Test(embed_cli, pairs_from_stdin_and_arguments) {
    const char *a[] = {"a man is dancing .", "a child rides a horse ."}, *b[] = {"a man dances .", "a horse ."};
    uint32_t dim;
    float *want = api_embed(a, b, 2, &dim);
    float *got = malloc(2 * dim * sizeof(float));
    char *out = NULL;
    size_t rows;
    cr_assert_eq(sh(&out, "printf 'a man is dancing .\\ta man dances .\\na child rides a horse .\\ta horse .\\n' | %s embed -m "
                          "%s --pairs",
                    tu_cli(), model_path),
                 0);
    cr_expect_eq(parse_rows(out, true, got, 2 * dim, &rows), 2 * dim);
    for (size_t i = 0; i < 2 * dim; i++) cr_assert_eq(got[i], want[i], "pair value %zu", i);
    free(out);
    cr_assert_eq(sh(&out, "%s embed -m %s --pairs 'a man is dancing .' 'a man dances .' 'a child rides a horse .' 'a horse .'",
                    tu_cli(), model_path),
                 0);
    cr_expect_eq(parse_rows(out, true, got, 2 * dim, &rows), 2 * dim);
    for (size_t i = 0; i < 2 * dim; i++) cr_assert_eq(got[i], want[i], "pair (arguments) value %zu", i);
    free(out);
    cr_expect_eq(sh(NULL, "%s embed -m %s --pairs odd 2>/dev/null", tu_cli(), model_path), 2, "odd pair arguments");
    free(got);
    free(want);
}

static void check_npy(const char *path, size_t n, uint32_t dim, const float *want) {
    size_t len;
    unsigned char *b = tu_read_file(path, &len);
    cr_assert(b, "cannot read %s", path);
    cr_assert(len > 10 && memcmp(b, "\x93NUMPY\x01\x00", 8) == 0, "%s: no .npy v1.0 magic", path);
    size_t hl = b[8] | (size_t)b[9] << 8;
    cr_assert_eq((10 + hl) % 64, 0, "data must start 64-aligned");
    cr_assert_eq(b[10 + hl - 1], '\n');
    char shape[64];
    snprintf(shape, sizeof shape, "'shape': (%zu, %u)", n, dim);
    cr_expect(memmem(b, 10 + hl, shape, strlen(shape)) != NULL, "%s: header lacks %s: %.*s", path, shape, (int)hl, b + 10);
    cr_expect(memmem(b, 10 + hl, "'descr': '<f4'", 14) != NULL);
    cr_assert_eq(len, 10 + hl + n * dim * 4, "%s: %zu bytes, expected %zu", path, len, 10 + hl + n * dim * 4);
    cr_expect(memcmp(b + 10 + hl, want, n * dim * 4) == 0, "%s: data differs from the API's (little-endian host)", path);
    free(b);
}

Test(embed_cli, f32_and_npy) {
    const char *texts[] = {"one", "two words", "three words here"};
    uint32_t dim;
    float *want = api_embed(texts, NULL, 3, &dim);
    char *f32 = tu_path(tmpdir, "x.f32"), *p1 = tu_path(tmpdir, "args.npy"), *p2 = tu_path(tmpdir, "file.npy"),
         *p3 = tu_path(tmpdir, "pipe.npy"), *p4 = tu_path(tmpdir, "o.npy");
    cr_assert_eq(sh(NULL, "%s embed -m %s -f f32 one 'two words' 'three words here' > %s", tu_cli(), model_path, f32), 0);
    size_t len;
    void *raw = tu_read_file(f32, &len);
    cr_assert_eq(len, 3 * dim * 4);
    cr_expect(memcmp(raw, want, len) == 0, "f32 bytes differ from the API's");
    free(raw);
    const char *lines = "printf 'one\\ntwo words\\nthree words here\\n'";
    cr_assert_eq(sh(NULL, "%s embed -m %s -f npy one 'two words' 'three words here' > %s", tu_cli(), model_path, p1), 0);
    cr_assert_eq(sh(NULL, "%s | %s embed -m %s -f npy > %s", lines, tu_cli(), model_path, p2), 0);   // seekable: patched
    cr_assert_eq(sh(NULL, "%s | %s embed -m %s -f npy | cat > %s", lines, tu_cli(), model_path, p3), 0); // pipe: spooled
    cr_assert_eq(sh(NULL, "%s | %s embed -m %s -f npy -o %s", lines, tu_cli(), model_path, p4), 0);
    check_npy(p1, 3, dim, want);
    check_npy(p2, 3, dim, want);
    check_npy(p3, 3, dim, want);
    check_npy(p4, 3, dim, want);
    // a failed run leaves no -o file behind (and does not replace an existing one)
    char *p5 = tu_path(tmpdir, "fail.npy");
    cr_expect_eq(sh(NULL, "%s embed -m %s --max-length 4 --truncate error -f npy -o %s 'far too long for four tokens' 2>/dev/null",
                    tu_cli(), model_path, p5),
                 1);
    cr_expect(!tu_file_exists(p5), "failed run left %s", p5);
    char *ls = NULL;
    sh(&ls, "ls -A %s | grep -c tmp-", tmpdir);
    cr_expect(ls && atoi(ls) == 0, "temporary files left in %s", tmpdir);
    free(ls);
    // numpy reads them
    cr_expect_eq(sh(NULL, "/usr/bin/python3 -c \"import numpy as np; a=np.load('%s'); b=np.load('%s'); "
                          "assert a.shape==(3,%u) and (a==b).all()\"", p1, p3, dim), 0, "numpy.load");
    free(f32); free(p1); free(p2); free(p3); free(p4); free(p5);
    free(want);
}

Test(embed_cli, truncation_is_counted_or_refused) {
    char *out = NULL;
    cr_assert_eq(sh(&out, "%s embed -m %s --max-length 6 'this sentence has more than six tokens' short 2>&1 >/dev/null",
                    tu_cli(), model_path),
                 0);
    cr_expect(out && strstr(out, "1 of 2 inputs") && strstr(out, "truncated"), "stderr should count 1 truncated input: %s",
              out ? out : "(null)");
    free(out);
    cr_expect_eq(sh(NULL, "%s embed -m %s --max-length 6 --truncate error 'this sentence has more than six tokens' "
                          ">/dev/null 2>&1", tu_cli(), model_path),
                 1);
    // truncated input embeds like its first max_length tokens
    char *a = NULL, *b = NULL;
    sh(&a, "%s embed -m %s --max-length 6 'one two three four five six seven'", tu_cli(), model_path);
    sh(&b, "%s embed -m %s --max-length 6 'one two three four'", tu_cli(), model_path);
    cr_expect(a && b && strcmp(a, b) == 0, "truncation to 6 tokens = [CLS] + 4 words + [SEP]");
    free(a);
    free(b);
}

// More lines than one read chunk (1024): order and count survive chunk boundaries.
Test(embed_cli, streaming_keeps_order) {
    char *in = tu_path(tmpdir, "many.txt");
    FILE *f = fopen(in, "w");
    cr_assert(f);
    const int N = 1100;
    for (int i = 0; i < N; i++) fprintf(f, "w%d\n", i % 5);
    fclose(f);
    char *out = NULL;
    cr_assert_eq(sh(&out, "%s embed -m %s --batch 7 --threads 2 < %s", tu_cli(), model_path, in), 0);
    char **line = calloc((size_t)N + 1, sizeof *line);
    int n = 0;
    for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        cr_assert(n < N + 1);
        line[n++] = l;
    }
    cr_assert_eq(n, N, "expected %d lines, got %d", N, n);
    for (int i = 5; i < N; i++) cr_assert_str_eq(line[i], line[i % 5], "line %d should equal line %d", i, i % 5);
    cr_expect_str_neq(line[0], line[1]);
    free(line);
    free(out);
    free(in);
}

Test(embed_cli, similarity_matrix) {
    char *out = NULL;
    cr_assert_eq(sh(&out, "%s similarity -m %s --tsv 'a man is playing a guitar .' 'a man plays guitar .' 'an onion .'",
                    tu_cli(), model_path),
                 0);
    double s[3][3];
    char *p = out;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            char *end;
            s[i][j] = strtod(p, &end);
            cr_assert(end != p, "matrix value (%d,%d) missing in: %s", i, j, out);
            p = end;
        }
    for (int i = 0; i < 3; i++) {
        cr_expect(fabs(s[i][i] - 1.0) < 1e-5, "diagonal %d = %f", i, s[i][i]);
        for (int j = 0; j < 3; j++) cr_expect_eq(s[i][j], s[j][i], "symmetric (%d,%d)", i, j);
    }
    free(out);
    cr_assert_eq(sh(&out, "%s similarity -m %s 'first text' 'second text'", tu_cli(), model_path), 0);
    cr_expect(strstr(out, "[  0] first text") && strstr(out, "1.0000"), "readable table with a legend: %s", out);
    free(out);
}

Test(embed_cli, bench_runs) {
    char *out = NULL;
    cr_assert_eq(sh(&out, "%s bench -m %s --batch 2 --tokens 8 --seconds 0.01 --warmup 0", tu_cli(), model_path), 0);
    cr_expect(out && strstr(out, "sentences/s"), "bench prints a table: %s", out ? out : "");
    free(out);
}

// --int8 / --compute: the CLI's int8 rows are exactly what the C API computes with
// SEMBED_COMPUTE_INT8, close to f32; --compute f32 equals the default on an f32 file; bad values
// are usage errors; --verify passes on a good file.
Test(embed_cli, compute_modes) {
    const char *texts[] = {"one", "two words", "three words here"};
    uint32_t dim;
    float *f32 = api_embed(texts, NULL, 3, &dim);
    struct sembed_model_params mp = sembed_model_default_params();
    mp.compute = SEMBED_COMPUTE_INT8;
    struct sembed_model *m = NULL;
    cr_assert_eq(sembed_model_load(model_path, &mp, &m), 0);
    struct sembed_context *ctx = NULL;
    cr_assert_eq(sembed_context_create(m, NULL, &ctx), 0);
    float *i8 = malloc(3 * dim * sizeof(float));
    cr_assert(i8);
    cr_assert_eq(sembed_embed_texts(ctx, texts, 3, i8), 0);
    sembed_context_free(ctx);
    sembed_model_free(m);

    char *p_int8 = tu_path(tmpdir, "i8.f32"), *p_c = tu_path(tmpdir, "c.f32"), *p_f = tu_path(tmpdir, "f.f32");
    cr_assert_eq(sh(NULL, "%s embed -m %s --int8 -f f32 one 'two words' 'three words here' > %s", tu_cli(), model_path, p_int8), 0);
    cr_assert_eq(sh(NULL, "%s embed -m %s --compute int8 --verify -f f32 one 'two words' 'three words here' > %s", tu_cli(),
                    model_path, p_c), 0);
    cr_assert_eq(sh(NULL, "%s embed -m %s --compute f32 -f f32 one 'two words' 'three words here' > %s", tu_cli(), model_path, p_f), 0);
    size_t len;
    void *a = tu_read_file(p_int8, &len);
    cr_assert(a && len == 3 * dim * 4);
    cr_expect(memcmp(a, i8, len) == 0, "--int8 rows differ from the API's int8 rows");
    void *b = tu_read_file(p_c, &len);
    cr_assert(b && len == 3 * dim * 4);
    cr_expect(memcmp(b, i8, len) == 0, "--compute int8 rows differ from the API's int8 rows");
    void *c = tu_read_file(p_f, &len);
    cr_assert(c && len == 3 * dim * 4);
    cr_expect(memcmp(c, f32, len) == 0, "--compute f32 rows differ from the default (f32 file)");
    for (int i = 0; i < 3; i++) {
        double xy = 0, xx = 0, yy = 0;
        for (uint32_t j = 0; j < dim; j++) {
            double x = f32[i * dim + j], y = i8[i * dim + j];
            xy += x * y; xx += x * x; yy += y * y;
        }
        double cs = xy / sqrt(xx * yy);
        cr_expect(cs >= 0.999, "text %d: int8 vs f32 cosine %.6f", i, cs);
    }
    cr_expect_eq(sh(NULL, "%s embed -m %s --compute int4 x 2>/dev/null", tu_cli(), model_path), 2);
    cr_expect_eq(sh(NULL, "%s similarity -m %s --compute fp8 a b 2>/dev/null", tu_cli(), model_path), 2);
    cr_expect_eq(sh(NULL, "%s similarity -m %s --int8 a b >/dev/null", tu_cli(), model_path), 0);
    char *out = NULL;
    cr_expect_eq(sh(&out, "%s bench -m %s --int8 -b 1 -T 8 -s 0.05 -w 1", tu_cli(), model_path), 0);
    cr_expect(out && strstr(out, "compute int8"), "bench header should name the compute mode: %s", out ? out : "");
    free(out);
    free(a); free(b); free(c); free(f32); free(i8);
    free(p_int8); free(p_c); free(p_f);
}

// -o onto a FIFO (as onto /dev/null or a terminal): the output goes through it and the FIFO is
// still a FIFO afterwards; an atomic rename would have replaced the node with a regular file.
// A model writer (convert) refuses such a destination by name.
Test(embed_cli, output_onto_a_non_regular_file) {
    char *fifo = tu_path(tmpdir, "pipe"), *got = tu_path(tmpdir, "got.f32"), *out = NULL;
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    int st = sh(&out, "cat '%s' > '%s' & %s embed -m %s -f f32 -o '%s' 'a man plays a guitar' 'a dog runs'; s=$?; wait; "
                      "exit $s", fifo, got, tu_cli(), model_path, fifo);
    cr_assert_eq(st, 0, "embed -o FIFO failed: %s", out);
    free(out);
    struct stat sb;
    cr_assert_eq(stat(fifo, &sb), 0);
    cr_assert(S_ISFIFO(sb.st_mode), "the FIFO was replaced by a file of mode %o", (unsigned)sb.st_mode);
    cr_assert_eq(stat(got, &sb), 0);
    uint32_t dim = 0;
    const char *a[] = {"a man plays a guitar", "a dog runs"};
    float *want = api_embed(a, NULL, 2, &dim);
    cr_assert_eq((size_t)sb.st_size, 2 * dim * sizeof(float), "%lld bytes came through", (long long)sb.st_size);
    free(want);
    st = sh(&out, "%s convert %s -o '%s' 2>&1", tu_cli(), model_path, fifo);
    cr_assert(st != 0 && strstr(out, "not a regular file"), "convert onto a FIFO: exit %d: %s", st, out);
    cr_assert_eq(stat(fifo, &sb), 0);
    cr_assert(S_ISFIFO(sb.st_mode), "convert replaced the FIFO");
    free(out);
    free(fifo);
    free(got);
}
