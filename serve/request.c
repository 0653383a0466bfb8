// serve/request.c: request bodies -> inputs (no sockets here: tests/fuzz/fuzz_serve_request.c
// calls serve_request_parse directly). Field names and shapes follow the OpenAI embeddings API
// (platform.openai.com/docs/api-reference/embeddings) and text-embeddings-inference's openapi.json.
#define _GNU_SOURCE
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/serve.h"

static int fail(struct serve_error *err, int status, const char *type, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(struct serve_error *err, int status, const char *type, const char *param, const char *fmt, ...) {
    err->status = status;
    err->type = type;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static bool is_int_array(json_object *a) {
    size_t n = json_object_array_length(a);
    for (size_t i = 0; i < n; i++)
        if (!json_object_is_type(json_object_array_get_idx(a, i), json_type_int)) return false;
    return n > 0;
}

// A JSON array of integers -> token ids, each checked against the vocabulary; the count against
// max_input_length unless the request truncates (then serve_item_tokenize cuts).
static int parse_ids(json_object *a, const char *param, size_t idx, const struct serve_limits *lim, bool truncate,
                     struct serve_item *it, struct serve_error *err) {
    size_t n = json_object_array_length(a);
    if (n > lim->max_input_length && !truncate)
        return fail(err, 413, "Validation", param,
                    "input %zu has %zu tokens, more than the maximum input length %u (send truncate: true to cut it)",
                    idx, n, lim->max_input_length);
    if (n > UINT32_MAX / 2) return fail(err, 413, "Validation", param, "input %zu has too many tokens", idx);
    it->ids = malloc((n ? n : 1) * sizeof(int32_t));
    if (!it->ids) return fail(err, 503, "Overloaded", param, "out of memory");
    for (size_t j = 0; j < n; j++) {
        int64_t v = json_object_get_int64(json_object_array_get_idx(a, j));
        if (v < 0 || v >= (int64_t)lim->vocab_size)
            return fail(err, 422, "Validation", param, "input %zu: token id %lld at position %zu is outside the vocabulary (0..%u)",
                        idx, (long long)v, j, lim->vocab_size - 1);
        it->ids[j] = (int32_t)v;
    }
    it->n_ids = (uint32_t)n;
    return 0;
}

static int parse_text(json_object *s, struct serve_item *it) {
    it->text = json_object_get_string(s);
    it->len = (size_t)json_object_get_string_len(s);
    return 0;
}

// string | [int...] | [string | [int...], ...]  (OpenAI "input", TEI "inputs")
static int parse_inputs(json_object *v, const char *param, const struct serve_limits *lim, struct serve_request *r,
                        struct serve_error *err) {
    const char *shape = "a string, an array of strings, an array of token ids, or an array of arrays of token ids";
    if (!v) return fail(err, 422, "Validation", param, "`%s` is missing: it must be %s", param, shape);
    if (json_object_is_type(v, json_type_string) || (json_object_is_type(v, json_type_array) && is_int_array(v))) {
        r->items = calloc(1, sizeof *r->items);
        if (!r->items) return fail(err, 503, "Overloaded", param, "out of memory");
        r->n = 1;
        return json_object_is_type(v, json_type_string) ? parse_text(v, &r->items[0])
                                                        : parse_ids(v, param, 0, lim, r->truncate, &r->items[0], err);
    }
    if (!json_object_is_type(v, json_type_array)) return fail(err, 422, "Validation", param, "`%s` must be %s", param, shape);
    size_t n = json_object_array_length(v);
    if (n == 0) return fail(err, 422, "Validation", param, "`%s` cannot be empty", param);
    if (n > lim->max_client_batch_size)
        return fail(err, 413, "Validation", param, "batch size %zu > maximum allowed batch size %u", n,
                    lim->max_client_batch_size);
    r->items = calloc(n, sizeof *r->items);
    if (!r->items) return fail(err, 503, "Overloaded", param, "out of memory");
    r->n = n;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        if (json_object_is_type(e, json_type_string)) parse_text(e, &r->items[i]);
        else if (json_object_is_type(e, json_type_array) && is_int_array(e)) {
            if (parse_ids(e, param, i, lim, r->truncate, &r->items[i], err)) return -1;
        } else
            return fail(err, 422, "Validation", param, "`%s`[%zu] must be a string or a non-empty array of token ids",
                        param, i);
    }
    return 0;
}

static int get_bool(json_object *root, const char *key, int *out, struct serve_error *err) {
    json_object *v;
    if (!json_object_object_get_ex(root, key, &v) || json_object_is_type(v, json_type_null)) return 0;
    if (!json_object_is_type(v, json_type_boolean))
        return fail(err, 422, "Validation", key, "`%s` must be true or false", key);
    *out = json_object_get_boolean(v) ? 1 : 0;
    return 0;
}

static int parse_similarity(json_object *root, const struct serve_limits *lim, struct serve_request *r,
                            struct serve_error *err) {
    json_object *pairs, *inputs;
    if (json_object_object_get_ex(root, "pairs", &pairs)) {
        // sembed's own: {"pairs": [["a", "b"], ...]} -> {"similarities": [...]}
        if (!json_object_is_type(pairs, json_type_array) || json_object_array_length(pairs) == 0)
            return fail(err, 422, "Validation", "pairs", "`pairs` must be a non-empty array of [string, string]");
        size_t n = json_object_array_length(pairs);
        if (n * 2 > lim->max_client_batch_size)
            return fail(err, 413, "Validation", "pairs", "%zu pairs are %zu inputs > maximum allowed batch size %u", n,
                        2 * n, lim->max_client_batch_size);
        r->items = calloc(2 * n, sizeof *r->items);
        if (!r->items) return fail(err, 503, "Overloaded", "pairs", "out of memory");
        r->n = 2 * n;
        r->sim_pairs = true;
        for (size_t i = 0; i < n; i++) {
            json_object *p = json_object_array_get_idx(pairs, i);
            if (!json_object_is_type(p, json_type_array) || json_object_array_length(p) != 2 ||
                !json_object_is_type(json_object_array_get_idx(p, 0), json_type_string) ||
                !json_object_is_type(json_object_array_get_idx(p, 1), json_type_string))
                return fail(err, 422, "Validation", "pairs", "`pairs`[%zu] must be [string, string]", i);
            parse_text(json_object_array_get_idx(p, 0), &r->items[2 * i]);
            parse_text(json_object_array_get_idx(p, 1), &r->items[2 * i + 1]);
        }
        return 0;
    }
    // TEI: {"inputs": {"source_sentence": "...", "sentences": ["...", ...]}} -> [scores]
    json_object *src, *sents;
    if (!json_object_object_get_ex(root, "inputs", &inputs) || !json_object_is_type(inputs, json_type_object) ||
        !json_object_object_get_ex(inputs, "source_sentence", &src) || !json_object_is_type(src, json_type_string) ||
        !json_object_object_get_ex(inputs, "sentences", &sents) || !json_object_is_type(sents, json_type_array) ||
        json_object_array_length(sents) == 0)
        return fail(err, 422, "Validation", "inputs",
                    "send {\"inputs\": {\"source_sentence\": string, \"sentences\": [string, ...]}} or "
                    "{\"pairs\": [[string, string], ...]}");
    size_t n = json_object_array_length(sents);
    if (n + 1 > lim->max_client_batch_size)
        return fail(err, 413, "Validation", "inputs", "%zu sentences + 1 source > maximum allowed batch size %u", n,
                    lim->max_client_batch_size);
    r->items = calloc(n + 1, sizeof *r->items);
    if (!r->items) return fail(err, 503, "Overloaded", "inputs", "out of memory");
    r->n = n + 1;
    parse_text(src, &r->items[0]);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(sents, i);
        if (!json_object_is_type(e, json_type_string))
            return fail(err, 422, "Validation", "inputs", "`sentences`[%zu] must be a string", i);
        parse_text(e, &r->items[i + 1]);
    }
    return 0;
}

