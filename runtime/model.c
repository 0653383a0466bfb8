// Model loading (hyper-parameters, tensor shapes, weight packing) and contexts (the arena).
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "runtime/model_internal.h"
#include "sembed/tokenizer.h"

// Upper bounds that keep every size computation below far from overflow and every row count
// inside the kernels' int arguments. Real BERTs are far below (bert-large: H 1024, I 4096, L 24).
#define SE_MAX_HIDDEN 16384u
#define SE_MAX_INTER 65536u
#define SE_MAX_LAYERS 256u
#define SE_MAX_POS 65536u
#define SE_MAX_VOCAB (1u << 24)
#define SE_MAX_TYPES 1024u
#define SE_MAX_DENSE 16u
#define SE_MAX_THREADS 1024
#define SE_MAX_BATCH 65536u
#define SE_MAX_BATCH_TOKENS (1u << 22)

static const char *const pooling_names[] = {"default", "cls", "cls_before_pooler", "mean", "max", "first_last_avg"};

SEMBED_API const char *sembed_pooling_name(enum sembed_pooling p) {
    return (unsigned)p < sizeof pooling_names / sizeof pooling_names[0] ? pooling_names[p] : "?";
}

SEMBED_API int sembed_pooling_parse(const char *name, enum sembed_pooling *out) {
    for (int i = SEMBED_POOLING_CLS; i <= SEMBED_POOLING_FIRST_LAST_AVG; i++)
        if (name && strcmp(name, pooling_names[i]) == 0) {
            *out = (enum sembed_pooling)i;
            return SEMBED_OK;
        }
    return SEMBED_EINVAL;
}

int se_dense_act_from_name(const char *name) {
    if (!strcmp(name, "tanh")) return SK_ACT_TANH;
    if (!strcmp(name, "identity")) return SK_ACT_NONE;
    if (!strcmp(name, "relu")) return SK_ACT_RELU;
    if (!strcmp(name, "gelu")) return SK_ACT_GELU_ERF;
    return -1;
}

SEMBED_API struct sembed_model_params sembed_model_default_params(void) {
    struct sembed_model_params p = {.compute = SEMBED_COMPUTE_AUTO, .verify_checksums = false, .pack_eagerly = false};
    return p;
}

static const char *const compute_names[] = {"f32", "int8", "auto"};

SEMBED_API const char *sembed_compute_name(enum sembed_compute c) {
    return (unsigned)c < sizeof compute_names / sizeof compute_names[0] ? compute_names[c] : "?";
}

SEMBED_API int sembed_compute_parse(const char *name, enum sembed_compute *out) {
    for (int i = 0; i < (int)(sizeof compute_names / sizeof compute_names[0]); i++)
        if (name && strcmp(name, compute_names[i]) == 0) {
            *out = (enum sembed_compute)i;
            return SEMBED_OK;
        }
    return SEMBED_EINVAL;
}

/* ---------------------------------------------------------------- loading helpers */

struct loader {
    struct sembed_model *m;
    const char *fn; // public function name for messages
    enum sk_mode mode; // encoder Linear layers; the pooler and Dense layers always run f32 (docs/int8.md)
};

static int get_u32_req(struct loader *ld, const char *key, uint32_t lo, uint32_t hi, uint32_t *out) {
    int rc = sembed_file_get_u32(ld->m->file, key, out);
    if (rc == SEMBED_ENOTFOUND) return sembed_fail(SEMBED_EMISSING, ld->fn, "required key '%s' is missing", key);
    if (rc) return sembed_fail(rc, ld->fn, "key '%s': expected an unsigned integer (%s)", key, sembed_strerror(rc));
    if (*out < lo || *out > hi)
        return sembed_fail(SEMBED_ECORRUPT, ld->fn, "key '%s' = %u is outside [%u, %u]", key, *out, lo, hi);
    return SEMBED_OK;
}

static bool is_float_dtype(enum sembed_dtype d) {
    return d == SEMBED_DTYPE_F32 || d == SEMBED_DTYPE_F16 || d == SEMBED_DTYPE_BF16 || d == SEMBED_DTYPE_Q8_ROW;
}

// Find a tensor and check its rank, dims and that its dtype holds real numbers.
static int find_shaped(struct loader *ld, const char *name, uint32_t n_dims, int64_t d0, int64_t d1,
                       struct sembed_tensor *t) {
    int rc = sembed_file_find_tensor(ld->m->file, name, t);
    if (rc == SEMBED_ENOTFOUND) return sembed_fail(SEMBED_EMISSING, ld->fn, "tensor '%s' is missing", name);
    if (rc) return rc;
    if (!is_float_dtype(t->dtype))
        return sembed_fail(SEMBED_EDTYPE, ld->fn, "tensor '%s' has dtype %s; expected f32, f16, bf16 or q8_row", name,
                           sembed_dtype_name(t->dtype));
    if (t->n_dims != n_dims || t->dims[0] != d0 || (n_dims == 2 && t->dims[1] != d1)) {
        if (n_dims == 1)
            return sembed_fail(SEMBED_EDIMS, ld->fn, "tensor '%s': expected shape [%lld], found rank %u [%lld, ...]",
                               name, (long long)d0, t->n_dims, (long long)t->dims[0]);
        return sembed_fail(SEMBED_EDIMS, ld->fn, "tensor '%s': expected shape [%lld, %lld], found rank %u [%lld, %lld]",
                           name, (long long)d0, (long long)d1, t->n_dims, (long long)t->dims[0],
                           t->n_dims > 1 ? (long long)t->dims[1] : 1LL);
    }
    return SEMBED_OK;
}

static float decode_at(enum sembed_dtype dt, const void *data, size_t i) {
    const unsigned char *p = data;
    uint16_t h;
    float f;
    switch (dt) {
    case SEMBED_DTYPE_F16: memcpy(&h, p + 2 * i, 2); return sk_f16_to_f32(h);
    case SEMBED_DTYPE_BF16: memcpy(&h, p + 2 * i, 2); return sk_bf16_to_f32(h);
    default: memcpy(&f, p + 4 * i, 4); return f;
    }
}

// A zeroed f32 buffer of n elements owned by the model (freed with it).
static int own_vec(struct sembed_model *m, size_t n, const float **out) {
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? 2 * m->cap_owned : 64;
        float **o = realloc(m->owned, cap * sizeof *o);
        if (!o) return SEMBED_ENOMEM;
        m->owned = o;
        m->cap_owned = cap;
    }
    float *v = calloc(n ? n : 1, sizeof(float));
    if (!v) return SEMBED_ENOMEM;
    m->owned[m->n_owned++] = v;
    *out = v;
    return SEMBED_OK;
}

