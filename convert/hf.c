// HuggingFace and sentence-transformers knowledge: config.json, the tokenizer files, modules.json
// and its Pooling / Dense / Normalize modules, and the mapping of BERT / DistilBERT parameter
// names onto the canonical names of docs/format.md. docs/convert.md documents every rule here.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "convert/internal.h"
#include "sembed/tokenizer.h"
#include "formats/jsonx.h"
#include "formats/log.h"
#include "sembed/common.h"

char *sc_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t k = a;
    if (a && dir[a - 1] != '/') p[k++] = '/';
    memcpy(p + k, name, b + 1);
    return p;
}

bool sc_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool sc_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// Load dir/name if it exists: 0 and *out set; SEMBED_ENOTFOUND quietly if absent; other errors logged.
static int load_json_as(struct sc_ctx *c, const char *dir, const char *name, enum json_type want,
                        struct json_object **out) {
    *out = NULL;
    char *p = sc_path(dir, name);
    if (!p) return SEMBED_ENOMEM;
    if (!sc_is_file(p)) { free(p); return SEMBED_ENOTFOUND; }
    int rc = sj_load_file(p, SJ_MAX_CONFIG, out);
    if (rc == 0) rc = sc_note_file(c, p);
    if (rc == 0 && !json_object_is_type(*out, want))
        rc = sembed_fail(SEMBED_EPARSE, SC_FN, "%s: expected a JSON %s", p, json_type_to_name(want));
    if (rc && *out) { json_object_put(*out); *out = NULL; }
    free(p);
    return rc;
}

static int load_json(struct sc_ctx *c, const char *dir, const char *name, struct json_object **out) {
    return load_json_as(c, dir, name, json_type_object, out);
}

// ------------------------------------------------------------------------------- config.json

static int get_u32(struct json_object *o, const char *key, const char *file, uint32_t *v, bool required) {
    int64_t x;
    int rc = sj_get_int(o, key, &x);
    if (rc == SEMBED_ENOTFOUND) {
        if (required) return sembed_fail(SEMBED_EMISSING, SC_FN, "%s: missing \"%s\"", file, key);
        return rc;
    }
    if (rc) return sembed_fail(rc, SC_FN, "%s: \"%s\" is not an integer", file, key);
    if (x < 0 || x > (int64_t)UINT32_MAX)
        return sembed_fail(SEMBED_EINVAL, SC_FN, "%s: \"%s\" = %lld out of range", file, key, (long long)x);
    *v = (uint32_t)x;
    return SEMBED_OK;
}

