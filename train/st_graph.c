// Trainer forward (caching what backward needs) and backward for the post-LN BERT encoder,
// the poolers and the MLM head (llm.c style: one activation arena, explicit backward).
//
// Work split: matmuls go through sk_gemm_f32 (threads split output columns); element-wise work
// runs in fused passes over blocks of ST_ROWBLK rows (train/st_ops.h), one OpenMP loop per pass;
// attention runs one (sequence, head) pair per task. Column sums (bias and LayerNorm gradients)
// are summed per block and then over blocks in block order. Nothing reduces across threads, so
// results do not depend on the thread count.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "train/st.h"
#include "train/st_ops.h"

#define COLBLK 64
// Weight gradients dW += dy^T x reduce over tokens: in chunks of DW_CHUNK rows (each chunk one
// sk_gemm_f32 call accumulating into dW), which keeps the GEMM's operand blocks cache-resident.
// The chunk size is fixed, so the summation order depends only on the batch, not on threads.
#define DW_CHUNK 1024
#define MLM_CHUNK 256

static size_t up16(size_t n) { return (n + 15) & ~(size_t)15; }
static int nblocks(int rows) { return (rows + ST_ROWBLK - 1) / ST_ROWBLK; }

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
    size_t att = (size_t)n_max * NH * t_max * t_max, bits = up16((BT * H + 7) / 8 / sizeof(float) + 1);
    bool attn_drop = c->attn_dropout > 0.0f;
    a->att_stride = up16(st_att_scratch(t_max, (int)(H / NH)));
    a->part_w = (int)up16(3 * H > I ? 3 * H : I);
    size_t nblk = (size_t)nblocks((int)BT);
    if (c->has_mlm) {
        a->mlm_chunk = BT < MLM_CHUNK ? (int)BT : MLM_CHUNK;
    }
    // Two passes: count (base NULL), then hand out.
    float *base = NULL, *p = NULL;
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        p = base;
        total = 0;
#define TAKE(dst, count) do { size_t n_ = up16(count); if (base) dst = (void *)p; p += base ? n_ : 0; total += n_; } while (0)
        TAKE(a->off, (size_t)n_max + 1); TAKE(a->poff, 2 * ((size_t)n_max + 1)); TAKE(a->rowmap, BT);
        TAKE(a->grow, 2 * BT);
        TAKE(a->emb, BT * H); TAKE(a->emb_mean, BT); TAKE(a->emb_rstd, BT); TAKE(a->h0, BT * H); TAKE(a->m_emb, bits);
        for (int l = 0; l < c->layers; l++) {
            struct st_layer_acts *L = &a->L[l];
            TAKE(L->qkv, BT * 3 * H);
            TAKE(L->p, att);
            if (attn_drop) TAKE(L->pd, att); else if (base) L->pd = L->p;
            TAKE(L->ctx, BT * H); TAKE(L->r1, BT * H); TAKE(L->mean1, BT); TAKE(L->rstd1, BT); TAKE(L->a, BT * H);
            TAKE(L->f, BT * I); TAKE(L->r2, BT * H); TAKE(L->mean2, BT); TAKE(L->rstd2, BT); TAKE(L->y, BT * H);
            TAKE(L->m_ao, bits); TAKE(L->m_ffn, bits);
        }
        TAKE(a->cls, (size_t)n_max * H); TAKE(a->pooled, (size_t)n_max * H); TAKE(a->z, 2 * (size_t)n_max * H);
        TAKE(a->dY, BT * H); TAKE(a->dR, BT * H); TAKE(a->dT, BT * H); TAKE(a->dC, BT * H);
        TAKE(a->dQKV, BT * 3 * H); TAKE(a->dF, BT * I); TAKE(a->G, BT * I);
        TAKE(a->att_scratch, (size_t)n_threads * a->att_stride);
        TAKE(a->parts, nblk * (size_t)a->part_w);
        // MLM: X, T1, T2, T3, dT3, dX [BT, H], mean, rstd [BT], logits [chunk, V]
        if (c->has_mlm) TAKE(a->mlm, BT * H * 6 + BT * 2 + (size_t)a->mlm_chunk * (size_t)c->vocab);
