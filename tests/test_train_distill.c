// Distillation losses vs PyTorch (models/gen/distill_golden.py, float64 autograd): the loss, every
// parameter gradient (the projection's included) and the losses of 10 AdamW steps, the same
// metrics and thresholds as tests/test_train_grad.c; central finite differences with and without
// dropout; the teacher .npy reader's errors as `sembed train` reports them; a short CLI run that
// writes the projection as a Dense module the runtime then applies.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sembed/model.h"
#include "sembed/semb.h"
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

static const char *golden_dir(void) {
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/distill_golden", SEMBED_BINARY_DIR);
    char script[4096], base[4096], probe[4200];
    snprintf(script, sizeof script, "%s/models/gen/distill_golden.py", tu_source_dir());
    snprintf(base, sizeof base, "%s/models/gen/train_golden.py", tu_source_dir());
    snprintf(probe, sizeof probe, "%s/distill_combo.bin", dir);
    if (tu_file_exists(probe) && mtime(probe) >= mtime(script) && mtime(probe) >= mtime(base)) return dir;
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

static void fixture_load(struct fixture *f, const char *case_name, float dropout) {
    const char *dir = golden_dir();
    if (!dir) cr_skip_test("python3 with torch is not available to generate the golden state");
    golden_load(dir, case_name, &f->g);
    const int32_t *cfg = gneed(&f->g, "config")->data, *cs = gneed(&f->g, "dcase")->data;
    const float *hp = gneed(&f->g, "hparams")->data;
    // dcase: pool, mlp, B, proj_dim, unsup views, mlm, steps, warmup
    // hparams: ln_eps, temp, mse_w, rel_w, rel_temp, cl_w, mlm_w, lr, wd, clip, eps, sim_w
    const struct rec *hpr = gneed(&f->g, "hparams");
    cr_assert(hpr->numel >= 12, "golden hparams has %zu values (expected 12: regenerate it)", hpr->numel);
    struct st_config c = {.vocab = cfg[0], .hidden = cfg[1], .layers = cfg[2], .heads = cfg[3], .inter = cfg[4],
                          .max_pos = cfg[5], .type_vocab = cfg[6], .ln_eps = hp[0], .act = SK_ACT_GELU_ERF,
                          .hidden_dropout = dropout, .attn_dropout = dropout, .has_pooler = true,
                          .has_mlm = cs[5] != 0, .proj_dim = cs[3]};
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
        t->trainable = gfind(&f->g, nm) != NULL;
    }
    int B = cs[2];
    const struct rec *teacher = gneed(&f->g, "teacher");
    f->o = (struct st_objective){.contrastive = cs[4] != 0, .pool = (enum st_pool)cs[0], .mlp = cs[1] != 0,
                                 .temp = hp[1], .mlm = cs[5] != 0, .mlm_weight = hp[6], .distill = true,
                                 .cl_weight = hp[5], .mse_weight = hp[2], .rel_weight = hp[3], .rel_temp = hp[4],
                                 .sim_weight = hp[11]};
    const struct rec *ids = gneed(&f->g, "ids");
    int N = (int)ids->dims[0], T = (int)ids->dims[1];
    struct st_batch b = {.n = N, .t = T, .ids = ids->data, .types = gneed(&f->g, "types")->data,
                         .lens = gneed(&f->g, "lens")->data};
    memset(&f->d, 0, sizeof f->d);
    f->d.cl = b;
    f->d.B = B;
    f->d.teacher = teacher->data;
    f->d.teacher_dim = (int)teacher->dims[1];
    if (cs[5]) {
        f->d.mlm = b;
        f->d.mlm.ids = gneed(&f->g, "mlm_ids")->data;
        const struct rec *rows = gneed(&f->g, "mlm_rows");
        f->d.M = (int)rows->numel;
        f->d.mlm_rows = rows->data;
        f->d.mlm_labels = gneed(&f->g, "mlm_labels")->data;
    }
    f->steps = cs[6]; f->warmup = cs[7];
    f->opt = (struct st_adamw){.lr = hp[7], .beta1 = 0.9f, .beta2 = 0.999f, .eps = hp[10], .weight_decay = hp[8]};
    f->clip = hp[9];
    cr_assert_eq(st_acts_create(&f->m->cfg, N, T, 2, &f->a), 0);
}

static void fixture_free(struct fixture *f) {
    st_acts_free(f->a);
    st_model_free(f->m);
    golden_free(&f->g);
}

