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
static void attention_avx512(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk,
                              const float *v, size_t ldv, float scale, float *out, size_t ldo, float *scratch) {
    attention_simd(n_q, n_kv, d, q, ldq, k, ldk, v, ldv, scale, out, ldo, scratch);
}
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

// absmax with 4 independent max chains (VMAXPS latency), then 64 values per step: 4 x (mul,
// max(-127) for NaN, cvt) and two saturating packs (|x * inv| <= 127 * (1 + 2^-23) rounds to
// at most 127, so saturation never alters a value), one permute to undo the packs' lane
// interleave, one 64-byte store. Masked loads past k read zeros: q = 0 fills the pad.
static float q8_row_avx512(const float *x, int k, int kpad, uint8_t *q, bool u8) {
    __m512 m0 = _mm512_setzero_ps(), m1 = m0, m2 = m0, m3 = m0;
    int i = 0;
    for (; i + 64 <= k; i += 64) {
        m0 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), m0); // NaN lanes ignored, as in the ref
        m1 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i + 16)), m1);
        m2 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i + 32)), m2);
        m3 = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i + 48)), m3);
    }
    for (; i < k; i += 16) m0 = _mm512_max_ps(_mm512_abs_ps(v_loadm(x + i, k - i)), m0);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
    __m512 vinv = _mm512_set1_ps(sk_q8_inv(amax)), lo = _mm512_set1_ps(-127.0f);
    __m512i flip = _mm512_set1_epi8(u8 ? (char)0x80 : 0);
    const __m512i perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (int j = 0; j < kpad; j += 64) {
        __m512i v[4];
        for (int u = 0; u < 4; u++) {
            int at = j + 16 * u, nv = k - at < 0 ? 0 : k - at;
            __m512 f = nv >= 16 ? _mm512_loadu_ps(x + at) : v_loadm(x + at, nv);
            v[u] = _mm512_cvtps_epi32(_mm512_max_ps(_mm512_mul_ps(f, vinv), lo)); // max(NaN, -127) = -127
        }
        __m512i p = _mm512_packs_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
        _mm512_storeu_si512((void *)(q + j), _mm512_xor_si512(_mm512_permutexvar_epi32(perm, p), flip));
    }
    return amax;
}

static void attention_q16_avx512(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk,
                                  const float *v, size_t ldv, float scale, float *out, size_t ldo, void *scratch) {
    attention_q16_simd(n_q, n_kv, d, q, ldq, k, ldk, v, ldv, scale, out, ldo, scratch);
}

bool sk_fill_avx512(struct sk_kernels *t) {
    t->isa = SK_ISA_AVX512;
    t->attention_q16 = attention_q16_avx512;
    t->f32_panels = f32_panels_avx512;
    t->f32_cols_per_task = SK_PANEL;
    t->layernorm = layernorm_avx512;
    t->softmax = softmax_avx512;
    t->attention = attention_avx512;
    t->act = act_avx512;
    t->absmax = absmax_avx512;
    t->quantize = quantize_avx512;
    t->q8_row = q8_row_avx512;
    return true;
}
