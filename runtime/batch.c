// The embedding driver: tokenize a chunk of inputs (in parallel) into per-input slots, pack
// them end to end into forward passes of at most batch_tokens tokens, encode, pool, and write
// each result to its input's row. Packing instead of padding means no token is wasted, so no
// length sorting or bucketing is needed; attention cost is per sequence (sum of n_i^2).
#include <limits.h>
#include <string.h>

#include "formats/log.h"
#include "runtime/model_internal.h"
#include "sembed/tokenizer.h"

// Encode and pool slots [0, cnt) of the context; results go to out rows [0, cnt).
static int run_slots(struct sembed_context *ctx, uint32_t cnt, float *out, const char *fn) {
    const struct sembed_model *m = ctx->m;
    uint32_t i = 0;
    while (i < cnt) {
        int T = 0, s = 0;
        ctx->offs[0] = 0;
        while (i < cnt && (uint32_t)T + ctx->slot_len[i] <= ctx->batch_tokens) {
            uint32_t n = ctx->slot_len[i];
            memcpy(ctx->pk_ids + T, ctx->slot_ids + (size_t)i * ctx->max_length, n * sizeof(int32_t));
            memcpy(ctx->pk_types + T, ctx->slot_types + (size_t)i * ctx->max_length, n * sizeof(int32_t));
            T += (int)n;
            ctx->offs[++s] = T;
            i++;
        }
        struct se_batch b = {.n_seq = s, .ids = ctx->pk_ids, .types = ctx->pk_types, .offs = ctx->offs};
        int rc = se_encoder_forward(ctx, &b, NULL);
        if (rc) return sembed_fail(rc, fn, "cannot prepare the model's weights (%s)", sembed_strerror(rc));
        se_pool(ctx, &b, out);
        out += (size_t)s * m->dim;
        ctx->stats.n_tokens += (uint64_t)T;
        ctx->stats.n_passes++;
    }
    return SEMBED_OK;
}

SEMBED_API int sembed_embed_inputs(struct sembed_context *ctx, const struct sembed_input *in, size_t n, float *out) {
    static const char fn[] = "sembed_embed_inputs";
    if (!ctx) return SEMBED_EINVAL;
    if (n == 0) return SEMBED_OK;
    if (!in || !out) return sembed_fail(SEMBED_EINVAL, fn, "inputs or output buffer is NULL");
    const struct sembed_tokenizer *tok = ctx->m->tok;
    const uint32_t ML = ctx->max_length;
    for (size_t start = 0; start < n; start += ctx->batch_size) {
        const uint32_t cnt = (uint32_t)(n - start < ctx->batch_size ? n - start : ctx->batch_size);
        const struct sembed_input *chunk = in + start;
#pragma omp parallel for num_threads(ctx->n_threads) schedule(dynamic, 1) if (cnt > 1)
        for (uint32_t i = 0; i < cnt; i++) {
            bool cut = false;
            const struct sembed_input *x = &chunk[i];
            if (!x->a) {
                ctx->slot_rc[i] = SEMBED_EINVAL;
                continue;
            }
            ctx->slot_rc[i] = sembed_tokenizer_encode_input(tok, x->a, x->a_len, x->b, x->b_len, ML, ctx->truncate,
                                                            ctx->slot_ids + (size_t)i * ML,
                                                            ctx->slot_types + (size_t)i * ML, &ctx->slot_len[i], &cut);
            ctx->slot_cut[i] = cut;
            if (ctx->slot_rc[i] == SEMBED_OK && (ctx->slot_len[i] < 1 || ctx->slot_len[i] > ML))
                ctx->slot_rc[i] = SEMBED_ECORRUPT; // tokenizer contract broken: never run out of bounds
            // A model with fewer than two token types (RoBERTa, XLM-R, DistilBERT) gives a pair's
            // second text type 0, as RobertaProcessing does; never index past its type table.
            if (ctx->slot_rc[i] == SEMBED_OK && ctx->m->type_vocab < 2)
                memset(ctx->slot_types + (size_t)i * ML, 0, ctx->slot_len[i] * sizeof(int32_t));
        }
        for (uint32_t i = 0; i < cnt; i++) {
            int rc = ctx->slot_rc[i];
            if (rc == SEMBED_ETOOLONG)
                return sembed_fail(rc, fn, "input %zu is longer than max_length %u tokens (truncation is off)",
                                   start + i, ML);
            if (rc) return sembed_fail(rc, fn, "input %zu: %s", start + i, chunk[i].a ? sembed_strerror(rc) : "text is NULL");
            ctx->stats.n_truncated += ctx->slot_cut[i];
        }
        int rc = run_slots(ctx, cnt, out + start * ctx->m->dim, fn);
        if (rc) return rc;
        ctx->stats.n_inputs += cnt;
    }
    return SEMBED_OK;
}

