/*
 * sembed/train.h: fine-tune or pre-train a BERT encoder on the CPU (SimCSE unsup / sup, MLM), and
 * export a .semb to a HuggingFace / sentence-transformers folder.
 *
 * Contract
 *  - sembed_train() reads a starting model (a .semb, or a fresh random encoder described by
 *    sembed_train_init), a data file, and writes a .semb to out_path atomically (temp file +
 *    fsync + rename). The output records how it was trained (train.* keys, docs/format.md) and sets
 *    pooling.mode to the pooler it was selected with, so `sembed embed` uses the right one.
 *  - Objectives (SimCSE, Gao, Yao, Chen 2021): "unsup" = InfoNCE with dropout noise as the only
 *    augmentation (each sentence encoded twice); "sup" = (sent0, sent1[, hard_neg]) rows, in-batch
 *    negatives plus an optional hard negative; "mlm" = masked-language modelling alone (15%
 *    of tokens; 80% [MASK], 10% random, 10% kept; HF DataCollatorForLanguageModeling). MLM can be
 *    added to unsup/sup as an auxiliary loss (mlm_weight > 0).
 *  - Reproducible bit for bit: dropout masks, MLM masks and the data order are pure functions of
 *    (seed, step, position), and every reduction runs in a fixed order, so a run gives the same
 *    weights whatever n_threads, and a run resumed from a checkpoint ends bit-identical to an
 *    uninterrupted one.
 *  - Data: unsup = one sentence per line; sup = TSV (tab) or CSV (comma, RFC 4180 quotes) with 2 or
 *    3 columns (sent0, sent1[, hard_neg]; a header row "sent0,sent1[,hard_neg]" is skipped). A
 *    malformed line is logged as "PATH:LINE: reason" and skipped, or is fatal (SEMBED_EPARSE) when
 *    strict.
 *  - Progress is reported through an optional callback; the library prints nothing.
 *
 * Example
 *     struct sembed_train_params p = sembed_train_default_params();
 *     p.model_path = "bert.semb"; p.data_path = "wiki.txt"; p.out_path = "simcse.semb";
 *     p.objective = SEMBED_OBJECTIVE_UNSUP; p.steps = 1000; p.eval_sts = "sts-dev.csv";
 *     struct sembed_train_result r;
 *     int rc = sembed_train(&p, &r);   // r.best_dev: STS-B dev Spearman x100 of the output
 */
#ifndef SEMBED_TRAIN_H
#define SEMBED_TRAIN_H

#include <stdbool.h>
#include "sembed/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* DISTILL: one sentence per line of data_path, a teacher vector per line in teacher_path (docs/train.md
 * "Distillation"). */
enum sembed_objective { SEMBED_OBJECTIVE_UNSUP = 0, SEMBED_OBJECTIVE_SUP = 1, SEMBED_OBJECTIVE_MLM = 2,
                        SEMBED_OBJECTIVE_DISTILL = 3 };
/* Training poolers (the inference names of sembed/model.h). */
enum sembed_train_pooler { SEMBED_TRAIN_POOL_CLS = 0, SEMBED_TRAIN_POOL_CLS_BEFORE_POOLER = 1, SEMBED_TRAIN_POOL_MEAN = 2 };

/* A fresh encoder (weights N(0, 0.02), biases 0, LayerNorm 1/0, as HF BERT initialises) over a
 * WordPiece vocabulary file (one token per line, BERT special tokens by string). */
struct sembed_train_init {
    const char *vocab_path;
    uint32_t layers, hidden, heads, intermediate, max_position, type_vocab; /* type_vocab: 2 */
    bool lowercase;                                                          /* true: uncased */
    float hidden_dropout, attention_dropout;                                 /* 0.1, 0.1 */
};
SEMBED_API struct sembed_train_init sembed_train_init_default(void);
/* Fill an init from a small JSON object: {"layers":2,"hidden":128,"heads":2,"intermediate":512,
 * "max_position":512,"type_vocab":2,"vocab":"path/vocab.txt","lowercase":true}; a relative vocab
 * path is resolved against the JSON file's folder. Strings are owned by *out until
 * sembed_train_init_free(out). */
SEMBED_API int sembed_train_init_from_json(const char *json_path, struct sembed_train_init *out);
SEMBED_API void sembed_train_init_free(struct sembed_train_init *init);

struct sembed_train_progress {
    int64_t step, total_steps;      /* steps done so far (1-based after a step) */
    int64_t epoch;
    double loss, cl_loss, mlm_loss; /* of the last step */
    float lr;                       /* used by the last step */
    double grad_norm;               /* before clipping */
    double examples_per_s;          /* training rows (sentences or pairs) per second, this run */
    double eta_s;
    bool evaluated;                 /* dev was evaluated at this step */
    double dev, best_dev;           /* STS dev Spearman x100 (NaN before the first evaluation) */
};
typedef void (*sembed_train_progress_fn)(const struct sembed_train_progress *p, void *user);

/* Data-parallel training (docs/scale.md, docs/train.md "Data-parallel training"): the caller
 * supplies the communication (the CLI does it over MPI); the library itself never calls MPI.
 * Every rank calls sembed_train() with the same params; params.batch stays the global batch, which
 * must be a multiple of size; rank r computes rows [r*B/size, (r+1)*B/size) of every view of
 * each global batch. Only rank 0 writes out_path, checkpoints and the log, and evaluates.
 * Both callbacks are collective (every rank calls them in the same order) and return 0 or
 * nonzero on failure. */
