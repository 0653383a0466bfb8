// Kernel dispatch and the Linear-layer object. Compiled with no ISA flags.
// (Placeholder dispatch: reference kernels only; the ISA files fill the table.)
#include "runtime/kernels/kernels.h"

#include <stdlib.h>
#include <string.h>

static const char *const isa_names[SK_ISA_COUNT] = {"ref", "avx2", "avx512", "avxvnni", "avx512vnni", "amx"};

const char *sk_isa_name(enum sk_isa isa) { return (unsigned)isa < SK_ISA_COUNT ? isa_names[isa] : "?"; }

int sk_isa_from_name(const char *name) {
    for (int i = 0; i < SK_ISA_COUNT; i++)
        if (name && strcmp(name, isa_names[i]) == 0) return i;
    return -1;
}

const struct sk_cpu *sk_cpu(void) {
    static const struct sk_cpu none;
    return &none;
}

enum sk_isa sk_isa_best(void) { return SK_ISA_REF; }
enum sk_isa sk_isa_active(void) { return SK_ISA_REF; }

struct sk_linear {
    int n_out, n_in;
    float *w;    // [n_out, n_in]
    float *bias; // [n_out] or NULL
};

int sk_linear_create(struct sk_linear **out, enum sembed_dtype dtype, const void *w, const float *bias,
                     int n_out, int n_in, enum sk_mode mode) {
    (void)mode;
    *out = NULL;
    if (n_out <= 0 || n_in <= 0) return SEMBED_EINVAL;
    struct sk_linear *L = calloc(1, sizeof *L);
    if (!L) return SEMBED_ENOMEM;
    size_t n = (size_t)n_out * (size_t)n_in;
    L->n_out = n_out; L->n_in = n_in;
    L->w = malloc(n * sizeof(float));
    if (!L->w) goto fail;
    switch (dtype) {
    case SEMBED_DTYPE_F32: memcpy(L->w, w, n * sizeof(float)); break;
    case SEMBED_DTYPE_F16: for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, (const char *)w + 2 * i, 2); L->w[i] = sk_f16_to_f32(h); } break;
    case SEMBED_DTYPE_BF16: for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, (const char *)w + 2 * i, 2); L->w[i] = sk_bf16_to_f32(h); } break;
    case SEMBED_DTYPE_Q8_ROW: {
        const int8_t *q = w;
        size_t pad = (n + SEMBED_ALIGNMENT - 1) / SEMBED_ALIGNMENT * SEMBED_ALIGNMENT;
        const char *scales = (const char *)w + pad;
        for (int r = 0; r < n_out; r++) {
            float s; memcpy(&s, scales + 4 * (size_t)r, 4);
            for (int c = 0; c < n_in; c++) L->w[(size_t)r * n_in + c] = (float)q[(size_t)r * n_in + c] * s;
        }
        break;
    }
    default: goto fail;
    }
    if (bias) {
        L->bias = malloc((size_t)n_out * sizeof(float));
        if (!L->bias) goto fail;
        memcpy(L->bias, bias, (size_t)n_out * sizeof(float));
    }
    *out = L;
    return SEMBED_OK;
fail:
    sk_linear_free(L);
    return SEMBED_ENOMEM;
}

void sk_linear_free(struct sk_linear *L) {
    if (!L) return;
    free(L->w); free(L->bias); free(L);
}

int sk_linear_n_out(const struct sk_linear *L) { return L->n_out; }
int sk_linear_n_in(const struct sk_linear *L) { return L->n_in; }
size_t sk_linear_scratch_size(const struct sk_linear *L, int m) { (void)L; (void)m; return 0; }

void sk_linear_forward(const struct sk_linear *L, int m, const float *x, int ldx, float *y, int ldy,
                       enum sk_act act, const float *residual, int ldr, void *scratch, int n_threads) {
    (void)scratch; (void)n_threads;
    sk_linear_ref(m, L->n_out, L->n_in, x, ldx, L->w, L->bias, y, ldy, act, residual, ldr);
}

void sk_gemm_f32(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, int n_threads) {
    (void)n_threads;
    sk_gemm_f32_ref(trans_a, trans_b, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sk_layernorm(const float *x, float *out, int n, const float *gamma, const float *beta, float eps) {
    sk_layernorm_ref(x, out, n, gamma, beta, eps);
}
void sk_softmax(float *x, int n) { sk_softmax_ref(x, n); }
void sk_act_apply(float *x, int n, enum sk_act act) {
    for (int i = 0; i < n; i++) x[i] = sk_act_ref(x[i], act);
}
