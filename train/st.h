// train/st.h: the trainer's internals (prefix st_): parameter/gradient/moment blocks with a
// pointer table, forward with caches, backward, losses, AdamW, the counter-based RNG.
//
// Layout (llm.c style): every float of the model lives in one block `params`; `grads`, `adam_m`,
// `adam_v` are blocks of the same size and layout. `tensors[]` names each slice with its HF name
// (docs/format.md "Tensor names"); `w`/`g` are typed views into params/grads.
// Backward accumulates (+=) into grads; st_model_zero_grad() is explicit.
//
// Batches come in padded: n sequences of t tokens, input index seq*t + pos, padding at the end of
// each sequence (lens[seq] valid tokens). The graph packs them: activation rows hold real tokens
// only, sequence s at rows off[s] .. off[s] + lens[s] (st_acts.off, set by st_forward), so no
// work is spent on padding (padded positions never influence the loss: keys are masked, poolers
// and the MLM loss read real tokens only). Activations live in one block sized for the largest
// batch.
#ifndef SEMBED_TRAIN_ST_H
#define SEMBED_TRAIN_ST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/kernels/kernels.h"

struct sembed_file;

struct st_config {
    int vocab, hidden, layers, heads, inter, max_pos, type_vocab;
    float ln_eps;
    enum sk_act act;            // SK_ACT_GELU_ERF, SK_ACT_GELU_TANH or SK_ACT_RELU
    float hidden_dropout, attn_dropout;
    bool has_pooler;            // pooler.dense (BERT pooler = SimCSE's MLP: dense + tanh)
    bool has_mlm;               // cls.predictions.* (transform dense + act + LN, bias; decoder tied)
    int proj_dim;               // > 0: pooling.dense.0 [proj_dim, H] + bias, identity activation (the
                                // distillation projection, a sentence-transformers Dense module)
};

struct st_layer_w {
    float *qw, *qb, *kw, *kb, *vw, *vb; // [H,H], [H]
    float *aow, *aob, *aln_w, *aln_b;   // attention.output.dense, .LayerNorm
    float *iw, *ib;                     // intermediate.dense [I,H], [I]
    float *ow, *ob, *oln_w, *oln_b;     // output.dense [H,I], [H], output.LayerNorm
};

struct st_weights {
    float *word, *pos, *type, *eln_w, *eln_b;
    struct st_layer_w *layer;           // [layers]
    float *pool_w, *pool_b;             // NULL unless has_pooler
    float *mlm_w, *mlm_b, *mlm_ln_w, *mlm_ln_b, *mlm_bias; // NULL unless has_mlm
    float *proj_w, *proj_b;             // NULL unless proj_dim > 0
};

struct st_tensor {
    char name[96];
    int n_dims;
    int64_t dims[2];
    size_t offset, numel;               // in floats, into the blocks
    bool decay;                         // AdamW weight decay applies (not biases / LayerNorm)
    bool trainable;                     // updated by the optimizer (unused heads are frozen)
};

struct st_model {
    struct st_config cfg;
    int n_tensors;
    struct st_tensor *tensors;
    size_t n_params;
    float *params, *grads, *adam_m, *adam_v; // grads/moments NULL until st_model_alloc_train
    struct st_weights w, g;
};

// Build the tensor table and allocate params (zeroed). 0 or SEMBED_E*.
int st_model_create(const struct st_config *cfg, struct st_model **out);
// Allocate grads and Adam moments (zeroed). Idempotent.
int st_model_alloc_train(struct st_model *m);
void st_model_free(struct st_model *m);
void st_model_zero_grad(struct st_model *m);
const struct st_tensor *st_model_find(const struct st_model *m, const char *name);
// Fill with the initialisation HF BERT uses: N(0, std) for matrices and embeddings, zero
// biases, LayerNorm weight 1 / bias 0. Deterministic in seed (counter-based RNG).
void st_model_init_tensor(struct st_model *m, const struct st_tensor *t, uint64_t seed, float std);
void st_model_init_random(struct st_model *m, uint64_t seed, float std);
// Read config + weights from an open .semb (f32/f16/bf16/q8_row tensors become f32). want_pooler /
// want_mlm add the heads (freshly initialised from seed when the file lacks them; *fresh_* tell).
int st_model_from_file(const struct sembed_file *f, bool want_pooler, bool want_mlm, uint64_t seed,
                       struct st_model **out, bool *fresh_pooler, bool *fresh_mlm);

