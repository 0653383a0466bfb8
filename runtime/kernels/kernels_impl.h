// runtime/kernels/kernels_impl.h: what the dispatcher (kernels.c) and the per-ISA files share.
// Internal to runtime/kernels/; the rest of the library uses kernels.h.
//
// Packed weight layouts (one layout per mode, the same for every ISA, so an object created under
// one ISA runs under any other; tests switch ISA freely):
//
//   f32:  panels of SK_PANEL = 16 output columns. Panel q holds W[16q + j, p] at
//         wp[q * kpad * 16 + p * 16 + j], p < kpad = k; columns past n are zero.
//         One k-step of a panel is one 64-byte line: one zmm, two ymm.
//   int8: panels of 16 output columns, k padded to kpad = round_up(k, 64) with zeros. Panel q,
//         k-group g (4 consecutive k) holds 64 bytes: for column j the 4 bytes W[16q+j, 4g..4g+3]
//         at wq[q * kpad * 16 + g * 64 + 4j + t]. This is the VNNI operand layout (one zmm per
//         group) and, 16 groups at a time, exactly an AMX B tile (16 rows x 64 bytes).
#ifndef SEMBED_KERNELS_IMPL_H
#define SEMBED_KERNELS_IMPL_H

#include "runtime/kernels/kernels.h"

#include <math.h>
#include <stdint.h>

#define SK_PANEL 16
#define SK_Q8_KALIGN 64

// Epilogue of a float-producing kernel, applied once per output element after the whole
// reduction: v = alpha*acc (+ beta*C_old when beta != 0) (+ bias[j]); v = act(v); v += res[i, j].
// For int8, acc is first turned into float: v = (float)acc * (ascale[i] * wscale[j]).
struct sk_epi {
    const float *bias;     // [n] or NULL
    const float *res;      // residual rows, stride ldr, or NULL
    size_t ldr;
    enum sk_act act;
    float alpha, beta;     // gemm only (linear: 1, 0)
    const float *ascale;   // int8: per-row activation scales [m]
    const float *wscale;   // int8: per-column weight scales [n]
    int32_t *out_s32;      // int8: if set, store the exact int32 accumulators here instead (ld = ldc)
    bool gemm;             // v = alpha*acc + (beta == 0 ? 0 : beta*C_old), as sk_gemm_f32_ref
};

// f32 panel GEMM: C[m, n] (ldc) = epi(A B), A element (i, p) at a[i*rsa + p*csa], B element
// (p, j) at b[(j/16)*bvs + p*bks + j%16] (packed: bvs = 16*k, bks = 16; plain row-major B:
// bvs = 16, bks = ldb, loads past column n are masked; bks == 0: a transposed source, element
// (p, j) at b[j*bvs + p], which SIMD kernels pack chunk by chunk on the stack). Columns [j0, j1)
// only, j0 % 16 == 0.
// Reduction: acc = fma(a, b, acc) for p = 0..k-1 in order, starting from 0.
typedef void (*sk_f32_panels_fn)(int m, int k, int j0, int j1, int n, const float *a, size_t rsa,
                                 size_t csa, const float *b, size_t bvs, size_t bks, float *c,
                                 size_t ldc, const struct sk_epi *epi);

// int8 panel GEMM on quantized activations aq [m rows, stride lda bytes, kpad columns; s8, or u8
// = s8 ^ 0x80 when the table's q8_u8 is set] and packed weights wq (layout above). wcomp[j] =
// 128 * sum_p W[j, p] compensates the u8 shift. Columns [j0, j1), j0 % 16 == 0. aq has
// q8_mpad-multiple rows (zero rows past m) so tile kernels may compute whole tiles.
typedef void (*sk_q8_panels_fn)(int m, int kpad, int j0, int j1, int n, const uint8_t *aq, size_t lda,
                                const int8_t *wq, const int32_t *wcomp, float *c, size_t ldc,
                                const struct sk_epi *epi);

