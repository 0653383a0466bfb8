// train/st_io.h: writing trained models and checkpoints as .semb, reading checkpoints back.
#ifndef SEMBED_TRAIN_ST_IO_H
#define SEMBED_TRAIN_ST_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "train/st.h"

struct sembed_file;
struct sembed_train_params;

struct st_save_info {
    const struct sembed_file *src;          // metadata source, or NULL for a fresh encoder
    const char *const *vocab;               // fresh encoder: vocabulary and tokenizer flags
    uint64_t n_vocab;
    bool lowercase;
    const char *objective;                  // recipe, "+"-joined ("mlm+unsup")
    const char *pooling_mode;               // inference pooler: "cls", "cls_before_pooler", "mean"
    bool normalize;
    const struct sembed_train_params *p;
    int64_t warmup_steps;
    int64_t steps;                          // steps done
    uint64_t n_rows;
    uint64_t data_xxh3;
    double best_dev;                        // x100, NaN when not evaluated
    int64_t best_step;
    // checkpoint state (Adam moments, counters) when with_state
    bool with_state;
    int64_t total_steps;
    double first_dev;
    const char *fingerprint;                // hyper-parameters that must match on resume
};

// Write params (a block laid out like m->params) to path atomically.
int st_save(const char *path, const struct st_model *m, const float *params, const struct st_save_info *si);

struct st_ckpt_state {
    int64_t step, best_step, total_steps;
    double best_dev, first_dev;
};

// Load a checkpoint written with with_state into m (params, moments); checks the fingerprint.
int st_load_checkpoint(const char *path, struct st_model *m, const char *fingerprint, struct st_ckpt_state *st);
// Load only the parameters of a .semb written by st_save into params (laid out like m->params).
int st_load_params(const char *path, const struct st_model *m, float *params);

struct sembed_writer;
// train.distill.* keys: teacher file name, its JSON sidecar (teacher identity) when present, weights.
int st_distill_save_keys(struct sembed_writer *w, const struct sembed_train_params *p);

#endif
