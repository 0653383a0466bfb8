// Kernel front end: the Linear-layer object (weights packed once at create), the threading of
// GEMMs over output columns, and the row ops, all through the table cpu.c fills. Compiled with
// no ISA flags.
#define _DEFAULT_SOURCE // madvise, MADV_HUGEPAGE
#include "runtime/kernels/kernels.h"

#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "formats/log.h"
#include "runtime/kernels/kernels_impl.h"

static const char *const isa_names[SK_ISA_COUNT] = {"ref", "avx2", "avx512", "avxvnni", "avx512vnni", "amx"};

const char *sk_isa_name(enum sk_isa isa) { return (unsigned)isa < SK_ISA_COUNT ? isa_names[isa] : "?"; }

int sk_isa_from_name(const char *name) {
    for (int i = 0; i < SK_ISA_COUNT; i++)
        if (name && strcmp(name, isa_names[i]) == 0) return i;
    return -1;
}

static size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

static void *alloc64(size_t bytes) { return aligned_alloc(64, round_up(bytes ? bytes : 1, 64)); }

// Packed weights are the one big allocation of a model (bert-base fp32: 340 MB). From 2 MiB up
// they get their own mapping with transparent huge pages requested (MADV_HUGEPAGE matters where
// THP is in "madvise" mode, Debian's and this VM's default): 4 KiB first-touch faults made up
// most of the first call (bert-base fp32 2.7 s, with faults at ~10 us each in this VM).
#define SK_BIG (2u << 20)
#define SK_PAGE 4096u
// A mapping of round_up(bytes, 4 KiB) whose start is 2 MiB aligned: the whole 2 MiB stretches
// can be huge pages, the tail uses small ones, so resident memory is not rounded up.
static void *big_alloc(size_t bytes) {
    if (bytes < SK_BIG) return alloc64(bytes);
    size_t len = round_up(bytes, SK_PAGE), span = len + SK_BIG;
    char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    char *a = (char *)round_up((uintptr_t)p, SK_BIG);
    if (a > p) munmap(p, (size_t)(a - p));
    if (p + span > a + len) munmap(a + len, (size_t)(p + span - (a + len)));
#ifdef MADV_HUGEPAGE
    (void)madvise(a, len, MADV_HUGEPAGE); // advisory: 4 KiB pages still work
#endif
    return a; // zero-filled
}
static void big_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes < SK_BIG) free(p);
    else munmap(p, round_up(bytes, SK_PAGE));
}

struct sk_linear {
    int n_out, n_in;
    enum sk_mode mode;
    int kpad;           // int8: n_in rounded up to 64; f32: n_in
    float *wp;          // f32: packed panels [ceil(n_out/16)][n_in][16]
    int8_t *wq;         // int8: packed panels [ceil(n_out/16)][kpad/4][16][4]
    size_t w_bytes;     // of wp or wq (big_alloc)
    float *wscale;      // int8: [n_out]
    int32_t *wcomp;     // int8: [n_out] = 128 * sum_p W[j, p]
    float *bias;        // [n_out] or NULL
};

// Row r (of n_out) of one weight tensor as float.
static void load_row(enum sembed_dtype dtype, const void *w, size_t n_out, int r, int n_in, float *dst) {
    const char *base = w;
    size_t off = (size_t)r * (size_t)n_in;
    switch (dtype) {
    case SEMBED_DTYPE_F32: memcpy(dst, base + 4 * off, (size_t)n_in * 4); break;
    case SEMBED_DTYPE_F16:
    case SEMBED_DTYPE_BF16:
        for (int c = 0; c < n_in; c++) {
            uint16_t h;
            memcpy(&h, base + 2 * (off + (size_t)c), 2);
            dst[c] = dtype == SEMBED_DTYPE_F16 ? sk_f16_to_f32(h) : sk_bf16_to_f32(h);
        }
        break;
    case SEMBED_DTYPE_Q8_ROW: {
        const int8_t *q = w;
        float s;
        memcpy(&s, base + round_up(n_out * (size_t)n_in, SEMBED_ALIGNMENT) + 4 * (size_t)r, 4);
        for (int c = 0; c < n_in; c++) dst[c] = (float)q[off + (size_t)c] * s;
        break;
    }
    default: break;
    }
}

