// Trainer forward (caching what backward needs) and backward for the post-LN BERT encoder,
// the poolers and the MLM head. Every matmul goes through sk_gemm_f32; every reduction that
// crosses rows runs in a fixed order (threads split columns or independent rows), so results do
// not depend on the thread count.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "train/st.h"

#define COLBLK 64

// ---------------------------------------------------------------- activations

int st_acts_create(const struct st_config *c, int n_max, int t_max, int n_threads, struct st_acts **out) {
    *out = NULL;
    if (n_max <= 0 || t_max <= 0 || n_threads <= 0) return SEMBED_EINVAL;
    struct st_acts *a = calloc(1, sizeof *a);
    if (!a) return SEMBED_ENOMEM;
    a->L = calloc((size_t)c->layers, sizeof *a->L);
    if (!a->L) { free(a); return SEMBED_ENOMEM; }
    a->n_max = n_max; a->t_max = t_max; a->n_threads = n_threads;
    size_t BT = (size_t)n_max * t_max, H = (size_t)c->hidden, I = (size_t)c->inter, NH = (size_t)c->heads;
    size_t att = (size_t)n_max * NH * t_max * t_max;
    bool attn_drop = c->attn_dropout > 0.0f;
    size_t per_layer = BT * 3 * H + att * (attn_drop ? 2 : 1) + BT * H * 5 + BT * I + BT * 4;
    size_t total = BT * H * 2 + BT * 2 + per_layer * (size_t)c->layers + (size_t)n_max * H * 2 +
                   BT * H * 4 + BT * 3 * H + BT * I * 2 + (size_t)n_threads * 2 * t_max * t_max;
    // Round every sub-buffer to 16 floats: add slack.
    total += 64 * (size_t)(c->layers + 4) * 16;
    a->n_floats = total;
    a->block = aligned_alloc(64, ((total * sizeof(float)) + 63) & ~(size_t)63);
    if (!a->block) { free(a->L); free(a); return SEMBED_ENOMEM; }
    memset(a->block, 0, total * sizeof(float));
    float *p = a->block;
#define TAKE(dst, count) do { dst = p; p += ((count) + 15) & ~(size_t)15; } while (0)
    TAKE(a->emb, BT * H); TAKE(a->emb_mean, BT); TAKE(a->emb_rstd, BT); TAKE(a->h0, BT * H);
    for (int l = 0; l < c->layers; l++) {
        struct st_layer_acts *L = &a->L[l];
        TAKE(L->qkv, BT * 3 * H);
        TAKE(L->p, att);
        if (attn_drop) TAKE(L->pd, att); else L->pd = L->p;
        TAKE(L->ctx, BT * H); TAKE(L->r1, BT * H); TAKE(L->mean1, BT); TAKE(L->rstd1, BT); TAKE(L->a, BT * H);
        TAKE(L->f, BT * I); TAKE(L->r2, BT * H); TAKE(L->mean2, BT); TAKE(L->rstd2, BT); TAKE(L->y, BT * H);
    }
    TAKE(a->cls, (size_t)n_max * H); TAKE(a->pooled, (size_t)n_max * H);
    TAKE(a->dY, BT * H); TAKE(a->dR, BT * H); TAKE(a->dT, BT * H); TAKE(a->dC, BT * H);
    TAKE(a->dQKV, BT * 3 * H); TAKE(a->dF, BT * I); TAKE(a->G, BT * I);
    TAKE(a->att_scratch, (size_t)n_threads * 2 * t_max * t_max);
#undef TAKE
    SEMBED_ASSERT((size_t)(p - a->block) <= total);
    *out = a;
    return 0;
}

void st_acts_free(struct st_acts *a) {
    if (!a) return;
    free(a->block);
    free(a->L);
    free(a);
}

// ---------------------------------------------------------------- row ops

// y[M, n_out] (stride ldy) = x[M, n_in] (stride ldx) W^T + b
static void linear_fwd(const float *x, int ldx, int M, int n_in, const float *W, const float *b, int n_out, float *y,
                       int ldy, int nt) {
    if (b) {
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int r = 0; r < M; r++) memcpy(y + (size_t)r * ldy, b, (size_t)n_out * sizeof(float));
    }
    sk_gemm_f32(false, true, M, n_out, n_in, 1.0f, x, ldx, W, n_in, b ? 1.0f : 0.0f, y, ldy, nt);
}

