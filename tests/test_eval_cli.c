// `sembed eval` end to end on tests/fixtures/sts-tiny with the committed bert-tiny fixture
// (converted at test time): the Spearman / Pearson it reports must equal a computation done here
// independently (cosines from the library API, ranks by counting, no code shared with
// train/metrics.c or train/evalsets.c).
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/model.h"
#include "testutil.h"

// ---------------------------------------------------------------- independent statistics

// Average rank by counting: 1 + #smaller + (#equal - 1) / 2. O(n^2), obviously right.
static void ranks_by_counting(const double *v, size_t n, double *r) {
    for (size_t i = 0; i < n; i++) {
        size_t less = 0, eq = 0;
        for (size_t j = 0; j < n; j++) {
            less += v[j] < v[i];
            eq += v[j] == v[i];
        }
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

static double spearman_plain(const double *x, const double *y, size_t n) {
    double *rx = malloc(n * sizeof *rx), *ry = malloc(n * sizeof *ry);
    ranks_by_counting(x, n, rx);
    ranks_by_counting(y, n, ry);
    double r = pearson_plain(rx, ry, n);
    free(rx);
    free(ry);
    return r;
}

// ---------------------------------------------------------------- fixture

struct pairs {
    size_t n;
    char *s1[16], *s2[16];
    double gold[16];
};

// The STS-B layout fixture read with sscanf-free splitting (fields 5, 6, 7).
static void read_stsb(const char *path, struct pairs *p) {
    size_t len;
    char *buf = tu_read_file(path, &len);
    cr_assert_not_null(buf, "cannot read %s", path);
    p->n = 0;
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        char *f[7];
        int k = 0;
        for (char *s = line; k < 7; k++) {
            f[k] = s;
            char *t = strchr(s, '\t');
            if (!t) break;
            *t = 0;
            s = t + 1;
        }
        cr_assert_eq(k, 6, "fixture line has %d tabs", k);
        p->gold[p->n] = atof(f[4]);
        p->s1[p->n] = strdup(f[5]);
        p->s2[p->n] = strdup(f[6]);
        p->n++;
    }
    free(buf);
}

static void add_sts_set(const char *dir, const char *name, struct pairs *p) {
    char *in_path, *gs_path;
    cr_assert(asprintf(&in_path, "%s/STS.input.%s.txt", dir, name) > 0);
    cr_assert(asprintf(&gs_path, "%s/STS.gs.%s.txt", dir, name) > 0);
    char *in = tu_read_file(in_path, NULL), *gs = tu_read_file(gs_path, NULL);
    cr_assert(in && gs, "cannot read %s / %s", in_path, gs_path);
    char *si = in, *sg = gs;
    while (*si) {
        char *ei = strchr(si, '\n'), *eg = strchr(sg, '\n');
        *ei = 0;
        *eg = 0;
        if (*sg) { // empty gold: unscored
            char *tab = strchr(si, '\t');
            *tab = 0;
            p->s1[p->n] = strdup(si);
            p->s2[p->n] = strdup(tab + 1);
            p->gold[p->n++] = atof(sg);
        }
        si = ei + 1;
        sg = eg + 1;
    }
    free(in);
    free(gs);
    free(in_path);
    free(gs_path);
}

static void free_pairs(struct pairs *p) {
    for (size_t i = 0; i < p->n; i++) free(p->s1[i]), free(p->s2[i]);
}

// Cosines of the pairs with the library, pooling mean (as the converted model is told to use).
static void cosines(const char *model_path, const struct pairs *p, double *cos) {
    struct sembed_model *m;
    cr_assert_eq(sembed_model_load(model_path, NULL, &m), 0, "cannot load %s", model_path);
    struct sembed_context_params cp = sembed_context_default_params();
    cp.n_threads = 1;
    struct sembed_context *ctx;
    cr_assert_eq(sembed_context_create(m, &cp, &ctx), 0);
    size_t d = sembed_model_dim(m);
    float *a = malloc(p->n * d * sizeof *a), *b = malloc(p->n * d * sizeof *b);
    cr_assert_eq(sembed_embed_texts(ctx, (const char *const *)p->s1, p->n, a), 0);
    cr_assert_eq(sembed_embed_texts(ctx, (const char *const *)p->s2, p->n, b), 0);
    for (size_t i = 0; i < p->n; i++) {
        double ab = 0, aa = 0, bb = 0;
        for (size_t k = 0; k < d; k++) {
            ab += (double)a[i * d + k] * b[i * d + k];
            aa += (double)a[i * d + k] * a[i * d + k];
            bb += (double)b[i * d + k] * b[i * d + k];
        }
        cos[i] = ab / sqrt(aa * bb);
    }
    free(a);
    free(b);
    sembed_context_free(ctx);
    sembed_model_free(m);
}

static char *g_dir, *g_model;

static void make_model(void) {
    g_dir = tu_mkdtemp();
    cr_assert_not_null(g_dir);
    g_model = tu_path(g_dir, "tiny.semb");
    char *cmd;
    cr_assert(asprintf(&cmd, "'%s' convert '%s/tests/fixtures/bert-tiny' -o '%s' --pooling mean 2>&1", tu_cli(),
                       tu_source_dir(), g_model) > 0);
    char *out = NULL;
    int st = tu_run(cmd, &out);
    cr_assert_eq(st, 0, "%s failed (%d):\n%s", cmd, st, out ? out : "");
    free(out);
    free(cmd);
}

static void cleanup(void) {
    tu_rmtree(g_dir);
    free(g_dir);
    free(g_model);
}

static json_object *run_eval(const char *sts_args) {
    char *json_path = tu_path(g_dir, "r.json"), *cmd, *out = NULL;
    cr_assert(asprintf(&cmd, "'%s' eval -m '%s' %s --threads 1 --json '%s'", tu_cli(), g_model, sts_args,
                       json_path) > 0);
    int st = tu_run(cmd, &out);
    cr_assert_eq(st, 0, "%s: exit %d\n%s", cmd, st, out ? out : "");
    cr_assert(out && strstr(out, "spearman"), "no table on stdout:\n%s", out ? out : "");
    json_object *j = json_object_from_file(json_path);
    cr_assert_not_null(j, "%s is not JSON", json_path);
    free(out);
    free(cmd);
    free(json_path);
    return j;
}

static double jget(json_object *o, const char *path) {
    // path: dot-separated keys; numeric parts index arrays
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_object *cur = o;
    for (char *k = strtok(buf, "."); k; k = strtok(NULL, ".")) {
        if (json_object_is_type(cur, json_type_array)) cur = json_object_array_get_idx(cur, (size_t)atoi(k));
        else cr_assert(json_object_object_get_ex(cur, k, &cur), "JSON has no '%s' (in %s)", k, path);
        cr_assert_not_null(cur, "JSON %s is null", path);
    }
    return json_object_get_double(cur);
}

TestSuite(eval_cli, .init = make_model, .fini = cleanup);

Test(eval_cli, stsb_file_spearman_matches_hand_computation) {
    char *fx = tu_path(tu_source_dir(), "tests/fixtures/sts-tiny/sts-tiny.csv");
    struct pairs p;
    read_stsb(fx, &p);
    cr_assert_eq(p.n, 8);
    // Gold average ranks by hand (README): 5.0 3.8 0.5 3.8 1.2 4.6 2.0 0.0 -> 8 5.5 2 5.5 3 7 4 1.
    static const double want_rank[8] = {8, 5.5, 2, 5.5, 3, 7, 4, 1};
    double rg[8];
    ranks_by_counting(p.gold, 8, rg);
    for (int i = 0; i < 8; i++) cr_assert_eq(rg[i], want_rank[i], "gold rank %d: %g", i, rg[i]);

    double cos[8];
    cosines(g_model, &p, cos);
    double want_sp = 100 * spearman_plain(cos, p.gold, 8), want_pe = 100 * pearson_plain(cos, p.gold, 8);
    char *arg;
    cr_assert(asprintf(&arg, "--sts '%s'", fx) > 0);
    json_object *j = run_eval(arg);
    double sp = jget(j, "tasks.0.sets.0.spearman"), pe = jget(j, "tasks.0.sets.0.pearson");
    cr_log_info("cosines %.4f %.4f %.4f %.4f %.4f %.4f %.4f %.4f -> spearman %.6f", cos[0], cos[1], cos[2], cos[3],
                cos[4], cos[5], cos[6], cos[7], want_sp);
    cr_assert(fabs(sp - want_sp) < 1e-9, "spearman: expected %.12f (by hand), got %.12f", want_sp, sp);
    cr_assert(fabs(pe - want_pe) < 1e-6, "pearson: expected %.9f, got %.9f", want_pe, pe);
    cr_assert_eq(jget(j, "tasks.0.sets.0.n"), 8);
    cr_assert(fabs(jget(j, "tasks.0.all.spearman") - want_sp) < 1e-9, "single set: all == the set");
    json_object *pool;
    cr_assert(json_object_object_get_ex(j, "pooling", &pool));
    cr_assert_str_eq(json_object_get_string(pool), "mean", "pooling from the file");
    json_object_put(j);
    free(arg);
    free(fx);
    free_pairs(&p);
}

Test(eval_cli, sts_folder_all_mean_wmean) {
    char *dir = tu_path(tu_source_dir(), "tests/fixtures/sts-tiny/sts12");
    struct pairs x = {0}, y = {0}, both = {0};
    add_sts_set(dir, "x", &x);
    add_sts_set(dir, "y", &y);
    add_sts_set(dir, "x", &both);
    add_sts_set(dir, "y", &both);
    cr_assert_eq(x.n, 3, "x: the empty gold line is unscored");
    cr_assert_eq(y.n, 3);
    double cx[3], cy[3], call[6];
    cosines(g_model, &x, cx);
    cosines(g_model, &y, cy);
    cosines(g_model, &both, call);
    double sx = 100 * spearman_plain(cx, x.gold, 3), sy = 100 * spearman_plain(cy, y.gold, 3);
    double sall = 100 * spearman_plain(call, both.gold, 6);
    char *arg;
    cr_assert(asprintf(&arg, "--sts '%s'", dir) > 0);
    json_object *j = run_eval(arg);
    cr_assert(fabs(jget(j, "tasks.0.sets.0.spearman") - sx) < 1e-9, "x: expected %g", sx);
    cr_assert(fabs(jget(j, "tasks.0.sets.1.spearman") - sy) < 1e-9, "y: expected %g", sy);
    cr_assert(fabs(jget(j, "tasks.0.all.spearman") - sall) < 1e-9, "all: expected %g, got %g", sall,
              jget(j, "tasks.0.all.spearman"));
    cr_assert(fabs(jget(j, "tasks.0.mean.spearman") - (sx + sy) / 2) < 1e-9, "mean");
    cr_assert(fabs(jget(j, "tasks.0.wmean.spearman") - (3 * sx + 3 * sy) / 6) < 1e-9, "wmean");
    cr_assert_eq(jget(j, "tasks.0.sets.0.unscored"), 1);
    json_object_put(j);
    free(arg);
    free(dir);
    free_pairs(&x);
    free_pairs(&y);
    free_pairs(&both);
}

Test(eval_cli, usage_and_failures) {
    char *cmd, *out = NULL;
    cr_assert(asprintf(&cmd, "'%s' eval --help", tu_cli()) > 0);
    cr_assert_eq(tu_run(cmd, &out), 0, "--help exit status");
    cr_assert(strstr(out, "usage: sembed eval"), "--help prints usage on stdout:\n%s", out);
    free(out);
    free(cmd);
    cr_assert(asprintf(&cmd, "'%s' eval -m '%s' --bogus 2>/dev/null", tu_cli(), g_model) > 0);
    cr_assert_eq(tu_run(cmd, NULL), 2, "unknown flag: exit 2");
    free(cmd);
    cr_assert(asprintf(&cmd, "'%s' eval -m '%s' 2>/dev/null", tu_cli(), g_model) > 0);
    cr_assert_eq(tu_run(cmd, NULL), 2, "no --sts: exit 2");
    free(cmd);
    cr_assert(asprintf(&cmd, "'%s' eval -m '%s' --sts '%s/nope.csv' 2>/dev/null", tu_cli(), g_model, g_dir) > 0);
    cr_assert_eq(tu_run(cmd, NULL), 1, "missing set: exit 1");
    free(cmd);
    cr_assert(asprintf(&cmd, "'%s' eval -m '%s' --sts x --pooling sideways 2>/dev/null", tu_cli(), g_model) > 0);
    cr_assert_eq(tu_run(cmd, NULL), 2, "bad pooling: exit 2");
    free(cmd);
}

Test(eval_cli, analyze_writes_svgs_and_json) {
    char *fx = tu_path(tu_source_dir(), "tests/fixtures/sts-tiny/sts-tiny.csv");
    char *svg = tu_path(g_dir, "svg"), *js = tu_path(g_dir, "a.json"), *csv = tu_path(g_dir, "log.csv");
    const char *log = "step,loss,lr,dev_spearman\n0,9.5,0,\n10,7.0,1e-4,12.5\n20,6.1,8e-5,20.0\n";
    cr_assert_eq(tu_write_file(csv, log, strlen(log)), 0);
    char *cmd, *out = NULL;
    cr_assert(asprintf(&cmd, "'%s' analyze -m '%s' --label tiny --sts '%s' --svg-dir '%s' --log '%s' --json '%s' "
                             "--threads 1",
                       tu_cli(), g_model, fx, svg, csv, js) > 0);
    int st = tu_run(cmd, &out);
    cr_assert_eq(st, 0, "%s: exit %d\n%s", cmd, st, out ? out : "");
    cr_assert(strstr(out, "l_align"), "table:\n%s", out);
    static const char *files[] = {"align_uniform.svg", "spectrum.svg", "training.svg"};
    for (int i = 0; i < 3; i++) {
        char *p = tu_path(svg, files[i]);
        size_t len;
        char *txt = tu_read_file(p, &len);
        cr_assert_not_null(txt, "%s was not written", p);
        cr_assert(strstr(txt, "<svg") && strstr(txt, "</svg>"), "%s is not a complete SVG", p);
        free(txt);
        free(p);
    }
    json_object *j = json_object_from_file(js);
    cr_assert_not_null(j);
    // positives: gold >= 4: pairs 1 (5.0) and 6 (4.6); 16 sentences, one repeated -> 15 distinct
    cr_assert_eq(jget(j, "n_positive"), 2, "positive pairs (gold >= 4)");
    cr_assert_eq(jget(j, "n_sentences"), 15, "distinct sentences ('a man is playing a guitar .' twice)");
    double align = jget(j, "models.0.l_align"), unif = jget(j, "models.0.l_uniform");
    cr_assert(align >= 0 && align <= 4, "l_align %g outside [0, 4]", align);
    cr_assert(unif <= 0 && unif >= -8, "l_uniform %g outside [-8, 0]", unif);
    cr_assert_eq(jget(j, "models.0.spectrum.0"), 1.0, "spectrum normalised to the largest");
    json_object_put(j);
    free(out);
    free(cmd);
    free(fx);
    free(svg);
    free(js);
    free(csv);
}
