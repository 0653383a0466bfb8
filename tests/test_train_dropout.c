// Dropout of the trainer: structure (kept values scaled by exactly 1/(1-p), dropped ones are 0),
// statistics (drop rate within 5 sigma of p, masks change with the key), reproducibility (same key
// = same masks; loss and every gradient bit-identical for 1 and 2 threads). The gradients through
// dropout are checked against finite differences in test_train_grad.c (train_fd).
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/st.h"
#include "train/st_ops.h"

enum { N = 8, T = 16 };

static struct st_model *make_model(float p) {
    struct st_config c = {.vocab = 50, .hidden = 64, .layers = 2, .heads = 4, .inter = 128, .max_pos = 32, .type_vocab = 2,
                          .ln_eps = 1e-12f, .act = SK_ACT_GELU_ERF, .hidden_dropout = p, .attn_dropout = p,
                          .has_pooler = true, .has_mlm = false};
    struct st_model *m;
    cr_assert_eq(st_model_create(&c, &m), 0);
    cr_assert_eq(st_model_alloc_train(m), 0);
    st_model_init_random(m, 3, 0.05f);
    return m;
}

static void make_batch(int32_t *ids, int32_t *lens, struct st_batch *b) {
    for (int i = 0; i < N; i++) {
        lens[i] = T - (i % 5);
        for (int t = 0; t < T; t++) ids[i * T + t] = t < lens[i] ? 1 + (int32_t)((i * 31 + t * 17) % 49) : 0;
    }
    *b = (struct st_batch){.n = N, .t = T, .ids = ids, .types = NULL, .lens = lens};
}

Test(train_dropout, structure_and_rate) {
    const float p = 0.1f;
    struct st_model *m = make_model(p);
    int32_t ids[N * T], lens[N];
    struct st_batch b;
    make_batch(ids, lens, &b);
    struct st_acts *a0, *a1, *a2;
    cr_assert_eq(st_acts_create(&m->cfg, N, T, 2, &a0), 0);
    cr_assert_eq(st_acts_create(&m->cfg, N, T, 2, &a1), 0);
    cr_assert_eq(st_acts_create(&m->cfg, N, T, 2, &a2), 0);
    st_forward(m, a0, &b, 0, 2);      // no dropout
    st_forward(m, a1, &b, 1234, 2);   // dropout, key 1234
    st_forward(m, a2, &b, 98765, 2);  // another key
    size_t n = (size_t)st_acts_rows(a1) * 64, zeros = 0, agree = 0; // packed rows: real tokens only
    cr_assert_eq(st_acts_rows(a1), st_acts_rows(a0));
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        float x0 = a0->h0[i], x1 = a1->h0[i];
        cr_assert(x0 != 0.0f, "LayerNorm output is never exactly 0 here");
        if (x1 == 0.0f) zeros++;
        else worst = fmax(worst, fabs((double)x1 - (double)x0 / (1.0 - p)) / fabs((double)x0 / (1.0 - p)));
        agree += (x1 == 0.0f) == (a2->h0[i] == 0.0f);
    }
    double rate = (double)zeros / n, sigma = sqrt(p * (1 - p) / n);
    printf("embedding dropout: rate %.4f (p %.2f, sigma %.4f), kept values off by at most %.2g relative; masks of two keys agree on %.3f\n",
           rate, (double)p, sigma, worst, (double)agree / n);
    cr_expect(fabs(rate - p) < 5 * sigma, "drop rate %.4f, expected %.2f +- %.4f", rate, (double)p, 5 * sigma);
    cr_expect(worst < 1e-6, "kept values must be x/(1-p): worst relative error %.3g", worst);
    double expect_agree = p * p + (1 - p) * (1 - p);
    cr_expect(fabs((double)agree / n - expect_agree) < 0.02, "two keys must give independent masks: agreement %.3f, expected %.3f",
              (double)agree / n, expect_agree);
    // attention probabilities of layer 0 (per sequence and head a len x len block): pd against p
    // of the same run; every row of p sums to 1 over the sequence's own tokens
    size_t vz = 0, vn = 0;
    double aw = 0, rowerr = 0;
    for (int s = 0; s < N; s++)
        for (int h = 0; h < 4; h++) {
            int len = lens[s];
            size_t base = (size_t)a1->poff[s] + (size_t)h * len * len;
            for (int i = 0; i < len; i++) {
                double sum = 0;
                for (int j = 0; j < len; j++) {
                    size_t k = base + (size_t)i * len + j;
                    float pp = a1->L[0].p[k], pd = a1->L[0].pd[k];
                    sum += pp;
                    vn++;
                    if (pd == 0.0f) vz++;
                    else aw = fmax(aw, fabs((double)pd - pp / (1.0 - p)) / (pp / (1.0 - p)));
                }
                rowerr = fmax(rowerr, fabs(sum - 1.0));
            }
        }
    double arate = (double)vz / vn, asig = sqrt(p * (1 - p) / vn);
    printf("attention dropout: rate %.4f over %zu probabilities (sigma %.4f), kept off by %.2g, row sums off by %.2g\n",
           arate, vn, asig, aw, rowerr);
    cr_expect(fabs(arate - p) < 5 * asig, "attention drop rate %.4f, expected %.2f +- %.4f", arate, (double)p, 5 * asig);
    cr_expect(aw < 1e-6, "kept attention probabilities must be p/(1-p): %.3g", aw);
    cr_expect(rowerr < 1e-5, "softmax rows must sum to 1: off by %.3g", rowerr);
    st_acts_free(a0); st_acts_free(a1); st_acts_free(a2);
    st_model_free(m);
}