// Weight quantization at create: per row, scale = max|w| / 127, q = clamp(rne(w * 127 / max|w|)).
static void quantize_weight_row(const float *row, int n, int8_t *q, float *scale) {
    const struct sk_kernels *K = sk_kernels_for(SK_ISA_REF);
    float amax = K->absmax(row, n);
    K->quantize(row, n, sk_q8_inv(amax), (uint8_t *)q, false);
    *scale = sk_q8_scale(amax);
}

// The weight source: n_parts tensors of one dtype stacked along the rows (fused Q/K/V).
struct wsrc {
    enum sembed_dtype dtype;
    const void *const *parts;
    int n_parts, rows_per_part, n_in;
};

static void src_row(const struct wsrc *s, int r, const void **w, int *lr) {
    *w = s->parts[r / s->rows_per_part];
    *lr = r % s->rows_per_part;
}

// f32 panel p: element (c, j) at panel[c * 16 + j] for rows r0 + j; rows past n_out stay zero
// (the mapping is zero-filled; small buffers are cleared by the caller).
static void pack_f32_panel(const struct wsrc *s, int n_out, int p, float *panel, float *tmp) {
    const int n_in = s->n_in, r0 = p * SK_PANEL, nr = n_out - r0 < SK_PANEL ? n_out - r0 : SK_PANEL;
    const float *rows[SK_PANEL];
    for (int j = 0; j < nr; j++) {
        const void *w;
        int lr;
        src_row(s, r0 + j, &w, &lr);
        if (s->dtype == SEMBED_DTYPE_F32) {
            rows[j] = (const float *)w + (size_t)lr * (size_t)n_in;
        } else {
            load_row(s->dtype, w, (size_t)s->rows_per_part, lr, n_in, tmp + (size_t)j * n_in);
            rows[j] = tmp + (size_t)j * n_in;
        }
    }
    // 16 x 16 blocks: 16 source lines in, 16 contiguous destination lines out.
    for (int c0 = 0; c0 < n_in; c0 += 16) {
        int cn = n_in - c0 < 16 ? n_in - c0 : 16;
        for (int j = 0; j < nr; j++) {
            const float *src = rows[j] + c0;
            float *dst = panel + (size_t)c0 * SK_PANEL + j;
            for (int c = 0; c < cn; c++) dst[(size_t)c * SK_PANEL] = src[c];
        }
    }
}

// int8 panel p: bytes (c, j) at panel[(c / 4) * 64 + 4 * j + c % 4]; scales and compensation
// for its rows. Columns n_in..kpad-1 and rows past n_out stay zero.
static void pack_q8_panel(const struct wsrc *s, struct sk_linear *L, int p, int8_t *tmpq, float *tmpf) {
    const int n_in = s->n_in, r0 = p * SK_PANEL, nr = L->n_out - r0 < SK_PANEL ? L->n_out - r0 : SK_PANEL;
    int8_t *panel = L->wq + (size_t)p * (size_t)L->kpad * SK_PANEL;
    const int8_t *rows[SK_PANEL];
    for (int j = 0; j < nr; j++) {
        const void *w;
        int lr;
        src_row(s, r0 + j, &w, &lr);
        float *sc = &L->wscale[r0 + j];
        if (s->dtype == SEMBED_DTYPE_Q8_ROW) {
            size_t qbytes = round_up((size_t)s->rows_per_part * (size_t)n_in, SEMBED_ALIGNMENT);
            rows[j] = (const int8_t *)w + (size_t)lr * (size_t)n_in;
            memcpy(sc, (const char *)w + qbytes + 4 * (size_t)lr, 4);
        } else {
            load_row(s->dtype, w, (size_t)s->rows_per_part, lr, n_in, tmpf);
            quantize_weight_row(tmpf, n_in, tmpq + (size_t)j * n_in, sc);
            rows[j] = tmpq + (size_t)j * n_in;
        }
        int32_t sum = 0;
        for (int c = 0; c < n_in; c++) sum += rows[j][c];
        L->wcomp[r0 + j] = 128 * sum;
    }
    const int full = n_in / 4;
    for (int j = 0; j < nr; j++) {
        const int8_t *src = rows[j];
        int8_t *dst = panel + 4 * j;
        for (int g = 0; g < full; g++) memcpy(dst + (size_t)g * 64, src + 4 * g, 4);
        for (int c = 4 * full; c < n_in; c++) dst[(size_t)full * 64 + (c - 4 * full)] = src[c];
    }
}

