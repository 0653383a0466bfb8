// AVX-512 (F/BW/VL/DQ) fp32 kernels: 6x64 fma microkernel, fused epilogue, row ops, quantize.
#define SK_VL 16
#include "runtime/kernels/kernels_simd.h"

static void f32_panels_avx512(int m, int k, int j0, int j1, int n, const float *a, size_t rsa, size_t csa,
                              const float *b, size_t bvs, size_t bks, float *c, size_t ldc, const struct sk_epi *epi) {
    f32_panels_simd(m, k, j0, j1, n, a, rsa, csa, b, bvs, bks, c, ldc, epi);
}
static void layernorm_avx512(const float *x, float *out, int n, const float *gamma, const float *beta, float eps) {
    layernorm_simd(x, out, n, gamma, beta, eps);
}
static void softmax_avx512(float *x, int n) { softmax_simd(x, n); }
static void act_avx512(float *x, int n, enum sk_act act) { act_row_simd(x, n, act); }
static float absmax_avx512(const float *x, int n) { return absmax_simd(x, n); }

static void quantize_avx512(const float *x, int n, float inv, uint8_t *q, bool u8) {
    vf vinv = v_set1(inv), lo = v_set1(-127.0f), hi = v_set1(127.0f);
    __m128i flip = _mm_set1_epi8(u8 ? (char)0x80 : 0);
    for (int i = 0; i < n; i += 16) {
        int nv = n - i < 16 ? n - i : 16;
        vf v = v_min(v_max(v_mul(v_loadm(x + i, nv), vinv), lo), hi); // max(NaN, -127) = -127
        __m128i b = _mm_xor_si128(_mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)), flip);
        _mm_mask_storeu_epi8(q + i, v_tail(nv), b);
    }
}

bool sk_fill_avx512(struct sk_kernels *t) {
    t->isa = SK_ISA_AVX512;
    t->f32_panels = f32_panels_avx512;
    t->f32_cols_per_task = SK_PANEL;
    t->layernorm = layernorm_avx512;
    t->softmax = softmax_avx512;
    t->act = act_avx512;
    t->absmax = absmax_avx512;
    t->quantize = quantize_avx512;
    return true;
}
