// serve/metrics.c: counters and histograms behind GET /metrics.
#define _GNU_SOURCE
#include "serve/metrics.h"

#include <stdlib.h>
#include <string.h>

const char *const serve_metrics_routes[SERVE_N_ROUTES] = {
    "/v1/embeddings", "/embed", "/tokenize", "/similarity", "/rerank", "/info", "/health", "/metrics", "/v1/models", "other", "-"};
const int serve_metrics_codes[SERVE_N_CODES] = {200, 400, 401, 404, 405, 408, 413, 415, 422, 424, 429, 500, 503};

static const double le_inputs[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
static const double le_tokens[] = {16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
static const double le_secs[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

static void hist(struct serve_hist *h, const char *name, const char *help, const double *le, int n) {
    memset(h, 0, sizeof *h);
    h->name = name;
    h->help = help;
    h->le = le;
    h->n_le = n;
}

void serve_metrics_init(struct serve_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    hist(&m->batch_inputs, "sembed_batch_inputs", "Inputs per forward pass.", le_inputs, 11);
    hist(&m->batch_tokens, "sembed_batch_tokens", "Tokens per forward pass.", le_tokens, 10);
    hist(&m->queue_s, "sembed_queue_seconds", "Time a request waits in the queue before its first pass.", le_secs, 15);
    hist(&m->inference_s, "sembed_inference_seconds", "Time of one forward pass.", le_secs, 15);
    hist(&m->request_s, "sembed_request_seconds", "Time from a request's body to its answer (embedding routes).",
         le_secs, 15);
}

void serve_metrics_destroy(struct serve_metrics *m) { pthread_mutex_destroy(&m->mu); }

void serve_metrics_observe(struct serve_metrics *m, struct serve_hist *h, double v) {
    pthread_mutex_lock(&m->mu);
    int i = 0;
    while (i < h->n_le && v > h->le[i]) i++;
    h->count[i]++;
    h->total++;
    h->sum += v;
    pthread_mutex_unlock(&m->mu);
}

void serve_metrics_request(struct serve_metrics *m, int route, int status) {
    if (route < 0 || route >= SERVE_N_ROUTES) route = SERVE_N_ROUTES - 2;
    int c = 0;
    while (c < SERVE_N_CODES && serve_metrics_codes[c] != status) c++;
    if (c == SERVE_N_CODES) c = SERVE_N_CODES - 1; // unlisted codes count as 503 (never happens today)
    pthread_mutex_lock(&m->mu);
    m->requests[route][c]++;
    pthread_mutex_unlock(&m->mu);
}

static void print_hist(FILE *f, const struct serve_hist *h) {
    fprintf(f, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n_le; i++) {
        cum += h->count[i];
        fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", h->name, h->le[i], (unsigned long long)cum);
    }
    fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", h->name, (unsigned long long)h->total,
            h->name, h->sum, h->name, (unsigned long long)h->total);
}

char *serve_metrics_text(struct serve_metrics *m, uint32_t queue_requests, uint64_t queue_inputs, size_t *len) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f) return NULL;
    pthread_mutex_lock(&m->mu);
    fprintf(f, "# HELP sembed_requests_total HTTP requests answered, by route and status.\n"
               "# TYPE sembed_requests_total counter\n");
    for (int r = 0; r < SERVE_N_ROUTES; r++)
        for (int c = 0; c < SERVE_N_CODES; c++)
            if (m->requests[r][c])
                fprintf(f, "sembed_requests_total{route=\"%s\",code=\"%d\"} %llu\n", serve_metrics_routes[r],
                        serve_metrics_codes[c], (unsigned long long)m->requests[r][c]);
    fprintf(f, "# HELP sembed_queue_requests Requests admitted and not yet answered.\n# TYPE sembed_queue_requests gauge\n"
               "sembed_queue_requests %u\n", queue_requests);
    fprintf(f, "# HELP sembed_queue_inputs Inputs waiting for a forward pass.\n# TYPE sembed_queue_inputs gauge\n"
               "sembed_queue_inputs %llu\n", (unsigned long long)queue_inputs);
    fprintf(f, "# HELP sembed_inputs_total Inputs embedded.\n# TYPE sembed_inputs_total counter\nsembed_inputs_total %llu\n",
            (unsigned long long)m->inputs);
    fprintf(f, "# HELP sembed_tokens_total Tokens run through the encoder.\n# TYPE sembed_tokens_total counter\n"
               "sembed_tokens_total %llu\n", (unsigned long long)m->tokens);
    fprintf(f, "# HELP sembed_passes_total Forward passes.\n# TYPE sembed_passes_total counter\nsembed_passes_total %llu\n",
            (unsigned long long)m->passes);
    fprintf(f, "# HELP sembed_truncated_total Inputs cut to the maximum input length.\n"
               "# TYPE sembed_truncated_total counter\nsembed_truncated_total %llu\n", (unsigned long long)m->truncated);
    fprintf(f, "# HELP sembed_cancelled_total Requests whose client went away before the answer.\n"
               "# TYPE sembed_cancelled_total counter\nsembed_cancelled_total %llu\n", (unsigned long long)m->cancelled);
    print_hist(f, &m->batch_inputs);
    print_hist(f, &m->batch_tokens);
    print_hist(f, &m->queue_s);
    print_hist(f, &m->inference_s);
    print_hist(f, &m->request_s);
    pthread_mutex_unlock(&m->mu);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