// A 1-D parameter of n elements as f32: zero-copy from the mapping when stored as f32 (the
// reader guarantees 64-byte alignment; pages are touched on first use, not at load), else an owned
// decoded copy.
static int load_vec(struct loader *ld, const char *name, int64_t n, const float **out) {
    struct sembed_tensor t;
    int rc = find_shaped(ld, name, 1, n, 0, &t);
    if (rc) return rc;
    if (t.dtype == SEMBED_DTYPE_Q8_ROW)
        return sembed_fail(SEMBED_EDTYPE, ld->fn, "tensor '%s': q8_row is for matrices, not vectors", name);
    if (t.nbytes != sembed_dtype_nbytes(t.dtype, 1, &n))
        return sembed_fail(SEMBED_ECORRUPT, ld->fn, "tensor '%s': %llu bytes for %lld %s values", name,
                           (unsigned long long)t.nbytes, (long long)n, sembed_dtype_name(t.dtype));
    if (t.dtype == SEMBED_DTYPE_F32 && ((uintptr_t)t.data & 3u) == 0) {
        *out = t.data;
        return SEMBED_OK;
    }
    const float *v;
    if ((rc = own_vec(ld->m, (size_t)n, &v))) return rc;
    float *dst = (float *)(uintptr_t)v;
    for (int64_t i = 0; i < n; i++) dst[i] = decode_at(t.dtype, t.data, (size_t)i);
    *out = v;
    return SEMBED_OK;
}

static int load_table(struct loader *ld, const char *name, int64_t rows, int64_t cols, struct se_table *tb) {
    struct sembed_tensor t;
    int rc = find_shaped(ld, name, 2, rows, cols, &t);
    if (rc) return rc;
    tb->dtype = t.dtype;
    tb->data = t.data;
    tb->rows = rows;
    tb->cols = cols;
    return SEMBED_OK;
}

// Check the byte size of a weight tensor against its shape (the reader checked it against the
// file; this guards the packer's reads).
static int lin_init(struct loader *ld, struct se_lin *L, const struct sembed_tensor *w, int n_parts, int n_out, int n_in,
                    const float *bias) {
    L->dtype = w[0].dtype;
    L->name = w[0].name;
    L->n_parts = n_parts;
    L->n_out = n_out;
    L->n_in = n_in;
    L->bias = bias;
    L->mode = ld->mode;
    for (int i = 0; i < n_parts; i++) {
        uint64_t want = sembed_dtype_nbytes(w[i].dtype, 2, (int64_t[]){n_out / n_parts, n_in});
        if (want == 0 || w[i].nbytes != want)
            return sembed_fail(SEMBED_ECORRUPT, ld->fn, "tensor '%s': %llu bytes for [%d, %d] %s; expected %llu", w[i].name,
                               (unsigned long long)w[i].nbytes, n_out / n_parts, n_in, sembed_dtype_name(w[i].dtype),
                               (unsigned long long)want);
        L->w[i] = w[i].data;
    }
    return SEMBED_OK;
}

// Linear prefix.weight [n_out, n_in] + prefix.bias [n_out] (bias optional when !need_bias).
static int load_linear(struct loader *ld, const char *prefix, int n_out, int n_in, bool need_bias, struct se_lin *out) {
    char name[256];
    struct sembed_tensor w;
    const float *bias = NULL;
    snprintf(name, sizeof name, "%s.weight", prefix);
    int rc = find_shaped(ld, name, 2, n_out, n_in, &w);
    if (rc) return rc;
    snprintf(name, sizeof name, "%s.bias", prefix);
    if (need_bias || sembed_file_find_tensor(ld->m->file, name, &(struct sembed_tensor){0}) == SEMBED_OK) {
        rc = load_vec(ld, name, n_out, &bias);
        if (rc) return rc;
    }
    return lin_init(ld, out, &w, 1, n_out, n_in, bias);
}

// Q, K and V: one fused [3H, H] Linear when they share a dtype, else three.
static int load_qkv(struct loader *ld, uint32_t l, struct se_layer *ly) {
    static const char *const part[3] = {"query", "key", "value"};
    const int H = (int)ld->m->H;
    struct sembed_tensor w[3];
    const float *b[3];
    char name[256];
    int rc;
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "encoder.layer.%u.attention.self.%s.weight", l, part[i]);
        if ((rc = find_shaped(ld, name, 2, H, H, &w[i]))) return rc;
        snprintf(name, sizeof name, "encoder.layer.%u.attention.self.%s.bias", l, part[i]);
        if ((rc = load_vec(ld, name, H, &b[i]))) return rc;
    }
    if (w[0].dtype != w[1].dtype || w[0].dtype != w[2].dtype) {
        struct se_lin *dst[3] = {&ly->q, &ly->k, &ly->v};
        for (int i = 0; i < 3; i++)
            if ((rc = lin_init(ld, dst[i], &w[i], 1, H, H, b[i]))) return rc;
        return SEMBED_OK;
    }
    if ((rc = lin_init(ld, &ly->qkv, w, 3, 3 * H, H, b[0]))) return rc;
    for (int i = 0; i < 3; i++) ly->qkv.bias_part[i] = b[i]; // concatenated when packed
    return SEMBED_OK;
}

static int load_layer(struct loader *ld, uint32_t l) {
    struct sembed_model *m = ld->m;
    struct se_layer *ly = &m->layers[l];
    char p[256], n2[256];
    int rc, H = (int)m->H, I = (int)m->I;
    if ((rc = load_qkv(ld, l, ly))) return rc;
    snprintf(p, sizeof p, "encoder.layer.%u.attention.output.dense", l);
    if ((rc = load_linear(ld, p, H, H, true, &ly->attn_out))) return rc;
    snprintf(p, sizeof p, "encoder.layer.%u.attention.output.LayerNorm.weight", l);
    snprintf(n2, sizeof n2, "encoder.layer.%u.attention.output.LayerNorm.bias", l);
    if ((rc = load_vec(ld, p, H, &ly->ln1_g)) || (rc = load_vec(ld, n2, H, &ly->ln1_b))) return rc;
    snprintf(p, sizeof p, "encoder.layer.%u.intermediate.dense", l);
    if ((rc = load_linear(ld, p, I, H, true, &ly->ffn_in))) return rc;
    snprintf(p, sizeof p, "encoder.layer.%u.output.dense", l);
    if ((rc = load_linear(ld, p, H, I, true, &ly->ffn_out))) return rc;
    snprintf(p, sizeof p, "encoder.layer.%u.output.LayerNorm.weight", l);
    snprintf(n2, sizeof n2, "encoder.layer.%u.output.LayerNorm.bias", l);
    if ((rc = load_vec(ld, p, H, &ly->ln2_g)) || (rc = load_vec(ld, n2, H, &ly->ln2_b))) return rc;
    return SEMBED_OK;
}

