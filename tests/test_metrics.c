// train/metrics: correlations on hand-computed cases (ties, constants, n = 2), SentEval
// aggregation, alignment / uniformity / mean cosine, and the spectrum against numpy.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/common.h"
#include "testutil.h"
#include "train/metrics.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void assert_near(double got, double want, double tol, const char *what) {
    cr_assert(fabs(got - want) <= tol, "%s: expected %.12g, got %.12g (abs diff %.3g > %.3g)", what, want, got,
              fabs(got - want), tol);
}

static double spearman(const double *x, const double *y, size_t n) {
    double r;
    int rc = mt_spearman(x, y, n, &r);
    cr_assert_eq(rc, 0, "mt_spearman failed: %s", sembed_strerror(rc));
    return r;
}

// ---------------------------------------------------------------- Pearson

Test(pearson, hand_computed) {
    double x[] = {1, 2, 3}, y[] = {1, 3, 2};
    // means 2, 2; deviations (-1,0,1), (-1,1,0): sxy = 1, sxx = syy = 2 -> r = 1/2
    assert_near(mt_pearson(x, y, 3), 0.5, 1e-15, "pearson {1,2,3} vs {1,3,2}");
    double a[] = {1, 2, 3, 4, 5}, b[] = {2, 4, 6, 8, 10}, c[] = {5, 4, 3, 2, 1};
    assert_near(mt_pearson(a, b, 5), 1.0, 1e-15, "pearson of a line");
    assert_near(mt_pearson(a, c, 5), -1.0, 1e-15, "pearson of a falling line");
}

Test(pearson, large_offset_does_not_cancel) {
    // Same as {1,2,3} vs {1,3,2} shifted by 1e9: a one-pass formula loses every digit here.
    double x[] = {1e9 + 1, 1e9 + 2, 1e9 + 3}, y[] = {1, 3, 2};
    assert_near(mt_pearson(x, y, 3), 0.5, 1e-9, "pearson with offset 1e9");
}

Test(pearson, undefined_cases_are_nan) {
    double x[] = {1, 2, 3}, k[] = {7, 7, 7};
    cr_assert(isnan(mt_pearson(x, k, 3)), "constant y: expected NaN, got %g", mt_pearson(x, k, 3));
    cr_assert(isnan(mt_pearson(k, x, 3)), "constant x: expected NaN");
    cr_assert(isnan(mt_pearson(x, x, 1)), "n = 1: expected NaN");
    cr_assert(isnan(mt_pearson(x, x, 0)), "n = 0: expected NaN");
}

// ---------------------------------------------------------------- ranks and Spearman

Test(ranks, average_ranks_for_ties) {
    double x[] = {10, 20, 20, 30}, want[] = {1, 2.5, 2.5, 4}, r[4];
    cr_assert_eq(mt_rank_average(x, 4, r), 0);
    for (size_t i = 0; i < 4; i++) assert_near(r[i], want[i], 0, "rank of {10,20,20,30}");
    double y[] = {3, 1, 3, 3}, wy[] = {3, 1, 3, 3}; // three 3s share ranks 2,3,4 -> 3
    cr_assert_eq(mt_rank_average(y, 4, r), 0);
    for (size_t i = 0; i < 4; i++) assert_near(r[i], wy[i], 0, "rank of {3,1,3,3}");
    double z[] = {-0.0, 0.0, -1}; // -0 == +0: a tie
    cr_assert_eq(mt_rank_average(z, 3, r), 0);
    assert_near(r[0], 2.5, 0, "rank of -0.0");
    assert_near(r[1], 2.5, 0, "rank of +0.0");
    assert_near(r[2], 1, 0, "rank of -1");
}

Test(ranks, nan_is_rejected) {
    double x[] = {1, NAN, 2}, r[3];
    cr_assert_eq(mt_rank_average(x, 3, r), SEMBED_EINVAL, "NaN input: expected SEMBED_EINVAL");
    double s;
    cr_assert_eq(mt_spearman(x, x, 3, &s), SEMBED_EINVAL);
}

