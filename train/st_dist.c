// Data-parallel step: local forward, all-gathered embeddings (and teacher rows), the global batch's
// InfoNCE / distillation loss, local MLM over the global masked count, local backward, gradients
// summed over ranks, optionally during the backward (see train/st_dist.h and docs/train.md).
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "train/st_dist.h"

static int reduce_dense(struct st_dist *d, float *x, size_t n_total);

// The overlap thread: sums the queued ranges in queue order (the order is the same on every rank,
// so the collectives match); the caller's thread makes no collective call meanwhile.
static void *reduce_thread(void *arg) {
    struct st_dist *d = arg;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (!d->stop && d->q_taken == d->q_n) pthread_cond_wait(&d->cv, &d->mu);
        if (d->q_taken == d->q_n) break; // stop, nothing left
        struct st_dist_range r = d->q[d->q_taken++];
        bool skip = d->q_err != 0; // after a failure the collectives cannot be trusted
        pthread_mutex_unlock(&d->mu);
        int rc = skip ? 0 : reduce_dense(d, r.p, r.n);
        pthread_mutex_lock(&d->mu);
        if (rc && !d->q_err) d->q_err = rc;
        d->q_done++;
        pthread_cond_broadcast(&d->cv);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

// Gradient range of layer l: from its first tensor to the next layer's (the last layer's runs to
// the end of the block: the pooler, MLM head and projection are complete before the backward).
static void layer_range(const struct st_model *m, int l, float **p, size_t *n) {
    size_t a = (size_t)(m->g.layer[l].qw - m->grads);
    size_t b = l + 1 < m->cfg.layers ? (size_t)(m->g.layer[l + 1].qw - m->grads) : m->n_params;
    *p = m->grads + a;
    *n = b - a;
}

static void queue_layer(struct st_dist *d, int l) {
    SEMBED_ASSERT(l == d->next_layer && d->q_n < d->q_cap);
    float *p;
    size_t n;
    layer_range(d->m, l, &p, &n);
    pthread_mutex_lock(&d->mu);
    d->q[d->q_n++] = (struct st_dist_range){p, n};
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    d->next_layer--;
}

static void on_layer_done(void *user, int l) { queue_layer(user, l); }

// Start a step's reduction queue (overlap): every layer still to queue, none done.
static int overlap_begin(struct st_dist *d, const struct st_model *m) {
    if (!d->overlap) return 0;
    if (d->q_cap < m->cfg.layers) {
        struct st_dist_range *nq = realloc(d->q, (size_t)m->cfg.layers * sizeof *nq);
        if (!nq) return SEMBED_ENOMEM;
        d->q = nq;
        d->q_cap = m->cfg.layers;
    }
    pthread_mutex_lock(&d->mu);
    SEMBED_ASSERT(d->q_done == d->q_n); // the previous step's reduction finished
    d->q_n = d->q_taken = d->q_done = d->q_err = 0;
    pthread_mutex_unlock(&d->mu);
    d->m = m;
    d->next_layer = m->cfg.layers - 1;
    return 0;
}

// The step's last backward pass: with overlap, each finished layer is queued for the thread.
static void hooked_backward(struct st_dist *d, struct st_model *m, struct st_acts *a, const struct st_batch *b,
                            uint64_t key, int nt) {
    if (d->overlap) { a->layer_done = on_layer_done; a->layer_user = d; }
    st_backward(m, a, b, a->dY, key, nt);
    a->layer_done = NULL;
    a->layer_user = NULL;
}

int st_dist_create(const struct sembed_train_comm *comm, int B, int kv, int H, int vocab, struct st_dist **out) {
    *out = NULL;
    if (!comm || comm->size < 1 || comm->rank < 0 || comm->rank >= comm->size || !comm->allgather_f32 ||
        !comm->allreduce_sum_f32)
        return sembed_fail(SEMBED_EINVAL, "st_dist_create", "incomplete communicator (rank %d of %d)",
                           comm ? comm->rank : -1, comm ? comm->size : 0);
    if (B % comm->size)
        return sembed_fail(SEMBED_EINVAL, "st_dist_create", "the global batch %d is not a multiple of the %d ranks", B,
                           comm->size);
    struct st_dist *d = calloc(1, sizeof *d);
    if (!d) return SEMBED_ENOMEM;
    d->comm = comm;
    d->rank = comm->rank;
    d->size = comm->size;
    d->B = B;
    d->b = B / comm->size;
    d->kv = kv;
    d->H = H;
    size_t n = (size_t)kv * B * H;
    d->zr = malloc(n * sizeof *d->zr);
    d->zg = malloc(n * sizeof *d->zg);
    d->dzg = malloc(n * sizeof *d->dzg);
    d->row0 = malloc((size_t)kv * d->b * sizeof *d->row0);
    d->att0 = malloc((size_t)kv * d->b * sizeof *d->att0);
    d->vocab = vocab;
    d->touched = calloc((size_t)vocab, 1);
    d->trows = malloc((size_t)vocab * sizeof *d->trows);
    d->next_layer = -1;
    if (!d->zr || !d->zg || !d->dzg || !d->row0 || !d->att0 || !d->touched || !d->trows) {
        st_dist_free(d);
        return SEMBED_ENOMEM;
    }
    if (comm->overlap) {
        int rc = 0;
        d->overlap = true;
        if (pthread_mutex_init(&d->mu, NULL) || pthread_cond_init(&d->cv, NULL) ||
            pthread_create(&d->th, NULL, reduce_thread, d))
            rc = sembed_fail(SEMBED_ENOMEM, "st_dist_create", "cannot start the gradient-reduction thread");
        else
            d->thread_on = true;
        if (rc) { st_dist_free(d); return rc; }
    }
    *out = d;
    return 0;
}

void st_dist_free(struct st_dist *d) {
    if (!d) return;
    if (d->thread_on) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->th, NULL);
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
    }
    free(d->q);
    free(d->zr); free(d->zg); free(d->dzg); free(d->row0); free(d->att0);
    free(d->touched); free(d->trows); free(d->pack); free(d->tg);
    free(d);
}

