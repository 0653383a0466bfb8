// Kernel tests: every ISA this build and CPU support, forced in turn, against the reference.
// f32 GEMM sums are compared bit-exactly with a scalar fmaf chain (the SIMD reduction order);
// int8 accumulators exactly in int32; activations and row ops within named tolerances.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/kernels/kernels.h"
#include "testutil.h"

static const int DIMS[] = {1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 67, 127, 129, 255, 1023};
#define NDIMS ((int)(sizeof DIMS / sizeof DIMS[0]))

// Tolerances (see docs/kernels.md): vectorized erf/tanh/exp vs libm, float-lane sums vs double.
#define TOL_ACT_REL 2e-6
#define TOL_ACT_ABS 2e-7
#define TOL_LN_ABS 2e-5
#define TOL_SOFTMAX_REL 2e-6

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float frand(void) { return (float)((double)rnd() / 4294967296.0 * 2.0 - 1.0); }
static float *frand_buf(size_t n, float scale) {
    float *p = malloc(n * sizeof(float) + 64);
    cr_assert_not_null(p);
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

struct shape { int m, n, k; };

// Each dimension through DIMS with the other two from small odd sizes, plus a few mixed triples.
static int make_shapes(struct shape *s) {
    int c = 0;
    for (int i = 0; i < NDIMS; i++) {
        int d = DIMS[i];
        s[c++] = (struct shape){d, 17, 33};
        s[c++] = (struct shape){5, d, 67};
        s[c++] = (struct shape){7, 33, d};
    }
    s[c++] = (struct shape){129, 127, 255};
    s[c++] = (struct shape){33, 1023, 63};
    s[c++] = (struct shape){1, 1, 1};
    s[c++] = (struct shape){67, 65, 129};
    // several row blocks x several k chunks at once (the blocked drivers' buffer hand-over)
    s[c++] = (struct shape){133, 97, 1100};
    s[c++] = (struct shape){300, 50, 300};
    return c;
}

static int isas(enum sk_isa *out) {
    int c = 0;
    for (int i = 0; i < SK_ISA_COUNT; i++)
        if (sk_isa_supported((enum sk_isa)i)) out[c++] = (enum sk_isa)i;
    return c;
}

// Every call given 2 threads really splits (the default runs small calls on one thread), so
// the thread splits are what the tests compare.
static void use_isa(enum sk_isa isa) {
    cr_assert_eq(sk_set_isa_for_testing(isa), 0, "cannot select %s", sk_isa_name(isa));
    sk_set_mt_min_us_for_testing(0.0);
}

static void restore_isa(void) {
    sk_set_isa_for_testing(sk_isa_best());
    sk_set_mt_min_us_for_testing(-1.0);
}

Test(kernels, thread_threshold) {
    struct sk_linear *L = NULL;
    float *w = frand_buf(768 * 768, 0.1f);
    cr_assert_eq(sk_linear_create(&L, SEMBED_DTYPE_F32, w, NULL, 768, 768, SK_MODE_INT8), 0);
    cr_assert_eq(sk_linear_threads(L, 1, 2), 1, "one token through 768x768 int8 should stay on one thread");
    cr_assert_eq(sk_linear_threads(L, 1024, 2), 2, "1024 tokens should use both threads");
    cr_assert_eq(sk_linear_threads(L, 1024, 0), 1);
    cr_assert_eq(sk_gemm_f32_threads(16, 16, 64, 2), 1, "an attention-sized GEMM should stay on one thread");
    cr_assert_eq(sk_gemm_f32_threads(512, 768, 768, 2), 2);
    sk_set_mt_min_us_for_testing(0.0);
    cr_assert_eq(sk_linear_threads(L, 1, 2), 2, "threshold 0 must thread every call");
    sk_set_mt_min_us_for_testing(-1.0);
    cr_assert_eq(sk_linear_threads(L, 1, 2), 1, "default threshold not restored");
    sk_linear_free(L);
    free(w);
}

Test(kernels, dispatch_names_and_caps) {
    enum sk_isa list[SK_ISA_COUNT];
    int n = isas(list);
    cr_assert_geq(n, 1);
    cr_assert_eq(list[0], SK_ISA_REF, "ref must always be available");
    for (int i = 0; i < SK_ISA_COUNT; i++)
        cr_assert_eq(sk_isa_from_name(sk_isa_name((enum sk_isa)i)), i, "name round trip %d", i);
    cr_assert_eq(sk_isa_from_name("sse9"), -1);
    cr_assert_eq(list[n - 1], sk_isa_best(), "best %s is not the last supported", sk_isa_name(sk_isa_best()));
    const struct sk_cpu *c = sk_cpu();
    if (c->avx512f && c->os_avx512 && c->avx512bw && c->avx512vl && c->avx512dq)
        cr_assert(sk_isa_supported(SK_ISA_AVX512), "CPU has AVX-512 but the path is not enabled");
    if (!c->amx_int8 || !c->os_amx) cr_assert(!sk_isa_supported(SK_ISA_AMX), "AMX enabled without the feature/OS permission");
    for (int i = 0; i < SK_ISA_COUNT; i++)
        if (!sk_isa_supported((enum sk_isa)i))
            cr_assert_eq(sk_set_isa_for_testing((enum sk_isa)i), SEMBED_EUNSUPPORTED, "%s", sk_isa_name((enum sk_isa)i));
    fprintf(stderr, "kernels: supported:");
    for (int i = 0; i < n; i++) fprintf(stderr, " %s", sk_isa_name(list[i]));
    fprintf(stderr, " (best %s, active %s)\n", sk_isa_name(sk_isa_best()), sk_isa_name(sk_isa_active()));
}

// SEMBED_ISA is read once per process: check it through the CLI, which prints the active path.
Test(kernels, sembed_isa_env_caps_and_falls_back) {
    for (int want = 0; want < SK_ISA_COUNT; want++) {
        int expect = 0;
        for (int i = 0; i <= want; i++)
            if (sk_isa_supported((enum sk_isa)i)) expect = i;
        char cmd[512], needle[64];
        snprintf(cmd, sizeof cmd, "SEMBED_ISA=%s '%s' --version 2>&1", sk_isa_name((enum sk_isa)want), tu_cli());
        snprintf(needle, sizeof needle, "active %s ", sk_isa_name((enum sk_isa)expect));
        char *out = NULL;
        int rc = tu_run(cmd, &out);
        cr_assert_eq(rc, 0, "%s exited %d", cmd, rc);
        cr_assert(out && strstr(out, needle), "SEMBED_ISA=%s: expected '%s' in:\n%s", sk_isa_name((enum sk_isa)want), needle,
                  out ? out : "(null)");
        if (expect != want) cr_assert(strstr(out, "not supported"), "no fallback warning for %s", sk_isa_name((enum sk_isa)want));
        free(out);
    }
}

// fmaf-chain oracle: the exact sums every SIMD f32 path must produce.
static float dot_fma(const float *x, size_t xs, const float *w, size_t ws, int k) {
    float acc = 0.0f;
    for (int p = 0; p < k; p++) acc = fmaf(x[(size_t)p * xs], w[(size_t)p * ws], acc);
    return acc;
}

static bool close_act(float got, float want, double *maxd) {
    double d = fabs((double)got - (double)want);
    if (d > *maxd) *maxd = d;
    return d <= TOL_ACT_ABS + TOL_ACT_REL * fabs((double)want);
}

// y = act(x W^T + b) + res for one shape and one act; checks every element against the oracle.
static void check_linear_f32(enum sk_isa isa, struct shape s, enum sk_act act, bool with_bias, bool with_res) {
    float *x = frand_buf((size_t)s.m * s.k, 1.0f), *w = frand_buf((size_t)s.n * s.k, 0.5f);
    float *b = frand_buf((size_t)s.n, 0.5f), *res = frand_buf((size_t)s.m * s.n, 1.0f);
    float *y = malloc((size_t)s.m * s.n * sizeof(float) + 4), *yr = malloc((size_t)s.m * s.n * sizeof(float) + 4);
    struct sk_linear *L = NULL;
    cr_assert_eq(sk_linear_create(&L, SEMBED_DTYPE_F32, w, with_bias ? b : NULL, s.n, s.k, SK_MODE_F32), 0);
    sk_linear_forward(L, s.m, x, s.k, y, s.n, act, with_res ? res : NULL, s.n, NULL, 2);
    if (isa == SK_ISA_REF) {
        sk_linear_ref(s.m, s.n, s.k, x, s.k, w, with_bias ? b : NULL, yr, s.n, act, with_res ? res : NULL, s.n);
        for (int i = 0; i < s.m * s.n; i++)
            if (memcmp(&y[i], &yr[i], 4) != 0)
                cr_assert_fail("ref linear %dx%dx%d act %d: y[%d] = %.9g, sk_linear_ref %.9g", s.m, s.n, s.k, act, i, y[i], yr[i]);
    } else {
        double maxd = 0;
        for (int i = 0; i < s.m; i++)
            for (int j = 0; j < s.n; j++) {
                float v = dot_fma(x + (size_t)i * s.k, 1, w + (size_t)j * s.k, 1, s.k);
                if (with_bias) v += b[j];
                float pre = v;
                v = sk_act_ref(v, act);
                if (with_res) v += res[(size_t)i * s.n + j];
                float got = y[(size_t)i * s.n + j];
                if (act == SK_ACT_NONE) {
                    if (memcmp(&got, &v, 4) != 0)
                        cr_assert_fail("%s linear %dx%dx%d: y[%d,%d] = %.9g, fma oracle %.9g (must be bit-equal)", sk_isa_name(isa),
                                 s.m, s.n, s.k, i, j, got, v);
                } else if (!close_act(got, v, &maxd)) {
                    cr_assert_fail("%s linear %dx%dx%d act %d: y[%d,%d] = %.9g, want %.9g (pre-act %.9g), diff %.3g", sk_isa_name(isa),
                             s.m, s.n, s.k, act, i, j, got, v, pre, fabs(got - v));
                }
            }
    }
    sk_linear_free(L);
    free(x); free(w); free(b); free(res); free(y); free(yr);
}

Test(kernels, linear_f32_all_isas) {
    enum sk_isa list[SK_ISA_COUNT];
    int ni = isas(list);
    struct shape sh[64];
    int ns = make_shapes(sh);
    for (int a = 0; a < ni; a++) {
        use_isa(list[a]);
        for (int s = 0; s < ns; s++) {
            check_linear_f32(list[a], sh[s], SK_ACT_NONE, s % 2 == 0, s % 3 == 0);
            if (sh[s].m * sh[s].n * sh[s].k < 300000) check_linear_f32(list[a], sh[s], (enum sk_act)(1 + s % 4), true, s % 2);
        }
    }
    restore_isa();
}

Test(kernels, gemm_f32_transposes_all_isas) {
    enum sk_isa list[SK_ISA_COUNT];
    int ni = isas(list);
    struct shape sh[64];
    int ns = make_shapes(sh);
    for (int a = 0; a < ni; a++) {
        use_isa(list[a]);
        for (int s = 0; s < ns; s++) {
            struct shape q = sh[s];
            if ((double)q.m * q.n * q.k > 3e6) continue;
            for (int tt = 0; tt < 4; tt++) {
                bool ta = tt & 1, tb = tt & 2;
                int lda = (ta ? q.m : q.k) + 3, ldb = (tb ? q.k : q.n) + 1, ldc = q.n + 2;
                float *A = frand_buf((size_t)(ta ? q.k : q.m) * lda, 1.0f), *B = frand_buf((size_t)(tb ? q.n : q.k) * ldb, 1.0f);
                float *C = frand_buf((size_t)q.m * ldc, 1.0f), *C0 = malloc((size_t)q.m * ldc * sizeof(float));
                memcpy(C0, C, (size_t)q.m * ldc * sizeof(float));
                float alpha = 0.75f, beta = (s % 2) ? 0.5f : 0.0f;
                sk_gemm_f32(ta, tb, q.m, q.n, q.k, alpha, A, lda, B, ldb, beta, C, ldc, 2);
                if (list[a] == SK_ISA_REF) {
                    sk_gemm_f32_ref(ta, tb, q.m, q.n, q.k, alpha, A, lda, B, ldb, beta, C0, ldc);
                    for (int i = 0; i < q.m; i++)
                        for (int j = 0; j < q.n; j++)
                            if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], 4))
                                cr_assert_fail("ref gemm ta %d tb %d %dx%dx%d C[%d,%d] %.9g vs %.9g", ta, tb, q.m, q.n, q.k, i, j,
                                         C[(size_t)i * ldc + j], C0[(size_t)i * ldc + j]);
                } else {
                    for (int i = 0; i < q.m; i++)
                        for (int j = 0; j < q.n; j++) {
                            const float *ar = ta ? A + i : A + (size_t)i * lda;
                            const float *bc = tb ? B + (size_t)j * ldb : B + j;
                            float acc = dot_fma(ar, ta ? (size_t)lda : 1, bc, tb ? 1 : (size_t)ldb, q.k);
                            float want = alpha * acc + (beta == 0.0f ? 0.0f : beta * C0[(size_t)i * ldc + j]);
                            float got = C[(size_t)i * ldc + j];
                            if (memcmp(&got, &want, 4))
                                cr_assert_fail("%s gemm ta %d tb %d %dx%dx%d C[%d,%d] = %.9g, fma oracle %.9g", sk_isa_name(list[a]), ta,
                                         tb, q.m, q.n, q.k, i, j, got, want);
                        }
                }
                // columns past n in each row (padding of ldc) must be untouched
                for (int i = 0; i < q.m; i++)
                    for (int j = q.n; j < ldc; j++)
                        cr_assert_eq(memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], 4), 0,
                                     "%s gemm wrote past n at [%d,%d]", sk_isa_name(list[a]), i, j);
                free(A); free(B); free(C); free(C0);
            }
        }
    }
    restore_isa();
}