Test(spearman, ties_hand_computed) {
    // ranks x = 1,2,3,4; ranks y = 1,2.5,2.5,4; deviations (-1.5,-.5,.5,1.5), (-1.5,0,0,1.5):
    // sxy = 4.5, sxx = 5, syy = 4.5 -> rho = 4.5 / sqrt(22.5) = sqrt(0.9) (scipy: 0.9486832980505138)
    double x[] = {1, 2, 3, 4}, y[] = {1, 2, 2, 3};
    assert_near(spearman(x, y, 4), sqrt(0.9), 1e-15, "spearman {1,2,3,4} vs {1,2,2,3}");
    assert_near(spearman(y, x, 4), sqrt(0.9), 1e-15, "spearman is symmetric");
}

Test(spearman, monotone_transform_is_perfect) {
    double x[7], y[7], z[7];
    for (int i = 0; i < 7; i++) {
        x[i] = i * 0.37 - 1;
        y[i] = exp(3 * x[i]);
        z[i] = -x[i] * x[i] * x[i];
    }
    assert_near(spearman(x, y, 7), 1, 1e-15, "spearman of x vs exp(3x)");
    assert_near(spearman(x, z, 7), -1, 1e-15, "spearman of x vs -x^3");
    cr_assert(mt_pearson(x, y, 7) < 0.99, "pearson of x vs exp(3x) should not be 1 (got %g)", mt_pearson(x, y, 7));
}

Test(spearman, n2_and_constants) {
    double a[] = {1, 2}, up[] = {3, 5}, down[] = {5, 3}, flat[] = {4, 4};
    assert_near(spearman(a, up, 2), 1, 0, "n = 2 increasing");
    assert_near(spearman(a, down, 2), -1, 0, "n = 2 decreasing");
    double r = spearman(a, flat, 2);
    cr_assert(isnan(r), "n = 2 with a tie: expected NaN, got %g", r);
    double k[] = {0.3, 0.3, 0.3, 0.3}, x[] = {1, 2, 3, 4};
    r = spearman(x, k, 4);
    cr_assert(isnan(r), "constant system scores: expected NaN, got %g", r);
    r = spearman(x, x, 1);
    cr_assert(isnan(r), "n = 1: expected NaN, got %g", r);
}

Test(spearman, brute_force_agrees_without_ties) {
    // Without ties rho = 1 - 6 sum d^2 / (n (n^2 - 1)) (the textbook formula).
    enum { n = 50 };
    double x[n], y[n];
    unsigned s = 12345;
    for (int i = 0; i < n; i++) {
        s = s * 1103515245u + 12345u;
        x[i] = i;
        y[i] = (double)(s >> 8) + i * 1e3; // distinct, loosely increasing
    }
    double ry[n], d2 = 0;
    cr_assert_eq(mt_rank_average(y, n, ry), 0);
    for (int i = 0; i < n; i++) d2 += (i + 1 - ry[i]) * (i + 1 - ry[i]);
    double want = 1 - 6 * d2 / ((double)n * (n * n - 1.0));
    assert_near(spearman(x, y, n), want, 1e-12, "spearman vs 1 - 6 sum d^2 / (n(n^2-1))");
}

// ---------------------------------------------------------------- aggregation

Test(aggregate, all_mean_wmean_hand_computed) {
    double s1[] = {1, 2, 3}, g1[] = {1, 2, 3};       // +100 / +100
    double s2[] = {1, 2, 3, 4}, g2[] = {4, 3, 2, 1}; // -100 / -100
    struct mt_subset sets[] = {{s1, g1, 3}, {s2, g2, 4}};
    struct mt_corr per[2];
    struct mt_agg agg;
    cr_assert_eq(mt_aggregate(sets, 2, per, &agg), 0);
    assert_near(per[0].spearman, 100, 1e-12, "subset 0 spearman");
    assert_near(per[1].spearman, -100, 1e-12, "subset 1 spearman");
    assert_near(per[0].pearson, 100, 1e-12, "subset 0 pearson");
    assert_near(agg.mean.spearman, 0, 1e-12, "mean spearman = (100 - 100) / 2");
    assert_near(agg.wmean.spearman, -100.0 / 7, 1e-12, "wmean spearman = (3*100 - 4*100) / 7");
    assert_near(agg.wmean.pearson, -100.0 / 7, 1e-12, "wmean pearson");
    // all: sys {1,2,3,1,2,3,4} ranks {1.5,3.5,5.5,1.5,3.5,5.5,7}; gold {1,2,3,4,3,2,1} ranks
    // {1.5,3.5,5.5,7,5.5,3.5,1.5}; both means 4; sxy = -7.75, sxx = syy = 26.5 -> -7.75/26.5.
    assert_near(agg.all.spearman, -100 * 7.75 / 26.5, 1e-12, "all spearman");
    // pearson: sum xy = 34, sums 16, sum x^2 = sum y^2 = 44: sxy = 34 - 256/7, sxx = 44 - 256/7 -> -18/52
    assert_near(agg.all.pearson, -100 * 18.0 / 52.0, 1e-12, "all pearson");
    cr_assert_eq(agg.n_total, 7);
}