static int map_act(const char *file, const char *a, char out[16]) {
    // HF ACT2FN names -> sembed's. gelu is the exact erf form; gelu_new / gelu_pytorch_tanh are tanh.
    if (!strcmp(a, "gelu")) strcpy(out, "gelu");
    else if (!strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh") || !strcmp(a, "gelu_fast")) strcpy(out, "gelu_tanh");
    else if (!strcmp(a, "relu")) strcpy(out, "relu");
    else return sembed_fail(SEMBED_EUNSUPPORTED, SC_FN, "%s: hidden activation \"%s\" is not supported (gelu, gelu_new, relu)", file, a);
    return SEMBED_OK;
}

int sc_hf_config(struct sc_ctx *c, const char *dir, bool required) {
    struct json_object *o;
    int rc = load_json(c, dir, "config.json", &o);
    if (rc == SEMBED_ENOTFOUND) {
        if (required)
            return sembed_fail(SEMBED_EMISSING, SC_FN, "%s: no config.json (needed for the attention head count and the architecture)", dir);
        return SEMBED_OK;
    }
    if (rc) return rc;
    const char *file = "config.json";
    struct sc_hparams *h = &c->hp;
    const char *model_type = "", *arch = "";
    sj_get_str(o, "model_type", &model_type);
    struct json_object *archs = sj_get(o, "architectures");
    if (archs && json_object_is_type(archs, json_type_array) && json_object_array_length(archs) > 0) {
        struct json_object *a0 = json_object_array_get_idx(archs, 0);
        if (a0 && json_object_is_type(a0, json_type_string)) arch = json_object_get_string(a0);
    }
    bool bert = !strcmp(model_type, "bert") || (!*model_type && !strncmp(arch, "Bert", 4));
    bool distil = !strcmp(model_type, "distilbert") || (!*model_type && !strncmp(arch, "DistilBert", 10));
    // RoBERTa-family bodies are BERT's post-LN encoder with position ids that start past the
    // padding index (transformers' create_position_ids_from_input_ids) and one token type.
    bool roberta = !strcmp(model_type, "roberta") || !strcmp(model_type, "xlm-roberta") ||
                   !strcmp(model_type, "camembert") ||
                   (!*model_type && (!strncmp(arch, "Roberta", 7) || !strncmp(arch, "XLMRoberta", 10)));
    // MPNet: RoBERTa-style positions, no token types, one relative-position bias for all layers.
    bool mpnet = !strcmp(model_type, "mpnet") || (!*model_type && !strncmp(arch, "MPNet", 5));
    if (!bert && !distil && !roberta && !mpnet) {
        rc = sembed_fail(SEMBED_EARCH, SC_FN, "%s/%s: architecture %s (model_type \"%s\") is not supported: BERT, DistilBERT, RoBERTa, XLM-RoBERTa and MPNet are",
                         dir, file, *arch ? arch : "(none)", model_type);
        goto done;
    }
    snprintf(h->source_arch, sizeof h->source_arch, "%s",
             *arch ? arch : (distil ? "DistilBertModel" : roberta ? "RobertaModel" : mpnet ? "MPNetModel" : "BertModel"));
    h->distil = distil;
    h->roberta = roberta;
    h->mpnet = mpnet;
    h->rel_buckets = h->rel_max_distance = 0;
    h->position_offset = 0;
    h->num_labels = 0;
    size_t al = strlen(arch);
    if (al > 25 && !strcmp(arch + al - 25, "ForSequenceClassification")) {
        if (distil) {
            rc = sembed_fail(SEMBED_EARCH, SC_FN, "%s/%s: %s (a pre_classifier + ReLU head) is not supported: BERT, RoBERTa and XLM-RoBERTa classifiers are",
                             dir, file, arch);
            goto done;
        }
        // Labels: id2label's size (what transformers writes), else num_labels, else its default 2.
        int64_t nl = 2;
        struct json_object *id2 = sj_get(o, "id2label");
        if (id2 && json_object_is_type(id2, json_type_object)) nl = json_object_object_length(id2);
        else sj_get_int(o, "num_labels", &nl);
        if (nl < 1 || nl > 4096) {
            rc = sembed_fail(SEMBED_EINVAL, SC_FN, "%s/%s: %lld labels (1..4096 supported)", dir, file, (long long)nl);
            goto done;
        }
        h->num_labels = (uint32_t)nl;
        // sentence-transformers CrossEncoder: its activation, saved as
        // sbert_ce_default_activation_function (v2-v3) or sentence_transformers.activation_fn (v4+);
        // absent, it applies Sigmoid to one label and nothing to more.
        const char *fn_name = NULL;
        struct json_object *st = sj_get(o, "sentence_transformers");
        if (sj_get_str(o, "sbert_ce_default_activation_function", &fn_name) != 0 &&
            !(st && json_object_is_type(st, json_type_object) && sj_get_str(st, "activation_fn", &fn_name) == 0))
            fn_name = NULL;
        const char *act_out = nl == 1 ? "sigmoid" : "identity";
        if (fn_name) {
            if (strstr(fn_name, "Sigmoid")) act_out = "sigmoid";
            else if (strstr(fn_name, "Identity")) act_out = "identity";
            else if (strstr(fn_name, "Softmax")) act_out = "softmax";
            else {
                rc = sembed_fail(SEMBED_EUNSUPPORTED, SC_FN, "%s/%s: cross-encoder activation \"%s\" is not supported (Sigmoid, Identity, Softmax)",
                                 dir, file, fn_name);
                goto done;
            }
        }
        snprintf(h->cls_activation, sizeof h->cls_activation, "%s", act_out);
    }
    if (mpnet) {
        int64_t nb = 32; // MPNetConfig's default relative_attention_num_buckets
        if (sj_get_int(o, "relative_attention_num_buckets", &nb) == 0 && (nb < 4 || nb > 1024 || nb % 2)) {
            rc = sembed_fail(SEMBED_EINVAL, SC_FN, "%s/%s: relative_attention_num_buckets %lld (an even number in 4..1024 is supported)",
                             dir, file, (long long)nb);
            goto done;
        }
        h->rel_buckets = (uint32_t)nb;
        h->rel_max_distance = 128; // fixed in transformers' MPNetEncoder.compute_position_bias
    }
    if (roberta || mpnet) {
        int64_t pad_id = 1; // RobertaConfig's and MPNetConfig's default pad_token_id
        if (sj_get_int(o, "pad_token_id", &pad_id) == 0 && (pad_id < 0 || pad_id > 1000000)) {
            rc = sembed_fail(SEMBED_EINVAL, SC_FN, "%s/%s: pad_token_id %lld is out of range", dir, file, (long long)pad_id);
            goto done;
        }
        h->position_offset = (uint32_t)pad_id + 1;
    }
    h->from_config = true;
    bool b;
    if (sj_get_bool(o, "is_decoder", &b) == 0 && b) {
        rc = sembed_fail(SEMBED_EARCH, SC_FN, "%s/%s: is_decoder = true (a causal BERT) is not a sentence encoder", dir, file);
        goto done;
    }
    const char *pet;
    if (sj_get_str(o, "position_embedding_type", &pet) == 0 && strcmp(pet, "absolute")) {
        rc = sembed_fail(SEMBED_EARCH, SC_FN, "%s/%s: position_embedding_type \"%s\" is not supported (absolute only)", dir, file, pet);
        goto done;
    }
    const char *act = "gelu";
    double d;
    if (!distil) {
        if ((rc = get_u32(o, "vocab_size", file, &h->vocab_size, true)) ||
            (rc = get_u32(o, "hidden_size", file, &h->hidden_size, true)) ||
            (rc = get_u32(o, "num_hidden_layers", file, &h->num_layers, true)) ||
            (rc = get_u32(o, "num_attention_heads", file, &h->num_heads, true)) ||
            (rc = get_u32(o, "intermediate_size", file, &h->intermediate_size, true)) ||
            (rc = get_u32(o, "max_position_embeddings", file, &h->max_position_embeddings, true)))
            goto done;
        h->type_vocab_size = mpnet ? 0 : 2;
        if (!mpnet) get_u32(o, "type_vocab_size", file, &h->type_vocab_size, false);
        h->layer_norm_eps = 1e-12f;
        if (sj_get_num(o, "layer_norm_eps", &d) == 0) h->layer_norm_eps = (float)d;
        sj_get_str(o, "hidden_act", &act);
        h->hidden_dropout = 0.1f;
        h->attention_dropout = 0.1f;
        if (sj_get_num(o, "hidden_dropout_prob", &d) == 0) h->hidden_dropout = (float)d;
        if (sj_get_num(o, "attention_probs_dropout_prob", &d) == 0) h->attention_dropout = (float)d;
    } else {
        // DistilBertConfig names (transformers/models/distilbert/configuration_distilbert.py).
        if ((rc = get_u32(o, "vocab_size", file, &h->vocab_size, true)) ||
            (rc = get_u32(o, "dim", file, &h->hidden_size, true)) ||
            (rc = get_u32(o, "n_layers", file, &h->num_layers, true)) ||
            (rc = get_u32(o, "n_heads", file, &h->num_heads, true)) ||
            (rc = get_u32(o, "hidden_dim", file, &h->intermediate_size, true)) ||
            (rc = get_u32(o, "max_position_embeddings", file, &h->max_position_embeddings, true)))
            goto done;
        h->type_vocab_size = 0;
        h->layer_norm_eps = 1e-12f; // fixed in HF's DistilBERT modules
        sj_get_str(o, "activation", &act);
        h->hidden_dropout = 0.1f;
        h->attention_dropout = 0.1f;
        if (sj_get_num(o, "dropout", &d) == 0) h->hidden_dropout = (float)d;
        if (sj_get_num(o, "attention_dropout", &d) == 0) h->attention_dropout = (float)d;
    }
    if ((rc = map_act(file, act, h->hidden_act))) goto done;
    if (!h->hidden_size || !h->num_heads || h->hidden_size % h->num_heads || !h->num_layers || !h->vocab_size ||
        !h->intermediate_size || !h->max_position_embeddings || !(h->layer_norm_eps > 0.0f) ||
        h->position_offset + 2 > h->max_position_embeddings) {
        rc = sembed_fail(SEMBED_EINVAL, SC_FN, "%s/%s: inconsistent sizes (hidden %u, heads %u, layers %u, vocab %u, intermediate %u, positions %u, position offset %u, eps %g)",
                         dir, file, h->hidden_size, h->num_heads, h->num_layers, h->vocab_size, h->intermediate_size,
                         h->max_position_embeddings, h->position_offset, (double)h->layer_norm_eps);
        goto done;
    }
    rc = SEMBED_OK;
done:
    json_object_put(o);
    return rc;
}

// ------------------------------------------------------------------------------- tokenizer

static bool valid_token(const char *s, size_t n) {
    // The .semb string rule: valid UTF-8, no NUL.
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0 || cp == 0) return false;
        i += (size_t)k;
    }
    return true;
}

static void free_vocab(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void sc_tok_free(struct sc_tok *t) {
    free_vocab(t->vocab, t->n_vocab);
    free(t->unk); free(t->cls); free(t->sep); free(t->pad); free(t->mask); free(t->prefix); free(t->hf_json);
    memset(t, 0, sizeof *t);
}

// vocab.txt: one token per line, id = line number (HF's load_vocab strips only the "\n").
static int read_vocab_txt(struct sc_ctx *c, const char *path, char ***out, size_t *n_out) {
    const void *buf = NULL;
    size_t len = 0;
    int rc = sc_map_file(c, path, &buf, &len);
    if (rc) return rc;
    const char *s = buf;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += s[i] == '\n';
    if (len && s[len - 1] != '\n') n++;
    if (n == 0) return sembed_fail(SEMBED_EMISSING, SC_FN, "%s: empty vocabulary", path);
    char **v = calloc(n, sizeof *v);
    if (!v) return SEMBED_ENOMEM;
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len && k < n; i++) {
        if (i == len || s[i] == '\n') {
            if (i == len && start == len) break;
            size_t e = i;
            if (e > start && s[e - 1] == '\r') e--; // Windows line ends
            if (!valid_token(s + start, e - start)) {
                free_vocab(v, n);
                return sembed_fail(SEMBED_EUTF8, SC_FN, "%s: line %zu is not valid UTF-8 (or holds a NUL byte)", path, k + 1);
            }
            v[k] = strndup(s + start, e - start);
            if (!v[k]) { free_vocab(v, n); return SEMBED_ENOMEM; }
            k++;
            start = i + 1;
        }
    }
    *out = v;
    *n_out = k;
    return SEMBED_OK;
}

