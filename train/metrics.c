// train/metrics.c: correlations, SentEval aggregation, alignment/uniformity, spectrum.
#include "train/metrics.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"

// ---------------------------------------------------------------- correlations

double mt_pearson(const double *x, const double *y, size_t n) {
    if (n < 2) return NAN;
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (!(sxx > 0) || !(syy > 0)) return NAN;
    double r = sxy / sqrt(sxx * syy);
    // Rounding can push |r| a hair past 1 for perfectly (anti)correlated inputs.
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

struct mt_keyed {
    double v;
    size_t i;
};

static int cmp_keyed(const void *pa, const void *pb) {
    const struct mt_keyed *a = pa, *b = pb;
    if (a->v < b->v) return -1;
    if (a->v > b->v) return 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

int mt_rank_average(const double *x, size_t n, double *ranks) {
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i])) return sembed_fail(SEMBED_EINVAL, "mt_rank_average", "value %zu of %zu is NaN", i, n);
    if (n > SIZE_MAX / sizeof(struct mt_keyed)) return SEMBED_ENOMEM;
    struct mt_keyed *k = malloc(n * sizeof *k);
    if (!k) return SEMBED_ENOMEM;
    for (size_t i = 0; i < n; i++) k[i] = (struct mt_keyed){x[i], i};
    qsort(k, n, sizeof *k, cmp_keyed);
    // A run of equal values at sorted positions [a, b) holds ranks a+1 .. b: their mean is (a+b+1)/2.
    for (size_t a = 0; a < n;) {
        size_t b = a + 1;
        while (b < n && k[b].v == k[a].v) b++;
        double r = ((double)a + (double)b + 1.0) / 2.0;
        for (size_t j = a; j < b; j++) ranks[k[j].i] = r;
        a = b;
    }
    free(k);
    return 0;
}

int mt_spearman(const double *x, const double *y, size_t n, double *out) {
    *out = NAN;
    if (n < 2) return 0;
    if (n > SIZE_MAX / (2 * sizeof(double))) return SEMBED_ENOMEM;
    double *r = malloc(2 * n * sizeof *r);
    if (!r) return SEMBED_ENOMEM;
    int rc = mt_rank_average(x, n, r);
    if (!rc) rc = mt_rank_average(y, n, r + n);
    if (!rc) *out = mt_pearson(r, r + n, n);
    free(r);
    return rc;
}

// ---------------------------------------------------------------- SentEval aggregation

// SentEval (Conneau & Kiela 2018), senteval/sts.py: per-dataset pearson/spearman, then "all" on
// the concatenation, "mean" and "wmean" (weights = dataset sizes) of the per-dataset values.
int mt_aggregate(const struct mt_subset *sets, size_t n_sets, struct mt_corr *per_set, struct mt_agg *out) {
    memset(out, 0, sizeof *out);
    if (n_sets == 0) return sembed_fail(SEMBED_EINVAL, "mt_aggregate", "no subsets");
    size_t total = 0;
    for (size_t s = 0; s < n_sets; s++) {
        if (sets[s].n == 0) return sembed_fail(SEMBED_EINVAL, "mt_aggregate", "subset %zu is empty", s);
        if (sets[s].n > SIZE_MAX / 2 / sizeof(double) - total) return SEMBED_ENOMEM;
        total += sets[s].n;
    }
    double *sys = malloc(total * sizeof *sys), *gold = malloc(total * sizeof *gold);
    if (!sys || !gold) {
        free(sys);
        free(gold);
        return SEMBED_ENOMEM;
    }
    int rc = 0;
    double msp = 0, mpe = 0, wsp = 0, wpe = 0;
    size_t off = 0;
    for (size_t s = 0; s < n_sets && !rc; s++) {
        const struct mt_subset *t = &sets[s];
        double sp;
        rc = mt_spearman(t->sys, t->gold, t->n, &sp);
        if (rc) break;
        struct mt_corr c = {100.0 * sp, 100.0 * mt_pearson(t->sys, t->gold, t->n)};
        if (per_set) per_set[s] = c;
        msp += c.spearman;
        mpe += c.pearson;
        wsp += (double)t->n * c.spearman;
        wpe += (double)t->n * c.pearson;
        memcpy(sys + off, t->sys, t->n * sizeof *sys);
        memcpy(gold + off, t->gold, t->n * sizeof *gold);
        off += t->n;
    }
    if (!rc) {
        double sp;
        rc = mt_spearman(sys, gold, total, &sp);
        out->all = (struct mt_corr){100.0 * sp, 100.0 * mt_pearson(sys, gold, total)};
        out->mean = (struct mt_corr){msp / (double)n_sets, mpe / (double)n_sets};
        out->wmean = (struct mt_corr){wsp / (double)total, wpe / (double)total};
        out->n_total = total;
    }
    free(sys);
    free(gold);
    return rc;
}