// db[n] += sum over M rows of dy (stride ld); fixed row order per column.
static void colsum_acc(const float *dy, int ld, int M, int n, float *db, int nt) {
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int c0 = 0; c0 < n; c0 += COLBLK) {
        int c1 = c0 + COLBLK < n ? c0 + COLBLK : n;
        double acc[COLBLK] = {0};
        for (int r = 0; r < M; r++) {
            const float *row = dy + (size_t)r * ld;
            for (int c = c0; c < c1; c++) acc[c - c0] += row[c];
        }
        for (int c = c0; c < c1; c++) db[c] += (float)acc[c - c0];
    }
}

// dW[n_out, n_in] += dy^T x ; db += colsum(dy) ; dx = dy W (+ beta_dx * dx). dx may be NULL.
static void linear_bwd(const float *dy, int ldy, const float *x, int ldx, int M, int n_in, int n_out, const float *W,
                       float *dW, float *db, float *dx, int lddx, float beta_dx, int nt) {
    sk_gemm_f32(true, false, n_out, n_in, M, 1.0f, dy, ldy, x, ldx, 1.0f, dW, n_in, nt);
    if (db) colsum_acc(dy, ldy, M, n_out, db, nt);
    if (dx) sk_gemm_f32(false, false, M, n_in, n_out, 1.0f, dy, ldy, W, n_in, beta_dx, dx, lddx, nt);
}

static void ln_fwd(const float *x, int M, int n, const float *g, const float *b, float eps, float *mean, float *rstd,
                   float *y, int nt) {
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int r = 0; r < M; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        double mu = 0.0, var = 0.0;
        for (int i = 0; i < n; i++) mu += xr[i];
        mu /= n;
        for (int i = 0; i < n; i++) var += ((double)xr[i] - mu) * ((double)xr[i] - mu);
        var /= n;
        float rs = (float)(1.0 / sqrt(var + (double)eps)), m = (float)mu;
        mean[r] = m; rstd[r] = rs;
        for (int i = 0; i < n; i++) yr[i] = (xr[i] - m) * rs * g[i] + b[i];
    }
}

// dx = LN backward of dy (dx may alias dy); dg, db accumulated.
static void ln_bwd(const float *dy, const float *x, const float *mean, const float *rstd, int M, int n, const float *g,
                   float *dg, float *db, float *dx, int nt) {
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int c0 = 0; c0 < n; c0 += COLBLK) {
        int c1 = c0 + COLBLK < n ? c0 + COLBLK : n;
        double ag[COLBLK] = {0}, ab[COLBLK] = {0};
        for (int r = 0; r < M; r++) {
            const float *dyr = dy + (size_t)r * n, *xr = x + (size_t)r * n;
            float m = mean[r], rs = rstd[r];
            for (int c = c0; c < c1; c++) {
                ag[c - c0] += (double)dyr[c] * ((xr[c] - m) * rs);
                ab[c - c0] += dyr[c];
            }
        }
        for (int c = c0; c < c1; c++) { dg[c] += (float)ag[c - c0]; db[c] += (float)ab[c - c0]; }
    }
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int r = 0; r < M; r++) {
        const float *dyr = dy + (size_t)r * n, *xr = x + (size_t)r * n;
        float *dxr = dx + (size_t)r * n;
        float m = mean[r], rs = rstd[r];
        double s1 = 0.0, s2 = 0.0;
        for (int c = 0; c < n; c++) {
            double dxh = (double)dyr[c] * g[c];
            s1 += dxh;
            s2 += dxh * ((xr[c] - m) * rs);
        }
        float m1 = (float)(s1 / n), m2 = (float)(s2 / n);
        for (int c = 0; c < n; c++) {
            float xh = (xr[c] - m) * rs;
            dxr[c] = rs * (dyr[c] * g[c] - m1 - xh * m2);
        }
    }
}