int sk_linear_create_parts(struct sk_linear **out, enum sembed_dtype dtype, const void *const *parts, int n_parts,
                           const float *bias, int n_out, int n_in, enum sk_mode mode) {
    *out = NULL;
    if (n_out <= 0 || n_in <= 0 || !parts || n_parts < 1 || n_out % n_parts ||
        (mode != SK_MODE_F32 && mode != SK_MODE_INT8)) {
        SEMBED_LOG_ERR("bad arguments: n_out %d, n_in %d, %d parts, mode %d", n_out, n_in, n_parts, (int)mode);
        return SEMBED_EINVAL;
    }
    for (int i = 0; i < n_parts; i++)
        if (!parts[i]) {
            SEMBED_LOG_ERR("weight part %d is NULL", i);
            return SEMBED_EINVAL;
        }
    if (dtype != SEMBED_DTYPE_F32 && dtype != SEMBED_DTYPE_F16 && dtype != SEMBED_DTYPE_BF16 &&
        dtype != SEMBED_DTYPE_Q8_ROW) {
        SEMBED_LOG_ERR("weight dtype id %d cannot feed a Linear layer (want f32, f16, bf16 or q8_row)", (int)dtype);
        return SEMBED_EDTYPE;
    }
    if ((size_t)n_out * (size_t)n_in > SIZE_MAX / 64) return SEMBED_EINVAL;
    const struct wsrc src = {.dtype = dtype, .parts = parts, .n_parts = n_parts, .rows_per_part = n_out / n_parts,
                             .n_in = n_in};
    struct sk_linear *L = calloc(1, sizeof *L);
    float *tmpf = malloc((size_t)SK_PANEL * (size_t)n_in * sizeof(float));
    int8_t *tmpq = malloc((size_t)SK_PANEL * (size_t)n_in);
    if (!L || !tmpf || !tmpq) goto fail_nomem;
    L->n_out = n_out;
    L->n_in = n_in;
    L->mode = mode;
    const int panels = (n_out + SK_PANEL - 1) / SK_PANEL;
    if (mode == SK_MODE_F32) {
        L->kpad = n_in;
        L->w_bytes = (size_t)panels * (size_t)n_in * SK_PANEL * sizeof(float);
        if (!(L->wp = big_alloc(L->w_bytes))) goto fail_nomem;
        if (L->w_bytes < SK_BIG) memset(L->wp, 0, L->w_bytes); // mmap'd buffers are zero already
        for (int p = 0; p < panels; p++)
            pack_f32_panel(&src, n_out, p, L->wp + (size_t)p * (size_t)n_in * SK_PANEL, tmpf);
    } else {
        L->kpad = (int)round_up((size_t)n_in, SK_Q8_KALIGN);
        L->w_bytes = (size_t)panels * (size_t)L->kpad * SK_PANEL;
        L->wq = big_alloc(L->w_bytes);
        L->wscale = calloc((size_t)n_out, sizeof(float));
        L->wcomp = calloc((size_t)panels * SK_PANEL, sizeof(int32_t)); // padded: kernels read whole panels
        if (!L->wq || !L->wscale || !L->wcomp) goto fail_nomem;
        if (L->w_bytes < SK_BIG) memset(L->wq, 0, L->w_bytes);
        for (int p = 0; p < panels; p++) pack_q8_panel(&src, L, p, tmpq, tmpf);
    }
    if (bias) {
        L->bias = malloc((size_t)n_out * sizeof(float));
        if (!L->bias) goto fail_nomem;
        memcpy(L->bias, bias, (size_t)n_out * sizeof(float));
    }
    free(tmpf);
    free(tmpq);
    *out = L;
    return SEMBED_OK;
fail_nomem:
    SEMBED_LOG_ERR("out of memory packing a %d x %d Linear layer", n_out, n_in);
    free(tmpf);
    free(tmpq);
    sk_linear_free(L);
    return SEMBED_ENOMEM;
}