// Determinism contract: a row computed alone (1 thread) is bit-identical to the same row inside
// a larger batch, at any offset, with 2 threads.
static void check_batch_invariance(enum sk_mode mode) {
    enum sk_isa list[SK_ISA_COUNT];
    int ni = isas(list);
    const int n = 200, k = 129, m = 37;
    float *x = frand_buf((size_t)m * k, 2.0f), *w = frand_buf((size_t)n * k, 0.3f), *b = frand_buf(n, 0.1f);
    float *ybig = malloc((size_t)m * n * sizeof(float)), *yone = malloc((size_t)n * sizeof(float));
    for (int a = 0; a < ni; a++) {
        use_isa(list[a]);
        struct sk_linear *L = NULL;
        cr_assert_eq(sk_linear_create(&L, SEMBED_DTYPE_F32, w, b, n, k, mode), 0);
        void *scr = malloc(sk_linear_scratch_size(L, m) + 64);
        sk_linear_forward(L, m, x, k, ybig, n, SK_ACT_GELU_ERF, NULL, 0, scr, 2);
        for (int i = 0; i < m; i++) {
            sk_linear_forward(L, 1, x + (size_t)i * k, k, yone, n, SK_ACT_GELU_ERF, NULL, 0, scr, 1);
            for (int j = 0; j < n; j++)
                if (memcmp(&yone[j], &ybig[(size_t)i * n + j], 4))
                    cr_assert_fail("%s mode %d: row %d alone y[%d] = %.9g, in batch of %d with 2 threads %.9g", sk_isa_name(list[a]),
                             mode, i, j, yone[j], m, ybig[(size_t)i * n + j]);
        }
        // sub-batches at odd offsets
        for (int i0 = 0; i0 < m; i0 += 5) {
            int mm = m - i0 < 5 ? m - i0 : 5;
            float sub[5 * 200];
            sk_linear_forward(L, mm, x + (size_t)i0 * k, k, sub, n, SK_ACT_GELU_ERF, NULL, 0, scr, 2);
            cr_assert_eq(memcmp(sub, ybig + (size_t)i0 * n, (size_t)mm * n * sizeof(float)), 0,
                         "%s mode %d: rows %d..%d differ when computed as a sub-batch", sk_isa_name(list[a]), mode, i0, i0 + mm);
        }
        free(scr);
        sk_linear_free(L);
    }
    restore_isa();
    free(x); free(w); free(b); free(ybig); free(yone);
}

