// sembed_train(): the training loop around st_loss_and_grad, data order, MLM masking, STS dev
// evaluation with best-checkpoint selection, checkpoint/resume, CSV log.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "formats/jsonx.h"
#include "formats/log.h"
#include "sembed/semb.h"
#include "sembed/tokenizer.h"
#include "sembed/train.h"
#include "train/evalsets.h"
#include "train/metrics.h"
#include "train/st.h"
#include "train/st_data.h"
#include "train/st_dist.h"
#include "train/st_io.h"

#define FN "sembed_train"

SEMBED_API struct sembed_train_params sembed_train_default_params(void) {
    struct sembed_train_params p;
    memset(&p, 0, sizeof p);
    p.objective = SEMBED_OBJECTIVE_UNSUP;
    p.pooler = SEMBED_TRAIN_POOL_CLS;
    p.batch = 64;
    p.max_length = 32;
    p.lr = 3e-5f;
    p.epochs = 1;
    p.temp = 0.05f;
    p.mlm_prob = 0.15f;
    p.clip = 1.0f;
    p.hidden_dropout = p.attention_dropout = -1.0f;
    p.seed = 42;
    p.eval_every = 125;
    p.mse_weight = 1.0f;
    p.rel_temp = 0.05f;
    return p;
}

SEMBED_API struct sembed_train_init sembed_train_init_default(void) {
    struct sembed_train_init i = {.layers = 2, .hidden = 128, .heads = 2, .intermediate = 512, .max_position = 512,
                                  .type_vocab = 2, .lowercase = true, .hidden_dropout = 0.1f, .attention_dropout = 0.1f};
    return i;
}

SEMBED_API int sembed_train_init_from_json(const char *json_path, struct sembed_train_init *out) {
    *out = sembed_train_init_default();
    struct json_object *o;
    int rc = sj_load_file(json_path, 1 << 20, &o);
    if (rc) return sembed_fail(rc, "sembed_train_init_from_json", "cannot read '%s'", json_path);
    if (!json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return sembed_fail(SEMBED_EPARSE, "sembed_train_init_from_json", "%s: expected a JSON object", json_path);
    }
    struct { const char *key; uint32_t *dst; } ints[] = {
        {"layers", &out->layers}, {"hidden", &out->hidden}, {"heads", &out->heads}, {"intermediate", &out->intermediate},
        {"max_position", &out->max_position}, {"type_vocab", &out->type_vocab}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int64_t v;
        int r = sj_get_int(o, ints[i].key, &v);
        if (r == SEMBED_ENOTFOUND) continue;
        if (r || v < 0 || v > (1 << 24)) {
            json_object_put(o);
            return sembed_fail(SEMBED_EINVAL, "sembed_train_init_from_json", "%s: '%s' must be an integer in [0, 2^24]",
                               json_path, ints[i].key);
        }
        *ints[i].dst = (uint32_t)v;
    }
    double d;
    if (sj_get_num(o, "hidden_dropout", &d) == 0) out->hidden_dropout = (float)d;
    if (sj_get_num(o, "attention_dropout", &d) == 0) out->attention_dropout = (float)d;
    bool lc;
    if (sj_get_bool(o, "lowercase", &lc) == 0) out->lowercase = lc;
    const char *vocab = NULL;
    if ((rc = sj_get_str(o, "vocab", &vocab))) {
        json_object_put(o);
        return sembed_fail(SEMBED_EMISSING, "sembed_train_init_from_json", "%s: \"vocab\" (path of vocab.txt) is required",
                           json_path);
    }
    char *path;
    const char *slash = strrchr(json_path, '/');
    if (vocab[0] != '/' && slash) {
        size_t n = (size_t)(slash - json_path) + 1;
        path = malloc(n + strlen(vocab) + 1);
        if (path) { memcpy(path, json_path, n); strcpy(path + n, vocab); }
    } else {
        path = strdup(vocab);
    }
    json_object_put(o);
    if (!path) return SEMBED_ENOMEM;
    out->vocab_path = path;
    return 0;
}

SEMBED_API void sembed_train_init_free(struct sembed_train_init *init) {
    if (!init) return;
    free((char *)(uintptr_t)init->vocab_path);
    init->vocab_path = NULL;
}

// ---------------------------------------------------------------- state

struct trainer {
    const struct sembed_train_params *p;
    struct sembed_file *src;
    struct sembed_tokenizer *tok;
    char **vocab;
    char *vocab_buf;
    size_t n_vocab;
    struct st_model *m;
    struct st_acts *a, *ea;
    struct st_data *data;
    struct st_teacher *teacher;
    float *tbuf;      // [B, teacher dim]: teacher rows of the current batch
    struct st_objective obj;
    int nt, kv, B;
    int64_t spe, total, warmup;
    int32_t pad_id, cls_id, sep_id, unk_id, mask_id;
    // batch buffers
    uint32_t *perm;
    int64_t perm_epoch;
    int32_t *ids, *types, *lens, *mids, *rows, *labels;
    // evaluation
    struct ev_task *sts;
    size_t n_pairs;
    double *gold;
    int32_t *eids;
    uint32_t *elen;   // token count of eval sentence j (ids at eids + j * ecap)
    size_t ecap;
    uint32_t *eorder;
    int et;
    enum st_pool eval_pool;
    bool eval_mlp;
    float *best;
    double best_dev, first_dev;
    int64_t best_step;
    char fingerprint[1024];
    char objective[128];
    char distill_fp[160];
    FILE *log;
    // data-parallel (params.comm with size > 1): this rank's share of each batch; io: rank 0
    struct st_dist *dist;
    int32_t *glens;
    int mlm_total;    // masked positions of the current global batch
    bool io;
};

