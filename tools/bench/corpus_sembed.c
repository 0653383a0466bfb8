// corpus_sembed: the corpus job through libsembed's public API, for tools/bench/corpus.py.
//
// Reads SENTENCES.txt (one input per line, in file order), loads the model, then times the whole
// job: tokenization and embedding of every line with sembed_embed_texts in chunks of --batch
// inputs (the library packs each chunk's inputs without padding). Prints one JSON object on
// stdout: sentences, tokens (from sembed_context_stats, [CLS]/[SEP] included), padded tokens (0:
// nothing is padded), seconds, sentences/s, tokens/s, load_ms, peak RSS. Repeats the job --reps
// times after one untimed warm-up pass over the first chunk and reports the median.
//
// Build (corpus.py does it): cc -O2 -std=c11 -Iinclude tools/bench/corpus_sembed.c -Lbuild -lsembed
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "sembed/sembed.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fail(const char *stage, const char *msg) {
    printf("{\"peer\": \"sembed-api\", \"ok\": false, \"stage\": \"%s\", \"error\": \"", stage);
    for (const char *s = msg; *s; s++) {
        if (*s == '"' || *s == '\\') putchar('\\');
        if ((unsigned char)*s >= 0x20) putchar(*s);
    }
    printf("\"}\n");
    exit(1);
}

// Whole file in one block; lines split in place (the trailing newline of the last line optional).
static char **read_lines(const char *path, size_t *n_out, char **buf_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    for (size_t r; buf && (r = fread(buf + len, 1, cap - len - 1, f)) > 0;) {
        len += r;
        if (cap - len - 1 == 0) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb, cap *= 2;
        }
    }
    fclose(f);
    if (!buf) return NULL;
    buf[len] = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += buf[i] == '\n';
    if (len && buf[len - 1] != '\n') n++;
    char **lines = malloc((n ? n : 1) * sizeof *lines);
    if (!lines) { free(buf); return NULL; }
    size_t k = 0;
    char *p = buf;
    while (k < n) {
        lines[k++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        p = nl + 1;
    }
    *n_out = n;
    *buf_out = buf;
    return lines;
}

int main(int argc, char **argv) {
    const char *compute_s = "auto";
    int batch = 32, threads = 2, reps = 3;
    static const struct option lo[] = {{"compute", 1, 0, 'c'}, {"batch", 1, 0, 'b'}, {"threads", 1, 0, 't'},
                                       {"reps", 1, 0, 'r'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "c:b:t:r:", lo, NULL)) != -1;) {
        if (c == 'c') compute_s = optarg;
        else if (c == 'b') batch = atoi(optarg);
        else if (c == 't') threads = atoi(optarg);
        else if (c == 'r') reps = atoi(optarg);
        else { fprintf(stderr, "usage: corpus_sembed MODEL.semb SENTENCES.txt [--compute M] [--batch N] [--threads N] [--reps N]\n"); return 2; }
    }
    if (argc - optind != 2 || batch < 1 || threads < 1 || reps < 1 || reps > 64) {
        fprintf(stderr, "usage: corpus_sembed MODEL.semb SENTENCES.txt [--compute M] [--batch N] [--threads N] [--reps N]\n");
        return 2;
    }
    size_t n = 0;
    char *buf = NULL;
    char **lines = read_lines(argv[optind + 1], &n, &buf);
    if (!lines || n == 0) fail("input", "cannot read the sentences file, or it is empty");

    struct sembed_model_params mp = sembed_model_default_params();
    if (sembed_compute_parse(compute_s, &mp.compute) != 0) fail("args", "bad --compute");
    struct sembed_model *m = NULL;
    double t0 = now_s();
    int rc = sembed_model_load(argv[optind], &mp, &m);
    double load_ms = 1e3 * (now_s() - t0);
    if (rc) fail("load", sembed_strerror(rc));
    struct sembed_context_params cp = sembed_context_default_params();
    cp.n_threads = threads;
    cp.batch_size = (uint32_t)batch;
    struct sembed_context *ctx = NULL;
    if ((rc = sembed_context_create(m, &cp, &ctx))) fail("context", sembed_strerror(rc));
    uint32_t dim = sembed_model_dim(m);
    float *out = malloc((size_t)batch * dim * sizeof(float));
    if (!out) fail("alloc", "out of memory");

    // Warm-up: the first chunk once (lazy weight packing, page faults), not timed.
    size_t w = n < (size_t)batch ? n : (size_t)batch;
    if ((rc = sembed_embed_texts(ctx, (const char *const *)lines, w, out))) fail("embed", sembed_strerror(rc));

    double times[64];
    struct sembed_embed_stats st = {0};
    for (int r = 0; r < reps; r++) {
        sembed_context_stats_reset(ctx);
        double a = now_s();
        for (size_t i = 0; i < n; i += (size_t)batch) {
            size_t k = n - i < (size_t)batch ? n - i : (size_t)batch;
            if ((rc = sembed_embed_texts(ctx, (const char *const *)lines + i, k, out))) fail("embed", sembed_strerror(rc));
        }
        times[r] = now_s() - a;
        sembed_context_stats(ctx, &st);
    }
    qsort(times, (size_t)reps, sizeof times[0], cmp_double);
    double med = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"peer\": \"sembed-api\", \"ok\": true, \"compute\": \"%s\", \"batch\": %d, \"threads\": %d, "
           "\"sentences\": %zu, \"tokens\": %llu, \"computed_tokens\": %llu, \"pad_tokens\": 0, \"passes\": %llu, "
           "\"truncated\": %llu, \"reps\": %d, \"seconds\": %.6f, \"seconds_min\": %.6f, \"sent_per_s\": %.3f, "
           "\"tok_per_s\": %.1f, \"load_ms\": %.3f, \"peak_rss_mib\": %.2f}\n",
           sembed_compute_name(sembed_model_compute(m)), batch, threads, n, (unsigned long long)st.n_tokens,
           (unsigned long long)st.n_tokens, (unsigned long long)st.n_passes, (unsigned long long)st.n_truncated,
           reps, med, times[0], (double)n / med, (double)st.n_tokens / med, load_ms, (double)ru.ru_maxrss / 1024.0);
    free(out);
    sembed_context_free(ctx);
    sembed_model_free(m);
    free(lines);
    free(buf);
    return 0;
}
