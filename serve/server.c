// serve/server.c: routes, limits and responses on libmicrohttpd (thread per connection).
// Why thread per connection: a request's thread tokenizes it (in parallel with the forward pass
// running in the batcher) and then sleeps on the job's condition variable, which keeps the code
// straight-line, lets that thread notice its client hanging up (poll POLLRDHUP) and drop the job,
// and costs one mostly idle thread per open connection, bounded by the connection limit and the
// idle timeout. Suspend/resume would save those threads but cannot see a hang-up while suspended.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "serve/batcher.h"
#include "serve/metrics.h"
#include "serve/serve.h"

enum { R_OPENAI, R_EMBED, R_TOKENIZE, R_SIMILARITY, R_RERANK, R_INFO, R_HEALTH, R_METRICS, R_MODELS, R_OTHER };
#define R_LAST_POST R_RERANK

struct serve {
    struct serve_params p;
    struct sembed_model *m;
    const struct sembed_tokenizer *tok;
    struct serve_batcher *batcher;
    struct serve_metrics mx;
    struct MHD_Daemon *d;
    uint32_t dim, max_len, max_batch_requests;
    bool model_normalize;
    uint32_t num_labels; // > 0: a cross-encoder, served on /rerank only
    uint16_t port;
    char model_id[256], address[320];
    atomic_int in_flight;
    atomic_bool draining;
    pthread_mutex_t drain_mu;
    pthread_cond_t drain_cv;
};

struct req {
    int route;
    char *body;
    size_t len, cap;
    bool too_large, answered;
    double t0;
};

struct serve_params serve_default_params(void) {
    return (struct serve_params){.host = "127.0.0.1", .port = 8080, .max_batch_tokens = 0,
                                 .max_client_batch_size = 32, .max_concurrent_requests = 512,
                                 .payload_limit = 2000000, .timeout_s = 30, .drain_timeout_s = 30,
                                 .compute = SEMBED_COMPUTE_AUTO};
}

uint16_t serve_port(const struct serve *s) { return s->port; }
const char *serve_address(const struct serve *s) { return s->address; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------- responses */

static enum MHD_Result respond(struct serve *s, struct MHD_Connection *c, struct req *r, int status,
                               const char *ctype, char *body, size_t len) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (status == 405)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->route <= R_SIMILARITY ? "POST" : "GET, HEAD");
    if (status == 401) MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (atomic_load(&s->draining)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (!r->answered) serve_metrics_request(&s->mx, r->route, status);
    r->answered = true;
    return ok;
}

static char *json_str(const char *s, size_t len) {
    json_object *o = json_object_new_string_len(s, (int)len);
    char *out = o ? strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) : NULL;
    json_object_put(o);
    return out;
}

// TEI's error body {"error", "error_type"}; OpenAI's envelope on /v1/...
static enum MHD_Result respond_error(struct serve *s, struct MHD_Connection *c, struct req *r,
                                     const struct serve_error *e) {
    char *msg = json_str(e->msg, strlen(e->msg));
    char *body = NULL;
    int n;
    if (r->route == R_OPENAI || r->route == R_MODELS) {
        const char *type = e->status == 429 ? "rate_limit_error"
                           : e->status == 401 ? "authentication_error"
                           : e->status >= 500 ? "server_error"
                                              : "invalid_request_error";
        const char *code = e->status == 429   ? "\"rate_limit_exceeded\""
                           : e->status == 401 ? "\"invalid_api_key\""
                           : e->status == 404 ? "\"not_found\""
                           : e->status == 413 ? "\"payload_too_large\""
                                              : "null";
        char param[64] = "null";
        if (e->param[0]) snprintf(param, sizeof param, "\"%s\"", e->param);
        n = asprintf(&body, "{\"error\":{\"message\":%s,\"type\":\"%s\",\"param\":%s,\"code\":%s}}", msg ? msg : "\"\"",
                     type, param, code);
    } else {
        n = asprintf(&body, "{\"error\":%s,\"error_type\":\"%s\"}", msg ? msg : "\"\"", e->type);
    }
    free(msg);
    if (n < 0) return MHD_NO;
    return respond(s, c, r, e->status, "application/json", body, (size_t)n);
}

