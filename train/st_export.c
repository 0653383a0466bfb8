// sembed_export_hf(): a .semb as a HuggingFace BertModel + sentence-transformers folder.
// File layouts follow what transformers' BertModel.save_pretrained and sentence-transformers'
// SentenceTransformer.save write (config.json, modules.json, 1_Pooling/config.json, N_Dense/).
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/log.h"
#include "formats/safetensors_write.h"
#include "sembed/semb.h"
#include "sembed/train.h"
#include "train/st.h"

#define FN "sembed_export_hf"

static int mkdir_p(const char *dir) {
    if (mkdir(dir, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    }
    return sembed_fail(SEMBED_EIO, FN, "cannot create folder '%s': %s", dir, strerror(errno));
}

static char *path2(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    if (p) sprintf(p, "%s/%s", dir, name);
    return p;
}

static int write_json(const char *dir, const char *name, struct json_object *o) {
    char *p = path2(dir, name);
    int rc = SEMBED_ENOMEM;
    if (p) {
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE);
        size_t n = strlen(s);
        char *buf = malloc(n + 2);
        if (buf) {
            memcpy(buf, s, n);
            buf[n] = '\n';
            rc = sw_write_file_atomic(p, buf, n + 1);
            free(buf);
        }
    }
    free(p);
    json_object_put(o);
    return rc;
}

static const char *str_or(const struct sembed_file *f, const char *key, const char *dflt) {
    const char *s;
    return sembed_file_get_str(f, key, &s, NULL) == 0 ? s : dflt;
}

static bool bool_or(const struct sembed_file *f, const char *key, bool dflt) {
    bool b;
    return sembed_file_get_bool(f, key, &b) == 0 ? b : dflt;
}

static int export_dense(const struct sembed_file *f, const char *dir, uint32_t i, uint32_t module_idx, char *modname,
                        size_t modcap) {
    char wn[64], bn[64], an[64];
    snprintf(wn, sizeof wn, "pooling.dense.%u.weight", i);
    snprintf(bn, sizeof bn, "pooling.dense.%u.bias", i);
    snprintf(an, sizeof an, "pooling.dense.%u.activation", i);
    struct sembed_tensor w, b;
    if (sembed_file_find_tensor(f, wn, &w) || w.n_dims != 2 || w.dtype != SEMBED_DTYPE_F32)
        return sembed_fail(SEMBED_EUNSUPPORTED, FN, "tensor '%s' must be an f32 matrix to export", wn);
    bool has_b = sembed_file_find_tensor(f, bn, &b) == 0;
    if (has_b && (b.dtype != SEMBED_DTYPE_F32 || b.dims[0] != w.dims[0]))
        return sembed_fail(SEMBED_EUNSUPPORTED, FN, "tensor '%s' must be f32 [%lld]", bn, (long long)w.dims[0]);
    const char *act = str_or(f, an, "identity");
    const char *torch_act = !strcmp(act, "tanh") ? "torch.nn.modules.activation.Tanh"
                            : !strcmp(act, "relu") ? "torch.nn.modules.activation.ReLU"
                            : !strcmp(act, "gelu") ? "torch.nn.modules.activation.GELU"
                                                   : "torch.nn.modules.linear.Identity";
    snprintf(modname, modcap, "%u_Dense", module_idx);
    char *sub = path2(dir, modname);
    if (!sub) return SEMBED_ENOMEM;
    int rc = mkdir_p(sub);
    if (!rc) {
        struct json_object *c = json_object_new_object();
        json_object_object_add(c, "in_features", json_object_new_int64(w.dims[1]));
        json_object_object_add(c, "out_features", json_object_new_int64(w.dims[0]));
        json_object_object_add(c, "bias", json_object_new_boolean(has_b));
        json_object_object_add(c, "activation_function", json_object_new_string(torch_act));
        rc = write_json(sub, "config.json", c);
    }
    if (!rc) {
        struct sw_tensor t[2] = {{"linear.weight", "F32", 2, w.dims, w.data, w.nbytes},
                                 {"linear.bias", "F32", 1, has_b ? b.dims : NULL, has_b ? b.data : NULL, has_b ? b.nbytes : 0}};
        char *p = path2(sub, "model.safetensors");
        static const char *const meta[1][2] = {{"format", "pt"}};
        rc = p ? sw_write(p, t, has_b ? 2 : 1, meta, 1) : SEMBED_ENOMEM;
        free(p);
    }
    free(sub);
    return rc;
}

