// `sembed serve` end to end: the CLI binary started on a free loopback port, spoken to over HTTP by
// a small blocking socket client (test code; the server itself uses libmicrohttpd). Every route,
// every error status, bit-identical embeddings against the library and `sembed embed` (alone and
// under concurrency, with requests spanning passes), keep-alive, a client that hangs up, and the
// graceful drain on SIGTERM. Uses the shipped model models/sembed-mini (no Python needed).
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "sembed/sembed.h"
#include "testutil.h"

static const char *g_model; // a test's own model file; NULL: sembed-mini
static char *model_path(void) {
    return g_model ? strdup(g_model) : tu_path(tu_source_dir(), "models/sembed-mini/sembed-mini.semb");
}

static const char *const sentences[] = {
    "A man is playing a guitar.", "A woman is slicing an onion.", "The stock market fell sharply today.",
    "hello world", "", "Two dogs run across a snowy field while a third one watches them from the porch.",
    "Ünïcödé tëxt ünd 日本語 too",
    ("a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p "
     "q r s t u v w x y z a b c d e f g h")}; // 62 tokens: the model's maximum is 64
#define N_SENT (sizeof sentences / sizeof sentences[0])

/* ---------------------------------------------------------------- server process */

struct server {
    pid_t pid;
    int port;
};

static struct server start(const char *env, const char *extra) {
    char *model = model_path();
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        // A failed assertion ends the test without stop(): the server must not outlive it (it
        // would hold the test's stderr open and Criterion would wait for it).
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        if (env) { // "NAME=VALUE"
            char name[128];
            const char *eq = strchr(env, '=');
            snprintf(name, sizeof name, "%.*s", (int)(eq - env), env);
            setenv(name, eq + 1, 1);
        }
        char *cmd = NULL;
        if (asprintf(&cmd, "exec '%s' serve -m '%s' --port 0 --threads 1 %s", tu_cli(), model, extra ? extra : "") < 0)
            _exit(127);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    free(model);
    char line[512] = {0};
    size_t n = 0;
    struct pollfd pf = {.fd = pfd[0], .events = POLLIN};
    while (n < sizeof line - 1 && !strchr(line, '\n')) {
        if (poll(&pf, 1, 60000) != 1) break;
        ssize_t k = read(pfd[0], line + n, sizeof line - 1 - n);
        if (k <= 0) break;
        n += (size_t)k;
    }
    close(pfd[0]);
    const char *at = strstr(line, "listening on http://127.0.0.1:");
    if (!at) kill(pid, SIGKILL);
    cr_assert(at, "expected 'listening on http://127.0.0.1:PORT' on the server's stdout, got '%s'", line);
    return (struct server){pid, atoi(at + strlen("listening on http://127.0.0.1:"))};
}

// SIGTERM, then the exit status (expected 0).
static int stop(struct server *s) {
    kill(s->pid, SIGTERM);
    int st = 0;
    cr_assert_eq(waitpid(s->pid, &st, 0), s->pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---------------------------------------------------------------- a tiny HTTP client */

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {60, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        cr_assert(k > 0, "send failed: %s", strerror(errno));
        p += k;
        n -= (size_t)k;
    }
}

struct resp {
    int status;
    char *head, *body;
    size_t len;
};

// Read one response (Content-Length framed, as libmicrohttpd sends buffers) from fd.
static struct resp read_resp(int fd) {
    struct resp r = {0};
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    char *eoh = NULL;
    size_t want = SIZE_MAX;
    for (;;) {
        if (eoh && n >= want) break;
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
        ssize_t k = recv(fd, buf + n, cap - n, 0);
        if (k <= 0) break;
        n += (size_t)k;
        buf[n] = 0;
        if (!eoh && (eoh = strstr(buf, "\r\n\r\n"))) {
            const char *cl = strcasestr(buf, "\r\nContent-Length:");
            want = (size_t)(eoh - buf) + 4 + (cl && cl < eoh ? strtoull(cl + 17, NULL, 10) : 0);
        }
    }
    buf[n] = 0;
    cr_assert(eoh, "no complete HTTP response head (got %zu bytes: %.200s)", n, buf);
    cr_assert(sscanf(buf, "HTTP/1.1 %d", &r.status) == 1, "bad status line: %.80s", buf);
    *eoh = 0;
    r.head = strdup(buf);
    r.len = n - (size_t)(eoh + 4 - buf);
    r.body = malloc(r.len + 1);
    memcpy(r.body, eoh + 4, r.len);
    r.body[r.len] = 0;
    free(buf);
    return r;
}

static void resp_free(struct resp *r) {
    free(r->head);
    free(r->body);
}

static char *request_text(const char *method, const char *path, const char *headers, const char *body, size_t len,
                          bool keep_alive) {
    char *req = NULL;
    cr_assert(asprintf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\n%s%sContent-Length: %zu\r\n\r\n", method, path,
                       headers ? headers : "", keep_alive ? "" : "Connection: close\r\n", body ? len : 0) > 0);
    return req;
}

static struct resp http(int port, const char *method, const char *path, const char *headers, const char *body) {
    int fd = connect_to(port);
    cr_assert(fd >= 0, "cannot connect to port %d", port);
    size_t len = body ? strlen(body) : 0;
    char *req = request_text(method, path, headers, body, len, false);
    send_all(fd, req, strlen(req));
    if (body) send_all(fd, body, len);
    free(req);
    struct resp r = read_resp(fd);
    close(fd);
    return r;
}

static json_object *parse_json(const struct resp *r) {
    json_object *o = json_tokener_parse(r->body);
    cr_assert(o, "response body is not JSON: %.200s", r->body);
    return o;
}

/* ---------------------------------------------------------------- reference embeddings */

static float *library_embed(const char *const *texts, size_t n, enum sembed_normalize norm, uint32_t *dim) {
    char *mp = model_path();
    struct sembed_model *m = NULL;
    cr_assert_eq(sembed_model_load(mp, NULL, &m), 0);
    free(mp);
    struct sembed_context_params cp = sembed_context_default_params();
    cp.normalize = norm;
    cp.n_threads = 1;
    struct sembed_context *ctx = NULL;
    cr_assert_eq(sembed_context_create(m, &cp, &ctx), 0);
    *dim = sembed_model_dim(m);
    float *e = malloc(n * *dim * sizeof(float));
    cr_assert_eq(sembed_embed_texts(ctx, texts, n, e), 0);
    sembed_context_free(ctx);
    sembed_model_free(m);
    return e;
}

