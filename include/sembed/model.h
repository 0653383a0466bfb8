/*
 * sembed/model.h: load a .semb sentence encoder and turn text into embeddings.
 *
 * Contract
 *  - A model is loaded once (read-only mmap of the .semb file) and may be shared by any number of
 *    threads. Loading reads only the header, the hyper-parameters, the tokenizer and the small 1-D
 *    parameters; each layer's Linear weights are packed into the layout the active kernels want
 *    the first time a forward pass reaches that layer (once per model, thread-safe), so loading
 *    costs milliseconds and the first embedding call pays the packing.
 *  - Arithmetic (sembed_compute): f32, or int8 Linear layers in the encoder (weights int8 per
 *    output row, activations quantized per token at run time, int32 accumulation; LayerNorm,
 *    softmax, attention products, embeddings, pooler and Dense layers stay f32; docs/int8.md).
 *    By default a file whose Linear weights are q8_row (`sembed convert --dtype q8`) runs int8,
 *    any other file runs f32.
 *  - A context holds all per-call state: one arena sized at creation for params.batch_tokens
 *    tokens, so embedding never allocates. A context is used by one thread at a time; make one
 *    per thread. A context may itself use params.n_threads OpenMP threads inside each call.
 *  - Embeddings go to caller-provided buffers: n rows of sembed_model_dim() floats, row-major,
 *    in input order.
 *  - Batch invariance: the embedding of an input is bit-identical whatever else is in the call,
 *    whatever batch_size, batch_tokens and n_threads are (for a given model, kernel ISA, and
 *    pooling / normalize / max_length settings). Sequences are packed without padding; attention
 *    runs per sequence; no reduction ever spans rows.
 *  - Over-long inputs are truncated to max_length tokens ([CLS]/[SEP] included; pairs cut the
 *    longer side first, as HF's longest_first) and counted in the context stats, unless
 *    truncate == SEMBED_TRUNCATE_ERROR, which fails the call with SEMBED_ETOOLONG.
 *  - Invalid UTF-8 is not an error: see sembed/tokenizer.h.
 *
 * Example
 *     struct sembed_model *m;
 *     if (sembed_model_load("model.semb", NULL, &m)) return 1;   // NULL: default params
 *     struct sembed_context_params cp = sembed_context_default_params();
 *     cp.n_threads = 4;
 *     struct sembed_context *ctx;
 *     if (sembed_context_create(m, &cp, &ctx)) { sembed_model_free(m); return 1; }
 *     const char *texts[] = {"a man is playing a guitar.", "a woman is slicing an onion."};
 *     float *emb = malloc(2 * sembed_model_dim(m) * sizeof(float));
 *     int rc = sembed_embed_texts(ctx, texts, 2, emb);          // emb[i * dim + j]
 *     ...
 *     free(emb);
 *     sembed_context_free(ctx);
 *     sembed_model_free(m);
 */
#ifndef SEMBED_MODEL_H
#define SEMBED_MODEL_H

#include <stdbool.h>
#include "sembed/common.h"
#include "sembed/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sembed_file;
struct sembed_model;
struct sembed_context;

/* How token states become one vector (docs/runtime.md). DEFAULT = what the file's pooling.mode says. */
enum sembed_pooling {
    SEMBED_POOLING_DEFAULT = 0,
    SEMBED_POOLING_CLS = 1,               /* [CLS] state, through the pooler dense+tanh when the model has one */
    SEMBED_POOLING_CLS_BEFORE_POOLER = 2, /* [CLS] state of the last layer */
    SEMBED_POOLING_MEAN = 3,              /* mean over the input's tokens (padding never counts) */
    SEMBED_POOLING_MAX = 4,               /* element-wise max over the input's tokens */
    SEMBED_POOLING_FIRST_LAST_AVG = 5     /* SimCSE: mean over tokens of (embedding output + last layer) / 2 */
};
/* "cls", "cls_before_pooler", "mean", "max", "first_last_avg" ("default" for DEFAULT; "?" if unknown). */
SEMBED_API const char *sembed_pooling_name(enum sembed_pooling p);
/* Parse one of the names above (not "default"); SEMBED_EINVAL if unknown. */
SEMBED_API int sembed_pooling_parse(const char *name, enum sembed_pooling *out);

enum sembed_normalize { SEMBED_NORMALIZE_DEFAULT = 0, SEMBED_NORMALIZE_ON = 1, SEMBED_NORMALIZE_OFF = 2 };

