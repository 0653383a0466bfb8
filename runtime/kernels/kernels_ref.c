// Reference kernels: plain C, the oracle every ISA path is tested against.
#include "runtime/kernels/kernels.h"

#include <math.h>
#include <string.h>

float sk_act_ref(float x, enum sk_act act) {
    switch (act) {
    case SK_ACT_NONE: return x;
    case SK_ACT_GELU_ERF: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    // tanh approximation, Hendrycks & Gimpel 2016, eq. in sec. 2
    case SK_ACT_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case SK_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case SK_ACT_TANH: return tanhf(x);
    }
    return x;
}

void sk_linear_ref(int m, int n, int k, const float *x, int ldx, const float *w, const float *bias,
                   float *y, int ldy, enum sk_act act, const float *residual, int ldr) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int p = 0; p < k; p++) acc += x[(size_t)i * ldx + p] * w[(size_t)j * k + p];
            if (bias) acc += bias[j];
            acc = sk_act_ref(acc, act);
            if (residual) acc += residual[(size_t)i * ldr + j];
            y[(size_t)i * ldy + j] = acc;
        }
    }
}

void sk_gemm_f32_ref(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int p = 0; p < k; p++) {
                float a = trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float b = trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            *c = alpha * acc + (beta == 0.0f ? 0.0f : beta * *c);
        }
    }
}

void sk_layernorm_ref(const float *x, float *out, int n, const float *gamma, const float *beta, float eps) {
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; i++) var += ((double)x[i] - mean) * ((double)x[i] - mean);
    var /= n;
    float rstd = (float)(1.0 / sqrt(var + (double)eps));
    float mu = (float)mean;
    for (int i = 0; i < n; i++) {
        float v = (x[i] - mu) * rstd;
        out[i] = v * (gamma ? gamma[i] : 1.0f) + (beta ? beta[i] : 0.0f);
    }
}

void sk_softmax_ref(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - mx); sum += x[i]; }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

// IEEE half <-> single, round to nearest even.
float sk_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { // subnormal: normalise
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 112u) << 23) | (man << 13);
    float f; memcpy(&f, &bits, 4); return f;
}

