// serve/metrics.h: the server's counters and histograms, printed in the Prometheus text
// exposition format (prometheus.io/docs/instrumenting/exposition_formats/) at GET /metrics.
#ifndef SEMBED_SERVE_METRICS_H
#define SEMBED_SERVE_METRICS_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define SERVE_HIST_MAX 20
struct serve_hist {
    const char *name, *help;
    const double *le;  // upper bounds, ascending (+Inf is implied)
    int n_le;
    uint64_t count[SERVE_HIST_MAX + 1];
    uint64_t total;
    double sum;
};

#define SERVE_N_ROUTES 11
#define SERVE_N_CODES 13
struct serve_metrics {
    pthread_mutex_t mu;
    uint64_t requests[SERVE_N_ROUTES][SERVE_N_CODES]; // by route and status (see serve_metrics_codes)
    uint64_t inputs, tokens, passes, truncated, cancelled;
    struct serve_hist batch_inputs, batch_tokens, queue_s, inference_s, request_s;
};

extern const char *const serve_metrics_routes[SERVE_N_ROUTES]; // "/v1/embeddings", ..., "other"
extern const int serve_metrics_codes[SERVE_N_CODES];           // 200, 400, 401, ..., other as 0

void serve_metrics_init(struct serve_metrics *m);
void serve_metrics_destroy(struct serve_metrics *m);
void serve_metrics_observe(struct serve_metrics *m, struct serve_hist *h, double v);
void serve_metrics_request(struct serve_metrics *m, int route, int status);
// The whole exposition into a heap string (free it); gauges passed in.
char *serve_metrics_text(struct serve_metrics *m, uint32_t queue_requests, uint64_t queue_inputs, size_t *len);

#endif