// A pooler.dense exported as a sentence-transformers Dense (tanh), so "cls" means what BERT's
// pooler output means: sentence-transformers' own "cls" pooling is the raw [CLS] state.
static int export_pooler_dense(const struct st_model *m, const char *dir, uint32_t module_idx, char *modname, size_t cap) {
    snprintf(modname, cap, "%u_Dense", module_idx);
    char *sub = path2(dir, modname);
    if (!sub) return SEMBED_ENOMEM;
    int rc = mkdir_p(sub);
    int64_t H = m->cfg.hidden;
    if (!rc) {
        struct json_object *c = json_object_new_object();
        json_object_object_add(c, "in_features", json_object_new_int64(H));
        json_object_object_add(c, "out_features", json_object_new_int64(H));
        json_object_object_add(c, "bias", json_object_new_boolean(1));
        json_object_object_add(c, "activation_function", json_object_new_string("torch.nn.modules.activation.Tanh"));
        rc = write_json(sub, "config.json", c);
    }
    if (!rc) {
        int64_t d2[2] = {H, H}, d1[1] = {H};
        struct sw_tensor t[2] = {{"linear.weight", "F32", 2, d2, m->w.pool_w, (size_t)(H * H) * 4},
                                 {"linear.bias", "F32", 1, d1, m->w.pool_b, (size_t)H * 4}};
        char *p = path2(sub, "model.safetensors");
        static const char *const meta[1][2] = {{"format", "pt"}};
        rc = p ? sw_write(p, t, 2, meta, 1) : SEMBED_ENOMEM;
        free(p);
    }
    free(sub);
    return rc;
}