static double cpu_s(void) { // process CPU time (all threads)
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int read_vocab(struct trainer *t, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return sembed_fail(SEMBED_EIO, FN, "cannot open vocabulary '%s': %s", path, strerror(errno));
    size_t cap = 0, len = 0;
    char *buf = NULL;
    for (;;) {
        if (cap - len < 65536) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 1 << 20);
            if (!nb) { free(buf); fclose(f); return SEMBED_ENOMEM; }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len - 1, f);
        len += r;
        if (!r) break;
    }
    fclose(f);
    buf[len] = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += buf[i] == '\n';
    if (len && buf[len - 1] != '\n') n++;
    t->vocab = malloc((n ? n : 1) * sizeof *t->vocab);
    if (!t->vocab) { free(buf); return SEMBED_ENOMEM; }
    size_t k = 0;
    for (char *p = buf; p < buf + len && k < n;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[l - 1] = 0;
        t->vocab[k++] = p;
        p = e ? e + 1 : buf + len;
    }
    t->vocab_buf = buf;
    t->n_vocab = k;
    if (k < 5) return sembed_fail(SEMBED_EINVAL, FN, "vocabulary '%s' has %zu entries", path, k);
    return 0;
}

static int setup_model(struct trainer *t) {
    const struct sembed_train_params *p = t->p;
    bool want_pooler = p->objective != SEMBED_OBJECTIVE_MLM && p->pooler == SEMBED_TRAIN_POOL_CLS;
    bool want_mlm = p->objective == SEMBED_OBJECTIVE_MLM || p->mlm_weight > 0.0f;
    int rc;
    if (p->model_path) {
        if ((rc = sembed_file_open(p->model_path, &t->src))) return rc;
        if ((rc = sembed_tokenizer_from_file(t->src, &t->tok))) return rc;
        bool fp, fm;
        if ((rc = st_model_from_file(t->src, want_pooler, want_mlm, p->seed, &t->m, &fp, &fm))) return rc;
        if (fp) SEMBED_LOG_INFOF("pooler.dense (SimCSE's MLP) initialised fresh: the model has none");
        if (fm) SEMBED_LOG_INFOF("MLM head initialised fresh: the model has none");
    } else {
        const struct sembed_train_init *in = p->init;
        if ((rc = read_vocab(t, in->vocab_path))) return rc;
        struct sembed_tokenizer_params tp = sembed_tokenizer_default_params();
        tp.lowercase = in->lowercase;
        tp.strip_accents = in->lowercase;
        tp.model_max_length = in->max_position;
        if ((rc = sembed_tokenizer_create((const char *const *)t->vocab, t->n_vocab, &tp, &t->tok))) return rc;
        struct st_config c = {.vocab = (int)t->n_vocab, .hidden = (int)in->hidden, .layers = (int)in->layers,
                              .heads = (int)in->heads, .inter = (int)in->intermediate, .max_pos = (int)in->max_position,
                              .type_vocab = (int)in->type_vocab, .ln_eps = 1e-12f, .act = SK_ACT_GELU_ERF,
                              .hidden_dropout = in->hidden_dropout, .attn_dropout = in->attention_dropout,
                              .has_pooler = want_pooler, .has_mlm = want_mlm};
        if ((rc = st_model_create(&c, &t->m))) return rc;
        st_model_init_random(t->m, p->seed, 0.02f);
    }
    struct st_config *c = &t->m->cfg;
    if (p->hidden_dropout >= 0.0f) c->hidden_dropout = p->hidden_dropout;
    if (p->attention_dropout >= 0.0f) c->attn_dropout = p->attention_dropout;
    if (!(c->hidden_dropout >= 0.0f && c->hidden_dropout < 1.0f && c->attn_dropout >= 0.0f && c->attn_dropout < 1.0f))
        return sembed_fail(SEMBED_EINVAL, FN, "dropout must be in [0, 1)");
    if ((uint32_t)c->max_pos < p->max_length)
        return sembed_fail(SEMBED_EINVAL, FN, "max_length %u exceeds the model's %d positions", p->max_length, c->max_pos);
    for (int i = 0; i < t->m->n_tensors; i++) {
        struct st_tensor *tt = &t->m->tensors[i];
        if (!strncmp(tt->name, "pooler.", 7)) tt->trainable = want_pooler;
        if (!strncmp(tt->name, "cls.", 4)) tt->trainable = want_mlm;
        if (!strncmp(tt->name, "pooling.dense.", 14))
            tt->trainable = p->objective == SEMBED_OBJECTIVE_DISTILL && p->mse_weight > 0.0f;
    }
    t->pad_id = sembed_tokenizer_pad_id(t->tok);
    t->cls_id = sembed_tokenizer_cls_id(t->tok);
    t->sep_id = sembed_tokenizer_sep_id(t->tok);
    t->unk_id = sembed_tokenizer_unk_id(t->tok);
    t->mask_id = sembed_tokenizer_mask_id(t->tok);
    if (t->pad_id < 0) return sembed_fail(SEMBED_EMISSING, FN, "the tokenizer has no pad token");
    if (want_mlm && t->mask_id < 0) return sembed_fail(SEMBED_EMISSING, FN, "MLM needs a mask token ([MASK]) in the vocabulary");
    if (sembed_tokenizer_vocab_size(t->tok) != (size_t)c->vocab)
        return sembed_fail(SEMBED_ECORRUPT, FN, "tokenizer has %zu tokens but the embedding has %d rows",
                           sembed_tokenizer_vocab_size(t->tok), c->vocab);
    return st_model_alloc_train(t->m);
}

// ---------------------------------------------------------------- evaluation