/* Arithmetic of the encoder's Linear layers. AUTO: INT8 when the file's Linear weights are q8_row,
 * else F32. F32 on a q8_row file dequantizes the weights; INT8 on a float file quantizes them per
 * output row at packing time. */
enum sembed_compute { SEMBED_COMPUTE_F32 = 0, SEMBED_COMPUTE_INT8 = 1, SEMBED_COMPUTE_AUTO = 2 };
/* "f32", "int8", "auto" ("?" if unknown). */
SEMBED_API const char *sembed_compute_name(enum sembed_compute c);
/* Parse "f32", "int8" or "auto"; SEMBED_EINVAL if unknown. */
SEMBED_API int sembed_compute_parse(const char *name, enum sembed_compute *out);

/* ---------------------------------------------------------------- model */

struct sembed_model_params {
    enum sembed_compute compute; /* SEMBED_COMPUTE_AUTO */
    /* Recompute every tensor checksum at load (false). Costs one full read of the file (about
     * 0.1 s per 100 MB); the header and directory are always checksummed. `sembed inspect
     * --verify` and `sembed embed --verify` do it on demand. */
    bool verify_checksums;
    /* Pack every layer's weights during load instead of on first use (false). Loading then takes
     * as long as packing; the first embedding call does not. */
    bool pack_eagerly;
};
SEMBED_API struct sembed_model_params sembed_model_default_params(void);

/* Open path (mmap, validated by sembed_file_open), check every hyper-parameter and tensor shape,
 * dtype and size, and build the tokenizer; weights are packed on first use (see the contract). params may be NULL (defaults). Errors name the key
 * or tensor and expected vs found through the log callback. */
SEMBED_API int sembed_model_load(const char *path, const struct sembed_model_params *params,
                                 struct sembed_model **out);
/* Same from an open file, which the model borrows: f must outlive the model. */
SEMBED_API int sembed_model_load_file(const struct sembed_file *f, const struct sembed_model_params *params,
                                      struct sembed_model **out);
SEMBED_API void sembed_model_free(struct sembed_model *m);

SEMBED_API uint32_t sembed_model_dim(const struct sembed_model *m);         /* floats per embedding (after Dense layers) */
SEMBED_API uint32_t sembed_model_hidden_size(const struct sembed_model *m); /* floats per token state */
SEMBED_API uint32_t sembed_model_num_layers(const struct sembed_model *m);
SEMBED_API uint32_t sembed_model_max_length(const struct sembed_model *m);  /* tokens incl. [CLS]/[SEP] */
SEMBED_API enum sembed_pooling sembed_model_pooling(const struct sembed_model *m); /* the file's pooling.mode */
SEMBED_API bool sembed_model_normalize(const struct sembed_model *m);              /* the file's pooling.normalize */
SEMBED_API bool sembed_model_has_pooler(const struct sembed_model *m);
/* Cross-encoders (a sequence-classification head, classifier.* in docs/format.md): the number of
 * scores per input; 0 for an embedding model. For such a model sembed_model_dim() == num_labels
 * and the embed calls return scores. */
SEMBED_API uint32_t sembed_model_num_labels(const struct sembed_model *m);
/* The arithmetic in effect (F32 or INT8; AUTO resolved at load). */
SEMBED_API enum sembed_compute sembed_model_compute(const struct sembed_model *m);
SEMBED_API const struct sembed_tokenizer *sembed_model_tokenizer(const struct sembed_model *m);
SEMBED_API const struct sembed_file *sembed_model_file(const struct sembed_model *m);

/* ---------------------------------------------------------------- context */

struct sembed_context_params {
    enum sembed_pooling pooling;     /* DEFAULT: the file's */
    enum sembed_normalize normalize; /* DEFAULT: the file's */
    uint32_t max_length;             /* tokens incl. specials; 0 = model max; larger than the model max is EINVAL */
    enum sembed_truncate truncate;   /* SEMBED_TRUNCATE_LONGEST_FIRST */
    int32_t n_threads;               /* 0 = OpenMP's default (all cores, or OMP_NUM_THREADS) */
    uint32_t batch_size;             /* inputs tokenized and embedded together; 0 = 32 */
    uint32_t batch_tokens;           /* tokens per forward pass, sizes the arena; 0 = max(2048, max_length) */
};
SEMBED_API struct sembed_context_params sembed_context_default_params(void);

/* The model must outlive the context. params may be NULL (defaults). */
SEMBED_API int sembed_context_create(const struct sembed_model *m, const struct sembed_context_params *params,
                                     struct sembed_context **out);