static int load_hparams(struct loader *ld) {
    struct sembed_model *m = ld->m;
    const struct sembed_file *f = m->file;
    const char *arch = NULL;
    int rc = sembed_file_get_str(f, "general.architecture", &arch, NULL);
    if (rc) return sembed_fail(rc == SEMBED_ENOTFOUND ? SEMBED_EMISSING : rc, ld->fn, "key 'general.architecture': %s",
                               sembed_strerror(rc));
    if (strcmp(arch, "bert") != 0)
        return sembed_fail(SEMBED_EARCH, ld->fn, "general.architecture is '%s'; this runtime runs 'bert'", arch);
    if ((rc = get_u32_req(ld, "bert.vocab_size", 1, SE_MAX_VOCAB, &m->vocab)) ||
        (rc = get_u32_req(ld, "bert.hidden_size", 1, SE_MAX_HIDDEN, &m->H)) ||
        (rc = get_u32_req(ld, "bert.num_layers", 1, SE_MAX_LAYERS, &m->L)) ||
        (rc = get_u32_req(ld, "bert.num_heads", 1, SE_MAX_HIDDEN, &m->n_heads)) ||
        (rc = get_u32_req(ld, "bert.intermediate_size", 1, SE_MAX_INTER, &m->I)) ||
        (rc = get_u32_req(ld, "bert.max_position_embeddings", 2, SE_MAX_POS, &m->max_pos)) ||
        (rc = get_u32_req(ld, "bert.type_vocab_size", 0, SE_MAX_TYPES, &m->type_vocab)))
        return rc;
    rc = sembed_file_get_u32(f, "bert.position_offset", &m->pos_offset);
    if (rc == SEMBED_ENOTFOUND) m->pos_offset = 0;
    else if (rc) return sembed_fail(rc, ld->fn, "key 'bert.position_offset': %s", sembed_strerror(rc));
    else if (m->pos_offset > m->max_pos - 2)
        return sembed_fail(SEMBED_ECORRUPT, ld->fn, "bert.position_offset %u leaves fewer than 2 of the %u positions",
                           m->pos_offset, m->max_pos);
    if (m->H % m->n_heads != 0)
        return sembed_fail(SEMBED_ECORRUPT, ld->fn, "bert.hidden_size %u is not a multiple of bert.num_heads %u", m->H,
                           m->n_heads);
    rc = sembed_file_get_f32(f, "bert.layer_norm_eps", &m->eps);
    if (rc) return sembed_fail(rc == SEMBED_ENOTFOUND ? SEMBED_EMISSING : rc, ld->fn, "key 'bert.layer_norm_eps': %s",
                               sembed_strerror(rc));
    if (!isfinite(m->eps) || m->eps < 0.0f || m->eps > 1.0f)
        return sembed_fail(SEMBED_ECORRUPT, ld->fn, "bert.layer_norm_eps = %g is not in [0, 1]", (double)m->eps);
    const char *act = NULL;
    rc = sembed_file_get_str(f, "bert.hidden_act", &act, NULL);
    if (rc) return sembed_fail(rc == SEMBED_ENOTFOUND ? SEMBED_EMISSING : rc, ld->fn, "key 'bert.hidden_act': %s",
                               sembed_strerror(rc));
    if (!strcmp(act, "gelu")) m->act = SK_ACT_GELU_ERF;
    else if (!strcmp(act, "gelu_tanh")) m->act = SK_ACT_GELU_TANH;
    else if (!strcmp(act, "relu")) m->act = SK_ACT_RELU;
    else return sembed_fail(SEMBED_EUNSUPPORTED, ld->fn, "bert.hidden_act '%s': expected gelu, gelu_tanh or relu", act);

    m->max_length = m->max_pos - m->pos_offset; // positions usable from the offset on
    uint32_t mml;
    rc = sembed_file_get_u32(f, "tokenizer.model_max_length", &mml);
    if (rc == SEMBED_OK) {
        if (mml < 2) return sembed_fail(SEMBED_ECORRUPT, ld->fn, "tokenizer.model_max_length = %u is below 2", mml);
        if (mml > m->max_length)
            SEMBED_LOG_WARNF("tokenizer.model_max_length %u exceeds the %u positions of bert.max_position_embeddings %u "
                             "past bert.position_offset %u; using %u", mml, m->max_length, m->max_pos, m->pos_offset,
                             m->max_length);
        else m->max_length = mml;
    } else if (rc != SEMBED_ENOTFOUND) {
        return sembed_fail(rc, ld->fn, "key 'tokenizer.model_max_length': %s", sembed_strerror(rc));
    }
    return SEMBED_OK;
}