SEMBED_API int sembed_embed_texts(struct sembed_context *ctx, const char *const *texts, size_t n, float *out) {
    return sembed_embed_pairs(ctx, texts, NULL, n, out);
}

SEMBED_API int sembed_rerank(struct sembed_context *ctx, const char *query, const char *const *docs, size_t n,
                             bool raw_logits, float *scores) {
    static const char fn[] = "sembed_rerank";
    if (!ctx) return SEMBED_EINVAL;
    if (!ctx->m->num_labels)
        return sembed_fail(SEMBED_EUNSUPPORTED, fn, "the model has no classifier head (classifier.num_labels): "
                           "it embeds, it does not score pairs");
    if (n == 0) return SEMBED_OK;
    if (!query || !docs || !scores) return sembed_fail(SEMBED_EINVAL, fn, "query, documents or scores is NULL");
    enum { CHUNK = 64 };
    struct sembed_input buf[CHUNK];
    int rc = SEMBED_OK;
    const bool prev = ctx->cls_raw; // sembed_context_set_raw_scores' setting, restored after
    ctx->cls_raw = raw_logits;
    for (size_t start = 0; start < n && rc == SEMBED_OK; start += CHUNK) {
        size_t cnt = n - start < CHUNK ? n - start : CHUNK;
        for (size_t i = 0; i < cnt; i++) {
            if (!docs[start + i]) {
                ctx->cls_raw = prev;
                return sembed_fail(SEMBED_EINVAL, fn, "document %zu is NULL", start + i);
            }
            buf[i] = (struct sembed_input){query, SIZE_MAX, docs[start + i], SIZE_MAX};
        }
        rc = sembed_embed_inputs(ctx, buf, cnt, scores + start * ctx->m->num_labels);
    }
    ctx->cls_raw = prev;
    return rc;
}

SEMBED_API int sembed_context_set_raw_scores(struct sembed_context *ctx, bool raw_logits) {
    if (!ctx) return sembed_fail(SEMBED_EINVAL, "sembed_context_set_raw_scores", "NULL context");
    if (!ctx->m->num_labels)
        return sembed_fail(SEMBED_EUNSUPPORTED, "sembed_context_set_raw_scores",
                           "the model has no classifier head (classifier.num_labels): it has no scores");
    ctx->cls_raw = raw_logits;
    return SEMBED_OK;
}

SEMBED_API int sembed_embed_pairs(struct sembed_context *ctx, const char *const *a, const char *const *b, size_t n,
                                  float *out) {
    if (!ctx) return SEMBED_EINVAL;
    if (n == 0) return SEMBED_OK;
    if (!a || !out) return sembed_fail(SEMBED_EINVAL, b ? "sembed_embed_pairs" : "sembed_embed_texts",
                                       "texts or output buffer is NULL");
    // Small stack chunks keep this allocation-free; results are independent of the chunking.
    enum { CHUNK = 64 };
    struct sembed_input buf[CHUNK];
    for (size_t start = 0; start < n; start += CHUNK) {
        size_t cnt = n - start < CHUNK ? n - start : CHUNK;
        for (size_t i = 0; i < cnt; i++)
            buf[i] = (struct sembed_input){a[start + i], SIZE_MAX, b ? b[start + i] : NULL, SIZE_MAX};
        int rc = sembed_embed_inputs(ctx, buf, cnt, out + start * ctx->m->dim);
        if (rc) return rc;
    }
    return SEMBED_OK;
}

