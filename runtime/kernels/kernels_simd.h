// runtime/kernels/kernels_simd.h: fp32 kernels written once over a small vector abstraction,
// included by kernels_avx2.c (SK_VL 8) and the AVX-512 files (SK_VL 16). Everything here is
// static inline so each ISA file gets its own copy compiled with its own flags.
//
// Reduction order (the determinism contract): each C element is one fma chain over p = 0..k-1
// starting from 0, in one vector lane. Tile shape, row count and thread split never change it,
// so AVX2 and AVX-512 (and a scalar fmaf chain) give bit-identical sums.
#ifndef SEMBED_KERNELS_SIMD_H
#define SEMBED_KERNELS_SIMD_H

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "runtime/kernels/kernels_impl.h"

#if SK_VL == 16
typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vm;
static inline vf v_zero(void) { return _mm512_setzero_ps(); }
static inline vf v_set1(float x) { return _mm512_set1_ps(x); }
static inline vf v_load(const float *p) { return _mm512_loadu_ps(p); }
static inline __mmask16 v_tail(int n) { return (__mmask16)(n >= 16 ? 0xffffu : ((1u << n) - 1u)); }
// Masked forms only for a real tail: AMD cores run masked stores far slower than plain ones
// (bert-base fp32 64x128: the epilogue's masked store was ~14% of the time on Zen 5).
static inline vf v_loadm(const float *p, int n) { return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(v_tail(n), p); }
static inline void v_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline void v_storem(float *p, vf v, int n) {
    if (n >= 16) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, v_tail(n), v);
}
static inline vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf v_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf v_abs(vf a) { return _mm512_abs_ps(a); }
static inline vf v_sign(vf a) { return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int)0x80000000u))); }
static inline vf v_or(vf a, vf b) { return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(a), _mm512_castps_si512(b))); }
static inline vm v_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline vf v_blend(vm m, vf f, vf t) { return _mm512_mask_blend_ps(m, f, t); }
static inline vi v_rne_i(vf a) { return _mm512_cvtps_epi32(a); } // MXCSR default: nearest even
static inline vf v_i2f(vi a) { return _mm512_cvtepi32_ps(a); }
static inline vf v_pow2i(vi n) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23)); }
static inline vf v_keep(vf v, int n) { return _mm512_maskz_mov_ps(v_tail(n), v); }
static inline vf v_fill(vf v, int n, float x) { return _mm512_mask_blend_ps(v_tail(n), _mm512_set1_ps(x), v); }
static inline float v_hsum(vf a) { return _mm512_reduce_add_ps(a); }
static inline float v_hmax(vf a) { return _mm512_reduce_max_ps(a); }
#elif SK_VL == 8
typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vm;
static inline vf v_zero(void) { return _mm256_setzero_ps(); }
static inline vf v_set1(float x) { return _mm256_set1_ps(x); }
static inline vf v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline __m256i v_tail(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
static inline vf v_loadm(const float *p, int n) { return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, v_tail(n)); }
static inline void v_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline void v_storem(float *p, vf v, int n) {
    if (n >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, v_tail(n), v);
}
static inline vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf v_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf v_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf v_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf v_sign(vf a) { return _mm256_and_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf v_or(vf a, vf b) { return _mm256_or_ps(a, b); }
static inline vm v_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline vf v_blend(vm m, vf f, vf t) { return _mm256_blendv_ps(f, t, m); }
static inline vi v_rne_i(vf a) { return _mm256_cvtps_epi32(a); }
static inline vf v_i2f(vi a) { return _mm256_cvtepi32_ps(a); }
static inline vf v_pow2i(vi n) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23)); }
static inline vf v_keep(vf v, int n) { return _mm256_and_ps(v, _mm256_castsi256_ps(v_tail(n))); }
static inline vf v_fill(vf v, int n, float x) { return _mm256_blendv_ps(_mm256_set1_ps(x), v, _mm256_castsi256_ps(v_tail(n))); }
static inline float v_hsum(vf a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float v_hmax(vf a) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#else
#error "define SK_VL to 8 or 16 before including kernels_simd.h"
#endif

// ---- Vector math. Polynomials fitted for sembed (least squares on Chebyshev nodes, refined
// toward minimax, numpy); measured max relative error in float: erf 1.7e-7, exp ~1 ulp.

// exp(x): x = n ln2 + r, |r| <= ln2/2; e^r by its degree-7 Taylor polynomial (truncation
// error < 6e-9 relative); 2^n through the exponent field. x < -87.3 gives 0.
static inline vf v_exp(vf x) {
    vf lo = v_set1(-87.3f);
    vm under = v_lt(x, lo);
    x = v_min(v_max(x, lo), v_set1(88.7f));
    vf n = v_i2f(v_rne_i(v_mul(x, v_set1(1.44269504088896341f))));
    vf r = v_fma(n, v_set1(-0.693145751953125f), x);   // ln2 split: hi has 16 significant bits
    r = v_fma(n, v_set1(-1.42860682030941723e-6f), r);
    vf p = v_set1(1.0f / 5040.0f);
    p = v_fma(p, r, v_set1(1.0f / 720.0f));
    p = v_fma(p, r, v_set1(1.0f / 120.0f));
    p = v_fma(p, r, v_set1(1.0f / 24.0f));
    p = v_fma(p, r, v_set1(1.0f / 6.0f));
    p = v_fma(p, r, v_set1(0.5f));
    p = v_fma(p, r, v_set1(1.0f));
    p = v_fma(p, r, v_set1(1.0f));
    // n in [-126, 128]: split 2^n = 2^(n/2) 2^(n - n/2) so both factors stay normal
    vi ni = v_rne_i(n);
#if SK_VL == 16
    vi h = _mm512_srai_epi32(ni, 1);
    vf res = v_mul(v_mul(p, v_pow2i(h)), v_pow2i(_mm512_sub_epi32(ni, h)));
#else
    vi h = _mm256_srai_epi32(ni, 1);
    vf res = v_mul(v_mul(p, v_pow2i(h)), v_pow2i(_mm256_sub_epi32(ni, h)));
#endif
    return v_blend(under, res, v_zero());
}

// erf: |x| < 1: x P(x^2); 1 <= |x| < 3.92: 1 - exp(Q(|x| - 2.5)) (Q fits log erfc); else 1.
static inline vf v_erf(vf x) {
    vf ax = v_abs(x), s = v_sign(x);
    vf x2 = v_mul(x, x);
    vf pa = v_set1(7.8894780014535093e-05f);
    pa = v_fma(pa, x2, v_set1(-8.0209571221681597e-04f));
    pa = v_fma(pa, x2, v_set1(5.1895497149287845e-03f));
    pa = v_fma(pa, x2, v_set1(-2.6854453134510139e-02f));
    pa = v_fma(pa, x2, v_set1(1.1283600422061393e-01f));
    pa = v_fma(pa, x2, v_set1(-3.7612627166055701e-01f));
    pa = v_fma(pa, x2, v_set1(1.1283791659240920e+00f));
    vf ra = v_mul(x, pa);
    vf t = v_sub(v_min(ax, v_set1(3.92f)), v_set1(2.5f));
    vf q = v_set1(-4.2236433905884496e-08f);
    q = v_fma(q, t, v_set1(1.6305812375883022e-06f));
    q = v_fma(q, t, v_set1(-1.3081244518486912e-05f));
    q = v_fma(q, t, v_set1(7.7332518799932970e-05f));
    q = v_fma(q, t, v_set1(-4.2055128469953296e-04f));
    q = v_fma(q, t, v_set1(2.1652315587389337e-03f));
    q = v_fma(q, t, v_set1(-1.0858250611228137e-02f));
    q = v_fma(q, t, v_set1(-9.4389366589987833e-01f));
    q = v_fma(q, t, v_set1(-5.3526807278801876e+00f));
    q = v_fma(q, t, v_set1(-7.8068152756594467e+00f));
    vf rb = v_sub(v_set1(1.0f), v_exp(q));
    rb = v_blend(v_lt(ax, v_set1(3.92f)), v_set1(1.0f), rb);
    rb = v_or(rb, s);
    return v_blend(v_lt(ax, v_set1(1.0f)), rb, ra);
}

// tanh: |x| < 0.625: x + x^3 P(x^2); else sign(x) (1 - 2 / (exp(2|x|) + 1)).
static inline vf v_tanh(vf x) {
    vf ax = v_abs(x), s = v_sign(x);
    vf x2 = v_mul(x, x);
    vf p = v_set1(0.00229873996223806f);
    p = v_fma(p, x2, v_set1(-0.00834979184151529f));
    p = v_fma(p, x2, v_set1(0.02177091136335024f));
    p = v_fma(p, x2, v_set1(-0.05395953586410508f));
    p = v_fma(p, x2, v_set1(0.13333304882126296f));
    p = v_fma(p, x2, v_set1(-0.33333333181375074f));
    vf ra = v_fma(v_mul(p, x2), x, x);
    vf e = v_exp(v_add(ax, ax));
    vf rb = v_sub(v_set1(1.0f), v_div(v_set1(2.0f), v_add(e, v_set1(1.0f))));
    rb = v_or(rb, s);
    return v_blend(v_lt(ax, v_set1(0.625f)), rb, ra);
}

#if SK_VL == 16
#include "runtime/kernels/phi_table.h"
// erf-GELU as x Phi(x), Phi from a table of degree-4 polynomials on 32 segments
// (runtime/kernels/gen/phi_table.py): u = |x| 8/sqrt2, h = Phi(-|x|) = p_floor(u)(u - floor(u)),
// each coefficient picked by one two-register permute (vpermt2ps) on the segment index;
// h = 0 from |x|/sqrt2 >= 4; Phi(x) = h for x < 0, 1 - h else. About 20 operations against ~50
// for 0.5 x (1 + erf(x/sqrt2)) through v_erf (its two branches and an exp): 1.0 -> 0.18 ms
// of epilogue on MiniLM's 1024 x 1536 FFN input (docs/kernels.md). Max abs error vs libm: see
// the kernel tests' activation check.
static inline vf v_gelu_erf(vf x) {
    vf u = v_mul(v_abs(x), v_set1(5.65685424949238019f));
    __mmask16 in = _mm512_cmp_ps_mask(u, v_set1(32.0f), _CMP_LT_OQ);
    vf uc = v_min(u, v_set1(31.9999981f));
    __m512i i = _mm512_cvttps_epi32(uc);
    vf sv = v_sub(uc, _mm512_cvtepi32_ps(i));
    vf h = _mm512_permutex2var_ps(_mm512_load_ps(SK_PHI_C[4]), i, _mm512_load_ps(SK_PHI_C[4] + 16));
    h = v_fma(h, sv, _mm512_permutex2var_ps(_mm512_load_ps(SK_PHI_C[3]), i, _mm512_load_ps(SK_PHI_C[3] + 16)));
    h = v_fma(h, sv, _mm512_permutex2var_ps(_mm512_load_ps(SK_PHI_C[2]), i, _mm512_load_ps(SK_PHI_C[2] + 16)));
    h = v_fma(h, sv, _mm512_permutex2var_ps(_mm512_load_ps(SK_PHI_C[1]), i, _mm512_load_ps(SK_PHI_C[1] + 16)));
    h = _mm512_maskz_fmadd_ps(in, h, sv,
                              _mm512_permutex2var_ps(_mm512_load_ps(SK_PHI_C[0]), i, _mm512_load_ps(SK_PHI_C[0] + 16)));
    __mmask16 pos = _mm512_cmp_ps_mask(x, v_zero(), _CMP_GE_OQ);
    vf phi = _mm512_mask_sub_ps(h, pos, v_set1(1.0f), h);
    return v_mul(x, phi);
}
#endif

// Same operation order as sk_act_ref (no contraction), only erf/tanh differ; AVX-512's erf-GELU
// is the table form above.
static inline vf v_act(vf x, enum sk_act act) {
    switch (act) {
    case SK_ACT_NONE: return x;
    case SK_ACT_GELU_ERF:
#if SK_VL == 16
        return v_gelu_erf(x);
#else
        return v_mul(v_mul(v_set1(0.5f), x), v_add(v_set1(1.0f), v_erf(v_mul(x, v_set1(0.70710678118654752f)))));
#endif
    case SK_ACT_GELU_TANH: {
        vf c = v_mul(v_mul(v_mul(v_set1(0.044715f), x), x), x);
        vf in = v_mul(v_set1(0.79788456080286536f), v_add(x, c));
        return v_mul(v_mul(v_set1(0.5f), x), v_add(v_set1(1.0f), v_tanh(in)));
    }
    case SK_ACT_RELU: return v_max(x, v_zero()); // max(x, 0): x when x > 0, else 0 (NaN -> 0 as ref)
    case SK_ACT_TANH: return v_tanh(x);
    }
    return x;
}

// ---- Epilogues on a block held in a small buffer t[mr][ldt] (rows i0.., columns c0..c0+nc).

static inline vf epi_lin(vf v, const struct sk_epi *e, int i, int j, int nv) {
    if (e->bias) v = v_add(v, v_loadm(e->bias + j, nv));
    v = v_act(v, e->act);
    if (e->res) v = v_add(v, v_loadm(e->res + (size_t)i * e->ldr + (size_t)j, nv));
    return v;
}

// Before a tile's last k pass: fetch the lines its epilogue will read (residual) and write (C).
// A tile touches mr rows x nc columns of arrays with row strides of kilobytes, a pattern the
// hardware prefetchers miss (bert-base 64x128: the epilogue's residual loads and stores were
// ~30% of the int8 time); the k loop that follows hides the latency.
// always_inline: a function made only of prefetches has no side effects for GCC, which marks it
// const and deletes the call where it is not inlined (it was, unnoticed, in the VNNI kernel).
static inline __attribute__((always_inline)) void epi_prefetch(const struct sk_epi *e, const float *c, size_t ldc, int i0, int mr, int c0, int nc) {
    if (e->out_s32) return;
    for (int r = 0; r < mr; r++) {
        const char *cr = (const char *)(c + (size_t)(i0 + r) * ldc + c0);
        const char *rr = e->res ? (const char *)(e->res + (size_t)(i0 + r) * e->ldr + c0) : NULL;
        for (int b = 0; b < nc * 4; b += 64) {
            _mm_prefetch(cr + b, _MM_HINT_T0);
            if (rr) _mm_prefetch(rr + b, _MM_HINT_T0);
        }
    }
}

static inline void epi_block_f32(const float *t, int ldt, float *c, size_t ldc, int i0, int mr, int c0, int nc,
                                 const struct sk_epi *e) {
    for (int r = 0; r < mr; r++) {
        float *cr = c + (size_t)(i0 + r) * ldc;
        for (int u = 0; u < nc; u += SK_VL) {
            int nv = nc - u < SK_VL ? nc - u : SK_VL;
            vf v = v_load(t + r * ldt + u);
            if (e->gemm) {
                vf old = e->beta == 0.0f ? v_zero() : v_mul(v_set1(e->beta), v_loadm(cr + c0 + u, nv));
                v = v_add(v_mul(v_set1(e->alpha), v), old);
            } else {
                v = epi_lin(v, e, i0 + r, c0 + u, nv);
            }
            v_storem(cr + c0 + u, v, nv);
        }
    }
}

// int8: t holds exact int32 sums; dequantize as sk_q8_dequant does, then the linear epilogue.
static inline void epi_block_q8(const int32_t *t, int ldt, float *c, size_t ldc, int i0, int mr, int c0, int nc,
                                const struct sk_epi *e) {
    if (e->out_s32) {
        for (int r = 0; r < mr; r++)
            memcpy(e->out_s32 + (size_t)(i0 + r) * ldc + (size_t)c0, t + r * ldt, (size_t)nc * sizeof(int32_t));
        return;
    }
    // column vectors outer: the weight scales and the bias are loaded once per tile column
    for (int u = 0; u < nc; u += SK_VL) {
        const int nv = nc - u < SK_VL ? nc - u : SK_VL;
        const vf ws = v_loadm(e->wscale + c0 + u, nv);
        const vf bv = e->bias ? v_loadm(e->bias + c0 + u, nv) : v_zero();
        for (int r = 0; r < mr; r++) {
            vf acc;
#if SK_VL == 16
            acc = _mm512_cvtepi32_ps(_mm512_loadu_si512((const void *)(t + r * ldt + u)));
#else
            acc = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(const void *)(t + r * ldt + u)));
#endif
            vf v = v_mul(acc, v_mul(v_set1(e->ascale[i0 + r]), ws));
            if (e->bias) v = v_add(v, bv); // epi_lin's order: bias, activation, residual
            v = v_act(v, e->act);
            if (e->res) v = v_add(v, v_loadm(e->res + (size_t)(i0 + r) * e->ldr + (size_t)(c0 + u), nv));
            v_storem(c + (size_t)(i0 + r) * ldc + c0 + u, v, nv);
        }
    }
}