static int load_pooling(struct loader *ld) {
    struct sembed_model *m = ld->m;
    const struct sembed_file *f = m->file;
    const char *mode = NULL;
    int rc = sembed_file_get_str(f, "pooling.mode", &mode, NULL);
    if (rc) return sembed_fail(rc == SEMBED_ENOTFOUND ? SEMBED_EMISSING : rc, ld->fn, "key 'pooling.mode': %s",
                               sembed_strerror(rc));
    if (sembed_pooling_parse(mode, &m->pooling))
        return sembed_fail(SEMBED_EUNSUPPORTED, ld->fn,
                           "pooling.mode '%s': expected cls, cls_before_pooler, mean, max or first_last_avg", mode);
    rc = sembed_file_get_bool(f, "pooling.normalize", &m->normalize);
    if (rc) return sembed_fail(rc == SEMBED_ENOTFOUND ? SEMBED_EMISSING : rc, ld->fn, "key 'pooling.normalize': %s",
                               sembed_strerror(rc));

    // The BERT pooler (dense + tanh on [CLS]); bert.has_pooler, when present, must agree with the tensors.
    bool has = false, declared = false;
    struct sembed_tensor t;
    bool present = sembed_file_find_tensor(f, "pooler.dense.weight", &t) == SEMBED_OK;
    rc = sembed_file_get_bool(f, "bert.has_pooler", &declared);
    if (rc == SEMBED_OK) {
        if (declared != present)
            return sembed_fail(SEMBED_ECORRUPT, ld->fn, "bert.has_pooler is %s but tensor 'pooler.dense.weight' is %s",
                               declared ? "true" : "false", present ? "present" : "absent");
        has = declared;
    } else if (rc == SEMBED_ENOTFOUND) {
        has = present;
    } else {
        return sembed_fail(rc, ld->fn, "key 'bert.has_pooler': %s", sembed_strerror(rc));
    }
    const enum sk_mode enc_mode = ld->mode;
    ld->mode = SK_MODE_F32;
    if (has && !(m->pooler = calloc(1, sizeof *m->pooler))) return SEMBED_ENOMEM;
    rc = has ? load_linear(ld, "pooler.dense", (int)m->H, (int)m->H, true, m->pooler) : SEMBED_OK;
    ld->mode = enc_mode;
    if (rc) return rc;

    // sentence-transformers Dense layers
    uint32_t nd = 0;
    rc = sembed_file_get_u32(f, "pooling.dense_count", &nd);
    if (rc && rc != SEMBED_ENOTFOUND) return sembed_fail(rc, ld->fn, "key 'pooling.dense_count': %s", sembed_strerror(rc));
    if (nd > SE_MAX_DENSE)
        return sembed_fail(SEMBED_ECORRUPT, ld->fn, "pooling.dense_count = %u exceeds %u", nd, SE_MAX_DENSE);
    m->dim = m->max_dim = m->H;
    if (nd == 0) return SEMBED_OK;
    m->dense = calloc(nd, sizeof *m->dense);
    m->dense_act = calloc(nd, sizeof *m->dense_act);
    if (!m->dense || !m->dense_act) return SEMBED_ENOMEM;
    m->n_dense = nd;
    for (uint32_t i = 0; i < nd; i++) {
        char key[128], prefix[64];
        snprintf(key, sizeof key, "pooling.dense.%u.activation", i);
        const char *an = "tanh"; // sentence-transformers' Dense default
        rc = sembed_file_get_str(f, key, &an, NULL);
        if (rc && rc != SEMBED_ENOTFOUND) return sembed_fail(rc, ld->fn, "key '%s': %s", key, sembed_strerror(rc));
        int a = se_dense_act_from_name(an);
        if (a < 0)
            return sembed_fail(SEMBED_EUNSUPPORTED, ld->fn, "%s '%s': expected tanh, identity, relu or gelu", key, an);
        m->dense_act[i] = (enum sk_act)a;
        snprintf(prefix, sizeof prefix, "pooling.dense.%u", i);
        snprintf(key, sizeof key, "%s.weight", prefix);
        if ((rc = sembed_file_find_tensor(f, key, &t)))
            return sembed_fail(SEMBED_EMISSING, ld->fn, "tensor '%s' is missing (pooling.dense_count = %u)", key, nd);
        if (t.n_dims != 2 || t.dims[0] < 1 || t.dims[0] > SE_MAX_INTER)
            return sembed_fail(SEMBED_EDIMS, ld->fn, "tensor '%s': expected [out <= %u, %u]", key, SE_MAX_INTER, m->dim);
        uint32_t n_out = (uint32_t)t.dims[0];
        ld->mode = SK_MODE_F32;
        rc = load_linear(ld, prefix, (int)n_out, (int)m->dim, false, &m->dense[i]);
        ld->mode = enc_mode;
        if (rc) return rc;
        m->dim = n_out;
        if (n_out > m->max_dim) m->max_dim = n_out;
    }
    return SEMBED_OK;
}

// A sequence-classification head (docs/format.md "classifier.*"): the file is a cross-encoder,
// its output per input is num_labels scores instead of an embedding.
static int load_classifier(struct loader *ld) {
    struct sembed_model *m = ld->m;
    const struct sembed_file *f = m->file;
    uint32_t nl = 0;
    int rc = sembed_file_get_u32(f, "classifier.num_labels", &nl);
    if (rc == SEMBED_ENOTFOUND) return SEMBED_OK;
    if (rc) return sembed_fail(rc, ld->fn, "key 'classifier.num_labels': %s", sembed_strerror(rc));
    if (nl < 1 || nl > 4096) return sembed_fail(SEMBED_ECORRUPT, ld->fn, "classifier.num_labels = %u is not in 1..4096", nl);
    if (m->n_dense) return sembed_fail(SEMBED_ECORRUPT, ld->fn, "a classifier head and pooling.dense layers in one file");
    const char *head = NULL, *act = NULL;
    if ((rc = sembed_file_get_str(f, "classifier.head", &head, NULL)))
        return sembed_fail(rc == SEMBED_ENOTFOUND ? SEMBED_EMISSING : rc, ld->fn, "key 'classifier.head': %s", sembed_strerror(rc));
    if ((rc = sembed_file_get_str(f, "classifier.activation", &act, NULL)))
        return sembed_fail(rc == SEMBED_ENOTFOUND ? SEMBED_EMISSING : rc, ld->fn, "key 'classifier.activation': %s",
                           sembed_strerror(rc));
    if (!strcmp(act, "sigmoid")) m->cls_out = SE_CLS_OUT_SIGMOID;
    else if (!strcmp(act, "identity")) m->cls_out = SE_CLS_OUT_IDENTITY;
    else if (!strcmp(act, "softmax")) m->cls_out = SE_CLS_OUT_SOFTMAX;
    else return sembed_fail(SEMBED_EUNSUPPORTED, ld->fn, "classifier.activation '%s': expected sigmoid, identity or softmax", act);
    if (!(m->cls_lin = calloc(2, sizeof *m->cls_lin))) return SEMBED_ENOMEM;
    const enum sk_mode enc_mode = ld->mode;
    ld->mode = SK_MODE_F32;
    if (!strcmp(head, "bert")) { // BertForSequenceClassification: pooler (tanh) -> classifier
        if (!m->pooler) rc = sembed_fail(SEMBED_EMISSING, ld->fn, "classifier.head 'bert' needs the pooler (pooler.dense.*)");
        else rc = load_linear(ld, "classifier", (int)nl, (int)m->H, true, &m->cls_lin[0]);
        m->cls_act[0] = SK_ACT_NONE;
        m->n_cls = 1;
    } else if (!strcmp(head, "roberta")) { // RobertaClassificationHead: dense (tanh) -> out_proj
        rc = load_linear(ld, "classifier.dense", (int)m->H, (int)m->H, true, &m->cls_lin[0]);
        if (!rc) rc = load_linear(ld, "classifier.out_proj", (int)nl, (int)m->H, true, &m->cls_lin[1]);
        m->cls_act[0] = SK_ACT_TANH;
        m->cls_act[1] = SK_ACT_NONE;
        m->n_cls = 2;
    } else {
        rc = sembed_fail(SEMBED_EUNSUPPORTED, ld->fn, "classifier.head '%s': expected bert or roberta", head);
    }
    ld->mode = enc_mode;
    if (rc) return rc;
    m->num_labels = nl;
    m->dim = nl;
    if (nl > m->max_dim) m->max_dim = nl;
    return SEMBED_OK;
}

