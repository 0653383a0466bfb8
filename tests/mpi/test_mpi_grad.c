// Data-parallel gradient check, run under mpirun (tests/mpi/run.sh, N = 2 and 4):
//  1. PyTorch: the loss of the gathered global batch and every parameter gradient summed over ranks
//     against float64 autograd of one process on the same global batch (mpi_golden.py), with the
//     tolerances of tests/test_train_grad.c (loss 1e-5 relative; each gradient tensor 1e-4 in max
//     abs diff scaled by max(its largest reference gradient, 1e-3 x the model's largest)), with the
//     word-embedding rows exchanged sparsely; then 10 AdamW steps (gradients summed over ranks, the
//     word table dense, clip, schedule) against PyTorch's step losses (1e-4).
//     Cases named dist_* (distillation, run_distill_case) take the same checks through st_dist_step.
//  2. One process (rank 0 runs the whole batch with st_loss_and_grad) with hidden and attention
//     dropout 0.1: the distributed loss must be bit-identical (the forward is row-wise and the
//     dropout counters are global) and the summed gradients equal within 1e-5 of the same scaled
//     metric (only the order of the sums over rows differs).
// Prints expected vs got; exit status 0 only when every check passes on every rank.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/mpi_comm.h"
#include "train/st.h"
#include "train/st_dist.h"

struct rec {
    char name[128];
    int is_int, n_dims;
    uint32_t dims[4];
    size_t numel;
    void *data;
};

static struct rec recs[256];
static int n_recs;
static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { failures++; printf("FAIL rank %d: ", cli_mpi_rank()); printf(__VA_ARGS__); printf("\n"); } } while (0)

static int load(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) { printf("cannot open %s\n", path); return -1; }
    char magic[8];
    uint32_t n;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "STGOLD1", 8) || fread(&n, 4, 1, f) != 1 || n > 256) { fclose(f); return -1; }
    for (uint32_t i = 0; i < n; i++) {
        struct rec *r = &recs[i];
        uint16_t nl;
        unsigned char t[2];
        if (fread(&nl, 2, 1, f) != 1 || nl >= sizeof r->name || fread(r->name, 1, nl, f) != nl || fread(t, 1, 2, f) != 2 || t[1] > 4) { fclose(f); return -1; }
        r->name[nl] = 0;
        r->is_int = t[0]; r->n_dims = t[1]; r->numel = 1;
        for (int d = 0; d < r->n_dims; d++) {
            if (fread(&r->dims[d], 4, 1, f) != 1) { fclose(f); return -1; }
            r->numel *= r->dims[d];
        }
        r->data = malloc(4 * r->numel + 4);
        if (!r->data || fread(r->data, 4, r->numel, f) != r->numel) { fclose(f); return -1; }
    }
    n_recs = (int)n;
    fclose(f);
    return 0;
}

static const struct rec *find(const char *name) {
    for (int i = 0; i < n_recs; i++)
        if (!strcmp(recs[i].name, name)) return &recs[i];
    return NULL;
}

static const void *need(const char *name) {
    const struct rec *r = find(name);
    if (!r) { printf("golden record %s missing\n", name); cli_mpi_abort(1); exit(1); }
    return r->data;
}

// max over tensors of max|g - ref| / max(max|ref|, 1e-3 * gmax); *worst_name gets the tensor.
static double grad_diff(const struct st_model *m, const float *g, const float *const *ref, const char **worst_name) {
    double gmax = 0, worst = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (ref[i])
            for (size_t k = 0; k < m->tensors[i].numel; k++) gmax = fmax(gmax, fabs(ref[i][k]));
    for (int i = 0; i < m->n_tensors; i++) {
        const struct st_tensor *t = &m->tensors[i];
        const float *gc = g + t->offset;
        double mr = 0, md = 0;
        for (size_t k = 0; k < t->numel; k++) {
            double r = ref[i] ? ref[i][k] : 0.0;
            mr = fmax(mr, fabs(r));
            md = fmax(md, fabs(gc[k] - r));
        }
        double s = md / fmax(mr, fmax(1e-3 * gmax, 1e-30));
        if (s > worst) { worst = s; *worst_name = t->name; }
    }
    return worst;
}

