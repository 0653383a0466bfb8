// train/st_dist.h: data-parallel training steps (every objective) over the caller's communicator
// (struct sembed_train_comm, sembed/train.h). The library never calls MPI itself.
//
// Rank r of size holds rows [r*b, (r+1)*b) (b = B/size) of every view of a global batch of B rows.
// A step: forward of the local rows -> pooled z (local) -> all-gather -> InfoNCE of the global
// batch on every rank (the same bits everywhere) -> dz of the local rows -> backward of the local
// rows -> gradients summed over ranks. Distillation gathers the teacher rows too; MLM runs on the
// local rows with the global batch's masks and masked count (st_dist_step). The math (why the
// local backward plus the sum is the exact gradient of the global loss) is in docs/train.md,
// "Data-parallel training".
#ifndef SEMBED_TRAIN_ST_DIST_H
#define SEMBED_TRAIN_ST_DIST_H

#include <pthread.h>

#include "sembed/train.h"
#include "train/st.h"

// Gradient buckets: each allreduce call carries at most this many floats (4 MiB).
#define ST_DIST_BUCKET (1u << 20)

struct st_dist {
    const struct sembed_train_comm *comm;
    int rank, size, B, b, kv, H;
    float *zr;          // [size * kv * b * H] gathered z, rank-major
    float *zg, *dzg;    // [kv * B * H] z and dLoss/dz of the global batch, view-major
    int64_t *row0, *att0; // [kv * b] global packed row / attention counter base of each local sequence
    // word-embedding rows used by this step's global batch (st_dist_touch): only they are exchanged
    int vocab;
    uint8_t *touched;     // [vocab]
    int32_t *trows;       // [n_trows] ascending after st_dist_allreduce_grads sorts them
    int n_trows;
    bool touch_valid;
    float *pack;          // [cap_pack] packed rows
    size_t cap_pack;
    // distillation (st_dist_set_teacher): teacher rows of the global batch's anchors, gathered
    int D;
    float *tg;            // [B * D], global row order (rank r's anchors are rows [r*b, (r+1)*b))
    // overlap (comm->overlap): a thread sums each layer's gradients while the backward runs on
    bool overlap, thread_on, stop;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct st_dist_range { float *p; size_t n; } *q; // [q_cap] queued ranges, in queue order
    int q_cap, q_n, q_taken, q_done, q_err;
    const struct st_model *m;
    int next_layer;       // layers next_layer .. 0 are not queued yet (-1: all are)
};

// kv: views per row (2 unsup, 3 sup with hard negatives). B % comm->size == 0.
// vocab: rows of the word-embedding table (its gradient is exchanged sparsely, see st_dist_touch).
int st_dist_create(const struct sembed_train_comm *comm, int B, int kv, int H, int vocab, struct st_dist **out);
void st_dist_free(struct st_dist *d);
// Global index (view-major, as one process orders its batch) of local sequence q = v * b + i.
static inline int st_dist_global_seq(const struct st_dist *d, int q) {
    return (q / d->b) * d->B + d->rank * d->b + q % d->b;
}
// glens[kv * B]: token counts of every sequence of the global batch (view-major). Fills row0/att0
// so dropout masks of the local rows equal those one process draws for the same rows.
void st_dist_offsets(struct st_dist *d, const int32_t *glens, int heads);
// Contrastive loss of the global batch (identical on every rank) and, with backward, this rank's
// share of the gradient accumulated into m->grads (not yet summed over ranks). local: this rank's
// kv*b sequences (view-major, row0/att0 set). *err != 0 when a collective failed.
double st_dist_loss_and_grad(struct st_model *m, struct st_acts *a, const struct st_objective *o,
                             const struct st_batch *local, bool hard_neg, uint64_t drop_key, struct st_dist *d,
                             bool backward, int nt, int *err);
// Distillation: allocate the gathered teacher rows (D floats each). 0 or SEMBED_ENOMEM.
int st_dist_set_teacher(struct st_dist *d, int D);
// One data-parallel objective evaluation, the counterpart of st_loss_and_grad: sd holds this rank's
// rows (cl: kv*b sequences view-major with row0/att0; teacher: the b anchors' teacher rows; mlm:
// the same sequences masked, mlm_rows/M local, M_total the global batch's masked count).
//  - contrastive / distillation: pooled z all-gathered (and the teacher rows, for distillation);
//    InfoNCE, MSE and the relational loss of the global batch on every rank (the same bits); the
//    backward takes dLoss/dz of the local rows; only rank 0 adds the projection's gradient.
//  - MLM: local rows only, mean over M_total: sum of the local token losses / M_total, gradients
//    scaled by weight / M_total; the loss is the rank-order sum of the ranks' parts (all-gathered).
// Losses are those of the global batch (identical on every rank); gradients are this rank's share
// (st_dist_allreduce_grads sums them). *err != 0 when a collective failed.
double st_dist_step(struct st_model *m, struct st_acts *a, const struct st_objective *o, const struct st_step_data *sd,
                    uint64_t drop_key_cl, uint64_t drop_key_mlm, struct st_dist *d, bool backward, int nt,
                    double *cl_loss, double *mlm_loss, int *err);
// Mark the token ids of n tokens of this step's *global* batch (every rank marks the same set).
// Only rows of the word-embedding gradient that some sequence of the global batch uses can be
// nonzero on any rank (the contrastive objectives have no tied decoder), so only those rows are
// exchanged; the others are zero everywhere and stay zero. Without marks the table goes dense.
void st_dist_touch(struct st_dist *d, const int32_t *ids, size_t n);
// Without comm->overlap: after the backward. With it: the layers' ranges [layer l, layer l+1) (the
// last layer's range runs to the end of the block, the heads included) were queued during the
// step's last backward pass as each layer finished and a thread has been summing them; this queues
// the layers not yet queued, waits for the thread, then sums the embeddings' range itself. Every
// element is summed the same way either way (the allreduce adds ranks in rank order per element),
// so the result is bit-identical with and without overlap.
// m->grads = sum over ranks, in buckets of ST_DIST_BUCKET floats (the word-embedding table: only
// the marked rows, packed; the marks are then cleared). 0 or SEMBED_EIO.
int st_dist_allreduce_grads(struct st_dist *d, struct st_model *m);

#endif
