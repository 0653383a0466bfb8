// sembed/eval.h and sembed/info.h, the public functions the Python package uses: sembed_eval_sts on
// tests/fixtures/sts-tiny (bert-tiny converted here through sembed_convert) must give the Spearman
// and Pearson of an independent computation (cosines from sembed_embed_texts, ranks by counting),
// the subset counts of the folder layout, and clean errors.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/convert.h"
#include "sembed/eval.h"
#include "sembed/info.h"
#include "sembed/model.h"
#include "testutil.h"

static char *g_dir, *g_model;
static struct sembed_model *g_m;
static struct sembed_context *g_ctx;

static void setup(void) {
    g_dir = tu_mkdtemp();
    cr_assert_not_null(g_dir);
    g_model = tu_path(g_dir, "tiny.semb");
    char *src = tu_path(tu_source_dir(), "tests/fixtures/bert-tiny");
    struct sembed_convert_params p = sembed_convert_default_params();
    p.src = src;
    p.out = g_model;
    p.pooling = "mean";
    int rc = sembed_convert(&p);
    cr_assert_eq(rc, 0, "convert: %s", sembed_strerror(rc));
    free(src);
    cr_assert_eq(sembed_model_load(g_model, NULL, &g_m), 0);
    struct sembed_context_params cp = sembed_context_default_params();
    cp.n_threads = 1;
    cr_assert_eq(sembed_context_create(g_m, &cp, &g_ctx), 0);
}

static void teardown(void) {
    sembed_context_free(g_ctx);
    sembed_model_free(g_m);
    tu_rmtree(g_dir);
    free(g_dir);
    free(g_model);
}

static void ranks_by_counting(const double *v, size_t n, double *r) {
    for (size_t i = 0; i < n; i++) {
        size_t less = 0, eq = 0;
        for (size_t j = 0; j < n; j++) less += v[j] < v[i], eq += v[j] == v[i];
        r[i] = 1.0 + (double)less + ((double)eq - 1.0) / 2.0;
    }
}

static double pearson_plain(const double *x, const double *y, size_t n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) mx += x[i] / (double)n, my += y[i] / (double)n;
    for (size_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxy / sqrt(sxx * syy);
}

TestSuite(eval_api, .init = setup, .fini = teardown);

Test(eval_api, stsb_file_matches_independent_computation) {
    char *fx = tu_path(tu_source_dir(), "tests/fixtures/sts-tiny/sts-tiny.csv");
    // Read the 8 pairs: fields 5 (score), 6, 7 of each tab-separated line.
    size_t len = 0;
    char *buf = tu_read_file(fx, &len);
    cr_assert_not_null(buf);
    const char *s1[8], *s2[8];
    double gold[8];
    size_t n = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line && n < 8; line = strtok_r(NULL, "\n", &save)) {
        char *f[7] = {0}, *s2save = NULL;
        char *tok = strtok_r(line, "\t", &s2save);
        for (int k = 0; k < 7 && tok; k++, tok = strtok_r(NULL, "\t", &s2save)) f[k] = tok;
        cr_assert_not_null(f[6]);
        gold[n] = strtod(f[4], NULL), s1[n] = f[5], s2[n] = f[6];
        n++;
    }
    cr_assert_eq(n, 8);
    size_t dim = sembed_model_dim(g_m);
    float *e1 = malloc(n * dim * sizeof *e1), *e2 = malloc(n * dim * sizeof *e2);
    cr_assert_eq(sembed_embed_texts(g_ctx, s1, n, e1), 0);
    cr_assert_eq(sembed_embed_texts(g_ctx, s2, n, e2), 0);
    double cos[8], rc_[8], rg[8];
    for (size_t i = 0; i < n; i++) {
        double ab = 0, aa = 0, bb = 0;
        for (size_t j = 0; j < dim; j++) {
            double a = e1[i * dim + j], b = e2[i * dim + j];
            ab += a * b, aa += a * a, bb += b * b;
        }
        cos[i] = ab / sqrt(aa * bb);
    }
    ranks_by_counting(cos, n, rc_);
    ranks_by_counting(gold, n, rg);
    double want_s = 100 * pearson_plain(rc_, rg, n), want_p = 100 * pearson_plain(cos, gold, n);

    struct sembed_eval *ev = NULL;
    int rc = sembed_eval_sts(g_ctx, fx, false, &ev);
    cr_assert_eq(rc, 0, "sembed_eval_sts: %s", sembed_strerror(rc));
    cr_assert_str_eq(sembed_eval_name(ev), "sts-tiny");
    cr_assert_str_eq(sembed_eval_format(ev), "stsb");
    cr_assert_eq(sembed_eval_n_sets(ev), 1);
    struct sembed_eval_score s, all;
    cr_assert_eq(sembed_eval_set(ev, 0, &s), 0);
    sembed_eval_aggregate(ev, &all, NULL, NULL);
    cr_assert_eq(s.n, 8, "pairs: expected 8, got %llu", (unsigned long long)s.n);
    cr_assert(fabs(s.spearman - want_s) < 1e-9, "spearman: expected %.12f, got %.12f", want_s, s.spearman);
    cr_assert(fabs(s.pearson - want_p) < 1e-6, "pearson: expected %.12f, got %.12f", want_p, s.pearson);
    cr_assert_eq(all.spearman, s.spearman, "one set: 'all' must equal the set (%g vs %g)", all.spearman, s.spearman);
    cr_assert_str_eq(all.name, "all");
    sembed_eval_free(ev);
    free(e1);
    free(e2);
    free(buf);
    free(fx);
}