// ---- fp32 GEMM. Register tile MR rows x NV vectors: AVX-512 8 x 48 (24 accumulators + 3 B
// vectors + 1 broadcast of 32 zmm; 24 FMAs per 3 vector loads and 8 broadcasts, 12 cycles at
// two FMAs per cycle), AVX2 6 x 16 (12 + 2 + 1 of 16 ymm).
// Blocking: rows in blocks of SK_MC (sized so the A block stays in L2), k in chunks of SK_KC so
// the tile's B chunk (NR x KC floats) stays in L1 while every row tile of the block runs over
// it. Partial sums wait in a float buffer between chunks: storing and reloading a float does not
// change it, so each element is still the one fma chain p = 0..k-1 (the determinism contract).
#if SK_VL == 16
#define SK_MR 8
#define SK_NV 3
#define SK_KC 128 // 48 x 128 x 4 = 24 KiB of B per chunk
#else
#define SK_MR 6
#define SK_NV 2
#define SK_KC 256 // 16 x 256 x 4 = 16 KiB
#endif
#define SK_NR (SK_NV * SK_VL)
#define SK_MC 128
// B prefetch distance in k-steps (packed weights: one 64-byte line per step and stream, so 2 KiB
// ahead, as the VNNI kernel). For one short sentence the weights stream from DRAM once per call:
// bert-base fp32 1 x 16 12.1 -> 11.0 ms, MiniLM-L6 1.60 -> 1.33 ms (median of 3 interleaved A/B
// runs, 2 threads; 16 steps: 11.2 / 1.46 ms); batch shapes unchanged within noise.
#ifndef SK_F32_PF
#define SK_F32_PF 32
#endif