#undef TAKE
        if (pass == 0) {
            a->bytes = total * sizeof(float);
            base = st_big_alloc(a->bytes);
            if (!base) { free(a->L); free(a); return SEMBED_ENOMEM; }
            a->block = base;
        }
    }
    SEMBED_ASSERT((size_t)(p - base) == total);
    *out = a;
    return 0;
}

void st_acts_free(struct st_acts *a) {
    if (!a) return;
    st_big_free(a->block, a->bytes);
    free(a->L);
    free(a);
}

// ---------------------------------------------------------------- helpers

static struct st_drop drop_site(float p, uint64_t drop_key, enum st_stream s, int layer) {
    struct st_drop d = {0, 0, 1.0f, NULL};
    if (p <= 0.0f || drop_key == 0) return d;
    d.key = st_rng_key(drop_key, (uint64_t)s, (uint64_t)layer, 0);
    d.thr = (uint32_t)((double)p * 4294967296.0);
    d.scale = 1.0f / (1.0f - p);
    return d;
}

// dst[c] += sum over blocks (in order) of parts[blk * part_w + off + c], c < n. Threads split c.
static void reduce_parts(const struct st_acts *a, int nblk, int off, int n, float *dst, int nt) {
    const float *parts = a->parts;
    int w = a->part_w;
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int c0 = 0; c0 < n; c0 += COLBLK) {
        int c1 = c0 + COLBLK < n ? c0 + COLBLK : n;
        float acc[COLBLK] = {0};
        for (int b = 0; b < nblk; b++) {
            const float *pr = parts + (size_t)b * w + off;
            for (int c = c0; c < c1; c++) acc[c - c0] += pr[c];
        }
        for (int c = c0; c < c1; c++) dst[c] += acc[c - c0];
    }
}

// Row block b of M rows: [r0, r1), its partial-sum row zeroed.
static float *block_rows(const struct st_acts *a, int b, int M, int *r0, int *r1) {
    *r0 = b * ST_ROWBLK;
    *r1 = *r0 + ST_ROWBLK < M ? *r0 + ST_ROWBLK : M;
    float *part = a->parts + (size_t)b * a->part_w;
    memset(part, 0, (size_t)a->part_w * sizeof(float));
    return part;
}

// db += colsum(dy) over M rows: block partials, or, for rows wider than the partial rows (the
// MLM decoder bias over the vocabulary), threads own column blocks and add rows in order.
static void bias_grad(const struct st_acts *a, const float *dy, int ld, int M, int n, float *db, int nt) {
    const struct st_ops *ops = st_ops_get();
    int nb = nblocks(M);
    if (n > a->part_w) {
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int c0 = 0; c0 < n; c0 += COLBLK) {
            int c1 = c0 + COLBLK < n ? c0 + COLBLK : n;
            float acc[COLBLK] = {0};
            for (int r = 0; r < M; r++) {
                const float *row = dy + (size_t)r * ld;
                for (int c = c0; c < c1; c++) acc[c - c0] += row[c];
            }
            for (int c = c0; c < c1; c++) db[c] += acc[c - c0];
        }
        return;
    }
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int b = 0; b < nb; b++) {
        int r0, r1;
        float *part = block_rows(a, b, M, &r0, &r1);
        ops->colsum(r0, r1, dy, ld, n, part);
    }
    reduce_parts(a, nb, 0, n, db, nt);
}

// y[M, n_out] (stride ldy) = x W^T (+ b); biases of the big layers are fused into later passes.
static void linear_fwd(const float *x, int ldx, int M, int n_in, const float *W, const float *b, int n_out, float *y,
                       int ldy, int nt) {
    if (b) {
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int r = 0; r < M; r++) memcpy(y + (size_t)r * ldy, b, (size_t)n_out * sizeof(float));
    }
    sk_gemm_f32(false, true, M, n_out, n_in, 1.0f, x, ldx, W, n_in, b ? 1.0f : 0.0f, y, ldy, nt);
}

