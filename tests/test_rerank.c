// Cross-encoders: BertForSequenceClassification (1 and 3 labels) and XLMRobertaForSequenceClassification
// checkpoints converted and scored against the PyTorch twin (models/gen/rerank_fixture.py), through
// sembed_rerank and `sembed rerank`; plus the errors an embedding model or bad input gets.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/convert.h"
#include "sembed/model.h"
#include "testutil.h"

static const char *fixture_dir(void) {
    static char path[4096];
    if (tu_run("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1", NULL) != 0) return NULL;
    snprintf(path, sizeof path, "%s/rerank-fixtures", SEMBED_BINARY_DIR);
    char *done = tu_path(path, ".done");
    if (!tu_file_exists(done)) {
        char *cmd = NULL;
        cr_assert(asprintf(&cmd, "/usr/bin/python3 %s/models/gen/rerank_fixture.py --out %s >&2", tu_source_dir(), path) > 0);
        int rc = tu_run(cmd, NULL);
        free(cmd);
        cr_assert_eq(rc, 0, "rerank_fixture.py failed (exit %d)", rc);
        tu_write_file(done, "ok\n", 3);
    }
    free(done);
    return path;
}

#define NEED_FIXTURES(var)                                                                                  \
    const char *var = fixture_dir();                                                                        \
    if (!var) cr_skip_test("/usr/bin/python3 with torch is not available: PyTorch fixtures skipped")

// Convert fx/<name> into dir/<name>.semb with dtype; returns the path (heap).
static char *convert(const char *fx, const char *name, enum sembed_dtype dt, const char *dir) {
    char *src = tu_path(fx, name), out[4096];
    snprintf(out, sizeof out, "%s/%s-%s.semb", dir, name, sembed_dtype_name(dt));
    struct sembed_convert_params p = sembed_convert_default_params();
    p.src = src;
    p.out = out;
    p.dtype = dt;
    int rc = sembed_convert(&p);
    cr_assert_eq(rc, 0, "convert %s (%s): %s", name, sembed_dtype_name(dt), sembed_strerror(rc));
    free(src);
    return strdup(out);
}

struct expected {
    json_object *root, *docs, *model;
    const char *query;
    size_t n;
    uint32_t labels;
};

static struct expected load_expected(const char *fx, const char *name) {
    char *p = tu_path(fx, "expected.json");
    struct expected e = {0};
    e.root = json_object_from_file(p);
    cr_assert(e.root, "cannot read %s", p);
    free(p);
    e.query = json_object_get_string(json_object_object_get(e.root, "query"));
    e.docs = json_object_object_get(e.root, "docs");
    e.n = json_object_array_length(e.docs);
    e.model = json_object_object_get(json_object_object_get(e.root, "models"), name);
    cr_assert(e.model, "expected.json has no model %s", name);
    e.labels = (uint32_t)json_object_get_int(json_object_object_get(e.model, "num_labels"));
    return e;
}

static double logit(const struct expected *e, size_t i, uint32_t k) {
    json_object *row = json_object_array_get_idx(json_object_object_get(e->model, "logits"), i);
    return json_object_get_double(json_object_array_get_idx(row, k));
}

static int cmp_desc(const void *a, const void *b, void *arg) {
    const double *s = arg;
    double x = s[*(const size_t *)a], y = s[*(const size_t *)b];
    return x < y ? 1 : x > y ? -1 : 0;
}

