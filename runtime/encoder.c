// The BERT encoder over a packed batch: embeddings + LayerNorm, then post-LN layers
// (Vaswani et al. 2017; Devlin et al. 2019), with HF BertModel's arithmetic (models/gen/twin.py).
//
// Batch invariance: every Linear sees token rows, and the kernels compute each output element
// with a reduction order that depends only on k (kernels.h). Attention runs per (sequence, head)
// on that sequence's tokens alone, so padding never exists and no reduction spans sequences.
// LayerNorm, softmax and pooling are per row. Hence a sequence's result does not depend on its
// neighbours, on its position in the batch, or on the thread count.
#include <math.h>
#include <omp.h>
#include <string.h>

#include "runtime/model_internal.h"

// dst (+)= row r of an embedding table, decoded to f32.
static void table_row(const struct se_table *tb, int64_t r, float *dst, bool add) {
    const int64_t n = tb->cols;
    const size_t base = (size_t)r * (size_t)n;
    switch (tb->dtype) {
    case SEMBED_DTYPE_F32: {
        const float *src = (const float *)tb->data + base;
        if (add) for (int64_t i = 0; i < n; i++) dst[i] += src[i];
        else memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    }
    case SEMBED_DTYPE_F16:
    case SEMBED_DTYPE_BF16: {
        const uint16_t *src = (const uint16_t *)tb->data + base;
        bool f16 = tb->dtype == SEMBED_DTYPE_F16;
        for (int64_t i = 0; i < n; i++) {
            float v = f16 ? sk_f16_to_f32(src[i]) : sk_bf16_to_f32(src[i]);
            dst[i] = add ? dst[i] + v : v;
        }
        break;
    }
    case SEMBED_DTYPE_Q8_ROW: { // docs/format.md: int8 rows, zero padding to 64, f32 scale per row
        const int8_t *q = (const int8_t *)tb->data + base;
        size_t qbytes = (size_t)tb->rows * (size_t)n;
        size_t pad = (qbytes + SEMBED_ALIGNMENT - 1) / SEMBED_ALIGNMENT * SEMBED_ALIGNMENT;
        float s;
        memcpy(&s, (const unsigned char *)tb->data + pad + 4 * (size_t)r, 4);
        for (int64_t i = 0; i < n; i++) {
            float v = (float)q[i] * s;
            dst[i] = add ? dst[i] + v : v;
        }
        break;
    }
    default: break; // rejected at load
    }
}

static void embed(struct sembed_context *ctx, const struct se_batch *b, int nt) {
    const struct sembed_model *m = ctx->m;
    const int H = (int)m->H;
    float *x = ctx->x;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int s = 0; s < b->n_seq; s++) {
        for (int t = b->offs[s]; t < b->offs[s + 1]; t++) {
            float *row = x + (size_t)t * H;
            // (word + position) + type, the order HF adds them in
            table_row(&m->word, b->ids[t], row, false);
            table_row(&m->pos, (int32_t)m->pos_offset + t - b->offs[s], row, true);
            if (m->type.data) table_row(&m->type, b->types[t], row, true);
            sk_layernorm(row, row, H, m->emb_ln_g, m->emb_ln_b, m->eps);
        }
    }
}

static void layernorm_rows(const struct sembed_context *ctx, int T, const float *in, float *out, const float *g,
                           const float *beta) {
    const int H = (int)ctx->m->H;
    const float eps = ctx->m->eps;
#pragma omp parallel for num_threads(ctx->n_threads) schedule(static) if (T >= 64)
    for (int t = 0; t < T; t++) sk_layernorm(in + (size_t)t * H, out + (size_t)t * H, H, g, beta, eps);
}

// Scaled dot-product attention per (sequence, head): qkv [T, 3H] -> att [T, H], through the
// kernels' fused attention (scores stay in one cache-sized block; bit-identical to
// Q K^T -> softmax -> P V through sk_gemm_f32 on the same ISA).
// MPNet: scores = Q K^T / sqrt(d) + bias(h, j - i), softmax, P V, per (sequence, head), f32 in
// every compute mode (the shared relative-position bias does not fit the fused kernels).
static void attention_rel(struct sembed_context *ctx, const struct se_batch *b, int nt) {
    const struct sembed_model *m = ctx->m;
    const int H = (int)m->H, nh = (int)m->n_heads, hd = H / nh, ld = 3 * H, ML = (int)m->max_length;
    const float scale = 1.0f / sqrtf((float)hd);
    const int items = b->n_seq * nh;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int it = 0; it < items; it++) {
        const int s = it / nh, h = it % nh;
        const int t0 = b->offs[s], n = b->offs[s + 1] - t0;
        float *S = (float *)(void *)((unsigned char *)ctx->scores + (size_t)omp_get_thread_num() * ctx->att_scratch_bytes);
        const float *Q = ctx->big + (size_t)t0 * ld + (size_t)h * hd;
        sk_gemm_f32(false, true, n, n, hd, scale, Q, ld, Q + H, ld, 0.0f, S, n, 1);
        for (int i = 0; i < n; i++) {
            float *row = S + (size_t)i * n;
            const int32_t *bk = m->rel_bucket + (ML - 1 - i); // bk[j] = bucket of (j - i)
            for (int j = 0; j < n; j++) row[j] += m->rel_bias[(size_t)bk[j] * nh + h];
            sk_softmax(row, n);
        }
        sk_gemm_f32(false, false, n, hd, n, 1.0f, S, n, Q + 2 * H, ld, 0.0f, ctx->att + (size_t)t0 * H + (size_t)h * hd, H, 1);
    }
}