// dW[n_out, n_in] += dy^T x over M rows, in DW_CHUNK-row chunks.
static void gemm_dw(const float *dy, int ldy, const float *x, int ldx, int M, int n_in, int n_out, float *dW, int nt) {
    for (int r0 = 0; r0 < M; r0 += DW_CHUNK) {
        int k = M - r0 < DW_CHUNK ? M - r0 : DW_CHUNK;
        sk_gemm_f32(true, false, n_out, n_in, k, 1.0f, dy + (size_t)r0 * ldy, ldy, x + (size_t)r0 * ldx, ldx, 1.0f, dW,
                    n_in, nt);
    }
}

// dW += dy^T x ; db += colsum(dy) ; dx = dy W (+ beta_dx * dx). db, dx may be NULL.
static void linear_bwd(const struct st_acts *a, const float *dy, int ldy, const float *x, int ldx, int M, int n_in,
                       int n_out, const float *W, float *dW, float *db, float *dx, int lddx, float beta_dx, int nt) {
    gemm_dw(dy, ldy, x, ldx, M, n_in, n_out, dW, nt);
    if (db) bias_grad(a, dy, ldy, M, n_out, db, nt);
    if (dx) sk_gemm_f32(false, false, M, n_in, n_out, 1.0f, dy, ldy, W, n_in, beta_dx, dx, lddx, nt);
}

// ---------------------------------------------------------------- forward

static void attention_fwd(const struct st_config *c, struct st_acts *a, struct st_layer_acts *L,
                          const struct st_layer_w *lw, const struct st_batch *b, uint64_t drop_key, int l, int nt) {
    const struct st_ops *ops = st_ops_get();
    int H = c->hidden, NH = c->heads, hd = H / NH;
    struct st_att at = {.hd = hd, .ld = 3 * H, .scale = 1.0f / sqrtf((float)hd),
                        .drop = drop_site(c->attn_dropout, drop_key, ST_DROP_ATTN, l)};
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int nh = 0; nh < b->n * NH; nh++) {
        int n = nh / NH, h = nh % NH, len = b->lens[n];
        struct st_att ta = at;
        ta.T = ta.len = len;
        size_t pb = (size_t)a->poff[n] + (size_t)h * len * len, row0 = (size_t)a->off[n];
        ta.drop_base = b->att0 ? (size_t)b->att0[n] + (size_t)h * len * len : pb;
        float *q = L->qkv + row0 * 3 * H + (size_t)h * hd;
        ops->att_fwd(&ta, q, q + H, q + 2 * H, lw->qb + (size_t)h * hd, lw->kb + (size_t)h * hd, lw->vb + (size_t)h * hd,
                     L->p + pb, L->pd + pb, L->ctx + row0 * H + (size_t)h * hd, H,
                     a->att_scratch + (size_t)omp_get_thread_num() * a->att_stride);
    }
}

// The three projections as one GEMM when q, k, v weights are adjacent in the parameter block
// (st_model.c lays them out so; always the case when hidden is a multiple of 16).
static bool qkv_fused(const struct st_layer_w *lw, int H) {
    size_t HH = (size_t)H * H;
    return lw->kw == lw->qw + HH && lw->vw == lw->kw + HH;
}

int st_acts_rows(const struct st_acts *a) { return a->off[a->cur_n]; }

// Row offsets of the packed batch (see st.h).
static void pack(struct st_acts *a, const struct st_batch *b, int heads) {
    a->cur_n = b->n;
    a->cur_t = b->t;
    a->off[0] = 0;
    a->poff[0] = 0;
    for (int n = 0; n < b->n; n++) {
        int len = b->lens[n];
        SEMBED_ASSERT(len >= 1 && len <= b->t);
        for (int p = 0; p < len; p++) a->rowmap[a->off[n] + p] = n * b->t + p;
        if (b->row0)
            for (int p = 0; p < len; p++) a->grow[a->off[n] + p] = b->row0[n] + p;
        a->off[n + 1] = a->off[n] + len;
        a->poff[n + 1] = a->poff[n] + (int64_t)heads * len * len;
    }
}

