// Trainer model: the tensor table over one parameter block, initialisation, loading from .semb.
#define _DEFAULT_SOURCE // MAP_ANONYMOUS, madvise
#include <math.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "sembed/semb.h"
#include "train/st.h"

float st_rng_normal(uint64_t key, uint64_t i) {
    // Box-Muller: u1 in (0,1], u2 in [0,1)
    float u1 = ((float)(st_rng_u32(key, 2 * i) >> 8) + 1.0f) * (1.0f / 16777216.0f);
    float u2 = st_rng_uniform(key, 2 * i + 1);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853071795865f * u2);
}

void *st_big_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= (2u << 20)) (void)madvise(p, bytes, MADV_HUGEPAGE); // advisory: failure is harmless
#endif
    return p;
}

void st_big_free(void *p, size_t bytes) {
    if (p) munmap(p, bytes ? bytes : 1);
}

struct table_builder {
    struct st_tensor *t;
    int n, cap;
    size_t off;
    int err;
};

static float *add_tensor(struct table_builder *tb, const char *name, int64_t d0, int64_t d1, bool decay) {
    if (tb->err) return NULL;
    if (tb->n == tb->cap) {
        int cap = tb->cap ? tb->cap * 2 : 64;
        struct st_tensor *nt = realloc(tb->t, (size_t)cap * sizeof *nt);
        if (!nt) { tb->err = SEMBED_ENOMEM; return NULL; }
        tb->t = nt; tb->cap = cap;
    }
    struct st_tensor *t = &tb->t[tb->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = d1 > 0 ? 2 : 1;
    t->dims[0] = d0; t->dims[1] = d1 > 0 ? d1 : 1;
    t->numel = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
    // Keep every tensor 64-byte aligned inside the block (16 floats).
    t->offset = tb->off;
    tb->off += (t->numel + 15) & ~(size_t)15;
    t->decay = decay;
    t->trainable = true;
    return (float *)(uintptr_t)(t->offset); // resolved against a base later
}

// Walk the tensor table in its fixed order; with base == NULL it builds the table, otherwise it
// resolves the typed view against base. One function so the order is defined once.
static void walk(const struct st_config *c, struct table_builder *tb, struct st_weights *w) {
    int H = c->hidden, I = c->inter;
    char nm[96];
    w->word = add_tensor(tb, "embeddings.word_embeddings.weight", c->vocab, H, true);
    w->pos = add_tensor(tb, "embeddings.position_embeddings.weight", c->max_pos, H, true);
    w->type = c->type_vocab > 0 ? add_tensor(tb, "embeddings.token_type_embeddings.weight", c->type_vocab, H, true) : NULL;
    w->eln_w = add_tensor(tb, "embeddings.LayerNorm.weight", H, 0, false);
    w->eln_b = add_tensor(tb, "embeddings.LayerNorm.bias", H, 0, false);
    for (int l = 0; l < c->layers; l++) {
        struct st_layer_w *L = &w->layer[l];
#define T2(field, suffix, d0, d1)                                                  \
        snprintf(nm, sizeof nm, "encoder.layer.%d.%s", l, suffix);                 \
        L->field = add_tensor(tb, nm, d0, d1, (d1) > 0 && !strstr(suffix, "LayerNorm"));
        // q, k, v weights adjacent, then their biases: the trainer runs the three projections
        // (and their gradients) as one GEMM over the [3H, H] block (st_graph.c, qkv_fused).
        T2(qw, "attention.self.query.weight", H, H) T2(kw, "attention.self.key.weight", H, H)
        T2(vw, "attention.self.value.weight", H, H) T2(qb, "attention.self.query.bias", H, 0)
        T2(kb, "attention.self.key.bias", H, 0) T2(vb, "attention.self.value.bias", H, 0)
        T2(aow, "attention.output.dense.weight", H, H) T2(aob, "attention.output.dense.bias", H, 0)
        T2(aln_w, "attention.output.LayerNorm.weight", H, 0) T2(aln_b, "attention.output.LayerNorm.bias", H, 0)
        T2(iw, "intermediate.dense.weight", I, H) T2(ib, "intermediate.dense.bias", I, 0)
        T2(ow, "output.dense.weight", H, I) T2(ob, "output.dense.bias", H, 0)
        T2(oln_w, "output.LayerNorm.weight", H, 0) T2(oln_b, "output.LayerNorm.bias", H, 0)
#undef T2
    }
    w->pool_w = w->pool_b = NULL;
    if (c->has_pooler) {
        w->pool_w = add_tensor(tb, "pooler.dense.weight", H, H, true);
        w->pool_b = add_tensor(tb, "pooler.dense.bias", H, 0, false);
    }
    w->mlm_w = w->mlm_b = w->mlm_ln_w = w->mlm_ln_b = w->mlm_bias = NULL;
    if (c->has_mlm) {
        w->mlm_w = add_tensor(tb, "cls.predictions.transform.dense.weight", H, H, true);
        w->mlm_b = add_tensor(tb, "cls.predictions.transform.dense.bias", H, 0, false);
        w->mlm_ln_w = add_tensor(tb, "cls.predictions.transform.LayerNorm.weight", H, 0, false);
        w->mlm_ln_b = add_tensor(tb, "cls.predictions.transform.LayerNorm.bias", H, 0, false);
        w->mlm_bias = add_tensor(tb, "cls.predictions.bias", c->vocab, 0, false);
    }
    w->proj_w = w->proj_b = NULL;
    if (c->proj_dim > 0) {
        w->proj_w = add_tensor(tb, "pooling.dense.0.weight", c->proj_dim, H, true);
        w->proj_b = add_tensor(tb, "pooling.dense.0.bias", c->proj_dim, 0, false);
    }
}

static void resolve(const struct st_model *m, const struct st_weights *offs, float *base, struct st_weights *out) {
    int n = m->cfg.layers;
    struct st_layer_w *layers = out->layer;
    // Every pointer in offs holds an offset (in floats) disguised as a pointer; NULL stays NULL.
#define R(p) ((p) ? base + (uintptr_t)(p) : NULL)
    out->word = R(offs->word); out->pos = R(offs->pos); out->type = R(offs->type);
    out->eln_w = R(offs->eln_w); out->eln_b = R(offs->eln_b);
    for (int l = 0; l < n; l++) {
        const struct st_layer_w *s = &offs->layer[l];
        struct st_layer_w *d = &layers[l];
        d->qw = R(s->qw); d->qb = R(s->qb); d->kw = R(s->kw); d->kb = R(s->kb); d->vw = R(s->vw); d->vb = R(s->vb);
        d->aow = R(s->aow); d->aob = R(s->aob); d->aln_w = R(s->aln_w); d->aln_b = R(s->aln_b);
        d->iw = R(s->iw); d->ib = R(s->ib); d->ow = R(s->ow); d->ob = R(s->ob); d->oln_w = R(s->oln_w); d->oln_b = R(s->oln_b);
    }
    out->layer = layers;
    out->pool_w = R(offs->pool_w); out->pool_b = R(offs->pool_b);
    out->mlm_w = R(offs->mlm_w); out->mlm_b = R(offs->mlm_b); out->mlm_ln_w = R(offs->mlm_ln_w);
    out->mlm_ln_b = R(offs->mlm_ln_b); out->mlm_bias = R(offs->mlm_bias);
    out->proj_w = R(offs->proj_w); out->proj_b = R(offs->proj_b);
#undef R
}

// walk() hands out offsets disguised as pointers; the block starts with 16 reserved floats so
// that no real offset reads as NULL (NULL = tensor absent).
int st_model_create(const struct st_config *cfg, struct st_model **out) {
    *out = NULL;
    const struct st_config *c = cfg;
    if (c->vocab <= 0 || c->hidden <= 0 || c->layers <= 0 || c->heads <= 0 || c->inter <= 0 || c->max_pos <= 0 ||
        c->type_vocab < 0 || c->hidden % c->heads != 0 || c->layers > 1024 || c->hidden > (1 << 16) ||
        c->inter > (1 << 18) || c->vocab > (1 << 24) || c->max_pos > (1 << 16) || c->type_vocab > 1024 ||
        c->proj_dim < 0 || c->proj_dim > (1 << 16))
        return sembed_fail(SEMBED_EINVAL, "st_model_create",
                           "bad shape: vocab %d hidden %d layers %d heads %d inter %d max_pos %d type_vocab %d", c->vocab,
                           c->hidden, c->layers, c->heads, c->inter, c->max_pos, c->type_vocab);
    struct st_model *m = calloc(1, sizeof *m);
    if (!m) return SEMBED_ENOMEM;
    m->cfg = *cfg;
    struct st_weights offs = {0};
    offs.layer = calloc((size_t)c->layers, sizeof *offs.layer);
    m->w.layer = calloc((size_t)c->layers, sizeof *m->w.layer);
    m->g.layer = calloc((size_t)c->layers, sizeof *m->g.layer);
    struct table_builder tb = {.off = 16};
    if (!offs.layer || !m->w.layer || !m->g.layer) { tb.err = SEMBED_ENOMEM; goto fail; }
    walk(c, &tb, &offs);
    if (tb.err) goto fail;
    m->tensors = tb.t; tb.t = NULL;
    m->n_tensors = tb.n;
    m->n_params = tb.off;
    m->params = st_big_alloc(m->n_params * sizeof(float)); // zero-filled
    if (!m->params) { tb.err = SEMBED_ENOMEM; goto fail; }
    resolve(m, &offs, m->params, &m->w);
    free(offs.layer);
    *out = m;
    return SEMBED_OK;
fail:
    free(offs.layer);
    free(tb.t);
    st_model_free(m);
    return tb.err ? tb.err : SEMBED_ENOMEM;
}

// Rebuild a typed view over another block with the same layout (grads): same offsets as params.
static void view_like(const struct st_model *m, float *base, struct st_weights *out) {
    struct st_layer_w *layers = out->layer;
    const float *p0 = m->params;
#define V(p) ((p) ? base + ((p) - p0) : NULL)
    const struct st_weights *w = &m->w;
    out->word = V(w->word); out->pos = V(w->pos); out->type = V(w->type); out->eln_w = V(w->eln_w); out->eln_b = V(w->eln_b);
    for (int l = 0; l < m->cfg.layers; l++) {
        const struct st_layer_w *s = &w->layer[l];
        struct st_layer_w *d = &layers[l];
        d->qw = V(s->qw); d->qb = V(s->qb); d->kw = V(s->kw); d->kb = V(s->kb); d->vw = V(s->vw); d->vb = V(s->vb);
        d->aow = V(s->aow); d->aob = V(s->aob); d->aln_w = V(s->aln_w); d->aln_b = V(s->aln_b);
        d->iw = V(s->iw); d->ib = V(s->ib); d->ow = V(s->ow); d->ob = V(s->ob); d->oln_w = V(s->oln_w); d->oln_b = V(s->oln_b);
    }
    out->layer = layers;
    out->pool_w = V(w->pool_w); out->pool_b = V(w->pool_b);
    out->mlm_w = V(w->mlm_w); out->mlm_b = V(w->mlm_b); out->mlm_ln_w = V(w->mlm_ln_w); out->mlm_ln_b = V(w->mlm_ln_b);
    out->mlm_bias = V(w->mlm_bias);
    out->proj_w = V(w->proj_w); out->proj_b = V(w->proj_b);
#undef V
}

int st_model_alloc_train(struct st_model *m) {
    if (m->grads) return SEMBED_OK;
    size_t bytes = m->n_params * sizeof(float);
    m->grads = st_big_alloc(bytes); // zero-filled
    m->adam_m = st_big_alloc(bytes);
    m->adam_v = st_big_alloc(bytes);
    if (!m->grads || !m->adam_m || !m->adam_v) {
        st_big_free(m->grads, bytes); st_big_free(m->adam_m, bytes); st_big_free(m->adam_v, bytes);
        m->grads = m->adam_m = m->adam_v = NULL;
        return SEMBED_ENOMEM;
    }
    view_like(m, m->grads, &m->g);
    return SEMBED_OK;
}

void st_model_free(struct st_model *m) {
    if (!m) return;
    free(m->tensors);
    size_t bytes = m->n_params * sizeof(float);
    st_big_free(m->params, bytes); st_big_free(m->grads, bytes); st_big_free(m->adam_m, bytes); st_big_free(m->adam_v, bytes);
    free(m->w.layer); free(m->g.layer);
    free(m);
}

void st_model_zero_grad(struct st_model *m) {
    if (m->grads) memset(m->grads, 0, m->n_params * sizeof(float));
}

const struct st_tensor *st_model_find(const struct st_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

void st_model_init_tensor(struct st_model *m, const struct st_tensor *t, uint64_t seed, float std) {
    float *p = m->params + t->offset;
    const char *nm = t->name;
    size_t len = strlen(nm);
    bool is_ln = strstr(nm, "LayerNorm") != NULL;
    bool is_bias = len >= 4 && !strcmp(nm + len - 4, "bias");
    if (is_ln && !is_bias) { for (size_t i = 0; i < t->numel; i++) p[i] = 1.0f; return; }
    if (is_bias) { memset(p, 0, t->numel * sizeof *p); return; }
    uint64_t key = st_rng_key(seed, ST_INIT, (uint64_t)(t - m->tensors), 0);
    for (size_t i = 0; i < t->numel; i++) p[i] = std * st_rng_normal(key, i);
}

void st_model_init_random(struct st_model *m, uint64_t seed, float std) {
    for (int i = 0; i < m->n_tensors; i++) st_model_init_tensor(m, &m->tensors[i], seed, std);
}

// ---------------------------------------------------------------- loading from .semb

static int get_u32_req(const struct sembed_file *f, const char *key, int *out) {
    uint32_t v;
    int rc = sembed_file_get_u32(f, key, &v);
    if (rc) return sembed_fail(rc, "sembed_train", "model metadata '%s': %s", key, sembed_strerror(rc));
    if (v > (1u << 30)) return sembed_fail(SEMBED_ECORRUPT, "sembed_train", "model metadata '%s' = %u is implausible", key, v);
    *out = (int)v;
    return 0;
}

static int load_tensor(const struct sembed_file *f, const struct st_tensor *t, float *dst) {
    struct sembed_tensor st;
    int rc = sembed_file_find_tensor(f, t->name, &st);
    if (rc) return rc;
    int64_t numel = 1;
    for (uint32_t d = 0; d < st.n_dims; d++) numel *= st.dims[d];
    int64_t want1 = t->dims[0], want2 = t->n_dims == 2 ? t->dims[1] : 1;
    bool ok = (size_t)numel == t->numel && st.dims[0] == want1 && (st.n_dims == (uint32_t)t->n_dims) &&
              (t->n_dims == 1 || st.dims[1] == want2);
    if (!ok)
        return sembed_fail(SEMBED_EDIMS, "sembed_train", "tensor '%s': expected shape [%lld, %lld], found %u dims [%lld, ...]",
                           t->name, (long long)want1, (long long)want2, st.n_dims, (long long)st.dims[0]);
    const unsigned char *src = st.data;
    switch (st.dtype) {
    case SEMBED_DTYPE_F32: memcpy(dst, src, t->numel * sizeof(float)); break;
    case SEMBED_DTYPE_F16:
        for (size_t i = 0; i < t->numel; i++) { uint16_t h; memcpy(&h, src + 2 * i, 2); dst[i] = sk_f16_to_f32(h); }
        break;
    case SEMBED_DTYPE_BF16:
        for (size_t i = 0; i < t->numel; i++) { uint16_t h; memcpy(&h, src + 2 * i, 2); dst[i] = sk_bf16_to_f32(h); }
        break;
    case SEMBED_DTYPE_Q8_ROW: {
        size_t cols = (size_t)st.dims[st.n_dims - 1], rows = t->numel / cols;
        size_t pad = (t->numel + SEMBED_ALIGNMENT - 1) / SEMBED_ALIGNMENT * SEMBED_ALIGNMENT;
        for (size_t r = 0; r < rows; r++) {
            float s; memcpy(&s, src + pad + 4 * r, 4);
            for (size_t c = 0; c < cols; c++) dst[r * cols + c] = (float)(int8_t)src[r * cols + c] * s;
        }
        break;
    }
    default:
        return sembed_fail(SEMBED_EDTYPE, "sembed_train", "tensor '%s': dtype %s cannot be trained", t->name,
                           sembed_dtype_name(st.dtype));
    }
    for (size_t i = 0; i < t->numel; i++)
        if (!isfinite(dst[i]))
            return sembed_fail(SEMBED_ECORRUPT, "sembed_train", "tensor '%s' element %zu is not finite", t->name, i);
    return 0;
}

int st_model_from_file(const struct sembed_file *f, bool want_pooler, bool want_mlm, uint64_t seed,
                       struct st_model **out, bool *fresh_pooler, bool *fresh_mlm) {
    *out = NULL;
    struct st_config c = {0};
    int rc;
    const char *arch = NULL;
    if ((rc = sembed_file_get_str(f, "general.architecture", &arch, NULL)) || strcmp(arch, "bert") != 0)
        return sembed_fail(SEMBED_EARCH, "sembed_train", "general.architecture: expected 'bert', found '%s'", arch ? arch : "(none)");
    if ((rc = get_u32_req(f, "bert.vocab_size", &c.vocab)) || (rc = get_u32_req(f, "bert.hidden_size", &c.hidden)) ||
        (rc = get_u32_req(f, "bert.num_layers", &c.layers)) || (rc = get_u32_req(f, "bert.num_heads", &c.heads)) ||
        (rc = get_u32_req(f, "bert.intermediate_size", &c.inter)) ||
        (rc = get_u32_req(f, "bert.max_position_embeddings", &c.max_pos)) ||
        (rc = get_u32_req(f, "bert.type_vocab_size", &c.type_vocab)))
        return rc;
    uint32_t pos_offset = 0;
    if (sembed_file_get_u32(f, "bert.position_offset", &pos_offset) == 0 && pos_offset != 0)
        return sembed_fail(SEMBED_EUNSUPPORTED, "sembed_train", "bert.position_offset %u (a RoBERTa-family model): "
                           "training these is not supported yet; embedding them is", pos_offset);
    if ((rc = sembed_file_get_f32(f, "bert.layer_norm_eps", &c.ln_eps)))
        return sembed_fail(rc, "sembed_train", "model metadata 'bert.layer_norm_eps': %s", sembed_strerror(rc));
    const char *act = NULL;
    if ((rc = sembed_file_get_str(f, "bert.hidden_act", &act, NULL)))
        return sembed_fail(rc, "sembed_train", "model metadata 'bert.hidden_act': %s", sembed_strerror(rc));
    if (!strcmp(act, "gelu")) c.act = SK_ACT_GELU_ERF;
    else if (!strcmp(act, "gelu_tanh")) c.act = SK_ACT_GELU_TANH;
    else if (!strcmp(act, "relu")) c.act = SK_ACT_RELU;
    else return sembed_fail(SEMBED_EUNSUPPORTED, "sembed_train", "bert.hidden_act '%s' is not supported", act);
    c.hidden_dropout = c.attn_dropout = 0.1f;
    if (sembed_file_get_f32(f, "bert.hidden_dropout", &c.hidden_dropout) == 0 &&
        !(c.hidden_dropout >= 0.0f && c.hidden_dropout < 1.0f))
        return sembed_fail(SEMBED_ECORRUPT, "sembed_train", "bert.hidden_dropout %g is not in [0, 1)", (double)c.hidden_dropout);
    if (sembed_file_get_f32(f, "bert.attention_dropout", &c.attn_dropout) == 0 &&
        !(c.attn_dropout >= 0.0f && c.attn_dropout < 1.0f))
        return sembed_fail(SEMBED_ECORRUPT, "sembed_train", "bert.attention_dropout %g is not in [0, 1)", (double)c.attn_dropout);
    if (!(c.ln_eps > 0.0f && c.ln_eps < 1.0f))
        return sembed_fail(SEMBED_ECORRUPT, "sembed_train", "bert.layer_norm_eps %g is out of range", (double)c.ln_eps);
    struct sembed_tensor tmp;
    bool file_pooler = sembed_file_find_tensor(f, "pooler.dense.weight", &tmp) == 0;
    bool file_mlm = sembed_file_find_tensor(f, "cls.predictions.transform.dense.weight", &tmp) == 0;
    c.has_pooler = want_pooler || file_pooler;
    c.has_mlm = want_mlm || file_mlm;
    // A distillation projection written by sembed train (one identity Dense layer) is kept.
    uint32_t nd = 0;
    const char *dact = NULL;
    if (sembed_file_get_u32(f, "pooling.dense_count", &nd) == 0 && nd == 1 &&
        sembed_file_get_str(f, "pooling.dense.0.activation", &dact, NULL) == 0 && !strcmp(dact, "identity") &&
        sembed_file_find_tensor(f, "pooling.dense.0.weight", &tmp) == 0 && tmp.n_dims == 2 &&
        tmp.dims[1] == (int64_t)c.hidden && tmp.dims[0] >= 1 && tmp.dims[0] <= (1 << 16))
        c.proj_dim = (int)tmp.dims[0];
    else if (nd > 0)
        SEMBED_LOG_WARNF("the model's %u pooling.dense layer(s) are not trained and will not be written", nd);
    struct st_model *m;
    if ((rc = st_model_create(&c, &m))) return rc;
    *fresh_pooler = want_pooler && !file_pooler;
    *fresh_mlm = want_mlm && !file_mlm;
    for (int i = 0; i < m->n_tensors; i++) {
        const struct st_tensor *t = &m->tensors[i];
        bool is_pool = !strncmp(t->name, "pooler.", 7), is_mlm = !strncmp(t->name, "cls.", 4);
        if ((is_pool && *fresh_pooler) || (is_mlm && *fresh_mlm)) {
            st_model_init_tensor(m, t, seed, 0.02f);
            continue;
        }
        if (!strcmp(t->name, "cls.predictions.bias") && sembed_file_find_tensor(f, t->name, &tmp) != 0) {
            memset(m->params + t->offset, 0, t->numel * sizeof(float)); // converters may omit a zero bias
            continue;
        }
        rc = load_tensor(f, t, m->params + t->offset);
        if (rc == SEMBED_ENOTFOUND) rc = sembed_fail(SEMBED_EMISSING, "sembed_train", "model lacks tensor '%s'", t->name);
        if (rc) { st_model_free(m); return rc; }
    }
    *out = m;
    return 0;
}