static void attention(struct sembed_context *ctx, const struct se_batch *b, int nt) {
    const struct sembed_model *m = ctx->m;
    if (m->rel_bias) {
        attention_rel(ctx, b, nt);
        return;
    }
    const int H = (int)m->H, nh = (int)m->n_heads, hd = H / nh, ld = 3 * H;
    const float scale = 1.0f / sqrtf((float)hd);
    const int items = b->n_seq * nh;
    const bool q16 = m->compute == SEMBED_COMPUTE_INT8; // int16 products (docs/int8.md)
    const float *qkv = ctx->big;
    float *att = ctx->att;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int it = 0; it < items; it++) {
        const int s = it / nh, h = it % nh;
        const int t0 = b->offs[s], n = b->offs[s + 1] - t0;
        unsigned char *scr = (unsigned char *)ctx->scores + (size_t)omp_get_thread_num() * ctx->att_scratch_bytes;
        const float *Q = qkv + (size_t)t0 * ld + (size_t)h * hd;
        float *o = att + (size_t)t0 * H + (size_t)h * hd;
        if (q16)
            sk_attention_q16(n, n, hd, Q, ld, Q + H, ld, Q + 2 * H, ld, scale, o, H, scr);
        else
            sk_attention_f32(n, n, hd, Q, ld, Q + H, ld, Q + 2 * H, ld, scale, o, H, scr);
    }
}

// Below this many tokens the embedding lookup and attention run on one thread: for a short
// sentence they are a few microseconds per layer, less than waking and joining a second thread.
// The Linear layers get the whole thread budget whatever T is: the kernels decide per call from
// the call's arithmetic (sk_linear_threads), so a bert-base layer of 16 tokens (0.2 ms of int8
// work on one core) uses both cores while a bert-tiny one stays on one. Results do not depend on
// either choice.
#define SE_MIN_TOKENS_PER_THREAD 24

int se_encoder_forward(struct sembed_context *ctx, const struct se_batch *b, float *all_hidden) {
    const struct sembed_model *m = ctx->m;
    const int H = (int)m->H, I = (int)m->I, T = b->offs[b->n_seq];
    const int nt = T < 2 * SE_MIN_TOKENS_PER_THREAD ? 1 : ctx->n_threads, nl = ctx->n_threads;
    const size_t TH = (size_t)T * H;
    void *scr = ctx->lin_scratch;
    int rc = se_model_pack(m, nl);
    if (rc) return rc;
    embed(ctx, b, nt);
    if (ctx->h0) memcpy(ctx->h0, ctx->x, TH * sizeof(float));
    if (all_hidden) memcpy(all_hidden, ctx->x, TH * sizeof(float));
    for (uint32_t l = 0; l < m->L; l++) {
        const struct se_layer *ly = &m->layers[l];
        if (ly->qkv.k) {
            sk_linear_forward(ly->qkv.k, T, ctx->x, H, ctx->big, 3 * H, SK_ACT_NONE, NULL, 0, scr, nl);
        } else {
            sk_linear_forward(ly->q.k, T, ctx->x, H, ctx->big, 3 * H, SK_ACT_NONE, NULL, 0, scr, nl);
            sk_linear_forward(ly->k.k, T, ctx->x, H, ctx->big + H, 3 * H, SK_ACT_NONE, NULL, 0, scr, nl);
            sk_linear_forward(ly->v.k, T, ctx->x, H, ctx->big + 2 * H, 3 * H, SK_ACT_NONE, NULL, 0, scr, nl);
        }
        attention(ctx, b, nt);
        // x = LN(att Wo + bo + x)
        sk_linear_forward(ly->attn_out.k, T, ctx->att, H, ctx->t1, H, SK_ACT_NONE, ctx->x, H, scr, nl);
        layernorm_rows(ctx, T, ctx->t1, ctx->x, ly->ln1_g, ly->ln1_b);
        // x = LN(act(x Wi + bi) Wo2 + bo2 + x)
        sk_linear_forward(ly->ffn_in.k, T, ctx->x, H, ctx->big, I, m->act, NULL, 0, scr, nl);
        sk_linear_forward(ly->ffn_out.k, T, ctx->big, I, ctx->t1, H, SK_ACT_NONE, ctx->x, H, scr, nl);
        layernorm_rows(ctx, T, ctx->t1, ctx->x, ly->ln2_g, ly->ln2_b);
        if (all_hidden) memcpy(all_hidden + (size_t)(l + 1) * TH, ctx->x, TH * sizeof(float));
    }
    return SEMBED_OK;
}