Test(kernels, determinism_f32) { check_batch_invariance(SK_MODE_F32); }
Test(kernels, determinism_int8) { check_batch_invariance(SK_MODE_INT8); }

Test(kernels, determinism_gemm_rows) {
    enum sk_isa list[SK_ISA_COUNT];
    int ni = isas(list);
    const int m = 45, n = 70, k = 64;
    float *A = frand_buf((size_t)m * k, 1.0f), *B = frand_buf((size_t)n * k, 1.0f);
    float *C = malloc((size_t)m * n * 4), *C1 = malloc((size_t)n * 4);
    for (int a = 0; a < ni; a++) {
        use_isa(list[a]);
        sk_gemm_f32(false, true, m, n, k, 0.125f, A, k, B, k, 0.0f, C, n, 2);
        for (int i = 0; i < m; i++) {
            sk_gemm_f32(false, true, 1, n, k, 0.125f, A + (size_t)i * k, k, B, k, 0.0f, C1, n, 1);
            cr_assert_eq(memcmp(C1, C + (size_t)i * n, (size_t)n * 4), 0, "%s: gemm row %d differs alone vs in batch",
                         sk_isa_name(list[a]), i);
        }
    }
    restore_isa();
    free(A); free(B); free(C); free(C1);
}

// int8: exact int32 accumulators through every ISA's kernel, full s8 range including -128.
Test(kernels, q8_s32_exact_all_isas) {
    enum sk_isa list[SK_ISA_COUNT];
    int ni = isas(list);
    struct shape sh[64];
    int ns = make_shapes(sh);
    for (int s = 0; s < ns; s++) {
        struct shape q = sh[s];
        int lda = q.k + 1, ldw = q.k + 3, ldc = q.n + 1;
        int8_t *A = malloc((size_t)q.m * lda), *W = malloc((size_t)q.n * ldw);
        int32_t *C = malloc((size_t)q.m * ldc * 4), *R = malloc((size_t)q.m * ldc * 4);
        for (size_t i = 0; i < (size_t)q.m * lda; i++) A[i] = (int8_t)(s % 3 == 0 ? (i % 2 ? -128 : 127) : (int)(rnd() & 255) - 128);
        for (size_t i = 0; i < (size_t)q.n * ldw; i++) W[i] = (int8_t)(s % 3 == 0 ? -128 : (int)(rnd() & 255) - 128);
        for (int i = 0; i < q.m; i++)
            for (int j = 0; j < q.n; j++) {
                int32_t acc = 0;
                for (int p = 0; p < q.k; p++) acc += (int32_t)A[(size_t)i * lda + p] * W[(size_t)j * ldw + p];
                R[(size_t)i * ldc + j] = acc;
            }
        for (int a = 0; a < ni; a++) {
            memset(C, 0x55, (size_t)q.m * ldc * 4);
            cr_assert_eq(sk_gemm_q8_s32(list[a], q.m, q.n, q.k, A, lda, W, ldw, C, ldc), 0);
            for (int i = 0; i < q.m; i++)
                for (int j = 0; j < q.n; j++)
                    if (C[(size_t)i * ldc + j] != R[(size_t)i * ldc + j])
                        cr_assert_fail("%s s8s8s32 %dx%dx%d C[%d,%d] = %d, want %d", sk_isa_name(list[a]), q.m, q.n, q.k, i, j,
                                 C[(size_t)i * ldc + j], R[(size_t)i * ldc + j]);
        }
        free(A); free(W); free(C); free(R);
    }
}