// acc[MR][NV] (+)= A[MR, kc] B[kc, NR]; b[v] is column block v at the chunk's first k-step, k-step
// stride bks; t (ld SK_NR) holds the partial sums (read unless `first`) and receives them.
static inline __attribute__((always_inline)) void ukr_f32(const int MR, const int NV, int kc, const float *a, size_t rsa,
                                                          size_t csa, const float *const *b, size_t bks, int nlast,
                                                          float *t, bool first) {
    vf acc[SK_MR][SK_NV];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[r][v] = first ? v_zero() : v_load(t + r * SK_NR + v * SK_VL);
    const float *b0 = b[0], *b1 = b[NV > 1 ? 1 : 0], *b2 = b[NV > 2 ? 2 : 0];
    for (int p = 0; p < kc; p++) {
        vf bv[SK_NV];
        bv[0] = (NV == 1 && nlast < SK_VL) ? v_loadm(b0, nlast) : v_load(b0);
        if (NV > 1) bv[1] = (NV == 2 && nlast < SK_VL) ? v_loadm(b1, nlast) : v_load(b1);
        if (NV > 2) bv[2] = (NV == 3 && nlast < SK_VL) ? v_loadm(b2, nlast) : v_load(b2);
        if (SK_F32_PF) {
            _mm_prefetch((const char *)(b0 + SK_F32_PF * bks), _MM_HINT_T0);
            if (NV > 1) _mm_prefetch((const char *)(b1 + SK_F32_PF * bks), _MM_HINT_T0);
            if (NV > 2) _mm_prefetch((const char *)(b2 + SK_F32_PF * bks), _MM_HINT_T0);
        }
        const float *ap = a + (size_t)p * csa;
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            vf av = v_set1(ap[(size_t)r * rsa]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[r][v] = v_fma(av, bv[v], acc[r][v]);
        }
        b0 += bks; b1 += bks; b2 += bks;
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) v_store(t + r * SK_NR + v * SK_VL, acc[r][v]);
}