// ---------------------------------------------------------------- geometry

static double dot_f(const float *a, const float *b, size_t d) {
    double s = 0;
    for (size_t k = 0; k < d; k++) s += (double)a[k] * (double)b[k];
    return s;
}

size_t mt_normalize_rows(float *x, size_t n, size_t d) {
    size_t zero = 0;
    for (size_t i = 0; i < n; i++) {
        float *r = x + i * d;
        double nn = sqrt(dot_f(r, r, d));
        if (nn == 0) {
            zero++;
            continue;
        }
        for (size_t k = 0; k < d; k++) r[k] = (float)(r[k] / nn);
    }
    return zero;
}

double mt_cosine(const float *a, const float *b, size_t d) {
    double na = dot_f(a, a, d), nb = dot_f(b, b, d);
    if (na == 0 || nb == 0) return 0;
    return dot_f(a, b, d) / sqrt(na * nb);
}

double mt_alignment(const float *a, const float *b, size_t n, size_t d) {
    if (n == 0) return NAN;
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        const float *p = a + i * d, *q = b + i * d;
        double r = 0;
        for (size_t k = 0; k < d; k++) {
            double t = (double)p[k] - (double)q[k];
            r += t * t;
        }
        s += r;
    }
    return s / (double)n;
}

double mt_uniformity(const float *x, size_t n, size_t d, double t, int n_threads) {
    if (n < 2) return NAN;
    double *row = malloc(n * sizeof *row);
    if (!row) return NAN;
    int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
    // Row i sums over j > i; rows are summed in order afterwards, so the result does not depend
    // on how rows were spread over threads.
#pragma omp parallel for num_threads(nt) schedule(dynamic, 16)
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        double s = 0;
        for (size_t j = i + 1; j < n; j++) {
            const float *xj = x + j * d;
            double d2 = 0;
            for (size_t k = 0; k < d; k++) {
                double u = (double)xi[k] - (double)xj[k];
                d2 += u * u;
            }
            s += exp(-t * d2);
        }
        row[i] = s;
    }
    double total = 0;
    for (size_t i = 0; i < n; i++) total += row[i];
    free(row);
    double pairs = (double)n * (double)(n - 1) / 2.0;
    return log(total / pairs);
}

double mt_mean_cosine(const float *x, size_t n, size_t d) {
    if (n < 2) return NAN;
    double *sum = calloc(d ? d : 1, sizeof *sum);
    if (!sum) return NAN;
    double sq = 0;
    for (size_t i = 0; i < n; i++) {
        const float *r = x + i * d;
        for (size_t k = 0; k < d; k++) {
            sum[k] += r[k];
            sq += (double)r[k] * (double)r[k];
        }
    }
    double ss = 0;
    for (size_t k = 0; k < d; k++) ss += sum[k] * sum[k];
    free(sum);
    return (ss - sq) / ((double)n * (double)(n - 1));
}

// ---------------------------------------------------------------- symmetric eigenvalues

