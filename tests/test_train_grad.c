// Trainer vs PyTorch (llm.c test_gpt2 style): loss, every parameter gradient and the losses of 10
// AdamW steps against golden states written by models/gen/train_golden.py (float64 autograd),
// plus a finite-difference check of sampled parameters.
//
// Gradient metric: per tensor, max_i |g_c[i] - g_ref[i]| / max(max_i |g_ref[i]|, 1e-3 * G) ("max abs
// diff scaled by the tensor's largest reference gradient"), required <= 1e-4, where G is the largest
// reference gradient of the whole model. The floor is for tensors whose exact gradient is zero (the
// attention key bias: softmax ignores a constant shift), where both sides are rounding noise.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "testutil.h"
#include "train/st.h"

struct rec {
    char name[128];
    int is_int, n_dims;
    uint32_t dims[4];
    size_t numel;
    void *data;
};

struct golden {
    int n;
    struct rec *r;
};

static void golden_free(struct golden *g) {
    for (int i = 0; i < g->n; i++) free(g->r[i].data);
    free(g->r);
}

static const struct rec *gfind(const struct golden *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->r[i].name, name)) return &g->r[i];
    return NULL;
}

static const struct rec *gneed(const struct golden *g, const char *name) {
    const struct rec *r = gfind(g, name);
    cr_assert(r, "golden record '%s' missing", name);
    return r;
}

static time_t mtime(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? st.st_mtime : 0;
}

// Generate the golden files once per build dir (again when the script changes).
static const char *golden_dir(void) {
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/train_golden", SEMBED_BINARY_DIR);
    char script[4096], probe[4200];
    snprintf(script, sizeof script, "%s/models/gen/train_golden.py", tu_source_dir());
    snprintf(probe, sizeof probe, "%s/mlm.bin", dir);
    if (tu_file_exists(probe) && mtime(probe) >= mtime(script)) return dir;
    if (tu_run("/usr/bin/python3 -c 'import torch' 2>/dev/null", NULL) != 0) return NULL;
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s' 1>&2", script, dir);
    cr_assert_eq(tu_run(cmd, NULL), 0, "golden generator failed: %s", cmd);
    return dir;
}

static void golden_load(const char *dir, const char *name_, struct golden *g) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name_);
    size_t len;
    unsigned char *buf = tu_read_file(path, &len), *p = buf, *end = buf + len;
    cr_assert(buf && len > 12 && !memcmp(buf, "STGOLD1", 8), "bad golden file %s", path);
    uint32_t n;
    memcpy(&n, p + 8, 4);
    p += 12;
    g->n = (int)n;
    g->r = calloc(n, sizeof *g->r);
    for (uint32_t i = 0; i < n; i++) {
        struct rec *r = &g->r[i];
        uint16_t nl;
        cr_assert(p + 2 <= end);
        memcpy(&nl, p, 2); p += 2;
        cr_assert(nl < sizeof r->name && p + nl + 2 <= end);
        memcpy(r->name, p, nl); p += nl;
        r->is_int = p[0]; r->n_dims = p[1]; p += 2;
        cr_assert(r->n_dims <= 4 && p + 4 * r->n_dims <= end);
        r->numel = 1;
        for (int d = 0; d < r->n_dims; d++) { memcpy(&r->dims[d], p, 4); p += 4; r->numel *= r->dims[d]; }
        cr_assert(p + 4 * r->numel <= end, "truncated record %s", r->name);
        r->data = malloc(4 * r->numel + 4);
        memcpy(r->data, p, 4 * r->numel);
        p += 4 * r->numel;
    }
    free(buf);
}

struct fixture {
    struct golden g;
    struct st_model *m;
    struct st_acts *a;
    struct st_objective o;
    struct st_step_data d;
    struct st_adamw opt;
    int steps, warmup;
    float clip;
};