static int setup_eval(struct trainer *t) {
    const struct sembed_train_params *p = t->p;
    int rc = ev_task_load(p->eval_sts, EV_FORMAT_AUTO, p->strict, &t->sts);
    if (rc) return rc;
    t->n_pairs = ev_task_n_pairs(t->sts);
    size_t n = t->n_pairs, ns = 2 * n;
    int cap = t->m->cfg.max_pos < 128 ? t->m->cfg.max_pos : 128;
    t->gold = malloc(n * sizeof *t->gold);
    t->eids = malloc(ns * (size_t)cap * sizeof *t->eids);
    t->elen = malloc(ns * sizeof *t->elen);
    t->eorder = malloc(ns * sizeof *t->eorder);
    uint32_t *len = malloc(ns * sizeof *len);
    if (!t->gold || !t->eids || !t->elen || !t->eorder || !len) { free(len); return SEMBED_ENOMEM; }
    size_t k = 0;
    int fail = 0;
    for (size_t s = 0; s < t->sts->n_sets; s++) {
        const struct ev_set *set = &t->sts->sets[s];
        for (size_t i = 0; i < set->n; i++, k++) {
            t->gold[k] = set->gold[i];
            for (int side = 0; side < 2; side++) {
                size_t j = 2 * k + (size_t)side;
                uint32_t nn = 0;
                if (sembed_tokenizer_encode_input(t->tok, side ? set->s2[i] : set->s1[i], SIZE_MAX, NULL, 0, (uint32_t)cap,
                                                  SEMBED_TRUNCATE_LONGEST_FIRST, t->eids + j * (size_t)cap, NULL, &nn, NULL))
                    fail = 1;
                len[j] = nn;
            }
        }
    }
    if (fail) { free(len); return sembed_fail(SEMBED_EINVAL, FN, "%s: tokenizer failed", p->eval_sts); }
    // sort by length (stable) so chunks carry little padding
    int et = 1;
    for (size_t j = 0; j < ns; j++) { t->eorder[j] = (uint32_t)j; if ((int)len[j] > et) et = (int)len[j]; }
    size_t *cnt = calloc((size_t)et + 2, sizeof *cnt);
    uint32_t *ord = malloc(ns * sizeof *ord);
    if (!cnt || !ord) { free(cnt); free(ord); free(len); return SEMBED_ENOMEM; }
    for (size_t j = 0; j < ns; j++) cnt[len[j] + 1]++;
    for (int l = 0; l <= et; l++) cnt[l + 1] += cnt[l];
    for (size_t j = 0; j < ns; j++) ord[cnt[len[j]]++] = (uint32_t)j;
    memcpy(t->eorder, ord, ns * sizeof *ord);
    free(cnt); free(ord);
    memcpy(t->elen, len, ns * sizeof *len);
    free(len);
    t->et = et;
    int nmax = (int)((size_t)t->a->n_max * (size_t)t->a->t_max / (size_t)et);
    if (nmax < 1) nmax = 1;
    if ((size_t)nmax > ns) nmax = (int)ns;
    rc = st_acts_create(&t->m->cfg, nmax, et, t->nt, &t->ea);
    if (rc) return rc;
    t->ecap = (size_t)cap;
    // The pooler used at inference: cls with the trained MLP, or cls_before_pooler (mlp_only_train,
    // and MLM, which trains no MLP), or mean.
    bool mlp = t->p->pooler == SEMBED_TRAIN_POOL_CLS && !t->p->mlp_only_train && t->p->objective != SEMBED_OBJECTIVE_MLM;
    t->eval_pool = t->p->pooler == SEMBED_TRAIN_POOL_MEAN ? ST_POOL_MEAN : mlp ? ST_POOL_CLS : ST_POOL_CLS_BEFORE_POOLER;
    t->eval_mlp = mlp;
    return 0;
}

static int evaluate(struct trainer *t, double *out) {
    size_t ns = 2 * t->n_pairs, cap = t->ecap;
    int Hz = t->m->cfg.hidden, nmax = t->ea->n_max, P = t->m->cfg.proj_dim;
    int H = P > 0 ? P : Hz; // the inference embedding: through the projection when there is one
    float *emb = malloc(ns * (size_t)H * sizeof *emb);
    float *z = malloc((size_t)nmax * (Hz > H ? Hz : H) * sizeof *z), *y = P > 0 ? malloc((size_t)nmax * P * sizeof *y) : NULL;
    int32_t *ids = malloc((size_t)nmax * t->et * sizeof *ids), *lens = malloc((size_t)nmax * sizeof *lens);
    double *cos = malloc(t->n_pairs * sizeof *cos);
    int rc = 0;
    if (!emb || !z || !ids || !lens || !cos || (P > 0 && !y)) { rc = SEMBED_ENOMEM; goto done; }
    for (size_t j0 = 0; j0 < ns; j0 += (size_t)nmax) {
        int n = (int)(ns - j0 < (size_t)nmax ? ns - j0 : (size_t)nmax), T = 1;
        for (int i = 0; i < n; i++) { int l = (int)t->elen[t->eorder[j0 + i]]; if (l > T) T = l; }
        for (int i = 0; i < n; i++) {
            size_t j = t->eorder[j0 + i];
            int l = (int)t->elen[j];
            lens[i] = l;
            memcpy(ids + (size_t)i * T, t->eids + j * cap, (size_t)l * sizeof *ids);
            for (int q = l; q < T; q++) ids[(size_t)i * T + q] = t->pad_id;
        }
        struct st_batch b = {.n = n, .t = T, .ids = ids, .types = NULL, .lens = lens};
        st_forward(t->m, t->ea, &b, 0, t->nt);
        st_pool_forward(t->m, t->ea, &b, t->eval_pool, t->eval_mlp, z, t->nt);
        const float *zo = z;
        if (P > 0) { st_proj_forward(t->m, z, n, y); zo = y; }
        for (int i = 0; i < n; i++) memcpy(emb + (size_t)t->eorder[j0 + i] * H, zo + (size_t)i * H, (size_t)H * sizeof *z);
    }
    for (size_t k = 0; k < t->n_pairs; k++) {
        const float *a = emb + 2 * k * H, *b = a + H;
        double ab = 0, aa = 0, bb = 0;
        for (int i = 0; i < H; i++) { ab += (double)a[i] * b[i]; aa += (double)a[i] * a[i]; bb += (double)b[i] * b[i]; }
        cos[k] = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
    }
    double rho;
    rc = mt_spearman(cos, t->gold, t->n_pairs, &rho);
    if (!rc) *out = 100.0 * rho;
done:
    free(emb); free(z); free(y); free(ids); free(lens); free(cos);
    return rc;
}