static float act_grad(float x, enum sk_act act) {
    switch (act) {
    case SK_ACT_GELU_ERF: // d/dx x*Phi(x) = Phi(x) + x*phi(x)
        return 0.5f * (1.0f + erff(x * 0.70710678118654752f)) + x * 0.39894228040143268f * expf(-0.5f * x * x);
    case SK_ACT_GELU_TANH: {
        const float c = 0.79788456080286536f;
        float u = c * (x + 0.044715f * x * x * x), th = tanhf(u);
        return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * c * (1.0f + 3.0f * 0.044715f * x * x);
    }
    case SK_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case SK_ACT_TANH: { float t = tanhf(x); return 1.0f - t * t; }
    case SK_ACT_NONE: return 1.0f;
    }
    return 1.0f;
}

static void act_fwd(const float *x, float *y, size_t count, enum sk_act act, int nt) {
    if (act == SK_ACT_GELU_ERF) { // the common case, inlined (same formula as sk_act_ref)
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (size_t i = 0; i < count; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        return;
    }
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < count; i++) y[i] = sk_act_ref(x[i], act);
}

// Dropout as a pure function of (key, index): the same call implements forward and backward.
static void dropout(float *x, size_t count, float p, uint64_t key, int nt) {
    if (p <= 0.0f || key == 0) return;
    uint32_t thr = (uint32_t)((double)p * 4294967296.0);
    float scale = 1.0f / (1.0f - p);
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < count; i++) x[i] = st_rng_u32(key, i) >= thr ? x[i] * scale : 0.0f;
}

static uint64_t site_key(uint64_t drop_key, enum st_stream s, int layer) {
    return drop_key ? st_rng_key(drop_key, (uint64_t)s, (uint64_t)layer, 0) : 0;
}

static void add_inplace(float *y, const float *x, size_t count, int nt) {
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < count; i++) y[i] += x[i];
}

// ---------------------------------------------------------------- forward

static void attention_fwd(const struct st_config *c, struct st_layer_acts *L, const struct st_batch *b,
                          uint64_t key, int nt) {
    int T = b->t, H = c->hidden, NH = c->heads, hd = H / NH;
    float scale = 1.0f / sqrtf((float)hd);
    float p_drop = c->attn_dropout;
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int nh = 0; nh < b->n * NH; nh++) {
        int n = nh / NH, h = nh % NH, len = b->lens[n];
        const float *q = L->qkv + (size_t)n * T * 3 * H + (size_t)h * hd, *k = q + H, *v = q + 2 * H;
        float *P = L->p + (size_t)nh * T * T, *PD = L->pd + (size_t)nh * T * T;
        sk_gemm_f32(false, true, T, len, hd, scale, q, 3 * H, k, 3 * H, 0.0f, P, T, 1);
        for (int i = 0; i < T; i++) {
            float *row = P + (size_t)i * T;
            sk_softmax_ref(row, len);
            for (int j = len; j < T; j++) row[j] = 0.0f;
        }
        if (PD != P) {
            memcpy(PD, P, (size_t)T * T * sizeof(float));
            if (key && p_drop > 0.0f) {
                uint32_t thr = (uint32_t)((double)p_drop * 4294967296.0);
                float s = 1.0f / (1.0f - p_drop);
                size_t base = (size_t)nh * T * T;
                for (size_t i = 0; i < (size_t)T * T; i++) PD[i] = st_rng_u32(key, base + i) >= thr ? PD[i] * s : 0.0f;
            }
        }
        sk_gemm_f32(false, false, T, hd, len, 1.0f, PD, T, v, 3 * H, 0.0f, L->ctx + (size_t)n * T * H + (size_t)h * hd, H, 1);
    }
}