Test(eval_api, sts_folder_counts) {
    char *dir = tu_path(tu_source_dir(), "tests/fixtures/sts-tiny/sts12");
    struct sembed_eval *ev = NULL;
    cr_assert_eq(sembed_eval_sts(g_ctx, dir, true, &ev), 0);
    cr_assert_str_eq(sembed_eval_format(ev), "sts-folder");
    cr_assert_eq(sembed_eval_n_sets(ev), 2);
    struct sembed_eval_score x, y, all, mean, wmean;
    cr_assert_eq(sembed_eval_set(ev, 0, &x), 0);
    cr_assert_eq(sembed_eval_set(ev, 1, &y), 0);
    sembed_eval_aggregate(ev, &all, &mean, &wmean);
    cr_assert_str_eq(x.name, "x");
    cr_assert_eq(x.n, 3, "x: 3 scored pairs expected, got %llu", (unsigned long long)x.n);
    cr_assert_eq(x.n_unscored, 1, "x: 1 unscored pair expected, got %llu", (unsigned long long)x.n_unscored);
    cr_assert_eq(y.n, 3);
    cr_assert_eq(all.n, 6, "all: 6 pairs expected, got %llu", (unsigned long long)all.n);
    cr_assert_eq(all.n_unscored, 1);
    cr_assert(fabs(mean.spearman - (x.spearman + y.spearman) / 2) < 1e-9 || (isnan(mean.spearman)),
              "mean: expected %g, got %g", (x.spearman + y.spearman) / 2, mean.spearman);
    struct sembed_eval_score z;
    cr_assert_eq(sembed_eval_set(ev, 2, &z), SEMBED_EINVAL);
    sembed_eval_free(ev);
    free(dir);
}

Test(eval_api, errors) {
    struct sembed_eval *ev = (struct sembed_eval *)1;
    char *missing = tu_path(g_dir, "absent.csv");
    int rc = sembed_eval_sts(g_ctx, missing, false, &ev);
    cr_assert_neq(rc, 0, "a missing file must fail");
    cr_assert_null(ev, "out must be NULL after a failure");
    cr_assert_eq(sembed_eval_sts(g_ctx, missing, false, NULL), SEMBED_EINVAL);
    cr_assert_eq(sembed_eval_sts(NULL, missing, false, &ev), SEMBED_EINVAL);
    sembed_eval_free(NULL);
    free(missing);
}

Test(eval_api, kernel_isa_names) {
    static const char *known[] = {"ref", "avx2", "avx512", "avxvnni", "avx512vnni", "amx"};
    const char *a = sembed_kernel_isa(), *b = sembed_kernel_isa_best();
    int fa = 0, fb = 0;
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) fa |= !strcmp(a, known[i]), fb |= !strcmp(b, known[i]);
    cr_assert(fa && fb, "unknown kernel names: active '%s', best '%s'", a, b);
}