// Householder reduction of the symmetric a (n x n, full storage, both triangles valid) to
// tridiagonal form: diag[n], off[n-1] (off[i] = T[i+1][i]). GVL alg. 8.3.1, eigenvalues only.
static int householder_tridiag(double *a, size_t n, double *diag, double *off) {
    double *v = malloc(2 * n * sizeof *v);
    if (!v) return SEMBED_ENOMEM;
    double *p = v + n;
    for (size_t k = 0; k + 2 < n; k++) {
        size_t m = n - k - 1; // length of the column below the diagonal
        double *x = v;        // x = a[k+1.., k]
        double scale = 0;
        for (size_t i = 0; i < m; i++) {
            x[i] = a[(k + 1 + i) * n + k];
            scale = fmax(scale, fabs(x[i]));
        }
        if (scale == 0) {
            off[k] = 0;
            continue;
        }
        // Scale to avoid overflow/underflow in the norm.
        double nrm = 0;
        for (size_t i = 0; i < m; i++) {
            x[i] /= scale;
            nrm += x[i] * x[i];
        }
        nrm = sqrt(nrm);
        double alpha = x[0] > 0 ? -nrm : nrm; // opposite sign of x0: no cancellation in v0
        x[0] -= alpha;                        // v = x - alpha e1
        double vv = 0;
        for (size_t i = 0; i < m; i++) vv += x[i] * x[i];
        off[k] = alpha * scale;
        if (vv == 0) continue;
        double beta = 2.0 / vv;
        // p = beta * A22 v ; w = p - (beta/2)(v.p) v ; A22 -= v w^T + w v^T
        double *A22 = a + (k + 1) * n + (k + 1);
        double vp = 0;
        for (size_t i = 0; i < m; i++) {
            const double *row = A22 + i * n;
            double s = 0;
            for (size_t j = 0; j < m; j++) s += row[j] * x[j];
            p[i] = beta * s;
            vp += x[i] * p[i];
        }
        double K = beta * vp / 2.0;
        for (size_t i = 0; i < m; i++) p[i] -= K * x[i];
        for (size_t i = 0; i < m; i++) {
            double *row = A22 + i * n;
            for (size_t j = 0; j < m; j++) row[j] -= x[i] * p[j] + p[i] * x[j];
        }
    }
    for (size_t i = 0; i < n; i++) diag[i] = a[i * n + i];
    if (n >= 2) off[n - 2] = a[(n - 1) * n + (n - 2)];
    free(v);
    return 0;
}

// One implicit symmetric QR step with the Wilkinson shift on the unreduced block [lo, hi] of the
// tridiagonal (d, e). GVL alg. 8.3.2: the rotation that a shifted QR step would apply to the first
// column is applied, and the bulge it creates is chased down the band.
static void tridiag_qr_step(double *d, double *e, size_t lo, size_t hi) {
    double dd = (d[hi - 1] - d[hi]) / 2.0, b = e[hi - 1];
    double mu = d[hi] - b * b / (dd + copysign(hypot(dd, b), dd));
    double x = d[lo] - mu, z = e[lo], bulge = 0;
    for (size_t k = lo; k < hi; k++) {
        if (k > lo) {
            x = e[k - 1];
            z = bulge;
        }
        double r = hypot(x, z), c = 1, s = 0;
        if (r != 0) {
            c = x / r;
            s = -z / r;
        }
        if (k > lo) e[k - 1] = r;
        // [a_k b_k; b_k a_k1] <- R B R^T with R = [c -s; s c]
        double ak = d[k], ak1 = d[k + 1], bk = e[k];
        d[k] = c * c * ak - 2 * c * s * bk + s * s * ak1;
        d[k + 1] = s * s * ak + 2 * c * s * bk + c * c * ak1;
        e[k] = c * s * (ak - ak1) + (c * c - s * s) * bk;
        if (k + 1 < hi) {
            bulge = -s * e[k + 1];
            e[k + 1] *= c;
        }
    }
}