static char *json_texts(const char *const *texts, size_t n) {
    json_object *a = json_object_new_array();
    for (size_t i = 0; i < n; i++) json_object_array_add(a, json_object_new_string(texts[i]));
    char *s = strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN));
    json_object_put(a);
    return s;
}

static size_t b64_decode(const char *s, unsigned char *out) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        const char *p = strchr(a, *s);
        cr_assert(p && *s, "bad base64 character '%c'", *s);
        acc = (acc << 6) | (uint32_t)(p - a);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return n;
}

// Compare rows exactly; print the first differing value.
static void expect_rows_equal(const float *want, const float *got, size_t n, uint32_t dim, const char *what) {
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < dim; j++) {
            uint32_t a, b;
            memcpy(&a, &want[i * dim + j], 4);
            memcpy(&b, &got[i * dim + j], 4);
            cr_assert_eq(a, b, "%s: row %zu value %u: expected %.9g (0x%08x), got %.9g (0x%08x)", what, i, j,
                         (double)want[i * dim + j], a, (double)got[i * dim + j], b);
        }
}

// POST /v1/embeddings with base64, decoded into out[n * dim].
static void openai_embed(int port, const char *const *texts, size_t n, uint32_t dim, float *out, const char *what) {
    char *in = json_texts(texts, n), *body = NULL;
    cr_assert(asprintf(&body, "{\"input\":%s,\"model\":\"m\",\"encoding_format\":\"base64\"}", in) > 0);
    struct resp r = http(port, "POST", "/v1/embeddings", "Content-Type: application/json\r\n", body);
    cr_assert_eq(r.status, 200, "%s: status %d: %s", what, r.status, r.body);
    json_object *o = parse_json(&r), *data, *e, *emb;
    cr_assert(json_object_object_get_ex(o, "data", &data));
    cr_assert_eq(json_object_array_length(data), n);
    unsigned char *bytes = malloc((size_t)dim * 4 + 8);
    for (size_t i = 0; i < n; i++) {
        e = json_object_array_get_idx(data, i);
        cr_assert(json_object_object_get_ex(e, "embedding", &emb));
        cr_assert_eq(b64_decode(json_object_get_string(emb), bytes), (size_t)dim * 4, "%s: base64 length", what);
        for (uint32_t j = 0; j < dim; j++) {
            uint32_t u = (uint32_t)bytes[4 * j] | (uint32_t)bytes[4 * j + 1] << 8 | (uint32_t)bytes[4 * j + 2] << 16 |
                         (uint32_t)bytes[4 * j + 3] << 24; // little-endian on the wire
            memcpy(&out[i * dim + j], &u, 4);
        }
    }
    free(bytes);
    json_object_put(o);
    resp_free(&r);
    free(in);
    free(body);
}

static long metric(int port, const char *name) {
    struct resp r = http(port, "GET", "/metrics", NULL, NULL);
    cr_assert_eq(r.status, 200);
    long v = -1;
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(r.body, key);
    if (p) v = atol(p + strlen(key));
    resp_free(&r);
    return v;
}

static void wait_metric(int port, const char *name, long want) {
    for (int i = 0; i < 400; i++) {
        if (metric(port, name) == want) return;
        usleep(25000);
    }
    cr_assert_fail("metric %s never reached %ld (now %ld)", name, want, metric(port, name));
}

TestSuite(serve, .timeout = 300);

/* ---------------------------------------------------------------- tests */

Test(serve, get_routes) {
    struct server s = start(NULL, "--model-id my-model");
    struct resp r = http(s.port, "GET", "/health", NULL, NULL);
    cr_expect_eq(r.status, 200, "/health: %d", r.status);
    resp_free(&r);
    r = http(s.port, "GET", "/info", NULL, NULL);
    cr_assert_eq(r.status, 200);
    json_object *o = parse_json(&r), *v;
    cr_assert(json_object_object_get_ex(o, "model_id", &v));
    cr_expect_str_eq(json_object_get_string(v), "my-model");
    cr_assert(json_object_object_get_ex(o, "dim", &v));
    cr_expect_eq(json_object_get_int(v), 192, "dim: expected 192, got %d", json_object_get_int(v));
    cr_assert(json_object_object_get_ex(o, "max_input_length", &v));
    cr_expect_eq(json_object_get_int(v), 64);
    cr_expect(json_object_object_get_ex(o, "kernels", &v) && json_object_get_string_len(v) > 0);
    cr_expect(json_object_object_get_ex(o, "max_client_batch_size", &v) && json_object_get_int(v) == 32);
    json_object_put(o);
    resp_free(&r);
    r = http(s.port, "GET", "/v1/models", NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.body, "\"id\":\"my-model\""), "/v1/models: %s", r.body);
    resp_free(&r);
    r = http(s.port, "GET", "/metrics", NULL, NULL);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.head, "text/plain"), "metrics content type: %s", r.head);
    const char *names[] = {"sembed_requests_total{route=\"/health\",code=\"200\"} 1", "sembed_queue_requests 0",
                           "# TYPE sembed_batch_tokens histogram", "# TYPE sembed_batch_inputs histogram",
                           "# TYPE sembed_queue_seconds histogram", "# TYPE sembed_inference_seconds histogram"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_expect(strstr(r.body, names[i]), "/metrics lacks '%s':\n%s", names[i], r.body);
    resp_free(&r);
    cr_expect_eq(stop(&s), 0);
}