// ---------------------------------------------------------------- batches

// The epoch's order of data rows. With shuffle_group G > 1 the data is read as groups of G
// consecutive rows (related sentences put side by side) and whole groups are shuffled, so each
// group lands in one batch (B is a multiple of G); rows after the last whole group come last.
static void make_perm(struct trainer *t, int64_t epoch) {
    size_t n = t->data->n_rows, G = t->p->shuffle_group > 1 ? t->p->shuffle_group : 1, ng = n / G;
    for (size_t i = 0; i < n; i++) t->perm[i] = (uint32_t)i;
    uint64_t key = st_rng_key(t->p->seed, ST_SHUFFLE, (uint64_t)epoch, 0);
    for (size_t i = ng - 1; ng > 0 && i > 0; i--) { // Fisher-Yates over groups (rows when G = 1)
        size_t j = (size_t)(st_mix64(key ^ (i * 0xd1b54a32d192ed03ull)) % (i + 1));
        for (size_t k = 0; k < G; k++) {
            uint32_t tmp = t->perm[i * G + k]; t->perm[i * G + k] = t->perm[j * G + k]; t->perm[j * G + k] = tmp;
        }
    }
    t->perm_epoch = epoch;
}

static bool special(const struct trainer *t, int32_t id) {
    return id == t->pad_id || id == t->cls_id || id == t->sep_id || id == t->unk_id || id == t->mask_id;
}

// MLM masking of token r of sequence q (its index in the batch one process builds): whether it is
// picked and, with dst, its replacement written there. Pure function of (key, q, r).
static bool mlm_pick(const struct trainer *t, uint64_t key, int q, int r, int32_t id, int32_t *dst) {
    if (special(t, id)) return false;
    uint64_t c = ((uint64_t)q << 20 | (uint64_t)r) * 4;
    if (st_rng_uniform(key, c) >= t->p->mlm_prob) return false;
    if (!dst) return true;
    float u = st_rng_uniform(key, c + 1);
    if (u < 0.8f) *dst = t->mask_id;
    else if (u < 0.9f) *dst = (int32_t)(st_rng_u32(key, c + 2) % (uint32_t)t->m->cfg.vocab);
    return true;
}

// Build the batch of step s into sd.
static void make_batch(struct trainer *t, int64_t s, struct st_step_data *sd) {
    const struct st_data *d = t->data;
    int64_t epoch = s / t->spe, j = s % t->spe;
    if (epoch != t->perm_epoch) make_perm(t, epoch);
    const uint32_t *rows = t->perm + (size_t)j * t->B;
    int B = t->B, kv = t->kv, T = 1;
    if (t->dist) { // this rank's contiguous slice of every view; offsets of the whole batch for dropout
        for (int v = 0; v < kv; v++)
            for (int i = 0; i < B; i++) {
                size_t sidx = (size_t)rows[i] * d->k + (size_t)(d->k == 1 ? 0 : v);
                t->glens[v * B + i] = (int32_t)(d->off[sidx + 1] - d->off[sidx]);
                // MLM's decoder is tied to the word table: its gradient is dense, no marks
                if (!t->obj.mlm) st_dist_touch(t->dist, d->ids + d->off[sidx], (size_t)t->glens[v * B + i]);
            }
        if (t->obj.mlm) { // the global batch's masked count: the denominator of the MLM mean
            uint64_t key = st_rng_key(t->p->seed, ST_MLM_MASK, (uint64_t)s, 0);
            t->mlm_total = 0;
            for (int g = 0; g < kv * B; g++) {
                size_t sidx = (size_t)rows[g % B] * d->k + (size_t)(d->k == 1 ? 0 : g / B);
                for (int r = 0; r < t->glens[g]; r++) t->mlm_total += mlm_pick(t, key, g, r, d->ids[d->off[sidx] + r], NULL);
            }
        }
        st_dist_offsets(t->dist, t->glens, t->m->cfg.heads);
        rows += (size_t)t->dist->rank * t->dist->b;
        B = t->dist->b;
    }
    int N = kv * B;
    bool mlm_only = t->p->objective == SEMBED_OBJECTIVE_MLM;
    for (int v = 0; v < kv; v++)
        for (int i = 0; i < B; i++) {
            size_t sidx = (size_t)rows[i] * d->k + (size_t)(d->k == 1 ? 0 : v);
            int l = (int)(d->off[sidx + 1] - d->off[sidx]);
            if (l > T) T = l;
        }
    for (int v = 0; v < kv; v++)
        for (int i = 0; i < B; i++) {
            int q = v * B + i;
            size_t sidx = (size_t)rows[i] * d->k + (size_t)(d->k == 1 ? 0 : v);
            int l = (int)(d->off[sidx + 1] - d->off[sidx]);
            memcpy(t->ids + (size_t)q * T, d->ids + d->off[sidx], (size_t)l * sizeof *t->ids);
            for (int r = l; r < T; r++) t->ids[(size_t)q * T + r] = t->pad_id;
            t->lens[q] = l;
        }
    memset(t->types, 0, (size_t)N * T * sizeof *t->types);
    struct st_batch b = {.n = N, .t = T, .ids = t->ids, .types = t->types, .lens = t->lens};
    if (t->dist) { b.row0 = t->dist->row0; b.att0 = t->dist->att0; }
    memset(sd, 0, sizeof *sd);
    if (!mlm_only) { sd->cl = b; sd->B = B; sd->hard_neg = kv == 3; }
    if (t->teacher) {
        for (int i = 0; i < B; i++) st_teacher_row(t->teacher, rows[i], t->tbuf + (size_t)i * t->teacher->dim);
        sd->teacher = t->tbuf;
        sd->teacher_dim = t->teacher->dim;
    }
    if (t->obj.mlm) {
        // HF DataCollatorForLanguageModeling: each non-special token with prob mlm_prob; of those
        // 80% [MASK], 10% a random id, 10% unchanged. Keyed by (seed, step, sequence, position).
        // Data-parallel: the counters are the sequences' indices in the global batch.
        uint64_t key = st_rng_key(t->p->seed, ST_MLM_MASK, (uint64_t)s, 0);
        int M = 0;
        memcpy(t->mids, t->ids, (size_t)N * T * sizeof *t->mids);
        for (int q = 0; q < N; q++) {
            int gq = t->dist ? st_dist_global_seq(t->dist, q) : q;
            for (int r = 0; r < t->lens[q]; r++) {
                int32_t id = t->ids[(size_t)q * T + r];
                if (!mlm_pick(t, key, gq, r, id, &t->mids[(size_t)q * T + r])) continue;
                t->rows[M] = q * T + r;
                t->labels[M] = id;
                M++;
            }
        }
        sd->mlm = b;
        sd->mlm.ids = t->mids;
        sd->M = M;
        sd->M_total = t->dist ? t->mlm_total : M;
        sd->mlm_rows = t->rows;
        sd->mlm_labels = t->labels;
    }
}