// int8 Linear: every ISA bit-identical to the reference path (act none), within tolerance with
// activations; and close to fp32 (sanity of the quantization scheme).
Test(kernels, linear_int8_all_isas) {
    enum sk_isa list[SK_ISA_COUNT];
    int ni = isas(list);
    struct shape sh[64];
    int ns = make_shapes(sh);
    for (int s = 0; s < ns; s++) {
        struct shape q = sh[s];
        if ((double)q.m * q.n * q.k > 2e6) continue;
        float *x = frand_buf((size_t)q.m * q.k, 3.0f), *w = frand_buf((size_t)q.n * q.k, 0.05f);
        float *b = frand_buf(q.n, 0.1f), *res = frand_buf((size_t)q.m * q.n, 1.0f);
        size_t ny = (size_t)q.m * q.n;
        float *yref = malloc(ny * 4), *yrefa = malloc(ny * 4), *y = malloc(ny * 4), *yf = malloc(ny * 4);
        struct sk_linear *L = NULL, *Lf = NULL;
        use_isa(SK_ISA_REF);
        cr_assert_eq(sk_linear_create(&L, SEMBED_DTYPE_F32, w, b, q.n, q.k, SK_MODE_INT8), 0);
        cr_assert_eq(sk_linear_create(&Lf, SEMBED_DTYPE_F32, w, b, q.n, q.k, SK_MODE_F32), 0);
        sk_linear_forward(L, q.m, x, q.k, yref, q.n, SK_ACT_NONE, res, q.n, NULL, 1);
        sk_linear_forward(L, q.m, x, q.k, yrefa, q.n, SK_ACT_GELU_ERF, NULL, 0, NULL, 1);
        sk_linear_forward(Lf, q.m, x, q.k, yf, q.n, SK_ACT_NONE, res, q.n, NULL, 1);
        double num = 0, den = 0;
        for (size_t i = 0; i < ny; i++) {
            num += ((double)yref[i] - yf[i]) * ((double)yref[i] - yf[i]);
            den += ((double)yf[i] - res[i]) * ((double)yf[i] - res[i]);
        }
        if (q.k >= 16 && den > 0) cr_assert_lt(num / den, 1e-3, "int8 vs fp32 NMSE %.3g for %dx%dx%d", num / den, q.m, q.n, q.k);
        for (int a = 1; a < ni; a++) {
            use_isa(list[a]);
            sk_linear_forward(L, q.m, x, q.k, y, q.n, SK_ACT_NONE, res, q.n, NULL, 2);
            for (size_t i = 0; i < ny; i++)
                if (memcmp(&y[i], &yref[i], 4))
                    cr_assert_fail("%s int8 linear %dx%dx%d y[%zu] = %.9g, ref path %.9g (must be bit-equal)", sk_isa_name(list[a]),
                             q.m, q.n, q.k, i, y[i], yref[i]);
            sk_linear_forward(L, q.m, x, q.k, y, q.n, SK_ACT_GELU_ERF, NULL, 0, NULL, 2);
            double maxd = 0;
            for (size_t i = 0; i < ny; i++)
                if (!close_act(y[i], yrefa[i], &maxd))
                    cr_assert_fail("%s int8 linear gelu y[%zu] = %.9g, ref %.9g", sk_isa_name(list[a]), i, y[i], yrefa[i]);
        }
        sk_linear_free(L); sk_linear_free(Lf);
        free(x); free(w); free(b); free(res); free(yref); free(yrefa); free(y); free(yf);
    }
    restore_isa();
}