Test(aggregate, single_subset_all_equals_mean) {
    double s[] = {0.1, 0.5, 0.2, 0.9, 0.4}, g[] = {1, 3, 2, 5, 2};
    struct mt_subset set = {s, g, 5};
    struct mt_agg agg;
    cr_assert_eq(mt_aggregate(&set, 1, NULL, &agg), 0);
    assert_near(agg.all.spearman, agg.mean.spearman, 1e-12, "all vs mean");
    assert_near(agg.all.spearman, agg.wmean.spearman, 1e-12, "all vs wmean");
    assert_near(agg.all.pearson, agg.mean.pearson, 1e-12, "pearson all vs mean");
}

Test(aggregate, rejects_empty) {
    struct mt_agg agg;
    cr_assert_eq(mt_aggregate(NULL, 0, NULL, &agg), SEMBED_EINVAL);
    double s[] = {1};
    struct mt_subset sets[] = {{s, s, 1}, {s, s, 0}};
    cr_assert_eq(mt_aggregate(sets, 2, NULL, &agg), SEMBED_EINVAL, "an empty subset must be rejected");
}

// ---------------------------------------------------------------- geometry

Test(geometry, alignment_uniformity_mean_cosine_hand_computed) {
    float a[] = {1, 0, 0, 1}, b[] = {0, 1, 0, 1};
    assert_near(mt_alignment(a, b, 2, 2), 1.0, 1e-12, "align: (|(1,-1)|^2 + 0) / 2");
    float opp[] = {1, 0, -1, 0};
    assert_near(mt_uniformity(opp, 2, 2, 2.0, 1), -8.0, 1e-12, "uniform of two antipodes: log exp(-2*4)");
    float tri[] = {1, 0, 0, 1, -1, 0}; // d^2 = 2, 4, 2
    double want = log((2 * exp(-4.0) + exp(-8.0)) / 3);
    assert_near(mt_uniformity(tri, 3, 2, 2.0, 2), want, 1e-12, "uniform of three points");
    assert_near(mt_mean_cosine(tri, 3, 2), -1.0 / 3, 1e-12, "mean cosine: (0 - 1 + 0) / 3");
    float same[] = {0.6f, 0.8f, 0.6f, 0.8f, 0.6f, 0.8f};
    assert_near(mt_uniformity(same, 3, 2, 2.0, 1), 0.0, 1e-12, "uniform of identical points = log 1");
    assert_near(mt_mean_cosine(same, 3, 2), 1.0, 1e-6, "mean cosine of identical points");
    cr_assert(isnan(mt_uniformity(tri, 1, 2, 2.0, 1)), "n = 1: expected NaN");
    cr_assert(isnan(mt_alignment(a, b, 0, 2)), "no pairs: expected NaN");
}