// tokenizer.json model.vocab {token: id} -> dense array; ids must cover 0..n-1 exactly once.
static int vocab_from_json(const char *file, struct json_object *vocab, char ***out, size_t *n_out) {
    size_t n = (size_t)json_object_object_length(vocab);
    if (n == 0) return sembed_fail(SEMBED_EMISSING, SC_FN, "%s: empty model.vocab", file);
    char **v = calloc(n, sizeof *v);
    if (!v) return SEMBED_ENOMEM;
    json_object_object_foreach(vocab, tok, idv) {
        if (!json_object_is_type(idv, json_type_int)) {
            free_vocab(v, n);
            return sembed_fail(SEMBED_EPARSE, SC_FN, "%s: id of token \"%s\" is not an integer", file, tok);
        }
        int64_t id = json_object_get_int64(idv);
        if (id < 0 || (uint64_t)id >= n || v[id]) {
            free_vocab(v, n);
            return sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s: token \"%s\" has id %lld: ids must be 0..%zu, each once", file, tok,
                               (long long)id, n - 1);
        }
        if (!valid_token(tok, strlen(tok))) {
            free_vocab(v, n);
            return sembed_fail(SEMBED_EUTF8, SC_FN, "%s: token id %lld is not valid UTF-8", file, (long long)id);
        }
        v[id] = strdup(tok);
        if (!v[id]) { free_vocab(v, n); return SEMBED_ENOMEM; }
    }
    *out = v;
    *n_out = n;
    return SEMBED_OK;
}

// A special token given as "str" or as an AddedToken {"content": "str", ...}.
static const char *token_str(struct json_object *o, const char *key) {
    struct json_object *v = sj_get(o, key);
    if (!v) return NULL;
    if (json_object_is_type(v, json_type_string)) return json_object_get_string(v);
    const char *s;
    if (json_object_is_type(v, json_type_object) && sj_get_str(v, "content", &s) == 0) return s;
    return NULL;
}

static int set_str(char **dst, const char *s) {
    if (!s) return SEMBED_OK;
    char *d = strdup(s);
    if (!d) return SEMBED_ENOMEM;
    free(*dst);
    *dst = d;
    return SEMBED_OK;
}

static bool in_vocab(const struct sc_tok *t, const char *s) {
    for (size_t i = 0; i < t->n_vocab; i++)
        if (!strcmp(t->vocab[i], s)) return true;
    return false;
}

static bool same_vocab(char **a, size_t na, char **b, size_t nb) {
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i])) return false;
    return true;
}

// tokenizer.json (HF tokenizers): the WordPiece model and the BertNormalizer flags.
static int parse_tokenizer_json(struct sc_ctx *c, const char *dir, struct json_object *tj, bool *have_norm) {
    struct sc_tok *t = &c->tok;
    const char *file = "tokenizer.json";
    struct json_object *model = sj_get(tj, "model");
    const char *type = "";
    if (!model || sj_get_str(model, "type", &type) != 0 || strcmp(type, "WordPiece"))
        return sembed_fail(SEMBED_EUNSUPPORTED, SC_FN, "%s/%s: tokenizer model \"%s\" is not WordPiece", dir, file,
                           *type ? type : "(missing)");
    struct json_object *vocab = sj_get(model, "vocab");
    if (!vocab || !json_object_is_type(vocab, json_type_object))
        return sembed_fail(SEMBED_EMISSING, SC_FN, "%s/%s: model.vocab missing", dir, file);
    int rc = vocab_from_json(file, vocab, &t->vocab, &t->n_vocab);
    if (rc) return rc;
    const char *s;
    if (sj_get_str(model, "unk_token", &s) == 0 && (rc = set_str(&t->unk, s))) return rc;
    if (sj_get_str(model, "continuing_subword_prefix", &s) == 0 && (rc = set_str(&t->prefix, s))) return rc;
    int64_t m;
    if (sj_get_int(model, "max_input_chars_per_word", &m) == 0 && m > 0 && m <= UINT32_MAX) t->max_chars = (uint32_t)m;
    struct json_object *norm = sj_get(tj, "normalizer");
    if (norm) {
        if (sj_get_str(norm, "type", &type) != 0 || strcmp(type, "BertNormalizer"))
            return sembed_fail(SEMBED_EUNSUPPORTED, SC_FN, "%s/%s: normalizer \"%s\" is not BertNormalizer", dir, file,
                               sj_get_str(norm, "type", &type) == 0 ? type : "(missing type)");
        bool lc = true, sa, cjk = true, clean = true;
        sj_get_bool(norm, "lowercase", &lc);
        sj_get_bool(norm, "handle_chinese_chars", &cjk);
        sj_get_bool(norm, "clean_text", &clean);
        if (sj_get_bool(norm, "strip_accents", &sa) != 0) sa = lc; // null: follow lowercase
        t->lowercase = lc;
        t->strip_accents = sa;
        t->handle_chinese_chars = cjk;
        t->clean_text = clean;
        *have_norm = true;
    } else {
        t->lowercase = t->strip_accents = t->handle_chinese_chars = t->clean_text = false;
        *have_norm = true; // an explicit "normalizer": null means no normalization at all
    }
    // cls / sep from the post-processor ([CLS] $A [SEP] templates or BertProcessing).
    struct json_object *pp = sj_get(tj, "post_processor");
    if (pp && sj_get_str(pp, "type", &type) == 0) {
        if (!strcmp(type, "BertProcessing")) {
            struct json_object *cl = sj_get(pp, "cls"), *se = sj_get(pp, "sep");
            if (cl && json_object_is_type(cl, json_type_array) && json_object_array_length(cl) == 2)
                if ((rc = set_str(&t->cls, json_object_get_string(json_object_array_get_idx(cl, 0))))) return rc;
            if (se && json_object_is_type(se, json_type_array) && json_object_array_length(se) == 2)
                if ((rc = set_str(&t->sep, json_object_get_string(json_object_array_get_idx(se, 0))))) return rc;
        } else if (!strcmp(type, "TemplateProcessing")) {
            struct json_object *single = sj_get(pp, "single");
            if (single && json_object_is_type(single, json_type_array)) {
                size_t k = json_object_array_length(single);
                for (size_t i = 0; i < k; i++) {
                    struct json_object *st = sj_get(json_object_array_get_idx(single, i), "SpecialToken");
                    const char *id;
                    if (st && sj_get_str(st, "id", &id) == 0)
                        if ((rc = set_str(i == 0 ? &t->cls : &t->sep, id))) return rc;
                }
            }
        }
    }
    return SEMBED_OK;
}

// True when tokenizer.json is BERT's own pipeline (WordPiece, BertNormalizer or none,
// BertPreTokenizer or none): that is stored as today's tokenizer.* flags and vocabulary.
static bool is_bert_pipeline(struct json_object *tj) {
    const char *type = "";
    struct json_object *m = sj_get(tj, "model"), *n = sj_get(tj, "normalizer"), *p = sj_get(tj, "pre_tokenizer");
    if (!m || sj_get_str(m, "type", &type) != 0 || strcmp(type, "WordPiece")) return false;
    if (n && !json_object_is_type(n, json_type_null) && (sj_get_str(n, "type", &type) != 0 || strcmp(type, "BertNormalizer")))
        return false;
    if (p && !json_object_is_type(p, json_type_null) && (sj_get_str(p, "type", &type) != 0 || strcmp(type, "BertPreTokenizer")))
        return false;
    return true;
}

