// runtime/model_internal.h: the model and context structures shared by model.c, encoder.c,
// pooling.c and batch.c (internal; the public API is include/sembed/model.h).
#ifndef SEMBED_MODEL_INTERNAL_H
#define SEMBED_MODEL_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/kernels/kernels.h"
#include "sembed/model.h"
#include "sembed/semb.h"

// An embedding table used in place from the mapping: rows x cols of f32, f16, bf16 or q8_row.
struct se_table {
    enum sembed_dtype dtype;
    const void *data;
    int64_t rows, cols;
};

// A Linear layer as the file holds it (validated at load), packed for the kernels on first use.
// n_parts > 1 stacks that many [n_out / n_parts, n_in] tensors of one dtype along the output
// rows (Q, K and V fused into one [3H, H] Linear, so the input is read and quantized once; each
// output element's dot product is exactly what it would be alone).
struct se_lin {
    struct sk_linear *k;     // packed; NULL until se_model_pack (or when the layer is absent)
    const void *w[3];        // weight bytes in the mapping, one per part
    enum sembed_dtype dtype;
    const float *bias;       // [n_out] f32 or NULL (n_parts == 1)
    const float *bias_part[3]; // n_parts > 1: each part's bias [n_out / n_parts], or NULL
    int n_out, n_in, n_parts;
    enum sk_mode mode;
    const char *name;        // first part's tensor name, for messages
};

struct se_layer {
    struct se_lin qkv;          // fused [3H, H] when q, k, v share a dtype (n_parts 3), else absent
    struct se_lin q, k, v;      // used when qkv is absent (qkv.n_parts == 0)
    struct se_lin attn_out;     // [H, H]
    struct se_lin ffn_in;       // [I, H]
    struct se_lin ffn_out;      // [H, I]
    const float *ln1_g, *ln1_b, *ln2_g, *ln2_b; // [H], f32 (in the mapping, or owned decoded copies)
};

// Mutable state behind a logically read-only model: packing happens once, on first use.
struct se_pack_state {
    pthread_mutex_t lock;
    atomic_bool done;
    int rc; // result of the packing, kept so every later call reports the same failure
};

struct sembed_model {
    const struct sembed_file *file;
    struct sembed_file *owned_file; // set when loaded from a path
    struct sembed_tokenizer *tok;
    uint32_t vocab, H, L, n_heads, I, max_pos, type_vocab, max_length;
    uint32_t pos_offset; // bert.position_offset: position id of a sequence's first token (RoBERTa: pad id + 1)
    // MPNet: one relative-position bias table shared by every layer, added to the attention
    // scores: bias(h, i, j) = rel_bias[rel_bucket[j - i + max_length - 1] * n_heads + h].
    uint32_t rel_buckets;      // 0: no relative attention bias
    const float *rel_bias;     // [rel_buckets, n_heads] f32
    int32_t *rel_bucket;       // [2 * max_length - 1], owned
    float eps;
    enum sk_act act;
    struct se_table word, pos, type; // type.data == NULL when type_vocab == 0
    const float *emb_ln_g, *emb_ln_b;
    struct se_layer *layers;
    struct se_lin *pooler;    // NULL when absent
    uint32_t n_dense;
    struct se_lin *dense;
    enum sk_act *dense_act;
    // Sequence-classification head (cross-encoders): classifier.num_labels > 0. BERT: pooler ->
    // classifier; RoBERTa: [CLS] -> classifier.dense (tanh) -> classifier.out_proj. dim = num_labels.
    uint32_t num_labels;
    uint32_t n_cls;            // Linear layers of the head after the [CLS] row (and the pooler): 1 or 2
    struct se_lin *cls_lin;    // [2], allocated with the head
    enum sk_act cls_act[2];
    int cls_out;               // SE_CLS_OUT_*: what turns logits into scores
    uint32_t dim;     // floats per final embedding
    uint32_t max_dim; // widest vector in the pooling pipeline (H or a Dense width)
    enum sembed_pooling pooling;
    bool normalize;
    float **owned; // decoded f32 copies of f16/bf16 1-D parameters, freed with the model
    size_t n_owned, cap_owned;
    enum sembed_compute compute; // resolved: F32 or INT8
    struct se_pack_state *pack;
};

// model.c: pack every Linear layer for the kernels if not done yet (thread-safe; the first caller
// packs with up to n_threads threads, later callers return at once). Returns the packing status.
int se_model_pack(const struct sembed_model *m, int n_threads);

// A packed batch: n_seq sequences laid end to end, no padding; sequence s is tokens
// [offs[s], offs[s + 1]) of ids/types.
struct se_batch {
    int n_seq;
    const int32_t *ids, *types;
    const int *offs;
};

struct sembed_context {
    const struct sembed_model *m;
    enum sembed_pooling pooling;
    bool normalize;
    bool cls_raw; // classifier models: leave the logits raw (sembed_rerank's raw_logits)
    uint32_t max_length, batch_size, batch_tokens;
    enum sembed_truncate truncate;
    int n_threads;
    struct sembed_embed_stats stats;

    void *arena;
    size_t arena_bytes;
    // Token-major activations, [batch_tokens, width].
    float *x;   // hidden state, H
    float *t1;  // pre-LayerNorm sums, H
    float *att; // attention output, H
    float *big; // QKV (3H) then FFN (I)
    float *h0;  // embedding output kept for first_last_avg, H (NULL otherwise)
    void *scores;         // per thread: att_scratch_bytes of sk_attention_f32 scratch
    size_t att_scratch_bytes;
    float *pool_a, *pool_b; // [batch_size, max_dim]
    void *lin_scratch;
    size_t scratch_bytes;
    // Tokenization slots: input i of a chunk at slot_ids + i * max_length.
    int32_t *slot_ids, *slot_types;
    uint32_t *slot_len;
    int *slot_rc;
    unsigned char *slot_cut;
    // The packed batch.
    int32_t *pk_ids, *pk_types;
    int *offs; // batch_size + 1
};

// encoder.c: run the encoder over a packed batch. Leaves the last hidden state in ctx->x and,
// when ctx->h0 != NULL, the embedding output in ctx->h0. all_hidden (optional) receives
// (L + 1) * T * H floats, T = b->offs[b->n_seq]. The caller has validated ids, types, lengths.
// Returns 0, or the status of packing the weights on first use (SEMBED_ENOMEM).
int se_encoder_forward(struct sembed_context *ctx, const struct se_batch *b, float *all_hidden);

// pooling.c: pool each sequence of the batch, run the Dense layers, normalize; out receives
// b->n_seq rows of m->dim floats (row stride m->dim).
// The model must be packed (se_encoder_forward does it).
void se_pool(struct sembed_context *ctx, const struct se_batch *b, float *out);

enum { SE_CLS_OUT_IDENTITY = 0, SE_CLS_OUT_SIGMOID = 1, SE_CLS_OUT_SOFTMAX = 2 };

// model.c: MPNet's (T5-style, bidirectional) bucket of the relative position d = key - query.
int32_t se_rel_bucket(int32_t d, uint32_t num_buckets, uint32_t max_distance);

// model.c: the sk_act of a pooling.dense activation name; -1 if unknown.
int se_dense_act_from_name(const char *name);

#endif