// ---------------------------------------------------------------- main loop

static const char *objective_name(enum sembed_objective o) {
    return o == SEMBED_OBJECTIVE_SUP ? "sup" : o == SEMBED_OBJECTIVE_MLM ? "mlm" : o == SEMBED_OBJECTIVE_DISTILL ? "distill" : "unsup";
}

static int save_model(struct trainer *t, const char *path, const float *params, int64_t steps, bool with_state) {
    struct st_save_info si = {.src = t->src, .vocab = (const char *const *)t->vocab, .n_vocab = t->n_vocab,
                              .lowercase = t->p->init ? t->p->init->lowercase : true, .objective = t->objective,
                              .normalize = false, .p = t->p, .warmup_steps = t->warmup, .steps = steps,
                              .n_rows = t->data->n_rows, .data_xxh3 = t->data->xxh3, .best_dev = t->best_dev,
                              .best_step = t->best_step, .with_state = with_state, .total_steps = t->total,
                              .first_dev = t->first_dev, .fingerprint = t->fingerprint};
    bool cls = t->p->pooler == SEMBED_TRAIN_POOL_CLS;
    si.pooling_mode = t->p->pooler == SEMBED_TRAIN_POOL_MEAN ? "mean" : cls && !t->p->mlp_only_train ? "cls" : "cls_before_pooler";
    if (t->p->objective == SEMBED_OBJECTIVE_MLM) si.pooling_mode = t->p->pooler == SEMBED_TRAIN_POOL_MEAN ? "mean" : "cls_before_pooler";
    if (t->src) {
        bool nrm;
        if (sembed_file_get_bool(t->src, "pooling.normalize", &nrm) == 0) si.normalize = nrm;
    }
    return st_save(path, t->m, params, &si);
}

static char *join(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    if (p) sprintf(p, "%s/%s", dir, name);
    return p;
}

static void trainer_free(struct trainer *t) {
    if (t->log) fclose(t->log);
    free(t->best);
    free(t->gold); free(t->eids); free(t->elen); free(t->eorder);
    ev_task_free(t->sts);
    free(t->perm); free(t->ids); free(t->types); free(t->lens); free(t->mids); free(t->rows); free(t->labels);
    st_data_free(t->data);
    st_teacher_free(t->teacher);
    free(t->tbuf);

    st_dist_free(t->dist);
    free(t->glens);
    st_acts_free(t->a);
    st_acts_free(t->ea);
    st_model_free(t->m);
    sembed_tokenizer_free(t->tok);
    sembed_file_free(t->src);
    free(t->vocab); free(t->vocab_buf);
}

// On resume: drop the log rows of steps after the checkpoint (a run killed between checkpoints
// logged steps that the resumed run does again), so the log has each step once. Atomic rewrite.
static int log_drop_after(const char *path, int64_t start) {
    FILE *in = fopen(path, "rb");
    if (!in) return 0; // no log yet: the resumed run starts one
    char *tmp = malloc(strlen(path) + 8);
    FILE *out = tmp ? (sprintf(tmp, "%s.tmp", path), fopen(tmp, "wb")) : NULL;
    if (!out) { fclose(in); free(tmp); return sembed_fail(SEMBED_EIO, FN, "cannot rewrite log '%s'", path); }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool first = true, bad = false;
    while ((n = getline(&line, &cap, in)) > 0) {
        bool keep = first || line[0] < '0' || line[0] > '9' || strtoll(line, NULL, 10) <= start;
        first = false;
        if (keep && fwrite(line, 1, (size_t)n, out) != (size_t)n) bad = true;
    }
    free(line);
    fclose(in);
    if (fflush(out) != 0 || fsync(fileno(out)) != 0) bad = true;
    if (fclose(out) != 0 || bad || rename(tmp, path) != 0) {
        remove(tmp);
        free(tmp);
        return sembed_fail(SEMBED_EIO, FN, "cannot rewrite log '%s'", path);
    }
    free(tmp);
    return 0;
}