// Any other tokenizer.json: checked by parsing it (an unsupported component is refused by name)
// and kept whole, to be stored as tokenizer.json (docs/format.md).
static int keep_hf_json(struct sc_ctx *c, const char *dir) {
    struct sc_tok *t = &c->tok;
    char *p = sc_path(dir, "tokenizer.json");
    if (!p) return SEMBED_ENOMEM;
    const void *buf = NULL;
    size_t len = 0;
    int rc = sc_map_file(c, p, &buf, &len);
    free(p);
    if (rc) return rc;
    if (memchr(buf, 0, len)) return sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s/tokenizer.json holds a NUL byte", dir);
    struct sembed_tokenizer *tk = NULL;
    rc = sembed_tokenizer_from_hf_json(buf, len, 0, &tk);
    if (rc) return sembed_fail(rc, SC_FN, "%s/tokenizer.json cannot be used (see the message above)", dir);
    t->n_vocab = sembed_tokenizer_vocab_size(tk);
    sembed_tokenizer_free(tk);
    t->hf_json = malloc(len + 1);
    if (!t->hf_json) return SEMBED_ENOMEM;
    memcpy(t->hf_json, buf, len);
    t->hf_json[len] = 0;
    struct json_object *tc = NULL;
    rc = load_json(c, dir, "tokenizer_config.json", &tc);
    if (rc && rc != SEMBED_ENOTFOUND) return rc;
    int64_t m;
    if (tc && sj_get_int(tc, "model_max_length", &m) == 0 && m > 0) t->model_max_length = (uint64_t)m;
    json_object_put(tc);
    return SEMBED_OK;
}

// The legacy RoBERTa / GPT-2 files (vocab.json + merges.txt, no tokenizer.json): the tokenizer.json
// HF's converter builds from them (transformers convert_slow_tokenizer, RobertaConverter): byte-level
// BPE, ByteLevel pre-tokenizer without prefix space, RobertaProcessing with trim_offsets, the
// special tokens <s> <pad> </s> <unk> <mask> (the last with lstrip) where the vocabulary has them.
static int legacy_bpe_json(struct sc_ctx *c, const char *dir, bool *done) {
    struct sc_tok *t = &c->tok;
    *done = false;
    char *vp = sc_path(dir, "vocab.json"), *mp = sc_path(dir, "merges.txt");
    if (!vp || !mp) { free(vp); free(mp); return SEMBED_ENOMEM; }
    int rc = SEMBED_OK;
    struct json_object *vocab = NULL, *root = NULL;
    if (!sc_is_file(vp) || !sc_is_file(mp)) goto out;
    if ((rc = sj_load_file(vp, SJ_MAX_CONFIG, &vocab)) || (rc = sc_note_file(c, vp))) goto out;
    if (!json_object_is_type(vocab, json_type_object)) {
        rc = sembed_fail(SEMBED_EPARSE, SC_FN, "%s: expected a JSON object {token: id}", vp);
        goto out;
    }
    const void *buf = NULL;
    size_t len = 0;
    if ((rc = sc_map_file(c, mp, &buf, &len))) goto out;
    root = json_object_new_object();
    struct json_object *model = json_object_new_object(), *merges = json_object_new_array();
    json_object_object_add(root, "model", model);
    json_object_object_add(model, "type", json_object_new_string("BPE"));
    json_object_object_add(model, "vocab", json_object_get(vocab));
    json_object_object_add(model, "merges", merges);
    const char *m = buf, *end = m + len;
    size_t lineno = 0;
    while (m < end) {
        const char *e = memchr(m, '\n', (size_t)(end - m));
        if (!e) e = end;
        size_t l = (size_t)(e - m);
        if (l && m[l - 1] == '\r') l--;
        lineno++;
        if (l && !(lineno == 1 && l >= 8 && !memcmp(m, "#version", 8)))
            json_object_array_add(merges, json_object_new_string_len(m, (int)l));
        m = e + 1;
    }
    struct json_object *pre = json_object_new_object();
    json_object_object_add(pre, "type", json_object_new_string("ByteLevel"));
    json_object_object_add(pre, "add_prefix_space", json_object_new_boolean(0));
    json_object_object_add(pre, "trim_offsets", json_object_new_boolean(1));
    json_object_object_add(pre, "use_regex", json_object_new_boolean(1));
    json_object_object_add(root, "pre_tokenizer", pre);
    static const char *const sp[] = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
    struct json_object *added = json_object_new_array(), *id;
    int64_t cls = -1, sep = -1;
    for (int i = 0; i < 5; i++) {
        if (!json_object_object_get_ex(vocab, sp[i], &id) || !json_object_is_type(id, json_type_int)) continue;
        struct json_object *a = json_object_new_object();
        json_object_object_add(a, "id", json_object_new_int64(json_object_get_int64(id)));
        json_object_object_add(a, "content", json_object_new_string(sp[i]));
        json_object_object_add(a, "lstrip", json_object_new_boolean(i == 4));
        json_object_object_add(a, "special", json_object_new_boolean(1));
        json_object_array_add(added, a);
        if (i == 0) cls = json_object_get_int64(id);
        if (i == 2) sep = json_object_get_int64(id);
    }
    json_object_object_add(root, "added_tokens", added);
    if (cls >= 0 && sep >= 0) {
        struct json_object *pp = json_object_new_object(), *a = json_object_new_array(), *b = json_object_new_array();
        json_object_array_add(a, json_object_new_string("</s>"));
        json_object_array_add(a, json_object_new_int64(sep));
        json_object_array_add(b, json_object_new_string("<s>"));
        json_object_array_add(b, json_object_new_int64(cls));
        json_object_object_add(pp, "type", json_object_new_string("RobertaProcessing"));
        json_object_object_add(pp, "sep", a);
        json_object_object_add(pp, "cls", b);
        json_object_object_add(pp, "trim_offsets", json_object_new_boolean(1));
        json_object_object_add(pp, "add_prefix_space", json_object_new_boolean(0));
        json_object_object_add(root, "post_processor", pp);
    }
    const char *text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t tl = strlen(text);
    struct sembed_tokenizer *tk = NULL;
    rc = sembed_tokenizer_from_hf_json(text, tl, 0, &tk);
    if (rc) { rc = sembed_fail(rc, SC_FN, "%s: vocab.json + merges.txt cannot be used (see the message above)", dir); goto out; }
    t->n_vocab = sembed_tokenizer_vocab_size(tk);
    sembed_tokenizer_free(tk);
    if (!(t->hf_json = strdup(text))) { rc = SEMBED_ENOMEM; goto out; }
    *done = true;
out:
    json_object_put(root);
    json_object_put(vocab);
    free(vp);
    free(mp);
    return rc;
}

// SentencePiece checkpoints without tokenizer.json: sentencepiece.bpe.model (XLM-R, fairseq ids)
// or spiece.model (ALBERT / T5 layout), converted by convert/spm.c and stored as tokenizer.json.
static int legacy_spm_json(struct sc_ctx *c, const char *dir, bool *done) {
    static const char *const names[] = {"sentencepiece.bpe.model", "spiece.model"};
    *done = false;
    for (int i = 0; i < 2; i++) {
        char *p = sc_path(dir, names[i]);
        if (!p) return SEMBED_ENOMEM;
        if (!sc_is_file(p)) { free(p); continue; }
        const void *buf = NULL;
        size_t len = 0;
        int rc = sc_map_file(c, p, &buf, &len);
        if (!rc) rc = sc_spm_to_hf_json(buf, len, i == 0, p, &c->tok.hf_json);
        free(p);
        if (rc) return rc;
        struct sembed_tokenizer *tk = NULL;
        if ((rc = sembed_tokenizer_from_hf_json(c->tok.hf_json, strlen(c->tok.hf_json), 0, &tk))) return rc;
        c->tok.n_vocab = sembed_tokenizer_vocab_size(tk);
        sembed_tokenizer_free(tk);
        struct json_object *tc = NULL;
        rc = load_json(c, dir, "tokenizer_config.json", &tc);
        if (rc && rc != SEMBED_ENOTFOUND) return rc;
        int64_t m;
        if (tc && sj_get_int(tc, "model_max_length", &m) == 0 && m > 0) c->tok.model_max_length = (uint64_t)m;
        json_object_put(tc);
        *done = true;
        return SEMBED_OK;
    }
    return SEMBED_OK;
}