struct sk_kernels {
    enum sk_isa isa;
    sk_f32_panels_fn f32_panels;
    int f32_cols_per_task; // column granularity for thread splits (multiple of 16)
    sk_q8_panels_fn q8_panels;
    bool q8_u8;            // activations stored as u8 (s8 ^ 0x80) for u8 x s8 instructions
    int q8_mpad;           // activation rows padded to a multiple of this (1, or 16 for AMX)
    bool q8_amx;           // kernel needs the AMX tile permission and per-thread tile config
    // Row ops (never NULL after init).
    void (*layernorm)(const float *x, float *out, int n, const float *gamma, const float *beta, float eps);
    void (*softmax)(float *x, int n);
    void (*act)(float *x, int n, enum sk_act act);
    // Quantize one row: q[i] = clamp(rne(x[i] * inv), -127, 127) (^ 0x80 if u8); returns max|x|.
    float (*absmax)(const float *x, int n);
    void (*quantize)(const float *x, int n, float inv, uint8_t *q, bool u8);
    // One activation row for the int8 GEMM: absmax, then quantize with inv = sk_q8_inv(amax),
    // bytes k..kpad-1 zero (as q8 0: 0x80 when u8); returns amax. Same bytes as absmax +
    // quantize (tested through the bit-exact int8 Linear comparison).
    float (*q8_row)(const float *x, int k, int kpad, uint8_t *q, bool u8);
    // Fused attention for one head (kernels.h sk_attention_f32); scratch: sk_att_scratch_floats.
    void (*attention)(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk, const float *v,
                      size_t ldv, float scale, float *out, size_t ldo, float *scratch);
    // The same with int16 products (sk_att_q16_layout); scratch 64-byte aligned.
    void (*attention_q16)(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk,
                          const float *v, size_t ldv, float scale, float *out, size_t ldo, void *scratch);
};

// Attention scratch (floats), the same for every ISA: K^T in 16-key panels (round_up(n_kv, 16) x d)
// and the scores of one block of SK_ATT_ROWS query rows (SK_ATT_ROWS x round_up(n_kv, 16)).
#define SK_ATT_ROWS 8
static inline size_t sk_att_scratch_floats(int n_kv, int d) {
    size_t kv = ((size_t)n_kv + 15) / 16 * 16;
    return kv * (size_t)d + SK_ATT_ROWS * kv;
}

// Attention with int16 products (the int8 compute mode; kernels.h sk_attention_q16). Q and K
// are quantized per row to at most sk_q16_qk_max(d) in magnitude, so that a row's d products
// cannot overflow int32; V per column and P (in [0, 1]) with the fixed scale 1/32767. Products
// are exact int32 sums on every ISA; pairs of int16 along the reduction share one 32-bit word.
// Scratch (bytes, 64-aligned parts): K int16 rows, key scales, V in key-pair words, column
// scales; for one block of SK_ATT_QB queries: Q int16 rows, Q^T in pair words, scales, score
// maxima, the scores transposed (n_kv x SK_ATT_QB floats), probabilities in key-pair words.
#define SK_ATT_QB 32
#define SK_Q16_PMAX 32767
static inline int sk_q16_qk_max(int d) {
    int64_t dp = (d + 1) & ~1, m = (int64_t)sqrt((double)INT32_MAX / (double)dp);
    while (m * m * dp > INT32_MAX) m--;
    while ((m + 1) * (m + 1) * dp <= INT32_MAX) m++;
    return m > 32767 ? 32767 : (int)m;
}
// The shared scalar steps of that quantization, so every ISA produces the same integers:
// q = the low 16 bits of cvtps2dq(x * inv) as a signed value: rne(x * inv), which |x| <= amax
// keeps within +-m; NaN / inf / |x * inv| >= 2^31 give cvtps2dq's INT_MIN, whose low half is 0.
// inv = m / amax (0 for an all-zero row); dequantization scale amax / m.
static inline float sk_q16_inv(float amax, int m) { return amax > 0.0f ? (float)m / amax : 0.0f; }
static inline float sk_q16_scale(float amax, int m) { return amax / (float)m; }
static inline int32_t sk_q16(float x, float inv) {
    float y = x * inv;
    if (!(fabsf(y) < 2147483648.0f)) return 0;
    uint16_t lo = (uint16_t)((uint32_t)lrintf(y) & 0xffffu);
    return lo < 0x8000u ? (int32_t)lo : (int32_t)lo - 0x10000;
}
struct sk_att_q16_layout {
    size_t k16, ks, vp, ws, qr, qp, qs, mx, st, pp, total; // byte offsets
    int dp, dw, dv, nkp;                            // d rounded to pairs, pair words, V columns, key pairs
};
static inline size_t sk_al64(size_t x) { return (x + 63) & ~(size_t)63; }
static inline struct sk_att_q16_layout sk_att_q16_layout(int n_kv, int d) {
    struct sk_att_q16_layout L;
    L.dp = (d + 1) & ~1;
    L.dw = L.dp / 2;
    L.dv = (d + 15) / 16 * 16;
    L.nkp = (n_kv + 1) / 2;
    size_t o = 0;
    L.k16 = o; o = sk_al64(o + (size_t)n_kv * (size_t)L.dp * 2);
    L.ks = o; o = sk_al64(o + (size_t)n_kv * 4);
    L.vp = o; o = sk_al64(o + (size_t)L.nkp * (size_t)L.dv * 4);
    L.ws = o; o = sk_al64(o + (size_t)L.dv * 4);
    L.qr = o; o = sk_al64(o + (size_t)L.dp * SK_ATT_QB * 2);
    L.qp = o; o = sk_al64(o + (size_t)L.dw * SK_ATT_QB * 4);
    L.qs = o; o = sk_al64(o + SK_ATT_QB * 4);
    L.mx = o; o = sk_al64(o + SK_ATT_QB * 4);
    L.st = o; o = sk_al64(o + (size_t)n_kv * SK_ATT_QB * 4);
    L.pp = o; o = sk_al64(o + (size_t)L.nkp * SK_ATT_QB * 4);
    L.total = o;
    return L;
}