void st_forward(const struct st_model *m, struct st_acts *a, const struct st_batch *b, uint64_t drop_key, int nt) {
    const struct st_config *c = &m->cfg;
    const struct st_weights *w = &m->w;
    const struct st_ops *ops = st_ops_get();
    SEMBED_ASSERT(b->n <= a->n_max && b->t <= a->t_max && b->t <= c->max_pos);
    pack(a, b, c->heads);
    int T = b->t, H = c->hidden, I = c->inter, BT = st_acts_rows(a), nb = nblocks(BT);
    float eps = c->ln_eps;
    // embeddings: word + position (+ token type), LayerNorm, dropout
    struct st_drop de = drop_site(c->hidden_dropout, drop_key, ST_DROP_EMB, 0);
    de.rows = b->row0 ? a->grow : NULL;
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int blk = 0; blk < nb; blk++) {
        int r0 = blk * ST_ROWBLK, r1 = r0 + ST_ROWBLK < BT ? r0 + ST_ROWBLK : BT;
        for (int r = r0; r < r1; r++) {
            int in = a->rowmap[r], id = b->ids[in], tt = b->types ? b->types[in] : 0, pos = in % T;
            SEMBED_ASSERT(id >= 0 && id < c->vocab && tt >= 0 && (tt < c->type_vocab || (c->type_vocab == 0 && tt == 0)));
            const float *we = w->word + (size_t)id * H, *pe = w->pos + (size_t)pos * H;
            float *e = a->emb + (size_t)r * H;
            for (int i = 0; i < H; i++) e[i] = we[i] + pe[i];
            if (w->type) {
                const float *te = w->type + (size_t)tt * H;
                for (int i = 0; i < H; i++) e[i] += te[i];
            }
        }
        ops->ln_fwd(r0, r1, a->emb, H, w->eln_w, w->eln_b, eps, a->emb_mean, a->emb_rstd, a->h0);
        ops->bias_drop_res(r0, r1, a->h0, H, NULL, NULL, &de, a->m_emb);
    }
    const float *x = a->h0;
    for (int l = 0; l < c->layers; l++) {
        const struct st_layer_w *lw = &w->layer[l];
        struct st_layer_acts *L = &a->L[l];
        if (qkv_fused(lw, H)) {
            sk_gemm_f32(false, true, BT, 3 * H, H, 1.0f, x, H, lw->qw, H, 0.0f, L->qkv, 3 * H, nt);
        } else {
            sk_gemm_f32(false, true, BT, H, H, 1.0f, x, H, lw->qw, H, 0.0f, L->qkv, 3 * H, nt);
            sk_gemm_f32(false, true, BT, H, H, 1.0f, x, H, lw->kw, H, 0.0f, L->qkv + H, 3 * H, nt);
            sk_gemm_f32(false, true, BT, H, H, 1.0f, x, H, lw->vw, H, 0.0f, L->qkv + 2 * H, 3 * H, nt);
        }
        attention_fwd(c, a, L, lw, b, drop_key, l, nt); // adds the q/k/v biases in place
        sk_gemm_f32(false, true, BT, H, H, 1.0f, L->ctx, H, lw->aow, H, 0.0f, L->r1, H, nt);
        struct st_drop d1 = drop_site(c->hidden_dropout, drop_key, ST_DROP_ATTN_OUT, l);
        d1.rows = b->row0 ? a->grow : NULL;
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int blk = 0; blk < nb; blk++) {
            int r0 = blk * ST_ROWBLK, r1 = r0 + ST_ROWBLK < BT ? r0 + ST_ROWBLK : BT;
            ops->bias_drop_res(r0, r1, L->r1, H, lw->aob, x, &d1, L->m_ao);
            ops->ln_fwd(r0, r1, L->r1, H, lw->aln_w, lw->aln_b, eps, L->mean1, L->rstd1, L->a);
        }
        sk_gemm_f32(false, true, BT, I, H, 1.0f, L->a, H, lw->iw, H, 0.0f, L->f, I, nt);
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int blk = 0; blk < nb; blk++) {
            int r0 = blk * ST_ROWBLK, r1 = r0 + ST_ROWBLK < BT ? r0 + ST_ROWBLK : BT;
            ops->act_fwd(r0, r1, L->f, a->G, I, lw->ib, c->act);
        }
        sk_gemm_f32(false, true, BT, H, I, 1.0f, a->G, I, lw->ow, I, 0.0f, L->r2, H, nt);
        struct st_drop d2 = drop_site(c->hidden_dropout, drop_key, ST_DROP_FFN_OUT, l);
        d2.rows = b->row0 ? a->grow : NULL;
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int blk = 0; blk < nb; blk++) {
            int r0 = blk * ST_ROWBLK, r1 = r0 + ST_ROWBLK < BT ? r0 + ST_ROWBLK : BT;
            ops->bias_drop_res(r0, r1, L->r2, H, lw->ob, L->a, &d2, L->m_ffn);
            ops->ln_fwd(r0, r1, L->r2, H, lw->oln_w, lw->oln_b, eps, L->mean2, L->rstd2, L->y);
        }
        x = L->y;
    }
}