static int check_params(const struct sembed_train_params *p) {
    if (!p->data_path || !p->out_path) return sembed_fail(SEMBED_EINVAL, FN, "data_path and out_path are required");
    if (!p->model_path == !p->init) return sembed_fail(SEMBED_EINVAL, FN, "give exactly one of model_path and init");
    if (p->init && !p->init->vocab_path) return sembed_fail(SEMBED_EINVAL, FN, "init needs a vocabulary path");
    if ((unsigned)p->objective > SEMBED_OBJECTIVE_DISTILL || (unsigned)p->pooler > SEMBED_TRAIN_POOL_MEAN)
        return sembed_fail(SEMBED_EINVAL, FN, "unknown objective or pooler");
    if (p->batch < 2 || p->batch > 65536) return sembed_fail(SEMBED_EINVAL, FN, "batch %u must be in [2, 65536]", p->batch);
    if (p->max_length < 3 || p->max_length > 4096) return sembed_fail(SEMBED_EINVAL, FN, "max_length %u must be in [3, 4096]", p->max_length);
    if (!(p->lr > 0 && p->lr < 1)) return sembed_fail(SEMBED_EINVAL, FN, "lr %g must be in (0, 1)", (double)p->lr);
    if (!(p->temp > 0)) return sembed_fail(SEMBED_EINVAL, FN, "temp must be > 0");
    if (!(p->mlm_weight >= 0) || !(p->mlm_prob > 0 && p->mlm_prob < 1) || !(p->weight_decay >= 0) || !(p->clip >= 0) ||
        !(p->warmup >= 0) || !isfinite(p->hard_neg_weight))
        return sembed_fail(SEMBED_EINVAL, FN, "mlm_weight, mlm_prob, weight_decay, clip, warmup out of range");
    if (p->steps < 0 || p->stop_after < 0 || p->eval_every < 0 || p->checkpoint_every < 0 || (p->steps == 0 && p->epochs == 0))
        return sembed_fail(SEMBED_EINVAL, FN, "steps/epochs/eval_every must be positive");
    if (p->resume && !p->checkpoint_dir) return sembed_fail(SEMBED_EINVAL, FN, "resume needs checkpoint_dir");
    if (p->objective == SEMBED_OBJECTIVE_DISTILL) {
        if (!p->teacher_path) return sembed_fail(SEMBED_EINVAL, FN, "objective distill needs a teacher .npy (--teacher)");
        if (!(p->mse_weight >= 0) || !(p->rel_weight >= 0) || !(p->cl_weight >= 0) || !(p->sim_weight >= 0) || !isfinite(p->mse_weight) ||
            !isfinite(p->rel_weight) || !isfinite(p->cl_weight) || !isfinite(p->sim_weight))
            return sembed_fail(SEMBED_EINVAL, FN, "mse_weight, rel_weight, sim_weight and cl_weight must be finite and >= 0");
        if (p->mse_weight == 0 && p->rel_weight == 0 && p->sim_weight == 0)
            return sembed_fail(SEMBED_EINVAL, FN, "objective distill needs mse_weight, rel_weight or sim_weight > 0");
        if (!(p->rel_temp > 0) || !isfinite(p->rel_temp)) return sembed_fail(SEMBED_EINVAL, FN, "rel_temp must be > 0");
    } else if (p->teacher_path) {
        return sembed_fail(SEMBED_EINVAL, FN, "a teacher is only used by objective distill");
    }
    return 0;
}