// TEI: {"query": string, "texts": [string, ...], "raw_scores", "return_text", "truncate",
// "truncation_direction"} -> [{"index", "score", "text"?}, ...] best first.
static int parse_rerank(json_object *root, const struct serve_limits *lim, struct serve_request *r,
                        struct serve_error *err) {
    json_object *q, *texts;
    if (!json_object_object_get_ex(root, "query", &q) || !json_object_is_type(q, json_type_string))
        return fail(err, 422, "Validation", "query", "`query` must be a string");
    if (!json_object_object_get_ex(root, "texts", &texts) || !json_object_is_type(texts, json_type_array))
        return fail(err, 422, "Validation", "texts", "`texts` must be an array of strings");
    size_t n = json_object_array_length(texts);
    if (n == 0) return fail(err, 422, "Validation", "texts", "`texts` cannot be empty");
    if (n > lim->max_client_batch_size)
        return fail(err, 413, "Validation", "texts", "batch size %zu > maximum allowed batch size %u", n,
                    lim->max_client_batch_size);
    int raw = 0, ret = 0;
    if (get_bool(root, "raw_scores", &raw, err) || get_bool(root, "return_text", &ret, err)) return -1;
    r->raw_scores = raw == 1;
    r->return_text = ret == 1;
    r->items = calloc(n + 1, sizeof *r->items);
    if (!r->items) return fail(err, 503, "Overloaded", "texts", "out of memory");
    r->n = n + 1;
    parse_text(q, &r->items[0]);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(texts, i);
        if (!json_object_is_type(e, json_type_string))
            return fail(err, 422, "Validation", "texts", "`texts`[%zu] must be a string", i);
        parse_text(e, &r->items[i + 1]);
    }
    return 0;
}