static void check_case(const char *case_name) {
    struct fixture f;
    fixture_load(&f, case_name, 0.0f);
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
    int compared = 0;
    for (int i = 0; i < f.m->n_tensors; i++) {
        const struct st_tensor *t = &f.m->tensors[i];
        const float *gc = f.m->grads + t->offset;
        char nm[160];
        snprintf(nm, sizeof nm, "grad.%s", t->name);
        const struct rec *r = gfind(&f.g, nm);
        if (!r) {
            for (size_t k = 0; k < t->numel; k++)
                cr_expect(gc[k] == 0.0f, "[%s] %s[%zu]: expected no gradient, got %g", case_name, t->name, k, gc[k]);
            continue;
        }
        compared++;
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
        cr_expect(scaled <= 1e-4,
                  "[%s] grad %s: max abs diff %.3g at [%zu] (C %.9g torch %.9g), scaled by max(max|ref| %.3g, 1e-3 * %.3g) = %.3g > 1e-4",
                  case_name, t->name, maxdiff, at, gc[at], gr[at], maxref, gmax, scaled);
    }
    printf("[%s] gradients: %d tensors compared, worst scaled max abs diff %.3g (%s)\n", case_name, compared, worst,
           worst_name);
    if (f.m->cfg.proj_dim > 0)
        cr_expect(gfind(&f.g, "grad.pooling.dense.0.weight") != NULL, "[%s] the projection must get a gradient", case_name);

    const float *lref = gneed(&f.g, "losses")->data;
    double worst_step = 0.0;
    for (int s = 0; s < f.steps; s++) {
        st_model_zero_grad(f.m);
        double l = st_loss_and_grad(f.m, f.a, &f.o, &f.d, 0, 0, true, 2, NULL, NULL);
        st_clip_grad(f.m, f.clip, 2);
        st_adamw_step(f.m, &f.opt, st_lr_at(f.opt.lr, s, f.warmup, f.steps), s + 1, 2);
        double r2 = fabs(l - lref[s]) / fabs(lref[s]);
        worst_step = fmax(worst_step, r2);
        cr_expect(r2 <= 1e-4, "[%s] step %d loss: expected %.9g got %.9g (rel %.3g > 1e-4)", case_name, s,
                  (double)lref[s], l, r2);
    }
    cr_expect(lref[f.steps - 1] < lref[0], "[%s] the golden run should make progress", case_name);
    printf("[%s] 10 AdamW steps: losses %.6f -> %.6f, worst relative loss diff %.3g\n", case_name, (double)lref[0],
           (double)lref[f.steps - 1], worst_step);
    fixture_free(&f);
}

Test(distill_grad, mse_projection_mean) { check_case("distill_mse_mean"); }
Test(distill_grad, relational_cls_mlp) { check_case("distill_rel_cls"); }
Test(distill_grad, mse_rel_infonce_mlm) { check_case("distill_combo"); }
Test(distill_grad, similarity_mse_rel_mean) { check_case("distill_sim_mean"); }

// --mlm-weight with distillation but no InfoNCE (--cl-weight 0, the default): the MLM term must be
// weighted by mlm_weight, as with InfoNCE (it was weighted 1 before this test). total = distill part
// + w * MLM, with the parts computed separately on the combo golden's batch.
Test(distill_grad, mlm_weight_without_infonce) {
    struct fixture f;
    fixture_load(&f, "distill_combo", 0.0f);
    f.o.contrastive = false;
    f.o.cl_weight = 0.0f;
    f.o.mlm_weight = 0.25f;
    double lm = 0.0;
    double total = st_loss_and_grad(f.m, f.a, &f.o, &f.d, 0, 0, false, 2, NULL, &lm);
    struct st_objective od = f.o;
    od.mlm = false;
    double dpart = st_loss_and_grad(f.m, f.a, &od, &f.d, 0, 0, false, 2, NULL, NULL);
    double want = dpart + 0.25 * lm;
    printf("[mlm_weight_without_infonce] total %.9g = distill %.9g + 0.25 x MLM %.9g (expected %.9g)\n", total, dpart, lm, want);
    cr_expect(lm > 0.0, "the MLM loss must be positive, got %g", lm);
    cr_expect(fabs(total - want) <= 1e-9 * fabs(want),
              "total loss: expected distill %.9g + 0.25 x MLM %.9g = %.9g, got %.9g", dpart, lm, want, total);
    fixture_free(&f);
}