int sc_hf_tokenizer(struct sc_ctx *c, const char *dir) {
    struct sc_tok *t = &c->tok;
    struct json_object *tj = NULL, *tc = NULL, *sm = NULL;
    int rc;
    t->lowercase = true; // BertTokenizer defaults
    t->strip_accents = true;
    t->handle_chinese_chars = true;
    t->clean_text = true;
    t->max_chars = 100;
    bool have_norm = false;
    rc = load_json(c, dir, "tokenizer.json", &tj);
    if (rc && rc != SEMBED_ENOTFOUND) goto done;
    if (tj && !is_bert_pipeline(tj)) {
        rc = keep_hf_json(c, dir);
        goto done;
    }
    if (!tj) {
        bool legacy = false;
        if ((rc = legacy_bpe_json(c, dir, &legacy)) || legacy) goto done;
        if ((rc = legacy_spm_json(c, dir, &legacy)) || legacy) goto done;
    }
    if (tj && (rc = parse_tokenizer_json(c, dir, tj, &have_norm))) goto done;
    char *vp = sc_path(dir, "vocab.txt");
    if (!vp) { rc = SEMBED_ENOMEM; goto done; }
    if (sc_is_file(vp)) {
        char **v = NULL;
        size_t n = 0;
        rc = read_vocab_txt(c, vp, &v, &n);
        if (rc == 0) rc = sc_note_file(c, vp);
        if (rc) { free(vp); goto done; }
        if (!t->vocab) {
            t->vocab = v;
            t->n_vocab = n;
        } else {
            if (!same_vocab(t->vocab, t->n_vocab, v, n))
                SEMBED_LOG_WARNF("%s: vocab.txt (%zu tokens) differs from tokenizer.json (%zu tokens); using tokenizer.json, as HF's fast tokenizer does",
                                 dir, n, t->n_vocab);
            free_vocab(v, n);
        }
    }
    free(vp);
    if (!t->vocab) {
        rc = sembed_fail(SEMBED_EMISSING, SC_FN, "%s: no vocabulary (neither vocab.txt nor tokenizer.json)", dir);
        goto done;
    }
    rc = load_json(c, dir, "tokenizer_config.json", &tc);
    if (rc && rc != SEMBED_ENOTFOUND) goto done;
    if (tc) {
        const char *cls;
        if (sj_get_str(tc, "tokenizer_class", &cls) == 0 && strncmp(cls, "BertTokenizer", 13) &&
            strncmp(cls, "DistilBertTokenizer", 19)) {
            rc = sembed_fail(SEMBED_EUNSUPPORTED, SC_FN, "%s/tokenizer_config.json: tokenizer_class \"%s\" is not a BERT WordPiece tokenizer", dir, cls);
            goto done;
        }
        if (!have_norm) { // the slow tokenizer's flags, when no tokenizer.json says otherwise
            bool b;
            if (sj_get_bool(tc, "do_lower_case", &b) == 0) t->lowercase = b;
            t->strip_accents = t->lowercase;
            if (sj_get_bool(tc, "strip_accents", &b) == 0) t->strip_accents = b;
            if (sj_get_bool(tc, "tokenize_chinese_chars", &b) == 0) t->handle_chinese_chars = b;
        }
        int64_t m;
        if (sj_get_int(tc, "model_max_length", &m) == 0 && m > 0) t->model_max_length = (uint64_t)m;
        static const char *const keys[] = {"unk_token", "cls_token", "sep_token", "pad_token", "mask_token"};
        char **dst[] = {&t->unk, &t->cls, &t->sep, &t->pad, &t->mask};
        for (int i = 0; i < 5; i++)
            if ((rc = set_str(dst[i], token_str(tc, keys[i])))) goto done;
    }
    rc = load_json(c, dir, "special_tokens_map.json", &sm);
    if (rc && rc != SEMBED_ENOTFOUND) goto done;
    if (sm) {
        static const char *const keys[] = {"unk_token", "cls_token", "sep_token", "pad_token", "mask_token"};
        char **dst[] = {&t->unk, &t->cls, &t->sep, &t->pad, &t->mask};
        for (int i = 0; i < 5; i++)
            if ((rc = set_str(dst[i], token_str(sm, keys[i])))) goto done;
    }
    // Defaults: BERT's own special tokens; each must be in the vocabulary (looked up by string).
    static const char *const defs[] = {"[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"};
    static const char *const roles[] = {"unk", "cls", "sep", "pad", "mask"};
    char **dst[] = {&t->unk, &t->cls, &t->sep, &t->pad, &t->mask};
    for (int i = 0; i < 5; i++) {
        if (!*dst[i] && (rc = set_str(dst[i], defs[i]))) goto done;
        if (!in_vocab(t, *dst[i])) {
            if (i == 4) { // the mask token is optional for inference
                free(t->mask);
                t->mask = NULL;
                continue;
            }
            rc = sembed_fail(SEMBED_EMISSING, SC_FN, "%s: %s token \"%s\" is not in the vocabulary", dir, roles[i], *dst[i]);
            goto done;
        }
    }
    if (!t->prefix && (rc = set_str(&t->prefix, "##"))) goto done;
    rc = SEMBED_OK;
done:
    if (tj) json_object_put(tj);
    if (tc) json_object_put(tc);
    if (sm) json_object_put(sm);
    return rc;
}

// ------------------------------------------------------------------------------- sentence-transformers

static int st_pooling(struct sc_ctx *c, const char *dir) {
    struct json_object *o;
    int rc = load_json(c, dir, "config.json", &o);
    if (rc == SEMBED_ENOTFOUND) return sembed_fail(SEMBED_EMISSING, SC_FN, "%s: Pooling module without config.json", dir);
    if (rc) return rc;
    static const struct { const char *key, *mode; } modes[] = {
        {"pooling_mode_cls_token", "cls_before_pooler"}, // ST's CLS is the raw hidden state, no pooler
        {"pooling_mode_mean_tokens", "mean"},
        {"pooling_mode_max_tokens", "max"},
        {"pooling_mode_mean_sqrt_len_tokens", NULL},
        {"pooling_mode_weightedmean_tokens", NULL},
        {"pooling_mode_lasttoken", NULL},
    };
    int n_on = 0;
    const char *mode = NULL, *bad = NULL;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        bool b = false;
        if (sj_get_bool(o, modes[i].key, &b) == 0 && b) {
            n_on++;
            if (modes[i].mode) mode = modes[i].mode;
            else bad = modes[i].key;
        }
    }
    const char *pm;
    if (n_on == 0 && sj_get_str(o, "pooling_mode", &pm) == 0) { // older configs: one string
        n_on = 1;
        if (!strcmp(pm, "cls")) mode = "cls_before_pooler";
        else if (!strcmp(pm, "mean")) mode = "mean";
        else if (!strcmp(pm, "max")) mode = "max";
        else bad = pm;
    }
    int64_t dim;
    if (sj_get_int(o, "word_embedding_dimension", &dim) == 0 && c->hp.hidden_size && dim != c->hp.hidden_size)
        rc = sembed_fail(SEMBED_EDIMS, SC_FN, "%s/config.json: word_embedding_dimension %lld but the model's hidden size is %u",
                         dir, (long long)dim, c->hp.hidden_size);
    else if (bad)
        rc = sembed_fail(SEMBED_EUNSUPPORTED, SC_FN, "%s/config.json: %s is not supported (cls, mean, max)", dir, bad);
    else if (n_on != 1)
        rc = sembed_fail(SEMBED_EUNSUPPORTED, SC_FN, "%s/config.json: %d pooling modes enabled; sembed supports exactly one", dir, n_on);
    else
        snprintf(c->pool.mode, sizeof c->pool.mode, "%s", mode);
    json_object_put(o);
    return rc;
}

