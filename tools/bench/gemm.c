// GEMM micro-benchmark for runtime/kernels: sk_linear_forward (fp32 and int8, quantization of
// activations and the fused epilogue included) on BERT shapes, for every ISA this CPU supports,
// plus the measured register-only peak of each instruction family. Not part of CI.
// Build: tools/bench/build_gemm.sh; run: build-bench/gemm [-t threads] [-m tokens,...] [-r reps]
//
// Timing: with 1 thread, CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID), so time the
// scheduler gives to other processes on a loaded machine is not counted (cache pollution from
// them still is); with more threads, wall-clock time. Best of -r repetitions. The peaks are
// measured the same way, per core, and multiplied by the thread count.
#define _GNU_SOURCE
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/kernels/kernels.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Register-only loops: 16 independent accumulators, throughput-bound (unrolled so the
// accumulators stay in registers: without it -O2 keeps them in memory and measures store
// forwarding, which is what the first version of this file reported as "peak"). Ops counted as 2 per
// multiply-add lane (fp32: 32 per zmm fma; int8: 128 per zmm vpdpbusd).
__attribute__((target("avx512f,fma"))) static float peak_fma512(long iters) {
    __m512 acc[16], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
    __m512 s = acc[0];
    for (int i = 1; i < 16; i++) s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}
__attribute__((target("avx2,fma"))) static float peak_fma256(long iters) {
    __m256 acc[12], b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
    float out[8], s = 0;
    for (int i = 1; i < 12; i++) acc[0] = _mm256_add_ps(acc[0], acc[i]);
    _mm256_storeu_ps(out, acc[0]);
    for (int i = 0; i < 8; i++) s += out[i];
    return s;
}
__attribute__((target("avx512f,avx512vnni"))) static float peak_vnni512(long iters) {
    __m512i acc[16], a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(5);
    for (int i = 0; i < 16; i++) acc[i] = _mm512_set1_epi32(i);
    for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
    for (int i = 1; i < 16; i++) acc[0] = _mm512_add_epi32(acc[0], acc[i]);
    return (float)_mm512_reduce_add_epi32(acc[0]);
}

// Per-core peak (ops/s of one thread's CPU time), best of 5 short runs. The machine's other
// load (an SMT sibling, other VMs) makes single runs vary by 2x: main() measures the peaks again
// before every shape and reports fractions of the best seen in the whole run.
static double run_peak(int which) {
    long iters = 200000;
    double ops_per_iter = which == 0 ? 16 * 32.0 : which == 1 ? 12 * 16.0 : 16 * 128.0;
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
        sink += which == 0 ? peak_fma512(iters) : which == 1 ? peak_fma256(iters) : peak_vnni512(iters);
        double dt = clock_s(CLOCK_THREAD_CPUTIME_ID) - t0, ops = ops_per_iter * (double)iters / dt;
        if (ops > best) best = ops;
    }
    return best;
}

static double time_linear(struct sk_linear *L, int m, const float *x, float *y, void *scr, int threads, int reps,
                          enum sk_act act) {
    int k = sk_linear_n_in(L), n = sk_linear_n_out(L);
    clockid_t id = threads == 1 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC;
    double best = 1e30;
    sk_linear_forward(L, m, x, k, y, n, act, NULL, 0, scr, threads); // warm up
    for (int r = 0; r < reps; r++) {
        double t0 = clock_s(id);
        sk_linear_forward(L, m, x, k, y, n, act, NULL, 0, scr, threads);
        double dt = clock_s(id) - t0;
        if (dt < best) best = dt;
    }
    return best;
}

static const int NK[][2] = {{384, 384},  {1152, 384}, {1536, 384}, {384, 1536},
                            {768, 768},  {2304, 768}, {3072, 768}, {768, 3072}};
#define NSHAPES ((int)(sizeof NK / sizeof NK[0]))