// The golden file's model: parameters from "param.NAME", the PyTorch gradients "grad.NAME" in
// *ref (NULL where the tensor is frozen: not trainable), a copy of the initial parameters in *init.
static struct st_model *model_from_golden(const struct st_config *c, const float ***ref_out, float **init_out) {
    struct st_model *m;
    if (st_model_create(c, &m) || st_model_alloc_train(m)) return NULL;
    const float **ref = calloc((size_t)m->n_tensors, sizeof *ref);
    float *init = malloc(m->n_params * sizeof *init);
    for (int i = 0; i < m->n_tensors; i++) {
        struct st_tensor *t = &m->tensors[i];
        char nm[160];
        snprintf(nm, sizeof nm, "param.%s", t->name);
        memcpy(m->params + t->offset, need(nm), t->numel * sizeof(float));
        snprintf(nm, sizeof nm, "grad.%s", t->name);
        const struct rec *r = find(nm);
        ref[i] = r ? r->data : NULL;
        t->trainable = r != NULL;
    }
    memcpy(init, m->params, m->n_params * sizeof *init);
    *ref_out = ref;
    *init_out = init;
    return m;
}

static void run_case(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    if (load(path)) { printf("cannot read golden %s\n", path); failures++; return; }
    const int32_t *cfg = need("config"), *cs = need("case");
    const float *hp = need("hparams");
    struct st_config c = {.vocab = cfg[0], .hidden = cfg[1], .layers = cfg[2], .heads = cfg[3], .inter = cfg[4],
                          .max_pos = cfg[5], .type_vocab = cfg[6], .ln_eps = hp[0], .act = SK_ACT_GELU_ERF, .has_pooler = true};
    const float **ref;
    float *init;
    struct st_model *m = model_from_golden(&c, &ref, &init);
    if (!m) { failures++; return; }
    int B = cs[3], kv = cs[4] ? 3 : 2, H = c.hidden;
    struct st_objective o = {.contrastive = true, .pool = (enum st_pool)cs[1], .mlp = cs[2] != 0, .temp = hp[1], .hn_weight = hp[2]};
    const struct rec *ids = find("ids");
    int T = (int)ids->dims[1];
    const int32_t *gids = ids->data, *gtypes = need("types"), *glens = need("lens");
    struct st_dist *d;
    if (st_dist_create(cli_mpi_train_comm(), B, kv, H, c.vocab, &d)) { failures++; return; }
    int nl = kv * d->b;
    int32_t *lids = malloc((size_t)nl * T * 4), *ltypes = malloc((size_t)nl * T * 4), *llens = malloc((size_t)nl * 4);
    for (int q = 0; q < nl; q++) {
        int gq = st_dist_global_seq(d, q);
        memcpy(lids + (size_t)q * T, gids + (size_t)gq * T, (size_t)T * 4);
        memcpy(ltypes + (size_t)q * T, gtypes + (size_t)gq * T, (size_t)T * 4);
        llens[q] = glens[gq];
    }
    st_dist_offsets(d, glens, c.heads);
    struct st_batch lb = {.n = nl, .t = T, .ids = lids, .types = ltypes, .lens = llens, .row0 = d->row0, .att0 = d->att0};
    struct st_acts *a;
    if (st_acts_create(&m->cfg, nl, T, 1, &a)) { failures++; return; }
    int err = 0, N = d->size, R = d->rank;

    // 1. PyTorch: loss and summed gradients
    st_model_zero_grad(m);
    double loss = st_dist_loss_and_grad(m, a, &o, &lb, kv == 3, 0, d, true, 1, &err);
    for (int g = 0; g < kv * B; g++) st_dist_touch(d, gids + (size_t)g * T, (size_t)glens[g]); // sparse word rows
    CHECK(!err && !st_dist_allreduce_grads(d, m), "[%s] collective failed", name);
    double lref = ((const float *)need("loss"))[0], rel = fabs(loss - lref) / fabs(lref);
    CHECK(rel <= 1e-5, "[%s N=%d] loss: expected %.9g (PyTorch) got %.9g, rel %.3g > 1e-5", name, N, lref, loss, rel);
    const char *wn = "";
    double gd = grad_diff(m, m->grads, ref, &wn);
    CHECK(gd <= 1e-4, "[%s N=%d] gradient %s: scaled max abs diff %.3g > 1e-4 vs PyTorch", name, N, wn, gd);
    if (R == 0) printf("[%s N=%d] vs PyTorch: loss %.9g vs %.9g (rel %.2g), worst gradient %.3g (%s)\n", name, N, loss, lref, rel, gd, wn);
    // 10 AdamW steps with summed gradients (no marks: the word table is exchanged dense)
    struct st_adamw opt = {.lr = hp[4], .beta1 = 0.9f, .beta2 = 0.999f, .eps = hp[7], .weight_decay = hp[5]};
    const float *losses = need("losses");
    int steps = cs[6], warm = cs[7];
    double worst_step = 0;
    for (int s = 0; s < steps; s++) {
        st_model_zero_grad(m);
        double l = st_dist_loss_and_grad(m, a, &o, &lb, kv == 3, 0, d, true, 1, &err);
        CHECK(!err && !st_dist_allreduce_grads(d, m), "[%s] collective failed", name);
        st_clip_grad(m, hp[6], 1);
        st_adamw_step(m, &opt, st_lr_at(opt.lr, s, warm, steps), s + 1, 1);
        double r2 = fabs(l - losses[s]) / fabs(losses[s]);
        worst_step = fmax(worst_step, r2);
        CHECK(r2 <= 1e-4, "[%s N=%d] step %d loss: expected %.9g got %.9g (rel %.3g > 1e-4)", name, N, s, (double)losses[s], l, r2);
    }
    if (R == 0) printf("[%s N=%d] 10 AdamW steps vs PyTorch: worst relative loss diff %.3g\n", name, N, worst_step);

    // 2. dropout 0.1: N ranks vs one process on the whole batch (rank 0 computes the latter)
    memcpy(m->params, init, m->n_params * sizeof *init);
    m->cfg.hidden_dropout = m->cfg.attn_dropout = 0.1f;
    st_acts_free(a);
    if (st_acts_create(&m->cfg, kv * B, T, 1, &a)) { failures++; return; }
    uint64_t key = 0x9e3779b97f4a7c15ull | 1;
    st_model_zero_grad(m);
    double ld = st_dist_loss_and_grad(m, a, &o, &lb, kv == 3, key, d, true, 1, &err);
    for (int g = 0; g < kv * B; g++) st_dist_touch(d, gids + (size_t)g * T, (size_t)glens[g]); // sparse word rows
    CHECK(!err && !st_dist_allreduce_grads(d, m), "[%s] collective failed", name);
    if (R == 0) {
        float *gdist = malloc(m->n_params * sizeof *gdist), *g1 = malloc(m->n_params * sizeof *g1);
        memcpy(gdist, m->grads, m->n_params * sizeof *gdist);
        st_model_zero_grad(m);
        struct st_step_data sd = {.cl = {.n = kv * B, .t = T, .ids = gids, .types = gtypes, .lens = glens}, .B = B,
                                  .hard_neg = kv == 3};
        double l1 = st_loss_and_grad(m, a, &o, &sd, key, 0, true, 1, NULL, NULL);
        memcpy(g1, m->grads, m->n_params * sizeof *g1);
        const float **r1 = calloc((size_t)m->n_tensors, sizeof *r1);
        for (int i = 0; i < m->n_tensors; i++) r1[i] = g1 + m->tensors[i].offset;
        double g2 = grad_diff(m, gdist, r1, &wn);
        CHECK(l1 == ld, "[%s N=%d dropout 0.1] loss: one process %.17g, %d ranks %.17g (must be bit-identical)", name, N, l1, N, ld);
        CHECK(g2 <= 1e-5, "[%s N=%d dropout 0.1] gradient %s: scaled max abs diff %.3g > 1e-5 vs one process", name, N, wn, g2);
        CHECK(l1 != lref, "[%s] dropout had no effect on the loss", name);
        printf("[%s N=%d dropout 0.1] vs one process: loss %.9g vs %.9g (%s), worst gradient %.3g (%s)\n", name, N, ld, l1,
               l1 == ld ? "bit-identical" : "DIFFERENT", g2, wn);
        free(gdist); free(g1); free(r1);
    }
    st_acts_free(a);
    st_dist_free(d);
    st_model_free(m);
    free(lids); free(ltypes); free(llens); free(ref); free(init);
    for (int i = 0; i < n_recs; i++) free(recs[i].data);
    n_recs = 0;
}