// Central differences on 3 elements of every trained tensor, as in test_train_grad.c.
static void fd_case(const char *case_name, float dropout) {
    struct fixture f;
    fixture_load(&f, case_name, dropout);
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

Test(distill_fd, combo_no_dropout) { fd_case("distill_combo", 0.0f); }
Test(distill_fd, combo_with_dropout) { fd_case("distill_combo", 0.1f); }
Test(distill_fd, relational_with_dropout) { fd_case("distill_rel_cls", 0.1f); }

// ---------------------------------------------------------------- CLI

static void write_npy(const char *path, const char *dict, const float *v, size_t n) {
    char hdr[256];
    size_t dl = strlen(dict), total = 10 + dl + 1, pad = (64 - total % 64) % 64;
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    uint16_t hl = (uint16_t)(dl + pad + 1);
    hdr[8] = (char)(hl & 0xff);
    hdr[9] = (char)(hl >> 8);
    memcpy(hdr + 10, dict, dl);
    memset(hdr + 10 + dl, ' ', pad);
    hdr[10 + dl + pad] = '\n';
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    fwrite(hdr, 1, 10 + dl + pad + 1, f);
    if (n) fwrite(v, sizeof *v, n, f);
    fclose(f);
}

static const char *const W[] = {"the cat sat on the mat", "a dog runs in the park", "the stock market fell today",
                       "rain is expected tomorrow", "she plays the violin well", "he cooked pasta for dinner",
                       "the train was late again", "children play in the snow", "a new phone was released",
                       "the river flooded the town", "birds sing in the morning", "he fixed the old car"};

// A fresh random encoder over a vocabulary of the words of W (--init-random spec in a static).
static const char *tiny_init(const char *dir) {
    static char spec[4400];
    char *vp = tu_path(dir, "vocab.txt");
    FILE *f = fopen(vp, "w");
    cr_assert(f);
    fprintf(f, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for (int i = 0; i < 12; i++) {
        char buf[64], *save = NULL;
        snprintf(buf, sizeof buf, "%s", W[i]);
        for (char *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) fprintf(f, "%s\n", tok);
    }
    fclose(f);
    snprintf(spec, sizeof spec, "layers=1,hidden=32,heads=2,intermediate=64,max_position=32,vocab=%s", vp);
    free(vp);
    return spec;
}

// 12 lines of --data; teacher rows (n, d) of a deterministic pattern.
static void make_data(const char *dir, char **data, char **npy, int rows, int d, const char *descr) {
    *data = tu_path(dir, "data.txt");
    *npy = tu_path(dir, "teacher.npy");
    FILE *f = fopen(*data, "w");
    cr_assert(f);
    for (int i = 0; i < 12; i++) fprintf(f, "%s\n", W[i]);
    fclose(f);
    int per = descr[strlen(descr) - 1] == '8' ? 2 : 1; // floats per element: '<f8' data is twice as long
    float *v = malloc((size_t)rows * d * per * sizeof *v);
    for (int i = 0; i < rows * d * per; i++) v[i] = sinf(0.37f * (float)i) * 0.1f;
    char dict[200];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }", descr, rows, d);
    write_npy(*npy, dict, v, (size_t)rows * d * per);
    free(v);
}

static int run_train(const char *args, char **out) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "'%s' train %s 2>&1", tu_cli(), args);
    return tu_run(cmd, out);
}