static void fixture_load(struct fixture *f, const char *case_name, int n_threads) {
    const char *dir = golden_dir();
    if (!dir) cr_skip_test("python3 with torch is not available to generate the golden state");
    golden_load(dir, case_name, &f->g);
    const int32_t *cfg = gneed(&f->g, "config")->data, *cs = gneed(&f->g, "case")->data;
    const float *hp = gneed(&f->g, "hparams")->data;
    struct st_config c = {.vocab = cfg[0], .hidden = cfg[1], .layers = cfg[2], .heads = cfg[3], .inter = cfg[4],
                          .max_pos = cfg[5], .type_vocab = cfg[6], .ln_eps = hp[0], .act = SK_ACT_GELU_ERF,
                          .has_pooler = true, .has_mlm = cs[5] != 0};
    cr_assert_eq(st_model_create(&c, &f->m), 0);
    cr_assert_eq(st_model_alloc_train(f->m), 0);
    for (int i = 0; i < f->m->n_tensors; i++) {
        struct st_tensor *t = &f->m->tensors[i];
        char nm[160];
        snprintf(nm, sizeof nm, "param.%s", t->name);
        const struct rec *r = gneed(&f->g, nm);
        cr_assert_eq(r->numel, t->numel, "%s: golden has %zu elements, model %zu", t->name, r->numel, t->numel);
        memcpy(f->m->params + t->offset, r->data, t->numel * sizeof(float));
        snprintf(nm, sizeof nm, "grad.%s", t->name);
        t->trainable = gfind(&f->g, nm) != NULL; // torch skips parameters that got no gradient
    }
    int obj = cs[0], B = cs[3];
    f->o = (struct st_objective){.contrastive = obj != 2, .pool = (enum st_pool)cs[1], .mlp = cs[2] != 0,
                                 .temp = hp[1], .hn_weight = hp[2], .mlm = cs[5] != 0, .mlm_weight = hp[3]};
    const struct rec *ids = gneed(&f->g, "ids");
    int N = (int)ids->dims[0], T = (int)ids->dims[1];
    struct st_batch b = {.n = N, .t = T, .ids = ids->data, .types = gneed(&f->g, "types")->data,
                         .lens = gneed(&f->g, "lens")->data};
    memset(&f->d, 0, sizeof f->d);
    if (obj != 2) { f->d.cl = b; f->d.B = B; f->d.hard_neg = cs[4] != 0; }
    if (cs[5]) {
        f->d.mlm = b;
        f->d.mlm.ids = gneed(&f->g, "mlm_ids")->data;
        const struct rec *rows = gneed(&f->g, "mlm_rows");
        f->d.M = (int)rows->numel;
        f->d.mlm_rows = rows->data;
        f->d.mlm_labels = gneed(&f->g, "mlm_labels")->data;
    }
    f->steps = cs[6]; f->warmup = cs[7];
    f->opt = (struct st_adamw){.lr = hp[4], .beta1 = 0.9f, .beta2 = 0.999f, .eps = hp[7], .weight_decay = hp[5]};
    f->clip = hp[6];
    cr_assert_eq(st_acts_create(&f->m->cfg, N, T, n_threads, &f->a), 0);
}

static void fixture_free(struct fixture *f) {
    st_acts_free(f->a);
    st_model_free(f->m);
    golden_free(&f->g);
}

static void check_case(const char *case_name) {
    struct fixture f;
    fixture_load(&f, case_name, 2);
    double loss = st_loss_and_grad(f.m, f.a, &f.o, &f.d, 0, 0, true, 2, NULL, NULL);
    double ref = ((const float *)gneed(&f.g, "loss")->data)[0];
    double rel = fabs(loss - ref) / fabs(ref);
    printf("[%s] loss C %.9g torch %.9g rel %.3g\n", case_name, loss, ref, rel);
    cr_expect(rel <= 1e-5, "[%s] loss: expected %.9g got %.9g (rel %.3g > 1e-5)", case_name, ref, loss, rel);
    double worst = 0.0, gmax = 0.0;
    const char *worst_name = "";
    for (int i = 0; i < f.g.n; i++)
        if (!strncmp(f.g.r[i].name, "grad.", 5))
            for (size_t k = 0; k < f.g.r[i].numel; k++) gmax = fmax(gmax, fabs(((const float *)f.g.r[i].data)[k]));
    for (int i = 0; i < f.m->n_tensors; i++) {
        const struct st_tensor *t = &f.m->tensors[i];
        const float *gc = f.m->grads + t->offset;
        char nm[160];
        snprintf(nm, sizeof nm, "grad.%s", t->name);
        const struct rec *r = gfind(&f.g, nm);
        if (!r) { // unused by this objective: C must leave it exactly zero
            for (size_t k = 0; k < t->numel; k++)
                cr_expect(gc[k] == 0.0f, "[%s] %s[%zu]: expected no gradient, got %g", case_name, t->name, k, gc[k]);
            continue;
        }
        const float *gr = r->data;
        double maxref = 0.0, maxdiff = 0.0;
        size_t at = 0;
        for (size_t k = 0; k < t->numel; k++) {
            maxref = fmax(maxref, fabs(gr[k]));
            double dd = fabs((double)gc[k] - gr[k]);
            if (dd > maxdiff) { maxdiff = dd; at = k; }
        }
        double scaled = maxdiff / fmax(maxref, 1e-3 * gmax);
        if (scaled > worst) { worst = scaled; worst_name = t->name; }
        cr_expect(scaled <= 1e-4, "[%s] grad %s: max abs diff %.3g at [%zu] (C %.9g torch %.9g), scaled by max(max|ref| %.3g, 1e-3 * %.3g) = %.3g > 1e-4",
                  case_name, t->name, maxdiff, at, gc[at], gr[at], maxref, gmax, scaled);
    }
    printf("[%s] gradients: %d tensors, worst scaled max abs diff %.3g (%s)\n", case_name, f.m->n_tensors, worst, worst_name);

    // 10 AdamW steps on the same batch, from the same initial parameters.
    const float *lref = gneed(&f.g, "losses")->data;
    double worst_step = 0.0;
    for (int s = 0; s < f.steps; s++) {
        st_model_zero_grad(f.m);
        double l = st_loss_and_grad(f.m, f.a, &f.o, &f.d, 0, 0, true, 2, NULL, NULL);
        st_clip_grad(f.m, f.clip, 2);
        st_adamw_step(f.m, &f.opt, st_lr_at(f.opt.lr, s, f.warmup, f.steps), s + 1, 2);
        double r2 = fabs(l - lref[s]) / fabs(lref[s]);
        worst_step = fmax(worst_step, r2);
        printf("[%s] step %d loss C %.7f torch %.7f\n", case_name, s, l, (double)lref[s]);
        cr_expect(r2 <= 1e-4, "[%s] step %d loss: expected %.9g got %.9g (rel %.3g > 1e-4)", case_name, s, (double)lref[s], l, r2);
    }
    cr_expect(lref[f.steps - 1] < lref[0], "[%s] the golden run should make progress", case_name);
    printf("[%s] 10 AdamW steps: worst relative loss diff %.3g\n", case_name, worst_step);
    fixture_free(&f);
}