int sk_linear_create(struct sk_linear **out, enum sembed_dtype dtype, const void *w, const float *bias,
                     int n_out, int n_in, enum sk_mode mode) {
    const void *parts[1] = {w};
    if (!w) {
        *out = NULL;
        SEMBED_LOG_ERR("bad arguments: NULL weights");
        return SEMBED_EINVAL;
    }
    return sk_linear_create_parts(out, dtype, parts, 1, bias, n_out, n_in, mode);
}

void sk_linear_free(struct sk_linear *L) {
    if (!L) return;
    big_free(L->wp ? (void *)L->wp : (void *)L->wq, L->w_bytes);
    free(L->wscale);
    free(L->wcomp);
    free(L->bias);
    free(L);
}

int sk_linear_n_out(const struct sk_linear *L) { return L->n_out; }
int sk_linear_n_in(const struct sk_linear *L) { return L->n_in; }
enum sk_mode sk_linear_mode(const struct sk_linear *L) { return L->mode; }

// int8 scratch: activation rows (padded to 32 rows for tile kernels, kpad bytes each) + scales.
static size_t q8_rows(int m) { return round_up((size_t)m, 32); }

size_t sk_linear_scratch_size(const struct sk_linear *L, int m) {
    if (L->mode != SK_MODE_INT8 || m <= 0) return 0;
    return q8_rows(m) * (size_t)L->kpad + round_up(q8_rows(m) * sizeof(float), 64) + 64;
}

// ---- Threading. Work is split over 16-column panels (or, when there are too few panels for
// the threads, over rows); neither split touches a reduction, so results never depend on it.

struct gemm_job {
    const struct sk_kernels *K;
    int m, n, k;
    // f32
    const float *a; size_t rsa, csa;
    const float *b; size_t bvs, bks;
    // int8
    const uint8_t *aq; size_t lda; const int8_t *wq; const int32_t *wcomp;
    float *c; size_t ldc;
    struct sk_epi epi;
};

static void job_run(const struct gemm_job *jb, int r0, int r1, int j0, int j1) {
    if (r1 <= r0 || j1 <= j0) return;
    struct sk_epi e = jb->epi;
    if (e.res) e.res += (size_t)r0 * e.ldr;
    if (e.ascale) e.ascale += r0;
    if (e.out_s32) e.out_s32 += (size_t)r0 * jb->ldc;
    if (jb->wq)
        jb->K->q8_panels(r1 - r0, jb->k, j0, j1, jb->n, jb->aq + (size_t)r0 * jb->lda, jb->lda, jb->wq, jb->wcomp,
                         jb->c + (size_t)r0 * jb->ldc, jb->ldc, &e);
    else
        jb->K->f32_panels(r1 - r0, jb->k, j0, j1, jb->n, jb->a + (size_t)r0 * jb->rsa, jb->rsa, jb->csa, jb->b,
                          jb->bvs, jb->bks, jb->c + (size_t)r0 * jb->ldc, jb->ldc, &e);
}