Test(distill_cli, mse_writes_projection_runtime_applies_it) {
    char *dir = tu_mkdtemp(), *data, *npy, *outp = tu_path(dir, "out.semb"), *out = NULL;
    make_data(dir, &data, &npy, 12, 40, "<f4");
    char args[8192];
    snprintf(args, sizeof args,
             "--init-random '%s' --objective distill --teacher '%s' --data '%s' -o '%s' --pooler mean --batch 4 --steps 3 "
             "--rel-weight 0.5 --threads 1",
             tiny_init(dir), npy, data, outp);
    int rc = run_train(args, &out);
    cr_assert_eq(rc, 0, "sembed train failed (%d):\n%s", rc, out ? out : "");
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(outp, &f), 0);
    uint32_t nd = 0;
    const char *act = NULL, *obj = NULL;
    cr_expect_eq(sembed_file_get_u32(f, "pooling.dense_count", &nd), 0);
    cr_expect_eq(nd, 1u, "pooling.dense_count: expected 1 got %u", nd);
    cr_expect_eq(sembed_file_get_str(f, "pooling.dense.0.activation", &act, NULL), 0);
    cr_expect(act && !strcmp(act, "identity"), "activation: expected identity got %s", act ? act : "(none)");
    cr_expect_eq(sembed_file_get_str(f, "train.objective", &obj, NULL), 0);
    cr_expect(obj && strstr(obj, "distill"), "train.objective: expected ...distill, got %s", obj ? obj : "(none)");
    struct sembed_tensor t;
    cr_expect_eq(sembed_file_find_tensor(f, "pooling.dense.0.weight", &t), 0);
    cr_expect(t.n_dims == 2 && t.dims[0] == 40, "projection: expected [40, H], got %u dims [%lld, ...]", t.n_dims,
              (long long)t.dims[0]);
    sembed_file_free(f);
    // the runtime embeds through the projection: 40-d
    free(out);
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "echo 'a small test' | '%s' embed -m '%s' --format tsv 2>&1 | head -1 | awk -F'\\t' '{print NF}'",
             tu_cli(), outp);
    out = NULL;
    cr_assert_eq(tu_run(cmd, &out), 0);
    int nf = atoi(out ? out : "0");
    cr_expect(nf == 40 || nf == 41, "embed: expected a 40-d vector (40 or 41 TSV fields with the text), got %d fields: %s", nf,
              out ? out : "");
    free(out);
    // export (the projection becomes a sentence-transformers Dense module) and convert back: the
    // same embedding
    char *hf = tu_path(dir, "hf"), *back = tu_path(dir, "back.semb"), *e1 = NULL, *e2 = NULL;
    snprintf(cmd, sizeof cmd, "'%s' export -m '%s' -o '%s' 2>&1 && '%s' convert '%s' -o '%s' 2>&1", tu_cli(), outp, hf,
             tu_cli(), hf, back);
    out = NULL;
    cr_assert_eq(tu_run(cmd, &out), 0, "export + convert failed:\n%s", out ? out : "");
    free(out);
    snprintf(cmd, sizeof cmd, "'%s' embed -m '%s' --format tsv 'a small test'", tu_cli(), outp);
    cr_assert_eq(tu_run(cmd, &e1), 0);
    snprintf(cmd, sizeof cmd, "'%s' embed -m '%s' --format tsv 'a small test'", tu_cli(), back);
    cr_assert_eq(tu_run(cmd, &e2), 0);
    double md = 0;
    int k = 0;
    for (char *a = e1, *b = e2; a && b && *a && *b; k++) {
        char *ea, *eb;
        double va = strtod(a, &ea), vb = strtod(b, &eb);
        if (ea == a || eb == b) break;
        md = fmax(md, fabs(va - vb));
        a = ea; b = eb;
    }
    cr_expect_eq(k, 40, "round trip: expected 40 values, got %d", k);
    cr_expect(md < 1e-5, "round trip: max abs diff %.3g >= 1e-5", md);
    printf("[distill export round trip] %d values, max abs diff %.3g\n", k, md);
    free(e1); free(e2); free(hf); free(back);
    tu_rmtree(dir);
    free(dir); free(data); free(npy); free(outp);
}

static void expect_fail(const char *descr, int rows, int d, const char *want) {
    char *dir = tu_mkdtemp(), *data, *npy, *outp = tu_path(dir, "out.semb"), *out = NULL;
    make_data(dir, &data, &npy, rows, d, descr);
    char args[8192];
    snprintf(args, sizeof args, "--init-random '%s' --objective distill --teacher '%s' --data '%s' -o '%s' --batch 4 --steps 1",
             tiny_init(dir), npy, data, outp);
    int rc = run_train(args, &out);
    cr_expect_neq(rc, 0, "expected a failure for %s (%d, %d)", descr, rows, d);
    cr_expect(out && strstr(out, want), "expected the message to contain '%s', got:\n%s", want, out ? out : "");
    cr_expect(!tu_file_exists(outp), "no output may be written on failure");
    free(out);
    tu_rmtree(dir);
    free(dir); free(data); free(npy); free(outp);
}

Test(distill_cli, row_count_mismatch_named) { expect_fail("<f4", 11, 16, "has 11 rows (dim 16) but the training data has 12 rows"); }
Test(distill_cli, float64_refused) { expect_fail("<f8", 12, 16, "expected '<f4'"); }
Test(distill_cli, big_endian_refused) { expect_fail(">f4", 12, 16, "expected '<f4'"); }

Test(distill_cli, teacher_without_distill_refused) {
    char *out = NULL;
    int rc = run_train("-m x.semb --data d.txt -o o.semb --teacher t.npy", &out);
    cr_expect_neq(rc, 0);
    cr_expect(out && strstr(out, "--teacher is only used with --objective distill"), "got: %s", out ? out : "");
    free(out);
}

Test(distill_cli, distill_without_teacher_refused) {
    char *out = NULL;
    int rc = run_train("-m x.semb --data d.txt -o o.semb --objective distill", &out);
    cr_expect_neq(rc, 0);
    cr_expect(out && strstr(out, "needs --teacher"), "got: %s", out ? out : "");
    free(out);
}