static int parse_body(enum serve_route route, json_object *root, const struct serve_limits *lim,
                      struct serve_request *r, struct serve_error *err) {
    if (!json_object_is_type(root, json_type_object))
        return fail(err, 422, "Validation", "", "the request body must be a JSON object");
    int b = -1;
    if (get_bool(root, "truncate", &b, err)) return -1;
    r->truncate = b == 1;
    json_object *v;
    if (json_object_object_get_ex(root, "truncation_direction", &v) && !json_object_is_type(v, json_type_null)) {
        const char *d = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
        if (!strcasecmp(d, "left")) r->truncate_left = true;
        else if (strcasecmp(d, "right"))
            return fail(err, 422, "Validation", "truncation_direction", "`truncation_direction` must be \"left\" or \"right\"");
    }
    switch (route) {
    case SERVE_ROUTE_OPENAI:
        if (json_object_object_get_ex(root, "model", &v) && !json_object_is_type(v, json_type_string) &&
            !json_object_is_type(v, json_type_null))
            return fail(err, 422, "Validation", "model", "`model` must be a string");
        if (json_object_object_get_ex(root, "encoding_format", &v) && !json_object_is_type(v, json_type_null)) {
            const char *f = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : "";
            if (!strcmp(f, "base64")) r->base64 = true;
            else if (strcmp(f, "float"))
                return fail(err, 422, "Validation", "encoding_format", "`encoding_format` must be \"float\" or \"base64\"");
        }
        if (json_object_object_get_ex(root, "dimensions", &v) && !json_object_is_type(v, json_type_null)) {
            int64_t d = json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
            if (d < 1 || d > (int64_t)lim->dim)
                return fail(err, 422, "Validation", "dimensions", "`dimensions` must be an integer in 1..%u", lim->dim);
            r->dimensions = (uint32_t)d;
        }
        json_object_object_get_ex(root, "input", &v);
        return parse_inputs(json_object_object_get_ex(root, "input", &v) ? v : NULL, "input", lim, r, err);
    case SERVE_ROUTE_EMBED:
        if (get_bool(root, "normalize", &r->normalize, err)) return -1;
        return parse_inputs(json_object_object_get_ex(root, "inputs", &v) ? v : NULL, "inputs", lim, r, err);
    case SERVE_ROUTE_TOKENIZE: {
        int ast = 1;
        if (get_bool(root, "add_special_tokens", &ast, err)) return -1;
        r->add_special_tokens = ast == 1;
        if (parse_inputs(json_object_object_get_ex(root, "inputs", &v) ? v : NULL, "inputs", lim, r, err)) return -1;
        for (size_t i = 0; i < r->n; i++)
            if (!r->items[i].text)
                return fail(err, 422, "Validation", "inputs", "/tokenize takes strings; `inputs`[%zu] is token ids", i);
        return 0;
    }
    case SERVE_ROUTE_SIMILARITY: return parse_similarity(root, lim, r, err);
    case SERVE_ROUTE_RERANK: return parse_rerank(root, lim, r, err);
    default: return fail(err, 404, "NotFound", "", "unknown route");
    }
}