void st_forward(const struct st_model *m, struct st_acts *a, const struct st_batch *b, uint64_t drop_key, int nt) {
    const struct st_config *c = &m->cfg;
    const struct st_weights *w = &m->w;
    SEMBED_ASSERT(b->n <= a->n_max && b->t <= a->t_max && b->t <= c->max_pos);
    int T = b->t, H = c->hidden, I = c->inter, BT = b->n * T;
    size_t BTH = (size_t)BT * H;
    // embeddings: word + position (+ token type), LayerNorm, dropout
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int r = 0; r < BT; r++) {
        int id = b->ids[r], tt = b->types ? b->types[r] : 0, pos = r % T;
        SEMBED_ASSERT(id >= 0 && id < c->vocab && tt >= 0 && (tt < c->type_vocab || (c->type_vocab == 0 && tt == 0)));
        const float *we = w->word + (size_t)id * H, *pe = w->pos + (size_t)pos * H;
        float *e = a->emb + (size_t)r * H;
        for (int i = 0; i < H; i++) e[i] = we[i] + pe[i];
        if (w->type) {
            const float *te = w->type + (size_t)tt * H;
            for (int i = 0; i < H; i++) e[i] += te[i];
        }
    }
    ln_fwd(a->emb, BT, H, w->eln_w, w->eln_b, c->ln_eps, a->emb_mean, a->emb_rstd, a->h0, nt);
    dropout(a->h0, BTH, c->hidden_dropout, site_key(drop_key, ST_DROP_EMB, 0), nt);
    const float *x = a->h0;
    for (int l = 0; l < c->layers; l++) {
        const struct st_layer_w *lw = &w->layer[l];
        struct st_layer_acts *L = &a->L[l];
        linear_fwd(x, H, BT, H, lw->qw, lw->qb, H, L->qkv, 3 * H, nt);
        linear_fwd(x, H, BT, H, lw->kw, lw->kb, H, L->qkv + H, 3 * H, nt);
        linear_fwd(x, H, BT, H, lw->vw, lw->vb, H, L->qkv + 2 * H, 3 * H, nt);
        attention_fwd(c, L, b, site_key(drop_key, ST_DROP_ATTN, l), nt);
        linear_fwd(L->ctx, H, BT, H, lw->aow, lw->aob, H, L->r1, H, nt);
        dropout(L->r1, BTH, c->hidden_dropout, site_key(drop_key, ST_DROP_ATTN_OUT, l), nt);
        add_inplace(L->r1, x, BTH, nt);
        ln_fwd(L->r1, BT, H, lw->aln_w, lw->aln_b, c->ln_eps, L->mean1, L->rstd1, L->a, nt);
        linear_fwd(L->a, H, BT, H, lw->iw, lw->ib, I, L->f, I, nt);
        act_fwd(L->f, a->G, (size_t)BT * I, c->act, nt);
        linear_fwd(a->G, I, BT, I, lw->ow, lw->ob, H, L->r2, H, nt);
        dropout(L->r2, BTH, c->hidden_dropout, site_key(drop_key, ST_DROP_FFN_OUT, l), nt);
        add_inplace(L->r2, L->a, BTH, nt);
        ln_fwd(L->r2, BT, H, lw->oln_w, lw->oln_b, c->ln_eps, L->mean2, L->rstd2, L->y, nt);
        x = L->y;
    }
}

float *st_last_hidden(const struct st_model *m, const struct st_acts *a) { return a->L[m->cfg.layers - 1].y; }

// ---------------------------------------------------------------- backward