typedef void (*sk_ukr_f32_fn)(int, const float *, size_t, size_t, const float *const *, size_t, int, float *, bool);
#define SK_UKR_FN(MR_, NV_)                                                                                          \
    static void ukr_f32_##MR_##_##NV_(int kc, const float *a, size_t rsa, size_t csa, const float *const *b,         \
                                      size_t bks, int nlast, float *t, bool first) {                                \
        ukr_f32(MR_, NV_, kc, a, rsa, csa, b, bks, nlast, t, first);                                                 \
    }
#if SK_VL == 16
#define SK_UKR_FN3(MR_) SK_UKR_FN(MR_, 1) SK_UKR_FN(MR_, 2) SK_UKR_FN(MR_, 3)
SK_UKR_FN3(1) SK_UKR_FN3(2) SK_UKR_FN3(3) SK_UKR_FN3(4) SK_UKR_FN3(5) SK_UKR_FN3(6) SK_UKR_FN3(7) SK_UKR_FN3(8)
#define SK_UKR_ROW(MR_) {ukr_f32_##MR_##_1, ukr_f32_##MR_##_2, ukr_f32_##MR_##_3}
static const sk_ukr_f32_fn UKR_F32[SK_MR][SK_NV] = {SK_UKR_ROW(1), SK_UKR_ROW(2), SK_UKR_ROW(3), SK_UKR_ROW(4),
                                                    SK_UKR_ROW(5), SK_UKR_ROW(6), SK_UKR_ROW(7), SK_UKR_ROW(8)};
#else
#define SK_UKR_FN2(MR_) SK_UKR_FN(MR_, 1) SK_UKR_FN(MR_, 2)
SK_UKR_FN2(1) SK_UKR_FN2(2) SK_UKR_FN2(3) SK_UKR_FN2(4) SK_UKR_FN2(5) SK_UKR_FN2(6)
#define SK_UKR_ROW(MR_) {ukr_f32_##MR_##_1, ukr_f32_##MR_##_2}
static const sk_ukr_f32_fn UKR_F32[SK_MR][SK_NV] = {SK_UKR_ROW(1), SK_UKR_ROW(2), SK_UKR_ROW(3),
                                                    SK_UKR_ROW(4), SK_UKR_ROW(5), SK_UKR_ROW(6)};
#endif

// Rows per block: the A block (MC rows x k floats) should stay in L2 (~512 KiB of 1 MiB).
static inline int f32_mc(int k) {
    int mc = (int)((512 * 1024) / ((size_t)(k > 0 ? k : 1) * 4)) / SK_MR * SK_MR;
    return mc < 2 * SK_MR ? 2 * SK_MR : mc > SK_MC ? SK_MC : mc;
}