static enum MHD_Result fail(struct serve *s, struct MHD_Connection *c, struct req *r, int status, const char *type,
                            const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static enum MHD_Result fail(struct serve *s, struct MHD_Connection *c, struct req *r, int status, const char *type,
                            const char *fmt, ...) {
    struct serve_error e = {.status = status, .type = type};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    return respond_error(s, c, r, &e);
}

/* ---------------------------------------------------------------- embedding routes */

static bool client_gone(void *ud) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(ud, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd pf = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&pf, 1, 0) == 1 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void put_floats(FILE *f, const float *v, uint32_t d) {
    fputc('[', f);
    for (uint32_t j = 0; j < d; j++) {
        if (j) fputc(',', f);
        if (isfinite(v[j])) fprintf(f, "%.9g", (double)v[j]);
        else fputs("null", f);
    }
    fputc(']', f);
}

static double cosine(const float *a, const float *b, uint32_t d) {
    double ab = 0, aa = 0, bb = 0;
    for (uint32_t i = 0; i < d; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0.0;
}

// TEI's /tokenize: per input, its tokens as {id, text, special, start, stop}; a token from the
// text has the text it covers and its span in characters (Unicode scalar values, as TEI counts),
// a special token the post-processor added has its vocabulary string and null span.
static char *tokenize_body(struct serve *s, const struct serve_request *q, size_t *len) {
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f) return NULL;
    bool ok = true;
    fputc('[', f);
    for (size_t i = 0; i < q->n && ok; i++) {
        const char *text = q->items[i].text;
        size_t tl = q->items[i].len;
        struct sembed_encoding e;
        if (sembed_tokenizer_encode_full(s->tok, text, tl, NULL, 0, q->add_special_tokens, 0,
                                         SEMBED_TRUNCATE_LONGEST_FIRST, &e, NULL)) {
            ok = false;
            break;
        }
        uint32_t *chars = malloc((tl + 1) * sizeof *chars); // character index of each byte offset
        if (!chars) { sembed_encoding_free(&e); ok = false; break; }
        for (size_t b = 0, c = 0; b <= tl; b++) {
            chars[b] = (uint32_t)c;
            if (b < tl && ((uint8_t)text[b] & 0xC0) != 0x80) c++;
        }
        fputs(i ? ",[" : "[", f);
        for (size_t j = 0; j < e.n; j++) {
            bool special = e.seq_ids[j] < 0;
            uint32_t st = e.start[j] <= tl ? e.start[j] : (uint32_t)tl, en = e.end[j] <= tl ? e.end[j] : (uint32_t)tl;
            const char *t = special ? sembed_tokenizer_token(s->tok, e.ids[j]) : text + st;
            size_t n = special ? (t ? strlen(t) : 0) : (en > st ? en - st : 0);
            char *js = json_str(t ? t : "", n);
            fprintf(f, "%s{\"id\":%d,\"text\":%s,\"special\":%s,", j ? "," : "", e.ids[j], js ? js : "\"\"",
                    special ? "true" : "false");
            if (special) fputs("\"start\":null,\"stop\":null}", f);
            else fprintf(f, "\"start\":%u,\"stop\":%u}", chars[st], chars[en]);
            free(js);
        }
        fputc(']', f);
        free(chars);
        sembed_encoding_free(&e);
    }
    fputc(']', f);
    if (fclose(f) != 0 || !ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

static enum MHD_Result handle_post(struct serve *s, struct MHD_Connection *c, struct req *r) {
    static const enum serve_route api[] = {[R_OPENAI] = SERVE_ROUTE_OPENAI, [R_EMBED] = SERVE_ROUTE_EMBED,
                                           [R_TOKENIZE] = SERVE_ROUTE_TOKENIZE, [R_SIMILARITY] = SERVE_ROUTE_SIMILARITY,
                                           [R_RERANK] = SERVE_ROUTE_RERANK};
    // TEI answers 424 when the model is not of the route's kind.
    if (r->route == R_RERANK && s->num_labels > 1)
        return fail(s, c, r, 424, "Backend", "model is not a re-ranker model: it has %u labels, /rerank needs one",
                    s->num_labels);
    if (r->route == R_RERANK && !s->num_labels)
        return fail(s, c, r, 424, "Backend", "model is not a re-ranker model: it embeds (use /embed or /v1/embeddings)");
    if (s->num_labels && r->route != R_RERANK && r->route != R_TOKENIZE)
        return fail(s, c, r, 424, "Backend", "model is a cross-encoder (%u labels): it scores pairs on /rerank, it does not embed",
                    s->num_labels);
    struct serve_limits lim = {s->p.max_client_batch_size, s->max_len, (uint32_t)sembed_tokenizer_vocab_size(s->tok),
                               s->dim};
    struct serve_request q;
    struct serve_error e = {0};
    if (serve_request_parse(api[r->route], r->body, r->len, &lim, &q, &e)) return respond_error(s, c, r, &e);
    if (r->route == R_TOKENIZE) {
        size_t len = 0;
        char *body = tokenize_body(s, &q, &len);
        serve_request_free(&q);
        if (!body) return fail(s, c, r, 422, "Tokenizer", "cannot tokenize the inputs");
        return respond(s, c, r, 200, "application/json", body, len);
    }
    // Tokenize here, in the connection's thread; the batcher only runs forward passes.
    struct sembed_ids *in = calloc(q.n, sizeof *in);
    int32_t **own = calloc(2 * q.n, sizeof *own); // ids, then token types (rerank)
    float *out = malloc(q.n * s->dim * sizeof(float));
    uint64_t tokens = 0, cut_n = 0;
    enum MHD_Result ok;
    size_t i = 0;
    if (!in || !own || !out) {
        ok = fail(s, c, r, 503, "Overloaded", "out of memory");
        goto done;
    }
    if (r->route == R_RERANK) { // one input per (query, text) pair, the query itself is not one
        in[0].n = 0;
        i = 1;
    }
    for (; i < q.n; i++) {
        int32_t *ids, *types = NULL;
        bool cut;
        int rc = r->route == R_RERANK ? serve_pair_tokenize(s->tok, &q, i, s->max_len, &ids, &types, &in[i].n, &cut, &e)
                                      : serve_item_tokenize(s->tok, &q, i, s->max_len, &ids, &in[i].n, &cut, &e);
        if (rc) {
            ok = respond_error(s, c, r, &e);
            goto done;
        }
        in[i].ids = own[i] = ids;
        in[i].type_ids = own[q.n + i] = types;
        tokens += in[i].n;
        cut_n += cut;
    }
    int variant = q.normalize < 0 ? s->model_normalize : q.normalize;
    if (r->route == R_RERANK) variant = q.raw_scores ? SERVE_RAW_SCORES : 0;
    size_t first = r->route == R_RERANK ? 1 : 0;
    struct serve_job job = {.in = in + first, .n = (uint32_t)(q.n - first), .out = out + first * s->dim,
                            .normalize = variant};
    if (serve_batcher_submit(s->batcher, &job)) {
        ok = fail(s, c, r, 429, "Overloaded", "model is overloaded: %u requests are queued or running",
                  s->p.max_concurrent_requests);
        goto done;
    }
    int rc = serve_batcher_wait(s->batcher, &job, client_gone, c);
    if (rc == SEMBED_ESTATE) { // the client went away: nobody reads the answer
        pthread_mutex_lock(&s->mx.mu);
        s->mx.cancelled++;
        pthread_mutex_unlock(&s->mx.mu);
        ok = MHD_NO;
        goto done;
    }
    if (rc) {
        ok = fail(s, c, r, 500, "Backend", "embedding failed: %s", sembed_strerror(rc));
        goto done;
    }
    pthread_mutex_lock(&s->mx.mu);
    s->mx.truncated += cut_n;
    pthread_mutex_unlock(&s->mx.mu);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        ok = fail(s, c, r, 503, "Overloaded", "out of memory");
        goto done;
    }
    if (r->route == R_OPENAI) {
        uint32_t d = q.dimensions ? q.dimensions : s->dim;
        char *b64 = q.base64 ? malloc(4 * (((size_t)4 * d + 2) / 3) + 1) : NULL;
        float *v = malloc(d * sizeof(float));
        fputs("{\"object\":\"list\",\"data\":[", f);
        for (size_t k = 0; k < q.n; k++) {
            memcpy(v, out + k * s->dim, d * sizeof(float));
            if (d < s->dim && job.normalize) { // Matryoshka: the first d values, re-normalized
                double ss = 0;
                for (uint32_t j = 0; j < d; j++) ss += (double)v[j] * v[j];
                if (ss > 0)
                    for (uint32_t j = 0; j < d; j++) v[j] = (float)(v[j] / sqrt(ss));
            }
            fprintf(f, "%s{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", k ? "," : "", k);
            if (b64) {
                serve_base64_f32(v, d, b64);
                fprintf(f, "\"%s\"}", b64);
            } else {
                put_floats(f, v, d);
                fputc('}', f);
            }
        }
        char *mid = json_str(s->model_id, strlen(s->model_id));
        fprintf(f, "],\"model\":%s,\"usage\":{\"prompt_tokens\":%llu,\"total_tokens\":%llu}}", mid ? mid : "\"\"",
                (unsigned long long)tokens, (unsigned long long)tokens);
        free(mid);
        free(b64);
        free(v);
    } else if (r->route == R_EMBED) {
        fputc('[', f);
        for (size_t k = 0; k < q.n; k++) {
            if (k) fputc(',', f);
            put_floats(f, out + k * s->dim, s->dim);
        }
        fputc(']', f);
    } else if (r->route == R_RERANK) { // TEI: best first (an ascending stable sort, reversed)
        size_t n = q.n - 1;
        size_t *order = malloc(n * sizeof *order);
        if (!order) {
            fclose(f);
            free(buf);
            ok = fail(s, c, r, 503, "Overloaded", "out of memory");
            goto done;
        }
        const float *sc = out + s->dim; // one label: dim == 1
        for (size_t k = 0; k < n; k++) order[k] = k;
        for (size_t a = 1; a < n; a++) { // insertion sort: stable, n <= max_client_batch_size
            size_t x = order[a], b = a;
            while (b > 0 && sc[order[b - 1]] > sc[x]) { order[b] = order[b - 1]; b--; }
            order[b] = x;
        }
        fputc('[', f);
        for (size_t k = 0; k < n; k++) {
            size_t idx = order[n - 1 - k];
            fprintf(f, "%s{\"index\":%zu,", k ? "," : "", idx);
            if (q.return_text) {
                char *js = json_str(q.items[idx + 1].text, q.items[idx + 1].len);
                fprintf(f, "\"text\":%s,", js ? js : "\"\"");
                free(js);
            }
            fputs("\"score\":", f);
            if (isfinite(sc[idx])) fprintf(f, "%.9g}", (double)sc[idx]);
            else fputs("null}", f);
        }
        fputc(']', f);
        free(order);
    } else { // similarity
        fputc('[', f);
        if (q.sim_pairs)
            for (size_t k = 0; k + 1 < q.n; k += 2)
                fprintf(f, "%s%.9g", k ? "," : "", cosine(out + k * s->dim, out + (k + 1) * s->dim, s->dim));
        else
            for (size_t k = 1; k < q.n; k++) fprintf(f, "%s%.9g", k > 1 ? "," : "", cosine(out, out + k * s->dim, s->dim));
        fputc(']', f);
    }
    if (fclose(f) != 0) {
        free(buf);
        ok = fail(s, c, r, 503, "Overloaded", "out of memory");
        goto done;
    }
    serve_metrics_observe(&s->mx, &s->mx.request_s, now_s() - r->t0);
    ok = respond(s, c, r, 200, "application/json", buf, len);
done:
    for (size_t k = 0; own && k < i; k++) free(own[k]), free(own[q.n + k]);
    free(own);
    free(in);
    free(out);
    serve_request_free(&q);
    return ok;
}

/* ---------------------------------------------------------------- GET routes */

static enum MHD_Result handle_get(struct serve *s, struct MHD_Connection *c, struct req *r) {
    if (r->route == R_HEALTH) return respond(s, c, r, 200, "application/json", strdup("{}"), 2);
    if (r->route == R_METRICS) {
        uint32_t jobs;
        uint64_t inputs;
        serve_batcher_depth(s->batcher, &jobs, &inputs);
        size_t len = 0;
        char *t = serve_metrics_text(&s->mx, jobs, inputs, &len);
        if (!t) return fail(s, c, r, 503, "Overloaded", "out of memory");
        return respond(s, c, r, 200, "text/plain; version=0.0.4; charset=utf-8", t, len);
    }
    json_object *o = json_object_new_object();
    if (r->route == R_MODELS) { // OpenAI GET /v1/models
        json_object *list = json_object_new_array(), *mo = json_object_new_object();
        json_object_object_add(mo, "id", json_object_new_string(s->model_id));
        json_object_object_add(mo, "object", json_object_new_string("model"));
        json_object_object_add(mo, "created", json_object_new_int(0));
        json_object_object_add(mo, "owned_by", json_object_new_string("sembed"));
        json_object_array_add(list, mo);
        json_object_object_add(o, "object", json_object_new_string("list"));
        json_object_object_add(o, "data", list);
    } else { // TEI GET /info, plus sembed's own fields
        const char *ft = NULL;
        if (sembed_file_get_str(sembed_model_file(s->m), "general.file_type", &ft, NULL)) ft = NULL;
        json_object *mt = json_object_new_object(), *emb = json_object_new_object();
        if (s->num_labels) { // TEI: {"reranker" | "classifier": {"id2label", "label2id"}}
            json_object *i2l = json_object_new_object(), *l2i = json_object_new_object();
            for (uint32_t k = 0; k < s->num_labels; k++) {
                char key[16], label[32];
                snprintf(key, sizeof key, "%u", k);
                snprintf(label, sizeof label, "LABEL_%u", k);
                json_object_object_add(i2l, key, json_object_new_string(label));
                json_object_object_add(l2i, label, json_object_new_int64(k));
            }
            json_object_object_add(emb, "id2label", i2l);
            json_object_object_add(emb, "label2id", l2i);
            json_object_object_add(mt, s->num_labels == 1 ? "reranker" : "classifier", emb);
        } else {
            json_object_object_add(emb, "pooling", json_object_new_string(sembed_pooling_name(sembed_model_pooling(s->m))));
            json_object_object_add(mt, "embedding", emb);
        }
        json_object_object_add(o, "model_id", json_object_new_string(s->model_id));
        json_object_object_add(o, "model_sha", NULL);
        json_object_object_add(o, "model_dtype", json_object_new_string(sembed_compute_name(sembed_model_compute(s->m))));
        json_object_object_add(o, "model_type", mt);
        json_object_object_add(o, "max_concurrent_requests", json_object_new_int64(s->p.max_concurrent_requests));
        json_object_object_add(o, "max_input_length", json_object_new_int64(s->max_len));
        json_object_object_add(o, "max_batch_tokens", json_object_new_int64(s->p.max_batch_tokens));
        json_object_object_add(o, "max_batch_requests", json_object_new_int64(s->max_batch_requests));
        json_object_object_add(o, "max_client_batch_size", json_object_new_int64(s->p.max_client_batch_size));
        json_object_object_add(o, "payload_limit", json_object_new_int64((int64_t)s->p.payload_limit));
        json_object_object_add(o, "auto_truncate", json_object_new_boolean(0));
        json_object_object_add(o, "tokenization_workers", NULL);
        json_object_object_add(o, "version", json_object_new_string(sembed_version()));
        json_object_object_add(o, "dim", json_object_new_int64(s->dim));
        json_object_object_add(o, "normalize", json_object_new_boolean(s->model_normalize));
        json_object_object_add(o, "file_type", ft ? json_object_new_string(ft) : NULL);
        json_object_object_add(o, "kernels", json_object_new_string(sembed_kernel_isa()));
        json_object_object_add(o, "threads", json_object_new_int(s->p.n_threads));
    }
    char *body = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    if (!body) return fail(s, c, r, 503, "Overloaded", "out of memory");
    return respond(s, c, r, 200, "application/json", body, strlen(body));
}

/* ---------------------------------------------------------------- libmicrohttpd callbacks */

static int route_of(const char *url) {
    static const struct { const char *path; int route; } t[] = {
        {"/v1/embeddings", R_OPENAI}, {"/embeddings", R_OPENAI}, {"/embed", R_EMBED}, {"/tokenize", R_TOKENIZE},
        {"/similarity", R_SIMILARITY}, {"/rerank", R_RERANK}, {"/info", R_INFO}, {"/health", R_HEALTH}, {"/metrics", R_METRICS},
        {"/v1/models", R_MODELS}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(url, t[i].path)) return t[i].route;
    return R_OTHER;
}

static bool key_ok(const struct serve *s, struct MHD_Connection *c) {
    if (!s->p.api_key) return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7)) return false;
    h += 7;
    size_t a = strlen(h), b = strlen(s->p.api_key);
    unsigned char diff = a != b;
    for (size_t i = 0; i < a && i < b; i++) diff |= (unsigned char)(h[i] ^ s->p.api_key[i]); // no early exit
    return diff == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    struct serve *s = cls;
    struct req *r = *con_cls;
    if (!r) { // headers are in, the body (if any) is not: refuse what can be refused unread
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        atomic_fetch_add(&s->in_flight, 1);
        r->t0 = now_s();
        r->route = route_of(url);
        bool post = !strcmp(method, MHD_HTTP_METHOD_POST);
        bool get = !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
        if (r->route == R_OTHER) return fail(s, c, r, 404, "NotFound", "no route %s %s", method, url);
        if (r->route <= R_LAST_POST ? !post : !get)
            return fail(s, c, r, 405, "MethodNotAllowed", "%s %s: use %s", method, url,
                        r->route <= R_LAST_POST ? "POST" : "GET");
        if (r->route != R_HEALTH && !key_ok(s, c))
            return fail(s, c, r, 401, "Unauthorized", "missing or wrong API key (send Authorization: Bearer KEY)");
        if (r->route > R_LAST_POST) return MHD_YES; // answered at the next call
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (end == cl || *end || v > s->p.payload_limit)
                return fail(s, c, r, 413, "Validation", "the body (%s bytes) is larger than the payload limit %zu", cl,
                            s->p.payload_limit);
            if (v) {
                r->body = malloc((size_t)v + 1);
                if (!r->body) return fail(s, c, r, 503, "Overloaded", "out of memory");
                r->cap = (size_t)v + 1;
            }
        }
        return MHD_YES;
    }
    if (r->answered) { // refused early: discard whatever body comes
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) { // a piece of the body
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_large || r->len + n > s->p.payload_limit) {
            r->too_large = true;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1) cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b) {
                r->too_large = true;
                return MHD_YES;
            }
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    if (r->too_large)
        return fail(s, c, r, 413, "Validation", "the body is larger than the payload limit %zu", s->p.payload_limit);
    return r->route <= R_LAST_POST ? handle_post(s, c, r) : handle_get(s, c, r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
    (void)c;
    (void)why;
    struct serve *s = cls;
    struct req *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    free(r->body);
    free(r);
    pthread_mutex_lock(&s->drain_mu);
    atomic_fetch_sub(&s->in_flight, 1);
    pthread_cond_broadcast(&s->drain_cv);
    pthread_mutex_unlock(&s->drain_mu);
}