// Scores (raw and activated) within tol of the twin, and the same ranking by the first label.
static void check_model(const char *fx, const char *name, enum sembed_dtype dt, double tol) {
    char *dir = tu_mkdtemp();
    char *path = convert(fx, name, dt, dir);
    struct expected e = load_expected(fx, name);
    struct sembed_model *m = NULL;
    cr_assert_eq(sembed_model_load(path, NULL, &m), 0);
    cr_assert_eq(sembed_model_num_labels(m), e.labels, "num_labels %u, expected %u", sembed_model_num_labels(m), e.labels);
    cr_assert_eq(sembed_model_dim(m), e.labels);
    struct sembed_context *ctx = NULL;
    cr_assert_eq(sembed_context_create(m, NULL, &ctx), 0);
    const char **docs = calloc(e.n, sizeof *docs);
    float *raw = calloc(e.n * e.labels, sizeof *raw), *act = calloc(e.n * e.labels, sizeof *act);
    double *want = calloc(e.n, sizeof *want), *got = calloc(e.n, sizeof *got);
    size_t *ow = calloc(e.n, sizeof *ow), *og = calloc(e.n, sizeof *og);
    cr_assert(docs && raw && act && want && got && ow && og);
    for (size_t i = 0; i < e.n; i++) docs[i] = json_object_get_string(json_object_array_get_idx(e.docs, i));
    cr_assert_eq(sembed_rerank(ctx, e.query, docs, e.n, true, raw), 0);
    cr_assert_eq(sembed_rerank(ctx, e.query, docs, e.n, false, act), 0);
    double worst = 0.0, worst_act = 0.0;
    for (size_t i = 0; i < e.n; i++)
        for (uint32_t k = 0; k < e.labels; k++) {
            double w = logit(&e, i, k), d = fabs(w - raw[i * e.labels + k]);
            cr_assert(d <= tol, "%s %s: doc %zu label %u: logit %.7f, expected %.7f (diff %.2e > %.1e)", name,
                      sembed_dtype_name(dt), i, k, (double)raw[i * e.labels + k], w, d, tol);
            worst = d > worst ? d : worst;
            double wa = e.labels == 1 ? 1.0 / (1.0 + exp(-w)) : w; // the checkpoints: sigmoid for 1 label, identity for 3
            double da = fabs(wa - act[i * e.labels + k]);
            cr_assert(da <= tol, "%s: doc %zu label %u: score %.7f, expected %.7f", name, i, k,
                      (double)act[i * e.labels + k], wa);
            worst_act = da > worst_act ? da : worst_act;
        }
    for (size_t i = 0; i < e.n; i++) {
        want[i] = logit(&e, i, 0);
        got[i] = raw[i * e.labels];
        ow[i] = og[i] = i;
    }
    qsort_r(ow, e.n, sizeof *ow, cmp_desc, want);
    qsort_r(og, e.n, sizeof *og, cmp_desc, got);
    for (size_t i = 0; i < e.n; i++)
        cr_assert_eq(ow[i], og[i], "%s %s: rank %zu is doc %zu, the twin ranks doc %zu there", name, sembed_dtype_name(dt),
                     i, og[i], ow[i]);
    // One document at a time gives the same scores as the list (no dependence on the batch).
    for (size_t i = 0; i < e.n; i++) {
        float one[8];
        cr_assert_eq(sembed_rerank(ctx, e.query, &docs[i], 1, true, one), 0);
        cr_assert(!memcmp(one, raw + i * e.labels, e.labels * sizeof(float)), "%s: doc %zu alone differs", name, i);
    }
    fprintf(stderr, "%s %s: %zu docs, max |logit - twin| %.2e, max |score - twin| %.2e\n", name, sembed_dtype_name(dt),
            e.n, worst, worst_act);
    free(docs), free(raw), free(act), free(want), free(got), free(ow), free(og);
    sembed_context_free(ctx);
    sembed_model_free(m);
    json_object_put(e.root);
    free(path);
    tu_rmtree(dir);
    free(dir);
}

Test(rerank, bert_one_label_sigmoid_matches_twin, .timeout = 300) {
    NEED_FIXTURES(fx);
    check_model(fx, "ce-bert", SEMBED_DTYPE_F32, 1e-4);
}
Test(rerank, bert_three_labels_raw_matches_twin, .timeout = 300) {
    NEED_FIXTURES(fx);
    check_model(fx, "ce-bert3", SEMBED_DTYPE_F32, 1e-4);
}
Test(rerank, xlm_roberta_head_matches_twin, .timeout = 300) {
    NEED_FIXTURES(fx);
    check_model(fx, "ce-xlmr", SEMBED_DTYPE_F32, 1e-4);
}
// int8 encoder (q8 weights, int8 kernels; the head stays f32): same ranking, logits within 2e-2.
Test(rerank, q8_keeps_the_ranking, .timeout = 300) {
    NEED_FIXTURES(fx);
    check_model(fx, "ce-bert", SEMBED_DTYPE_Q8_ROW, 2e-2);
    check_model(fx, "ce-xlmr", SEMBED_DTYPE_Q8_ROW, 2e-2);
}