// ---------------------------------------------------------------- counter-based RNG
// Stateless: a value is a pure function of (key, counter), so masks are reproducible bit for bit
// and independent of how work is split across threads. Mixer: SplitMix64's finaliser
// (Steele, Lea, Flood 2014), applied to a key derived from (seed, step, stream, layer).
static inline uint64_t st_mix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static inline uint64_t st_rng_key(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
    return st_mix64(st_mix64(st_mix64(st_mix64(seed) ^ a) ^ b) ^ c);
}
static inline uint32_t st_rng_u32(uint64_t key, uint64_t i) {
    return (uint32_t)(st_mix64(key ^ (i * 0xd1b54a32d192ed03ull)) >> 32);
}
// Uniform in [0, 1) with 24 bits.
static inline float st_rng_uniform(uint64_t key, uint64_t i) {
    return (float)(st_rng_u32(key, i) >> 8) * (1.0f / 16777216.0f);
}
// Standard normal (Box-Muller on two counters).
float st_rng_normal(uint64_t key, uint64_t i);

// Dropout streams (the "b" argument of st_rng_key).
enum st_stream { ST_DROP_EMB = 1, ST_DROP_ATTN = 2, ST_DROP_ATTN_OUT = 3, ST_DROP_FFN_OUT = 4,
                 ST_MLM_MASK = 16, ST_SHUFFLE = 17, ST_INIT = 18 };

// ---------------------------------------------------------------- activations
// One arena per st_acts (anonymous mmap, zero-filled, touched lazily, transparent huge pages
// requested), sized once for n_max x t_max: no allocation in a training step.
struct st_layer_acts {   // BT = rows (real tokens) of the packed batch
    float *qkv;            // [BT, 3H]  (q | k | v per row, biases included)
    float *p, *pd;         // per sequence and head, len x len softmax probs (at poff), after dropout
                           // (pd == p when no dropout)
    float *ctx;            // [BT, H]
    float *r1, *mean1, *rstd1, *a;  // LN1 input, stats [BT], output
    float *f;              // [BT, I] intermediate pre-activation (bias included)
    float *r2, *mean2, *rstd2, *y;  // LN2 input, stats, output (= next layer's input)
    uint8_t *m_ao, *m_ffn; // hidden-dropout keep bits after the attention output / FFN output
};

struct st_acts {
    int n_max, t_max, n_threads;
    size_t bytes;
    void *block;
    // packing of the batch of the last st_forward
    int cur_n, cur_t;                       // its n and padded t
    int32_t *off;                           // [n_max + 1] first row of each sequence; off[cur_n] = rows
    int64_t *poff;                          // [n_max + 1] first element of each sequence's heads x len x len
                                            // attention block (head h at poff[s] + h * len * len)
    int32_t *rowmap;                        // [n_max * t_max] padded input index of each row
    int64_t *grow;                          // [n_max * t_max] global row of each row (batches with row0)
    float *emb, *emb_mean, *emb_rstd, *h0;  // embedding sum, LN stats, output after dropout
    uint8_t *m_emb;                         // embedding dropout keep bits
    struct st_layer_acts *L;
    float *cls, *pooled;                    // [n, H]: pooled before MLP, after MLP (= z)
    float *z;                               // [2, n, H]: z and dz of the contrastive loss
    // backward scratch
    float *dY, *dR, *dT, *dC, *dQKV, *dF, *G;
    float *att_scratch;                     // st_att_scratch(t_max, hd) floats per thread
    size_t att_stride;
    float *parts;                           // column partial sums: ceil(BT / ST_ROWBLK) rows of part_w
    int part_w;
    float *mlm;                             // MLM head buffers (NULL without an MLM head)
    int mlm_chunk;
    // st_backward calls layer_done(layer_user, l) once layer l's gradients are complete (layers
    // run last to first); NULL: no call. Data-parallel training starts reducing them (st_dist.c).
    void (*layer_done)(void *user, int layer);
    void *layer_user;
};

int st_acts_create(const struct st_config *cfg, int n_max, int t_max, int n_threads, struct st_acts **out);
void st_acts_free(struct st_acts *a);

// Large zero-filled blocks for parameters, moments and activations: anonymous mmap (so untouched
// pages cost nothing), with transparent huge pages requested (fewer page faults and TLB misses).
void *st_big_alloc(size_t bytes);
void st_big_free(void *p, size_t bytes);

struct st_batch {
    int n, t;                // sequences, padded length
    const int32_t *ids;      // [n*t]
    const int32_t *types;    // [n*t] or NULL (all 0)
    const int32_t *lens;     // [n] valid tokens per sequence (>= 1)
    // Data-parallel shards (train/st_dist.h): where each sequence sits in the global batch, so
    // dropout counters are those of one process running the whole batch. NULL: this batch is the
    // whole batch. row0[s]: global packed row of sequence s's first token; att0[s]: global
    // counter of element (0, 0) of its first head's attention block.
    const int64_t *row0, *att0;
};

