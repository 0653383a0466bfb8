// train/eval_public.c: sembed/eval.h, the STS evaluation of `sembed eval` (tools/cmd_eval.c)
// behind the public API: the same readers (evalsets.c), cosines (mt_cosine) and statistics
// (mt_aggregate), in the same order, so the numbers are bit-identical to the CLI's.
#include "sembed/eval.h"

#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "runtime/model_internal.h"
#include "sembed/model.h"
#include "train/evalsets.h"
#include "train/metrics.h"

struct sembed_eval {
    struct ev_task *task;
    struct mt_corr *per_set; // [n_sets]
    struct mt_agg agg;
};

void sembed_eval_free(struct sembed_eval *ev) {
    if (!ev) return;
    ev_task_free(ev->task);
    free(ev->per_set);
    free(ev);
}

// Cosines of every pair of every set, then the statistics (as cmd_eval.c's eval_task).
static int eval_task(struct sembed_context *ctx, struct sembed_eval *ev) {
    const struct ev_task *t = ev->task;
    size_t dim = sembed_model_dim(ctx->m) /* the context's model (model_internal.h) */;
    struct mt_subset *subs = calloc(t->n_sets, sizeof *subs);
    double **cos = calloc(t->n_sets, sizeof *cos);
    ev->per_set = calloc(t->n_sets, sizeof *ev->per_set);
    int rc = subs && cos && ev->per_set ? 0 : SEMBED_ENOMEM;
    for (size_t s = 0; s < t->n_sets && !rc; s++) {
        const struct ev_set *set = &t->sets[s];
        size_t n = set->n;
        const char **texts = malloc(2 * n * sizeof *texts);
        float *emb = malloc(2 * n * dim * sizeof *emb);
        cos[s] = malloc(n * sizeof *cos[s]);
        if (!texts || !emb || !cos[s]) rc = SEMBED_ENOMEM;
        if (!rc) {
            memcpy(texts, set->s1, n * sizeof *texts);
            memcpy(texts + n, set->s2, n * sizeof *texts);
            rc = ev_embed_texts(ctx, dim, texts, 2 * n, 0, emb, NULL, NULL);
            if (rc) SEMBED_LOG_ERR("%s: embedding failed: %s", set->path, sembed_strerror(rc));
        }
        for (size_t i = 0; i < n && !rc; i++) cos[s][i] = mt_cosine(emb + i * dim, emb + (n + i) * dim, dim);
        subs[s] = (struct mt_subset){cos[s], set->gold, n};
        free(texts);
        free(emb);
    }
    if (!rc) {
        rc = mt_aggregate(subs, t->n_sets, ev->per_set, &ev->agg);
        if (rc) SEMBED_LOG_ERR("%s: statistics failed: %s", t->path, sembed_strerror(rc));
    }
    if (cos)
        for (size_t s = 0; s < t->n_sets; s++) free(cos[s]);
    free(cos);
    free(subs);
    return rc;
}

int sembed_eval_sts(struct sembed_context *ctx, const char *path, bool strict, struct sembed_eval **out) {
    if (!out) return sembed_fail(SEMBED_EINVAL, __func__, "out is NULL");
    *out = NULL;
    if (!ctx || !path) return sembed_fail(SEMBED_EINVAL, __func__, "ctx and path are required");
    struct sembed_eval *ev = calloc(1, sizeof *ev);
    if (!ev) return SEMBED_ENOMEM;
    int rc = ev_task_load(path, EV_FORMAT_AUTO, strict, &ev->task);
    if (rc) SEMBED_LOG_ERR("cannot read %s: %s", path, sembed_strerror(rc));
    if (!rc) rc = eval_task(ctx, ev);
    if (rc) {
        sembed_eval_free(ev);
        return rc;
    }
    *out = ev;
    return 0;
}

const char *sembed_eval_name(const struct sembed_eval *ev) { return ev->task->name; }
const char *sembed_eval_format(const struct sembed_eval *ev) { return ev_format_name(ev->task->format); }
size_t sembed_eval_n_sets(const struct sembed_eval *ev) { return ev->task->n_sets; }

int sembed_eval_set(const struct sembed_eval *ev, size_t i, struct sembed_eval_score *out) {
    if (!ev || !out || i >= ev->task->n_sets)
        return sembed_fail(SEMBED_EINVAL, __func__, "subset %zu of %zu", i, ev ? ev->task->n_sets : 0);
    const struct ev_set *s = &ev->task->sets[i];
    *out = (struct sembed_eval_score){s->name, s->path, s->n, s->n_unscored, s->n_malformed,
                                      ev->per_set[i].spearman, ev->per_set[i].pearson};
    return 0;
}

static void agg_score(const struct sembed_eval *ev, const char *name, struct mt_corr c, struct sembed_eval_score *out) {
    uint64_t unscored = 0, malformed = 0;
    for (size_t i = 0; i < ev->task->n_sets; i++) {
        unscored += ev->task->sets[i].n_unscored;
        malformed += ev->task->sets[i].n_malformed;
    }
    *out = (struct sembed_eval_score){name, ev->task->path, ev->agg.n_total, unscored, malformed, c.spearman, c.pearson};
}

void sembed_eval_aggregate(const struct sembed_eval *ev, struct sembed_eval_score *all, struct sembed_eval_score *mean,
                           struct sembed_eval_score *wmean) {
    if (all) agg_score(ev, "all", ev->agg.all, all);
    if (mean) agg_score(ev, "mean", ev->agg.mean, mean);
    if (wmean) agg_score(ev, "wmean", ev->agg.wmean, wmean);
}