// The active table (filled once, thread-safe).
const struct sk_kernels *sk_kernels_get(void);
// Table for one ISA, if compiled in and supported (NULL otherwise). For tests and benchmarks.
const struct sk_kernels *sk_kernels_for(enum sk_isa isa);

// Per-ISA fillers: override what they implement; each returns false if the file was compiled
// without its ISA (never the case with the project's CMake, kept for other build systems).
bool sk_fill_avx2(struct sk_kernels *t);
bool sk_fill_avx512(struct sk_kernels *t);
bool sk_fill_avxvnni(struct sk_kernels *t);
bool sk_fill_avx512vnni(struct sk_kernels *t);
bool sk_fill_amx(struct sk_kernels *t);
void sk_fill_ref(struct sk_kernels *t);

// Reference panel kernels (kernels_ref.c) with the same reduction order as the SIMD ones:
// f32 uses fmaf chains, so every f32 ISA path is bit-identical to it before the epilogue.
void sk_f32_panels_ref(int m, int k, int j0, int j1, int n, const float *a, size_t rsa, size_t csa,
                       const float *b, size_t bvs, size_t bks, float *c, size_t ldc, const struct sk_epi *epi);
void sk_q8_panels_ref(int m, int kpad, int j0, int j1, int n, const uint8_t *aq, size_t lda,
                      const int8_t *wq, const int32_t *wcomp, float *c, size_t ldc, const struct sk_epi *epi);
void sk_attention_q16_ref(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk,
                          const float *v, size_t ldv, float scale, float *out, size_t ldo, void *scratch);
void sk_attention_ref(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk, const float *v,
                      size_t ldv, float scale, float *out, size_t ldo, float *scratch);
// Scalar epilogue for one element (shared by every ISA's scalar paths).
float sk_epi_apply1(const struct sk_epi *e, float acc, float cold, int i, int j);
// The int8 dequantization step exactly as every ISA performs it (mul, then add; no fma).
static inline float sk_q8_dequant(int32_t acc, float ascale, float wscale) {
    return (float)acc * (ascale * wscale);
}

// Quantization used everywhere: inv = 127 / amax (0 if amax is 0 or not finite), scale = amax / 127.
static inline float sk_q8_inv(float amax) { return (amax > 0.0f && amax <= 3.4028234e38f) ? 127.0f / amax : 0.0f; }
static inline float sk_q8_scale(float amax) { return (amax > 0.0f && amax <= 3.4028234e38f) ? amax / 127.0f : 0.0f; }

// AMX: ask Linux for tile-data permission once per process (cpu.c). True if granted.
bool sk_amx_permitted(void);

#endif