int serve_request_parse(enum serve_route route, const char *body, size_t len, const struct serve_limits *lim,
                        struct serve_request *req, struct serve_error *err) {
    memset(req, 0, sizeof *req);
    req->route = route;
    req->normalize = -1;
    req->add_special_tokens = true;
    if (len > INT_MAX) return fail(err, 413, "Validation", "", "the request body is too large");
    // Strict JSON (RFC 8259), raw bytes checked as UTF-8, nesting bounded, nothing after the value.
    json_tokener *tk = json_tokener_new_ex(16);
    if (!tk) return fail(err, 503, "Overloaded", "", "out of memory");
    json_tokener_set_flags(tk, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *root = json_tokener_parse_ex(tk, body ? body : "", (int)len);
    enum json_tokener_error je = json_tokener_get_error(tk);
    size_t used = json_tokener_get_parse_end(tk);
    json_tokener_free(tk);
    if (!root || je != json_tokener_success) {
        json_object_put(root);
        if (je == json_tokener_continue) return fail(err, 422, "Validation", "", "malformed JSON: the body ends inside a value");
        return fail(err, 422, "Validation", "", "malformed JSON at byte %zu: %s", used, json_tokener_error_desc(je));
    }
    for (; used < len; used++)
        if (!strchr(" \t\r\n", body[used])) {
            json_object_put(root);
            return fail(err, 422, "Validation", "", "malformed JSON: unexpected bytes after the value at byte %zu", used);
        }
    req->root = root;
    if (parse_body(route, root, lim, req, err)) {
        serve_request_free(req);
        return -1;
    }
    return 0;
}

void serve_request_free(struct serve_request *req) {
    if (!req) return;
    for (size_t i = 0; req->items && i < req->n; i++) free(req->items[i].ids);
    free(req->items);
    json_object_put(req->root);
    memset(req, 0, sizeof *req);
}

int serve_item_tokenize(const struct sembed_tokenizer *tok, const struct serve_request *req, size_t i,
                        uint32_t max_len, int32_t **ids_out, uint32_t *n_out, bool *cut, struct serve_error *err) {
    const struct serve_item *it = &req->items[i];
    *ids_out = NULL;
    *cut = false;
    if (!it->text) {
        uint32_t n = it->n_ids;
        if (n > max_len) {
            if (!req->truncate)
                return fail(err, 413, "Validation", "input", "input %zu has %u tokens, more than the maximum input length %u",
                            i, n, max_len);
            *cut = true;
            n = max_len;
        }
        int32_t *ids = malloc((size_t)n * sizeof *ids);
        if (!ids) return fail(err, 503, "Overloaded", "", "out of memory");
        memcpy(ids, it->ids + (*cut && req->truncate_left ? it->n_ids - n : 0), (size_t)n * sizeof *ids);
        *ids_out = ids;
        *n_out = n;
        return 0;
    }
    int32_t *ids = malloc((size_t)max_len * sizeof *ids);
    if (!ids) return fail(err, 503, "Overloaded", "", "out of memory");
    uint32_t n = 0;
    int rc;
    if (req->truncate && req->truncate_left) {
        // [CLS] + the last max_len - 2 word pieces + [SEP]
        size_t total = 0;
        rc = sembed_tokenizer_encode(tok, it->text, it->len, NULL, 0, &total);
        if (rc == 0 && total + 2 > max_len) {
            int32_t *all = malloc((total ? total : 1) * sizeof *all);
            size_t got = 0;
            rc = all ? sembed_tokenizer_encode(tok, it->text, it->len, all, total, &got) : SEMBED_ENOMEM;
            if (rc == 0) {
                uint32_t keep = max_len - 2;
                ids[0] = sembed_tokenizer_cls_id(tok);
                memcpy(ids + 1, all + (got - keep), keep * sizeof *ids);
                ids[max_len - 1] = sembed_tokenizer_sep_id(tok);
                n = max_len;
                *cut = true;
            }
            free(all);
            if (rc) goto tokfail;
            *ids_out = ids;
            *n_out = n;
            return 0;
        }
    }
    rc = sembed_tokenizer_encode_input(tok, it->text, it->len, NULL, 0, max_len,
                                       req->truncate ? SEMBED_TRUNCATE_LONGEST_FIRST : SEMBED_TRUNCATE_ERROR, ids, NULL,
                                       &n, cut);
    if (rc == SEMBED_ETOOLONG) {
        free(ids);
        size_t total = 0;
        sembed_tokenizer_encode(tok, it->text, it->len, NULL, 0, &total);
        return fail(err, 413, "Validation", req->route == SERVE_ROUTE_OPENAI ? "input" : "inputs",
                    "input %zu has %zu tokens, more than the maximum input length %u (send truncate: true to cut it)", i,
                    total + 2, max_len);
    }
tokfail:
    if (rc) {
        free(ids);
        return fail(err, 422, "Tokenizer", "", "input %zu: tokenizer failed: %s", i, sembed_strerror(rc));
    }
    *ids_out = ids;
    *n_out = n;
    return 0;
}

int serve_pair_tokenize(const struct sembed_tokenizer *tok, const struct serve_request *req, size_t i, uint32_t max_len,
                        int32_t **ids_out, int32_t **types_out, uint32_t *n_out, bool *cut, struct serve_error *err) {
    *ids_out = NULL;
    *types_out = NULL;
    *cut = false;
    const struct serve_item *q = &req->items[0], *t = &req->items[i];
    int32_t *ids = malloc((size_t)max_len * sizeof *ids), *types = malloc((size_t)max_len * sizeof *types);
    if (!ids || !types) {
        free(ids);
        free(types);
        return fail(err, 503, "Overloaded", "", "out of memory");
    }
    uint32_t n = 0;
    int rc = sembed_tokenizer_encode_input(tok, q->text, q->len, t->text, t->len, max_len,
                                           req->truncate ? SEMBED_TRUNCATE_LONGEST_FIRST : SEMBED_TRUNCATE_ERROR, ids,
                                           types, &n, cut);
    if (rc) {
        free(ids);
        free(types);
        if (rc == SEMBED_ETOOLONG)
            return fail(err, 413, "Validation", "texts",
                        "the query with text %zu is longer than the maximum input length %u (send truncate: true to cut it)",
                        i - 1, max_len);
        return fail(err, 422, "Tokenizer", "", "text %zu: tokenizer failed: %s", i - 1, sembed_strerror(rc));
    }
    *ids_out = ids;
    *types_out = types;
    *n_out = n;
    return 0;
}

size_t serve_base64_f32(const float *v, size_t n, char *out) {
    // RFC 4648 section 4 alphabet; bytes are the floats' little-endian IEEE 754 encodings.
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t nb = 4 * n, o = 0;
    uint32_t acc = 0;
    int have = 0;
    for (size_t i = 0; i < nb; i++) {
        uint32_t u;
        memcpy(&u, &v[i / 4], 4);
        acc = (acc << 8) | ((u >> (8 * (i % 4))) & 0xff);
        if (++have == 3) {
            out[o++] = a[(acc >> 18) & 63]; out[o++] = a[(acc >> 12) & 63];
            out[o++] = a[(acc >> 6) & 63];  out[o++] = a[acc & 63];
            acc = 0;
            have = 0;
        }
    }
    if (have == 1) {
        out[o++] = a[(acc >> 2) & 63]; out[o++] = a[(acc << 4) & 63];
        out[o++] = '='; out[o++] = '=';
    } else if (have == 2) {
        out[o++] = a[(acc >> 10) & 63]; out[o++] = a[(acc >> 4) & 63];
        out[o++] = a[(acc << 2) & 63];  out[o++] = '=';
    }
    out[o] = 0;
    return o;
}