Test(kernels, q8_row_weights_and_quantize_row) {
    // Q8_ROW bytes: int8 [R*C], zero pad to 64, f32 scale[R]. Check the layer uses them as given.
    const int R = 3, C = 5;
    unsigned char buf[64 + 12] = {0};
    int8_t q[15] = {1, -2, 3, -4, 5, 127, -127, 0, 1, 2, -128, 0, 0, 0, 1};
    float sc[3] = {0.5f, 0.25f, 2.0f};
    memcpy(buf, q, 15);
    memcpy(buf + 64, sc, 12);
    float x[5] = {1.0f, 0.5f, -0.25f, 0.0f, 2.0f}, y[3], yw[3];
    struct sk_linear *L = NULL, *Lf = NULL;
    cr_assert_eq(sk_linear_create(&L, SEMBED_DTYPE_Q8_ROW, buf, NULL, R, C, SK_MODE_INT8), 0);
    cr_assert_eq(sk_linear_create(&Lf, SEMBED_DTYPE_Q8_ROW, buf, NULL, R, C, SK_MODE_F32), 0);
    sk_linear_forward(L, 1, x, 5, y, 3, SK_ACT_NONE, NULL, 0, NULL, 1);
    sk_linear_forward(Lf, 1, x, 5, yw, 3, SK_ACT_NONE, NULL, 0, NULL, 1);
    int8_t xq[5];
    float xs = sk_q8_quantize_row(x, 5, xq);
    cr_assert_float_eq(xs, 2.0f / 127.0f, 1e-9f);
    int8_t wantq[5] = {64, 32, -16, 0, 127}; // rne(x * 63.5)
    for (int i = 0; i < 5; i++) cr_assert_eq(xq[i], wantq[i], "xq[%d] = %d, want %d", i, xq[i], wantq[i]);
    for (int r = 0; r < R; r++) {
        int32_t acc = 0;
        for (int c = 0; c < C; c++) acc += (int32_t)xq[c] * q[r * C + c];
        float want = (float)acc * (xs * sc[r]);
        cr_assert_eq(memcmp(&y[r], &want, 4), 0, "row %d: %.9g want %.9g", r, y[r], want);
        float wf = 0;
        for (int c = 0; c < C; c++) wf += x[c] * ((float)q[r * C + c] * sc[r]);
        cr_assert_float_eq(yw[r], wf, 1e-5f, "f32 from q8_row row %d: %.9g want %.9g", r, yw[r], wf);
    }
    sk_linear_free(L); sk_linear_free(Lf);
    cr_assert_eq(sk_linear_create(&L, SEMBED_DTYPE_I32, buf, NULL, R, C, SK_MODE_INT8), SEMBED_EDTYPE);
    cr_assert_eq(sk_linear_create(&L, SEMBED_DTYPE_F32, buf, NULL, 0, C, SK_MODE_INT8), SEMBED_EINVAL);
}

Test(kernels, row_ops_all_isas) {
    enum sk_isa list[SK_ISA_COUNT];
    int ni = isas(list);
    for (int a = 0; a < ni; a++) {
        use_isa(list[a]);
        double md_ln = 0, md_sm = 0, md_act = 0;
        for (int d = 0; d < NDIMS; d++) {
            int n = DIMS[d];
            float *x = frand_buf((size_t)n, 4.0f), *g = frand_buf((size_t)n, 1.0f), *bb = frand_buf((size_t)n, 1.0f);
            for (int i = 0; i < n; i++) x[i] += 3.0f; // a mean offset, as real hidden states have
            float *o = malloc((size_t)n * 4), *r = malloc((size_t)n * 4);
            sk_layernorm(x, o, n, g, bb, 1e-12f);
            sk_layernorm_ref(x, r, n, g, bb, 1e-12f);
            for (int i = 0; i < n; i++) {
                double dd = fabs((double)o[i] - r[i]);
                if (dd > md_ln) md_ln = dd;
                cr_assert(dd <= TOL_LN_ABS || n == 1, "%s layernorm n %d [%d] %.9g vs %.9g", sk_isa_name(list[a]), n, i, o[i], r[i]);
            }
            memcpy(o, x, (size_t)n * 4); memcpy(r, x, (size_t)n * 4);
            sk_softmax(o, n);
            sk_softmax_ref(r, n);
            for (int i = 0; i < n; i++) {
                double dd = fabs((double)o[i] - r[i]);
                if (dd / r[i] > md_sm) md_sm = dd / r[i];
                cr_assert(dd <= TOL_SOFTMAX_REL * r[i] + 1e-30, "%s softmax n %d [%d] %.9g vs %.9g", sk_isa_name(list[a]), n, i, o[i], r[i]);
            }
            for (int act = 0; act <= SK_ACT_TANH; act++) {
                for (int i = 0; i < n; i++) o[i] = x[i] * 2.0f - 6.0f;
                sk_act_apply(o, n, (enum sk_act)act);
                for (int i = 0; i < n; i++) {
                    float want = sk_act_ref(x[i] * 2.0f - 6.0f, (enum sk_act)act);
                    if (!close_act(o[i], want, &md_act))
                        cr_assert_fail("%s act %d n %d x %.9g: %.9g want %.9g", sk_isa_name(list[a]), act, n, x[i] * 2 - 6, o[i], want);
                }
            }
            free(x); free(g); free(bb); free(o); free(r);
        }
        // dense sweep of the activations over [-12, 12] and special values
        for (int act = 1; act <= SK_ACT_TANH; act++) {
            static float v[4096];
            for (int i = 0; i < 4096; i++) v[i] = -12.0f + 24.0f * (float)i / 4095.0f;
            v[0] = 0.0f; v[1] = -0.0f; v[2] = 1e-30f; v[3] = 80.0f; v[4] = -80.0f; v[5] = 1.0f; v[6] = 3.92f; v[7] = -0.625f;
            float o[4096];
            memcpy(o, v, sizeof o);
            sk_act_apply(o, 4096, (enum sk_act)act);
            for (int i = 0; i < 4096; i++)
                if (!close_act(o[i], sk_act_ref(v[i], (enum sk_act)act), &md_act))
                    cr_assert_fail("%s act %d x %.9g: %.9g want %.9g", sk_isa_name(list[a]), act, v[i], o[i], sk_act_ref(v[i], (enum sk_act)act));
        }
        fprintf(stderr, "kernels: %s max |diff| layernorm %.3g, softmax rel %.3g, act %.3g\n", sk_isa_name(list[a]), md_ln,
                md_sm, md_act);
    }
    restore_isa();
}

