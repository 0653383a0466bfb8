// serve/batcher.c: one thread, the sembed contexts, and a bounded FIFO of jobs.
// A pass takes the head job's normalization, then inputs in queue order from every job with the
// same normalization until the next input would overflow max_batch_tokens or max_batch_requests
// (the first input always fits: max_input_length <= max_batch_tokens). The runtime is batch
// invariant (include/sembed/model.h), so what else shares a pass never changes an embedding.
#define _GNU_SOURCE
#include "serve/batcher.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct slot {
    struct serve_job *job;
    uint32_t idx;
};

struct serve_batcher {
    const struct sembed_model *m;
    struct serve_batcher_params p;
    struct serve_metrics *mx;
    struct sembed_context *ctx[3]; // [normalize off, normalize on, raw scores]; made on first use
    uint32_t dim;
    pthread_mutex_t mu;
    pthread_cond_t work;
    struct serve_job *head, *tail;
    uint32_t n_jobs;      // admitted, not finished
    uint64_t n_waiting;   // inputs queued, not yet in a pass
    bool stopping;
    pthread_t thread;
    struct slot *slots;
    struct sembed_ids *ids;
    float *scratch;
    unsigned delay_ms; // $SEMBED_SERVE_PASS_DELAY_MS: a pause before each pass, for tests (queue full, drain)
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static struct sembed_context *context_for(struct serve_batcher *b, int normalize) {
    if (b->ctx[normalize]) return b->ctx[normalize];
    struct sembed_context_params cp = sembed_context_default_params();
    cp.normalize = normalize == 1 ? SEMBED_NORMALIZE_ON : SEMBED_NORMALIZE_OFF;
    cp.max_length = b->p.max_input_length;
    cp.batch_tokens = b->p.max_batch_tokens;
    cp.batch_size = b->p.max_batch_requests;
    cp.n_threads = b->p.n_threads;
    if (sembed_context_create(b->m, &cp, &b->ctx[normalize])) b->ctx[normalize] = NULL;
    if (b->ctx[normalize] && normalize == SERVE_RAW_SCORES && sembed_context_set_raw_scores(b->ctx[normalize], true)) {
        sembed_context_free(b->ctx[normalize]);
        b->ctx[normalize] = NULL;
    }
    return b->ctx[normalize];
}

// Under the lock: a job with nothing left to run or running is finished; wake its waiter.
static void maybe_finish(struct serve_batcher *b, struct serve_job *j) {
    if (j->finished || j->queued || j->running || j->next < j->n) return;
    j->finished = true;
    b->n_jobs--;
    pthread_cond_signal(&j->cv);
}

static void unlink_done(struct serve_batcher *b) {
    struct serve_job **pp = &b->head;
    b->tail = NULL;
    while (*pp) {
        struct serve_job *j = *pp;
        if (j->next >= j->n) {
            *pp = j->link;
            j->link = NULL;
            j->queued = false;
            maybe_finish(b, j);
        } else {
            b->tail = j;
            pp = &j->link;
        }
    }
}

static void *batcher_main(void *arg) {
    struct serve_batcher *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->head && !b->stopping) pthread_cond_wait(&b->work, &b->mu);
        if (!b->head) break;
        const int norm = b->head->normalize;
        uint32_t k = 0;
        uint64_t tokens = 0;
        const double t = now_s();
        for (struct serve_job *j = b->head; j && k < b->p.max_batch_requests; j = j->link) {
            if (j->normalize != norm) continue;
            if (j->cancelled) {
                b->n_waiting -= j->n - j->next;
                j->next = j->n;
                continue;
            }
            if (j->next == 0) serve_metrics_observe(b->mx, &b->mx->queue_s, t - j->t_enqueue);
            while (j->next < j->n && k < b->p.max_batch_requests) {
                uint32_t len = j->in[j->next].n;
                if (k > 0 && tokens + len > b->p.max_batch_tokens) goto full;
                b->slots[k] = (struct slot){j, j->next};
                b->ids[k] = j->in[j->next];
                k++;
                tokens += len;
                j->next++;
                j->running++;
                b->n_waiting--;
            }
        }
    full:
        unlink_done(b);
        if (k == 0) continue;
        pthread_mutex_unlock(&b->mu);

        if (b->delay_ms) nanosleep(&(struct timespec){b->delay_ms / 1000, (long)(b->delay_ms % 1000) * 1000000L}, NULL);
        struct sembed_context *ctx = context_for(b, norm);
        const double t0 = now_s();
        int rc = ctx ? sembed_embed_ids(ctx, b->ids, k, b->scratch) : SEMBED_ENOMEM;
        const double t1 = now_s();
        serve_metrics_observe(b->mx, &b->mx->inference_s, t1 - t0);
        serve_metrics_observe(b->mx, &b->mx->batch_inputs, (double)k);
        serve_metrics_observe(b->mx, &b->mx->batch_tokens, (double)tokens);
        pthread_mutex_lock(&b->mx->mu);
        b->mx->passes++;
        b->mx->inputs += k;
        b->mx->tokens += tokens;
        pthread_mutex_unlock(&b->mx->mu);