static void attention_bwd(const struct st_config *c, struct st_acts *a, struct st_layer_acts *L,
                          const struct st_batch *b, uint64_t key, int nt) {
    int T = b->t, H = c->hidden, NH = c->heads, hd = H / NH;
    float scale = 1.0f / sqrtf((float)hd);
    float p_drop = c->attn_dropout;
    uint32_t thr = (uint32_t)((double)p_drop * 4294967296.0);
    float ds_scale = p_drop > 0.0f ? 1.0f / (1.0f - p_drop) : 1.0f;
    #pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int nh = 0; nh < b->n * NH; nh++) {
        int tid = omp_get_thread_num();
        int n = nh / NH, h = nh % NH, len = b->lens[n];
        size_t row0 = (size_t)n * T;
        const float *q = L->qkv + row0 * 3 * H + (size_t)h * hd, *k = q + H, *v = q + 2 * H;
        const float *P = L->p + (size_t)nh * T * T, *PD = L->pd + (size_t)nh * T * T;
        const float *dctx = a->dC + row0 * H + (size_t)h * hd;
        float *dq = a->dQKV + row0 * 3 * H + (size_t)h * hd, *dk = dq + H, *dv = dq + 2 * H;
        float *dp = a->att_scratch + (size_t)tid * 2 * T * T;
        sk_gemm_f32(false, true, T, len, hd, 1.0f, dctx, H, v, 3 * H, 0.0f, dp, T, 1);   // dPD = dctx v^T
        sk_gemm_f32(true, false, len, hd, T, 1.0f, PD, T, dctx, H, 0.0f, dv, 3 * H, 1);   // dv = PD^T dctx
        size_t base = (size_t)nh * T * T;
        for (int i = 0; i < T; i++) {
            float *dr = dp + (size_t)i * T;
            const float *pr = P + (size_t)i * T;
            if (key && p_drop > 0.0f)
                for (int j = 0; j < len; j++)
                    dr[j] = st_rng_u32(key, base + (size_t)i * T + j) >= thr ? dr[j] * ds_scale : 0.0f;
            double dot = 0.0;
            for (int j = 0; j < len; j++) dot += (double)pr[j] * dr[j];
            float d = (float)dot;
            for (int j = 0; j < len; j++) dr[j] = pr[j] * (dr[j] - d);
        }
        sk_gemm_f32(false, false, T, hd, len, scale, dp, T, k, 3 * H, 0.0f, dq, 3 * H, 1); // dq = s dS k
        sk_gemm_f32(true, false, len, hd, T, scale, dp, T, q, 3 * H, 0.0f, dk, 3 * H, 1);  // dk = s dS^T q
        for (int j = len; j < T; j++) {
            memset(dk + (size_t)j * 3 * H, 0, (size_t)hd * sizeof(float));
            memset(dv + (size_t)j * 3 * H, 0, (size_t)hd * sizeof(float));
        }
    }
}

void st_backward(struct st_model *m, struct st_acts *a, const struct st_batch *b, float *dlast, uint64_t drop_key,
                 int nt) {
    const struct st_config *c = &m->cfg;
    const struct st_weights *w = &m->w;
    const struct st_weights *g = &m->g;
    SEMBED_ASSERT(m->grads);
    int T = b->t, H = c->hidden, I = c->inter, BT = b->n * T;
    size_t BTH = (size_t)BT * H;
    float *dY = dlast; // gradient w.r.t. the current layer's output
    for (int l = c->layers - 1; l >= 0; l--) {
        const struct st_layer_w *lw = &w->layer[l];
        const struct st_layer_w *lg = &g->layer[l];
        struct st_layer_acts *L = &a->L[l];
        const float *x = l > 0 ? a->L[l - 1].y : a->h0;
        // y = LN2(dropout(G Wo^T + bo) + a)
        ln_bwd(dY, L->r2, L->mean2, L->rstd2, BT, H, lw->oln_w, lg->oln_w, lg->oln_b, a->dR, nt); // dR = dr2 (= da part)
        memcpy(a->dT, a->dR, BTH * sizeof(float));
        dropout(a->dT, BTH, c->hidden_dropout, site_key(drop_key, ST_DROP_FFN_OUT, l), nt);
        act_fwd(L->f, a->G, (size_t)BT * I, c->act, nt); // recompute G = act(f)
        linear_bwd(a->dT, H, a->G, I, BT, I, H, lw->ow, lg->ow, lg->ob, a->dF, I, 0.0f, nt);
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (size_t i = 0; i < (size_t)BT * I; i++) a->dF[i] *= act_grad(L->f[i], c->act);
        linear_bwd(a->dF, I, L->a, H, BT, H, I, lw->iw, lg->iw, lg->ib, a->dR, H, 1.0f, nt); // dR += dF Wi
        // a = LN1(dropout(ctx Wao^T + bao) + x)
        ln_bwd(a->dR, L->r1, L->mean1, L->rstd1, BT, H, lw->aln_w, lg->aln_w, lg->aln_b, a->dR, nt); // dR = dr1
        memcpy(a->dT, a->dR, BTH * sizeof(float));
        dropout(a->dT, BTH, c->hidden_dropout, site_key(drop_key, ST_DROP_ATTN_OUT, l), nt);
        linear_bwd(a->dT, H, L->ctx, H, BT, H, H, lw->aow, lg->aow, lg->aob, a->dC, H, 0.0f, nt);
        attention_bwd(c, a, L, b, site_key(drop_key, ST_DROP_ATTN, l), nt);
        // dx = dr1 + dq Wq + dk Wk + dv Wv
        float *dX = a->dR;
        linear_bwd(a->dQKV, 3 * H, x, H, BT, H, H, lw->qw, lg->qw, lg->qb, dX, H, 1.0f, nt);
        linear_bwd(a->dQKV + H, 3 * H, x, H, BT, H, H, lw->kw, lg->kw, lg->kb, dX, H, 1.0f, nt);
        linear_bwd(a->dQKV + 2 * H, 3 * H, x, H, BT, H, H, lw->vw, lg->vw, lg->vb, dX, H, 1.0f, nt);
        memcpy(dY, dX, BTH * sizeof(float));
    }
    // embeddings
    dropout(dY, BTH, c->hidden_dropout, site_key(drop_key, ST_DROP_EMB, 0), nt);
    ln_bwd(dY, a->emb, a->emb_mean, a->emb_rstd, BT, H, w->eln_w, g->eln_w, g->eln_b, dY, nt);
    // Scatter into the tables; threads own column blocks, rows go in order (deterministic).
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int c0 = 0; c0 < H; c0 += COLBLK) {
        int c1 = c0 + COLBLK < H ? c0 + COLBLK : H;
        for (int r = 0; r < BT; r++) {
            const float *d = dY + (size_t)r * H;
            float *gw = g->word + (size_t)b->ids[r] * H, *gp = g->pos + (size_t)(r % T) * H;
            for (int i = c0; i < c1; i++) { gw[i] += d[i]; gp[i] += d[i]; }
            if (g->type) {
                float *gt = g->type + (size_t)(b->types ? b->types[r] : 0) * H;
                for (int i = c0; i < c1; i++) gt[i] += d[i];
            }
        }
    }
}