// MPNet's relative_position_bucket (transformers/models/mpnet/modeling_mpnet.py): half of the
// buckets per direction, exact below a quarter of them, log-spaced up to max_distance. The log
// step is evaluated in float, as the PyTorch reference does on float32 tensors.
int32_t se_rel_bucket(int32_t d, uint32_t num_buckets, uint32_t max_distance) {
    int32_t half = (int32_t)num_buckets / 2, ret = 0, n = -d;
    if (n < 0) ret += half;
    n = n < 0 ? -n : n;
    int32_t max_exact = half / 2;
    if (n < max_exact) return ret + n;
    float r = logf((float)n / (float)max_exact) / (float)log((double)max_distance / (double)max_exact) *
              (float)(half - max_exact);
    int32_t large = max_exact + (int32_t)r;
    return ret + (large < half - 1 ? large : half - 1);
}

static int load_rel_bias(struct loader *ld) {
    struct sembed_model *m = ld->m;
    const struct sembed_file *f = m->file;
    uint32_t nb = 0, maxd = 128;
    int rc = sembed_file_get_u32(f, "bert.relative_attention_buckets", &nb);
    if (rc == SEMBED_ENOTFOUND) return SEMBED_OK;
    if (rc) return sembed_fail(rc, ld->fn, "key 'bert.relative_attention_buckets': %s", sembed_strerror(rc));
    rc = sembed_file_get_u32(f, "bert.relative_attention_max_distance", &maxd);
    if (rc && rc != SEMBED_ENOTFOUND)
        return sembed_fail(rc, ld->fn, "key 'bert.relative_attention_max_distance': %s", sembed_strerror(rc));
    if (nb < 4 || nb > 1024 || nb % 2 || maxd < nb / 4 + 1 || maxd > (1u << 20))
        return sembed_fail(SEMBED_ECORRUPT, ld->fn, "bert.relative_attention_buckets %u / max_distance %u: need an even "
                           "bucket count in 4..1024 and a distance above a quarter of it", nb, maxd);
    struct sembed_tensor t;
    const char *name = "encoder.relative_attention_bias.weight";
    if ((rc = find_shaped(ld, name, 2, nb, m->n_heads, &t))) return rc;
    const int64_t n = (int64_t)nb * m->n_heads;
    if (t.dtype != SEMBED_DTYPE_F32 && t.dtype != SEMBED_DTYPE_F16 && t.dtype != SEMBED_DTYPE_BF16)
        return sembed_fail(SEMBED_EDTYPE, ld->fn, "tensor '%s': %s; expected f32, f16 or bf16", name, sembed_dtype_name(t.dtype));
    if (t.nbytes != sembed_dtype_nbytes(t.dtype, 2, (int64_t[]){nb, m->n_heads}))
        return sembed_fail(SEMBED_ECORRUPT, ld->fn, "tensor '%s': %llu bytes for [%u, %u]", name,
                           (unsigned long long)t.nbytes, nb, m->n_heads);
    const float *v;
    if ((rc = own_vec(m, (size_t)n, &v))) return rc;
    float *dst = (float *)(uintptr_t)v;
    for (int64_t i = 0; i < n; i++) dst[i] = decode_at(t.dtype, t.data, (size_t)i);
    const int32_t ML = (int32_t)m->max_length;
    m->rel_bucket = malloc((size_t)(2 * ML - 1) * sizeof *m->rel_bucket);
    if (!m->rel_bucket) return SEMBED_ENOMEM;
    for (int32_t d = -(ML - 1); d <= ML - 1; d++) m->rel_bucket[d + ML - 1] = se_rel_bucket(d, nb, maxd);
    m->rel_bias = v;
    m->rel_buckets = nb;
    return SEMBED_OK;
}

static int load_all(struct loader *ld) {
    struct sembed_model *m = ld->m;
    int rc;
    if ((rc = load_hparams(ld))) return rc;
    if ((rc = sembed_tokenizer_borrow_file(m->file, &m->tok)))
        return sembed_fail(rc, ld->fn, "cannot build the tokenizer from the tokenizer.* keys (%s)", sembed_strerror(rc));
    // A tokenizer.json tokenizer may use fewer ids than the embedding has rows (the rest unused).
    bool hf = strncmp(sembed_tokenizer_kind(m->tok), "hf:", 3) == 0;
    if (hf ? sembed_tokenizer_vocab_size(m->tok) > m->vocab : sembed_tokenizer_vocab_size(m->tok) != m->vocab)
        return sembed_fail(SEMBED_ECORRUPT, ld->fn, "tokenizer.vocab has %zu entries but bert.vocab_size is %u",
                           sembed_tokenizer_vocab_size(m->tok), m->vocab);
    if ((rc = load_table(ld, "embeddings.word_embeddings.weight", m->vocab, m->H, &m->word)) ||
        (rc = load_table(ld, "embeddings.position_embeddings.weight", m->max_pos, m->H, &m->pos)))
        return rc;
    if (m->type_vocab > 0 && (rc = load_table(ld, "embeddings.token_type_embeddings.weight", m->type_vocab, m->H, &m->type)))
        return rc;
    if ((rc = load_vec(ld, "embeddings.LayerNorm.weight", m->H, &m->emb_ln_g)) ||
        (rc = load_vec(ld, "embeddings.LayerNorm.bias", m->H, &m->emb_ln_b)))
        return rc;
    m->layers = calloc(m->L, sizeof *m->layers);
    if (!m->layers) return SEMBED_ENOMEM;
    for (uint32_t l = 0; l < m->L; l++)
        if ((rc = load_layer(ld, l))) return rc;
    if ((rc = load_rel_bias(ld))) return rc;
    rc = load_pooling(ld);
    return rc ? rc : load_classifier(ld);
}

// AUTO: int8 when the file's Linear weights are int8 (`sembed convert --dtype q8`), else f32.
static enum sembed_compute resolve_compute(const struct sembed_file *f, enum sembed_compute c) {
    if (c != SEMBED_COMPUTE_AUTO) return c;
    struct sembed_tensor t;
    if (sembed_file_find_tensor(f, "encoder.layer.0.attention.self.query.weight", &t) == SEMBED_OK &&
        t.dtype == SEMBED_DTYPE_Q8_ROW)
        return SEMBED_COMPUTE_INT8;
    return SEMBED_COMPUTE_F32;
}

