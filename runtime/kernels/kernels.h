/*
 * runtime/kernels/kernels.h: the compute kernels behind the encoder and the trainer (internal).
 *
 * One table of function pointers per process, filled once: reference kernels first, then
 * overridden by the best ISA the CPU and OS support, capped by SEMBED_ISA=ref|avx2|avx512|
 * avxvnni|avx512vnni|amx. Reference kernels (*_ref) stay in every build as the test oracle.
 *
 * Determinism contract (the runtime's batch invariance rests on it): every output element is
 * computed with a reduction order that depends only on k (and the ISA), never on m, on which
 * rows share the call, on tile position, or on the thread count. Threads split n (columns) or
 * independent rows, never a reduction.
 */
#ifndef SEMBED_KERNELS_H
#define SEMBED_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sembed/semb.h"

enum sk_isa { SK_ISA_REF = 0, SK_ISA_AVX2, SK_ISA_AVX512, SK_ISA_AVXVNNI, SK_ISA_AVX512VNNI, SK_ISA_AMX, SK_ISA_COUNT };

struct sk_cpu {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16, avxvnni;
    bool amx_tile, amx_int8, amx_bf16;
    bool os_avx, os_avx512, os_amx; /* XCR0 state enabled by the OS; os_amx also needs arch_prctl */
};

const struct sk_cpu *sk_cpu(void);       /* detected once */
enum sk_isa sk_isa_best(void);           /* best the CPU + OS support */
enum sk_isa sk_isa_active(void);         /* best, capped by SEMBED_ISA */
const char *sk_isa_name(enum sk_isa isa);
int sk_isa_from_name(const char *name);  /* -1 if unknown */
bool sk_isa_supported(enum sk_isa isa);  /* compiled in and usable on this CPU + OS */
/* Tests and benchmarks only: make `isa` the active path for the whole process (not safe while
 * other threads run kernels). SEMBED_EUNSUPPORTED if this CPU/OS cannot run it. */
int sk_set_isa_for_testing(enum sk_isa isa);

enum sk_act { SK_ACT_NONE = 0, SK_ACT_GELU_ERF, SK_ACT_GELU_TANH, SK_ACT_RELU, SK_ACT_TANH };

/* Compute mode of a Linear layer. */
enum sk_mode { SK_MODE_F32 = 0, SK_MODE_INT8 = 1 };

/* A Linear layer y = act(x W^T + b) (+ residual), W [n_out, n_in], packed once at load into the
 * layout the active kernel wants. */
struct sk_linear;

/* w: n_out*n_in elements of dtype (F32, F16, BF16 or Q8_ROW bytes as in the .semb layout);
 * bias: n_out floats or NULL. SK_MODE_INT8 quantizes float weights per row if needed;
 * SK_MODE_F32 dequantizes Q8_ROW. The object copies what it needs: w may be unmapped after. */
int sk_linear_create(struct sk_linear **out, enum sembed_dtype dtype, const void *w, const float *bias,
                     int n_out, int n_in, enum sk_mode mode);
/* The same from n_parts tensors of dtype, each n_out / n_parts rows, stacked in order (fused
 * Q/K/V read straight from the three mapped tensors). */
int sk_linear_create_parts(struct sk_linear **out, enum sembed_dtype dtype, const void *const *parts, int n_parts,
                           const float *bias, int n_out, int n_in, enum sk_mode mode);
void sk_linear_free(struct sk_linear *L);
int sk_linear_n_out(const struct sk_linear *L);
int sk_linear_n_in(const struct sk_linear *L);
/* Bytes of scratch sk_linear_forward needs for m rows (0 allowed). Pass a buffer of at least
 * this size, aligned to 64 bytes; with scratch == NULL the call allocates (and if that fails,
 * logs an error and writes NaN to y). */
size_t sk_linear_scratch_size(const struct sk_linear *L, int m);
/* y[m, n_out] (row stride ldy) = act(x[m, n_in] (stride ldx) W^T + b) + residual (stride ldr,
 * may be NULL; may alias y only if ldr == ldy). Uses up to n_threads OpenMP threads. */
void sk_linear_forward(const struct sk_linear *L, int m, const float *x, int ldx, float *y, int ldy,
                       enum sk_act act, const float *residual, int ldr, void *scratch, int n_threads);

/* Threads sk_linear_forward / sk_gemm_f32 will actually use when given n_threads: 1 when the
 * estimated single-thread work is under ~25 us (waking a thread and the barrier would cost more
 * than they save), else n_threads. So callers may always pass their thread budget; these tell
 * them in advance (e.g. to run independent small calls in parallel instead). */
int sk_linear_threads(const struct sk_linear *L, int m, int n_threads);
int sk_gemm_f32_threads(int m, int n, int k, int n_threads);
/* Tests only: set that threshold in microseconds (0: thread every call given n_threads > 1;
 * negative: back to the default). Returns the previous value. */
double sk_set_mt_min_us_for_testing(double us);