float *st_last_hidden(const struct st_model *m, const struct st_acts *a) { return a->L[m->cfg.layers - 1].y; }

// ---------------------------------------------------------------- backward

static void attention_bwd(const struct st_config *c, struct st_acts *a, struct st_layer_acts *L,
                          const struct st_batch *b, int nt) {
    const struct st_ops *ops = st_ops_get();
    int H = c->hidden, NH = c->heads, hd = H / NH;
    struct st_att at = {.hd = hd, .ld = 3 * H, .scale = 1.0f / sqrtf((float)hd)};
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int nh = 0; nh < b->n * NH; nh++) {
        int n = nh / NH, h = nh % NH, len = b->lens[n];
        struct st_att ta = at;
        ta.T = ta.len = len;
        size_t pb = (size_t)a->poff[n] + (size_t)h * len * len, row0 = (size_t)a->off[n];
        const float *q = L->qkv + row0 * 3 * H + (size_t)h * hd;
        float *dq = a->dQKV + row0 * 3 * H + (size_t)h * hd;
        ops->att_bwd(&ta, q, q + H, q + 2 * H, L->p + pb, L->pd + pb,
                     a->dC + row0 * H + (size_t)h * hd, H, dq, dq + H, dq + 2 * H,
                     a->att_scratch + (size_t)omp_get_thread_num() * a->att_stride);
    }
}