Test(train_grad, unsup_cls_mlp) { check_case("unsup_cls"); }
Test(train_grad, unsup_cls_before_pooler) { check_case("unsup_cbp"); }
Test(train_grad, unsup_mean) { check_case("unsup_mean"); }
Test(train_grad, sup_hard_neg_with_mlm) { check_case("sup_hn"); }
Test(train_grad, mlm) { check_case("mlm"); }

// Central finite differences on sampled parameters of every tensor (the largest-gradient element
// and two fixed others), with hidden and attention dropout ON (masks are a pure function of the
// key, so the loss stays a deterministic function of the parameters).
static void fd_case(const char *case_name, float dropout) {
    struct fixture f;
    fixture_load(&f, case_name, 2);
    f.m->cfg.hidden_dropout = dropout;
    f.m->cfg.attn_dropout = dropout;
    st_acts_free(f.a);
    cr_assert_eq(st_acts_create(&f.m->cfg, f.d.mlm.n > f.d.cl.n ? f.d.mlm.n : f.d.cl.n, 8, 2, &f.a), 0);
    uint64_t k1 = dropout > 0 ? 0x1234u : 0, k2 = dropout > 0 ? 0x5678u : 0;
    st_model_zero_grad(f.m);
    st_loss_and_grad(f.m, f.a, &f.o, &f.d, k1, k2, true, 2, NULL, NULL);
    int checked = 0, bad = 0;
    double worst = 0.0;
    for (int i = 0; i < f.m->n_tensors; i++) {
        const struct st_tensor *t = &f.m->tensors[i];
        if (!t->trainable) continue;
        const float *g = f.m->grads + t->offset;
        size_t pick[3] = {0, t->numel / 3, (t->numel * 7) / 9};
        for (size_t k = 0; k < t->numel; k++)
            if (fabsf(g[k]) > fabsf(g[pick[0]])) pick[0] = k;
        for (int s = 0; s < 3; s++) {
            size_t k = pick[s];
            float *p = f.m->params + t->offset + k, orig = *p;
            const float h = 1e-2f * fmaxf(1.0f, fabsf(orig)) * 0.25f;
            *p = orig + h;
            double lp = st_loss_and_grad(f.m, f.a, &f.o, &f.d, k1, k2, false, 2, NULL, NULL);
            *p = orig - h;
            double lm = st_loss_and_grad(f.m, f.a, &f.o, &f.d, k1, k2, false, 2, NULL, NULL);
            *p = orig;
            double fd = (lp - lm) / (2.0 * (double)h);
            double err = fabs(fd - g[k]), tol = 2e-2 * fmax(fabs(fd), fabs(g[k])) + 2e-3;
            worst = fmax(worst, err / (fmax(fabs(fd), fabs(g[k])) + 1e-3));
            checked++;
            if (err > tol) {
                bad++;
                printf("[%s fd] %s[%zu]: analytic %.6g finite-diff %.6g\n", case_name, t->name, k, g[k], fd);
            }
        }
    }
    printf("[%s fd, dropout %.2f] %d parameters checked, %d outside tolerance, worst relative %.3g\n", case_name,
           (double)dropout, checked, bad, worst);
    cr_expect_eq(bad, 0, "[%s] %d of %d finite-difference checks failed", case_name, bad, checked);
    fixture_free(&f);
}

Test(train_fd, sup_hn_no_dropout) { fd_case("sup_hn", 0.0f); }
Test(train_fd, sup_hn_with_dropout) { fd_case("sup_hn", 0.1f); }
Test(train_fd, mlm_with_dropout) { fd_case("mlm", 0.1f); }