Test(kernels, f16_round_trip_and_rounding) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sk_f16_to_f32((uint16_t)h);
        uint16_t back = sk_f32_to_f16(f);
        bool nan = (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu);
        if (nan) cr_assert(isnan(f) && (back & 0x7c00u) == 0x7c00u && (back & 0x3ffu), "f16 NaN %04x -> %g -> %04x", h, f, back);
        else cr_assert_eq(back, h, "f16 %04x -> %.9g -> %04x", h, f, back);
    }
    // subnormals and limits
    cr_assert_eq(sk_f16_to_f32(0x0001), ldexpf(1.0f, -24));
    cr_assert_eq(sk_f16_to_f32(0x03ff), ldexpf(1023.0f, -24));
    cr_assert_eq(sk_f32_to_f16(ldexpf(1.0f, -25)), 0x0000, "2^-25 ties to even (0)");
    cr_assert_eq(sk_f32_to_f16(ldexpf(3.0f, -26)), 0x0001, "1.5 * 2^-25 rounds up");
    cr_assert_eq(sk_f32_to_f16(ldexpf(3.0f, -25)), 0x0002, "1.5 * 2^-24 ties to even (2)");
    cr_assert_eq(sk_f32_to_f16(65504.0f), 0x7bff);
    cr_assert_eq(sk_f32_to_f16(65519.99f), 0x7bff);
    cr_assert_eq(sk_f32_to_f16(65520.0f), 0x7c00, "65520 rounds to inf");
    cr_assert_eq(sk_f32_to_f16(-INFINITY), 0xfc00);
    cr_assert_eq(sk_f32_to_f16(1.0f + ldexpf(1.0f, -11)), 0x3c00, "tie to even at 1");
    cr_assert_eq(sk_f32_to_f16(1.0f + ldexpf(3.0f, -11)), 0x3c02, "tie to even at 1 + 2 ulp");
    // against a double-precision model of round-to-nearest-even on random floats
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = rnd() ^ (rnd() << 16);
        bits = (bits & 0x80000000u) | (0x33000000u + bits % (0x477ff000u - 0x33000000u)); // [2^-25, 65520): below the inf threshold
        float f;
        memcpy(&f, &bits, 4);
        uint16_t h = sk_f32_to_f16(f);
        double back = sk_f16_to_f32(h);
        // neighbours: the result must be nearest; on a tie, even
        uint16_t lo = (uint16_t)(h - 1), hi = (uint16_t)(h + 1);
        double e = fabs(back - f);
        double elo = ((h & 0x7fffu) == 0) ? INFINITY : fabs((double)sk_f16_to_f32(lo) - f);
        double ehi = ((hi & 0x7c00u) == 0x7c00u) ? INFINITY : fabs((double)sk_f16_to_f32(hi) - f);
        cr_assert(e <= elo && e <= ehi, "f32 %.9g -> f16 %04x not nearest (%.3g vs %.3g / %.3g)", f, h, e, elo, ehi);
        if (e == elo || e == ehi) cr_assert((h & 1u) == 0, "f32 %.9g tie not to even: %04x", f, h);
    }
}

Test(kernels, bf16_round_trip_and_rounding) {
    for (uint32_t h = 0; h < 65536; h++) {
        float f = sk_bf16_to_f32((uint16_t)h);
        uint16_t back = sk_f32_to_bf16(f);
        bool nan = (h & 0x7f80u) == 0x7f80u && (h & 0x7fu);
        if (nan) cr_assert(isnan(sk_bf16_to_f32(back)), "bf16 NaN %04x -> %04x not NaN", h, back);
        else cr_assert_eq(back, h, "bf16 %04x -> %.9g -> %04x", h, f, back);
    }
    float f;
    uint32_t b = 0x3f808000u; // 1 + 2^-8: tie, to even (0x3f80)
    memcpy(&f, &b, 4);
    cr_assert_eq(sk_f32_to_bf16(f), 0x3f80);
    b = 0x3f818000u; // tie, odd below: up to 0x3f82
    memcpy(&f, &b, 4);
    cr_assert_eq(sk_f32_to_bf16(f), 0x3f82);
    b = 0x00018000u; // subnormal tie
    memcpy(&f, &b, 4);
    cr_assert_eq(sk_f32_to_bf16(f), 0x0002);
    b = 0x7f7fffffu; // FLT_MAX rounds to inf
    memcpy(&f, &b, 4);
    cr_assert_eq(sk_f32_to_bf16(f), 0x7f80);
    b = 0x7f800001u; // signalling NaN payload in the low half must stay NaN
    memcpy(&f, &b, 4);
    cr_assert(isnan(sk_bf16_to_f32(sk_f32_to_bf16(f))));
    cr_assert_eq(sk_f32_to_bf16(-INFINITY), 0xff80);
}

