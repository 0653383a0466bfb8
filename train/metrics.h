// train/metrics.h: the statistics of sentence-embedding evaluation (prefix mt_).
//
// - Correlations of system scores against gold scores: Pearson, and Spearman with average ranks
//   for ties (what scipy.stats.spearmanr computes, the SentEval/SimCSE protocol). Results are in
//   [-1, 1]; the eval CLI reports them x100. Undefined cases (n < 2, a constant input) give NaN.
// - SentEval's aggregation over the subsets of a task (STS12-16): "all" = one correlation over
//   the subsets concatenated (the numbers the SimCSE paper reports), "mean" = plain mean of the
//   per-subset correlations, "wmean" = mean weighted by pair count.
// - Geometry (Wang & Isola 2020, "Understanding Contrastive Representation Learning through
//   Alignment and Uniformity", sec. 4.1; used in SimCSE, Gao et al. 2021, sec. 2 and 6.1), on
//   L2-normalised embeddings:
//     l_align   = mean_i ||f(x_i) - f(x_i+)||^2           over positive pairs
//     l_uniform = log mean_{i<j} exp(-t ||f(x_i) - f(x_j)||^2), t = 2, over distinct pairs
//   plus the mean pairwise cosine and the singular values of the (n x d) embedding matrix
//   (anisotropy: Ethayarajh 2019; SimCSE sec. 5 and appendix "singular value distribution").
// - A symmetric eigenvalue solver (Householder tridiagonalisation then implicit QR with the
//   Wilkinson shift; Golub & Van Loan, Matrix Computations, 4th ed., algs. 8.3.1-8.3.3), written
//   here so no LAPACK is needed.
//
// All functions are pure (no global state) and deterministic: sums over pairs are taken in a fixed
// order whatever the OpenMP thread count.
#ifndef SEMBED_TRAIN_METRICS_H
#define SEMBED_TRAIN_METRICS_H

#include <stdbool.h>
#include <stddef.h>

// ---------------------------------------------------------------- correlations

// Pearson's r of x and y (n values each). NaN when n < 2 or either input is constant.
// Two-pass in double (means first), so large offsets do not cancel.
double mt_pearson(const double *x, const double *y, size_t n);

// ranks[i] = average 1-based rank of x[i] among x[0..n) (tied values share the mean of the ranks
// they span, e.g. {10, 20, 20, 30} -> {1, 2.5, 2.5, 4}). SEMBED_EINVAL if some x[i] is NaN
// (logged with its index), SEMBED_ENOMEM.
int mt_rank_average(const double *x, size_t n, double *ranks);

// Spearman's rho = Pearson's r of the average ranks. *out = NaN when undefined (n < 2, all ties).
// SEMBED_EINVAL on NaN inputs, SEMBED_ENOMEM.
int mt_spearman(const double *x, const double *y, size_t n, double *out);

// ---------------------------------------------------------------- SentEval aggregation

struct mt_corr {
    double spearman, pearson; // x100
};

// One subset: system scores (e.g. cosines) and gold scores, n pairs.
struct mt_subset {
    const double *sys, *gold;
    size_t n;
};

struct mt_agg {
    struct mt_corr all;   // over all subsets concatenated
    struct mt_corr mean;  // mean of per-subset values
    struct mt_corr wmean; // per-subset values weighted by n
    size_t n_total;       // pairs over all subsets
};

// per_set (may be NULL) receives each subset's correlations, out the aggregates. A subset with an
// undefined correlation makes mean/wmean NaN (as numpy's mean would). n_sets == 0 or an empty
// subset is SEMBED_EINVAL.
int mt_aggregate(const struct mt_subset *sets, size_t n_sets, struct mt_corr *per_set, struct mt_agg *out);

// ---------------------------------------------------------------- geometry

// Scale each of the n rows (d floats) to unit L2 norm, in place. Rows of norm 0 stay 0; returns
// how many there were.
size_t mt_normalize_rows(float *x, size_t n, size_t d);

// Cosine similarity of two vectors (0 when either is all zeros).
double mt_cosine(const float *a, const float *b, size_t d);

// l_align = mean_i ||a_i - b_i||^2 over n row pairs (rows expected normalised). NaN when n == 0.
double mt_alignment(const float *a, const float *b, size_t n, size_t d);

// l_uniform = log( mean_{i<j} exp(-t ||x_i - x_j||^2) ) over the n(n-1)/2 distinct pairs of rows
// (t = 2 in the papers). NaN when n < 2. Cost O(n^2 d); n_threads <= 0: OpenMP default.
double mt_uniformity(const float *x, size_t n, size_t d, double t, int n_threads);

// Mean cosine over distinct pairs i<j of the rows (rows expected normalised; computed exactly as
// (||sum x_i||^2 - sum ||x_i||^2) / (n(n-1)) in O(nd)). NaN when n < 2.
double mt_mean_cosine(const float *x, size_t n, size_t d);

// Eigenvalues of the symmetric n x n matrix a (row-major; only the lower triangle is read; a is
// overwritten), sorted descending into w[n]. SEMBED_EINVAL for non-finite input or if QR fails to
// converge (logged), SEMBED_ENOMEM.
int mt_sym_eigenvalues(double *a, size_t n, double *w);

// Singular values of the (n x d) matrix x (row-major floats), sorted descending, into
// sv[min(n, d)]. center: subtract the column means first (the spectrum of the covariance rather
// than of the raw matrix). Computed as the square roots of the eigenvalues of the smaller Gram
// matrix (X^T X or X X^T) in double, so values below ~1e-7 of the largest lose relative accuracy
// (squaring doubles the condition number); tiny negative eigenvalues from rounding become 0.
int mt_singular_values(const float *x, size_t n, size_t d, bool center, int n_threads, double *sv);

#endif
