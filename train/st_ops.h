// train/st_ops.h: the trainer's fused element-wise and small-attention kernels (prefix st_op_).
//
// Each op works on a range of rows (or one (sequence, head) pair) and is single-threaded: the
// caller (st_graph.c) splits rows over OpenMP threads. Two implementations: portable C
// (st_ops.c) and AVX-512 (st_ops_avx512.c, used when sk_isa_active() is an AVX-512 path, so
// SEMBED_ISA=avx2 or sk_set_isa_for_testing() selects the portable one). On one path, results do
// not depend on how rows are split; the two paths may differ in the last bits (polynomial exp/erf
// vs libm), both are checked against PyTorch.
//
// Column sums across rows (bias, LayerNorm weight gradients) are never reduced across threads:
// ops add a block's rows, in row order, into that block's own partial-sum row; st_graph.c sums
// the partial rows in block order. Blocks have a fixed size (ST_ROWBLK), so the result does not
// depend on the thread count.
//
// Dropout masks: element i of a site keeps its value iff st_rng_u32(key, i) >= thr (thr =
// p * 2^32), kept values scaled by 1/(1-p). Masks are stored as bits (bit i of the site at
// bits[i / 8] >> (i % 8)) so backward reuses them.
#ifndef SEMBED_TRAIN_ST_OPS_H
#define SEMBED_TRAIN_ST_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/kernels/kernels.h"

#define ST_ROWBLK 32

struct st_drop {
    uint64_t key;   // 0: no dropout
    uint32_t thr;   // drop iff st_rng_u32(key, i) < thr
    float scale;    // 1 / (1 - p)
    const int64_t *rows; // NULL: the counter of (r, c) is r * n + c; else rows[r] * n + c (a shard
                         // of a data-parallel batch uses its rows' global indices; bits stay local)
};

// Attention geometry for one (sequence, head) pair. q, k, v rows at stride ld (3H in the QKV
// cache); the pair's bias slices are added in place by the forward (qb/kb/vb, NULL = none).
struct st_att {
    int T, len, hd, ld;
    float scale;                        // 1/sqrt(hd)
    struct st_drop drop;                // attention-probability dropout
    uint64_t drop_base;                 // counter of element (0, 0) of this pair's T x T block
};

struct st_ops {
    // y[r] = LayerNorm(x[r]) * g + b; mean/rstd per row. Rows [r0, r1) of width n.
    void (*ln_fwd)(int r0, int r1, const float *x, int n, const float *g, const float *b, float eps, float *mean,
                   float *rstd, float *y);
    // y = dropout(y + bias) + res, mask bits written (bias, res may be NULL; no dropout when
    // d->key == 0, bits untouched then). Element index of (r, c) = r * n + c (counter: see st_drop.rows).
    void (*bias_drop_res)(int r0, int r1, float *y, int n, const float *bias, const float *res, const struct st_drop *d,
                          uint8_t *bits);
    // LayerNorm backward: dx = LN'(dy) (dx may alias dy); part_g += dy * xhat, part_b += dy
    // (partial rows of width n, summed over rows [r0, r1) in order).
    void (*ln_bwd)(int r0, int r1, const float *dy, const float *x, const float *mean, const float *rstd, int n,
                   const float *g, float *dx, float *part_g, float *part_b);
    // dt = mask * dx * scale (dt = dx without dropout); part += dt over the rows.
    void (*drop_bwd)(int r0, int r1, const float *dx, float *dt, int n, const struct st_drop *d, const uint8_t *bits,
                     float *part);
    // f += bias; g = act(f). Rows of width n.
    void (*act_fwd)(int r0, int r1, float *f, float *g, int n, const float *bias, enum sk_act act);
    // df *= act'(f) (g = act(f) from the forward); part += df over the rows.
    void (*act_bwd)(int r0, int r1, float *df, const float *f, const float *g, int n, enum sk_act act, float *part);
    // part += x over rows [r0, r1) (stride ld, width n).
    void (*colsum)(int r0, int r1, const float *x, int ld, int n, float *part);
    // Attention forward for one pair: adds the biases to q/k/v in place, P = softmax(scale q k^T)
    // over keys j < len (keys >= len get 0), PD = dropout(P) (PD may equal P: no dropout),
    // ctx[i] = sum_j PD[i, j] v[j]. P, PD: T x T; ctx rows at stride ldc. scratch: st_att_scratch.
    void (*att_fwd)(const struct st_att *a, float *q, float *k, float *v, const float *qb, const float *kb,
                    const float *vb, float *P, float *PD, float *ctx, int ldc, float *scratch);
    // Attention backward for one pair: dq, dk, dv (rows at stride ld, like q/k/v) from dctx
    // (stride ldc). Keys >= len get zero gradients; query rows >= len have dctx = 0 and get 0.
    void (*att_bwd)(const struct st_att *a, const float *q, const float *k, const float *v, const float *P,
                    const float *PD, const float *dctx, int ldc, float *dq, float *dk, float *dv, float *scratch);
    // Cross-entropy of one row of logits x[V] with label y: returns -log softmax(x)[y] and
    // overwrites x with dscale * (softmax(x) - onehot(y)).
    double (*xent_row)(float *x, int V, int y, float dscale);
    // AdamW on n elements (torch.optim.AdamW arithmetic, see st_optim.c); zero_grad: g = 0 after.
    void (*adamw)(size_t n, float *p, float *g, float *m, float *v, float decay, float b1, float b2, float step_size,
                  float bc2_sqrt, float eps, bool zero_grad);
};

// Scratch floats att_fwd / att_bwd need (per thread).
size_t st_att_scratch(int T, int hd);
// The table for the active ISA path (re-read on every call: tests switch ISA).
const struct st_ops *st_ops_get(void);
// Portable and AVX-512 tables (the latter NULL when not compiled in or unsupported).
const struct st_ops *st_ops_portable(void);
const struct st_ops *st_ops_avx512(void);

// Mask-bit helpers shared by both paths.
static inline bool st_bit(const uint8_t *bits, size_t i) { return (bits[i >> 3] >> (i & 7)) & 1; }

#endif