// ---------------------------------------------------------------- poolers

void st_pool_forward(const struct st_model *m, struct st_acts *a, const struct st_batch *b, enum st_pool mode,
                     bool mlp, float *z, int nt) {
    int H = m->cfg.hidden, T = b->t;
    const float *last = st_last_hidden(m, a);
    for (int n = 0; n < b->n; n++) {
        float *cr = a->cls + (size_t)n * H;
        if (mode == ST_POOL_MEAN) {
            int len = b->lens[n];
            for (int i = 0; i < H; i++) {
                double s = 0.0;
                for (int t = 0; t < len; t++) s += last[((size_t)n * T + t) * H + i];
                cr[i] = (float)(s / len);
            }
        } else {
            memcpy(cr, last + (size_t)n * T * H, (size_t)H * sizeof(float));
        }
    }
    if (mlp) {
        SEMBED_ASSERT(m->w.pool_w);
        linear_fwd(a->cls, H, b->n, H, m->w.pool_w, m->w.pool_b, H, a->pooled, H, nt);
        for (size_t i = 0; i < (size_t)b->n * H; i++) a->pooled[i] = tanhf(a->pooled[i]);
    } else {
        memcpy(a->pooled, a->cls, (size_t)b->n * H * sizeof(float));
    }
    if (z) memcpy(z, a->pooled, (size_t)b->n * H * sizeof(float));
}

void st_pool_backward(struct st_model *m, struct st_acts *a, const struct st_batch *b, enum st_pool mode, bool mlp,
                      const float *dz, float *dlast, int nt) {
    int H = m->cfg.hidden, T = b->t, N = b->n;
    memset(dlast, 0, (size_t)N * T * H * sizeof(float));
    // a->dT as [N, H] scratch for dpre and dcls (sizes fit: N*H <= BT*H)
    float *dpre = a->dT, *dcls = a->dC;
    if (mlp) {
        for (size_t i = 0; i < (size_t)N * H; i++) dpre[i] = dz[i] * (1.0f - a->pooled[i] * a->pooled[i]);
        linear_bwd(dpre, H, a->cls, H, N, H, H, m->w.pool_w, m->g.pool_w, m->g.pool_b, dcls, H, 0.0f, nt);
    } else {
        memcpy(dcls, dz, (size_t)N * H * sizeof(float));
    }
    for (int n = 0; n < N; n++) {
        const float *d = dcls + (size_t)n * H;
        if (mode == ST_POOL_MEAN) {
            int len = b->lens[n];
            float inv = 1.0f / (float)len;
            for (int t = 0; t < len; t++) {
                float *o = dlast + ((size_t)n * T + t) * H;
                for (int i = 0; i < H; i++) o[i] = d[i] * inv;
            }
        } else {
            memcpy(dlast + (size_t)n * T * H, d, (size_t)H * sizeof(float));
        }
    }
}