static int st_dense(struct sc_ctx *c, const char *dir) {
    struct sc_pool *p = &c->pool;
    if (p->n_dense >= SC_MAX_DENSE) return sembed_fail(SEMBED_ETOOLONG, SC_FN, "%s: more than %d Dense modules", dir, SC_MAX_DENSE);
    struct json_object *o;
    int rc = load_json(c, dir, "config.json", &o);
    if (rc == SEMBED_ENOTFOUND) return sembed_fail(SEMBED_EMISSING, SC_FN, "%s: Dense module without config.json", dir);
    if (rc) return rc;
    int64_t in = 0, out = 0;
    bool bias = true;
    const char *act = "torch.nn.modules.activation.Tanh";
    sj_get_bool(o, "bias", &bias);
    sj_get_str(o, "activation_function", &act);
    if (sj_get_int(o, "in_features", &in) || sj_get_int(o, "out_features", &out) || in <= 0 || out <= 0 ||
        in > (1 << 20) || out > (1 << 20)) {
        json_object_put(o);
        return sembed_fail(SEMBED_EMISSING, SC_FN, "%s/config.json: in_features / out_features missing or invalid", dir);
    }
    const char *short_act = strrchr(act, '.') ? strrchr(act, '.') + 1 : act;
    const char *mapped = !strcmp(short_act, "Tanh") ? "tanh" : !strcmp(short_act, "Identity") ? "identity"
                       : !strcmp(short_act, "ReLU") ? "relu" : !strcmp(short_act, "GELU") ? "gelu" : NULL;
    if (!mapped) {
        rc = sembed_fail(SEMBED_EUNSUPPORTED, SC_FN, "%s/config.json: activation \"%s\" is not supported (Tanh, Identity, ReLU, GELU)", dir, act);
        json_object_put(o);
        return rc;
    }
    json_object_put(o);
    // Weights: model.safetensors or pytorch_model.bin holding linear.weight [out, in], linear.bias [out].
    static const char *const wfiles[] = {"model.safetensors", "pytorch_model.bin"};
    char *wp = NULL;
    for (int i = 0; i < 2 && !wp; i++) {
        wp = sc_path(dir, wfiles[i]);
        if (wp && !sc_is_file(wp)) { free(wp); wp = NULL; }
    }
    if (!wp) return sembed_fail(SEMBED_EMISSING, SC_FN, "%s: Dense module without model.safetensors or pytorch_model.bin", dir);
    struct sc_source tmp = {0};
    rc = sc_load_weights(c, wp, &tmp);
    free(wp);
    if (rc) { sc_source_free(&tmp); return rc; }
    char name[64];
    unsigned k = p->n_dense;
    for (size_t i = 0; i < tmp.n && rc == 0; i++) {
        struct sc_tensor *t = &tmp.t[i];
        const char *suffix = !strcmp(t->name, "linear.weight") ? "weight" : !strcmp(t->name, "linear.bias") ? "bias" : NULL;
        if (!suffix) {
            rc = sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s: unexpected tensor '%s' (expected linear.weight, linear.bias)", dir, t->name);
            break;
        }
        bool w = suffix[0] == 'w';
        if ((w && (t->n_dims != 2 || t->dims[0] != out || t->dims[1] != in)) || (!w && (t->n_dims != 1 || t->dims[0] != out))) {
            rc = sembed_fail(SEMBED_EDIMS, SC_FN, "%s: '%s' has shape [%lld%s%lld] but config.json says in %lld, out %lld", dir, t->name,
                             (long long)t->dims[0], t->n_dims > 1 ? ", " : "", t->n_dims > 1 ? (long long)t->dims[1] : 0LL,
                             (long long)in, (long long)out);
            break;
        }
        snprintf(name, sizeof name, "pooling.dense.%u.%s", k, suffix);
        rc = sc_source_add(&c->src, name, t->dtype, t->n_dims, t->dims, t->data, t->owned);
        t->owned = NULL; // moved
    }
    if (rc == 0) {
        snprintf(name, sizeof name, "pooling.dense.%u.weight", k);
        if (!sc_source_find(&c->src, name)) rc = sembed_fail(SEMBED_EMISSING, SC_FN, "%s: linear.weight missing", dir);
    }
    if (rc == 0) {
        snprintf(name, sizeof name, "pooling.dense.%u.bias", k);
        bool have = sc_source_find(&c->src, name) != NULL;
        if (bias && !have) rc = sembed_fail(SEMBED_EMISSING, SC_FN, "%s: linear.bias missing (config.json says bias: true)", dir);
        if (!bias && have) rc = sembed_fail(SEMBED_ECORRUPT, SC_FN, "%s: linear.bias present but config.json says bias: false", dir);
        if (!bias && rc == 0) { // the runtime always adds a bias: store zeros, which change nothing
            float *z = calloc((size_t)out, sizeof *z);
            if (!z) rc = SEMBED_ENOMEM;
            else rc = sc_source_add(&c->src, name, SEMBED_DTYPE_F32, 1, (int64_t[]){out}, z, z);
        }
    }
    sc_source_free(&tmp);
    if (rc) return rc;
    snprintf(p->dense_act[k], sizeof p->dense_act[k], "%s", mapped);
    p->n_dense++;
    return SEMBED_OK;
}

// Reject a module path that escapes the model folder.
static bool safe_rel_path(const char *s) {
    if (s[0] == '/') return false;
    for (const char *p = s; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.') return false;
        p += n;
        if (*p == '/') p++;
    }
    return true;
}

static int st_module(struct sc_ctx *c, const char *root, struct json_object *m, size_t i, int *stage,
                     char **model_dir) {
    const char *type = NULL, *path = "";
    if (!json_object_is_type(m, json_type_object) || sj_get_str(m, "type", &type) != 0)
        return sembed_fail(SEMBED_EPARSE, SC_FN, "%s/modules.json: entry %zu has no \"type\"", root, i);
    sj_get_str(m, "path", &path);
    if (!safe_rel_path(path))
        return sembed_fail(SEMBED_EUNSAFE, SC_FN, "%s/modules.json: module path \"%s\" leaves the model folder", root, path);
    const char *kind = strrchr(type, '.') ? strrchr(type, '.') + 1 : type;
    char *dir = *path ? sc_path(root, path) : strdup(root);
    if (!dir) return SEMBED_ENOMEM;
    int rc = SEMBED_OK;
    // Expected order: Transformer, Pooling, Dense*, Normalize (what sentence-transformers writes).
    if (!strcmp(kind, "Transformer") && *stage == 0) {
        *model_dir = dir;
        dir = NULL;
        *stage = 1;
    } else if (!strcmp(kind, "Pooling") && *stage == 1) {
        rc = st_pooling(c, dir);
        *stage = 2;
    } else if (!strcmp(kind, "Dense") && *stage == 2) {
        rc = st_dense(c, dir);
    } else if (!strcmp(kind, "Normalize") && *stage >= 1) {
        c->pool.normalize = 1;
        *stage = 3;
    } else {
        rc = sembed_fail(SEMBED_EUNSUPPORTED, SC_FN,
                         "%s/modules.json: module %zu of type %s is not supported here (sembed supports Transformer, Pooling, Dense..., Normalize in that order)",
                         root, i, type);
    }
    free(dir);
    return rc;
}