void st_dist_offsets(struct st_dist *d, const int32_t *glens, int heads) {
    int nl = d->kv * d->b, ng = d->kv * d->B;
    int64_t row = 0, att = 0;
    // one process packs the global batch in order: sequence g starts at sum of the lengths before it
    for (int g = 0, q = 0; g < ng; g++) {
        int v = g / d->B, i = g % d->B;
        if (i >= d->rank * d->b && i < (d->rank + 1) * d->b) {
            q = v * d->b + (i - d->rank * d->b);
            SEMBED_ASSERT(q < nl);
            d->row0[q] = row;
            d->att0[q] = att;
        }
        row += glens[g];
        att += (int64_t)heads * glens[g] * glens[g];
    }
}

int st_dist_set_teacher(struct st_dist *d, int D) {
    free(d->tg);
    d->D = D;
    d->tg = malloc((size_t)d->B * D * sizeof *d->tg);
    return d->tg ? 0 : SEMBED_ENOMEM;
}

// recv[2 * size] <- every rank's x as a float pair (hi, lo); returns the sum in rank order 0..N-1
// (the pair carries ~48 bits of x, so the sum is the same on every rank and exact to ~1e-14).
static int gather_sum(struct st_dist *d, double x, double *sum) {
    float send[2], *recv = d->zr; // zr holds size * kv * b * H >= 2 * size floats
    send[0] = (float)x;
    send[1] = (float)(x - (double)send[0]);
    if (d->comm->allgather_f32(d->comm->user, send, 2, recv)) return -1;
    double s = 0.0;
    for (int r = 0; r < d->size; r++) s += (double)recv[2 * r] + (double)recv[2 * r + 1];
    *sum = s;
    return 0;
}