static int model_load(const struct sembed_file *f, struct sembed_file *owned, const struct sembed_model_params *params,
                      const char *fn, struct sembed_model **out) {
    struct sembed_model_params p = params ? *params : sembed_model_default_params();
    int rc;
    if (p.compute != SEMBED_COMPUTE_F32 && p.compute != SEMBED_COMPUTE_INT8 && p.compute != SEMBED_COMPUTE_AUTO) {
        sembed_file_free(owned);
        return sembed_fail(SEMBED_EINVAL, fn, "unknown compute mode %d", (int)p.compute);
    }
    if (p.verify_checksums) {
        int64_t bad = -1;
        if ((rc = sembed_file_verify(f, &bad))) {
            sembed_file_free(owned);
            if (bad < 0) return sembed_fail(rc, fn, "the tokenizer index does not match the vocabulary");
            return sembed_fail(rc, fn, "tensor data checksum verification failed (first bad tensor #%lld)", (long long)bad);
        }
    }
    struct sembed_model *m = calloc(1, sizeof *m);
    struct se_pack_state *ps = calloc(1, sizeof *ps);
    if (!m || !ps || pthread_mutex_init(&ps->lock, NULL) != 0) {
        free(m);
        free(ps);
        sembed_file_free(owned);
        return SEMBED_ENOMEM;
    }
    atomic_init(&ps->done, false);
    m->pack = ps;
    m->file = f;
    m->owned_file = owned;
    m->compute = resolve_compute(f, p.compute);
    struct loader ld = {.m = m, .fn = fn, .mode = m->compute == SEMBED_COMPUTE_INT8 ? SK_MODE_INT8 : SK_MODE_F32};
    if ((rc = load_all(&ld)) || (p.pack_eagerly && (rc = se_model_pack(m, 0)))) {
        if (rc == SEMBED_ENOMEM) SEMBED_LOG_ERR("out of memory while loading the model");
        sembed_model_free(m);
        return rc;
    }
    *out = m;
    return SEMBED_OK;
}

// The Linear layers of a model, in the order packing should start them (largest first).
static size_t model_lins(const struct sembed_model *m, struct se_lin **v, size_t cap) {
    size_t n = 0;
#define PUT(x) do { if ((x)->n_out > 0 && n < cap) v[n++] = (x); } while (0)
    for (uint32_t l = 0; m->layers && l < m->L; l++) PUT(&m->layers[l].ffn_in);
    for (uint32_t l = 0; m->layers && l < m->L; l++) PUT(&m->layers[l].ffn_out);
    for (uint32_t l = 0; m->layers && l < m->L; l++) {
        struct se_layer *ly = &m->layers[l];
        PUT(&ly->qkv);
        PUT(&ly->q);
        PUT(&ly->k);
        PUT(&ly->v);
        PUT(&ly->attn_out);
    }
    if (m->pooler) PUT(m->pooler);
    for (uint32_t i = 0; m->dense && i < m->n_dense; i++) PUT(&m->dense[i]);
    for (uint32_t i = 0; m->cls_lin && i < m->n_cls; i++) PUT(&m->cls_lin[i]);
#undef PUT
    return n;
}

static size_t model_n_lins(const struct sembed_model *m) { return (size_t)m->L * 7 + 1 + m->n_dense + 2; }

static int pack_lin(struct se_lin *L) {
    if (L->k || L->n_out <= 0) return SEMBED_OK;
    int rc;
    if (L->n_parts <= 1) {
        rc = sk_linear_create(&L->k, L->dtype, L->w[0], L->bias, L->n_out, L->n_in, L->mode);
    } else {
        // Fused Q/K/V: rows read from each part's mapped tensor; the biases concatenated.
        const int64_t rows = L->n_out / L->n_parts;
        float *bias = NULL;
        if (L->bias_part[0] && (bias = malloc((size_t)L->n_out * sizeof(float))))
            for (int i = 0; i < L->n_parts; i++) memcpy(bias + (size_t)i * rows, L->bias_part[i], (size_t)rows * sizeof(float));
        rc = L->bias_part[0] && !bias ? SEMBED_ENOMEM
                                       : sk_linear_create_parts(&L->k, L->dtype, (const void *const *)L->w, L->n_parts,
                                                                bias, L->n_out, L->n_in, L->mode);
        free(bias);
    }
    if (rc) return sembed_fail(rc, "sembed_model", "tensor '%s': cannot pack [%d, %d] %s weights for %s (%s)", L->name,
                               L->n_out, L->n_in, sembed_dtype_name(L->dtype), L->mode == SK_MODE_INT8 ? "int8" : "f32",
                               sembed_strerror(rc));
    return SEMBED_OK;
}

int se_model_pack(const struct sembed_model *m, int n_threads) {
    struct se_pack_state *ps = m->pack;
    if (atomic_load_explicit(&ps->done, memory_order_acquire)) return ps->rc;
    pthread_mutex_lock(&ps->lock);
    if (!atomic_load_explicit(&ps->done, memory_order_relaxed)) {
        size_t cap = model_n_lins(m);
        struct se_lin **v = malloc(cap * sizeof *v);
        int rc = v ? SEMBED_OK : SEMBED_ENOMEM;
        if (v) {
            size_t n = model_lins(m, v, cap);
            int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
            // Layers are independent: pack them in parallel, largest first.
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1 && n > 1)
            for (size_t i = 0; i < n; i++) {
                int r = pack_lin(v[i]);
                if (!r) // the packed copy replaces the mapped bytes: let their pages go (resident set)
                    for (int j = 0; j < (v[i]->n_parts > 1 ? v[i]->n_parts : 1); j++)
                        sembed_file_release(m->file, v[i]->w[j],
                                            (size_t)sembed_dtype_nbytes(v[i]->dtype, 2,
                                                                        (int64_t[]){v[i]->n_out / (v[i]->n_parts > 1 ? v[i]->n_parts : 1), v[i]->n_in}));
                if (r) {
#pragma omp critical(se_pack_rc)
                    rc = rc ? rc : r;
                }
            }
            free(v);
        }
        ps->rc = rc;
        atomic_store_explicit(&ps->done, true, memory_order_release);
    }
    pthread_mutex_unlock(&ps->lock);
    return ps->rc;
}

SEMBED_API int sembed_model_load(const char *path, const struct sembed_model_params *params, struct sembed_model **out) {
    if (!out) return SEMBED_EINVAL;
    *out = NULL;
    if (!path) return sembed_fail(SEMBED_EINVAL, "sembed_model_load", "path is NULL");
    struct sembed_file *f = NULL;
    int rc = sembed_file_open(path, &f);
    if (rc) return sembed_fail(rc, "sembed_model_load", "cannot open '%s': %s", path, sembed_strerror(rc));
    return model_load(f, f, params, "sembed_model_load", out);
}