int main(int argc, char **argv) {
    int threads = 1, reps = 5, opt, ms[16], nm = 0, shape = -1;
    const char *only = NULL, *mode_only = NULL;
    enum sk_act act = SK_ACT_NONE;
    while ((opt = getopt(argc, argv, "t:m:r:i:M:s:gh")) != -1) {
        switch (opt) {
        case 't': threads = atoi(optarg); break;
        case 'm':
            for (char *tok = strtok(optarg, ","); tok && nm < 16; tok = strtok(NULL, ",")) ms[nm++] = atoi(tok);
            break;
        case 'r': reps = atoi(optarg); break;
        case 'i': only = optarg; break;
        case 'M': mode_only = optarg; break;
        case 's': shape = atoi(optarg); break;
        case 'g': act = SK_ACT_GELU_ERF; break;
        default:
            printf("usage: gemm [-t threads] [-m tokens[,tokens...]] [-r reps] [-i isa] [-M f32|int8] [-s shape 0-%d] [-g (gelu)]\n",
                   NSHAPES - 1);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (nm == 0) ms[nm++] = 1024;
    const struct sk_cpu *c = sk_cpu();
    printf("# threads %d, best of %d, %s time; machine shared: numbers are indicative\n", threads, reps,
           threads == 1 ? "thread CPU" : "wall-clock");
    double pk_f32 = 0, pk_f32_256 = 0, pk_vnni = 0;
    struct row { int isa, mode, m, n, k; double dt; } rows[1024];
    int nrows = 0;
    for (int isa = 0; isa < SK_ISA_COUNT; isa++) {
        if (!sk_isa_supported((enum sk_isa)isa) || (only && strcmp(only, sk_isa_name((enum sk_isa)isa)) != 0)) continue;
        if (isa == SK_ISA_REF && !only) continue; // minutes per shape; ask with -i ref
        sk_set_isa_for_testing((enum sk_isa)isa);
        for (int s = 0; s < NSHAPES; s++) {
            if (shape >= 0 && s != shape) continue;
            double p;
            if (c->avx512f && c->os_avx512 && (p = run_peak(0) * threads) > pk_f32) pk_f32 = p;
            if (c->avx2 && c->fma && c->os_avx && (p = run_peak(1) * threads) > pk_f32_256) pk_f32_256 = p;
            if (c->avx512vnni && c->os_avx512 && (p = run_peak(2) * threads) > pk_vnni) pk_vnni = p;
            int n = NK[s][0], k = NK[s][1], mmax = 0;
            for (int i = 0; i < nm; i++) mmax = ms[i] > mmax ? ms[i] : mmax;
            float *w = malloc((size_t)n * k * 4), *x = malloc((size_t)mmax * k * 4), *y = malloc((size_t)mmax * n * 4);
            for (size_t i = 0; i < (size_t)n * k; i++) w[i] = (float)((int)(i * 2654435761u >> 20) % 200 - 100) * 1e-3f;
            for (size_t i = 0; i < (size_t)mmax * k; i++) x[i] = (float)((int)(i * 40503u >> 7) % 200 - 100) * 1e-2f;
            for (int mode = 0; mode < 2; mode++) {
                if (mode_only && strcmp(mode_only, mode ? "int8" : "f32") != 0) continue;
                if (mode == 0 && (isa == SK_ISA_AVXVNNI || isa == SK_ISA_AVX512VNNI || isa == SK_ISA_AMX)) continue; // same f32 code as avx2/avx512
                if (mode == 1 && (isa == SK_ISA_AVX512)) continue; // same int8 code as avx2
                struct sk_linear *L = NULL;
                if (sk_linear_create(&L, SEMBED_DTYPE_F32, w, NULL, n, k, (enum sk_mode)mode) != 0) return 1;
                void *scr = aligned_alloc(64, (sk_linear_scratch_size(L, mmax) + 127) / 64 * 64);
                for (int mi = 0; mi < nm; mi++) {
                    int m = ms[mi];
                    double dt = time_linear(L, m, x, y, scr, threads, reps, act);
                    if (nrows < 1024) rows[nrows++] = (struct row){isa, mode, m, n, k, dt};
                    fprintf(stderr, "%s %s %d %d %d: %.3f ms\n", sk_isa_name((enum sk_isa)isa), mode ? "int8" : "f32", m, n, k,
                            dt * 1e3);
                }
                free(scr);
                sk_linear_free(L);
            }
            free(w); free(x); free(y);
        }
    }
    printf("# best peaks seen (x%d threads): fp32 zmm fma %.0f GFLOP/s, fp32 ymm fma %.0f GFLOP/s, vpdpbusd zmm %.0f GOP/s\n",
           threads, pk_f32 * 1e-9, pk_f32_256 * 1e-9, pk_vnni * 1e-9);
    printf("%-11s %-5s %5s %5s %5s %9s %9s %7s\n", "isa", "mode", "m", "n", "k", "ms", "GOP/s", "%peak");
    for (int i = 0; i < nrows; i++) {
        struct row *r = &rows[i];
        double ops = 2.0 * r->m * r->n * r->k / r->dt;
        double peak = r->mode == 0 ? (r->isa == SK_ISA_AVX2 ? pk_f32_256 : pk_f32)
                                   : (r->isa == SK_ISA_AVX512VNNI ? pk_vnni : r->isa == SK_ISA_AVXVNNI ? pk_vnni / 2 : 0);
        printf("%-11s %-5s %5d %5d %5d %9.3f %9.1f %6.0f%%\n", sk_isa_name((enum sk_isa)r->isa), r->mode ? "int8" : "f32", r->m,
               r->n, r->k, r->dt * 1e3, ops * 1e-9, peak > 0 ? 100.0 * ops / peak : 0.0);
    }
    return 0;
}