double st_dist_step(struct st_model *m, struct st_acts *a, const struct st_objective *o, const struct st_step_data *sd,
                    uint64_t drop_key_cl, uint64_t drop_key_mlm, struct st_dist *d, bool backward, int nt,
                    double *cl_loss, double *mlm_loss, int *err) {
    int H = m->cfg.hidden, b = d->b, B = d->B, kv = d->kv;
    double total = 0.0, lc = 0.0, lm = 0.0;
    *err = 0;
    if ((*err = overlap_begin(d, m))) return 0.0;
    // with MLM the MLM pass's backward is the step's last, else the contrastive pass's
    bool mlm_on = o->mlm && sd->M_total > 0;
    if (o->contrastive || o->distill) {
        const struct st_batch *local = &sd->cl;
        SEMBED_ASSERT(local->n == kv * b && H == d->H && sd->B == b);
        size_t nloc = (size_t)kv * b * H;
        float *z = a->z, *dz = z + nloc;
        st_forward(m, a, local, drop_key_cl, nt);
        st_pool_forward(m, a, local, o->pool, o->mlp, z, nt);
        if (d->comm->allgather_f32(d->comm->user, z, nloc, d->zr)) {
            *err = sembed_fail(SEMBED_EIO, "st_dist_step", "all-gather of %zu floats failed", nloc);
            return 0.0;
        }
        // rank-major [r][v][i] -> view-major [v][r*b + i]: the layout of one process's batch
        for (int r = 0; r < d->size; r++)
            for (int v = 0; v < kv; v++)
                memcpy(d->zg + ((size_t)v * B + (size_t)r * b) * H, d->zr + ((size_t)r * kv + v) * b * H,
                       (size_t)b * H * sizeof(float));
        // every rank evaluates the same loss on the same bits: the global batch's
        float wcl = o->distill ? o->cl_weight : 1.0f;
        if (o->contrastive) {
            lc = st_infonce(d->zg, B, H, sd->hard_neg, o->temp, o->hn_weight, wcl, d->dzg);
            total += wcl * lc;
        } else {
            memset(d->dzg, 0, (size_t)kv * B * H * sizeof *d->dzg);
        }
        if (o->distill) {
            SEMBED_ASSERT(d->tg && sd->teacher && sd->teacher_dim == d->D);
            // the anchors' teacher rows, rank-major = global row order
            if (d->comm->allgather_f32(d->comm->user, sd->teacher, (size_t)b * d->D, d->tg)) {
                *err = sembed_fail(SEMBED_EIO, "st_dist_step", "all-gather of %zu teacher floats failed", (size_t)b * d->D);
                return 0.0;
            }
            // anchors = view 0 = zg rows [0, B); the projection (a per-row map) gets its gradient
            // over the whole batch on rank 0 only, so the sum over ranks holds each row once
            total += st_distill_loss_ex(m, d->zg, B, d->tg, d->D, o, d->dzg, backward, d->rank == 0, NULL, NULL);
        }
        if (backward) {
            // dLoss/dz of the local rows; the cross-rank terms are already in it (docs/train.md)
            for (int v = 0; v < kv; v++)
                memcpy(dz + (size_t)v * b * H, d->dzg + ((size_t)v * B + (size_t)d->rank * b) * H,
                       (size_t)b * H * sizeof(float));
            st_pool_backward(m, a, local, o->pool, o->mlp, dz, a->dY, nt);
            if (mlm_on) st_backward(m, a, local, a->dY, drop_key_cl, nt);
            else hooked_backward(d, m, a, local, drop_key_cl, nt);
        }
    }
    if (mlm_on) { // every rank agrees on M_total: all or none take part
        // the weight of st_loss_and_grad (st_step.c), so N ranks equal one process
        float w = st_mlm_weight(o);
        double part = 0.0;
        if (sd->M > 0) {
            st_forward(m, a, &sd->mlm, drop_key_mlm, nt);
            memset(a->dY, 0, (size_t)st_acts_rows(a) * H * sizeof(float));
            part = st_mlm_loss_n(m, a, st_last_hidden(m, a), sd->M, sd->mlm_rows, sd->mlm_labels, sd->M_total, w,
                                 backward ? a->dY : NULL, nt);
        }
        // before the backward: with overlap the reduction thread owns the collectives from there on
        if (gather_sum(d, part, &lm)) {
            *err = sembed_fail(SEMBED_EIO, "st_dist_step", "all-gather of the MLM loss failed");
            return 0.0;
        }
        if (sd->M > 0 && backward) hooked_backward(d, m, a, &sd->mlm, drop_key_mlm, nt);
        total += w * lm;
    }
    if (cl_loss) *cl_loss = lc;
    if (mlm_loss) *mlm_loss = lm;
    return total;
}