// Part t of T: by panels when there are enough, else by row blocks of `rgran` rows.
static void job_part(const struct gemm_job *jb, int t, int T, int rgran) {
    int panels = (jb->n + SK_PANEL - 1) / SK_PANEL;
    if (panels >= 2 * T || jb->m < 2 * rgran) {
        int p0 = (int)((long long)panels * t / T), p1 = (int)((long long)panels * (t + 1) / T);
        int j1 = p1 * SK_PANEL < jb->n ? p1 * SK_PANEL : jb->n;
        job_run(jb, 0, jb->m, p0 * SK_PANEL, j1);
    } else {
        int blocks = (jb->m + rgran - 1) / rgran;
        int b0 = (int)((long long)blocks * t / T), b1 = (int)((long long)blocks * (t + 1) / T);
        int r1 = b1 * rgran < jb->m ? b1 * rgran : jb->m;
        job_run(jb, b0 * rgran, r1, 0, jb->n);
    }
}

// Threads worth using: waking a second OpenMP thread and the closing barrier cost ~2-10 us
// (measured: 2.4 us at best, most calls under 10 us, on the shared 2-core Zen 5), so a call
// estimated below SK_MT_MIN_US of single-thread work runs inline on the caller's thread.
// Rates: single-thread throughput measured with tools/bench/gemm (AVX-512 fp32 160-184 GFLOP/s,
// VNNI int8 520-700 GOP/s), rounded down.
#define SK_MT_MIN_US 25.0
#define SK_RATE_F32 150e3 // flop per us
#define SK_RATE_Q8 500e3
static _Atomic double g_mt_min_us = SK_MT_MIN_US; // changed only by tests

double sk_set_mt_min_us_for_testing(double us) {
    return atomic_exchange(&g_mt_min_us, us < 0 ? SK_MT_MIN_US : us);
}

static int threads_for(double flops, bool q8, int n_threads) {
    int t = n_threads < 1 ? 1 : n_threads;
    if (flops / (q8 ? SK_RATE_Q8 : SK_RATE_F32) < atomic_load(&g_mt_min_us)) t = 1;
    return t;
}

static int clamp_threads(int n_threads, const struct gemm_job *jb) {
    return threads_for(2.0 * jb->m * (double)jb->n * jb->k, jb->wq != NULL, n_threads);
}

int sk_linear_threads(const struct sk_linear *L, int m, int n_threads) {
    return m <= 0 ? 1 : threads_for(2.0 * m * (double)L->n_out * L->n_in, L->mode == SK_MODE_INT8, n_threads);
}

int sk_gemm_f32_threads(int m, int n, int k, int n_threads) {
    return m <= 0 || n <= 0 || k <= 0 ? 1 : threads_for(2.0 * m * (double)n * k, false, n_threads);
}

static void job_exec(const struct gemm_job *jb, int n_threads, int rgran) {
    int T = clamp_threads(n_threads, jb);
    if (T <= 1) { job_part(jb, 0, 1, rgran); return; }
#pragma omp parallel num_threads(T)
    job_part(jb, omp_get_thread_num(), omp_get_num_threads(), rgran);
}

// Quantize rows [r0, r1) of x into aq (stride lda) and ascale.
static void q8_quantize_rows(const struct sk_kernels *K, const float *x, int ldx, int r0, int r1, int k, int kpad,
                             uint8_t *aq, size_t lda, float *ascale) {
    for (int i = r0; i < r1; i++) {
        ascale[i] = sk_q8_scale(K->q8_row(x + (size_t)i * (size_t)ldx, k, kpad, aq + (size_t)i * lda, K->q8_u8));
    }
}