// Attention with int16 products (int8 compute mode). Against a double-precision oracle within a
// bound derived from the quantization steps; every SIMD ISA against the reference (same integers,
// float rounding only); a row alone bit-identical to the row in its block; NaN / inf inputs give
// no crash and finite outputs where the rest of the row is finite.
Test(kernels, attention_q16_all_isas) {
    enum sk_isa list[SK_ISA_COUNT];
    int ni = isas(list);
    static const int NQ[] = {1, 3, 16, 17, 33, 64, 129}, NKV[] = {1, 2, 3, 16, 33, 128, 300}, D[] = {1, 8, 17, 32, 64, 200};
    cr_assert_eq(sk_attention_q16(2, 0, 4, NULL, 4, NULL, 4, NULL, 4, 1.0f, NULL, 4, NULL), SEMBED_EINVAL);
    cr_assert_eq(sk_attention_q16(2, 2, 4, NULL, 3, NULL, 4, NULL, 4, 1.0f, NULL, 4, NULL), SEMBED_EINVAL);
    cr_assert_eq(sk_attention_q16_qk_max(32), 8191);
    cr_assert_eq(sk_attention_q16_qk_max(64), 5792);
    cr_assert_eq(sk_attention_q16_qk_max(1), 32767);
    double worst = 0; // max error / bound over the sweep
    for (int iq = 0; iq < 7; iq++)
        for (int ik = 0; ik < 7; ik++)
            for (int id = 0; id < 6; id++) {
                int nq = NQ[iq], nkv = NKV[ik], d = D[id];
                if ((iq + ik + id) % 2 && nq * nkv * d > 20000) continue;
                int ld = 3 * d + 5, nt = nq > nkv ? nq : nkv, ldo = d + 3;
                float *qkv = frand_buf((size_t)nt * ld, 2.0f);
                const float *Q = qkv, *K = qkv + d, *V = qkv + 2 * d;
                float scale = 1.0f / sqrtf((float)d);
                size_t ss = sk_attention_q16_scratch_size(nkv, d);
                void *scr = aligned_alloc(64, (ss + 63) / 64 * 64);
                float *ref = NULL;
                for (int a = 0; a < ni; a++) {
                    use_isa(list[a]);
                    float *out = calloc((size_t)nq * ldo, 4), *o1 = malloc((size_t)ldo * 4);
                    cr_assert_eq(sk_attention_q16(nq, nkv, d, Q, ld, K, ld, V, ld, scale, out, ldo, scr), SEMBED_OK);
                    int QM = sk_attention_q16_qk_max(d);
                    for (int i = 0; i < nq; i++) {
                        // oracle, and the error bound: each q, k, v value is off by at most half a
                        // step (amax / m / 2), each p by half of 1/32767 plus float rounding
                        double sc[300], mx = -1e300, sum = 0, aq = 0, ak = 0, av = 0, ds = 0;
                        for (int p = 0; p < d; p++) aq = fmax(aq, fabs(Q[(size_t)i * ld + p]));
                        for (int j = 0; j < nkv; j++)
                            for (int p = 0; p < d; p++) {
                                ak = fmax(ak, fabs(K[(size_t)j * ld + p]));
                                av = fmax(av, fabs(V[(size_t)j * ld + p]));
                            }
                        for (int j = 0; j < nkv; j++) {
                            double acc = 0;
                            for (int p = 0; p < d; p++) acc += (double)Q[(size_t)i * ld + p] * K[(size_t)j * ld + p];
                            sc[j] = acc * scale;
                            mx = sc[j] > mx ? sc[j] : mx;
                        }
                        ds = scale * d * (aq * ak) * (1.0 / QM + 0.25 / ((double)QM * QM)) + 1e-6 * fabs(mx); // |score error|
                        for (int j = 0; j < nkv; j++) { sc[j] = exp(sc[j] - mx); sum += sc[j]; }
                        // p error <= p (e^(2 ds) - 1) + 1/32767; out error adds V's half step per column
                        double bound = av * ((exp(2 * ds) - 1) + nkv * 0.6 / 32767.0 + 1.0 / 32767.0) + 1e-6;
                        for (int c = 0; c < d; c++) {
                            double acc = 0;
                            for (int j = 0; j < nkv; j++) acc += sc[j] / sum * V[(size_t)j * ld + c];
                            double e = fabs(acc - out[(size_t)i * ldo + c]);
                            if (e / bound > worst) worst = e / bound;
                            cr_assert(e <= bound, "%s q16 attention nq %d nkv %d d %d out[%d,%d] = %.9g, double %.9g (bound %.3g)",
                                      sk_isa_name(list[a]), nq, nkv, d, i, c, out[(size_t)i * ldo + c], acc, bound);
                        }
                        for (int c = d; c < ldo; c++)
                            cr_assert_eq(out[(size_t)i * ldo + c], 0.0f, "%s q16 attention wrote past d", sk_isa_name(list[a]));
                    }
                    // same integers on every ISA: outputs within float rounding of the reference's
                    if (!ref) {
                        ref = out;
                        out = NULL;
                    } else {
                        for (int i = 0; i < nq; i++)
                            for (int c = 0; c < d; c++) {
                                float g = out[(size_t)i * ldo + c], w = ref[(size_t)i * ldo + c];
                                // exp and the sum order differ: a probability may round to the other
                                // neighbouring step, up to 1/32767 of |v| <= 2 per key
                                cr_assert(fabs(g - w) <= 2.0 * (nkv / 32767.0 + 1e-5) + 1e-6,
                                          "%s vs %s q16 attention nq %d nkv %d d %d out[%d,%d] = %.9g vs %.9g", sk_isa_name(list[a]),
                                          sk_isa_name(list[0]), nq, nkv, d, i, c, g, w);
                            }
                    }
                    // a row alone equals the row in the block
                    const float *blk = out ? out : ref;
                    for (int i = 0; i < nq; i += 5) {
                        cr_assert_eq(sk_attention_q16(1, nkv, d, Q + (size_t)i * ld, ld, K, ld, V, ld, scale, o1, ldo, NULL), SEMBED_OK);
                        cr_assert_eq(memcmp(o1, blk + (size_t)i * ldo, (size_t)d * 4), 0, "%s q16 attention row %d alone differs (nq %d nkv %d d %d)",
                                     sk_isa_name(list[a]), i, nq, nkv, d);
                    }
                    free(out); free(o1);
                }
                free(ref); free(qkv); free(scr);
            }
    fprintf(stderr, "kernels: q16 attention worst error / bound %.3f\n", worst);
    // hostile values: a NaN in K or V quantizes to 0 (its row's / column's scale ignores it)
    for (int a = 0; a < ni; a++) {
        use_isa(list[a]);
        int d = 32, n = 20, ld = 3 * d;
        float *qkv = frand_buf((size_t)n * ld, 1.0f), out[20 * 32];
        qkv[d + 5] = NAN;
        qkv[2 * d + 3 * ld + 7] = NAN;
        cr_assert_eq(sk_attention_q16(n, n, d, qkv, ld, qkv + d, ld, qkv + 2 * d, ld, 0.2f, out, d, NULL), SEMBED_OK);
        for (int i = 0; i < n * d; i++) cr_assert(isfinite(out[i]), "%s q16 attention: non-finite output %d from a NaN input", sk_isa_name(list[a]), i);
        free(qkv);
    }
    restore_isa();
}