SEMBED_API int sembed_train(const struct sembed_train_params *p, struct sembed_train_result *res) {
    int rc = check_params(p);
    if (rc) return rc;
    struct trainer t_, *t = &t_;
    memset(t, 0, sizeof *t);
    t->p = p;
    t->perm_epoch = -1;
    t->best_dev = t->first_dev = NAN;
    t->best_step = -1;
    t->nt = p->n_threads > 0 ? p->n_threads : omp_get_max_threads();
    t->io = !p->comm || p->comm->rank == 0;
    double t0 = now_s();
    if ((rc = setup_model(t))) goto done;
    enum st_data_kind kind = p->objective == SEMBED_OBJECTIVE_SUP ? ST_DATA_PAIRS : ST_DATA_LINES;
    if ((rc = st_data_load(p->data_path, kind, p->strict, t->tok, p->max_length, t->nt, &t->data))) goto done;
    if (t->data->n_skipped)
        SEMBED_LOG_WARNF("%s: %zu malformed line(s) skipped", p->data_path, t->data->n_skipped);
    bool distill = p->objective == SEMBED_OBJECTIVE_DISTILL;
    if (distill) {
        if (t->data->n_skipped) {
            rc = sembed_fail(SEMBED_EINVAL, FN, "%s: distillation needs every line as a row (teacher row i = line i): "
                             "%zu line(s) were skipped", p->data_path, t->data->n_skipped);
            goto done;
        }
        if ((rc = st_teacher_open(p->teacher_path, t->data->n_rows, &t->teacher))) goto done;
        int D = t->teacher->dim, H = t->m->cfg.hidden;
        if (p->mse_weight > 0 && t->m->cfg.proj_dim != D && (H != D || t->m->cfg.proj_dim > 0)) {
            if (t->m->cfg.proj_dim > 0)
                SEMBED_LOG_WARNF("the model's projection to %d dims is replaced by a fresh one to the teacher's %d",
                                 t->m->cfg.proj_dim, D);
            if ((rc = st_model_add_proj(&t->m, D, p->seed))) goto done;
            SEMBED_LOG_INFOF("projection %d -> %d (pooling.dense.0, identity) initialised fresh for MSE to the teacher", H, D);
        }
        SEMBED_LOG_INFOF("teacher %s: %zu rows x %d dims", p->teacher_path, t->teacher->rows, D);
    }
    t->kv = p->objective == SEMBED_OBJECTIVE_MLM ? 1 : p->objective == SEMBED_OBJECTIVE_UNSUP ? 2
          : distill ? (p->cl_weight > 0 ? 2 : 1) : t->data->k;
    t->B = (int)(p->batch < t->data->n_rows ? p->batch : t->data->n_rows);
    if (p->shuffle_group > 1 && (t->B % (int)p->shuffle_group || t->data->n_rows < p->shuffle_group)) {
        rc = sembed_fail(SEMBED_EINVAL, FN, "shuffle_group %u: the batch (%d) must be a multiple of it and the data (%zu rows) at least one group",
                         p->shuffle_group, t->B, t->data->n_rows);
        goto done;
    }
    if (distill && !(t->tbuf = malloc((size_t)t->B * t->teacher->dim * sizeof *t->tbuf))) { rc = SEMBED_ENOMEM; goto done; }
    if (t->B < 2 && p->objective != SEMBED_OBJECTIVE_MLM) { rc = sembed_fail(SEMBED_EINVAL, FN, "contrastive training needs at least 2 rows"); goto done; }
    t->spe = (int64_t)(t->data->n_rows / (size_t)t->B); // the last partial batch is dropped
    t->total = p->steps ? p->steps : (int64_t)p->epochs * t->spe;
    t->warmup = p->warmup >= 1.0f ? (int64_t)p->warmup : (int64_t)ceil((double)p->warmup * (double)t->total);
    bool cls = p->pooler == SEMBED_TRAIN_POOL_CLS;
    if (distill)
        snprintf(t->distill_fp, sizeof t->distill_fp, " mse=%a rel=%a rt=%a cl=%a tdim=%d", (double)p->mse_weight,
                 (double)p->rel_weight, (double)p->rel_temp, (double)p->cl_weight, t->teacher->dim);
    if (distill && p->sim_weight > 0) {
        size_t n = strlen(t->distill_fp);
        snprintf(t->distill_fp + n, sizeof t->distill_fp - n, " sim=%a", (double)p->sim_weight);
    }
    t->obj = (struct st_objective){.contrastive = p->objective != SEMBED_OBJECTIVE_MLM && (!distill || p->cl_weight > 0),
                                   .pool = p->pooler == SEMBED_TRAIN_POOL_MEAN ? ST_POOL_MEAN : ST_POOL_CLS,
                                   .mlp = cls, .temp = p->temp, .hn_weight = p->hard_neg_weight,
                                   .mlm = p->objective == SEMBED_OBJECTIVE_MLM || p->mlm_weight > 0,
                                   .mlm_weight = p->mlm_weight, .distill = distill, .cl_weight = p->cl_weight,
                                   .mse_weight = p->mse_weight, .rel_weight = p->rel_weight, .rel_temp = p->rel_temp,
                                   .sim_weight = p->sim_weight};
    if (p->objective != SEMBED_OBJECTIVE_MLM && !cls) t->obj.mlp = false;
    {
        const char *parent = NULL;
        if (t->src && sembed_file_get_str(t->src, "train.objective", &parent, NULL) == 0 && strlen(parent) < 100)
            snprintf(t->objective, sizeof t->objective, "%s+%s", parent, objective_name(p->objective));
        else snprintf(t->objective, sizeof t->objective, "%s", objective_name(p->objective));
    }
    snprintf(t->fingerprint, sizeof t->fingerprint,
             "obj=%d pool=%d mlp_only=%d batch=%d maxlen=%u lr=%a steps=%lld warmup=%lld temp=%a hnw=%a mlmw=%a mlmp=%a "
             "wd=%a clip=%a hd=%a ad=%a seed=%llu data=%016llx rows=%zu eval=%lld%s",
             (int)p->objective, (int)p->pooler, (int)p->mlp_only_train, t->B, p->max_length, (double)p->lr,
             (long long)t->total, (long long)t->warmup, (double)p->temp, (double)p->hard_neg_weight, (double)p->mlm_weight,
             (double)p->mlm_prob, (double)p->weight_decay, (double)p->clip, (double)t->m->cfg.hidden_dropout,
             (double)t->m->cfg.attn_dropout, (unsigned long long)p->seed, (unsigned long long)t->data->xxh3,
             t->data->n_rows, (long long)(p->eval_sts ? p->eval_every : 0), t->distill_fp);
    if (p->shuffle_group > 1) {
        size_t n = strlen(t->fingerprint);
        snprintf(t->fingerprint + n, sizeof t->fingerprint - n, " group=%u", p->shuffle_group);
    }
    int N = t->kv * t->B, T = (int)p->max_length;
    if (p->comm && p->comm->size > 1) {
        if ((rc = st_dist_create(p->comm, t->B, t->kv, t->m->cfg.hidden, t->m->cfg.vocab, &t->dist))) goto done;
        if (distill && (rc = st_dist_set_teacher(t->dist, t->teacher->dim))) goto done;
        if (!(t->glens = malloc((size_t)N * sizeof *t->glens))) { rc = SEMBED_ENOMEM; goto done; }
        N = t->kv * t->dist->b;
    }
    if ((rc = st_acts_create(&t->m->cfg, N, T, t->nt, &t->a))) goto done;
    t->perm = malloc(t->data->n_rows * sizeof *t->perm);
    size_t NT = (size_t)N * T;
    t->ids = malloc(NT * sizeof *t->ids); t->types = malloc(NT * sizeof *t->types); t->lens = malloc((size_t)N * sizeof *t->lens);
    t->mids = malloc(NT * sizeof *t->mids); t->rows = malloc(NT * sizeof *t->rows); t->labels = malloc(NT * sizeof *t->labels);
    if (!t->perm || !t->ids || !t->types || !t->lens || !t->mids || !t->rows || !t->labels) { rc = SEMBED_ENOMEM; goto done; }
    if (p->eval_sts && t->io) { // only rank 0 evaluates and keeps the best weights
        if ((rc = setup_eval(t))) goto done;
        t->best = malloc(t->m->n_params * sizeof *t->best);
        if (!t->best) { rc = SEMBED_ENOMEM; goto done; }
    }
    int64_t start = 0;
    char *last_path = p->checkpoint_dir ? join(p->checkpoint_dir, "last.semb") : NULL;
    char *best_path = p->checkpoint_dir ? join(p->checkpoint_dir, "best.semb") : NULL;
    if (p->checkpoint_dir) {
        if ((!last_path || !best_path)) { rc = SEMBED_ENOMEM; goto done_paths; }
        if (t->io && mkdir(p->checkpoint_dir, 0777) != 0 && errno != EEXIST) {
            rc = sembed_fail(SEMBED_EIO, FN, "cannot create '%s': %s", p->checkpoint_dir, strerror(errno));
            goto done_paths;
        }
    }
    if (p->resume) {
        struct st_ckpt_state cs;
        if ((rc = st_load_checkpoint(last_path, t->m, t->fingerprint, &cs))) goto done_paths;
        start = cs.step;
        t->best_dev = cs.best_dev; t->first_dev = cs.first_dev; t->best_step = cs.best_step;
        if (t->best && cs.best_step >= 0 && !isnan(cs.best_dev) && (rc = st_load_params(best_path, t->m, t->best)))
            goto done_paths;
        SEMBED_LOG_INFOF("resumed from %s at step %lld", last_path, (long long)start);
    }
    if (p->log_csv && t->io) {
        if (start > 0 && (rc = log_drop_after(p->log_csv, start))) goto done_paths;
        t->log = fopen(p->log_csv, start > 0 ? "a" : "w");
        if (!t->log) { rc = sembed_fail(SEMBED_EIO, FN, "cannot open log '%s': %s", p->log_csv, strerror(errno)); goto done_paths; }
        if (start == 0) fprintf(t->log, "step,epoch,lr,loss,cl_loss,mlm_loss,grad_norm,examples_per_s,elapsed_s,dev_spearman,cpu_s\n");
    }
    if (t->best && start == 0) {
        if ((rc = evaluate(t, &t->first_dev))) goto done_paths;
        if (t->log) fprintf(t->log, "0,0,0,,,,,,0,%.4f,0\n", t->first_dev);
    }
    struct st_adamw opt = {.lr = p->lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = p->weight_decay};
    int64_t end = p->stop_after && p->stop_after < t->total ? p->stop_after : t->total;
    double tl = now_s(), tc = cpu_s(), loss = NAN;
    int64_t done_steps = 0;
    st_model_zero_grad(t->m); // then AdamW zeroes what it consumes
    for (int64_t s = start; s < end; s++) {
        struct st_step_data sd;
        make_batch(t, s, &sd);
        uint64_t kc = st_rng_key(p->seed, (uint64_t)s, 1, 0) | 1, km = st_rng_key(p->seed, (uint64_t)s, 2, 0) | 1;
        double lc = 0, lm = 0;
        if (t->dist) {
            int err = 0;
            loss = st_dist_step(t->m, t->a, &t->obj, &sd, kc, km, t->dist, true, t->nt, &lc, &lm, &err);
            if (err || (err = st_dist_allreduce_grads(t->dist, t->m))) { rc = err; goto done_paths; }
        } else {
            loss = st_loss_and_grad(t->m, t->a, &t->obj, &sd, kc, km, true, t->nt, &lc, &lm);
        }
        if (!isfinite(loss)) { rc = sembed_fail(SEMBED_ESTATE, FN, "loss became %g at step %lld", loss, (long long)s + 1); goto done_paths; }
        double gn = st_grad_norm(t->m, t->nt);
        float lr = st_lr_at(p->lr, s, t->warmup, t->total);
        st_adamw_step_ex(t->m, &opt, lr, s + 1, st_clip_coef(gn, p->clip), true, t->nt);
        done_steps++;
        double el = now_s() - tl;
        struct sembed_train_progress pr = {.step = s + 1, .total_steps = t->total, .epoch = s / t->spe, .loss = loss,
                                           .cl_loss = lc, .mlm_loss = lm, .lr = lr, .grad_norm = gn,
                                           .examples_per_s = (double)done_steps * t->B / el,
                                           .eta_s = el / (double)done_steps * (double)(end - s - 1),
                                           .dev = NAN, .best_dev = t->best_dev};
        bool last = s + 1 == end;
        if (t->best && ((p->eval_every && (s + 1) % p->eval_every == 0) || s + 1 == t->total)) {
            if ((rc = evaluate(t, &pr.dev))) goto done_paths;
            pr.evaluated = true;
            if (isnan(t->best_dev) || pr.dev > t->best_dev) {
                t->best_dev = pr.dev;
                t->best_step = s + 1;
                memcpy(t->best, t->m->params, t->m->n_params * sizeof *t->best);
                if (best_path && (rc = save_model(t, best_path, t->best, s + 1, false))) goto done_paths;
            }
            pr.best_dev = t->best_dev;
        }
        if (t->log) {
            fprintf(t->log, "%lld,%lld,%.6g,%.6f,%.6f,%.6f,%.4f,%.2f,%.2f,", (long long)(s + 1), (long long)pr.epoch,
                    (double)lr, loss, lc, lm, gn, pr.examples_per_s, el);
            if (pr.evaluated) fprintf(t->log, "%.4f", pr.dev);
            fprintf(t->log, ",%.3f\n", cpu_s() - tc);
            fflush(t->log);
        }
        if (p->progress) p->progress(&pr, p->progress_user);
        if (last_path && t->io && (last || pr.evaluated || (p->checkpoint_every && (s + 1) % p->checkpoint_every == 0)))
            if ((rc = save_model(t, last_path, t->m->params, s + 1, true))) goto done_paths;
    }
    bool finished = end == t->total;
    if (t->io && (finished || !p->checkpoint_dir)) {
        const float *outp = t->best && t->best_step > 0 && !p->keep_last ? t->best : t->m->params;
        if ((rc = save_model(t, p->out_path, outp, end, false))) goto done_paths;
    }
    if (res) {
        res->steps = end;
        res->final_loss = loss;
        res->first_dev = t->first_dev;
        res->best_dev = t->best_dev;
        res->best_step = t->best_step;
        res->data_xxh3 = t->data->xxh3;
        res->n_rows = t->data->n_rows;
        res->n_skipped = t->data->n_skipped;
        res->seconds = now_s() - t0;
    }
done_paths:
    free(last_path);
    free(best_path);
done:
    trainer_free(t);
    return rc;
}