void sk_linear_forward(const struct sk_linear *L, int m, const float *x, int ldx, float *y, int ldy,
                       enum sk_act act, const float *residual, int ldr, void *scratch, int n_threads) {
    if (m <= 0) return;
    const struct sk_kernels *K = sk_kernels_get();
    struct gemm_job jb = {.K = K, .m = m, .n = L->n_out, .c = y, .ldc = (size_t)ldy};
    jb.epi = (struct sk_epi){.bias = L->bias, .res = residual, .ldr = (size_t)ldr, .act = act, .alpha = 1.0f};
    if (L->mode == SK_MODE_F32) {
        jb.k = L->n_in;
        jb.a = x; jb.rsa = (size_t)ldx; jb.csa = 1;
        jb.b = L->wp; jb.bvs = (size_t)L->n_in * SK_PANEL; jb.bks = SK_PANEL;
        job_exec(&jb, n_threads, 8);
        return;
    }
    void *own = NULL;
    if (!scratch) {
        scratch = own = alloc64(sk_linear_scratch_size(L, m));
        if (!own) {
            SEMBED_LOG_ERR("out of memory for %zu bytes of int8 scratch (pass scratch to avoid this)",
                           sk_linear_scratch_size(L, m));
            for (int i = 0; i < m; i++)
                for (int j = 0; j < L->n_out; j++) y[(size_t)i * ldy + j] = NAN;
            return;
        }
    }
    size_t mp = round_up((size_t)m, (size_t)K->q8_mpad);
    uint8_t *aq = (uint8_t *)round_up((uintptr_t)scratch, 64);
    float *ascale = (float *)(void *)(aq + q8_rows(m) * (size_t)L->kpad);
    jb.k = L->kpad;
    jb.aq = aq; jb.lda = (size_t)L->kpad; jb.wq = L->wq; jb.wcomp = L->wcomp;
    jb.epi.ascale = ascale; jb.epi.wscale = L->wscale;
    memset(aq + (size_t)m * L->kpad, 0, (mp - (size_t)m) * (size_t)L->kpad); // whole zero tiles
    int T = clamp_threads(n_threads, &jb);
    if (T <= 1) {
        q8_quantize_rows(K, x, ldx, 0, m, L->n_in, L->kpad, aq, jb.lda, ascale);
        job_part(&jb, 0, 1, 16);
    } else {
#pragma omp parallel num_threads(T)
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            q8_quantize_rows(K, x, ldx, (int)((long long)m * t / nt), (int)((long long)m * (t + 1) / nt), L->n_in,
                             L->kpad, aq, jb.lda, ascale);
#pragma omp barrier
            job_part(&jb, t, nt, 16);
        }
    }
    free(own);
}

void sk_gemm_f32(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, int n_threads) {
    if (m <= 0 || n <= 0) return;
    const struct sk_kernels *K = sk_kernels_get();
    struct gemm_job jb = {.K = K, .m = m, .n = n, .k = k < 0 ? 0 : k, .c = C, .ldc = (size_t)ldc};
    jb.epi = (struct sk_epi){.gemm = true, .alpha = alpha, .beta = beta};
    jb.a = A;
    jb.rsa = trans_a ? 1 : (size_t)lda;
    jb.csa = trans_a ? (size_t)lda : 1;
    float *packed = NULL;
    if (!trans_b) {
        jb.b = B; jb.bvs = SK_PANEL; jb.bks = ldb > 0 ? (size_t)ldb : 1;
    } else if (m <= 256 || !(packed = alloc64(((size_t)n + SK_PANEL - 1) / SK_PANEL * (size_t)jb.k * SK_PANEL * sizeof(float)))) {
        // op(B)[p, j] = B[j, p]: the kernels pack it chunk by chunk on the stack (bks == 0), once
        // per block of rows: no allocation, which is what attention-sized calls need.
        jb.b = B; jb.bvs = (size_t)ldb; jb.bks = 0;
    } else {
        // Many row blocks (the trainer's x W^T): pack once into panels instead of once per block.
        size_t panels = ((size_t)n + SK_PANEL - 1) / SK_PANEL;
        for (size_t q = 0; q < panels; q++)
            for (int t = 0; t < SK_PANEL; t++) {
                size_t j = q * SK_PANEL + (size_t)t;
                float *dst = packed + q * (size_t)jb.k * SK_PANEL + (size_t)t;
                if (j < (size_t)n)
                    for (int p = 0; p < jb.k; p++) dst[(size_t)p * SK_PANEL] = B[j * (size_t)ldb + (size_t)p];
                else
                    for (int p = 0; p < jb.k; p++) dst[(size_t)p * SK_PANEL] = 0.0f;
            }
        jb.b = packed; jb.bvs = (size_t)jb.k * SK_PANEL; jb.bks = SK_PANEL;
    }
    job_exec(&jb, n_threads, 8);
    free(packed);
}