/* ---------------------------------------------------------------- start / stop */

// libmicrohttpd's own messages, prefixed; its note for every request we drop on purpose (the
// client hung up: the handler returns MHD_NO) is not news.
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (strstr(msg, "Application reported internal error")) return;
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n') msg[--n] = 0;
    fprintf(stderr, "sembed serve: libmicrohttpd: %s\n", msg);
}

static int why_fail(char *why, size_t n, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int why_fail(char *why, size_t n, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (why && n) vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return rc;
}

int serve_start(const struct serve_params *p, struct serve **out, char *why, size_t why_len) {
    *out = NULL;
    if (!p->model_path) return why_fail(why, why_len, SEMBED_EINVAL, "no model given");
    if (p->max_client_batch_size < 1 || p->max_concurrent_requests < 1 || p->payload_limit < 1)
        return why_fail(why, why_len, SEMBED_EINVAL, "limits must be at least 1");
    struct serve *s = calloc(1, sizeof *s);
    if (!s) return SEMBED_ENOMEM;
    s->p = *p;
    serve_metrics_init(&s->mx);
    pthread_mutex_init(&s->drain_mu, NULL);
    pthread_cond_init(&s->drain_cv, NULL);
    struct sembed_model_params mp = sembed_model_default_params();
    mp.compute = p->compute;
    mp.pack_eagerly = true; // the first request should not pay for packing the weights
    int rc = sembed_model_load(p->model_path, &mp, &s->m);
    if (rc) {
        why_fail(why, why_len, rc, "cannot load %s: %s", p->model_path, sembed_strerror(rc));
        goto fail;
    }
    s->tok = sembed_model_tokenizer(s->m);
    s->dim = sembed_model_dim(s->m);
    s->model_normalize = sembed_model_normalize(s->m);
    s->num_labels = sembed_model_num_labels(s->m);
    uint32_t mml = sembed_model_max_length(s->m);
    s->max_len = p->max_input_length ? p->max_input_length : mml;
    if (s->max_len < 2 || s->max_len > mml) {
        rc = why_fail(why, why_len, SEMBED_EINVAL, "--max-input-length %u: the model takes 2..%u tokens", s->max_len, mml);
        goto fail;
    }
    // 0: sembed's own pass size (as sembed_context_params.batch_tokens). Measured on the 2-core dev
    // VM (docs/serve.md): passes of 8192+ tokens ran 3-4x slower per token than 1024-4096.
    s->p.max_batch_tokens = p->max_batch_tokens ? p->max_batch_tokens : (s->max_len > 2048 ? s->max_len : 2048);
    if (s->p.max_batch_tokens < s->max_len) {
        rc = why_fail(why, why_len, SEMBED_EINVAL, "--max-batch-tokens %u is below the maximum input length %u",
                      s->p.max_batch_tokens, s->max_len);
        goto fail;
    }
    const char *name = NULL;
    if (p->model_id) snprintf(s->model_id, sizeof s->model_id, "%s", p->model_id);
    else if (sembed_file_get_str(sembed_model_file(s->m), "general.name", &name, NULL) == 0 && name && name[0])
        snprintf(s->model_id, sizeof s->model_id, "%s", name);
    else {
        const char *slash = strrchr(p->model_path, '/');
        snprintf(s->model_id, sizeof s->model_id, "%s", slash ? slash + 1 : p->model_path);
    }
    s->max_batch_requests = s->p.max_batch_tokens < 1024 ? s->p.max_batch_tokens : 1024;
    struct serve_batcher_params bp = {s->p.max_batch_tokens, s->max_batch_requests, s->max_len,
                                      p->max_concurrent_requests, p->n_threads};
    rc = serve_batcher_create(s->m, &bp, &s->mx, &s->batcher);
    if (rc) {
        why_fail(why, why_len, rc, "cannot create the embedding context: %s", sembed_strerror(rc));
        goto fail;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", p->port);
    int g = getaddrinfo(p->host, port, &hints, &ai);
    if (g || !ai) {
        rc = why_fail(why, why_len, SEMBED_EINVAL, "cannot resolve host '%s': %s", p->host, gai_strerror(g));
        goto fail;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->d = MHD_start_daemon(flags, p->port, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, // first, or MHD warns
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)(p->max_concurrent_requests + 64),
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)p->timeout_s,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1u << 20),
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                            MHD_OPTION_END);
    char host[INET6_ADDRSTRLEN] = "?";
    getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, NULL, 0, NI_NUMERICHOST);
    bool v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (!s->d) {
        rc = why_fail(why, why_len, SEMBED_EIO, "cannot listen on %s port %u (in use, or not an address of this machine?)",
                      p->host, p->port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : p->port;
    snprintf(s->address, sizeof s->address, v6 ? "http://[%s]:%u" : "http://%s:%u", host, s->port);
    *out = s;
    return 0;
fail:
    serve_batcher_free(s->batcher);
    sembed_model_free(s->m);
    serve_metrics_destroy(&s->mx);
    pthread_cond_destroy(&s->drain_cv);
    pthread_mutex_destroy(&s->drain_mu);
    free(s);
    return rc;
}

void serve_stop(struct serve *s) {
    if (!s) return;
    atomic_store(&s->draining, true);
    MHD_socket ls = MHD_quiesce_daemon(s->d); // no new connections from here on
    if (ls != MHD_INVALID_SOCKET) close(ls);
    // Requests already received are answered; keep-alive connections get "Connection: close".
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += s->p.drain_timeout_s;
    pthread_mutex_lock(&s->drain_mu);
    while (atomic_load(&s->in_flight) > 0)
        if (pthread_cond_timedwait(&s->drain_cv, &s->drain_mu, &ts) != 0) break;
    pthread_mutex_unlock(&s->drain_mu);
    MHD_stop_daemon(s->d);
    serve_batcher_free(s->batcher);
    sembed_model_free(s->m);
    serve_metrics_destroy(&s->mx);
    pthread_cond_destroy(&s->drain_cv);
    pthread_mutex_destroy(&s->drain_mu);
    free(s);
}