static bool negligible(double e, double d1, double d2) {
    return fabs(e) <= DBL_EPSILON * (fabs(d1) + fabs(d2)) || fabs(e) < DBL_MIN;
}

static int cmp_desc(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    return a > b ? -1 : a < b;
}

int mt_sym_eigenvalues(double *a, size_t n, double *w) {
    if (n == 0) return 0;
    if (n > SIZE_MAX / sizeof(double) / n) return SEMBED_ENOMEM;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j <= i; j++) {
            double v = a[i * n + j];
            if (!isfinite(v))
                return sembed_fail(SEMBED_EINVAL, "mt_sym_eigenvalues", "element (%zu, %zu) is not finite", i, j);
            a[j * n + i] = v; // symmetrise from the lower triangle
        }
    double *e = malloc(n * sizeof *e);
    if (!e) return SEMBED_ENOMEM;
    int rc = householder_tridiag(a, n, w, e);
    if (rc) {
        free(e);
        return rc;
    }
    size_t hi = n - 1, iter = 0, max_iter = 30 * n + 100;
    while (hi > 0) {
        if (negligible(e[hi - 1], w[hi - 1], w[hi])) {
            e[hi - 1] = 0;
            hi--;
            continue;
        }
        size_t lo = hi - 1;
        while (lo > 0 && !negligible(e[lo - 1], w[lo - 1], w[lo])) lo--;
        if (lo > 0) e[lo - 1] = 0;
        if (++iter > max_iter) {
            free(e);
            return sembed_fail(SEMBED_EINVAL, "mt_sym_eigenvalues",
                               "QR did not converge after %zu steps (n %zu, block [%zu, %zu])", iter - 1, n, lo, hi);
        }
        tridiag_qr_step(w, e, lo, hi);
    }
    free(e);
    qsort(w, n, sizeof *w, cmp_desc);
    return 0;
}

int mt_singular_values(const float *x, size_t n, size_t d, bool center, int n_threads, double *sv) {
    size_t m = n < d ? n : d;
    if (m == 0) return 0;
    if (n > SIZE_MAX / sizeof(double) / d || m > SIZE_MAX / sizeof(double) / m) return SEMBED_ENOMEM;
    // Column-major copy in double when the Gram is d x d (dots over rows), row-major otherwise.
    bool cols = d <= n;
    double *c = malloc(n * d * sizeof *c), *g = malloc(m * m * sizeof *g);
    if (!c || !g) {
        free(c);
        free(g);
        return SEMBED_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < d; k++) {
            double v = x[i * d + k];
            if (!isfinite(v)) {
                free(c);
                free(g);
                return sembed_fail(SEMBED_EINVAL, "mt_singular_values", "element (%zu, %zu) is not finite", i, k);
            }
            c[cols ? k * n + i : i * d + k] = v;
        }
    if (center)
        for (size_t k = 0; k < d; k++) {
            double mean = 0;
            for (size_t i = 0; i < n; i++) mean += c[cols ? k * n + i : i * d + k];
            mean /= (double)n;
            for (size_t i = 0; i < n; i++) c[cols ? k * n + i : i * d + k] -= mean;
        }
    size_t len = cols ? n : d; // vector length of each Gram entry's dot product
    int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 4)
    for (size_t a = 0; a < m; a++) {
        const double *va = c + a * len;
        for (size_t b = 0; b <= a; b++) {
            const double *vb = c + b * len;
            double s = 0;
            for (size_t i = 0; i < len; i++) s += va[i] * vb[i];
            g[a * m + b] = s;
        }
    }
    free(c);
    int rc = mt_sym_eigenvalues(g, m, sv);
    free(g);
    if (rc) return rc;
    for (size_t i = 0; i < m; i++) sv[i] = sv[i] > 0 ? sqrt(sv[i]) : 0;
    return 0;
}
