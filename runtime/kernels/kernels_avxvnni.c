// AVX-VNNI (VEX, 256-bit) int8 GEMM: the AVX512-VNNI scheme on ymm registers (u8 activations =
// q + 128, s8 weights, exact compensation by wcomp). 4 rows x one 16-column panel (2 ymm):
// 8 accumulators + 2 weight vectors + 1 broadcast of the 16 ymm registers. The first version's
// 6 rows (15 registers) made GCC keep accumulators on the stack inside the k loop: 37-42% of
// the ymm VPDPBUSD peak; 4 rows run at 51-70% (build-bench/gemm -t 1 -i avxvnni -M int8,
// m = 16/32/1024 on the 8 BERT shapes; 5 rows: 44-52%).
#define SK_VL 8
#include "runtime/kernels/kernels_simd.h"

#define AV_MR 4

static inline __attribute__((always_inline)) void ukr_q8_avxvnni(const int MR, int kpad, const uint8_t *aq, size_t lda,
                                                                 const int8_t *wp, const int32_t *comp, int32_t *t) {
    __m256i acc[AV_MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (int g = 0; g < kpad / 4; g++) {
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)(wp + (size_t)g * 64));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(wp + (size_t)g * 64 + 32));
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            int32_t a4;
            memcpy(&a4, aq + (size_t)r * lda + 4 * (size_t)g, 4);
            __m256i av = _mm256_set1_epi32(a4);
            acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], av, b0);
            acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], av, b1);
        }
    }
    __m256i c0 = _mm256_loadu_si256((const __m256i *)(const void *)comp);
    __m256i c1 = _mm256_loadu_si256((const __m256i *)(const void *)(comp + 8));
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        _mm256_storeu_si256((__m256i *)(void *)(t + 16 * r), _mm256_sub_epi32(acc[r][0], c0));
        _mm256_storeu_si256((__m256i *)(void *)(t + 16 * r + 8), _mm256_sub_epi32(acc[r][1], c1));
    }
}

static void q8_panels_avxvnni(int m, int kpad, int j0, int j1, int n, const uint8_t *aq, size_t lda, const int8_t *wq,
                              const int32_t *wcomp, float *c, size_t ldc, const struct sk_epi *epi) {
    (void)n;
    int32_t t[AV_MR * 16] __attribute__((aligned(64)));
    int32_t comp[16] __attribute__((aligned(64)));
    for (int c0 = j0; c0 < j1; c0 += 16) {
        int nc = j1 - c0 < 16 ? j1 - c0 : 16;
        const int8_t *wp = wq + (size_t)(c0 / 16) * (size_t)kpad * 16;
        memset(comp, 0, sizeof comp);
        memcpy(comp, wcomp + c0, (size_t)nc * sizeof(int32_t));
        for (int i0 = 0; i0 < m; i0 += AV_MR) {
            int mr = m - i0 < AV_MR ? m - i0 : AV_MR;
            const uint8_t *ai = aq + (size_t)i0 * lda;
            switch (mr) {
            case 1: ukr_q8_avxvnni(1, kpad, ai, lda, wp, comp, t); break;
            case 2: ukr_q8_avxvnni(2, kpad, ai, lda, wp, comp, t); break;
            case 3: ukr_q8_avxvnni(3, kpad, ai, lda, wp, comp, t); break;
            default: ukr_q8_avxvnni(AV_MR, kpad, ai, lda, wp, comp, t); break;
            }
            epi_block_q8(t, 16, c, ldc, i0, mr, c0, nc, epi);
        }
    }
}

static void attention_q16_avxvnni(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk,
                                  const float *v, size_t ldv, float scale, float *out, size_t ldo, void *scratch) {
    attention_q16_simd(n_q, n_kv, d, q, ldq, k, ldk, v, ldv, scale, out, ldo, scratch);
}

bool sk_fill_avxvnni(struct sk_kernels *t) {
    t->isa = SK_ISA_AVXVNNI;
    t->attention_q16 = attention_q16_avxvnni;
    t->q8_panels = q8_panels_avxvnni;
    t->q8_u8 = true;
    t->q8_mpad = 1;
    t->q8_amx = false;
    return true;
}