Test(geometry, normalize_and_mean_cosine_vs_brute_force) {
    enum { n = 37, d = 11 };
    float x[n * d];
    unsigned s = 99;
    for (int i = 0; i < n * d; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 9) / 8388608.0 - 0.3);
    }
    memset(x + 5 * d, 0, d * sizeof(float)); // one zero row
    cr_assert_eq(mt_normalize_rows(x, n, d), 1, "one zero row expected");
    double brute = 0, ubrute = 0;
    size_t pairs = 0;
    for (int i = 0; i < n; i++) {
        double nn = 0;
        for (int k = 0; k < d; k++) nn += (double)x[i * d + k] * x[i * d + k];
        if (i != 5) assert_near(sqrt(nn), 1.0, 1e-6, "row norm after normalize");
        for (int j = i + 1; j < n; j++) {
            double dot = 0, d2 = 0;
            for (int k = 0; k < d; k++) {
                dot += (double)x[i * d + k] * x[j * d + k];
                d2 += ((double)x[i * d + k] - x[j * d + k]) * ((double)x[i * d + k] - x[j * d + k]);
            }
            brute += dot;
            ubrute += exp(-2 * d2);
            pairs++;
        }
    }
    assert_near(mt_mean_cosine(x, n, d), brute / pairs, 1e-9, "mean cosine vs all pairs");
    assert_near(mt_uniformity(x, n, d, 2.0, 2), log(ubrute / pairs), 1e-9, "uniformity vs all pairs");
    // thread count does not change the result
    cr_assert_eq(mt_uniformity(x, n, d, 2.0, 1), mt_uniformity(x, n, d, 2.0, 2), "uniformity depends on threads");
}

// ---------------------------------------------------------------- eigenvalues

Test(eigen, small_known_matrices) {
    double a[] = {2, 1, 1, 2}, w[10];
    cr_assert_eq(mt_sym_eigenvalues(a, 2, w), 0);
    assert_near(w[0], 3, 1e-14, "eig [[2,1],[1,2]] max");
    assert_near(w[1], 1, 1e-14, "eig [[2,1],[1,2]] min");
    // 1-D Laplacian tridiag(-1, 2, -1), n = 10: 2 - 2 cos(k pi / 11)
    enum { n = 10 };
    double L[n * n] = {0};
    for (int i = 0; i < n; i++) {
        L[i * n + i] = 2;
        if (i) L[i * n + i - 1] = L[(i - 1) * n + i] = -1;
    }
    cr_assert_eq(mt_sym_eigenvalues(L, n, w), 0);
    for (int k = 1; k <= n; k++) {
        char what[64];
        snprintf(what, sizeof what, "laplacian eigenvalue %d", k);
        assert_near(w[k - 1], 2 - 2 * cos((n + 1 - k) * acos(-1.0) / (n + 1)), 1e-13, what);
    }
    double I[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1}; // repeated eigenvalue
    cr_assert_eq(mt_sym_eigenvalues(I, 3, w), 0);
    for (int i = 0; i < 3; i++) assert_near(w[i], 1, 1e-15, "identity");
    double Z[9] = {0};
    cr_assert_eq(mt_sym_eigenvalues(Z, 3, w), 0);
    for (int i = 0; i < 3; i++) assert_near(w[i], 0, 0, "zero matrix");
    double v[] = {1, 2, 3}, R[9]; // rank one: v v^T -> |v|^2 = 14, 0, 0
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) R[i * 3 + j] = v[i] * v[j];
    cr_assert_eq(mt_sym_eigenvalues(R, 3, w), 0);
    assert_near(w[0], 14, 1e-13, "rank one max");
    assert_near(w[1], 0, 1e-13, "rank one second");
    assert_near(w[2], 0, 1e-13, "rank one third");
    double bad[] = {1, NAN, NAN, 1};
    cr_assert_eq(mt_sym_eigenvalues(bad, 2, w), SEMBED_EINVAL, "NaN: expected SEMBED_EINVAL");
}

// ---------------------------------------------------------------- spectrum vs numpy

struct golden {
    size_t rows, cols, n;
    float *x;
    double *want;
};

static void load_golden(const char *dir, const char *name, struct golden *g) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.txt", dir, name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    cr_assert_eq(fscanf(f, "%zu %zu", &g->rows, &g->cols), 2, "%s: bad header", path);
    g->want = malloc(sizeof(double) * (g->rows + g->cols));
    g->n = 0;
    while (g->n < g->rows + g->cols && fscanf(f, "%lf", &g->want[g->n]) == 1) g->n++;
    fclose(f);
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    size_t len;
    g->x = tu_read_file(path, &len);
    cr_assert_not_null(g->x, "cannot read %s", path);
    cr_assert_eq(len, g->rows * g->cols * sizeof(float), "%s: %zu bytes", path, len);
}