// Dropout is active when drop_key != 0: masks come from st_rng_key-derived keys (drop_key mixed
// with stream and layer), keep with probability 1-p, kept values scaled by 1/(1-p).
void st_forward(const struct st_model *m, struct st_acts *a, const struct st_batch *b, uint64_t drop_key,
                int n_threads);
// Last hidden state [rows, H] after st_forward (packed rows, see above).
float *st_last_hidden(const struct st_model *m, const struct st_acts *a);
// Rows of the packed batch of the last st_forward (sum of lens); row of padded index seq*t + pos.
int st_acts_rows(const struct st_acts *a);
static inline int st_acts_row(const struct st_acts *a, int padded) {
    return a->off[padded / a->cur_t] + padded % a->cur_t;
}
// dlast: gradient w.r.t. the last hidden state [rows, H] (consumed: used as scratch). Same
// drop_key and batch as the forward. Accumulates into m->grads.
void st_backward(struct st_model *m, struct st_acts *a, const struct st_batch *b, float *dlast, uint64_t drop_key,
                 int n_threads);

enum st_pool { ST_POOL_CLS = 0, ST_POOL_CLS_BEFORE_POOLER = 1, ST_POOL_MEAN = 2 };
// z[n, H] from the last hidden state; mlp: apply pooler.dense + tanh (SimCSE's MLP).
void st_pool_forward(const struct st_model *m, struct st_acts *a, const struct st_batch *b, enum st_pool mode,
                     bool mlp, float *z, int n_threads);
// dz[n, H] -> dlast (overwritten, [rows, H]); pooler grads accumulated.
void st_pool_backward(struct st_model *m, struct st_acts *a, const struct st_batch *b, enum st_pool mode, bool mlp,
                      const float *dz, float *dlast, int n_threads);

// InfoNCE over in-batch negatives (SimCSE, Gao et al. 2021, eq. 1 and 5). z rows: [0,B) anchors,
// [B,2B) positives, [2B,3B) hard negatives when hard_neg. Logits = cos / temp; the hard negative
// of row i gets + hn_weight (logit space). Returns the mean loss; dz = weight * dLoss/dz.
double st_infonce(const float *z, int B, int H, bool hard_neg, float temp, float hn_weight, float weight,
                  float *dz);

// MLM head + cross-entropy on the masked rows of the last hidden state (HF BertForMaskedLM:
// transform dense + act + LayerNorm, decoder tied to the word embeddings, plus bias). rows[M]:
// padded indices seq*t + pos of the batch of the last st_forward; labels[M]: original ids. Returns the mean loss over M (0 when M == 0);
// adds weight * dLoss/dlast into dlast and accumulates head grads (dlast NULL: loss only).
// Buffers come from a's arena (a must have been created with the MLM head; M <= its rows).
double st_mlm_loss(struct st_model *m, struct st_acts *a, const float *last, int M, const int32_t *rows,
                   const int32_t *labels, float weight, float *dlast, int n_threads);
// The same with the mean taken over M_norm >= M positions: returns (sum of the M losses) / M_norm
// and scales gradients by weight / M_norm. Data-parallel MLM (train/st_dist.c): a rank passes its
// local M rows and the global batch's count, so every token gets the gradient one process gives it.
double st_mlm_loss_n(struct st_model *m, struct st_acts *a, const float *last, int M, const int32_t *rows,
                     const int32_t *labels, int M_norm, float weight, float *dlast, int n_threads);

// ---------------------------------------------------------------- one training objective
struct st_objective {
    bool contrastive;           // InfoNCE on pooled views (unsup / sup)
    enum st_pool pool;
    bool mlp;                   // pooler.dense + tanh on top of the pooled vector while training
    float temp, hn_weight;
    bool mlm;                   // MLM loss on st_step_data.mlm (alone, or auxiliary to contrastive)
    float mlm_weight;           // weight of the auxiliary MLM loss (1 when MLM alone)
    // Distillation (train/distill.c): the pooled anchors z[0, B) against teacher rows.
    bool distill;
    float cl_weight;            // weight of InfoNCE when distill (0: no contrastive term)
    float mse_weight;           // MSE(proj(z), teacher); proj = pooling.dense.0 when the model has one
    float rel_weight;           // KL(teacher || student) of in-batch cosine-similarity softmaxes
    float rel_temp;             // temperature of the relational loss
    float sim_weight;           // MSE between the in-batch cosine matrices, student vs teacher
};

// Weight of the MLM loss: 1 when it is the only objective, else mlm_weight (auxiliary to InfoNCE
// or to distillation, whether or not distillation adds InfoNCE).
static inline float st_mlm_weight(const struct st_objective *o) {
    return o->contrastive || o->distill ? o->mlm_weight : 1.0f;
}