Test(train_dropout, reproducible_and_thread_independent) {
    struct st_model *m = make_model(0.1f);
    int32_t ids[N * T], lens[N];
    struct st_batch b;
    make_batch(ids, lens, &b);
    // unsup-style: views 0..3 and 4..7 are the same sentences (dropout makes them differ)
    for (int i = 4; i < N; i++) { memcpy(ids + i * T, ids + (i - 4) * T, T * sizeof *ids); lens[i] = lens[i - 4]; }
    struct st_objective o = {.contrastive = true, .pool = ST_POOL_CLS, .mlp = true, .temp = 0.05f};
    struct st_step_data d = {.cl = b, .B = 4};
    float *g1 = malloc(m->n_params * sizeof *g1);
    double l[3];
    for (int run = 0; run < 3; run++) {
        int nt = run == 0 ? 1 : 2;
        struct st_acts *a;
        cr_assert_eq(st_acts_create(&m->cfg, N, T, nt, &a), 0);
        st_model_zero_grad(m);
        l[run] = st_loss_and_grad(m, a, &o, &d, 777, 0, true, nt, NULL, NULL);
        if (run == 0) memcpy(g1, m->grads, m->n_params * sizeof *g1);
        else {
            size_t diff = 0;
            for (size_t i = 0; i < m->n_params; i++) diff += memcmp(&g1[i], &m->grads[i], sizeof(float)) != 0;
            cr_expect_eq(diff, 0, "run %d (%d threads): %zu gradient elements differ from the 1-thread run", run, nt, diff);
        }
        st_acts_free(a);
    }
    printf("loss with dropout: 1 thread %.9g, 2 threads %.9g, again %.9g\n", l[0], l[1], l[2]);
    cr_expect(memcmp(&l[0], &l[1], sizeof l[0]) == 0 && memcmp(&l[0], &l[2], sizeof l[0]) == 0,
              "loss must be bit-identical: %.17g %.17g %.17g", l[0], l[1], l[2]);
    // with dropout the two views differ, so the loss is not the dropout-free one
    struct st_acts *a;
    cr_assert_eq(st_acts_create(&m->cfg, N, T, 2, &a), 0);
    double l0 = st_loss_and_grad(m, a, &o, &d, 0, 0, false, 2, NULL, NULL);
    cr_expect(l0 != l[0], "dropout must change the loss (%.9g vs %.9g)", l0, l[0]);
    st_acts_free(a);
    free(g1);
    st_model_free(m);
}