uint16_t sk_f32_to_f16(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, abs = x & 0x7fffffffu;
    if (abs >= 0x7f800000u) return (uint16_t)(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0));
    if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); // rounds to >= 65520: inf
    if (abs < 0x38800000u) { // subnormal or zero in half
        if (abs < 0x33000000u) return (uint16_t)sign;
        uint32_t e = abs >> 23, man = (abs & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; // 14 - (e - 127) + 13 - 1 ... aligns to half subnormal
        uint32_t h = man >> (shift), rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((abs - 0x38000000u) >> 13), rem = abs & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float sk_bf16_to_f32(uint16_t h) { uint32_t b = (uint32_t)h << 16; float f; memcpy(&f, &b, 4); return f; }

uint16_t sk_f32_to_bf16(float f) {
    uint32_t x; memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); // quiet NaN
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

// ---- Panel kernels on the packed layouts (kernels_impl.h), the ISA table's reference entries.

#include "runtime/kernels/kernels_impl.h"

float sk_epi_apply1(const struct sk_epi *e, float acc, float cold, int i, int j) {
    if (e->gemm) return e->alpha * acc + (e->beta == 0.0f ? 0.0f : e->beta * cold);
    float v = acc;
    if (e->bias) v += e->bias[j];
    v = sk_act_ref(v, e->act);
    if (e->res) v += e->res[(size_t)i * e->ldr + (size_t)j];
    return v;
}

// Same arithmetic as sk_linear_ref / sk_gemm_f32_ref (mul then add, p in order), so the ref
// path of sk_linear_forward is bit-identical to sk_linear_ref.
void sk_f32_panels_ref(int m, int k, int j0, int j1, int n, const float *a, size_t rsa, size_t csa,
                       const float *b, size_t bvs, size_t bks, float *c, size_t ldc, const struct sk_epi *epi) {
    (void)n;
    for (int i = 0; i < m; i++) {
        for (int q0 = j0; q0 < j1; q0 += SK_PANEL) {
            int w = j1 - q0 < SK_PANEL ? j1 - q0 : SK_PANEL;
            const float *bp = b + (size_t)(q0 / SK_PANEL) * bvs;
            float acc[SK_PANEL] = {0};
            for (int p = 0; p < k; p++) {
                float av = a[(size_t)i * rsa + (size_t)p * csa];
                if (bks == 0) { // transposed source: (p, j) at b[j*bvs + p]
                    for (int t = 0; t < w; t++) acc[t] += av * b[(size_t)(q0 + t) * bvs + (size_t)p];
                    continue;
                }
                const float *br = bp + (size_t)p * bks;
                for (int t = 0; t < w; t++) acc[t] += av * br[t];
            }
            for (int t = 0; t < w; t++) {
                float *cp = &c[(size_t)i * ldc + (size_t)(q0 + t)];
                *cp = sk_epi_apply1(epi, acc[t], epi->gemm && epi->beta != 0.0f ? *cp : 0.0f, i, q0 + t);
            }
        }
    }
}

void sk_q8_panels_ref(int m, int kpad, int j0, int j1, int n, const uint8_t *aq, size_t lda,
                      const int8_t *wq, const int32_t *wcomp, float *c, size_t ldc, const struct sk_epi *epi) {
    (void)n; (void)wcomp; // the reference stores s8 activations: no u8 shift to undo
    for (int i = 0; i < m; i++) {
        const int8_t *ar = (const int8_t *)(aq + (size_t)i * lda);
        for (int j = j0; j < j1; j++) {
            const int8_t *wp = wq + (size_t)(j / SK_PANEL) * (size_t)kpad * SK_PANEL + 4 * (j % SK_PANEL);
            int32_t acc = 0;
            for (int g = 0; g < kpad / 4; g++)
                for (int t = 0; t < 4; t++) acc += (int32_t)ar[4 * g + t] * (int32_t)wp[(size_t)g * 64 + (size_t)t];
            if (epi->out_s32) { epi->out_s32[(size_t)i * ldc + (size_t)j] = acc; continue; }
            float v = sk_q8_dequant(acc, epi->ascale[i], epi->wscale[j]);
            c[(size_t)i * ldc + (size_t)j] = sk_epi_apply1(epi, v, 0.0f, i, j);
        }
    }
}

static void act_ref_row(float *x, int n, enum sk_act act) {
    for (int i = 0; i < n; i++) x[i] = sk_act_ref(x[i], act);
}

static float absmax_ref(const float *x, int n) {
    float m = 0.0f;
    for (int i = 0; i < n; i++) { float v = fabsf(x[i]); m = v > m ? v : m; }
    return m;
}

// q = clamp(rne(x * inv), -127, 127); clamping in float first keeps NaN defined (-> -127, as
// the SIMD max(v, -127) does) and the int conversion in range.
static void quantize_ref(const float *x, int n, float inv, uint8_t *q, bool u8) {
    for (int i = 0; i < n; i++) {
        float v = x[i] * inv;
        v = v > -127.0f ? v : -127.0f; // NaN -> -127
        v = v < 127.0f ? v : 127.0f;
        int r = (int)nearbyintf(v);
        q[i] = (uint8_t)((uint8_t)(int8_t)r ^ (u8 ? 0x80u : 0u));
    }
}

static float q8_row_ref(const float *x, int k, int kpad, uint8_t *q, bool u8) {
    float amax = absmax_ref(x, k);
    quantize_ref(x, k, sk_q8_inv(amax), q, u8);
    memset(q + k, u8 ? 0x80 : 0, (size_t)(kpad - k));
    return amax;
}

// Same arithmetic as sk_gemm_f32_ref (alpha = scale), sk_softmax_ref, sk_gemm_f32_ref in turn.
void sk_attention_ref(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk, const float *v,
                      size_t ldv, float scale, float *out, size_t ldo, float *scratch) {
    float *srow = scratch;
    for (int i = 0; i < n_q; i++) {
        const float *qi = q + (size_t)i * ldq;
        for (int j = 0; j < n_kv; j++) {
            const float *kj = k + (size_t)j * ldk;
            float acc = 0.0f;
            for (int p = 0; p < d; p++) acc += qi[p] * kj[p];
            srow[j] = scale * acc + 0.0f;
        }
        sk_softmax_ref(srow, n_kv);
        for (int c = 0; c < d; c++) {
            float acc = 0.0f;
            for (int j = 0; j < n_kv; j++) acc += srow[j] * v[(size_t)j * ldv + (size_t)c];
            out[(size_t)i * ldo + (size_t)c] = 1.0f * acc + 0.0f;
        }
    }
}

// Attention with int16 products (sk_att_q16_layout): the integers every ISA computes, exact int32
// sums, then the float steps in plain order (libm expf, sequential sum).
void sk_attention_q16_ref(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk,
                          const float *v, size_t ldv, float scale, float *out, size_t ldo, void *scratch) {
    const struct sk_att_q16_layout L = sk_att_q16_layout(n_kv, d);
    unsigned char *base = scratch;
    int16_t *k16 = (int16_t *)(void *)(base + L.k16), *v16 = (int16_t *)(void *)(base + L.vp);
    int16_t *q16 = (int16_t *)(void *)(base + L.qp);
    int32_t *p16 = (int32_t *)(void *)(base + L.pp);
    float *ks = (float *)(void *)(base + L.ks), *ws = (float *)(void *)(base + L.ws), *s = (float *)(void *)(base + L.st);
    const int QM = sk_q16_qk_max(d);
    for (int j = 0; j < n_kv; j++) {
        const float *kj = k + (size_t)j * ldk;
        float a = absmax_ref(kj, d), inv = sk_q16_inv(a, QM);
        ks[j] = sk_q16_scale(a, QM) * scale;
        for (int p = 0; p < d; p++) k16[(size_t)j * L.dp + (size_t)p] = (int16_t)sk_q16(kj[p], inv);
    }
    for (int c = 0; c < d; c++) {
        float a = 0.0f;
        for (int j = 0; j < n_kv; j++) { float x = fabsf(v[(size_t)j * ldv + (size_t)c]); a = x > a ? x : a; }
        float inv = sk_q16_inv(a, SK_Q16_PMAX);
        ws[c] = sk_q16_scale(a, SK_Q16_PMAX) / (float)SK_Q16_PMAX;
        for (int j = 0; j < n_kv; j++) v16[(size_t)j * L.dv + (size_t)c] = (int16_t)sk_q16(v[(size_t)j * ldv + (size_t)c], inv);
    }
    for (int i = 0; i < n_q; i++) {
        const float *qi = q + (size_t)i * ldq;
        float a = absmax_ref(qi, d), inv = sk_q16_inv(a, QM), qs = sk_q16_scale(a, QM);
        for (int p = 0; p < d; p++) q16[p] = (int16_t)sk_q16(qi[p], inv);
        float mx = -INFINITY, sum = 0.0f;
        for (int j = 0; j < n_kv; j++) {
            int32_t acc = 0;
            for (int p = 0; p < d; p++) acc += (int32_t)q16[p] * k16[(size_t)j * L.dp + (size_t)p];
            s[j] = (float)acc * ks[j] * qs;
            mx = s[j] > mx ? s[j] : mx;
        }
        for (int j = 0; j < n_kv; j++) { s[j] = expf(s[j] - mx); sum += s[j]; }
        float pinv = (float)SK_Q16_PMAX / sum;
        for (int j = 0; j < n_kv; j++) p16[j] = sk_q16(s[j], pinv);
        for (int c = 0; c < d; c++) {
            int32_t acc = 0;
            for (int j = 0; j < n_kv; j++) acc += p16[j] * v16[(size_t)j * L.dv + (size_t)c];
            out[(size_t)i * ldo + (size_t)c] = (float)acc * ws[c];
        }
    }
}

void sk_fill_ref(struct sk_kernels *t) {
    t->isa = SK_ISA_REF;
    t->f32_panels = sk_f32_panels_ref;
    t->f32_cols_per_task = SK_PANEL;
    t->q8_panels = sk_q8_panels_ref;
    t->q8_u8 = false;
    t->q8_mpad = 1;
    t->q8_amx = false;
    t->layernorm = sk_layernorm_ref;
    t->softmax = sk_softmax_ref;
    t->act = act_ref_row;
    t->absmax = absmax_ref;
    t->quantize = quantize_ref;
    t->q8_row = q8_row_ref;
    t->attention = sk_attention_ref;
    t->attention_q16 = sk_attention_q16_ref;
}