int sc_hf_st_modules(struct sc_ctx *c, const char *root, char **model_dir) {
    *model_dir = NULL;
    struct json_object *mods = NULL, *sb = NULL;
    int rc = load_json_as(c, root, "modules.json", json_type_array, &mods);
    if (rc && rc != SEMBED_ENOTFOUND) return rc;
    if (mods) {
        // Modules run in list order (sentence_transformers.SentenceTransformer is an nn.Sequential).
        size_t n = json_object_array_length(mods);
        int stage = 0;
        c->pool.normalize = 0;
        for (size_t i = 0; i < n && rc == 0; i++) rc = st_module(c, root, json_object_array_get_idx(mods, i), i, &stage, model_dir);
        json_object_put(mods);
        if (rc == 0 && !*model_dir)
            rc = sembed_fail(SEMBED_EMISSING, SC_FN, "%s/modules.json: no Transformer module", root);
        if (rc == 0 && stage < 2)
            rc = sembed_fail(SEMBED_EMISSING, SC_FN, "%s/modules.json: no Pooling module", root);
        if (rc) { free(*model_dir); *model_dir = NULL; return rc; }
    } else {
        // No modules.json: a plain HF folder, possibly with a lone 1_Pooling (some exports have one).
        rc = SEMBED_OK;
        *model_dir = strdup(root);
        if (!*model_dir) return SEMBED_ENOMEM;
        char *pd = sc_path(root, "1_Pooling");
        char *pc = pd ? sc_path(pd, "config.json") : NULL;
        if (!pc) rc = SEMBED_ENOMEM;
        else if (sc_is_file(pc)) rc = st_pooling(c, pd);
        free(pc);
        free(pd);
        if (rc) return rc;
    }
    rc = load_json(c, *model_dir, "sentence_bert_config.json", &sb);
    if (rc == SEMBED_ENOTFOUND && strcmp(*model_dir, root)) rc = load_json(c, root, "sentence_bert_config.json", &sb);
    if (rc == SEMBED_ENOTFOUND) return SEMBED_OK;
    if (rc) return rc;
    bool b;
    int64_t m;
    if (sj_get_bool(sb, "do_lower_case", &b) == 0) c->tok.pre_lowercase = b;
    if (sj_get_int(sb, "max_seq_length", &m) == 0 && m > 0) c->pool.st_max_seq_length = (uint64_t)m;
    json_object_put(sb);
    return SEMBED_OK;
}

// ------------------------------------------------------------------------------- tensor names