// Shared argument check of the attention entry points: 1 = run, 0 = nothing to do (n_q or d is
// 0), < 0 = SEMBED_EINVAL (logged).
static int att_args(int n_q, int n_kv, int d, int ldq, int ldk, int ldv, int ldo) {
    if (n_q <= 0 || d <= 0) return n_q < 0 || d < 0 ? SEMBED_EINVAL : 0;
    if (n_kv <= 0 || ldq < d || ldk < d || ldv < d || ldo < d) {
        SEMBED_LOG_ERR("bad attention shape: n_q %d, n_kv %d, d %d, ldq %d, ldk %d, ldv %d, ldo %d", n_q, n_kv, d, ldq, ldk,
                       ldv, ldo);
        return SEMBED_EINVAL;
    }
    return 1;
}

size_t sk_attention_scratch_size(int n_kv, int d) {
    if (n_kv <= 0 || d <= 0) return 0;
    return sk_att_scratch_floats(n_kv, d) * sizeof(float);
}

int sk_attention_f32(int n_q, int n_kv, int d, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                     float scale, float *out, int ldo, void *scratch) {
    int ok = att_args(n_q, n_kv, d, ldq, ldk, ldv, ldo);
    if (ok <= 0) return ok;
    enum { STACK_FLOATS = 16384 }; // 64 KiB: T = 128 keys at d = 64 and smaller
    float stack[STACK_FLOATS] __attribute__((aligned(64)));
    size_t need = sk_att_scratch_floats(n_kv, d);
    void *own = NULL;
    if (!scratch) {
        if (need <= STACK_FLOATS) {
            scratch = stack;
        } else if (!(scratch = own = alloc64(need * sizeof(float)))) {
            SEMBED_LOG_ERR("out of memory for %zu bytes of attention scratch (n_kv %d, d %d)", need * sizeof(float), n_kv, d);
            return SEMBED_ENOMEM;
        }
    }
    sk_kernels_get()->attention(n_q, n_kv, d, q, (size_t)ldq, k, (size_t)ldk, v, (size_t)ldv, scale, out, (size_t)ldo,
                                scratch);
    free(own);
    return SEMBED_OK;
}

int sk_attention_q16_qk_max(int d) { return sk_q16_qk_max(d > 0 ? d : 1); }

size_t sk_attention_q16_scratch_size(int n_kv, int d) {
    if (n_kv <= 0 || d <= 0) return 0;
    if (n_kv > SK_Q16_MAX_KV) return sk_attention_scratch_size(n_kv, d);
    return sk_att_q16_layout(n_kv, d).total;
}

int sk_attention_q16(int n_q, int n_kv, int d, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                     float scale, float *out, int ldo, void *scratch) {
    int ok = att_args(n_q, n_kv, d, ldq, ldk, ldv, ldo);
    if (ok <= 0) return ok;
    if (n_kv > SK_Q16_MAX_KV) return sk_attention_f32(n_q, n_kv, d, q, ldq, k, ldk, v, ldv, scale, out, ldo, scratch);
    void *own = NULL;
    if (!scratch && !(scratch = own = alloc64(sk_att_q16_layout(n_kv, d).total))) {
        SEMBED_LOG_ERR("out of memory for attention scratch (n_kv %d, d %d)", n_kv, d);
        return SEMBED_ENOMEM;
    }
    sk_kernels_get()->attention_q16(n_q, n_kv, d, q, (size_t)ldq, k, (size_t)ldk, v, (size_t)ldv, scale, out,
                                    (size_t)ldo, scratch);
    free(own);
    return SEMBED_OK;
}