Test(rerank, cli_sorts_and_prints_json, .timeout = 300) {
    NEED_FIXTURES(fx);
    char *dir = tu_mkdtemp();
    char *path = convert(fx, "ce-bert", SEMBED_DTYPE_F32, dir);
    struct expected e = load_expected(fx, "ce-bert");
    // Documents on stdin, best first, JSON lines.
    char *in = tu_path(dir, "docs.txt"), *cmd = NULL, *out = NULL;
    FILE *f = fopen(in, "w");
    cr_assert(f);
    for (size_t i = 0; i < e.n; i++) fprintf(f, "%s\n", json_object_get_string(json_object_array_get_idx(e.docs, i)));
    fclose(f);
    cr_assert(asprintf(&cmd, "%s rerank -m %s --sort --json '%s' < %s", tu_cli(), path, e.query, in) > 0);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", cmd);
    double prev = INFINITY;
    size_t lines = 0;
    for (char *save = NULL, *ln = strtok_r(out, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save), lines++) {
        json_object *o = json_tokener_parse(ln);
        cr_assert(o, "not JSON: %s", ln);
        size_t idx = (size_t)json_object_get_int(json_object_object_get(o, "index"));
        double s = json_object_get_double(json_object_object_get(o, "score"));
        cr_assert(idx < e.n);
        cr_assert(s <= prev, "not sorted: %g after %g", s, prev);
        cr_assert(fabs(s - 1.0 / (1.0 + exp(-logit(&e, idx, 0)))) < 1e-4, "doc %zu: %g", idx, s);
        cr_assert_str_eq(json_object_get_string(json_object_object_get(o, "text")),
                         json_object_get_string(json_object_array_get_idx(e.docs, idx)));
        prev = s;
        json_object_put(o);
    }
    cr_assert_eq(lines, e.n);
    free(cmd), free(out);
    // Errors: an embedding model, a --pairs line without TAB, no query.
    char *emb = tu_path(tu_source_dir(), "tests/fixtures/bert-tiny");
    char *emb_semb = tu_path(dir, "emb.semb");
    struct sembed_convert_params p = sembed_convert_default_params();
    p.src = emb;
    p.out = emb_semb;
    cr_assert_eq(sembed_convert(&p), 0);
    cr_assert(asprintf(&cmd, "%s rerank -m %s q d 2>&1", tu_cli(), emb_semb) > 0);
    int st = tu_run(cmd, &out);
    cr_assert(st != 0 && strstr(out, "not a cross-encoder"), "exit %d: %s", st, out);
    free(cmd), free(out);
    cr_assert(asprintf(&cmd, "echo 'no tab here' | %s rerank -m %s --pairs 2>&1", tu_cli(), path) > 0);
    st = tu_run(cmd, &out);
    cr_assert(st != 0 && strstr(out, "no TAB"), "exit %d: %s", st, out);
    free(cmd), free(out);
    cr_assert(asprintf(&cmd, "%s rerank -m %s 2>&1", tu_cli(), path) > 0);
    st = tu_run(cmd, &out);
    cr_assert(st == 2 && strstr(out, "QUERY"), "exit %d: %s", st, out);
    free(cmd), free(out);
    // The API refuses to rerank with an embedding model.
    struct sembed_model *m = NULL;
    struct sembed_context *ctx = NULL;
    cr_assert_eq(sembed_model_load(emb_semb, NULL, &m), 0);
    cr_assert_eq(sembed_model_num_labels(m), 0);
    cr_assert_eq(sembed_context_create(m, NULL, &ctx), 0);
    const char *d = "doc";
    float s;
    cr_assert_eq(sembed_rerank(ctx, "q", &d, 1, false, &s), SEMBED_EUNSUPPORTED);
    sembed_context_free(ctx);
    sembed_model_free(m);
    free(emb), free(emb_semb), free(in);
    json_object_put(e.root);
    free(path);
    tu_rmtree(dir);
    free(dir);
}