static char *make_golden(void) {
    if (system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) return NULL;
    char *dir = tu_mkdtemp(), cmd[8192];
    cr_assert_not_null(dir);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/gen_spectrum.py' '%s'", tu_source_dir(), dir);
    cr_assert_eq(system(cmd), 0, "%s failed", cmd);
    return dir;
}

static void check_sv(const char *dir, const char *name, bool center) {
    struct golden g;
    load_golden(dir, name, &g);
    size_t m = g.rows < g.cols ? g.rows : g.cols;
    cr_assert_eq(g.n, m, "%s: %zu expected values for min(%zu, %zu)", name, g.n, g.rows, g.cols);
    double *sv = malloc(m * sizeof *sv), maxdiff = 0;
    cr_assert_eq(mt_singular_values(g.x, g.rows, g.cols, center, 2, sv), 0);
    size_t worst = 0;
    for (size_t i = 0; i < m; i++) {
        double dlt = fabs(sv[i] - g.want[i]);
        if (dlt > maxdiff) maxdiff = dlt, worst = i;
    }
    // Through the Gram matrix the absolute error is about eps * sv0^2 / sv_i: 1e-9 * sv0 is ample
    // for these well-conditioned cases (numpy agrees to ~1e-13 in practice).
    cr_assert(maxdiff <= 1e-9 * g.want[0], "%s: singular value %zu: numpy %.15g, got %.15g (max abs diff %.3g)",
              name, worst, g.want[worst], sv[worst], maxdiff);
    cr_log_info("%s: %zu singular values, max abs diff vs numpy %.3g (sv0 %.6g)", name, m, maxdiff, g.want[0]);
    free(sv);
    free(g.x);
    free(g.want);
}

Test(spectrum, matches_numpy_svd_and_eigvalsh) {
    char *dir = make_golden();
    if (!dir) cr_skip_test("/usr/bin/python3 with numpy is not available");
    check_sv(dir, "tall", false);
    check_sv(dir, "tall_centered", true);
    check_sv(dir, "wide", false);

    struct golden g;
    load_golden(dir, "sym", &g);
    cr_assert_eq(g.rows, g.cols);
    size_t n = g.rows;
    double *a = malloc(n * n * sizeof *a), *w = malloc(n * sizeof *w), maxdiff = 0;
    for (size_t i = 0; i < n * n; i++) a[i] = g.x[i];
    cr_assert_eq(mt_sym_eigenvalues(a, n, w), 0);
    for (size_t i = 0; i < n; i++) maxdiff = fmax(maxdiff, fabs(w[i] - g.want[i]));
    cr_assert(maxdiff <= 1e-11, "eigenvalues of a 40x40 symmetric matrix vs numpy.linalg.eigvalsh: max abs diff %.3g",
              maxdiff);
    free(a);
    free(w);
    free(g.x);
    free(g.want);
    tu_rmtree(dir);
    free(dir);
}

Test(spectrum, anisotropic_cloud_has_a_dominant_direction) {
    // Rows = shared offset + small noise: one singular value dominates; centering removes it.
    enum { n = 64, d = 16 };
    float x[n * d];
    unsigned s = 7;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < d; k++) {
            s = s * 1664525u + 1013904223u;
            x[i * d + k] = 1.0f + 0.01f * (float)((s >> 9) / 8388608.0 - 0.5);
        }
    double sv[d], svc[d];
    cr_assert_eq(mt_singular_values(x, n, d, false, 1, sv), 0);
    cr_assert_eq(mt_singular_values(x, n, d, true, 1, svc), 0);
    cr_assert(sv[1] / sv[0] < 0.01, "raw: sv1/sv0 = %g, expected < 0.01", sv[1] / sv[0]);
    cr_assert(svc[1] / svc[0] > 0.3, "centered: sv1/sv0 = %g, expected > 0.3", svc[1] / svc[0]);
    for (int i = 1; i < d; i++) cr_assert(sv[i] <= sv[i - 1], "not sorted descending at %d", i);
}
