// AVX2 + FMA kernels: fp32 6x16 microkernel and row ops (shared template), and int8 GEMM
// without VNNI. VPMADDUBSW would add two u8 x s8 products into a saturating int16 (255 * 127 * 2
// overflows it), so this path sign-extends both operands to 16 bits and uses VPMADDWD, whose
// int32 pair sums cannot overflow: exact, like every other path.
#define SK_VL 8
#include "runtime/kernels/kernels_simd.h"

static void f32_panels_avx2(int m, int k, int j0, int j1, int n, const float *a, size_t rsa, size_t csa,
                            const float *b, size_t bvs, size_t bks, float *c, size_t ldc, const struct sk_epi *epi) {
    f32_panels_simd(m, k, j0, j1, n, a, rsa, csa, b, bvs, bks, c, ldc, epi);
}
static void layernorm_avx2(const float *x, float *out, int n, const float *gamma, const float *beta, float eps) {
    layernorm_simd(x, out, n, gamma, beta, eps);
}
static void softmax_avx2(float *x, int n) { softmax_simd(x, n); }
static void attention_avx2(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk,
                              const float *v, size_t ldv, float scale, float *out, size_t ldo, float *scratch) {
    attention_simd(n_q, n_kv, d, q, ldq, k, ldk, v, ldv, scale, out, ldo, scratch);
}
static void act_avx2(float *x, int n, enum sk_act act) { act_row_simd(x, n, act); }
static float absmax_avx2(const float *x, int n) { return absmax_simd(x, n); }

static void quantize_avx2(const float *x, int n, float inv, uint8_t *q, bool u8) {
    vf vinv = v_set1(inv), lo = v_set1(-127.0f), hi = v_set1(127.0f);
    __m128i flip = _mm_set1_epi8(u8 ? (char)0x80 : 0);
    for (int i = 0; i < n; i += 8) {
        int nv = n - i < 8 ? n - i : 8;
        vf v = v_min(v_max(v_mul(v_loadm(x + i, nv), vinv), lo), hi);
        __m256i w = _mm256_cvtps_epi32(v);
        __m128i p16 = _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        __m128i p8 = _mm_xor_si128(_mm_packs_epi16(p16, p16), flip);
        uint8_t tmp[16];
        _mm_storeu_si128((__m128i *)(void *)tmp, p8);
        memcpy(q + i, tmp, (size_t)nv);
    }
}

static float q8_row_avx2(const float *x, int k, int kpad, uint8_t *q, bool u8) {
    float amax = absmax_avx2(x, k);
    quantize_avx2(x, k, sk_q8_inv(amax), q, u8);
    memset(q + k, u8 ? 0x80 : 0, (size_t)(kpad - k));
    return amax;
}

// int8: MR rows x one 16-column panel. Per 4-k group, the panel's 64 bytes are 4 x 16 bytes
// (4 columns x 4 k each), sign-extended to 16 x int16; the row's 4 activations sign-extended and
// broadcast to every 64-bit lane. VPMADDWD leaves two partial int32 sums per column, added at the end.
#define Q8_MR 3
static inline __attribute__((always_inline)) void ukr_q8_avx2(const int MR, int kpad, const uint8_t *aq, size_t lda,
                                                              const int8_t *wp, int32_t *t) {
    __m256i acc[Q8_MR][4];
#pragma GCC unroll 3
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) acc[r][u] = _mm256_setzero_si256();
    for (int g = 0; g < kpad / 4; g++) {
        __m256i av[Q8_MR];
#pragma GCC unroll 3
        for (int r = 0; r < MR; r++) {
            int32_t a4;
            memcpy(&a4, aq + (size_t)r * lda + 4 * (size_t)g, 4);
            av[r] = _mm256_broadcastq_epi64(_mm_cvtepi8_epi16(_mm_cvtsi32_si128(a4)));
        }
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            __m256i b = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(wp + (size_t)g * 64 + 16 * u)));
#pragma GCC unroll 3
            for (int r = 0; r < MR; r++) acc[r][u] = _mm256_add_epi32(acc[r][u], _mm256_madd_epi16(av[r], b));
        }
    }
    const __m256i perm = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
#pragma GCC unroll 3
    for (int r = 0; r < MR; r++) {
        __m256i lo = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(acc[r][0], acc[r][1]), perm);
        __m256i hi = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(acc[r][2], acc[r][3]), perm);
        _mm256_storeu_si256((__m256i *)(void *)(t + 16 * r), lo);
        _mm256_storeu_si256((__m256i *)(void *)(t + 16 * r + 8), hi);
    }
}

static void q8_panels_avx2(int m, int kpad, int j0, int j1, int n, const uint8_t *aq, size_t lda, const int8_t *wq,
                           const int32_t *wcomp, float *c, size_t ldc, const struct sk_epi *epi) {
    (void)n; (void)wcomp; // s8 activations: no shift to undo
    int32_t t[Q8_MR * 16] __attribute__((aligned(64)));
    for (int c0 = j0; c0 < j1; c0 += 16) {
        int nc = j1 - c0 < 16 ? j1 - c0 : 16;
        const int8_t *wp = wq + (size_t)(c0 / 16) * (size_t)kpad * 16;
        for (int i0 = 0; i0 < m; i0 += Q8_MR) {
            int mr = m - i0 < Q8_MR ? m - i0 : Q8_MR;
            const uint8_t *ai = aq + (size_t)i0 * lda;
            switch (mr) {
            case 1: ukr_q8_avx2(1, kpad, ai, lda, wp, t); break;
            case 2: ukr_q8_avx2(2, kpad, ai, lda, wp, t); break;
            default: ukr_q8_avx2(3, kpad, ai, lda, wp, t); break;
            }
            epi_block_q8(t, 16, c, ldc, i0, mr, c0, nc, epi);
        }
    }
}

static void attention_q16_avx2(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk,
                                  const float *v, size_t ldv, float scale, float *out, size_t ldo, void *scratch) {
    attention_q16_simd(n_q, n_kv, d, q, ldq, k, ldk, v, ldv, scale, out, ldo, scratch);
}

bool sk_fill_avx2(struct sk_kernels *t) {
    t->isa = SK_ISA_AVX2;
    t->attention_q16 = attention_q16_avx2;
    t->f32_panels = f32_panels_avx2;
    t->f32_cols_per_task = SK_PANEL;
    t->q8_panels = q8_panels_avx2;
    t->q8_u8 = false;
    t->q8_mpad = 1;
    t->q8_amx = false;
    t->layernorm = layernorm_avx2;
    t->softmax = softmax_avx2;
    t->attention = attention_avx2;
    t->act = act_avx2;
    t->absmax = absmax_avx2;
    t->quantize = quantize_avx2;
    t->q8_row = q8_row_avx2;
    return true;
}
