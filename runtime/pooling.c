// Poolers, the stored Dense layers, and L2 normalization, per sequence of a packed batch.
// Definitions follow SimCSE's and sentence-transformers' (see pool() in models/gen/twin.py).
#include <float.h>
#include <math.h>
#include <string.h>

#include "runtime/model_internal.h"

// Masked mean over a sequence's tokens of (a + b) / 2 when b != NULL, else of a. Tokens are
// summed in order, in double, so the result depends on this sequence alone.
static void mean_rows(const float *a, const float *b, int t0, int n, int H, float *out) {
    for (int j = 0; j < H; j++) {
        double acc = 0.0;
        for (int t = t0; t < t0 + n; t++) {
            size_t i = (size_t)t * H + j;
            acc += b ? ((double)a[i] + (double)b[i]) * 0.5 : (double)a[i];
        }
        out[j] = (float)(acc / n);
    }
}

static void max_rows(const float *a, int t0, int n, int H, float *out) {
    for (int j = 0; j < H; j++) {
        float mx = -FLT_MAX;
        for (int t = t0; t < t0 + n; t++) {
            float v = a[(size_t)t * H + j];
            mx = v > mx ? v : mx;
        }
        out[j] = mx;
    }
}

// Cross-encoder head: [CLS] -> (BERT: pooler) -> head Linear layers -> scores (sigmoid / softmax
// unless raw), as transformers' *ForSequenceClassification and sentence-transformers' CrossEncoder.
static void classify(struct sembed_context *ctx, const struct se_batch *b, float *out) {
    const struct sembed_model *m = ctx->m;
    const int H = (int)m->H, n = b->n_seq, nt = ctx->n_threads, nl = (int)m->num_labels;
    float *cur = ctx->pool_a, *nxt = ctx->pool_b;
    for (int s = 0; s < n; s++) memcpy(cur + (size_t)s * H, ctx->x + (size_t)b->offs[s] * H, (size_t)H * sizeof(float));
    if (m->n_cls == 1) { // BERT: the pooler feeds the classifier
        sk_linear_forward(m->pooler->k, n, cur, H, nxt, H, SK_ACT_TANH, NULL, 0, ctx->lin_scratch, nt);
        float *t = cur; cur = nxt; nxt = t;
    }
    int width = H;
    for (uint32_t i = 0; i < m->n_cls; i++) {
        int w = sk_linear_n_out(m->cls_lin[i].k);
        sk_linear_forward(m->cls_lin[i].k, n, cur, width, nxt, w, m->cls_act[i], NULL, 0, ctx->lin_scratch, nt);
        float *t = cur; cur = nxt; nxt = t;
        width = w;
    }
    for (int s = 0; s < n; s++) {
        const float *v = cur + (size_t)s * nl;
        float *o = out + (size_t)s * nl;
        if (ctx->cls_raw || m->cls_out == SE_CLS_OUT_IDENTITY) {
            memcpy(o, v, (size_t)nl * sizeof(float));
        } else if (m->cls_out == SE_CLS_OUT_SIGMOID) {
            for (int j = 0; j < nl; j++) o[j] = (float)(1.0 / (1.0 + exp(-(double)v[j])));
        } else { // softmax over the labels, max-subtracted
            double mx = v[0], sum = 0.0;
            for (int j = 1; j < nl; j++) mx = v[j] > mx ? v[j] : mx;
            for (int j = 0; j < nl; j++) sum += exp((double)v[j] - mx);
            for (int j = 0; j < nl; j++) o[j] = (float)(exp((double)v[j] - mx) / sum);
        }
    }
}

void se_pool(struct sembed_context *ctx, const struct se_batch *b, float *out) {
    const struct sembed_model *m = ctx->m;
    const int H = (int)m->H, n = b->n_seq, nt = ctx->n_threads;
    float *cur = ctx->pool_a, *nxt = ctx->pool_b;
    int width = H;
    if (m->num_labels) {
        classify(ctx, b, out);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (n > 1)
    for (int s = 0; s < n; s++) {
        const int t0 = b->offs[s], len = b->offs[s + 1] - t0;
        float *dst = cur + (size_t)s * H;
        switch (ctx->pooling) {
        case SEMBED_POOLING_MEAN: mean_rows(ctx->x, NULL, t0, len, H, dst); break;
        case SEMBED_POOLING_MAX: max_rows(ctx->x, t0, len, H, dst); break;
        case SEMBED_POOLING_FIRST_LAST_AVG: mean_rows(ctx->h0, ctx->x, t0, len, H, dst); break;
        default: memcpy(dst, ctx->x + (size_t)t0 * H, (size_t)H * sizeof(float)); break; // [CLS]
        }
    }
    if (ctx->pooling == SEMBED_POOLING_CLS && m->pooler) {
        sk_linear_forward(m->pooler->k, n, cur, H, nxt, H, SK_ACT_TANH, NULL, 0, ctx->lin_scratch, nt);
        float *t = cur; cur = nxt; nxt = t;
    }
    for (uint32_t i = 0; i < m->n_dense; i++) {
        const struct sk_linear *L = m->dense[i].k;
        int w = sk_linear_n_out(L);
        sk_linear_forward(L, n, cur, width, nxt, w, m->dense_act[i], NULL, 0, ctx->lin_scratch, nt);
        float *t = cur; cur = nxt; nxt = t;
        width = w;
    }
    for (int s = 0; s < n; s++) {
        const float *v = cur + (size_t)s * width;
        float *o = out + (size_t)s * m->dim;
        if (!ctx->normalize) {
            memcpy(o, v, (size_t)width * sizeof(float));
            continue;
        }
        // x / max(||x||_2, 1e-12), as torch.nn.functional.normalize (sentence-transformers' Normalize)
        double ss = 0.0;
        for (int j = 0; j < width; j++) ss += (double)v[j] * v[j];
        double norm = sqrt(ss);
        float inv = (float)(1.0 / (norm > 1e-12 ? norm : 1e-12));
        for (int j = 0; j < width; j++) o[j] = v[j] * inv;
    }
}