void st_backward(struct st_model *m, struct st_acts *a, const struct st_batch *b, float *dlast, uint64_t drop_key,
                 int nt) {
    const struct st_config *c = &m->cfg;
    const struct st_weights *w = &m->w;
    const struct st_weights *g = &m->g;
    const struct st_ops *ops = st_ops_get();
    SEMBED_ASSERT(m->grads && a->cur_n == b->n && a->cur_t == b->t);
    int T = b->t, H = c->hidden, I = c->inter, BT = st_acts_rows(a), nb = nblocks(BT);
    float *dY = dlast, *dR = dlast == a->dR ? a->dY : a->dR; // dY: gradient w.r.t. the layer output
    for (int l = c->layers - 1; l >= 0; l--) {
        const struct st_layer_w *lw = &w->layer[l];
        const struct st_layer_w *lg = &g->layer[l];
        struct st_layer_acts *L = &a->L[l];
        const float *x = l > 0 ? a->L[l - 1].y : a->h0;
        // y = LN2(dropout(G Wo^T + bo) + a): dR = dr2 (also the residual gradient into a),
        // dT = dropout'(dR); G = act(f) recomputed for Wo's gradient.
        struct st_drop d2 = drop_site(c->hidden_dropout, drop_key, ST_DROP_FFN_OUT, l);
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int blk = 0; blk < nb; blk++) {
            int r0, r1;
            float *part = block_rows(a, blk, BT, &r0, &r1);
            ops->ln_bwd(r0, r1, dY, L->r2, L->mean2, L->rstd2, H, lw->oln_w, dR, part, part + H);
            ops->drop_bwd(r0, r1, dR, a->dT, H, &d2, L->m_ffn, part + 2 * H);
            ops->act_fwd(r0, r1, L->f, a->G, I, NULL, c->act);
        }
        reduce_parts(a, nb, 0, H, lg->oln_w, nt);
        reduce_parts(a, nb, H, H, lg->oln_b, nt);
        reduce_parts(a, nb, 2 * H, H, lg->ob, nt);
        gemm_dw(a->dT, H, a->G, I, BT, I, H, lg->ow, nt);
        sk_gemm_f32(false, false, BT, I, H, 1.0f, a->dT, H, lw->ow, I, 0.0f, a->dF, I, nt);
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int blk = 0; blk < nb; blk++) {
            int r0, r1;
            float *part = block_rows(a, blk, BT, &r0, &r1);
            ops->act_bwd(r0, r1, a->dF, L->f, a->G, I, c->act, part);
        }
        reduce_parts(a, nb, 0, I, lg->ib, nt);
        gemm_dw(a->dF, I, L->a, H, BT, H, I, lg->iw, nt);
        sk_gemm_f32(false, false, BT, H, I, 1.0f, a->dF, I, lw->iw, H, 1.0f, dR, H, nt); // dR += dF Wi
        // a = LN1(dropout(ctx Wao^T + bao) + x)
        struct st_drop d1 = drop_site(c->hidden_dropout, drop_key, ST_DROP_ATTN_OUT, l);
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int blk = 0; blk < nb; blk++) {
            int r0, r1;
            float *part = block_rows(a, blk, BT, &r0, &r1);
            ops->ln_bwd(r0, r1, dR, L->r1, L->mean1, L->rstd1, H, lw->aln_w, dR, part, part + H);
            ops->drop_bwd(r0, r1, dR, a->dT, H, &d1, L->m_ao, part + 2 * H);
        }
        reduce_parts(a, nb, 0, H, lg->aln_w, nt);
        reduce_parts(a, nb, H, H, lg->aln_b, nt);
        reduce_parts(a, nb, 2 * H, H, lg->aob, nt);
        gemm_dw(a->dT, H, L->ctx, H, BT, H, H, lg->aow, nt);
        sk_gemm_f32(false, false, BT, H, H, 1.0f, a->dT, H, lw->aow, H, 0.0f, a->dC, H, nt);
        attention_bwd(c, a, L, b, nt);
        // dx = dr1 + dq Wq + dk Wk + dv Wv ; bias gradients
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int blk = 0; blk < nb; blk++) {
            int r0, r1;
            float *part = block_rows(a, blk, BT, &r0, &r1);
            ops->colsum(r0, r1, a->dQKV, 3 * H, 3 * H, part);
        }
        reduce_parts(a, nb, 0, H, lg->qb, nt);
        reduce_parts(a, nb, H, H, lg->kb, nt);
        reduce_parts(a, nb, 2 * H, H, lg->vb, nt);
        if (qkv_fused(lw, H) && qkv_fused(lg, H)) {
            gemm_dw(a->dQKV, 3 * H, x, H, BT, H, 3 * H, lg->qw, nt);
            sk_gemm_f32(false, false, BT, H, 3 * H, 1.0f, a->dQKV, 3 * H, lw->qw, H, 1.0f, dR, H, nt);
        } else {
            const float *W3[3] = {lw->qw, lw->kw, lw->vw};
            float *G3[3] = {lg->qw, lg->kw, lg->vw};
            for (int j = 0; j < 3; j++) {
                gemm_dw(a->dQKV + (size_t)j * H, 3 * H, x, H, BT, H, H, G3[j], nt);
                sk_gemm_f32(false, false, BT, H, H, 1.0f, a->dQKV + (size_t)j * H, 3 * H, W3[j], H, 1.0f, dR, H, nt);
            }
        }
        float *tmp = dY; dY = dR; dR = tmp; // dR now holds this layer's input gradient
        if (a->layer_done) a->layer_done(a->layer_user, l);
    }
    // embeddings: h0 = dropout(LN(emb))
    struct st_drop de = drop_site(c->hidden_dropout, drop_key, ST_DROP_EMB, 0);
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int blk = 0; blk < nb; blk++) {
        int r0, r1;
        float *part = block_rows(a, blk, BT, &r0, &r1);
        ops->drop_bwd(r0, r1, dY, dY, H, &de, a->m_emb, NULL);
        ops->ln_bwd(r0, r1, dY, a->emb, a->emb_mean, a->emb_rstd, H, w->eln_w, dY, part, part + H);
    }
    reduce_parts(a, nb, 0, H, g->eln_w, nt);
    reduce_parts(a, nb, H, H, g->eln_b, nt);
    // Scatter into the tables; threads own column blocks, rows go in order (deterministic).
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int c0 = 0; c0 < H; c0 += COLBLK) {
        int c1 = c0 + COLBLK < H ? c0 + COLBLK : H;
        for (int r = 0; r < BT; r++) {
            const float *d = dY + (size_t)r * H;
            int in = a->rowmap[r];
            float *gw = g->word + (size_t)b->ids[in] * H, *gp = g->pos + (size_t)(in % T) * H;
            for (int i = c0; i < c1; i++) { gw[i] += d[i]; gp[i] += d[i]; }
            if (g->type) {
                float *gt = g->type + (size_t)(b->types ? b->types[in] : 0) * H;
                for (int i = c0; i < c1; i++) gt[i] += d[i];
            }
        }
    }
}

