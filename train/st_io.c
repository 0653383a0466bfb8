// Trained models and checkpoints as .semb files (atomic through sembed_writer).
#define _POSIX_C_SOURCE 200809L // gmtime_r
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "formats/log.h"
#include "sembed/semb.h"
#include "sembed/train.h"
#include "train/st_io.h"

static bool has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

// Keys st_save writes itself (or that no longer describe the trained weights).
static bool skip_key(const char *k) {
    static const char *const exact[] = {"bert.has_pooler", "bert.has_mlm_head", "bert.hidden_dropout",
                                        "bert.attention_dropout", "general.file_type", "general.source.format",
                                        "general.created", "general.converter"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (!strcmp(k, exact[i])) return true;
    // tokenizer.index.* is derived from tokenizer.vocab: st_save writes it afresh (index_from).
    return has_prefix(k, "train.") || has_prefix(k, "pooling.") || has_prefix(k, "quant.") || has_prefix(k, "tokenizer.index.");
}

// The tokenizer index (docs/format.md) for the vocabulary copied from src.
static int index_from(struct sembed_writer *w, const struct sembed_file *src) {
    int64_t kv = sembed_file_find_kv(src, "tokenizer.vocab");
    enum sembed_type et;
    uint64_t n = 0;
    if (kv < 0 || sembed_file_kv_array_info(src, kv, &et, &n) || et != SEMBED_TYPE_STRING || n == 0) return 0; // no vocabulary: no index
    const char **items = malloc(n * sizeof *items);
    if (!items) return SEMBED_ENOMEM;
    int rc = 0;
    for (uint64_t j = 0; j < n && !rc; j++) rc = sembed_file_kv_arr_str(src, kv, j, &items[j], NULL);
    const char *prefix = NULL; // absent: the default "##"
    if (!rc && sembed_file_get_str(src, "tokenizer.continuing_prefix", &prefix, NULL) == SEMBED_ETYPE) rc = SEMBED_ETYPE;
    if (!rc) rc = sembed_writer_add_tokenizer_index(w, items, n, prefix);
    free(items);
    return rc;
}

static int fresh_metadata(struct sembed_writer *w, const struct st_model *m, const struct st_save_info *si) {
    const struct st_config *c = &m->cfg;
    int rc = 0;
    rc |= sembed_writer_add_str(w, "general.architecture", "bert");
    rc |= sembed_writer_add_str(w, "general.name", "sembed-trained");
    rc |= sembed_writer_add_u32(w, "bert.vocab_size", (uint32_t)c->vocab);
    rc |= sembed_writer_add_u32(w, "bert.hidden_size", (uint32_t)c->hidden);
    rc |= sembed_writer_add_u32(w, "bert.num_layers", (uint32_t)c->layers);
    rc |= sembed_writer_add_u32(w, "bert.num_heads", (uint32_t)c->heads);
    rc |= sembed_writer_add_u32(w, "bert.intermediate_size", (uint32_t)c->inter);
    rc |= sembed_writer_add_u32(w, "bert.max_position_embeddings", (uint32_t)c->max_pos);
    rc |= sembed_writer_add_u32(w, "bert.type_vocab_size", (uint32_t)c->type_vocab);
    rc |= sembed_writer_add_f32(w, "bert.layer_norm_eps", c->ln_eps);
    rc |= sembed_writer_add_str(w, "bert.hidden_act", "gelu");
    rc |= sembed_writer_add_str(w, "bert.source_architecture", "BertModel");
    rc |= sembed_writer_add_str(w, "tokenizer.model", "wordpiece");
    rc |= sembed_writer_add_arr_str(w, "tokenizer.vocab", si->vocab, si->n_vocab);
    rc |= sembed_writer_add_bool(w, "tokenizer.lowercase", si->lowercase);
    rc |= sembed_writer_add_bool(w, "tokenizer.strip_accents", si->lowercase);
    rc |= sembed_writer_add_bool(w, "tokenizer.handle_chinese_chars", true);
    rc |= sembed_writer_add_bool(w, "tokenizer.clean_text", true);
    rc |= sembed_writer_add_str(w, "tokenizer.unk_token", "[UNK]");
    rc |= sembed_writer_add_str(w, "tokenizer.cls_token", "[CLS]");
    rc |= sembed_writer_add_str(w, "tokenizer.sep_token", "[SEP]");
    rc |= sembed_writer_add_str(w, "tokenizer.pad_token", "[PAD]");
    rc |= sembed_writer_add_str(w, "tokenizer.mask_token", "[MASK]");
    rc |= sembed_writer_add_str(w, "tokenizer.continuing_prefix", "##");
    rc |= sembed_writer_add_u32(w, "tokenizer.max_input_chars_per_word", 100);
    rc |= sembed_writer_add_u32(w, "tokenizer.model_max_length", (uint32_t)c->max_pos);
    if (rc) return SEMBED_EINVAL;
    return sembed_writer_add_tokenizer_index(w, si->vocab, si->n_vocab, "##");
}

int st_save(const char *path, const struct st_model *m, const float *params, const struct st_save_info *si) {
    struct sembed_writer *w;
    int rc = sembed_writer_create(path, &w);
    if (rc) return rc;
    const struct sembed_train_params *p = si->p;
    const struct st_config *c = &m->cfg;
    char buf[64];
    if (si->src) {
        int64_t n = sembed_file_n_kv(si->src);
        for (int64_t i = 0; i < n && !rc; i++)
            if (!skip_key(sembed_file_kv_key(si->src, i))) rc = sembed_writer_copy_kv(w, si->src, i);
        if (!rc) rc = index_from(w, si->src);
    } else {
        rc = fresh_metadata(w, m, si);
    }
    time_t now = time(NULL);
    struct tm tmv;
    gmtime_r(&now, &tmv);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    int r2 = 0;
    r2 |= sembed_writer_add_str(w, "general.created", buf);
    r2 |= sembed_writer_add_str(w, "general.source.format", "sembed-train");
    r2 |= sembed_writer_add_str(w, "general.file_type", "f32");
    snprintf(buf, sizeof buf, "sembed %s", sembed_version());
    r2 |= sembed_writer_add_str(w, "general.converter", buf);
    r2 |= sembed_writer_add_bool(w, "bert.has_pooler", c->has_pooler);
    r2 |= sembed_writer_add_bool(w, "bert.has_mlm_head", c->has_mlm);
    r2 |= sembed_writer_add_f32(w, "bert.hidden_dropout", c->hidden_dropout);
    r2 |= sembed_writer_add_f32(w, "bert.attention_dropout", c->attn_dropout);
    r2 |= sembed_writer_add_str(w, "pooling.mode", si->pooling_mode);
    r2 |= sembed_writer_add_bool(w, "pooling.normalize", si->normalize);
    r2 |= sembed_writer_add_u32(w, "pooling.dense_count", c->proj_dim > 0 ? 1 : 0);
    if (c->proj_dim > 0) r2 |= sembed_writer_add_str(w, "pooling.dense.0.activation", "identity");
    r2 |= sembed_writer_add_str(w, "train.objective", si->objective);
    r2 |= sembed_writer_add_u64(w, "train.steps", (uint64_t)si->steps);
    r2 |= sembed_writer_add_u32(w, "train.batch", p->batch);
    r2 |= sembed_writer_add_u32(w, "train.max_length", p->max_length);
    r2 |= sembed_writer_add_u64(w, "train.seed", p->seed);
    r2 |= sembed_writer_add_f32(w, "train.lr", p->lr);
    r2 |= sembed_writer_add_f32(w, "train.temp", p->temp);
    r2 |= sembed_writer_add_f32(w, "train.mlm_weight", p->objective == SEMBED_OBJECTIVE_MLM ? 1.0f : p->mlm_weight);
    r2 |= sembed_writer_add_f32(w, "train.hard_neg_weight", p->hard_neg_weight);
    r2 |= sembed_writer_add_f32(w, "train.weight_decay", p->weight_decay);
    r2 |= sembed_writer_add_f32(w, "train.clip", p->clip);
    r2 |= sembed_writer_add_u64(w, "train.warmup_steps", (uint64_t)si->warmup_steps);
    r2 |= sembed_writer_add_bool(w, "train.mlp_only_train", p->mlp_only_train);
    r2 |= sembed_writer_add_u64(w, "train.rows", si->n_rows);
    snprintf(buf, sizeof buf, "%016llx", (unsigned long long)si->data_xxh3);
    r2 |= sembed_writer_add_str(w, "train.data_xxh3", buf);
    r2 |= sembed_writer_add_str(w, "train.pooler", si->pooling_mode);
    if (p->objective == SEMBED_OBJECTIVE_DISTILL) r2 |= st_distill_save_keys(w, p);
    if (!isnan(si->best_dev)) {
        r2 |= sembed_writer_add_f32(w, "train.best_dev_spearman", (float)si->best_dev);
        r2 |= sembed_writer_add_u64(w, "train.best_step", (uint64_t)si->best_step);
    }
    if (si->with_state) {
        r2 |= sembed_writer_add_u64(w, "train.state.step", (uint64_t)si->steps);
        r2 |= sembed_writer_add_u64(w, "train.state.total_steps", (uint64_t)si->total_steps);
        r2 |= sembed_writer_add_f64(w, "train.state.best_dev", si->best_dev);
        r2 |= sembed_writer_add_u64(w, "train.state.best_step", (uint64_t)si->best_step);
        r2 |= sembed_writer_add_f64(w, "train.state.first_dev", si->first_dev);
        r2 |= sembed_writer_add_str(w, "train.state.fingerprint", si->fingerprint);
    }
    if (!rc && r2) rc = SEMBED_EINVAL;
    for (int pass = 0; pass < (si->with_state ? 3 : 1) && !rc; pass++)
        for (int i = 0; i < m->n_tensors && !rc; i++) {
            const struct st_tensor *t = &m->tensors[i];
            char nm[128];
            snprintf(nm, sizeof nm, "%s%s", pass == 0 ? "" : pass == 1 ? "adam.m." : "adam.v.", t->name);
            rc = sembed_writer_add_tensor(w, nm, SEMBED_DTYPE_F32, (uint32_t)t->n_dims, t->dims);
        }
    for (int pass = 0; pass < (si->with_state ? 3 : 1) && !rc; pass++) {
        const float *base = pass == 0 ? params : pass == 1 ? m->adam_m : m->adam_v;
        for (int i = 0; i < m->n_tensors && !rc; i++)
            rc = sembed_writer_write(w, base + m->tensors[i].offset, m->tensors[i].numel * sizeof(float));
    }
    if (rc) {
        sembed_writer_free(w);
        return sembed_fail(rc, "sembed_train", "cannot write '%s': %s", path, sembed_strerror(rc));
    }
    return sembed_writer_finish(w);
}

static int read_block(const struct sembed_file *f, const struct st_model *m, const char *prefix, float *dst,
                      const char *path) {
    for (int i = 0; i < m->n_tensors; i++) {
        const struct st_tensor *t = &m->tensors[i];
        char nm[128];
        snprintf(nm, sizeof nm, "%s%s", prefix, t->name);
        struct sembed_tensor st;
        if (sembed_file_find_tensor(f, nm, &st))
            return sembed_fail(SEMBED_EMISSING, "sembed_train", "%s: tensor '%s' missing", path, nm);
        if (st.dtype != SEMBED_DTYPE_F32 || st.nbytes != t->numel * sizeof(float))
            return sembed_fail(SEMBED_EDIMS, "sembed_train", "%s: tensor '%s': expected f32 x %zu, found %s, %llu bytes",
                               path, nm, t->numel, sembed_dtype_name(st.dtype), (unsigned long long)st.nbytes);
        memcpy(dst + t->offset, st.data, st.nbytes);
    }
    return 0;
}

int st_load_params(const char *path, const struct st_model *m, float *params) {
    struct sembed_file *f;
    int rc = sembed_file_open(path, &f);
    if (rc) return rc;
    rc = read_block(f, m, "", params, path);
    sembed_file_free(f);
    return rc;
}

int st_load_checkpoint(const char *path, struct st_model *m, const char *fingerprint, struct st_ckpt_state *st) {
    struct sembed_file *f;
    int rc = sembed_file_open(path, &f);
    if (rc) return rc;
    const char *fp = NULL;
    uint64_t step = 0, total = 0, best_step = 0;
    if ((rc = sembed_file_get_str(f, "train.state.fingerprint", &fp, NULL)) ||
        (rc = sembed_file_get_u64(f, "train.state.step", &step)) ||
        (rc = sembed_file_get_u64(f, "train.state.total_steps", &total)) ||
        (rc = sembed_file_get_u64(f, "train.state.best_step", &best_step)) ||
        (rc = sembed_file_get_f64(f, "train.state.best_dev", &st->best_dev)) ||
        (rc = sembed_file_get_f64(f, "train.state.first_dev", &st->first_dev))) {
        rc = sembed_fail(rc, "sembed_train", "%s is not a sembed training checkpoint (train.state.* keys)", path);
        goto done;
    }
    if (strcmp(fp, fingerprint) != 0) {
        rc = sembed_fail(SEMBED_EINVAL, "sembed_train",
                         "%s was written by a run with other settings or data: checkpoint '%s', this run '%s'", path, fp,
                         fingerprint);
        goto done;
    }
    if ((rc = read_block(f, m, "", m->params, path)) || (rc = read_block(f, m, "adam.m.", m->adam_m, path)) ||
        (rc = read_block(f, m, "adam.v.", m->adam_v, path)))
        goto done;
    st->step = (int64_t)step;
    st->total_steps = (int64_t)total;
    st->best_step = (int64_t)best_step;
done:
    sembed_file_free(f);
    return rc;
}