// B as kernels_impl.h describes it; bks == 0 means a transposed source, element (p, j) at
// b[j * bvs + p]: each chunk is packed on the stack (no allocation), once per row block.
static inline void f32_panels_simd(int m, int k, int j0, int j1, int n, const float *a, size_t rsa, size_t csa,
                                   const float *b, size_t bvs, size_t bks, float *c, size_t ldc,
                                   const struct sk_epi *epi) {
    float buf[SK_MC * SK_NR] __attribute__((aligned(64)));
    float pk[SK_NV * SK_KC * SK_VL] __attribute__((aligned(64)));
    const int mcb = f32_mc(k), chunks = k > 0 ? (k + SK_KC - 1) / SK_KC : 1;
    for (int i0 = 0; i0 < m; i0 += mcb) {
        int mc = m - i0 < mcb ? m - i0 : mcb;
        for (int c0 = j0; c0 < j1; c0 += SK_NR) {
            int nc = j1 - c0 < SK_NR ? j1 - c0 : SK_NR;
            int nv = (nc + SK_VL - 1) / SK_VL, nlast = nc - (nv - 1) * SK_VL;
            for (int ch = 0; ch < chunks; ch++) {
                int p0 = ch * SK_KC, kc = k - p0 < SK_KC ? k - p0 : SK_KC;
                if (kc < 0) kc = 0;
                const float *bp[SK_NV];
                size_t ks = bks;
                if (bks == 0) { // pack op(B)[p0 .. p0+kc, c0 .. c0+nc) into 16-wide panels
                    for (int v = 0; v < nv; v++) {
                        float *dst = pk + (size_t)v * SK_KC * SK_VL;
                        for (int jj = 0; jj < SK_VL; jj++) {
                            int j = c0 + v * SK_VL + jj;
                            const float *src = b + (size_t)j * bvs + (size_t)p0;
                            if (j < n)
                                for (int p = 0; p < kc; p++) dst[p * SK_VL + jj] = src[p];
                            else
                                for (int p = 0; p < kc; p++) dst[p * SK_VL + jj] = 0.0f;
                        }
                        bp[v] = dst;
                    }
                    ks = SK_VL;
                } else {
                    for (int v = 0; v < nv; v++) {
                        int col = c0 + v * SK_VL;
                        bp[v] = b + (size_t)(col / SK_PANEL) * bvs + (size_t)(col % SK_PANEL) + (size_t)p0 * bks;
                    }
                }
                for (int r0 = 0; r0 < mc; r0 += SK_MR) {
                    int mr = mc - r0 < SK_MR ? mc - r0 : SK_MR;
                    float *t = buf + (size_t)r0 * SK_NR;
                    if (ch == chunks - 1) epi_prefetch(epi, c, ldc, i0 + r0, mr, c0, nc);
                    UKR_F32[mr - 1][nv - 1](kc, a + (size_t)(i0 + r0) * rsa + (size_t)p0 * csa, rsa, csa, bp, ks, nlast, t,
                                            ch == 0);
                    if (ch == chunks - 1) epi_block_f32(t, SK_NR, c, ldc, i0 + r0, mr, c0, nc, epi);
                }
            }
        }
    }
}

// ---- Fused attention for one head: K^T packed once into 16-key panels, then per block of
// SK_ATT_ROWS query rows: scores (the GEMM above, alpha = scale) into a row block that stays in
// L1, softmax per row, out = P V (V read in place as a plain B). Each step is the exact code
// sk_gemm_f32 / sk_softmax run, so the result is bit-identical to calling them in turn.
static inline void softmax_simd(float *x, int n);
static inline void attention_simd(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk,
                                  const float *v, size_t ldv, float scale, float *out, size_t ldo, float *scratch) {
    const size_t kvp = ((size_t)n_kv + 15) / 16 * 16;
    float *kt = scratch, *s = scratch + kvp * (size_t)d;
    for (size_t j0 = 0; j0 < kvp; j0 += 16) {
        float *panel = kt + j0 * (size_t)d;
        for (int jj = 0; jj < 16; jj++) {
            size_t j = j0 + (size_t)jj;
            if (j < (size_t)n_kv) {
                const float *kr = k + j * ldk;
                for (int p = 0; p < d; p++) panel[(size_t)p * 16 + (size_t)jj] = kr[p];
            } else {
                for (int p = 0; p < d; p++) panel[(size_t)p * 16 + (size_t)jj] = 0.0f;
            }
        }
    }
    const struct sk_epi e_s = {.gemm = true, .alpha = scale, .beta = 0.0f};
    const struct sk_epi e_o = {.gemm = true, .alpha = 1.0f, .beta = 0.0f};
    for (int i0 = 0; i0 < n_q; i0 += SK_ATT_ROWS) {
        int mr = n_q - i0 < SK_ATT_ROWS ? n_q - i0 : SK_ATT_ROWS;
        f32_panels_simd(mr, d, 0, n_kv, n_kv, q + (size_t)i0 * ldq, ldq, 1, kt, (size_t)d * 16, 16, s, kvp, &e_s);
        for (int r = 0; r < mr; r++) softmax_simd(s + (size_t)r * kvp, n_kv);
        f32_panels_simd(mr, n_kv, 0, d, d, s, kvp, 1, v, 16, ldv, out + (size_t)i0 * ldo, ldo, &e_o);
    }
}

// ---- Row operations.

static inline void act_row_simd(float *x, int n, enum sk_act act) {
    if (act == SK_ACT_NONE) return;
    for (int i = 0; i < n; i += SK_VL) {
        int nv = n - i < SK_VL ? n - i : SK_VL;
        v_storem(x + i, v_act(v_loadm(x + i, nv), act), nv);
    }
}

// Two-pass mean/variance in float lanes (order depends only on n); tolerance vs the double
// reference is documented in docs/kernels.md.
static inline void layernorm_simd(const float *x, float *out, int n, const float *gamma, const float *beta, float eps) {
    vf s = v_zero();
    for (int i = 0; i < n; i += SK_VL) s = v_add(s, v_loadm(x + i, n - i));
    float mu = v_hsum(s) / (float)n;
    vf vmu = v_set1(mu), q = v_zero();
    for (int i = 0; i < n; i += SK_VL) {
        int nv = n - i < SK_VL ? n - i : SK_VL;
        vf d = v_keep(v_sub(v_loadm(x + i, nv), vmu), nv);
        q = v_fma(d, d, q);
    }
    float var = v_hsum(q) / (float)n;
    vf rstd = v_set1(1.0f / sqrtf(var + eps));
    for (int i = 0; i < n; i += SK_VL) {
        int nv = n - i < SK_VL ? n - i : SK_VL;
        vf v = v_mul(v_sub(v_loadm(x + i, nv), vmu), rstd);
        if (gamma) v = v_mul(v, v_loadm(gamma + i, nv));
        if (beta) v = v_add(v, v_loadm(beta + i, nv));
        v_storem(out + i, v, nv);
    }
}