// The two implementations of the fused ops (train/st_ops.h: portable C and AVX-512) on a shape
// with every tail: hidden 30 (no 16-float multiple, q/k/v weights not adjacent in the block, mask
// rows not byte-aligned), head dim 10, intermediate 50, 13 tokens. Dropout masks must be the
// same bits on both paths; loss and gradients agree to rounding (exp/erf polynomials vs libm).
Test(train_dropout, portable_and_avx512_ops_agree) {
    if (!st_ops_avx512()) cr_skip_test("AVX-512 path not available on this CPU");
    enum { N2 = 6, T2 = 13, H2 = 30 };
    // vocab 120: wider than the column partial rows (the MLM bias gradient takes the other path)
    struct st_config c = {.vocab = 120, .hidden = H2, .layers = 2, .heads = 3, .inter = 50, .max_pos = 16, .type_vocab = 2,
                          .ln_eps = 1e-12f, .act = SK_ACT_GELU_ERF, .hidden_dropout = 0.1f, .attn_dropout = 0.1f,
                          .has_pooler = true, .has_mlm = true};
    struct st_model *m;
    cr_assert_eq(st_model_create(&c, &m), 0);
    cr_assert_eq(st_model_alloc_train(m), 0);
    st_model_init_random(m, 5, 0.05f);
    int32_t ids[N2 * T2], lens[N2], rows[8], labels[8], mids[N2 * T2];
    for (int i = 0; i < N2; i++) {
        lens[i] = T2 - 2 * (i % 3);
        for (int t = 0; t < T2; t++) ids[i * T2 + t] = t < lens[i] ? 1 + (int32_t)((i * 13 + t * 7) % 119) : 0;
    }
    memcpy(mids, ids, sizeof ids);
    for (int k = 0; k < 8; k++) { rows[k] = (k % N2) * T2 + 1 + k / N2; labels[k] = ids[rows[k]]; mids[rows[k]] = 3; }
    struct st_batch b = {.n = N2, .t = T2, .ids = ids, .types = NULL, .lens = lens};
    struct st_objective o = {.contrastive = true, .pool = ST_POOL_CLS, .mlp = true, .temp = 0.05f, .mlm = true,
                             .mlm_weight = 0.1f};
    struct st_step_data d = {.cl = b, .B = N2 / 2, .mlm = b, .M = 8, .mlm_rows = rows, .mlm_labels = labels};
    d.mlm.ids = mids;
    enum sk_isa isas[2] = {SK_ISA_AVX2, sk_isa_active()};
    float *g[2];
    double loss[2];
    uint8_t *bits[2];
    size_t nbits = (size_t)N2 * T2 * H2 / 8;
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(sk_set_isa_for_testing(isas[r]), 0);
        cr_assert_eq(st_ops_get(), r == 0 ? st_ops_portable() : st_ops_avx512());
        struct st_acts *a;
        cr_assert_eq(st_acts_create(&m->cfg, N2, T2, 2, &a), 0);
        st_model_zero_grad(m);
        loss[r] = st_loss_and_grad(m, a, &o, &d, 4242, 99, true, 2, NULL, NULL);
        g[r] = malloc(m->n_params * sizeof(float));
        memcpy(g[r], m->grads, m->n_params * sizeof(float));
        bits[r] = malloc(nbits);
        cr_assert((size_t)st_acts_rows(a) * H2 / 8 <= nbits);
        memcpy(bits[r], a->L[1].m_ffn, nbits); // last forward = the MLM pass
        st_acts_free(a);
    }
    cr_assert_eq(sk_set_isa_for_testing(isas[1]), 0);
    cr_expect(memcmp(bits[0], bits[1], nbits) == 0, "dropout mask bits differ between the paths");
    double rel = fabs(loss[0] - loss[1]) / fabs(loss[0]);
    printf("portable vs avx512: loss %.9g vs %.9g (rel %.3g)\n", loss[0], loss[1], rel);
    cr_expect(rel < 1e-5, "loss: portable %.9g, avx512 %.9g (rel %.3g)", loss[0], loss[1], rel);
    double gmax = 0;
    for (size_t i = 0; i < m->n_params; i++) gmax = fmax(gmax, fabs(g[0][i]));
    for (int t = 0; t < m->n_tensors; t++) {
        const struct st_tensor *tt = &m->tensors[t];
        double mref = 0, md = 0;
        for (size_t i = 0; i < tt->numel; i++) {
            mref = fmax(mref, fabs(g[0][tt->offset + i]));
            md = fmax(md, fabs((double)g[0][tt->offset + i] - g[1][tt->offset + i]));
        }
        double scaled = md / fmax(mref, 1e-3 * gmax);
        cr_expect(scaled <= 1e-4, "%s: max abs diff %.3g (max %.3g), scaled %.3g > 1e-4", tt->name, md, mref, scaled);
    }
    for (int r = 0; r < 2; r++) { free(g[r]); free(bits[r]); }
    st_model_free(m);
}