// Distillation (distill_golden.py cases, global batch of 8 anchors): every rank holds its slice of
// the anchors (and of the positives with InfoNCE), its slice's teacher rows, and the golden MLM rows
// of its sequences; st_dist_step gathers z and the teacher rows. The same checks as run_case, the
// word table exchanged dense (the MLM decoder is tied to it); vs one process with dropout 0.1 the
// loss is bit-identical without MLM and within 1e-12 relative with it (the MLM mean is a rank-order
// sum of the ranks' parts).
static void run_distill_case(const char *dir, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    if (load(path)) { printf("cannot read golden %s\n", path); failures++; return; }
    const int32_t *cfg = need("config"), *cs = need("dcase");
    const float *hp = need("hparams");
    // dcase: pool, mlp, B, proj_dim, unsup views, mlm, steps, warmup
    // hparams: ln_eps, temp, mse_w, rel_w, rel_temp, cl_w, mlm_w, lr, wd, clip, eps[, sim_w]
    struct st_config c = {.vocab = cfg[0], .hidden = cfg[1], .layers = cfg[2], .heads = cfg[3], .inter = cfg[4],
                          .max_pos = cfg[5], .type_vocab = cfg[6], .ln_eps = hp[0], .act = SK_ACT_GELU_ERF,
                          .has_pooler = true, .has_mlm = cs[5] != 0, .proj_dim = cs[3]};
    const float **ref;
    float *init;
    struct st_model *m = model_from_golden(&c, &ref, &init);
    if (!m) { failures++; return; }
    int B = cs[2], kv = cs[4] ? 2 : 1, H = c.hidden, mlm = cs[5] != 0;
    struct st_objective o = {.contrastive = cs[4] != 0, .pool = (enum st_pool)cs[0], .mlp = cs[1] != 0, .temp = hp[1],
                             .mlm = mlm, .mlm_weight = hp[6], .distill = true, .cl_weight = hp[5],
                             .mse_weight = hp[2], .rel_weight = hp[3], .rel_temp = hp[4],
                             .sim_weight = find("hparams")->numel > 11 ? hp[11] : 0.0f};
    const struct rec *ids = find("ids"), *teacher = find("teacher");
    int T = (int)ids->dims[1], D = (int)teacher->dims[1];
    const int32_t *gids = ids->data, *gtypes = need("types"), *glens = need("lens");
    struct st_dist *d;
    if (st_dist_create(cli_mpi_train_comm(), B, kv, H, c.vocab, &d) || st_dist_set_teacher(d, D)) { failures++; return; }
    int nl = kv * d->b, N = d->size, R = d->rank;
    int32_t *lids = malloc((size_t)nl * T * 4), *ltypes = malloc((size_t)nl * T * 4), *llens = malloc((size_t)nl * 4);
    int32_t *lmids = malloc((size_t)nl * T * 4), *lrows = malloc((size_t)nl * T * 4), *llabels = malloc((size_t)nl * T * 4);
    const int32_t *gmids = mlm ? need("mlm_ids") : NULL, *grows = mlm ? need("mlm_rows") : NULL;
    const int32_t *glabels = mlm ? need("mlm_labels") : NULL;
    int Mg = mlm ? (int)find("mlm_rows")->numel : 0, Ml = 0;
    for (int q = 0; q < nl; q++) {
        int gq = st_dist_global_seq(d, q);
        memcpy(lids + (size_t)q * T, gids + (size_t)gq * T, (size_t)T * 4);
        memcpy(ltypes + (size_t)q * T, gtypes + (size_t)gq * T, (size_t)T * 4);
        if (mlm) memcpy(lmids + (size_t)q * T, gmids + (size_t)gq * T, (size_t)T * 4);
        llens[q] = glens[gq];
    }
    for (int k = 0; k < Mg; k++) { // the golden's masked positions of this rank's sequences
        int gq = grows[k] / T, v = gq / B, i = gq % B - R * d->b;
        if (i < 0 || i >= d->b) continue;
        lrows[Ml] = (v * d->b + i) * T + grows[k] % T;
        llabels[Ml++] = glabels[k];
    }
    st_dist_offsets(d, glens, c.heads);
    struct st_batch lb = {.n = nl, .t = T, .ids = lids, .types = ltypes, .lens = llens, .row0 = d->row0, .att0 = d->att0};
    struct st_step_data sd = {.cl = lb, .B = d->b, .mlm = lb, .M = Ml, .M_total = Mg, .mlm_rows = lrows,
                              .mlm_labels = llabels, .teacher = (const float *)teacher->data + (size_t)R * d->b * D,
                              .teacher_dim = D};
    sd.mlm.ids = lmids;
    struct st_acts *a;
    if (st_acts_create(&m->cfg, nl, T, 1, &a)) { failures++; return; }
    int err = 0;

    // 1. PyTorch: loss and summed gradients
    st_model_zero_grad(m);
    double loss = st_dist_step(m, a, &o, &sd, 0, 0, d, true, 1, NULL, NULL, &err);
    CHECK(!err && !st_dist_allreduce_grads(d, m), "[%s] collective failed", name);
    double lref = ((const float *)need("loss"))[0], rel = fabs(loss - lref) / fabs(lref);
    CHECK(rel <= 1e-5, "[%s N=%d] loss: expected %.9g (PyTorch) got %.9g, rel %.3g > 1e-5", name, N, lref, loss, rel);
    const char *wn = "";
    double gd = grad_diff(m, m->grads, ref, &wn);
    CHECK(gd <= 1e-4, "[%s N=%d] gradient %s: scaled max abs diff %.3g > 1e-4 vs PyTorch", name, N, wn, gd);
    if (c.proj_dim > 0) CHECK(ref[st_model_find(m, "pooling.dense.0.weight") - m->tensors] != NULL,
                              "[%s] the projection must have a reference gradient", name);
    if (R == 0) printf("[%s N=%d] vs PyTorch: loss %.9g vs %.9g (rel %.2g), worst gradient %.3g (%s), local MLM rows %d of %d\n",
                       name, N, loss, lref, rel, gd, wn, Ml, Mg);
    struct st_adamw opt = {.lr = hp[7], .beta1 = 0.9f, .beta2 = 0.999f, .eps = hp[10], .weight_decay = hp[8]};
    const float *losses = need("losses");
    int steps = cs[6], warm = cs[7];
    double worst_step = 0;
    for (int s = 0; s < steps; s++) {
        st_model_zero_grad(m);
        double l = st_dist_step(m, a, &o, &sd, 0, 0, d, true, 1, NULL, NULL, &err);
        CHECK(!err && !st_dist_allreduce_grads(d, m), "[%s] collective failed", name);
        st_clip_grad(m, hp[9], 1);
        st_adamw_step(m, &opt, st_lr_at(opt.lr, s, warm, steps), s + 1, 1);
        double r2 = fabs(l - losses[s]) / fabs(losses[s]);
        worst_step = fmax(worst_step, r2);
        CHECK(r2 <= 1e-4, "[%s N=%d] step %d loss: expected %.9g got %.9g (rel %.3g > 1e-4)", name, N, s, (double)losses[s], l, r2);
    }
    if (R == 0) printf("[%s N=%d] 10 AdamW steps vs PyTorch: worst relative loss diff %.3g\n", name, N, worst_step);

    // 2. dropout 0.1: N ranks vs one process on the whole batch (rank 0 computes the latter)
    memcpy(m->params, init, m->n_params * sizeof *init);
    m->cfg.hidden_dropout = m->cfg.attn_dropout = 0.1f;
    st_acts_free(a);
    if (st_acts_create(&m->cfg, kv * B, T, 1, &a)) { failures++; return; }
    uint64_t key = 0x9e3779b97f4a7c15ull | 1, key2 = 0x7f4a7c159e3779b9ull | 1;
    st_model_zero_grad(m);
    double ld = st_dist_step(m, a, &o, &sd, key, key2, d, true, 1, NULL, NULL, &err);
    CHECK(!err && !st_dist_allreduce_grads(d, m), "[%s] collective failed", name);
    if (R == 0) {
        float *gdist = malloc(m->n_params * sizeof *gdist), *g1 = malloc(m->n_params * sizeof *g1);
        memcpy(gdist, m->grads, m->n_params * sizeof *gdist);
        st_model_zero_grad(m);
        struct st_batch gb = {.n = kv * B, .t = T, .ids = gids, .types = gtypes, .lens = glens};
        struct st_step_data s1 = {.cl = gb, .B = B, .mlm = gb, .M = Mg, .M_total = Mg, .mlm_rows = grows,
                                  .mlm_labels = glabels, .teacher = teacher->data, .teacher_dim = D};
        s1.mlm.ids = gmids;
        double l1 = st_loss_and_grad(m, a, &o, &s1, key, key2, true, 1, NULL, NULL);
        memcpy(g1, m->grads, m->n_params * sizeof *g1);
        const float **r1 = calloc((size_t)m->n_tensors, sizeof *r1);
        for (int i = 0; i < m->n_tensors; i++) r1[i] = g1 + m->tensors[i].offset;
        double g2 = grad_diff(m, gdist, r1, &wn), lrel = fabs(l1 - ld) / fabs(l1);
        if (mlm) CHECK(lrel <= 1e-12, "[%s N=%d dropout 0.1] loss: one process %.17g, %d ranks %.17g (rel %.3g > 1e-12)", name, N, l1, N, ld, lrel);
        else CHECK(l1 == ld, "[%s N=%d dropout 0.1] loss: one process %.17g, %d ranks %.17g (must be bit-identical)", name, N, l1, N, ld);
        CHECK(g2 <= 1e-5, "[%s N=%d dropout 0.1] gradient %s: scaled max abs diff %.3g > 1e-5 vs one process", name, N, wn, g2);
        CHECK(l1 != lref, "[%s] dropout had no effect on the loss", name);
        printf("[%s N=%d dropout 0.1] vs one process: loss %.17g vs %.17g (%s, rel %.2g), worst gradient %.3g (%s)\n", name, N,
               ld, l1, l1 == ld ? "bit-identical" : "differs", lrel, g2, wn);
        free(gdist); free(g1); free(r1);
    }
    st_acts_free(a);
    st_dist_free(d);
    st_model_free(m);
    free(lids); free(ltypes); free(llens); free(lmids); free(lrows); free(llabels); free(ref); free(init);
    for (int i = 0; i < n_recs; i++) free(recs[i].data);
    n_recs = 0;
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: mpirun -np N test_mpi_grad GOLDEN_DIR CASE...\n"); return 2; }
    if (cli_mpi_init(&argc, &argv)) return 1;
    if (cli_mpi_size() < 2) { fprintf(stderr, "test_mpi_grad: run me under mpirun with N >= 2\n"); cli_mpi_finalize(); return 2; }
    for (int i = 2; i < argc; i++) {
        if (!strncmp(argv[i], "dist_", 5)) run_distill_case(argv[1], argv[i]);
        else run_case(argv[1], argv[i]);
    }
    int bad = failures;
    cli_mpi_allreduce_max(&bad);
    if (cli_mpi_rank() == 0) printf("test_mpi_grad: %d ranks, %d case(s): %s\n", cli_mpi_size(), argc - 2, bad ? "FAILED" : "all passed");
    cli_mpi_finalize();
    return bad ? 1 : 0;
}