/* General fp32 GEMM, BLAS semantics, row-major: C = alpha op(A) op(B) + beta C, op(A) [m,k],
 * op(B) [k,n]. trans_a/trans_b select the transpose. For attention and the trainer. */
void sk_gemm_f32(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, int n_threads);

/* Scaled dot-product attention for one (sequence, head), fused and single-threaded (callers run
 * (sequence, head) pairs in parallel):
 *   out[i, :] = sum_{j < n_kv} p_ij v_j,  p_i = softmax_j(scale * q_i . k_j),  i < n_q.
 * q, k, v, out: rows of d floats with row strides ldq, ldk, ldv, ldo (e.g. 3H inside a packed
 * QKV buffer). Keys j >= n_kv do not exist for the call: pass the sequence length to mask padding.
 * Result bit-identical to sk_gemm_f32(Q K^T, alpha = scale) + sk_softmax per row +
 * sk_gemm_f32(P V) on the active ISA, so a query row's output never depends on n_q or on its
 * position. No allocation when scratch is given: at least sk_attention_scratch_size(n_kv, d)
 * bytes, 64-byte aligned (K^T panels + one block of scores); scratch == NULL uses 64 KiB of stack
 * when that suffices (n_kv = 128 at d = 64), else allocates. Returns SEMBED_OK, SEMBED_EINVAL
 * (n_kv < 1 or a stride < d) or SEMBED_ENOMEM (scratch == NULL only). */
size_t sk_attention_scratch_size(int n_kv, int d);
int sk_attention_f32(int n_q, int n_kv, int d, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                     float scale, float *out, int ldo, void *scratch);

/* The same attention with int16 products, for the int8 compute mode (docs/int8.md): q and k
 * quantized per row (scale amax / m, m = sk_attention_q16_qk_max(d) <= 32767, so that d products cannot
 * overflow int32), v per column and the probabilities with the fixed scale 1/32767; both products
 * are exact int32 sums, equal on every ISA; max, exp, sum and the scales stay float. Relative
 * error about 1e-4 of the output's scale. A query row's output does not depend on n_q or its
 * position. Scratch: sk_attention_q16_scratch_size(n_kv, d) bytes, 64-byte aligned; NULL
 * allocates. n_kv > SK_Q16_MAX_KV runs sk_attention_f32 instead (the probabilities' int32 sum
 * bound). Returns as sk_attention_f32. */
#define SK_Q16_MAX_KV 32768
int sk_attention_q16_qk_max(int d); /* m above: the largest m with d' m^2 <= INT32_MAX, d' = d rounded up to even */
size_t sk_attention_q16_scratch_size(int n_kv, int d);
int sk_attention_q16(int n_q, int n_kv, int d, const float *q, int ldq, const float *k, int ldk, const float *v, int ldv,
                     float scale, float *out, int ldo, void *scratch);

/* Row operations (one row of n elements; out may alias x). */
void sk_layernorm(const float *x, float *out, int n, const float *gamma, const float *beta, float eps);
void sk_softmax(float *x, int n);                 /* in place, max-subtracted */
void sk_act_apply(float *x, int n, enum sk_act act);

/* Reference versions of the above, always compiled: the oracle for tests. */
void sk_linear_ref(int m, int n, int k, const float *x, int ldx, const float *w, const float *bias,
                   float *y, int ldy, enum sk_act act, const float *residual, int ldr);
void sk_gemm_f32_ref(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc);
void sk_layernorm_ref(const float *x, float *out, int n, const float *gamma, const float *beta, float eps);
void sk_softmax_ref(float *x, int n);
float sk_act_ref(float x, enum sk_act act);

/* int8 (SK_MODE_INT8): weights int8 with one f32 scale per output row; activations quantized
 * per row (token) at run time, symmetric: scale = max|x| / 127, q = clamp(rne(x / scale), +-127)
 * (computed as x * (127 / max|x|)); int32 accumulation; y = (float)acc * (scale_x * scale_w[j])
 * (+ bias, act, residual) in the epilogue. Every ISA yields the same int32 accumulators, hence,
 * with SK_ACT_NONE, bit-identical outputs. See docs/kernels.md. */
float sk_q8_quantize_row(const float *x, int n, int8_t *q); /* returns the scale */
/* Exact C[m, n] (ldc) = A[m, k] (lda) W[n, k]^T (ldw) in int32 through the int8 kernel of `isa`
 * (packs W itself, allocates). For tests and benchmarks. SEMBED_EUNSUPPORTED, SEMBED_ENOMEM,
 * SEMBED_EINVAL. */
int sk_gemm_q8_s32(enum sk_isa isa, int m, int n, int k, const int8_t *a, int lda, const int8_t *w, int ldw,
                   int32_t *c, int ldc);
enum sk_mode sk_linear_mode(const struct sk_linear *L);

/* fp16/bf16 conversion (scalar, exact round-to-nearest-even). */
float sk_f16_to_f32(uint16_t h);
uint16_t sk_f32_to_f16(float f);
float sk_bf16_to_f32(uint16_t h);
uint16_t sk_f32_to_bf16(float f);

#endif /* SEMBED_KERNELS_H */