SEMBED_API int sembed_model_load_file(const struct sembed_file *f, const struct sembed_model_params *params,
                                      struct sembed_model **out) {
    if (!out) return SEMBED_EINVAL;
    *out = NULL;
    if (!f) return sembed_fail(SEMBED_EINVAL, "sembed_model_load_file", "file is NULL");
    return model_load(f, NULL, params, "sembed_model_load_file", out);
}

SEMBED_API void sembed_model_free(struct sembed_model *m) {
    if (!m) return;
    size_t cap = model_n_lins(m);
    struct se_lin **v = malloc(cap * sizeof *v);
    if (v) {
        size_t n = model_lins(m, v, cap);
        for (size_t i = 0; i < n; i++) sk_linear_free(v[i]->k);
        free(v);
    } else { // no memory for the list: walk the same objects directly
        for (uint32_t l = 0; m->layers && l < m->L; l++) {
            struct se_layer *ly = &m->layers[l];
            struct se_lin *ls[] = {&ly->qkv, &ly->q, &ly->k, &ly->v, &ly->attn_out, &ly->ffn_in, &ly->ffn_out};
            for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++) sk_linear_free(ls[i]->k);
        }
        if (m->pooler) sk_linear_free(m->pooler->k);
        for (uint32_t i = 0; m->dense && i < m->n_dense; i++) sk_linear_free(m->dense[i].k);
        for (uint32_t i = 0; m->cls_lin && i < m->n_cls; i++) sk_linear_free(m->cls_lin[i].k);
    }
    free(m->layers);
    free(m->pooler);
    free(m->dense);
    free(m->dense_act);
    free(m->cls_lin);
    free(m->rel_bucket);
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    sembed_tokenizer_free(m->tok);
    sembed_file_free(m->owned_file);
    if (m->pack) pthread_mutex_destroy(&m->pack->lock);
    free(m->pack);
    free(m);
}

SEMBED_API uint32_t sembed_model_dim(const struct sembed_model *m) { return m->dim; }
SEMBED_API uint32_t sembed_model_hidden_size(const struct sembed_model *m) { return m->H; }
SEMBED_API uint32_t sembed_model_num_layers(const struct sembed_model *m) { return m->L; }
SEMBED_API uint32_t sembed_model_max_length(const struct sembed_model *m) { return m->max_length; }
SEMBED_API enum sembed_pooling sembed_model_pooling(const struct sembed_model *m) { return m->pooling; }
SEMBED_API bool sembed_model_normalize(const struct sembed_model *m) { return m->normalize; }
SEMBED_API bool sembed_model_has_pooler(const struct sembed_model *m) { return m->pooler != NULL; }
SEMBED_API uint32_t sembed_model_num_labels(const struct sembed_model *m) { return m ? m->num_labels : 0; }
SEMBED_API enum sembed_compute sembed_model_compute(const struct sembed_model *m) { return m->compute; }
SEMBED_API const struct sembed_tokenizer *sembed_model_tokenizer(const struct sembed_model *m) { return m->tok; }
SEMBED_API const struct sembed_file *sembed_model_file(const struct sembed_model *m) { return m->file; }

/* ---------------------------------------------------------------- contexts */

SEMBED_API struct sembed_context_params sembed_context_default_params(void) {
    struct sembed_context_params p = {
        .pooling = SEMBED_POOLING_DEFAULT,
        .normalize = SEMBED_NORMALIZE_DEFAULT,
        .max_length = 0,
        .truncate = SEMBED_TRUNCATE_LONGEST_FIRST,
        .n_threads = 0,
        .batch_size = 0,
        .batch_tokens = 0,
    };
    return p;
}

// Carves 64-byte aligned regions out of one block; the first pass (base == NULL) only measures.
struct carver {
    unsigned char *base;
    size_t off;
    bool overflow;
};

static void *carve(struct carver *c, size_t count, size_t elem) {
    if (count && elem > (SIZE_MAX - 64 - c->off) / count) {
        c->overflow = true;
        return NULL;
    }
    size_t start = (c->off + 63) & ~(size_t)63;
    c->off = start + count * elem;
    return c->base ? c->base + start : NULL;
}

static void layout(struct sembed_context *ctx, struct carver *c) {
    const struct sembed_model *m = ctx->m;
    size_t T = ctx->batch_tokens, B = ctx->batch_size, ML = ctx->max_length, H = m->H;
    size_t wide = 3 * H > m->I ? 3 * H : m->I;
    ctx->x = carve(c, T * H, sizeof(float));
    ctx->t1 = carve(c, T * H, sizeof(float));
    ctx->att = carve(c, T * H, sizeof(float));
    ctx->big = carve(c, T * wide, sizeof(float));
    ctx->h0 = ctx->pooling == SEMBED_POOLING_FIRST_LAST_AVG ? carve(c, T * H, sizeof(float)) : NULL;
    ctx->scores = carve(c, (size_t)ctx->n_threads, ctx->att_scratch_bytes);
    ctx->pool_a = carve(c, B * m->max_dim, sizeof(float));
    ctx->pool_b = carve(c, B * m->max_dim, sizeof(float));
    const size_t scratch = ctx->scratch_bytes;
    ctx->lin_scratch = scratch ? carve(c, scratch, 1) : NULL;
    ctx->slot_ids = carve(c, B * ML, sizeof(int32_t));
    ctx->slot_types = carve(c, B * ML, sizeof(int32_t));
    ctx->slot_len = carve(c, B, sizeof(uint32_t));
    ctx->slot_rc = carve(c, B, sizeof(int));
    ctx->slot_cut = carve(c, B, 1);
    ctx->pk_ids = carve(c, T, sizeof(int32_t));
    ctx->pk_types = carve(c, T, sizeof(int32_t));
    ctx->offs = carve(c, B + 1, sizeof(int));
}

// Scratch bytes sk_linear_forward needs for `rows` rows of L. Weights are packed lazily, so the
// size is asked of a one-row probe with the same input width and mode (the scratch holds the
// quantized activation rows: it does not depend on n_out).
static int lin_scratch(const struct se_lin *L, int rows, size_t *out) {
    *out = 0;
    if (L->n_out <= 0 || L->mode != SK_MODE_INT8) return SEMBED_OK;
    float *zero = calloc((size_t)L->n_in, sizeof(float));
    struct sk_linear *probe = NULL;
    int rc = zero ? sk_linear_create(&probe, SEMBED_DTYPE_F32, zero, NULL, 1, L->n_in, L->mode) : SEMBED_ENOMEM;
    if (rc == SEMBED_OK) *out = sk_linear_scratch_size(probe, rows);
    sk_linear_free(probe);
    free(zero);
    return rc;
}