struct st_step_data {
    struct st_batch cl;         // k*B sequences, view-major: [0,B) anchors, [B,2B) positives, [2B,3B) hard neg
    int B;
    bool hard_neg;
    struct st_batch mlm;        // masked inputs
    int M;                      // masked positions
    int M_total;                // data-parallel: masked positions of the global batch (the mean's denominator)
    const int32_t *mlm_rows, *mlm_labels;
    const float *teacher;       // distill: [B, teacher_dim] rows of the anchors
    int teacher_dim;
};

// Loss (and, with backward, gradients accumulated into m->grads) of one batch. drop_key_* == 0
// disables dropout for that pass. cl_loss / mlm_loss (may be NULL) receive the parts.
double st_loss_and_grad(struct st_model *m, struct st_acts *a, const struct st_objective *o,
                        const struct st_step_data *d, uint64_t drop_key_cl, uint64_t drop_key_mlm, bool backward,
                        int n_threads, double *cl_loss, double *mlm_loss);

// ---------------------------------------------------------------- distillation (train/distill.c)
// MSE (sentence-transformers MSELoss: mean over B x D of (y - t)^2) with y = proj(z) when the
// model has a projection (else y = z, D == H), and the relational loss
//   (1/B) sum_i KL(softmax_{j != i}(cos(t_i, t_j) / temp) || softmax_{j != i}(cos(z_i, z_j) / temp)).
// z: [B, H] pooled anchors; adds w * dLoss/dz into dz and accumulates the projection's grads.
// Returns the weighted sum; *mse / *rel receive the unweighted parts (may be NULL).
double st_distill_loss(struct st_model *m, const float *z, int B, const float *teacher, int D,
                       const struct st_objective *o, float *dz, bool backward, double *mse, double *rel);
// The same; with param_grads false the projection's gradients are not accumulated (dz still is).
// Data-parallel ranks evaluate the loss of the gathered global batch and only rank 0 adds the
// projection's gradient (train/st_dist.c), so the sum over ranks counts each row once.
double st_distill_loss_ex(struct st_model *m, const float *z, int B, const float *teacher, int D,
                          const struct st_objective *o, float *dz, bool backward, bool param_grads, double *mse,
                          double *rel);
// y[n, P] = z[n, H] W^T + b (the projection); P = proj_dim.
void st_proj_forward(const struct st_model *m, const float *z, int n, float *y);
// A copy of m with a projection [D, H] added (fresh: N(0, 1e-3), bias 0, seeded), every
// other tensor copied; *m is freed and replaced. No-op when m already has proj_dim == D.
int st_model_add_proj(struct st_model **m, int D, uint64_t seed);

// Teacher vectors: a .npy of float32 (rows, dim), mapped read-only.
struct st_teacher {
    size_t rows;
    int dim;
    const unsigned char *data;  // rows x dim float32, possibly unaligned (copy rows with memcpy)
    void *map;
    size_t map_len;
};
// Open and validate path; expect_rows (the number of training rows) must equal its rows.
int st_teacher_open(const char *path, size_t expect_rows, struct st_teacher **out);
void st_teacher_free(struct st_teacher *t);
// Copy row r into dst[dim].
void st_teacher_row(const struct st_teacher *t, size_t r, float *dst);

// ---------------------------------------------------------------- optimizer
struct st_adamw {
    float lr, beta1, beta2, eps, weight_decay;
};
// One AdamW step (torch.optim.AdamW semantics; t = 1-based step for bias correction).
void st_adamw_step(struct st_model *m, const struct st_adamw *o, float lr, int64_t t, int n_threads);
// The same with the gradient-clipping coefficient folded in (g * grad_scale, the float product
// torch.nn.utils.clip_grad_norm_ leaves in .grad) and, with zero_grad, the gradients of the
// updated tensors zeroed as they are consumed (saves a pass over the gradient block).
void st_adamw_step_ex(struct st_model *m, const struct st_adamw *o, float lr, int64_t t, float grad_scale,
                      bool zero_grad, int n_threads);
// L2 norm of all trainable gradients (double; fixed chunking, independent of the thread count).
double st_grad_norm(struct st_model *m, int n_threads);
// torch.nn.utils.clip_grad_norm_'s coefficient for a norm: min(1, max_norm / (norm + 1e-6)), as
// float; 1 when max_norm <= 0.
float st_clip_coef(double norm, float max_norm);
// L2 norm of all trainable gradients (double, fixed order); if max_norm > 0 scale grads by
// max_norm / (norm + 1e-6) when that is < 1 (torch.nn.utils.clip_grad_norm_). Returns the norm.
double st_clip_grad(struct st_model *m, float max_norm, int n_threads);
// HF get_linear_schedule_with_warmup: lr at 0-based step.
float st_lr_at(float lr, int64_t step, int64_t warmup, int64_t total);

#endif