Test(serve, embeddings_bit_identical_to_library_and_cli) {
    uint32_t dim;
    float *want = library_embed(sentences, N_SENT, SEMBED_NORMALIZE_DEFAULT, &dim);
    struct server s = start(NULL, NULL);
    float *got = malloc(N_SENT * dim * sizeof(float));
    openai_embed(s.port, sentences, N_SENT, dim, got, "/v1/embeddings base64");
    expect_rows_equal(want, got, N_SENT, dim, "/v1/embeddings base64 vs library");

    // float JSON: 9 significant digits round-trip float32 exactly
    char *in = json_texts(sentences, N_SENT), *body = NULL;
    cr_assert(asprintf(&body, "{\"inputs\":%s}", in) > 0);
    struct resp r = http(s.port, "POST", "/embed", NULL, body);
    cr_assert_eq(r.status, 200, "/embed: %d %s", r.status, r.body);
    json_object *o = parse_json(&r);
    cr_assert_eq(json_object_array_length(o), N_SENT);
    for (size_t i = 0; i < N_SENT; i++) {
        json_object *row = json_object_array_get_idx(o, i);
        cr_assert_eq(json_object_array_length(row), dim);
        for (uint32_t j = 0; j < dim; j++) got[i * dim + j] = (float)json_object_get_double(json_object_array_get_idx(row, j));
    }
    expect_rows_equal(want, got, N_SENT, dim, "/embed floats vs library");
    json_object_put(o);
    resp_free(&r);
    free(body);

    // OpenAI float format and the CLI's raw float32 output
    cr_assert(asprintf(&body, "{\"input\":%s,\"encoding_format\":\"float\"}", in) > 0);
    r = http(s.port, "POST", "/v1/embeddings", NULL, body);
    cr_assert_eq(r.status, 200);
    o = parse_json(&r);
    json_object *data, *usage, *v;
    cr_assert(json_object_object_get_ex(o, "data", &data));
    cr_assert(json_object_object_get_ex(o, "object", &v) && !strcmp(json_object_get_string(v), "list"));
    cr_assert(json_object_object_get_ex(o, "usage", &usage) && json_object_object_get_ex(usage, "prompt_tokens", &v));
    cr_expect_gt(json_object_get_int(v), (int)N_SENT * 2);
    for (size_t i = 0; i < N_SENT; i++) {
        json_object *e = json_object_array_get_idx(data, i), *emb, *idx;
        cr_assert(json_object_object_get_ex(e, "index", &idx) && json_object_get_int(idx) == (int)i);
        cr_assert(json_object_object_get_ex(e, "embedding", &emb));
        for (uint32_t j = 0; j < dim; j++) got[i * dim + j] = (float)json_object_get_double(json_object_array_get_idx(emb, j));
    }
    expect_rows_equal(want, got, N_SENT, dim, "/v1/embeddings float vs library");
    json_object_put(o);
    resp_free(&r);
    free(body);

    char *dir = tu_mkdtemp(), *txt = tu_path(dir, "in.txt"), *bin = tu_path(dir, "out.f32"), *mp = model_path();
    FILE *f = fopen(txt, "w");
    for (size_t i = 0; i < N_SENT; i++) fprintf(f, "%s\n", sentences[i]);
    fclose(f);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' embed -m '%s' -f f32 -o '%s' < '%s'", tu_cli(), mp, bin, txt);
    cr_assert_eq(tu_run(cmd, NULL), 0, "%s", cmd);
    size_t blen = 0;
    float *cli = tu_read_file(bin, &blen);
    cr_assert_eq(blen, N_SENT * dim * 4);
    openai_embed(s.port, sentences, N_SENT, dim, got, "/v1/embeddings base64");
    expect_rows_equal(cli, got, N_SENT, dim, "server vs `sembed embed -f f32`");
    free(cli);
    tu_rmtree(dir);
    free(dir), free(txt), free(bin), free(mp), free(in), free(got), free(want);
    cr_expect_eq(stop(&s), 0);
}

