// Open-time benchmark for .semb files: makes a file with the real 30,522-token vocabulary and
// 200 tensors totalling SIZE_MB, then times sembed_file_open + free (median of N runs).
// Build: cc -O2 -std=c11 -Iinclude -I. tools/bench/semb_open.c formats/common.c formats/semb_*.c -lxxhash -lutf8proc
// Run:   ./a.out OUT.semb SIZE_MB VOCAB.txt [--reuse]   (--reuse: time an existing file)
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sembed/semb.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s OUT.semb SIZE_MB VOCAB.txt\n", argv[0]); return 2; }
    size_t mb = (size_t)atoi(argv[2]);
    FILE *vf = fopen(argv[3], "r");
    if (!vf) { perror(argv[3]); return 1; }
    char **vocab = malloc(40000 * sizeof *vocab), line[1024];
    size_t nv = 0;
    while (nv < 40000 && fgets(line, sizeof line, vf)) { line[strcspn(line, "\n")] = 0; vocab[nv++] = strdup(line); }
    fclose(vf);
    struct sembed_writer *w;
    if (argc > 4 && strcmp(argv[4], "--reuse") == 0) goto measure;
    if (sembed_writer_create(argv[1], &w)) return 1;
    sembed_writer_add_str(w, "general.architecture", "bert");
    sembed_writer_add_arr_str(w, "tokenizer.vocab", (const char *const *)vocab, nv);
    for (int i = 0; i < 30; i++) { char k[32]; snprintf(k, sizeof k, "x.key%d", i); sembed_writer_add_u32(w, k, (uint32_t)i); }
    size_t per = mb * (1u << 20) / 200 / 4;
    for (int i = 0; i < 200; i++) {
        char n[64];
        snprintf(n, sizeof n, "encoder.layer.%d.tensor", i);
        sembed_writer_add_tensor(w, n, SEMBED_DTYPE_F32, 1, (int64_t[]){(int64_t)per});
    }
    float *buf = calloc(per, 4);
    if (!buf) return 1;
    for (int i = 0; i < 200; i++) sembed_writer_write(w, buf, per * 4);
    free(buf);
    if (sembed_writer_finish(w)) return 1;
measure:;
    double t[101];
    for (int r = 0; r < 101; r++) {
        double t0 = now();
        struct sembed_file *f;
        if (sembed_file_open(argv[1], &f)) return 1;
        sembed_file_free(f);
        t[r] = now() - t0;
    }
    qsort(t, 101, sizeof t[0], cmpd);
    printf("%s: %zu MB, %zu vocab entries, 200 tensors: open+free median %.1f us (min %.1f, max %.1f)\n", argv[1], mb, nv,
           t[50] * 1e6, t[0] * 1e6, t[100] * 1e6);
    return 0;
}