// Validate a tokenized input against the model; copy it into slot i.
static int load_ids(struct sembed_context *ctx, const struct sembed_ids *x, size_t idx, uint32_t slot, const char *fn) {
    const struct sembed_model *m = ctx->m;
    if (!x->ids || x->n == 0) return sembed_fail(SEMBED_EINVAL, fn, "input %zu has no tokens", idx);
    if (x->n > ctx->max_length)
        return sembed_fail(SEMBED_ETOOLONG, fn, "input %zu has %u tokens; max_length is %u", idx, x->n, ctx->max_length);
    int32_t *ids = ctx->slot_ids + (size_t)slot * ctx->max_length, *types = ctx->slot_types + (size_t)slot * ctx->max_length;
    for (uint32_t t = 0; t < x->n; t++) {
        if (x->ids[t] < 0 || (uint32_t)x->ids[t] >= m->vocab)
            return sembed_fail(SEMBED_EINVAL, fn, "input %zu token %u: id %d is outside the vocabulary [0, %u)", idx, t,
                               x->ids[t], m->vocab);
        // A model without token types (DistilBERT) ignores them, as HF does, so pair input works.
        int32_t ty = x->type_ids && m->type_vocab ? x->type_ids[t] : 0;
        uint32_t n_types = m->type_vocab;
        if (n_types && (ty < 0 || (uint32_t)ty >= n_types))
            return sembed_fail(SEMBED_EINVAL, fn, "input %zu token %u: token type %d is outside [0, %u)", idx, t, ty,
                               n_types);
        ids[t] = x->ids[t];
        types[t] = ty;
    }
    ctx->slot_len[slot] = x->n;
    return SEMBED_OK;
}

SEMBED_API int sembed_embed_ids(struct sembed_context *ctx, const struct sembed_ids *in, size_t n, float *out) {
    static const char fn[] = "sembed_embed_ids";
    if (!ctx) return SEMBED_EINVAL;
    if (n == 0) return SEMBED_OK;
    if (!in || !out) return sembed_fail(SEMBED_EINVAL, fn, "inputs or output buffer is NULL");
    for (size_t start = 0; start < n; start += ctx->batch_size) {
        const uint32_t cnt = (uint32_t)(n - start < ctx->batch_size ? n - start : ctx->batch_size);
        for (uint32_t i = 0; i < cnt; i++) {
            int rc = load_ids(ctx, &in[start + i], start + i, i, fn);
            if (rc) return rc;
        }
        int rc = run_slots(ctx, cnt, out + start * ctx->m->dim, fn);
        if (rc) return rc;
        ctx->stats.n_inputs += cnt;
    }
    return SEMBED_OK;
}

SEMBED_API int sembed_encode_ids(struct sembed_context *ctx, const struct sembed_ids *in, float *last_hidden,
                                 float *all_hidden) {
    static const char fn[] = "sembed_encode_ids";
    if (!ctx) return SEMBED_EINVAL;
    if (!in) return sembed_fail(SEMBED_EINVAL, fn, "input is NULL");
    int rc = load_ids(ctx, in, 0, 0, fn);
    if (rc) return rc;
    int offs[2] = {0, (int)in->n};
    struct se_batch b = {.n_seq = 1, .ids = ctx->slot_ids, .types = ctx->slot_types, .offs = offs};
    rc = se_encoder_forward(ctx, &b, all_hidden);
    if (rc) return sembed_fail(rc, fn, "cannot prepare the model's weights (%s)", sembed_strerror(rc));
    if (last_hidden) memcpy(last_hidden, ctx->x, (size_t)in->n * ctx->m->H * sizeof(float));
    ctx->stats.n_inputs++;
    ctx->stats.n_tokens += in->n;
    ctx->stats.n_passes++;
    return SEMBED_OK;
}