Test(serve, options_dimensions_normalize_ids_tokenize_similarity) {
    uint32_t dim;
    float *raw = library_embed(sentences, 2, SEMBED_NORMALIZE_DEFAULT, &dim);
    float *unit = library_embed(sentences, 2, SEMBED_NORMALIZE_ON, &dim);
    struct server s = start(NULL, NULL);
    // /embed normalize: true -> the library's normalized vectors exactly
    char *in = json_texts(sentences, 2), *body = NULL;
    cr_assert(asprintf(&body, "{\"inputs\":%s,\"normalize\":true}", in) > 0);
    struct resp r = http(s.port, "POST", "/embed", NULL, body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_object *o = parse_json(&r);
    float *got = malloc(2 * dim * sizeof(float));
    for (size_t i = 0; i < 2; i++)
        for (uint32_t j = 0; j < dim; j++)
            got[i * dim + j] = (float)json_object_get_double(json_object_array_get_idx(json_object_array_get_idx(o, i), j));
    expect_rows_equal(unit, got, 2, dim, "/embed normalize:true vs library NORMALIZE_ON");
    json_object_put(o);
    resp_free(&r);
    free(body);
    // dimensions: the model does not normalize, so the first 16 values as they are
    cr_assert(asprintf(&body, "{\"input\":%s,\"dimensions\":16}", in) > 0);
    r = http(s.port, "POST", "/v1/embeddings", NULL, body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    o = parse_json(&r);
    json_object *data, *emb;
    cr_assert(json_object_object_get_ex(o, "data", &data));
    for (size_t i = 0; i < 2; i++) {
        cr_assert(json_object_object_get_ex(json_object_array_get_idx(data, i), "embedding", &emb));
        cr_assert_eq(json_object_array_length(emb), 16);
        for (uint32_t j = 0; j < 16; j++) got[i * 16 + j] = (float)json_object_get_double(json_object_array_get_idx(emb, j));
        expect_rows_equal(raw + i * dim, got + i * 16, 1, 16, "dimensions=16");
    }
    json_object_put(o);
    resp_free(&r);
    free(body);
    // token ids in: the ids /tokenize gives for "hello world" embed to the same vector as the text
    r = http(s.port, "POST", "/tokenize", NULL, "{\"inputs\":\"hello world\"}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    o = parse_json(&r);
    json_object *toks = json_object_array_get_idx(o, 0), *id;
    size_t nt = json_object_array_length(toks);
    cr_assert_eq(nt, 4, "hello world: expected [CLS] hello world [SEP], got %s", r.body);
    char ids[256] = "[";
    for (size_t i = 0; i < nt; i++) {
        cr_assert(json_object_object_get_ex(json_object_array_get_idx(toks, i), "id", &id));
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d", i ? "," : "", json_object_get_int(id));
    }
    strcat(ids, "]");
    json_object_put(o);
    resp_free(&r);
    const char *hw[] = {"hello world"};
    float *want = library_embed(hw, 1, SEMBED_NORMALIZE_DEFAULT, &dim);
    cr_assert(asprintf(&body, "{\"input\":[%s],\"encoding_format\":\"float\"}", ids) > 0);
    r = http(s.port, "POST", "/v1/embeddings", NULL, body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    o = parse_json(&r);
    cr_assert(json_object_object_get_ex(o, "data", &data));
    cr_assert(json_object_object_get_ex(json_object_array_get_idx(data, 0), "embedding", &emb));
    for (uint32_t j = 0; j < dim; j++) got[j] = (float)json_object_get_double(json_object_array_get_idx(emb, j));
    expect_rows_equal(want, got, 1, dim, "token ids vs text");
    json_object_put(o);
    resp_free(&r);
    free(body);
    // similarity: cosines of the library's vectors
    cr_assert(asprintf(&body, "{\"pairs\":[[\"%s\",\"%s\"]]}", sentences[0], sentences[1]) > 0);
    r = http(s.port, "POST", "/similarity", NULL, body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    double ab = 0, aa = 0, bb = 0;
    for (uint32_t j = 0; j < dim; j++)
        ab += (double)raw[j] * raw[dim + j], aa += (double)raw[j] * raw[j], bb += (double)raw[dim + j] * raw[dim + j];
    double cs = 0;
    cr_assert_eq(sscanf(r.body, "[%lf]", &cs), 1, "%s", r.body);
    cr_expect(fabs(cs - ab / sqrt(aa * bb)) < 1e-6, "similarity: expected %.9f, got %.9f", ab / sqrt(aa * bb), cs);
    resp_free(&r);
    free(body);
    r = http(s.port, "POST", "/similarity", NULL,
             "{\"inputs\":{\"source_sentence\":\"a\",\"sentences\":[\"a\",\"b\",\"c\"]}}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect(!strncmp(r.body, "[1,", 3) || !strncmp(r.body, "[0.99999", 8) || !strncmp(r.body, "[1.0000", 7),
              "a vs a should be 1: %s", r.body);
    resp_free(&r);
    free(in), free(got), free(raw), free(unit), free(want);
    cr_expect_eq(stop(&s), 0);
}

struct client_arg {
    int port, id;
    uint32_t dim;
    const float *want; // library rows of sentences
    int failures;
};

static void *client(void *p) {
    struct client_arg *a = p;
    for (int k = 0; k < 6; k++) {
        // a different window of the sentences each time, so passes mix different requests
        size_t first = (size_t)(a->id + k) % N_SENT, n = 1 + (size_t)(a->id * 3 + k) % N_SENT;
        const char *texts[64];
        for (size_t i = 0; i < n; i++) texts[i] = sentences[(first + i) % N_SENT];
        float *got = malloc(n * a->dim * sizeof(float));
        openai_embed(a->port, texts, n, a->dim, got, "concurrent");
        for (size_t i = 0; i < n; i++)
            if (memcmp(got + i * a->dim, a->want + ((first + i) % N_SENT) * a->dim, a->dim * sizeof(float))) a->failures++;
        free(got);
    }
    return NULL;
}

// Concurrent clients, and a server whose passes hold at most 64 tokens (so a request spans several
// passes and passes mix requests): every vector still equals the library's, bit for bit.
Test(serve, batch_invariance_under_concurrency) {
    uint32_t dim;
    float *want = library_embed(sentences, N_SENT, SEMBED_NORMALIZE_DEFAULT, &dim);
    const char *variants[] = {"", "--max-batch-tokens 64"};
    for (int v = 0; v < 2; v++) {
        struct server s = start(NULL, variants[v]);
        pthread_t th[8];
        struct client_arg args[8];
        for (int i = 0; i < 8; i++) {
            args[i] = (struct client_arg){s.port, i, dim, want, 0};
            pthread_create(&th[i], NULL, client, &args[i]);
        }
        int bad = 0;
        for (int i = 0; i < 8; i++) pthread_join(th[i], NULL), bad += args[i].failures;
        cr_expect_eq(bad, 0, "server %s: %d vectors differ from the library's", variants[v], bad);
        long passes = metric(s.port, "sembed_passes_total"), inputs = metric(s.port, "sembed_inputs_total");
        cr_log_info("server '%s': %ld inputs in %ld passes", variants[v], inputs, passes);
        cr_expect_eq(stop(&s), 0);
    }
    free(want);
}

Test(serve, errors_have_status_and_json_body) {
    struct server s = start(NULL, "--max-client-batch-size 4 --payload-limit 4096");
    const struct {
        const char *method, *path, *body;
        int status;
        const char *needle;
    } cases[] = {
        {"POST", "/embed", "{\"inputs\": [\"a\",", 422, "\"error_type\":\"Validation\""},
        {"POST", "/embed", "{\"inputs\": \"a\"} trailing", 422, "malformed JSON"},
        {"POST", "/embed", "[1, 2]", 422, "JSON object"},
        {"POST", "/embed", "{\"inputs\": 42}", 422, "`inputs` must be"},
        {"POST", "/embed", "{\"inputs\": [\"a\", 1.5]}", 422, "`inputs`[1]"},
        {"POST", "/embed", "{\"inputs\": \"a\", \"normalize\": \"yes\"}", 422, "`normalize`"},
        {"POST", "/embed", "{\"inputs\": []}", 422, "cannot be empty"},
        {"POST", "/embed", "{}", 422, "`inputs` is missing"},
        {"POST", "/embed", "{\"inputs\": [\"a\",\"b\",\"c\",\"d\",\"e\"]}", 413, "batch size 5"},
        {"POST", "/embed", "{\"inputs\": \"\xff\xfe bad utf-8\"}", 422, "malformed JSON"},
        {"POST", "/v1/embeddings", "{\"input\": [[1, 99999999]]}", 422, "outside the vocabulary"},
        {"POST", "/v1/embeddings", "{\"input\": \"a\", \"encoding_format\": \"hex\"}", 422, "\"param\":\"encoding_format\""},
        {"POST", "/v1/embeddings", "{\"input\": \"a\", \"dimensions\": 9999}", 422, "\"type\":\"invalid_request_error\""},
        {"POST", "/v1/embeddings", "{\"input\": {}}", 422, "{\"error\":{\"message\":"},
        {"POST", "/tokenize", "{\"inputs\": [[101, 102]]}", 422, "takes strings"},
        {"POST", "/similarity", "{\"inputs\": \"a\"}", 422, "source_sentence"},
        {"GET", "/nope", NULL, 404, "no route"},
        {"GET", "/embed", NULL, 405, "use POST"},
        {"POST", "/health", "{}", 405, "use GET"},
        {"DELETE", "/v1/embeddings", NULL, 405, "\"error\":{"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resp r = http(s.port, cases[i].method, cases[i].path, NULL, cases[i].body);
        cr_expect_eq(r.status, cases[i].status, "case %zu %s %s %s: expected %d, got %d: %s", i, cases[i].method,
                     cases[i].path, cases[i].body ? cases[i].body : "", cases[i].status, r.status, r.body);
        cr_expect(strstr(r.body, cases[i].needle), "case %zu: body lacks '%s': %s", i, cases[i].needle, r.body);
        if (r.status != 200) {
            json_object *o = json_tokener_parse(r.body);
            cr_expect(o, "case %zu: error body is not JSON: %s", i, r.body);
            json_object_put(o);
        }
        resp_free(&r);
    }
    // an input longer than the model's 64 tokens: 413 unless truncate is true
    char *long_text = malloc(4000);
    long_text[0] = 0;
    for (int i = 0; i < 200; i++) strcat(long_text, "word ");
    char *body = NULL;
    cr_assert(asprintf(&body, "{\"inputs\":\"%s\"}", long_text) > 0);
    struct resp r = http(s.port, "POST", "/embed", NULL, body);
    cr_expect_eq(r.status, 413, "over-long input: expected 413, got %d: %s", r.status, r.body);
    cr_expect(strstr(r.body, "202 tokens") && strstr(r.body, "maximum input length 64"), "%s", r.body);
    resp_free(&r);
    free(body);
    cr_assert(asprintf(&body, "{\"inputs\":\"%s\",\"truncate\":true}", long_text) > 0);
    r = http(s.port, "POST", "/embed", NULL, body);
    cr_expect_eq(r.status, 200, "truncate:true: expected 200, got %d: %s", r.status, r.body);
    resp_free(&r);
    free(body);
    cr_assert(asprintf(&body, "{\"inputs\":\"%s\",\"truncate\":true,\"truncation_direction\":\"Left\"}", long_text) > 0);
    r = http(s.port, "POST", "/embed", NULL, body);
    cr_expect_eq(r.status, 200, "truncation left: expected 200, got %d: %s", r.status, r.body);
    resp_free(&r);
    free(body);
    free(long_text);

    // a body over the payload limit is refused from its Content-Length, before it is sent
    int fd = connect_to(s.port);
    const char *head = "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
    send_all(fd, head, strlen(head));
    r = read_resp(fd); // no body sent: the answer must come anyway
    cr_expect_eq(r.status, 413, "oversized Content-Length: expected 413, got %d", r.status);
    cr_expect(strstr(r.body, "payload limit"), "%s", r.body);
    resp_free(&r);
    close(fd);
    // ... and a chunked body that grows past it is dropped, not buffered
    fd = connect_to(s.port);
    head = "POST /embed HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    send_all(fd, head, strlen(head));
    char chunk[1100];
    int hl = snprintf(chunk, sizeof chunk, "400\r\n"); // 0x400 = 1024 bytes
    memset(chunk + hl, ' ', 1024);
    memcpy(chunk + hl + 1024, "\r\n", 2);
    for (int i = 0; i < 6; i++) send_all(fd, chunk, (size_t)hl + 1026);
    send_all(fd, "0\r\n\r\n", 5);
    r = read_resp(fd);
    cr_expect_eq(r.status, 413, "6 KiB chunked body over a 4 KiB limit: expected 413, got %d", r.status);
    resp_free(&r);
    close(fd);
    cr_expect_eq(stop(&s), 0);

    // API key
    s = start(NULL, "--api-key sekrit");
    r = http(s.port, "POST", "/embed", NULL, "{\"inputs\":\"a\"}");
    cr_expect_eq(r.status, 401, "no key: expected 401, got %d", r.status);
    cr_expect(strstr(r.body, "\"error_type\":\"Unauthorized\""), "%s", r.body);
    resp_free(&r);
    r = http(s.port, "POST", "/v1/embeddings", "Authorization: Bearer wrong\r\n", "{\"input\":\"a\"}");
    cr_expect_eq(r.status, 401, "wrong key: expected 401, got %d", r.status);
    cr_expect(strstr(r.body, "\"code\":\"invalid_api_key\""), "%s", r.body);
    resp_free(&r);
    r = http(s.port, "POST", "/v1/embeddings", "Authorization: Bearer sekrit\r\n", "{\"input\":\"a\"}");
    cr_expect_eq(r.status, 200, "right key: expected 200, got %d: %s", r.status, r.body);
    resp_free(&r);
    r = http(s.port, "GET", "/health", NULL, NULL);
    cr_expect_eq(r.status, 200, "/health needs no key: got %d", r.status);
    resp_free(&r);
    cr_expect_eq(stop(&s), 0);
}

struct bg {
    int port;
    const char *body;
    struct resp r;
};
static void *bg_post(void *p) {
    struct bg *b = p;
    b->r = http(b->port, "POST", "/embed", NULL, b->body);
    return NULL;
}

// The queue is bounded: with one request admitted (held by a 1.5 s pause before each pass, a
// test knob), the next one is 429, not queued.
Test(serve, queue_full_is_429) {
    struct server s = start("SEMBED_SERVE_PASS_DELAY_MS=1500", "--max-concurrent-requests 1");
    struct bg b = {s.port, "{\"inputs\":\"held in the queue\"}", {0}};
    pthread_t t;
    pthread_create(&t, NULL, bg_post, &b);
    wait_metric(s.port, "sembed_queue_requests", 1);
    struct resp r = http(s.port, "POST", "/embed", NULL, "{\"inputs\":\"one too many\"}");
    cr_expect_eq(r.status, 429, "expected 429, got %d: %s", r.status, r.body);
    cr_expect(strstr(r.body, "\"error_type\":\"Overloaded\""), "%s", r.body);
    resp_free(&r);
    pthread_join(t, NULL);
    cr_expect_eq(b.r.status, 200, "the admitted request: expected 200, got %d", b.r.status);
    resp_free(&b.r);
    cr_expect_eq(stop(&s), 0);
}

Test(serve, keep_alive_serves_several_requests_on_one_connection) {
    struct server s = start(NULL, NULL);
    int fd = connect_to(s.port);
    for (int i = 0; i < 3; i++) {
        const char *body = "{\"inputs\":\"keep me alive\"}";
        char *req = request_text("POST", "/embed", NULL, body, strlen(body), true);
        send_all(fd, req, strlen(req));
        send_all(fd, body, strlen(body));
        free(req);
        struct resp r = read_resp(fd);
        cr_expect_eq(r.status, 200, "request %d on one connection: %d", i, r.status);
        cr_expect(!strcasestr(r.head, "Connection: close"), "request %d: server closes the connection", i);
        resp_free(&r);
    }
    close(fd);
    cr_expect_eq(stop(&s), 0);
}

// A client that hangs up while its request waits: the server drops it, counts it, and goes on.
Test(serve, client_hang_up_is_dropped) {
    struct server s = start("SEMBED_SERVE_PASS_DELAY_MS=800", NULL);
    struct bg first = {s.port, "{\"inputs\":\"occupies the batcher\"}", {0}};
    pthread_t t;
    pthread_create(&t, NULL, bg_post, &first);
    wait_metric(s.port, "sembed_queue_requests", 1);
    int fd = connect_to(s.port);
    const char *body = "{\"inputs\":[\"nobody will read this\",\"nor this\"]}";
    char *req = request_text("POST", "/embed", NULL, body, strlen(body), false);
    send_all(fd, req, strlen(req));
    send_all(fd, body, strlen(body));
    free(req);
    wait_metric(s.port, "sembed_queue_requests", 2);
    close(fd);
    wait_metric(s.port, "sembed_cancelled_total", 1);
    pthread_join(t, NULL);
    cr_expect_eq(first.r.status, 200);
    resp_free(&first.r);
    struct resp r = http(s.port, "POST", "/embed", NULL, "{\"inputs\":\"still serving\"}");
    cr_expect_eq(r.status, 200, "after a hang-up: %d", r.status);
    resp_free(&r);
    cr_expect_eq(stop(&s), 0);
}

// SIGTERM with a request in the batcher and another with its body half sent: both are answered,
// new connections are refused meanwhile, and the server exits 0.
Test(serve, graceful_drain_answers_requests_in_flight) {
    uint32_t dim;
    const char *one[] = {"in flight at SIGTERM"};
    float *want = library_embed(one, 1, SEMBED_NORMALIZE_DEFAULT, &dim);
    struct server s = start("SEMBED_SERVE_PASS_DELAY_MS=1500", NULL);
    struct bg b = {s.port, "{\"inputs\":\"in flight at SIGTERM\"}", {0}};
    pthread_t t;
    pthread_create(&t, NULL, bg_post, &b);
    wait_metric(s.port, "sembed_queue_requests", 1);
    int half = connect_to(s.port);
    const char *body = "{\"inputs\":\"in flight at SIGTERM\"}";
    char *req = request_text("POST", "/embed", NULL, body, strlen(body), true);
    send_all(half, req, strlen(req));
    send_all(half, body, 10);
    free(req);
    usleep(200000); // let the server read the head (not an assertion: ordering only)
    kill(s.pid, SIGTERM);
    bool refused = false;
    for (int i = 0; i < 100 && !refused; i++) {
        int fd = connect_to(s.port);
        if (fd < 0) refused = true;
        else close(fd), usleep(10000);
    }
    cr_expect(refused, "new connections are still accepted after SIGTERM");
    send_all(half, body + 10, strlen(body) - 10);
    struct resp r = read_resp(half);
    cr_expect_eq(r.status, 200, "half-sent request at SIGTERM: expected 200, got %d", r.status);
    cr_expect(strcasestr(r.head, "Connection: close"), "draining answers should close the connection: %s", r.head);
    resp_free(&r);
    close(half);
    pthread_join(t, NULL);
    cr_expect_eq(b.r.status, 200, "request in the batcher at SIGTERM: expected 200, got %d", b.r.status);
    json_object *o = parse_json(&b.r);
    json_object *row = json_object_array_get_idx(o, 0);
    float *got = malloc(dim * sizeof(float));
    for (uint32_t j = 0; j < dim; j++) got[j] = (float)json_object_get_double(json_object_array_get_idx(row, j));
    expect_rows_equal(want, got, 1, dim, "drained answer");
    json_object_put(o);
    resp_free(&b.r);
    int st = 0;
    cr_assert_eq(waitpid(s.pid, &st, 0), s.pid);
    cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status after SIGTERM: expected 0, got 0x%x", st);
    free(got);
    free(want);
}

Test(serve, bad_flags_exit_2) {
    char cmd[2048], *mp = model_path();
    snprintf(cmd, sizeof cmd, "'%s' serve -m '%s' --max-input-length 9999 --port 0 2>/dev/null", tu_cli(), mp);
    cr_expect_eq(tu_run(cmd, NULL), 2, "--max-input-length above the model's: expected exit 2");
    snprintf(cmd, sizeof cmd, "'%s' serve --port 0 2>/dev/null", tu_cli());
    cr_expect_eq(tu_run(cmd, NULL), 2, "no model: expected exit 2");
    snprintf(cmd, sizeof cmd, "'%s' serve -m /nonexistent.semb --port 0 2>/dev/null", tu_cli());
    cr_expect_eq(tu_run(cmd, NULL), 1, "missing model file: expected exit 1");
    free(mp);
}

// A client that stops half-way through its headers is dropped after --timeout seconds, and does
// not hold up anyone else meanwhile.
Test(serve, stalled_client_times_out) {
    struct server s = start(NULL, "--timeout 1");
    int fd = connect_to(s.port);
    const char *partial = "POST /embed HTTP/1.1\r\nHost: x\r\nContent-Le";
    send_all(fd, partial, strlen(partial));
    struct resp r = http(s.port, "POST", "/embed", NULL, "{\"inputs\":\"not held up\"}");
    cr_expect_eq(r.status, 200, "a request beside a stalled client: %d", r.status);
    resp_free(&r);
    // the server closes the stalled connection: recv sees EOF (or a reset) well before 20 s
    struct timeval tv = {20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    ssize_t k = recv(fd, buf, sizeof buf, 0);
    cr_expect(k <= 0 && !(k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)),
              "the stalled connection is still open after 20 s (recv returned %zd)", k);
    close(fd);
    cr_expect_eq(stop(&s), 0);
}

// OpenAI `dimensions` on a model that normalizes (bert-tiny's sentence-transformers folder ends
// in a Normalize module): the first d values of the library's unit vector, re-normalized, as
// Matryoshka truncation asks; and /tokenize spans on the same request path.
Test(serve, dimensions_renormalize_on_normalizing_model) {
    char *dir = tu_mkdtemp(), *out = tu_path(dir, "norm.semb"), *src = tu_path(tu_source_dir(), "tests/fixtures/bert-tiny");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' convert '%s' -o '%s' 2>&1", tu_cli(), src, out);
    cr_assert_eq(tu_run(cmd, NULL), 0, "%s", cmd);
    g_model = out;
    uint32_t dim;
    float *full = library_embed(sentences, 3, SEMBED_NORMALIZE_DEFAULT, &dim);
    for (size_t i = 0; i < 3; i++) {
        double ss = 0;
        for (uint32_t j = 0; j < dim; j++) ss += (double)full[i * dim + j] * full[i * dim + j];
        cr_assert_float_eq(ss, 1.0, 1e-5, "the converted bert-tiny must normalize (|v|^2 = %g)", ss);
    }
    struct server s = start(NULL, NULL);
    char *in = json_texts(sentences, 3), *body = NULL;
    const uint32_t d = 16;
    cr_assert(asprintf(&body, "{\"input\":%s,\"dimensions\":%u,\"encoding_format\":\"float\"}", in, d) > 0);
    struct resp r = http(s.port, "POST", "/v1/embeddings", NULL, body);
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_object *o = parse_json(&r), *data, *emb;
    cr_assert(json_object_object_get_ex(o, "data", &data));
    for (size_t i = 0; i < 3; i++) {
        cr_assert(json_object_object_get_ex(json_object_array_get_idx(data, i), "embedding", &emb));
        cr_assert_eq(json_object_array_length(emb), d);
        double ss = 0, got_ss = 0;
        for (uint32_t j = 0; j < d; j++) ss += (double)full[i * dim + j] * full[i * dim + j];
        cr_assert_lt(ss, 0.999, "the first %u values alone are not unit length (%g): the test would prove nothing", d, ss);
        for (uint32_t j = 0; j < d; j++) {
            float want = (float)(full[i * dim + j] / sqrt(ss));
            float got = (float)json_object_get_double(json_object_array_get_idx(emb, j));
            got_ss += (double)got * got;
            cr_expect_eq(got, want, "input %zu value %u: got %.9g, expected %.9g (first %u values re-normalized)", i, j,
                         got, want, d);
        }
        cr_expect_float_eq(got_ss, 1.0, 1e-6, "input %zu: |v|^2 = %.9g after dimensions=%u", i, got_ss, d);
    }
    json_object_put(o);
    resp_free(&r);
    free(body);
    cr_expect_eq(stop(&s), 0);
    g_model = NULL;
    tu_rmtree(dir);
    free(in), free(full), free(dir), free(out), free(src);
}

// TEI /tokenize: tokens from the text carry the text they cover and their span in characters;
// special tokens have their vocabulary string and null spans; add_special_tokens: false drops them.
Test(serve, tokenize_spans) {
    struct server s = start(NULL, NULL);
    struct resp r = http(s.port, "POST", "/tokenize", NULL, "{\"inputs\":[\"hello world\",\"caf\u00e9 \u65e5\u672c\"]}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    json_object *o = parse_json(&r), *v;
    json_object *hw = json_object_array_get_idx(o, 0);
    const char *texts[] = {"[CLS]", "hello", "world", "[SEP]"};
    const int starts[] = {-1, 0, 6, -1}, stops[] = {-1, 5, 11, -1};
    cr_assert_eq(json_object_array_length(hw), 4, "%s", r.body);
    for (size_t i = 0; i < 4; i++) {
        json_object *t = json_object_array_get_idx(hw, i);
        cr_assert(json_object_object_get_ex(t, "text", &v));
        cr_expect_str_eq(json_object_get_string(v), texts[i], "token %zu: %s", i, r.body);
        cr_assert(json_object_object_get_ex(t, "special", &v));
        cr_expect_eq(json_object_get_boolean(v), starts[i] < 0, "token %zu special: %s", i, r.body);
        cr_assert(json_object_object_get_ex(t, "start", &v));
        if (starts[i] < 0) cr_expect(json_object_is_type(v, json_type_null), "token %zu start must be null", i);
        else cr_expect_eq(json_object_get_int(v), starts[i], "token %zu start: %s", i, r.body);
        cr_assert(json_object_object_get_ex(t, "stop", &v));
        if (stops[i] >= 0) cr_expect_eq(json_object_get_int(v), stops[i], "token %zu stop: %s", i, r.body);
    }
    // "café 日本": spans count characters (é is one), each token's text is the input it covers
    json_object *cj = json_object_array_get_idx(o, 1);
    size_t n = json_object_array_length(cj);
    cr_assert_geq(n, 5, "%s", r.body); // [CLS] caf... 日 本 [SEP]
    const char *chars[] = {"c", "a", "f", "\xc3\xa9", " ", "\xe6\x97\xa5", "\xe6\x9c\xac"};
    for (size_t i = 1; i + 1 < n; i++) {
        json_object *t = json_object_array_get_idx(cj, i), *st, *sp, *tx;
        cr_assert(json_object_object_get_ex(t, "start", &st) && json_object_object_get_ex(t, "stop", &sp) &&
                  json_object_object_get_ex(t, "text", &tx));
        int a = json_object_get_int(st), b = json_object_get_int(sp);
        cr_assert(a >= 0 && a < b && b <= 7, "token %zu span %d..%d: %s", i, a, b, r.body);
        char want[64] = "";
        for (int k = a; k < b; k++) strcat(want, chars[k]);
        cr_expect_str_eq(json_object_get_string(tx), want, "token %zu: text of characters %d..%d", i, a, b);
    }
    json_object *last = json_object_array_get_idx(cj, n - 2);
    cr_assert(json_object_object_get_ex(last, "stop", &v));
    cr_expect_eq(json_object_get_int(v), 7, "the last token ends at character 7: %s", r.body);
    json_object_put(o);
    resp_free(&r);
    r = http(s.port, "POST", "/tokenize", NULL, "{\"inputs\":\"hello world\",\"add_special_tokens\":false}");
    cr_assert_eq(r.status, 200, "%s", r.body);
    o = parse_json(&r);
    cr_expect_eq(json_object_array_length(json_object_array_get_idx(o, 0)), 2, "no specials: %s", r.body);
    json_object_put(o);
    resp_free(&r);
    cr_expect_eq(stop(&s), 0);
}

// TEI /rerank on a cross-encoder (models/gen/rerank_fixture.py's ce-bert, one label, sigmoid):
// the library's sembed_rerank scores bit for bit, best first, raw_scores and return_text; the
// errors: empty texts 422, too many 413, /embed on a cross-encoder and /rerank on an embedding
// model 424 (TEI's status for a route the model's kind does not serve).
Test(serve, rerank, .timeout = 300) {
    if (tu_run("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1", NULL) != 0)
        cr_skip_test("/usr/bin/python3 with torch is not available: the cross-encoder fixture cannot be made");
    char *dir = tu_mkdtemp(), *fx = tu_path(dir, "fx"), *semb = tu_path(dir, "ce-bert.semb"), *cmd = NULL;
    cr_assert(asprintf(&cmd, "/usr/bin/python3 '%s/models/gen/rerank_fixture.py' --out '%s' >&2 && '%s' convert '%s/ce-bert' -o '%s' >&2",
                       tu_source_dir(), fx, tu_cli(), fx, semb) > 0);
    cr_assert_eq(tu_run(cmd, NULL), 0, "%s", cmd);
    free(cmd);
    const char *query = "how do i bake bread at home";
    const char *docs[] = {"the stock market fell sharply on monday", "bread needs flour, water, salt and yeast",
                          "a man is playing a guitar", "knead the dough and let it rise before baking"};
    const size_t nd = sizeof docs / sizeof *docs;
    float want[4], raw[4];
    struct sembed_model *m = NULL;
    cr_assert_eq(sembed_model_load(semb, NULL, &m), 0);
    cr_assert_eq(sembed_model_num_labels(m), 1);
    struct sembed_context_params cp = sembed_context_default_params();
    cp.n_threads = 1;
    struct sembed_context *ctx = NULL;
    cr_assert_eq(sembed_context_create(m, &cp, &ctx), 0);
    cr_assert_eq(sembed_rerank(ctx, query, docs, nd, false, want), 0);
    cr_assert_eq(sembed_rerank(ctx, query, docs, nd, true, raw), 0);
    sembed_context_free(ctx);
    sembed_model_free(m);

    g_model = semb;
    struct server s = start(NULL, NULL);
    char *texts = json_texts(docs, nd), *body = NULL;
    for (int pass = 0; pass < 2; pass++) { // activated, then raw scores with the texts echoed
        cr_assert(asprintf(&body, "{\"query\":\"%s\",\"texts\":%s%s}", query, texts,
                           pass ? ",\"raw_scores\":true,\"return_text\":true" : "") > 0);
        struct resp r = http(s.port, "POST", "/rerank", NULL, body);
        cr_assert_eq(r.status, 200, "%s", r.body);
        json_object *o = parse_json(&r), *v;
        cr_assert_eq(json_object_array_length(o), nd, "%s", r.body);
        bool seen[4] = {0};
        double prev = INFINITY;
        for (size_t k = 0; k < nd; k++) {
            json_object *e = json_object_array_get_idx(o, k);
            cr_assert(json_object_object_get_ex(e, "index", &v));
            int idx = json_object_get_int(v);
            cr_assert(idx >= 0 && idx < (int)nd && !seen[idx], "index %d: %s", idx, r.body);
            seen[idx] = true;
            cr_assert(json_object_object_get_ex(e, "score", &v));
            float got = (float)json_object_get_double(v), exp = pass ? raw[idx] : want[idx];
            cr_expect_eq(got, exp, "text %d: score %.9g, sembed_rerank %.9g (%s)", idx, got, exp, pass ? "raw" : "sigmoid");
            cr_expect_leq(got, prev, "best first: %s", r.body);
            prev = got;
            bool has_text = json_object_object_get_ex(e, "text", &v);
            cr_expect_eq(has_text, pass == 1, "text only with return_text");
            if (has_text) cr_expect_str_eq(json_object_get_string(v), docs[idx]);
        }
        json_object_put(o);
        resp_free(&r);
        free(body);
    }
    struct { const char *path, *body; int status; const char *what; } bad[] = {
        {"/rerank", "{\"query\":\"q\",\"texts\":[]}", 422, "empty texts"},
        {"/rerank", "{\"query\":1,\"texts\":[\"a\"]}", 422, "query not a string"},
        {"/rerank", "{\"query\":\"q\",\"texts\":[\"a\",2]}", 422, "a text not a string"},
        {"/embed", "{\"inputs\":\"a\"}", 424, "/embed on a cross-encoder"},
        {"/v1/embeddings", "{\"input\":\"a\"}", 424, "/v1/embeddings on a cross-encoder"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        struct resp r = http(s.port, "POST", bad[k].path, NULL, bad[k].body);
        cr_expect_eq(r.status, bad[k].status, "%s: got %d %s", bad[k].what, r.status, r.body);
        resp_free(&r);
    }
    char many[4096] = "{\"query\":\"q\",\"texts\":[";
    for (int k = 0; k < 33; k++) strcat(many, k ? ",\"t\"" : "\"t\"");
    strcat(many, "]}");
    struct resp r = http(s.port, "POST", "/rerank", NULL, many);
    cr_expect_eq(r.status, 413, "33 texts > max_client_batch_size 32: got %d %s", r.status, r.body);
    resp_free(&r);
    r = http(s.port, "GET", "/info", NULL, NULL);
    cr_expect(strstr(r.body, "\"reranker\""), "/info names the model type: %s", r.body);
    resp_free(&r);
    cr_expect_eq(stop(&s), 0);
    g_model = NULL;
    s = start(NULL, NULL); // sembed-mini embeds: /rerank is 424
    r = http(s.port, "POST", "/rerank", NULL, "{\"query\":\"q\",\"texts\":[\"a\"]}");
    cr_expect_eq(r.status, 424, "/rerank on an embedding model: got %d %s", r.status, r.body);
    resp_free(&r);
    cr_expect_eq(stop(&s), 0);
    tu_rmtree(dir);
    free(dir), free(fx), free(semb), free(texts);
}