// ---------------------------------------------------------------- MLM head

#define MLM_CHUNK 256

double st_mlm_loss(struct st_model *m, const float *last, int M, const int32_t *rows, const int32_t *labels,
                   float weight, float *dlast, int nt) {
    if (M <= 0) return 0.0;
    const struct st_config *c = &m->cfg;
    const struct st_weights *w = &m->w, *g = &m->g;
    SEMBED_ASSERT(w->mlm_w);
    int H = c->hidden, V = c->vocab;
    size_t MH = (size_t)M * H;
    int chunk = M < MLM_CHUNK ? M : MLM_CHUNK;
    float *buf = malloc((MH * 6 + (size_t)M * 2 + (size_t)chunk * V) * sizeof(float));
    SEMBED_ASSERT(buf); // small next to the activation block; treated like the arena
    float *X = buf, *T1 = X + MH, *T2 = T1 + MH, *T3 = T2 + MH, *dT3 = T3 + MH, *dX = dT3 + MH;
    float *mean = dX + MH, *rstd = mean + M, *logits = rstd + M;
    for (int i = 0; i < M; i++) memcpy(X + (size_t)i * H, last + (size_t)rows[i] * H, (size_t)H * sizeof(float));
    linear_fwd(X, H, M, H, w->mlm_w, w->mlm_b, H, T1, H, nt);
    act_fwd(T1, T2, MH, c->act, nt);
    ln_fwd(T2, M, H, w->mlm_ln_w, w->mlm_ln_b, c->ln_eps, mean, rstd, T3, nt);
    double loss = 0.0;
    float dscale = weight / (float)M;
    for (int r0 = 0; r0 < M; r0 += chunk) {
        int rn = M - r0 < chunk ? M - r0 : chunk;
        linear_fwd(T3 + (size_t)r0 * H, H, rn, H, w->word, w->mlm_bias, V, logits, V, nt);
        double part[MLM_CHUNK];
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int i = 0; i < rn; i++) {
            float *lr = logits + (size_t)i * V;
            int y = labels[r0 + i];
            SEMBED_ASSERT(y >= 0 && y < V);
            float mx = -INFINITY;
            for (int j = 0; j < V; j++) mx = lr[j] > mx ? lr[j] : mx;
            double s = 0.0;
            for (int j = 0; j < V; j++) s += exp((double)(lr[j] - mx));
            part[i] = log(s) + mx - lr[y];
            float inv = (float)(1.0 / s);
            for (int j = 0; j < V; j++) lr[j] = expf(lr[j] - mx) * inv * dscale;
            lr[y] -= dscale;
        }
        for (int i = 0; i < rn; i++) loss += part[i];
        if (dlast)
            linear_bwd(logits, V, T3 + (size_t)r0 * H, H, rn, H, V, w->word, g->word, g->mlm_bias, dT3 + (size_t)r0 * H,
                   H, 0.0f, nt);
    }
    if (!dlast) { free(buf); return loss / M; }
    ln_bwd(dT3, T2, mean, rstd, M, H, w->mlm_ln_w, g->mlm_ln_w, g->mlm_ln_b, dT3, nt);
    for (size_t i = 0; i < MH; i++) dT3[i] *= act_grad(T1[i], c->act);
    linear_bwd(dT3, H, X, H, M, H, H, w->mlm_w, g->mlm_w, g->mlm_b, dX, H, 0.0f, nt);
    for (int i = 0; i < M; i++) {
        float *o = dlast + (size_t)rows[i] * H;
        const float *d = dX + (size_t)i * H;
        for (int k = 0; k < H; k++) o[k] += d[k];
    }
    free(buf);
    return loss / M;
}
