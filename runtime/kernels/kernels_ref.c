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