// ---------------------------------------------------------------- poolers

void st_pool_forward(const struct st_model *m, struct st_acts *a, const struct st_batch *b, enum st_pool mode,
                     bool mlp, float *z, int nt) {
    int H = m->cfg.hidden;
    SEMBED_ASSERT(a->cur_n == b->n && a->cur_t == b->t);
    const float *last = st_last_hidden(m, a);
    for (int n = 0; n < b->n; n++) {
        float *cr = a->cls + (size_t)n * H;
        const float *rows = last + (size_t)a->off[n] * H;
        if (mode == ST_POOL_MEAN) {
            int len = b->lens[n];
            for (int i = 0; i < H; i++) {
                double s = 0.0;
                for (int t = 0; t < len; t++) s += rows[(size_t)t * H + i];
                cr[i] = (float)(s / len);
            }
        } else {
            memcpy(cr, rows, (size_t)H * sizeof(float));
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
    int H = m->cfg.hidden, N = b->n;
    SEMBED_ASSERT(a->cur_n == b->n && a->cur_t == b->t);
    memset(dlast, 0, (size_t)st_acts_rows(a) * H * sizeof(float));
    // a->dT / a->dC as [N, H] scratch for dpre and dcls (sizes fit: N*H <= BT*H)
    float *dpre = a->dT, *dcls = a->dC;
    if (mlp) {
        for (size_t i = 0; i < (size_t)N * H; i++) dpre[i] = dz[i] * (1.0f - a->pooled[i] * a->pooled[i]);
        linear_bwd(a, dpre, H, a->cls, H, N, H, H, m->w.pool_w, m->g.pool_w, m->g.pool_b, dcls, H, 0.0f, nt);
    } else {
        memcpy(dcls, dz, (size_t)N * H * sizeof(float));
    }
    for (int n = 0; n < N; n++) {
        const float *d = dcls + (size_t)n * H;
        if (mode == ST_POOL_MEAN) {
            int len = b->lens[n];
            float inv = 1.0f / (float)len;
            for (int t = 0; t < len; t++) {
                float *o = dlast + ((size_t)a->off[n] + t) * H;
                for (int i = 0; i < H; i++) o[i] = d[i] * inv;
            }
        } else {
            memcpy(dlast + (size_t)a->off[n] * H, d, (size_t)H * sizeof(float));
        }
    }
}

// ---------------------------------------------------------------- MLM head

static void ln_fwd_rows(const struct st_ops *ops, const float *x, int M, int n, const float *g, const float *b, float eps,
                        float *mean, float *rstd, float *y, int nt) {
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int blk = 0; blk < nblocks(M); blk++) {
        int r0 = blk * ST_ROWBLK, r1 = r0 + ST_ROWBLK < M ? r0 + ST_ROWBLK : M;
        ops->ln_fwd(r0, r1, x, n, g, b, eps, mean, rstd, y);
    }
}

double st_mlm_loss(struct st_model *m, struct st_acts *a, const float *last, int M, const int32_t *rows,
                   const int32_t *labels, float weight, float *dlast, int nt) {
    return st_mlm_loss_n(m, a, last, M, rows, labels, M, weight, dlast, nt);
}

double st_mlm_loss_n(struct st_model *m, struct st_acts *a, const float *last, int M, const int32_t *rows,
                     const int32_t *labels, int M_norm, float weight, float *dlast, int nt) {
    if (M <= 0) return 0.0;
    SEMBED_ASSERT(M_norm >= M);
    const struct st_config *c = &m->cfg;
    const struct st_weights *w = &m->w, *g = &m->g;
    const struct st_ops *ops = st_ops_get();
    SEMBED_ASSERT(w->mlm_w && a->mlm && M <= a->n_max * a->t_max);
    int H = c->hidden, V = c->vocab, chunk = a->mlm_chunk, nb = nblocks(M);
    size_t MH = (size_t)M * H, BTH = (size_t)a->n_max * a->t_max * H;
    float *X = a->mlm, *T1 = X + BTH, *T2 = T1 + BTH, *T3 = T2 + BTH, *dT3 = T3 + BTH, *dX = dT3 + BTH;
    float *mean = dX + BTH, *rstd = mean + (size_t)a->n_max * a->t_max, *logits = rstd + (size_t)a->n_max * a->t_max;
    for (int i = 0; i < M; i++)
        memcpy(X + (size_t)i * H, last + (size_t)st_acts_row(a, rows[i]) * H, (size_t)H * sizeof(float));
    sk_gemm_f32(false, true, M, H, H, 1.0f, X, H, w->mlm_w, H, 0.0f, T1, H, nt);
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int blk = 0; blk < nb; blk++) {
        int r0 = blk * ST_ROWBLK, r1 = r0 + ST_ROWBLK < M ? r0 + ST_ROWBLK : M;
        ops->act_fwd(r0, r1, T1, T2, H, w->mlm_b, c->act); // T1 = pre-activation (bias included)
    }
    ln_fwd_rows(ops, T2, M, H, w->mlm_ln_w, w->mlm_ln_b, c->ln_eps, mean, rstd, T3, nt);
    double loss = 0.0;
    float dscale = weight / (float)M_norm;
    for (int r0 = 0; r0 < M; r0 += chunk) {
        int rn = M - r0 < chunk ? M - r0 : chunk;
        linear_fwd(T3 + (size_t)r0 * H, H, rn, H, w->word, w->mlm_bias, V, logits, V, nt);
        double part[MLM_CHUNK];
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (int i = 0; i < rn; i++) {
            int y = labels[r0 + i];
            SEMBED_ASSERT(y >= 0 && y < V);
            part[i] = ops->xent_row(logits + (size_t)i * V, V, y, dscale);
        }
        for (int i = 0; i < rn; i++) loss += part[i];
        if (dlast)
            linear_bwd(a, logits, V, T3 + (size_t)r0 * H, H, rn, H, V, w->word, g->word, g->mlm_bias, dT3 + (size_t)r0 * H,
                       H, 0.0f, nt);
    }
    if (!dlast) return loss / M_norm;
    #pragma omp parallel for num_threads(nt) schedule(static)
    for (int blk = 0; blk < nb; blk++) {
        int r0, r1;
        float *part = block_rows(a, blk, M, &r0, &r1);
        ops->ln_bwd(r0, r1, dT3, T2, mean, rstd, H, w->mlm_ln_w, dT3, part, part + H);
        ops->act_bwd(r0, r1, dT3, T1, T2, H, c->act, part + 2 * H);
    }
    reduce_parts(a, nb, 0, H, g->mlm_ln_w, nt);
    reduce_parts(a, nb, H, H, g->mlm_ln_b, nt);
    reduce_parts(a, nb, 2 * H, H, g->mlm_b, nt);
    linear_bwd(a, dT3, H, X, H, M, H, H, w->mlm_w, g->mlm_w, NULL, dX, H, 0.0f, nt);
    for (int i = 0; i < M; i++) {
        float *o = dlast + (size_t)st_acts_row(a, rows[i]) * H;
        const float *d = dX + (size_t)i * H;
        for (int k = 0; k < H; k++) o[k] += d[k];
    }
    (void)MH;
    return loss / M_norm;
}