// Step 1's loss (the CSV log's first step row), or NAN.
static double first_step_loss(const char *csv) {
    FILE *f = fopen(csv, "r");
    if (!f) return NAN;
    char line[1024];
    double loss = NAN;
    while (fgets(line, sizeof line, f)) {
        long step;
        char *p;
        if (line[0] < '0' || line[0] > '9') continue;  // header
        step = strtol(line, &p, 10);
        if (step != 1) continue;
        // step,epoch,lr,loss,...
        for (int k = 0; k < 2 && p; k++) p = strchr(p + 1, ',');
        if (p) loss = strtod(p + 1, NULL);
        break;
    }
    fclose(f);
    return loss;
}

// --shuffle-group G: whole groups of G consecutive rows are shuffled, so a batch of G rows is
// exactly one group. 12 rows, batch 4, groups of 4: the first step's loss (no dropout, relational +
// similarity losses, which do not depend on the order inside a batch) must be the loss of one of
// the three groups trained alone. A batch that is not a multiple of G is refused by name.
Test(distill_cli, shuffle_group_keeps_groups_in_one_batch) {
    char *dir = tu_mkdtemp(), *data, *npy, *outp = tu_path(dir, "out.semb"), *log = tu_path(dir, "log.csv"), *out = NULL;
    make_data(dir, &data, &npy, 12, 16, "<f4");
    const char *spec = tiny_init(dir);
    const char *common = "--objective distill --pooler mean --batch 4 --steps 1 --mse-weight 0 --rel-weight 1 --sim-weight 2 "
                         "--dropout 0 --attention-dropout 0 --threads 1 --seed 7";
    char args[8192];
    snprintf(args, sizeof args, "--init-random '%s' --teacher '%s' --data '%s' -o '%s' --log '%s' --shuffle-group 4 %s", spec, npy,
             data, outp, log, common);
    int rc = run_train(args, &out);
    cr_assert_eq(rc, 0, "grouped run failed:\n%s", out ? out : "");
    free(out);
    double grouped = first_step_loss(log);
    cr_assert(isfinite(grouped) && grouped > 0, "no positive step-1 loss in %s (%g)", log, grouped);
    double alone[3];
    int match = -1;
    for (int g = 0; g < 3; g++) {
        char name[64];
        snprintf(name, sizeof name, "g%d.txt", g);
        char *dg = tu_path(dir, name);
        snprintf(name, sizeof name, "g%d.npy", g);
        char *ng = tu_path(dir, name);
        snprintf(name, sizeof name, "g%d.csv", g);
        char *lg = tu_path(dir, name);
        FILE *f = fopen(dg, "w");
        cr_assert(f);
        for (int i = 0; i < 4; i++) fprintf(f, "%s\n", W[4 * g + i]);
        fclose(f);
        float v[4 * 16];
        for (int i = 0; i < 4 * 16; i++) v[i] = sinf(0.37f * (float)(g * 64 + i)) * 0.1f;  // make_data's rows 4g..4g+3
        write_npy(ng, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 16), }", v, 4 * 16);
        snprintf(args, sizeof args, "--init-random '%s' --teacher '%s' --data '%s' -o '%s' --log '%s' %s", spec, ng, dg, outp, lg,
                 common);
        out = NULL;
        rc = run_train(args, &out);
        cr_assert_eq(rc, 0, "group %d alone failed:\n%s", g, out ? out : "");
        free(out);
        alone[g] = first_step_loss(lg);
        if (fabs(alone[g] - grouped) <= 1e-5 * fabs(grouped)) match = g;
        free(dg); free(ng); free(lg);
    }
    printf("[shuffle_group] first batch loss %.9g; groups alone %.9g %.9g %.9g\n", grouped, alone[0], alone[1], alone[2]);
    cr_expect(match >= 0, "the first batch (loss %.9g) is none of the groups (%.9g, %.9g, %.9g)", grouped, alone[0], alone[1], alone[2]);
    snprintf(args, sizeof args, "--init-random '%s' --teacher '%s' --data '%s' -o '%s' --shuffle-group 3 %s", spec, npy, data, outp,
             common);
    unlink(outp);
    out = NULL;
    rc = run_train(args, &out);
    cr_expect_neq(rc, 0, "batch 4 with groups of 3 must be refused");
    cr_expect(out && strstr(out, "must be a multiple of it"), "got: %s", out ? out : "");
    cr_expect(!tu_file_exists(outp), "no output may be written on failure");
    free(out);
    tu_rmtree(dir);
    free(dir); free(data); free(npy); free(outp); free(log);
}
