/*
 * sembed/eval.h: STS evaluation as SentEval / SimCSE run it, through the public API (what
 * `sembed eval --sts` prints, for callers such as the Python package).
 *
 * Contract
 *  - sembed_eval_sts() reads one evaluation task (an STS-B file, a SentEval STS12-16 folder or one
 *    STS.input.<set>.txt, or a SICK file; detected as docs/eval.md says), embeds both sentences of
 *    every pair with ctx (its pooling, normalize and max_length settings apply), and ranks the
 *    cosine of each pair against the gold score: Spearman's rho (average ranks for ties) and
 *    Pearson's r, both x100, per subset, plus SentEval's aggregates "all" (subsets concatenated),
 *    "mean" and "wmean" (weighted by pair count). The numbers are bit-identical to `sembed eval`'s
 *    for the same model and settings.
 *  - Malformed lines are logged as "PATH:LINE: reason" and skipped (counted), or fatal
 *    (SEMBED_EPARSE) when strict. Undefined correlations (a constant input) are NaN.
 *  - The result owns its strings; free it with sembed_eval_free (NULL is a no-op). ctx is used
 *    by this thread for the duration of the call, like any embedding call.
 *
 * Example
 *     struct sembed_eval *ev;
 *     if (sembed_eval_sts(ctx, "sts-dev.csv", false, &ev) == 0) {
 *         struct sembed_eval_score all;
 *         sembed_eval_aggregate(ev, &all, NULL, NULL);
 *         printf("%s: %.2f\n", sembed_eval_name(ev), all.spearman);
 *         sembed_eval_free(ev);
 *     }
 */
#ifndef SEMBED_EVAL_H
#define SEMBED_EVAL_H

#include <stdbool.h>
#include "sembed/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sembed_context;
struct sembed_eval;

/* One subset's (or an aggregate's) scores. name and path point into the result. */
struct sembed_eval_score {
    const char *name;     /* subset name ("sts-dev", "MSRpar") or "all" / "mean" / "wmean" */
    const char *path;     /* the file the subset came from (the task path for aggregates) */
    uint64_t n;           /* scored pairs */
    uint64_t n_unscored;  /* STS folders: pairs with an empty gold line, skipped */
    uint64_t n_malformed; /* lines reported and skipped */
    double spearman;      /* x100; NaN when undefined */
    double pearson;       /* x100; NaN when undefined */
};

/* Evaluate ctx on the task at path. SEMBED_EIO / ENOTFOUND / EPARSE / EINVAL for unreadable or
 * malformed sets (the log names path and line), or the status of the embedding call. */
SEMBED_API int sembed_eval_sts(struct sembed_context *ctx, const char *path, bool strict, struct sembed_eval **out);
SEMBED_API void sembed_eval_free(struct sembed_eval *ev);

/* Task name (file stem or folder name), format ("stsb", "sts-folder", "sick"), subset count. */
SEMBED_API const char *sembed_eval_name(const struct sembed_eval *ev);
SEMBED_API const char *sembed_eval_format(const struct sembed_eval *ev);
SEMBED_API size_t sembed_eval_n_sets(const struct sembed_eval *ev);
/* Subset i (0 <= i < n_sets); SEMBED_EINVAL when out of range. */
SEMBED_API int sembed_eval_set(const struct sembed_eval *ev, size_t i, struct sembed_eval_score *out);
/* Aggregates over the subsets; any pointer may be NULL. */
SEMBED_API void sembed_eval_aggregate(const struct sembed_eval *ev, struct sembed_eval_score *all,
                                      struct sembed_eval_score *mean, struct sembed_eval_score *wmean);

#ifdef __cplusplus
}
#endif
#endif /* SEMBED_EVAL_H */