// Fused attention: bit-identical to sk_gemm_f32 + sk_softmax + sk_gemm_f32 on the same ISA, each
// query row independent of the others, close to a double-precision computation.
#define TOL_ATT_ABS 5e-6
Test(kernels, attention_all_isas) {
    enum sk_isa list[SK_ISA_COUNT];
    int ni = isas(list);
    static const int NQ[] = {1, 3, 16, 17, 64, 129}, NKV[] = {1, 2, 16, 33, 128, 300}, D[] = {1, 8, 17, 32, 64, 200};
    cr_assert_eq(sk_attention_f32(2, 0, 4, NULL, 4, NULL, 4, NULL, 4, 1.0f, NULL, 4, NULL), SEMBED_EINVAL);
    for (int a = 0; a < ni; a++) {
        use_isa(list[a]);
        double maxd = 0;
        for (int iq = 0; iq < 6; iq++)
            for (int ik = 0; ik < 6; ik++)
                for (int id = 0; id < 6; id++) {
                    int nq = NQ[iq], nkv = NKV[ik], d = D[id];
                    if ((iq + ik + id) % 2 && nq * nkv * d > 20000) continue; // keep the sweep short
                    int ld = 3 * d + 5, nt = nq > nkv ? nq : nkv, ldo = d + 3;
                    float *qkv = frand_buf((size_t)nt * ld, 2.0f), *out = malloc((size_t)nq * ldo * 4);
                    float *want = malloc((size_t)nq * ldo * 4), *S = malloc((size_t)nq * nkv * 4), *o1 = malloc((size_t)ldo * 4);
                    const float *Q = qkv, *K = qkv + d, *V = qkv + 2 * d;
                    float scale = 1.0f / sqrtf((float)d);
                    memset(out, 0, (size_t)nq * ldo * 4);
                    memset(want, 0, (size_t)nq * ldo * 4);
                    size_t ss = sk_attention_scratch_size(nkv, d);
                    void *scr = aligned_alloc(64, (ss + 63) / 64 * 64);
                    cr_assert_eq(sk_attention_f32(nq, nkv, d, Q, ld, K, ld, V, ld, scale, out, ldo, scr), SEMBED_OK);
                    sk_gemm_f32(false, true, nq, nkv, d, scale, Q, ld, K, ld, 0.0f, S, nkv, 1);
                    for (int i = 0; i < nq; i++) sk_softmax(S + (size_t)i * nkv, nkv);
                    sk_gemm_f32(false, false, nq, d, nkv, 1.0f, S, nkv, V, ld, 0.0f, want, ldo, 1);
                    for (int i = 0; i < nq; i++)
                        for (int c = 0; c < d; c++) {
                            float g = out[(size_t)i * ldo + c], w = want[(size_t)i * ldo + c];
                            if (memcmp(&g, &w, 4))
                                cr_assert_fail("%s attention nq %d nkv %d d %d out[%d,%d] = %.9g, gemm+softmax+gemm %.9g", sk_isa_name(list[a]),
                                               nq, nkv, d, i, c, g, w);
                        }
                    // double-precision oracle
                    for (int i = 0; i < nq; i++) {
                        double sc[300], mx = -1e300, sum = 0;
                        for (int j = 0; j < nkv; j++) {
                            double acc = 0;
                            for (int p = 0; p < d; p++) acc += (double)Q[(size_t)i * ld + p] * K[(size_t)j * ld + p];
                            sc[j] = acc * scale;
                            mx = sc[j] > mx ? sc[j] : mx;
                        }
                        for (int j = 0; j < nkv; j++) { sc[j] = exp(sc[j] - mx); sum += sc[j]; }
                        for (int c = 0; c < d; c++) {
                            double acc = 0;
                            for (int j = 0; j < nkv; j++) acc += sc[j] / sum * V[(size_t)j * ld + c];
                            double dd = fabs(acc - out[(size_t)i * ldo + c]);
                            if (dd > maxd) maxd = dd;
                            cr_assert(dd <= TOL_ATT_ABS + 2e-6 * fabs(acc), "%s attention nq %d nkv %d d %d out[%d,%d] = %.9g, double %.9g",
                                      sk_isa_name(list[a]), nq, nkv, d, i, c, out[(size_t)i * ldo + c], acc);
                        }
                    }
                    // a row alone, with the stack/allocated scratch, equals the row in the block
                    for (int i = 0; i < nq; i += 5) {
                        cr_assert_eq(sk_attention_f32(1, nkv, d, Q + (size_t)i * ld, ld, K, ld, V, ld, scale, o1, ldo, NULL), SEMBED_OK);
                        cr_assert_eq(memcmp(o1, out + (size_t)i * ldo, (size_t)d * 4), 0, "%s attention row %d alone differs (nq %d nkv %d d %d)",
                                     sk_isa_name(list[a]), i, nq, nkv, d);
                    }
                    // columns past d in out untouched
                    for (int i = 0; i < nq; i++)
                        for (int c = d; c < ldo; c++)
                            cr_assert_eq(out[(size_t)i * ldo + c], 0.0f, "%s attention wrote past d at [%d,%d]", sk_isa_name(list[a]), i, c);
                    free(qkv); free(out); free(want); free(S); free(o1); free(scr);
                }
        fprintf(stderr, "kernels: %s attention max |diff| vs double %.3g\n", sk_isa_name(list[a]), maxd);
    }
    restore_isa();
}