static inline void softmax_simd(float *x, int n) {
    vf mx = v_set1(-INFINITY);
    for (int i = 0; i < n; i += SK_VL) {
        int nv = n - i < SK_VL ? n - i : SK_VL;
        vf v = v_loadm(x + i, nv);
        if (nv < SK_VL) v = v_fill(v, nv, -INFINITY);
        mx = v_max(mx, v);
    }
    vf vmx = v_set1(v_hmax(mx)), s = v_zero();
    for (int i = 0; i < n; i += SK_VL) {
        int nv = n - i < SK_VL ? n - i : SK_VL;
        vf e = v_exp(v_sub(v_loadm(x + i, nv), vmx));
        if (nv < SK_VL) e = v_keep(e, nv);
        v_storem(x + i, e, nv);
        s = v_add(s, e);
    }
    vf inv = v_set1(1.0f / v_hsum(s));
    for (int i = 0; i < n; i += SK_VL) {
        int nv = n - i < SK_VL ? n - i : SK_VL;
        v_storem(x + i, v_mul(v_loadm(x + i, nv), inv), nv);
    }
}

static inline float absmax_simd(const float *x, int n) {
    vf m = v_zero();
    for (int i = 0; i < n; i += SK_VL) m = v_max(v_abs(v_loadm(x + i, n - i)), m); // NaN lanes ignored, as in the ref
    return v_hmax(m);
}


// ---- Attention with int16 products (kernels_impl.h sk_att_q16_layout; the int8 compute mode).
// Queries run along the vector lanes, in blocks of SK_ATT_QB: the scores of a block are S^T
// (n_kv x SK_ATT_QB), so softmax reduces down columns, vertically across registers. Both
// products are pair dot products of int16 (VPDPWSSD with VNNI, else VPMADDWD + VPADDD): the
// broadcast operand is one 32-bit word (two consecutive k of a K row, or two consecutive keys'
// probabilities of one query), the vector operand 16 lanes of such words (Q^T pairs, V pairs).
// The integers and int32 sums equal sk_attention_q16_ref's; exp and the sum order are this
// file's, so results differ from the ref by float rounding only.
#if SK_VL == 16
static inline vi q16_load(const int32_t *p) { return _mm512_loadu_si512((const void *)p); }
static inline void q16_store(int32_t *p, vi x) { _mm512_storeu_si512((void *)p, x); }
static inline vi q16_set1(int32_t x) { return _mm512_set1_epi32(x); }
static inline vi q16_zero(void) { return _mm512_setzero_si512(); }
static inline vi q16_pair(vi lo, vi hi) {
    return _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xffff)), _mm512_slli_epi32(hi, 16));
}
static inline vi q16_dp(vi acc, vi a, vi b) {
#ifdef __AVX512VNNI__
    return _mm512_dpwssd_epi32(acc, a, b);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}