static bool starts(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }
static bool ends(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

// DistilBERT -> BERT names within one layer (transformers/models/distilbert/modeling_distilbert.py).
static const struct { const char *from, *to; } g_distil_layer[] = {
    {"attention.q_lin.", "attention.self.query."},
    {"attention.k_lin.", "attention.self.key."},
    {"attention.v_lin.", "attention.self.value."},
    {"attention.out_lin.", "attention.output.dense."},
    {"sa_layer_norm.", "attention.output.LayerNorm."},
    {"ffn.lin1.", "intermediate.dense."},
    {"ffn.lin2.", "output.dense."},
    {"output_layer_norm.", "output.LayerNorm."},
};

enum { KEEP, DROP_SILENT, DROP_HEAD };

// Raw checkpoint name -> canonical name in out (or a drop verdict).
// MPNet -> BERT names within one layer (transformers/models/mpnet/modeling_mpnet.py).
static const struct { const char *from, *to; } g_mpnet_layer[] = {
    {"attention.attn.q.", "attention.self.query."},
    {"attention.attn.k.", "attention.self.key."},
    {"attention.attn.v.", "attention.self.value."},
    {"attention.attn.o.", "attention.output.dense."},
    {"attention.LayerNorm.", "attention.output.LayerNorm."},
};

static int canonical_name(const char *raw, bool distil, bool roberta, bool mpnet, bool classifier, char *out, size_t cap) {
    const char *n = raw;
    if (mpnet) {
        unsigned layer;
        int used = 0;
        if (starts(n, "mpnet.")) n += 6;
        if (starts(n, "lm_head.")) return DROP_HEAD;
        if (classifier && starts(n, "classifier.")) { snprintf(out, cap, "%s", n); return KEEP; }
        if (ends(n, "position_ids")) return DROP_SILENT;
        if (sscanf(n, "encoder.layer.%u.%n", &layer, &used) == 1 && used > 0)
            for (size_t i = 0; i < sizeof g_mpnet_layer / sizeof g_mpnet_layer[0]; i++)
                if (starts(n + used, g_mpnet_layer[i].from)) {
                    snprintf(out, cap, "encoder.layer.%u.%s%s", layer, g_mpnet_layer[i].to,
                             n + used + strlen(g_mpnet_layer[i].from));
                    return KEEP;
                }
        snprintf(out, cap, "%s", n);
        return KEEP;
    }
    if (classifier && starts(n, "classifier.")) { // the sequence-classification head, kept by name
        snprintf(out, cap, "%s", n);
        return KEEP;
    }
    if (roberta && starts(n, "roberta.")) n += 8;
    if (roberta && starts(n, "lm_head.")) return DROP_HEAD; // RobertaForMaskedLM's head
    if (!distil && !roberta && starts(n, "bert.")) n += 5;
    if (distil && starts(n, "distilbert.")) n += 11;
    if (ends(n, "position_ids") || ends(n, "token_type_ids")) return DROP_SILENT; // HF buffers
    if (!distil) {
        if (starts(n, "cls.predictions.decoder.")) return DROP_SILENT; // tied to the word embeddings / same as .bias
        if (starts(n, "cls.seq_relationship.")) return DROP_HEAD;     // NSP head
        if (starts(n, "classifier.") || starts(n, "qa_outputs.")) return DROP_HEAD;
        snprintf(out, cap, "%s", n);
        return KEEP;
    }
    unsigned layer;
    int used = 0;
    if (sscanf(n, "transformer.layer.%u.%n", &layer, &used) == 1 && used > 0) {
        const char *rest = n + used;
        for (size_t i = 0; i < sizeof g_distil_layer / sizeof g_distil_layer[0]; i++)
            if (starts(rest, g_distil_layer[i].from)) {
                snprintf(out, cap, "encoder.layer.%u.%s%s", layer, g_distil_layer[i].to, rest + strlen(g_distil_layer[i].from));
                return KEEP;
            }
        snprintf(out, cap, "%s", n); // unknown: validation names it
        return KEEP;
    }
    if (starts(n, "vocab_transform.")) { snprintf(out, cap, "cls.predictions.transform.dense.%s", n + 16); return KEEP; }
    if (starts(n, "vocab_layer_norm.")) { snprintf(out, cap, "cls.predictions.transform.LayerNorm.%s", n + 17); return KEEP; }
    if (!strcmp(n, "vocab_projector.bias")) { snprintf(out, cap, "cls.predictions.bias"); return KEEP; }
    if (!strcmp(n, "vocab_projector.weight")) return DROP_SILENT; // tied to the word embeddings
    if (starts(n, "pre_classifier.") || starts(n, "classifier.") || starts(n, "qa_outputs.")) return DROP_HEAD;
    snprintf(out, cap, "%s", n);
    return KEEP;
}

int sc_hf_canonicalize(struct sc_ctx *c, bool keep_mlm) {
    struct sc_source *s = &c->src;
    size_t w = 0;
    char name[256];
    bool dropped_head = false;
    for (size_t i = 0; i < s->n; i++) {
        struct sc_tensor t = s->t[i];
        int v = starts(t.name, "pooling.dense.") ? (snprintf(name, sizeof name, "%s", t.name), KEEP)
                                                  : canonical_name(t.name, c->hp.distil, c->hp.roberta, c->hp.mpnet, c->hp.num_labels > 0, name, sizeof name);
        if (v == KEEP && !keep_mlm && starts(name, "cls.")) v = DROP_HEAD;
        if (v != KEEP) {
            if (v == DROP_HEAD) dropped_head = true;
            free(t.name);
            free(t.owned);
            continue;
        }
        if (strcmp(name, t.name)) {
            char *nn = strdup(name);
            if (!nn) {
                for (size_t j = i; j < s->n; j++) { free(s->t[j].name); free(s->t[j].owned); }
                s->n = w;
                return SEMBED_ENOMEM;
            }
            free(t.name);
            t.name = nn;
        }
        s->t[w++] = t;
    }
    s->n = w;
    if (dropped_head) SEMBED_LOG_INFOF("task heads (MLM / NSP / classifier) are not converted%s", keep_mlm ? "" : " (--keep-mlm-head keeps the MLM head)");
    for (size_t i = 0; i < s->n; i++)
        for (size_t j = i + 1; j < s->n; j++)
            if (!strcmp(s->t[i].name, s->t[j].name))
                return sembed_fail(SEMBED_EDUPLICATE, SC_FN, "two source tensors map onto '%s'", s->t[i].name);
    return SEMBED_OK;
}

// Check one expected tensor; marks it seen.
static int expect(struct sc_ctx *c, bool *seen, const char *name, int64_t d0, int64_t d1, bool required) {
    struct sc_tensor *t = sc_source_find(&c->src, name);
    if (!t) {
        if (required) return sembed_fail(SEMBED_EMISSING, SC_FN, "tensor '%s' is missing from the checkpoint", name);
        return SEMBED_ENOTFOUND;
    }
    seen[t - c->src.t] = true;
    uint32_t nd = d1 ? 2 : 1;
    if (t->n_dims != nd || t->dims[0] != d0 || (nd == 2 && t->dims[1] != d1))
        return sembed_fail(SEMBED_EDIMS, SC_FN, "tensor '%s': shape [%lld%s%lld] but the config implies [%lld%s%lld]", name,
                           (long long)t->dims[0], t->n_dims > 1 ? ", " : "", t->n_dims > 1 ? (long long)t->dims[1] : 0LL,
                           (long long)d0, nd > 1 ? ", " : "", nd > 1 ? (long long)d1 : 0LL);
    if (t->dtype != SEMBED_DTYPE_F32 && t->dtype != SEMBED_DTYPE_F16 && t->dtype != SEMBED_DTYPE_BF16 &&
        !(t->dtype == SEMBED_DTYPE_Q8_ROW && nd == 2))
        return sembed_fail(SEMBED_EDTYPE, SC_FN, "tensor '%s': dtype %s is not supported here", name, sembed_dtype_name(t->dtype));
    return SEMBED_OK;
}

static int expect_linear(struct sc_ctx *c, bool *seen, const char *prefix, int64_t out, int64_t in, bool required) {
    char n[320]; // prefix < 256 bytes + suffix
    snprintf(n, sizeof n, "%s.weight", prefix);
    int rc = expect(c, seen, n, out, in, required);
    if (rc) return rc;
    snprintf(n, sizeof n, "%s.bias", prefix);
    return expect(c, seen, n, out, 0, true);
}

static int expect_ln(struct sc_ctx *c, bool *seen, const char *prefix, int64_t h) {
    char n[320]; // prefix < 256 bytes + suffix
    snprintf(n, sizeof n, "%s.weight", prefix);
    int rc = expect(c, seen, n, h, 0, true);
    if (rc) return rc;
    snprintf(n, sizeof n, "%s.bias", prefix);
    return expect(c, seen, n, h, 0, true);
}

int sc_hf_validate(struct sc_ctx *c, bool keep_mlm, bool *has_pooler, bool *has_mlm) {
    const struct sc_hparams *h = &c->hp;
    int64_t H = h->hidden_size, I = h->intermediate_size, V = h->vocab_size;
    bool *seen = calloc(c->src.n ? c->src.n : 1, sizeof *seen);
    if (!seen) return SEMBED_ENOMEM;
    int rc;
    char n[256];
    if ((rc = expect(c, seen, "embeddings.word_embeddings.weight", V, H, true))) goto done;
    if ((rc = expect(c, seen, "embeddings.position_embeddings.weight", h->max_position_embeddings, H, true))) goto done;
    if (h->type_vocab_size && (rc = expect(c, seen, "embeddings.token_type_embeddings.weight", h->type_vocab_size, H, true))) goto done;
    if ((rc = expect_ln(c, seen, "embeddings.LayerNorm", H))) goto done;
    for (uint32_t l = 0; l < h->num_layers; l++) {
        static const char *const qkv[] = {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"};
        for (int i = 0; i < 4; i++) {
            snprintf(n, sizeof n, "encoder.layer.%u.%s", l, qkv[i]);
            if ((rc = expect_linear(c, seen, n, H, H, true))) goto done;
        }
        snprintf(n, sizeof n, "encoder.layer.%u.attention.output.LayerNorm", l);
        if ((rc = expect_ln(c, seen, n, H))) goto done;
        snprintf(n, sizeof n, "encoder.layer.%u.intermediate.dense", l);
        if ((rc = expect_linear(c, seen, n, I, H, true))) goto done;
        snprintf(n, sizeof n, "encoder.layer.%u.output.dense", l);
        if ((rc = expect_linear(c, seen, n, H, I, true))) goto done;
        snprintf(n, sizeof n, "encoder.layer.%u.output.LayerNorm", l);
        if ((rc = expect_ln(c, seen, n, H))) goto done;
    }
    if (h->rel_buckets && (rc = expect(c, seen, "encoder.relative_attention_bias.weight", h->rel_buckets, h->num_heads, true)))
        goto done;
    rc = expect_linear(c, seen, "pooler.dense", H, H, false);
    if (rc && rc != SEMBED_ENOTFOUND) goto done;
    *has_pooler = rc == 0;
    if (h->num_labels) { // BertForSequenceClassification: pooler + classifier; RoBERTa: classifier.dense + out_proj
        if (h->roberta || h->mpnet) { // RobertaClassificationHead / MPNetClassificationHead
            if ((rc = expect_linear(c, seen, "classifier.dense", H, H, true)) ||
                (rc = expect_linear(c, seen, "classifier.out_proj", h->num_labels, H, true)))
                goto done;
        } else {
            if (!*has_pooler) {
                rc = sembed_fail(SEMBED_EMISSING, SC_FN, "%s: a BERT classifier needs the pooler (pooler.dense.*), which is missing", h->source_arch);
                goto done;
            }
            if ((rc = expect_linear(c, seen, "classifier", h->num_labels, H, true))) goto done;
        }
    }
    *has_mlm = false;
    if (keep_mlm) {
        rc = expect_linear(c, seen, "cls.predictions.transform.dense", H, H, false);
        if (rc && rc != SEMBED_ENOTFOUND) goto done;
        if (rc == 0) {
            if ((rc = expect_ln(c, seen, "cls.predictions.transform.LayerNorm", H))) goto done;
            if ((rc = expect(c, seen, "cls.predictions.bias", V, 0, true))) goto done;
            *has_mlm = true;
        } else {
            rc = sembed_fail(SEMBED_EMISSING, SC_FN, "--keep-mlm-head: the checkpoint has no MLM head (cls.predictions.* / vocab_transform.*)");
            goto done;
        }
    }
    int64_t in = H;
    for (uint32_t k = 0; k < c->pool.n_dense; k++) {
        snprintf(n, sizeof n, "pooling.dense.%u", k);
        snprintf(n + strlen(n), sizeof n - strlen(n), ".weight");
        struct sc_tensor *t = sc_source_find(&c->src, n);
        int64_t out = t ? t->dims[0] : 0;
        n[strlen(n) - 7] = 0;
        if ((rc = expect_linear(c, seen, n, out, in, true))) goto done;
        in = out;
    }
    rc = SEMBED_OK;
    for (size_t i = 0; i < c->src.n; i++)
        if (!seen[i]) {
            rc = sembed_fail(SEMBED_EARCH, SC_FN, "unexpected tensor '%s' for %s with %u layers: not a plain %s checkpoint", c->src.t[i].name,
                             h->source_arch, h->num_layers, h->distil ? "DistilBERT" : h->roberta ? "RoBERTa" : h->mpnet ? "MPNet" : "BERT");
            break;
        }
done:
    free(seen);
    return rc;
}