double st_dist_loss_and_grad(struct st_model *m, struct st_acts *a, const struct st_objective *o,
                             const struct st_batch *local, bool hard_neg, uint64_t drop_key, struct st_dist *d,
                             bool backward, int nt, int *err) {
    SEMBED_ASSERT(o->contrastive && !o->mlm && !o->distill);
    struct st_step_data sd = {.cl = *local, .B = d->b, .hard_neg = hard_neg};
    return st_dist_step(m, a, o, &sd, drop_key, 0, d, backward, nt, NULL, NULL, err);
}

void st_dist_touch(struct st_dist *d, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        SEMBED_ASSERT(id >= 0 && id < d->vocab);
        if (!d->touched[id]) {
            d->touched[id] = 1;
            d->trows[d->n_trows++] = id;
        }
    }
    d->touch_valid = true;
}

static int reduce_dense(struct st_dist *d, float *x, size_t n_total) {
    for (size_t off = 0; off < n_total; off += ST_DIST_BUCKET) {
        size_t n = n_total - off < ST_DIST_BUCKET ? n_total - off : ST_DIST_BUCKET;
        if (d->comm->allreduce_sum_f32(d->comm->user, x + off, n))
            return sembed_fail(SEMBED_EIO, "st_dist_allreduce_grads", "allreduce of %zu floats failed", n);
    }
    return 0;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int st_dist_allreduce_grads(struct st_dist *d, struct st_model *m) {
    int rc;
    size_t H = (size_t)m->cfg.hidden, V = (size_t)m->cfg.vocab, end = m->n_params;
    if (d->overlap && m->cfg.layers > 0) {
        if (!d->m && (rc = overlap_begin(d, m))) return rc; // no st_dist_step this step
        while (d->next_layer >= 0) queue_layer(d, d->next_layer); // a rank whose last pass had no rows
        pthread_mutex_lock(&d->mu);
        while (d->q_done < d->q_n) pthread_cond_wait(&d->cv, &d->mu);
        rc = d->q_err;
        pthread_mutex_unlock(&d->mu);
        d->m = NULL;
        if (rc) return sembed_fail(SEMBED_EIO, "st_dist_allreduce_grads", "allreduce of a layer's gradients failed");
        end = (size_t)(m->g.layer[0].qw - m->grads); // the embeddings remain
    }
    if (!d->touch_valid || !m->g.word || V != (size_t)d->vocab) return reduce_dense(d, m->grads, end);
    // [0, w0) dense, the marked rows of the word table packed, [w1, end) dense
    size_t w0 = (size_t)(m->g.word - m->grads), w1 = w0 + V * H, k = (size_t)d->n_trows;
    SEMBED_ASSERT(w1 <= end);
    qsort(d->trows, k, sizeof *d->trows, cmp_i32); // the same order on every rank
    if (k * H > d->cap_pack) {
        float *np = realloc(d->pack, k * H * sizeof *np);
        if (!np) return SEMBED_ENOMEM;
        d->pack = np;
        d->cap_pack = k * H;
    }
    for (size_t i = 0; i < k; i++) memcpy(d->pack + i * H, m->g.word + (size_t)d->trows[i] * H, H * sizeof(float));
    if ((rc = reduce_dense(d, m->grads, w0)) || (rc = reduce_dense(d, d->pack, k * H)) ||
        (rc = reduce_dense(d, m->grads + w1, end - w1)))
        return rc;
    for (size_t i = 0; i < k; i++) {
        memcpy(m->g.word + (size_t)d->trows[i] * H, d->pack + i * H, H * sizeof(float));
        d->touched[d->trows[i]] = 0;
    }
    d->n_trows = 0;
    d->touch_valid = false;
    return 0;
}