        pthread_mutex_lock(&b->mu);
        for (uint32_t i = 0; i < k; i++) {
            struct serve_job *j = b->slots[i].job;
            if (rc == 0) memcpy(j->out + (size_t)b->slots[i].idx * b->dim, b->scratch + (size_t)i * b->dim, b->dim * sizeof(float));
            else if (!j->status) j->status = rc;
            j->running--;
        }
        for (uint32_t i = 0; i < k; i++) maybe_finish(b, b->slots[i].job);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

int serve_batcher_create(const struct sembed_model *m, const struct serve_batcher_params *p, struct serve_metrics *mx,
                         struct serve_batcher **out) {
    *out = NULL;
    if (p->max_input_length < 2 || p->max_batch_tokens < p->max_input_length || p->max_batch_requests < 1 ||
        p->max_jobs < 1)
        return SEMBED_EINVAL;
    struct serve_batcher *b = calloc(1, sizeof *b);
    if (!b) return SEMBED_ENOMEM;
    b->m = m;
    b->p = *p;
    b->mx = mx;
    b->dim = sembed_model_dim(m);
    const char *delay = getenv("SEMBED_SERVE_PASS_DELAY_MS");
    b->delay_ms = delay ? (unsigned)strtoul(delay, NULL, 10) % 60000u : 0;
    b->slots = calloc(p->max_batch_requests, sizeof *b->slots);
    b->ids = calloc(p->max_batch_requests, sizeof *b->ids);
    b->scratch = calloc((size_t)p->max_batch_requests * b->dim, sizeof(float));
    int rc = SEMBED_ENOMEM;
    if (!b->slots || !b->ids || !b->scratch) goto fail;
    // The model's own normalization is the default: make that context now, so that a bad
    // setting fails at start and the first request does not pay for it.
    rc = SEMBED_EINVAL;
    if (!context_for(b, sembed_model_normalize(m) ? 1 : 0)) goto fail;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->work, NULL);
    if (pthread_create(&b->thread, NULL, batcher_main, b) != 0) {
        pthread_cond_destroy(&b->work);
        pthread_mutex_destroy(&b->mu);
        rc = SEMBED_ENOMEM;
        goto fail;
    }
    *out = b;
    return 0;
fail:
    sembed_context_free(b->ctx[0]);
    sembed_context_free(b->ctx[1]);
    sembed_context_free(b->ctx[2]);
    free(b->slots);
    free(b->ids);
    free(b->scratch);
    free(b);
    return rc;
}

int serve_batcher_submit(struct serve_batcher *b, struct serve_job *j) {
    j->next = j->running = 0;
    j->status = 0;
    j->cancelled = j->finished = false;
    j->link = NULL;
    j->t_enqueue = now_s();
    pthread_cond_init(&j->cv, NULL);
    pthread_mutex_lock(&b->mu);
    if (b->n_jobs >= b->p.max_jobs || b->stopping) {
        pthread_mutex_unlock(&b->mu);
        pthread_cond_destroy(&j->cv);
        return SEMBED_ESTATE;
    }
    b->n_jobs++;
    b->n_waiting += j->n;
    j->queued = true;
    if (b->tail) b->tail->link = j;
    else b->head = j;
    b->tail = j;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

int serve_batcher_wait(struct serve_batcher *b, struct serve_job *j, bool (*gone)(void *), void *ud) {
    pthread_mutex_lock(&b->mu);
    while (!j->finished) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        int w = pthread_cond_timedwait(&j->cv, &b->mu, &ts);
        if (w == ETIMEDOUT && !j->finished && !j->cancelled && gone && gone(ud)) {
            j->cancelled = true;
            pthread_cond_signal(&b->work); // the batcher drops its queued inputs
        }
    }
    int rc = j->cancelled ? SEMBED_ESTATE : j->status;
    pthread_mutex_unlock(&b->mu);
    pthread_cond_destroy(&j->cv);
    return rc;
}

void serve_batcher_depth(struct serve_batcher *b, uint32_t *jobs, uint64_t *inputs) {
    pthread_mutex_lock(&b->mu);
    *jobs = b->n_jobs;
    *inputs = b->n_waiting;
    pthread_mutex_unlock(&b->mu);
}

void serve_batcher_free(struct serve_batcher *b) {
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->stopping = true;
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    pthread_cond_destroy(&b->work);
    pthread_mutex_destroy(&b->mu);
    sembed_context_free(b->ctx[0]);
    sembed_context_free(b->ctx[1]);
    sembed_context_free(b->ctx[2]);
    free(b->slots);
    free(b->ids);
    free(b->scratch);
    free(b);
}
