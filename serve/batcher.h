// serve/batcher.h: the dynamic batcher. Requests (jobs) enter a bounded FIFO; one thread owns the
// sembed contexts and fills each forward pass with the inputs of as many queued jobs as fit in
// max_batch_tokens (a large job spans passes), then wakes each job whose inputs are all done.
#ifndef SEMBED_SERVE_BATCHER_H
#define SEMBED_SERVE_BATCHER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "sembed/sembed.h"
#include "serve/metrics.h"

#define SERVE_RAW_SCORES 2 // a cross-encoder's logits, without the checkpoint's activation

struct serve_job {
    // Set by the submitter before serve_batcher_submit; not touched by the batcher.
    const struct sembed_ids *in; // n tokenized inputs ([CLS] ... [SEP]), each at most max_input_length
    uint32_t n;
    int normalize;               // which context embeds it: 0 / 1 (normalize off / on), SERVE_RAW_SCORES
    float *out;                  // n * dim floats, written by the batcher
    // Batcher state, under the batcher's lock.
    uint32_t next;               // inputs handed to a pass (or skipped, once cancelled)
    uint32_t running;            // inputs in the pass now running
    int status;                  // 0, or the first SEMBED_E* of a failed pass
    bool cancelled, finished, queued;
    double t_enqueue;
    pthread_cond_t cv;
    struct serve_job *link;
};

struct serve_batcher_params {
    uint32_t max_batch_tokens;    // tokens per forward pass
    uint32_t max_batch_requests;  // inputs per forward pass
    uint32_t max_input_length;    // tokens per input (the contexts' max_length)
    uint32_t max_jobs;            // jobs queued or running; beyond: SEMBED_ESTATE (429)
    int32_t n_threads;
};

struct serve_batcher;
int serve_batcher_create(const struct sembed_model *m, const struct serve_batcher_params *p, struct serve_metrics *mx,
                         struct serve_batcher **out);
// Queue a job: 0, or SEMBED_ESTATE when max_jobs are already admitted (the caller answers 429).
int serve_batcher_submit(struct serve_batcher *b, struct serve_job *job);
// Wait until the job is done; every ~50 ms call gone(ud), and once it says the client went away,
// drop the job's inputs not yet run. Returns job->status, or SEMBED_ESTATE if cancelled.
int serve_batcher_wait(struct serve_batcher *b, struct serve_job *job, bool (*gone)(void *), void *ud);
// Jobs admitted and not yet finished; inputs waiting for a pass.
void serve_batcher_depth(struct serve_batcher *b, uint32_t *jobs, uint64_t *inputs);
// Finish every queued job, stop the thread, free the contexts. NULL is a no-op.
void serve_batcher_free(struct serve_batcher *b);

#endif