SEMBED_API int sembed_export_hf(const char *semb_path, const char *dir) {
    struct sembed_file *f = NULL;
    struct st_model *m = NULL;
    struct sw_tensor *tens = NULL;
    float *zero_type = NULL;
    char *buf = NULL;
    int rc = sembed_file_open(semb_path, &f);
    if (rc) return rc;
    bool fp, fm;
    if ((rc = st_model_from_file(f, false, false, 0, &m, &fp, &fm))) goto done;
    if ((rc = mkdir_p(dir))) goto done;
    const struct st_config *c = &m->cfg;
    const char *mode = str_or(f, "pooling.mode", "cls");
    bool normalize = bool_or(f, "pooling.normalize", false);
    if (strcmp(mode, "cls") && strcmp(mode, "cls_before_pooler") && strcmp(mode, "mean") && strcmp(mode, "max")) {
        rc = sembed_fail(SEMBED_EUNSUPPORTED, FN, "pooling.mode '%s' has no sentence-transformers equivalent", mode);
        goto done;
    }
    // model.safetensors: BertModel parameters (no MLM head)
    tens = calloc((size_t)m->n_tensors + 1, sizeof *tens);
    if (!tens) { rc = SEMBED_ENOMEM; goto done; }
    size_t nt = 0;
    int64_t type_dims[2] = {1, c->hidden};
    for (int i = 0; i < m->n_tensors; i++) {
        const struct st_tensor *t = &m->tensors[i];
        if (!strncmp(t->name, "cls.", 4)) continue;
        if (!strncmp(t->name, "pooling.dense.", 14)) continue; // a Dense module of its own (below)
        tens[nt++] = (struct sw_tensor){t->name, "F32", t->n_dims, t->dims, m->params + t->offset, t->numel * sizeof(float)};
    }
    if (c->type_vocab == 0) { // DistilBERT-style: BertModel needs a token-type table; one zero row is exact
        zero_type = calloc((size_t)c->hidden, sizeof *zero_type);
        if (!zero_type) { rc = SEMBED_ENOMEM; goto done; }
        tens[nt++] = (struct sw_tensor){"embeddings.token_type_embeddings.weight", "F32", 2, type_dims, zero_type,
                                        (size_t)c->hidden * sizeof(float)};
    }
    {
        char *p = path2(dir, "model.safetensors");
        static const char *const meta[1][2] = {{"format", "pt"}};
        rc = p ? sw_write(p, tens, nt, meta, 1) : SEMBED_ENOMEM;
        free(p);
        if (rc) goto done;
    }
    // vocab.txt
    uint64_t nv = 0;
    enum sembed_type et;
    const void *dummy;
    if ((rc = sembed_file_get_arr(f, "tokenizer.vocab", &et, &nv, &dummy)) && rc != SEMBED_ETYPE) goto done;
    {
        int64_t idx = sembed_file_find_kv(f, "tokenizer.vocab");
        if (idx < 0 || sembed_file_kv_array_info(f, idx, &et, &nv) || et != SEMBED_TYPE_STRING) {
            rc = sembed_fail(SEMBED_EMISSING, FN, "%s: tokenizer.vocab (string array) missing", semb_path);
            goto done;
        }
        size_t total = 0;
        for (uint64_t i = 0; i < nv; i++) {
            uint64_t l;
            const char *s;
            if ((rc = sembed_file_get_arr_str(f, "tokenizer.vocab", i, &s, &l))) goto done;
            total += l + 1;
        }
        buf = malloc(total + 1);
        if (!buf) { rc = SEMBED_ENOMEM; goto done; }
        size_t o = 0;
        for (uint64_t i = 0; i < nv; i++) {
            uint64_t l;
            const char *s;
            sembed_file_get_arr_str(f, "tokenizer.vocab", i, &s, &l);
            if (memchr(s, '\n', l)) { rc = sembed_fail(SEMBED_EUNSUPPORTED, FN, "token %llu contains a newline", (unsigned long long)i); goto done; }
            memcpy(buf + o, s, l);
            o += l;
            buf[o++] = '\n';
        }
        char *p = path2(dir, "vocab.txt");
        rc = p ? sw_write_file_atomic(p, buf, o) : SEMBED_ENOMEM;
        free(p);
        if (rc) goto done;
    }
    const char *unk = str_or(f, "tokenizer.unk_token", "[UNK]"), *cls = str_or(f, "tokenizer.cls_token", "[CLS]"),
               *sep = str_or(f, "tokenizer.sep_token", "[SEP]"), *pad = str_or(f, "tokenizer.pad_token", "[PAD]"),
               *mask = str_or(f, "tokenizer.mask_token", "[MASK]");
    int64_t pad_id = 0;
    for (uint64_t i = 0; i < nv; i++) {
        const char *s;
        if (sembed_file_get_arr_str(f, "tokenizer.vocab", i, &s, NULL) == 0 && !strcmp(s, pad)) { pad_id = (int64_t)i; break; }
    }
    uint32_t max_len = (uint32_t)c->max_pos;
    sembed_file_get_u32(f, "tokenizer.model_max_length", &max_len);
    bool lower = bool_or(f, "tokenizer.lowercase", true), strip = bool_or(f, "tokenizer.strip_accents", lower);
    // config.json (transformers BertConfig)
    {
        const char *act = str_or(f, "bert.hidden_act", "gelu");
        struct json_object *o = json_object_new_object(), *arch = json_object_new_array();
        json_object_array_add(arch, json_object_new_string("BertModel"));
        json_object_object_add(o, "architectures", arch);
        json_object_object_add(o, "model_type", json_object_new_string("bert"));
        json_object_object_add(o, "vocab_size", json_object_new_int64(c->vocab));
        json_object_object_add(o, "hidden_size", json_object_new_int64(c->hidden));
        json_object_object_add(o, "num_hidden_layers", json_object_new_int64(c->layers));
        json_object_object_add(o, "num_attention_heads", json_object_new_int64(c->heads));
        json_object_object_add(o, "intermediate_size", json_object_new_int64(c->inter));
        json_object_object_add(o, "max_position_embeddings", json_object_new_int64(c->max_pos));
        json_object_object_add(o, "type_vocab_size", json_object_new_int64(c->type_vocab > 0 ? c->type_vocab : 1));
        json_object_object_add(o, "layer_norm_eps", json_object_new_double((double)c->ln_eps));
        json_object_object_add(o, "hidden_act", json_object_new_string(!strcmp(act, "gelu_tanh") ? "gelu_new" : act));
        json_object_object_add(o, "hidden_dropout_prob", json_object_new_double((double)c->hidden_dropout));
        json_object_object_add(o, "attention_probs_dropout_prob", json_object_new_double((double)c->attn_dropout));
        json_object_object_add(o, "initializer_range", json_object_new_double(0.02));
        json_object_object_add(o, "pad_token_id", json_object_new_int64(pad_id));
        json_object_object_add(o, "position_embedding_type", json_object_new_string("absolute"));
        json_object_object_add(o, "torch_dtype", json_object_new_string("float32"));
        if ((rc = write_json(dir, "config.json", o))) goto done;
    }
    {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "tokenizer_class", json_object_new_string("BertTokenizer"));
        json_object_object_add(o, "do_lower_case", json_object_new_boolean(lower));
        json_object_object_add(o, "strip_accents", strip == lower ? NULL : json_object_new_boolean(strip));
        json_object_object_add(o, "tokenize_chinese_chars", json_object_new_boolean(bool_or(f, "tokenizer.handle_chinese_chars", true)));
        json_object_object_add(o, "unk_token", json_object_new_string(unk));
        json_object_object_add(o, "sep_token", json_object_new_string(sep));
        json_object_object_add(o, "pad_token", json_object_new_string(pad));
        json_object_object_add(o, "cls_token", json_object_new_string(cls));
        json_object_object_add(o, "mask_token", json_object_new_string(mask));
        json_object_object_add(o, "model_max_length", json_object_new_int64(max_len));
        if ((rc = write_json(dir, "tokenizer_config.json", o))) goto done;
        o = json_object_new_object();
        json_object_object_add(o, "unk_token", json_object_new_string(unk));
        json_object_object_add(o, "sep_token", json_object_new_string(sep));
        json_object_object_add(o, "pad_token", json_object_new_string(pad));
        json_object_object_add(o, "cls_token", json_object_new_string(cls));
        json_object_object_add(o, "mask_token", json_object_new_string(mask));
        if ((rc = write_json(dir, "special_tokens_map.json", o))) goto done;
    }
    // sentence-transformers: Transformer, Pooling, [Dense...], [Normalize]
    {
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "max_seq_length", json_object_new_int64(max_len));
        json_object_object_add(o, "do_lower_case", json_object_new_boolean(bool_or(f, "tokenizer.pre_lowercase", false)));
        if ((rc = write_json(dir, "sentence_bert_config.json", o))) goto done;
        char *pdir = path2(dir, "1_Pooling");
        if (!pdir) { rc = SEMBED_ENOMEM; goto done; }
        rc = mkdir_p(pdir);
        if (!rc) {
            bool is_cls = !strncmp(mode, "cls", 3);
            o = json_object_new_object();
            json_object_object_add(o, "word_embedding_dimension", json_object_new_int64(c->hidden));
            json_object_object_add(o, "pooling_mode_cls_token", json_object_new_boolean(is_cls));
            json_object_object_add(o, "pooling_mode_mean_tokens", json_object_new_boolean(!strcmp(mode, "mean")));
            json_object_object_add(o, "pooling_mode_max_tokens", json_object_new_boolean(!strcmp(mode, "max")));
            json_object_object_add(o, "pooling_mode_mean_sqrt_len_tokens", json_object_new_boolean(0));
            json_object_object_add(o, "pooling_mode_weightedmean_tokens", json_object_new_boolean(0));
            json_object_object_add(o, "pooling_mode_lasttoken", json_object_new_boolean(0));
            rc = write_json(pdir, "config.json", o);
        }
        free(pdir);
        if (rc) goto done;
        struct json_object *mods = json_object_new_array();
        const char *types[2] = {"sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"};
        const char *paths[2] = {"", "1_Pooling"};
        for (int i = 0; i < 2; i++) {
            struct json_object *e = json_object_new_object();
            char nm[16];
            snprintf(nm, sizeof nm, "%d", i);
            json_object_object_add(e, "idx", json_object_new_int(i));
            json_object_object_add(e, "name", json_object_new_string(nm));
            json_object_object_add(e, "path", json_object_new_string(paths[i]));
            json_object_object_add(e, "type", json_object_new_string(types[i]));
            json_object_array_add(mods, e);
        }
        uint32_t idx = 2, ndense = 0;
        sembed_file_get_u32(f, "pooling.dense_count", &ndense);
        bool pooler_dense = !strcmp(mode, "cls") && m->w.pool_w;
        for (uint32_t i = 0; i < ndense + (pooler_dense ? 1 : 0) && !rc; i++, idx++) {
            char modname[32];
            rc = pooler_dense && i == 0 ? export_pooler_dense(m, dir, idx, modname, sizeof modname)
                                        : export_dense(f, dir, i - (pooler_dense ? 1 : 0), idx, modname, sizeof modname);
            if (rc) break;
            struct json_object *e = json_object_new_object();
            char nm[16];
            snprintf(nm, sizeof nm, "%u", idx);
            json_object_object_add(e, "idx", json_object_new_int((int)idx));
            json_object_object_add(e, "name", json_object_new_string(nm));
            json_object_object_add(e, "path", json_object_new_string(modname));
            json_object_object_add(e, "type", json_object_new_string("sentence_transformers.models.Dense"));
            json_object_array_add(mods, e);
        }
        if (!rc && normalize) {
            char modname[32], nm[16];
            snprintf(modname, sizeof modname, "%u_Normalize", idx);
            snprintf(nm, sizeof nm, "%u", idx);
            struct json_object *e = json_object_new_object();
            json_object_object_add(e, "idx", json_object_new_int((int)idx));
            json_object_object_add(e, "name", json_object_new_string(nm));
            json_object_object_add(e, "path", json_object_new_string(modname));
            json_object_object_add(e, "type", json_object_new_string("sentence_transformers.models.Normalize"));
            json_object_array_add(mods, e);
        }
        if (rc) { json_object_put(mods); goto done; }
        if ((rc = write_json(dir, "modules.json", mods))) goto done;
    }
done:
    free(buf);
    free(zero_type);
    free(tens);
    st_model_free(m);
    sembed_file_free(f);
    return rc;
}