static int context_scratch(const struct sembed_model *m, uint32_t T, uint32_t B, size_t *out) {
    size_t best = 0, s;
    int rc;
    for (uint32_t l = 0; l < m->L; l++) {
        const struct se_layer *ly = &m->layers[l];
        const struct se_lin *ls[] = {&ly->qkv, &ly->q, &ly->k, &ly->v, &ly->attn_out, &ly->ffn_in, &ly->ffn_out};
        for (size_t i = 0; i < sizeof ls / sizeof ls[0]; i++) {
            if ((rc = lin_scratch(ls[i], (int)T, &s))) return rc;
            if (s > best) best = s;
        }
    }
    if (m->pooler) {
        if ((rc = lin_scratch(m->pooler, (int)B, &s))) return rc;
        if (s > best) best = s;
    }
    for (uint32_t i = 0; i < m->n_dense; i++) {
        if ((rc = lin_scratch(&m->dense[i], (int)B, &s))) return rc;
        if (s > best) best = s;
    }
    *out = best;
    return SEMBED_OK;
}

SEMBED_API int sembed_context_create(const struct sembed_model *m, const struct sembed_context_params *params,
                                     struct sembed_context **out) {
    static const char fn[] = "sembed_context_create";
    if (!out) return SEMBED_EINVAL;
    *out = NULL;
    if (!m) return sembed_fail(SEMBED_EINVAL, fn, "model is NULL");
    struct sembed_context_params p = params ? *params : sembed_context_default_params();
    if ((unsigned)p.pooling > SEMBED_POOLING_FIRST_LAST_AVG)
        return sembed_fail(SEMBED_EINVAL, fn, "unknown pooling %d", (int)p.pooling);
    if ((unsigned)p.normalize > SEMBED_NORMALIZE_OFF)
        return sembed_fail(SEMBED_EINVAL, fn, "unknown normalize setting %d", (int)p.normalize);
    if ((unsigned)p.truncate > SEMBED_TRUNCATE_ERROR)
        return sembed_fail(SEMBED_EINVAL, fn, "unknown truncation mode %d", (int)p.truncate);
    uint32_t ml = p.max_length ? p.max_length : m->max_length;
    if (ml < 2 || ml > m->max_length)
        return sembed_fail(SEMBED_EINVAL, fn, "max_length %u: the model accepts 2..%u tokens", ml, m->max_length);
    if (p.n_threads < 0 || p.n_threads > SE_MAX_THREADS)
        return sembed_fail(SEMBED_EINVAL, fn, "n_threads %d: expected 0 (all cores) .. %d", p.n_threads, SE_MAX_THREADS);
    int nt = p.n_threads ? p.n_threads : omp_get_max_threads();
    if (nt < 1) nt = 1;
    uint32_t bs = p.batch_size ? p.batch_size : 32;
    if (bs > SE_MAX_BATCH) return sembed_fail(SEMBED_EINVAL, fn, "batch_size %u exceeds %u", bs, SE_MAX_BATCH);
    uint32_t bt = p.batch_tokens ? p.batch_tokens : (ml > 2048 ? ml : 2048);
    if (bt < ml || bt > SE_MAX_BATCH_TOKENS)
        return sembed_fail(SEMBED_EINVAL, fn, "batch_tokens %u: expected max_length (%u) .. %u", bt, ml,
                           SE_MAX_BATCH_TOKENS);

    struct sembed_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return SEMBED_ENOMEM;
    ctx->m = m;
    ctx->pooling = p.pooling == SEMBED_POOLING_DEFAULT ? m->pooling : p.pooling;
    ctx->normalize = p.normalize == SEMBED_NORMALIZE_DEFAULT ? m->normalize : p.normalize == SEMBED_NORMALIZE_ON;
    ctx->max_length = ml;
    ctx->batch_size = bs;
    ctx->batch_tokens = bt;
    ctx->truncate = p.truncate;
    ctx->n_threads = nt;
    size_t att_f32 = sk_attention_scratch_size((int)ml, (int)(m->H / m->n_heads));
    size_t att_q16 = m->compute == SEMBED_COMPUTE_INT8 ? sk_attention_q16_scratch_size((int)ml, (int)(m->H / m->n_heads)) : 0;
    size_t att_rel = m->rel_buckets ? (size_t)ml * ml * sizeof(float) : 0; // MPNet: one score matrix per thread
    if (att_rel > att_f32) att_f32 = att_rel;
    ctx->att_scratch_bytes = ((att_f32 > att_q16 ? att_f32 : att_q16) + 63) & ~(size_t)63;
    int rc = context_scratch(m, bt, bs, &ctx->scratch_bytes);
    if (rc) {
        free(ctx);
        return sembed_fail(rc, fn, "cannot size the kernels' scratch (%s)", sembed_strerror(rc));
    }

    struct carver c = {0};
    layout(ctx, &c);
    if (c.overflow) {
        free(ctx);
        return sembed_fail(SEMBED_ENOMEM, fn, "arena size overflows (batch_tokens %u, max_length %u)", bt, ml);
    }
    size_t bytes = (c.off + 63) & ~(size_t)63;
    ctx->arena = aligned_alloc(64, bytes);
    if (!ctx->arena) {
        free(ctx);
        return sembed_fail(SEMBED_ENOMEM, fn, "cannot allocate the %zu-byte arena", bytes);
    }
    ctx->arena_bytes = bytes;
    c = (struct carver){.base = ctx->arena};
    layout(ctx, &c);
    *out = ctx;
    return SEMBED_OK;
}

SEMBED_API void sembed_context_free(struct sembed_context *ctx) {
    if (!ctx) return;
    free(ctx->arena);
    free(ctx);
}

SEMBED_API enum sembed_pooling sembed_context_pooling(const struct sembed_context *ctx) { return ctx->pooling; }
SEMBED_API bool sembed_context_normalize(const struct sembed_context *ctx) { return ctx->normalize; }
SEMBED_API uint32_t sembed_context_max_length(const struct sembed_context *ctx) { return ctx->max_length; }
SEMBED_API int32_t sembed_context_n_threads(const struct sembed_context *ctx) { return ctx->n_threads; }
SEMBED_API size_t sembed_context_arena_bytes(const struct sembed_context *ctx) { return ctx->arena_bytes; }

SEMBED_API void sembed_context_stats(const struct sembed_context *ctx, struct sembed_embed_stats *out) {
    *out = ctx->stats;
}
SEMBED_API void sembed_context_stats_reset(struct sembed_context *ctx) { memset(&ctx->stats, 0, sizeof ctx->stats); }