// int32 lanes (each in int16 range, or INT_MIN for NaN) -> n int16 (truncation keeps the low half)
static inline void q16_narrow(int16_t *dst, vi x, int n) {
    _mm256_mask_storeu_epi16(dst, (__mmask16)(n >= 16 ? 0xffffu : ((1u << n) - 1u)), _mm512_cvtepi32_epi16(x));
}
// word t of rows base + idx (int32 units)
static inline vi q16_gather(const int32_t *base, vi idx) { return _mm512_i32gather_epi32(idx, (const void *)base, 4); }
static inline vi q16_iota(void) { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }
static inline vi q16_mul_i(vi a, int b) { return _mm512_mullo_epi32(a, _mm512_set1_epi32(b)); }
static inline vi q16_add_i(vi a, int b) { return _mm512_add_epi32(a, _mm512_set1_epi32(b)); }
// e^x for the softmax (x <= 0, NaN propagates): degree-5 Taylor of e^r on |r| <= ln2/2 (relative
// error < 2.4e-6, far below the probabilities' 1/32767 step), 2^n by VSCALEFPS, which also
// takes any n to 0 without a clamp.
static inline vf q16_exp(vf x) {
    vf n = _mm512_roundscale_ps(v_mul(x, v_set1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    vf r = v_fma(n, v_set1(-0.693145751953125f), x);
    r = v_fma(n, v_set1(-1.42860682030941723e-6f), r);
    vf p = v_set1(1.0f / 120.0f);
    p = v_fma(p, r, v_set1(1.0f / 24.0f));
    p = v_fma(p, r, v_set1(1.0f / 6.0f));
    p = v_fma(p, r, v_set1(0.5f));
    p = v_fma(p, r, v_set1(1.0f));
    p = v_fma(p, r, v_set1(1.0f));
    return _mm512_scalef_ps(p, n);
}
#define Q16_MR 8
#else
static inline vi q16_load(const int32_t *p) { return _mm256_loadu_si256((const __m256i *)(const void *)p); }
static inline void q16_store(int32_t *p, vi x) { _mm256_storeu_si256((__m256i *)(void *)p, x); }
static inline vi q16_set1(int32_t x) { return _mm256_set1_epi32(x); }
static inline vi q16_zero(void) { return _mm256_setzero_si256(); }
static inline vi q16_pair(vi lo, vi hi) {
    return _mm256_or_si256(_mm256_and_si256(lo, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(hi, 16));
}
static inline vi q16_dp(vi acc, vi a, vi b) {
#ifdef __AVXVNNI__
    return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}
static inline void q16_narrow(int16_t *dst, vi x, int n) {
    int32_t t[8];
    _mm256_storeu_si256((__m256i *)(void *)t, x);
    for (int l = 0; l < n && l < 8; l++) dst[l] = (int16_t)t[l];
}
static inline vi q16_gather(const int32_t *base, vi idx) { return _mm256_i32gather_epi32((const int *)(const void *)base, idx, 4); }
static inline vi q16_iota(void) { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }
static inline vi q16_mul_i(vi a, int b) { return _mm256_mullo_epi32(a, _mm256_set1_epi32(b)); }
static inline vi q16_add_i(vi a, int b) { return _mm256_add_epi32(a, _mm256_set1_epi32(b)); }
static inline vf q16_exp(vf x) { return v_exp(x); }
#define Q16_MR 4
#endif

// x[0..d) -> int16 dst[0..dp) (pad zero): rne(x * inv), NaN / inf -> 0 (sk_q16)
static inline void q16_row(const float *x, int d, int dp, float inv, int16_t *dst) {
    vf vi_ = v_set1(inv);
    for (int i = 0; i < dp; i += SK_VL) {
        int nv = d - i < SK_VL ? (d - i > 0 ? d - i : 0) : SK_VL, ns = dp - i < SK_VL ? dp - i : SK_VL;
        q16_narrow(dst + i, v_rne_i(v_mul(v_loadm(x + i, nv), vi_)), ns);
    }
}

// S^T rows j0 .. j0+MR-1 for NV query vectors: st[r][lane] = (float)acc * ks[r] * qs[lane]
static inline __attribute__((always_inline)) void q16_s_tile(const int MR, const int NV, int dw, const int32_t *kw,
                                                             const int32_t *qp, const float *ks, const float *qs,
                                                             float *st, float *mx) {
    vi acc[Q16_MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) acc[r][v] = q16_zero();
    for (int t = 0; t < dw; t++) {
        vi b0 = q16_load(qp + (size_t)t * SK_ATT_QB), b1 = NV > 1 ? q16_load(qp + (size_t)t * SK_ATT_QB + SK_VL) : b0;
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            vi a = q16_set1(kw[(size_t)r * dw + t]);
            acc[r][0] = q16_dp(acc[r][0], a, b0);
            if (NV > 1) acc[r][1] = q16_dp(acc[r][1], a, b1);
        }
    }
    vf m0 = v_load(mx), m1 = NV > 1 ? v_load(mx + SK_VL) : m0;
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        vf sk = v_set1(ks[r]);
        vf s0 = v_mul(v_mul(v_i2f(acc[r][0]), sk), v_load(qs));
        v_store(st + (size_t)r * SK_ATT_QB, s0);
        m0 = v_max(m0, s0);
        if (NV > 1) {
            vf s1 = v_mul(v_mul(v_i2f(acc[r][1]), sk), v_load(qs + SK_VL));
            v_store(st + (size_t)r * SK_ATT_QB + SK_VL, s1);
            m1 = v_max(m1, s1);
        }
    }
    v_store(mx, m0);
    if (NV > 1) v_store(mx + SK_VL, m1);
}

// out rows i .. i+MR-1, columns c0 .. c0 + NV vectors (nc valid): (float)acc * ws[c]
static inline __attribute__((always_inline)) void q16_o_tile(const int MR, const int NV, int nkp, const int32_t *pp,
                                                             const int32_t *vp, int dv, const float *ws, float *out,
                                                             size_t ldo, int nc) {
    vi acc[Q16_MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) acc[r][v] = q16_zero();
    for (int t = 0; t < nkp; t++) {
        vi b0 = q16_load(vp + (size_t)t * dv), b1 = NV > 1 ? q16_load(vp + (size_t)t * dv + SK_VL) : b0;
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            vi a = q16_set1(pp[(size_t)t * SK_ATT_QB + r]);
            acc[r][0] = q16_dp(acc[r][0], a, b0);
            if (NV > 1) acc[r][1] = q16_dp(acc[r][1], a, b1);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            int n = nc - v * SK_VL;
            if (n > 0) v_storem(out + (size_t)r * ldo + v * SK_VL, v_mul(v_i2f(acc[r][v]), v_load(ws + v * SK_VL)), n);
        }
}

static inline void attention_q16_simd(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk,
                                      const float *v, size_t ldv, float scale, float *out, size_t ldo, void *scratch) {
    enum { QB = SK_ATT_QB };
    const struct sk_att_q16_layout L = sk_att_q16_layout(n_kv, d);
    unsigned char *base = scratch;
    int16_t *k16 = (int16_t *)(void *)(base + L.k16);
    int32_t *vp = (int32_t *)(void *)(base + L.vp), *qp = (int32_t *)(void *)(base + L.qp);
    int32_t *pp = (int32_t *)(void *)(base + L.pp);
    float *ks = (float *)(void *)(base + L.ks), *ws = (float *)(void *)(base + L.ws);
    float *qs = (float *)(void *)(base + L.qs), *st = (float *)(void *)(base + L.st), *mx = (float *)(void *)(base + L.mx);
    int16_t *qr = (int16_t *)(void *)(base + L.qr);
    const int QM = sk_q16_qk_max(d), dp = L.dp, dw = L.dw, dv = L.dv, nkp = L.nkp;
    // K: int16 rows (pair words), scale per key (times the softmax scale)
    for (int j = 0; j < n_kv; j++) {
        const float *kj = k + (size_t)j * ldk;
        float a = absmax_simd(kj, d);
        ks[j] = sk_q16_scale(a, QM) * scale;
        q16_row(kj, d, dp, sk_q16_inv(a, QM), k16 + (size_t)j * dp);
    }
    // V: scale per column, then key pairs (2t, 2t+1) into one word per column
    for (int c0 = 0; c0 < dv; c0 += SK_VL) {
        const int nc = d - c0 < SK_VL ? (d - c0 > 0 ? d - c0 : 0) : SK_VL;
        vf m = v_zero();
        for (int j = 0; j < n_kv; j++) m = v_max(v_abs(v_loadm(v + (size_t)j * ldv + c0, nc)), m); // NaN ignored
        float am[SK_VL], inv[SK_VL];
        v_store(am, m);
        for (int l = 0; l < SK_VL; l++) {
            inv[l] = sk_q16_inv(am[l], SK_Q16_PMAX);
            ws[c0 + l] = sk_q16_scale(am[l], SK_Q16_PMAX) / (float)SK_Q16_PMAX;
        }
        vf vinv = v_load(inv);
        for (int t = 0; t < nkp; t++) {
            vi lo = v_rne_i(v_mul(v_loadm(v + (size_t)(2 * t) * ldv + c0, nc), vinv));
            vi hi = 2 * t + 1 < n_kv ? v_rne_i(v_mul(v_loadm(v + (size_t)(2 * t + 1) * ldv + c0, nc), vinv)) : q16_zero();
            q16_store(vp + (size_t)t * dv + c0, q16_pair(lo, hi));
        }
    }
    const int32_t *kw = (const int32_t *)(const void *)k16;
    for (int i0 = 0; i0 < n_q; i0 += QB) {
        const int nq = n_q - i0 < QB ? n_q - i0 : QB, nqv = (nq + SK_VL - 1) / SK_VL;
        // Q rows to int16, then Q^T block: word t of query i at qp[t * QB + i]; lanes past nq are 0
        for (int i = 0; i < nqv * SK_VL; i++) {
            int16_t *dst = qr + (size_t)i * dp;
            if (i < nq) {
                const float *qi = q + (size_t)(i0 + i) * ldq;
                float a = absmax_simd(qi, d);
                qs[i] = sk_q16_scale(a, QM);
                q16_row(qi, d, dp, sk_q16_inv(a, QM), dst);
            } else {
                qs[i] = 0.0f;
                memset(dst, 0, (size_t)dp * 2);
            }
            mx[i] = -INFINITY;
        }
        const int32_t *qw = (const int32_t *)(const void *)qr;
        for (int u = 0; u < nqv; u++) {
            vi idx = q16_mul_i(q16_add_i(q16_iota(), u * SK_VL), dw);
            for (int t = 0; t < dw; t++) q16_store(qp + (size_t)t * QB + u * SK_VL, q16_gather(qw, q16_add_i(idx, t)));
        }
        for (int u0 = 0; u0 < nqv; u0 += 2) {
            const int nv = nqv - u0 < 2 ? 1 : 2;
            const int32_t *qb = qp + u0 * SK_VL;
            const float *qsb = qs + u0 * SK_VL;
            float *sb = st + u0 * SK_VL, *mb = mx + u0 * SK_VL;
            int j0 = 0;
            for (; j0 + Q16_MR <= n_kv; j0 += Q16_MR) {
                if (nv == 2) q16_s_tile(Q16_MR, 2, dw, kw + (size_t)j0 * dw, qb, ks + j0, qsb, sb + (size_t)j0 * QB, mb);
                else q16_s_tile(Q16_MR, 1, dw, kw + (size_t)j0 * dw, qb, ks + j0, qsb, sb + (size_t)j0 * QB, mb);
            }
            for (; j0 < n_kv; j0++) {
                if (nv == 2) q16_s_tile(1, 2, dw, kw + (size_t)j0 * dw, qb, ks + j0, qsb, sb + (size_t)j0 * QB, mb);
                else q16_s_tile(1, 1, dw, kw + (size_t)j0 * dw, qb, ks + j0, qsb, sb + (size_t)j0 * QB, mb);
            }
        }
        // softmax down each column of lanes; probabilities * 32767 in key-pair words
        for (int u = 0; u < nqv; u++) {
            float *col = st + u * SK_VL;
            const vf cmx = v_load(mx + u * SK_VL);
            vf s0 = v_zero(), s1 = v_zero();
            int j = 0;
            for (; j + 2 <= n_kv; j += 2) {
                vf e0 = q16_exp(v_sub(v_load(col + (size_t)j * QB), cmx));
                vf e1 = q16_exp(v_sub(v_load(col + (size_t)(j + 1) * QB), cmx));
                v_store(col + (size_t)j * QB, e0);
                v_store(col + (size_t)(j + 1) * QB, e1);
                s0 = v_add(s0, e0);
                s1 = v_add(s1, e1);
            }
            if (j < n_kv) {
                vf e0 = q16_exp(v_sub(v_load(col + (size_t)j * QB), cmx));
                v_store(col + (size_t)j * QB, e0);
                s0 = v_add(s0, e0);
            }
            vf pinv = v_div(v_set1((float)SK_Q16_PMAX), v_add(s0, s1));
            for (int t = 0; t < nkp; t++) {
                vi lo = v_rne_i(v_mul(v_load(col + (size_t)(2 * t) * QB), pinv));
                vi hi = 2 * t + 1 < n_kv ? v_rne_i(v_mul(v_load(col + (size_t)(2 * t + 1) * QB), pinv)) : q16_zero();
                q16_store(pp + (size_t)t * QB + u * SK_VL, q16_pair(lo, hi));
            }
        }
        // out = P V
        float *ob = out + (size_t)i0 * ldo;
        for (int c0 = 0; c0 < d; c0 += 2 * SK_VL) {
            const int nc = d - c0, nv = nc > SK_VL ? 2 : 1;
            int r0 = 0;
            for (; r0 + Q16_MR <= nq; r0 += Q16_MR) {
                if (nv == 2) q16_o_tile(Q16_MR, 2, nkp, pp + r0, vp + c0, dv, ws + c0, ob + (size_t)r0 * ldo + c0, ldo, nc);
                else q16_o_tile(Q16_MR, 1, nkp, pp + r0, vp + c0, dv, ws + c0, ob + (size_t)r0 * ldo + c0, ldo, nc);
            }
            for (; r0 < nq; r0++) {
                if (nv == 2) q16_o_tile(1, 2, nkp, pp + r0, vp + c0, dv, ws + c0, ob + (size_t)r0 * ldo + c0, ldo, nc);
                else q16_o_tile(1, 1, nkp, pp + r0, vp + c0, dv, ws + c0, ob + (size_t)r0 * ldo + c0, ldo, nc);
            }
        }
    }
}

#endif