void sk_layernorm(const float *x, float *out, int n, const float *gamma, const float *beta, float eps) {
    if (n > 0) sk_kernels_get()->layernorm(x, out, n, gamma, beta, eps);
}
void sk_softmax(float *x, int n) {
    if (n > 0) sk_kernels_get()->softmax(x, n);
}
void sk_act_apply(float *x, int n, enum sk_act act) {
    if (n > 0) sk_kernels_get()->act(x, n, act);
}

float sk_q8_quantize_row(const float *x, int n, int8_t *q) {
    const struct sk_kernels *K = sk_kernels_get();
    if (n <= 0) return 0.0f;
    float amax = K->absmax(x, n);
    K->quantize(x, n, sk_q8_inv(amax), (uint8_t *)q, false);
    return sk_q8_scale(amax);
}

int sk_gemm_q8_s32(enum sk_isa isa, int m, int n, int k, const int8_t *a, int lda, const int8_t *w, int ldw,
                   int32_t *c, int ldc) {
    const struct sk_kernels *K = sk_kernels_for(isa);
    if (!K) return SEMBED_EUNSUPPORTED;
    if (m <= 0 || n <= 0 || k <= 0) return SEMBED_EINVAL;
    struct sk_linear L = {.n_out = n, .n_in = k, .mode = SK_MODE_INT8, .kpad = (int)round_up((size_t)k, SK_Q8_KALIGN)};
    size_t panels = ((size_t)n + SK_PANEL - 1) / SK_PANEL, mp = round_up((size_t)m, 32);
    size_t qbytes = round_up((size_t)n * (size_t)k, SEMBED_ALIGNMENT);
    L.wq = alloc64(panels * (size_t)L.kpad * SK_PANEL);
    L.wcomp = calloc(panels * SK_PANEL, sizeof(int32_t));
    L.wscale = calloc((size_t)n, sizeof(float));
    uint8_t *aq = alloc64(mp * (size_t)L.kpad);
    int8_t *src = calloc(qbytes + 4 * (size_t)n, 1); // the rows as a q8_row tensor (scales unused)
    int rc = SEMBED_ENOMEM;
    if (!L.wq || !L.wcomp || !L.wscale || !aq || !src) goto done;
    memset(L.wq, 0, panels * (size_t)L.kpad * SK_PANEL);
    memset(aq, 0, mp * (size_t)L.kpad);
    for (int r = 0; r < n; r++) memcpy(src + (size_t)r * (size_t)k, w + (size_t)r * (size_t)ldw, (size_t)k);
    const void *part = src;
    const struct wsrc ws = {.dtype = SEMBED_DTYPE_Q8_ROW, .parts = &part, .n_parts = 1, .rows_per_part = n, .n_in = k};
    for (int p = 0; p < (int)panels; p++) pack_q8_panel(&ws, &L, p, NULL, NULL); // the packer models use
    for (int i = 0; i < m; i++)
        for (int p = 0; p < k; p++)
            aq[(size_t)i * L.kpad + (size_t)p] = (uint8_t)((uint8_t)a[(size_t)i * lda + p] ^ (K->q8_u8 ? 0x80u : 0u));
    struct gemm_job jb = {.K = K, .m = m, .n = n, .k = L.kpad, .aq = aq, .lda = (size_t)L.kpad, .wq = L.wq,
                          .wcomp = L.wcomp, .c = (float *)(void *)c, .ldc = (size_t)ldc}; // c: never written as float
    jb.epi.out_s32 = c;
    job_part(&jb, 0, 1, 16);
    rc = SEMBED_OK;
done:
    free(L.wq);
    free(L.wcomp);
    free(L.wscale);
    free(aq);
    free(src);
    return rc;
}