SEMBED_API void sembed_context_free(struct sembed_context *ctx);

/* The settings in effect (defaults resolved). */
SEMBED_API enum sembed_pooling sembed_context_pooling(const struct sembed_context *ctx);
SEMBED_API bool sembed_context_normalize(const struct sembed_context *ctx);
SEMBED_API uint32_t sembed_context_max_length(const struct sembed_context *ctx);
SEMBED_API int32_t sembed_context_n_threads(const struct sembed_context *ctx);
SEMBED_API size_t sembed_context_arena_bytes(const struct sembed_context *ctx);

/* Counters accumulated over the context's calls (reset with sembed_context_stats_reset). */
struct sembed_embed_stats {
    uint64_t n_inputs;    /* inputs embedded */
    uint64_t n_truncated; /* of which cut to max_length */
    uint64_t n_tokens;    /* tokens run through the encoder, [CLS]/[SEP] included */
    uint64_t n_passes;    /* forward passes */
};
SEMBED_API void sembed_context_stats(const struct sembed_context *ctx, struct sembed_embed_stats *out);
SEMBED_API void sembed_context_stats_reset(struct sembed_context *ctx);

/* ---------------------------------------------------------------- embedding */

/* One input: text a, optionally paired with text b ([CLS] a [SEP] b [SEP], token types 0/1).
 * Lengths in bytes; SIZE_MAX means NUL-terminated. b == NULL: a single text. */
struct sembed_input {
    const char *a;
    size_t a_len;
    const char *b;
    size_t b_len;
};

/* Embed n inputs into out[n * sembed_model_dim()]. n == 0 is a no-op. On failure the contents of
 * out are unspecified and the log names the failing input's index. */
SEMBED_API int sembed_embed_inputs(struct sembed_context *ctx, const struct sembed_input *in, size_t n, float *out);
/* NUL-terminated texts. */
SEMBED_API int sembed_embed_texts(struct sembed_context *ctx, const char *const *texts, size_t n, float *out);
/* NUL-terminated pairs a[i], b[i] (b[i] may be NULL: that input is a single text). */
SEMBED_API int sembed_embed_pairs(struct sembed_context *ctx, const char *const *a, const char *const *b, size_t n,
                                  float *out);

/* Score n (query, document) pairs with a cross-encoder: each pair is one input
 * ([CLS] query [SEP] doc [SEP], truncated longest-first), and scores[i * num_labels + k] receives
 * label k's score for docs[i]: the checkpoint's activation (sigmoid for one-label rerankers,
 * classifier.activation) unless raw_logits. Results do not depend on n or on the other documents.
 * SEMBED_EUNSUPPORTED when the model has no classifier head. */
SEMBED_API int sembed_rerank(struct sembed_context *ctx, const char *query, const char *const *docs, size_t n,
                             bool raw_logits, float *scores);
/* Whether ctx's embed calls on a cross-encoder return raw logits (true) or the checkpoint's
 * activation of them (false, the default): for callers that tokenize pairs themselves and use
 * sembed_embed_ids (a server's batcher). SEMBED_EUNSUPPORTED when the model has no classifier head. */
SEMBED_API int sembed_context_set_raw_scores(struct sembed_context *ctx, bool raw_logits);

/* Already tokenized input: ids including [CLS]/[SEP] (n of them, 1..max_length), token types
 * (NULL = all 0). No truncation: longer than the context's max_length is SEMBED_ETOOLONG; an id
 * outside the vocabulary or a type outside [0, type_vocab_size) is SEMBED_EINVAL (models without token
 * types, such as converted DistilBERTs, ignore type_ids). */
struct sembed_ids {
    const int32_t *ids;
    const int32_t *type_ids;
    uint32_t n;
};
SEMBED_API int sembed_embed_ids(struct sembed_context *ctx, const struct sembed_ids *in, size_t n, float *out);

/* Token states of one tokenized input: last_hidden[in->n * hidden_size] (may be NULL) and
 * all_hidden[(num_layers + 1) * in->n * hidden_size] (may be NULL): state l = 0 is the embedding
 * output (after its LayerNorm), l = num_layers the last layer, as HF's hidden_states. */
SEMBED_API int sembed_encode_ids(struct sembed_context *ctx, const struct sembed_ids *in, float *last_hidden,
                                 float *all_hidden);

#ifdef __cplusplus
}
#endif
#endif /* SEMBED_MODEL_H */