struct sembed_train_comm {
    int rank, size;
    /* recv[size * n] = every rank's send[n], in rank order. */
    int (*allgather_f32)(void *user, const float *send, size_t n, float *recv);
    /* buf[n] = sum over ranks of every rank's buf[n]; the result must be bit-identical on every
     * rank (the optimiser steps on it independently on each rank). */
    int (*allreduce_sum_f32)(void *user, float *buf, size_t n);
    void *user;
    /* true: allreduce_sum_f32 may be called from a thread of the library while the calling thread
     * runs the backward pass (never two callbacks at once), so each layer's gradients are summed
     * as soon as the backward has produced them (docs/scale.md "Overlap"). The sums and their
     * order per element are the same either way: the result is bit-identical. */
    bool overlap;
};

struct sembed_train_params {
    const char *model_path;                /* starting .semb, or NULL with init */
    const struct sembed_train_init *init;  /* fresh encoder (model_path must be NULL) */
    const char *data_path;
    const char *out_path;
    enum sembed_objective objective;       /* UNSUP */
    enum sembed_train_pooler pooler;       /* CLS (with SimCSE's MLP = pooler.dense + tanh) */
    bool mlp_only_train;                   /* train with cls + MLP, select/infer with cls_before_pooler */
    uint32_t batch;                        /* 64 rows per step */
    uint32_t max_length;                   /* 32 tokens incl. [CLS]/[SEP] */
    float lr;                              /* 3e-5 */
    uint32_t epochs;                       /* 1 (used when steps == 0) */
    int64_t steps;                         /* 0: epochs * rows / batch */
    int64_t stop_after;                    /* 0: run to the end; N: stop after step N (schedule unchanged) */
    float temp;                            /* 0.05 */
    float hard_neg_weight;                 /* 0 (added to the hard negative's logit) */
    float mlm_weight;                      /* 0 = no auxiliary MLM for unsup/sup; the paper's value is 0.1 */
    float mlm_prob;                        /* 0.15 */
    float warmup;                          /* 0; < 1: fraction of the steps, >= 1: steps */
    float weight_decay;                    /* 0 (HF Trainer default); never on biases / LayerNorm */
    float clip;                            /* 1.0 (max grad norm; 0 = off) */
    float hidden_dropout, attention_dropout; /* < 0: the model file's (0.1 for BERT) */
    uint64_t seed;                         /* 42 */
    int n_threads;                         /* 0: OpenMP default */
    const char *eval_sts;                  /* STS file (STS-B dev) or NULL */
    int64_t eval_every;                    /* 125 steps (and at the end) */
    bool keep_last;                        /* out_path gets the last weights, not the best on eval_sts
                                              (pretraining stages whose dev score is only watched) */
    const char *checkpoint_dir;            /* NULL: none; else last.semb (+ best.semb) there */
    int64_t checkpoint_every;              /* 0: at each evaluation and at the end */
    bool resume;                           /* continue from checkpoint_dir/last.semb */
    const char *log_csv;                   /* NULL or a CSV log of every step (appended on resume) */
    bool strict;                           /* malformed data lines are fatal */
    sembed_train_progress_fn progress;
    void *progress_user;
    /* Distillation (objective DISTILL). teacher_path: .npy float32 (rows, dim), row i the teacher's
     * vector of line i of data_path; the row count must equal the data's (no line may be skipped).
     * loss = mse_weight * MSE(proj(z), t) + rel_weight * relational + cl_weight * InfoNCE (unsup
     * views) + mlm_weight * MLM. proj = a Dense [dim, hidden] layer (pooling.dense.0, identity),
     * added when mse_weight > 0 and hidden != dim; with it the output embeds through it. */
    const char *teacher_path;
    float mse_weight;                      /* 1 */
    float rel_weight;                      /* 0 */
    float rel_temp;                        /* 0.05 */
    float cl_weight;                       /* 0 */

    const struct sembed_train_comm *comm;  /* NULL (or size 1): one process */
    /* + sim_weight * mean over in-batch pairs i != j of (cos(z_i, z_j) - cos(t_i, t_j))^2
     * (no projection; appended after comm so earlier callers' layouts keep their offsets) */
    float sim_weight;                      /* 0 */
    /* 0 or 1: rows are shuffled one by one. G > 1: the data is read as groups of G consecutive
     * rows (related sentences side by side) and whole groups are shuffled, so each group lands in
     * one batch, where the in-batch losses compare them; batch must be a multiple of G. */
    uint32_t shuffle_group;                /* 0 */
};
SEMBED_API struct sembed_train_params sembed_train_default_params(void);

struct sembed_train_result {
    int64_t steps;           /* total steps done (including before a resume) */
    double final_loss;
    double first_dev, best_dev; /* x100; NaN without eval_sts */
    int64_t best_step;
    uint64_t data_xxh3;
    uint64_t n_rows, n_skipped; /* data rows used, malformed lines skipped */
    double seconds;
};

SEMBED_API int sembed_train(const struct sembed_train_params *p, struct sembed_train_result *res);

/* Write dir/ (created if needed): config.json, model.safetensors (HF BertModel names with the
 * "bert." prefix dropped, as sentence-transformers' BertModel saves them), vocab.txt,
 * tokenizer_config.json, special_tokens_map.json, modules.json, sentence_bert_config.json and
 * 1_Pooling/config.json. Files are written atomically. */
SEMBED_API int sembed_export_hf(const char *semb_path, const char *dir);

#ifdef __cplusplus
}
#endif
#endif /* SEMBED_TRAIN_H */
