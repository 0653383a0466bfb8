// python/bench/capi_bench.c: the C-API side of bench_encode.py. Loads a model, reads one sentence
// per line, warms up, then times sembed_embed_texts over all of them `reps` times (the same call
// Python's Model.encode makes, through sembed_embed_inputs). Prints one JSON object.
//   capi_bench MODEL.semb SENTENCES.txt [threads] [batch] [reps]
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sembed/model.h"

static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: capi_bench MODEL.semb SENTENCES.txt [threads] [batch] [reps]\n");
        return 2;
    }
    int threads = argc > 3 ? atoi(argv[3]) : 0, batch = argc > 4 ? atoi(argv[4]) : 32, reps = argc > 5 ? atoi(argv[5]) : 3;
    FILE *f = fopen(argv[2], "r");
    if (!f) { perror(argv[2]); return 1; }
    size_t n = 0, cap = 1024;
    char **texts = malloc(cap * sizeof *texts), *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
        if (n == cap) texts = realloc(texts, (cap *= 2) * sizeof *texts);
        texts[n++] = strdup(line);
    }
    free(line);
    fclose(f);
    double t0 = now_s();
    struct sembed_model *m;
    int rc = sembed_model_load(argv[1], NULL, &m);
    if (rc) { fprintf(stderr, "load: %s\n", sembed_strerror(rc)); return 1; }
    struct sembed_context_params cp = sembed_context_default_params();
    cp.n_threads = threads;
    cp.batch_size = (uint32_t)batch;
    struct sembed_context *ctx;
    if ((rc = sembed_context_create(m, &cp, &ctx))) { fprintf(stderr, "context: %s\n", sembed_strerror(rc)); return 1; }
    size_t dim = sembed_model_dim(m);
    float *out = malloc(n * dim * sizeof *out);
    size_t warm = n < 64 ? n : 64;
    if ((rc = sembed_embed_texts(ctx, (const char *const *)texts, warm, out))) { fprintf(stderr, "embed: %s\n", sembed_strerror(rc)); return 1; }
    double load_warm = now_s() - t0;
    double *wall = calloc((size_t)reps, sizeof *wall), *cpu = calloc((size_t)reps, sizeof *cpu);
    for (int r = 0; r < reps; r++) {
        double t = now_s(), c = cpu_s();
        if ((rc = sembed_embed_texts(ctx, (const char *const *)texts, n, out))) { fprintf(stderr, "embed: %s\n", sembed_strerror(rc)); return 1; }
        cpu[r] = cpu_s() - c;
        wall[r] = now_s() - t;
    }
    printf("{\"n\": %zu, \"dim\": %zu, \"load_warm_s\": %.6f, \"times_s\": [", n, dim, load_warm);
    for (int r = 0; r < reps; r++) printf("%s%.6f", r ? ", " : "", wall[r]);
    printf("], \"cpu_s\": [");
    for (int r = 0; r < reps; r++) printf("%s%.6f", r ? ", " : "", cpu[r]);
    printf("]}\n");
    free(wall);
    free(cpu);
    free(out);
    sembed_context_free(ctx);
    sembed_model_free(m);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    return 0;
}
