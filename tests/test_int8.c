// int8 execution (SEMBED_COMPUTE_INT8) end to end: int8 vs fp32 embeddings of the same weights on
// real STS-B sentences (mean cosine >= 0.999, minimum >= 0.995) for the bert-tiny, MiniLM-L6 and
// bert-base shapes and for fixtures with outlier channels (models/gen/outliers.py); batch and
// thread invariance of int8 embeddings; q8_row files running int8 by default.
//
// Fixtures are generated into <build>/golden by models/gen/golden.py / outliers.py (--model-only:
// weights, no golden outputs), under names of their own so parallel test executables never write
// the same file.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/sembed.h"
#include "testutil.h"

#define COS_MEAN_MIN 0.999
#define COS_MIN_MIN 0.995

static bool have_torch(void) {
    static int cached = -1;
    if (cached < 0) cached = tu_run("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1", NULL) == 0;
    return cached == 1;
}

// Generate (or reuse) <build>/golden/<name>.semb with `script` (golden.py or outliers.py) and
// golden.py arguments `args`; heap path.
static char *fixture(const char *name, const char *script_args, const char *args) {
    if (!have_torch()) cr_skip_test("/usr/bin/python3 with torch and numpy is not available");
    TU_DATA_FILE_OR_SKIP(vocab, "vocab/bert-base-uncased/vocab.txt");
    TU_DATA_FILE_OR_SKIP(sts, "sts/STSBenchmark/sts-dev.csv");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/models/gen/%s --out-dir %s/golden --name %s --model-only --singles 0 --pairs 1 "
             "--vocab '%s' --sts '%s' %s",
             tu_source_dir(), script_args, SEMBED_BINARY_DIR, name, vocab, sts, args);
    free(vocab);
    free(sts);
    int st = tu_run(cmd, NULL);
    cr_assert_eq(st, 0, "fixture generator failed (exit %d): %s", st, cmd);
    char *path = NULL;
    cr_assert(asprintf(&path, "%s/golden/%s.semb", SEMBED_BINARY_DIR, name) > 0);
    return path;
}

// Up to n distinct sentences of STS-B dev (both columns), in file order. *buf owns the text.
static uint32_t sts_sentences(const char **out, uint32_t n, char **buf) {
    TU_DATA_FILE_OR_SKIP(path, "sts/STSBenchmark/sts-dev.csv");
    size_t len;
    char *csv = tu_read_file(path, &len);
    cr_assert(csv, "cannot read %s", path);
    free(path);
    uint32_t k = 0;
    for (char *line = csv; line && *line && k < n;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *f[8] = {0};
        int nf = 0;
        for (char *c = line; nf < 8;) {
            f[nf++] = c;
            c = strchr(c, '\t');
            if (!c) break;
            *c++ = 0;
        }
        for (int j = 5; j <= 6 && j < nf && k < n; j++) {
            bool dup = false;
            for (uint32_t i = 0; i < k && !dup; i++) dup = strcmp(out[i], f[j]) == 0;
            if (!dup && *f[j]) out[k++] = f[j];
        }
        line = nl ? nl + 1 : NULL;
    }
    *buf = csv;
    return k;
}

static double cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / (sqrt(aa) * sqrt(bb));
}

static struct sembed_model *load(const char *path, enum sembed_compute c) {
    struct sembed_model_params mp = sembed_model_default_params();
    mp.compute = c;
    struct sembed_model *m = NULL;
    int rc = sembed_model_load(path, &mp, &m);
    cr_assert_eq(rc, 0, "sembed_model_load(%s, %s): %s", path, sembed_compute_name(c), sembed_strerror(rc));
    cr_assert_eq(sembed_model_compute(m), c);
    return m;
}

static void embed(const struct sembed_model *m, enum sembed_pooling pool, int threads, uint32_t batch,
                  const char *const *texts, uint32_t n, float *out) {
    struct sembed_context_params p = sembed_context_default_params();
    p.pooling = pool;
    p.n_threads = threads;
    p.batch_size = batch;
    p.max_length = 128;
    struct sembed_context *ctx = NULL;
    int rc = sembed_context_create(m, &p, &ctx);
    cr_assert_eq(rc, 0, "sembed_context_create: %s", sembed_strerror(rc));
    rc = sembed_embed_texts(ctx, texts, n, out);
    cr_assert_eq(rc, 0, "sembed_embed_texts: %s", sembed_strerror(rc));
    sembed_context_free(ctx);
}

// int8 vs fp32 embeddings of the model at `path` on n STS-B sentences, for mean and cls pooling.
static void check_accuracy(const char *label, const char *path, uint32_t n_want) {
    const char **texts = calloc(n_want, sizeof *texts);
    char *buf = NULL;
    cr_assert(texts);
    uint32_t n = sts_sentences(texts, n_want, &buf);
    cr_assert_eq(n, n_want);
    struct sembed_model *mf = load(path, SEMBED_COMPUTE_F32), *mq = load(path, SEMBED_COMPUTE_INT8);
    const uint32_t dim = sembed_model_dim(mf);
    float *a = malloc((size_t)n * dim * sizeof(float)), *b = malloc((size_t)n * dim * sizeof(float));
    cr_assert(a && b);
    static const enum sembed_pooling pools[] = {SEMBED_POOLING_MEAN, SEMBED_POOLING_CLS};
    for (size_t k = 0; k < sizeof pools / sizeof pools[0]; k++) {
        embed(mf, pools[k], 2, 32, texts, n, a);
        embed(mq, pools[k], 2, 32, texts, n, b);
        double sum = 0, mn = 2;
        uint32_t worst = 0;
        for (uint32_t i = 0; i < n; i++) {
            double c = cosine(a + (size_t)i * dim, b + (size_t)i * dim, dim);
            if (!(c >= mn)) { mn = c; worst = i; } // NaN becomes the minimum
            sum += c;
        }
        double mean = sum / n;
        printf("int8 vs fp32 %-22s %-4s: %u sentences, cosine mean %.6f, min %.6f (sentence %u)\n", label,
               sembed_pooling_name(pools[k]), n, mean, mn, worst);
        fflush(stdout);
        cr_expect(mean >= COS_MEAN_MIN, "%s %s: mean cosine %.6f < %.3f", label, sembed_pooling_name(pools[k]), mean,
                  COS_MEAN_MIN);
        cr_expect(mn >= COS_MIN_MIN, "%s %s: minimum cosine %.6f < %.3f (sentence %u: \"%s\")", label,
                  sembed_pooling_name(pools[k]), mn, COS_MIN_MIN, worst, texts[worst]);
    }
    free(a);
    free(b);
    sembed_model_free(mf);
    sembed_model_free(mq);
    free(texts);
    free(buf);
}

Test(int8, accuracy_bert_tiny, .timeout = 600) {
    char *p = fixture("i8_tiny", "golden.py", "--shape bert-tiny --seed 11");
    check_accuracy("bert-tiny", p, 200);
    free(p);
}

Test(int8, accuracy_minilm_l6, .timeout = 900) {
    char *p = fixture("i8_minilm", "golden.py", "--shape minilm-l6 --dtype f16 --seed 12");
    check_accuracy("minilm-l6", p, 200);
    free(p);
}

// The other families' bodies under the same bounds: RoBERTa / XLM-R positions, MPNet's bias.
Test(int8, accuracy_roberta_minilm_shape, .timeout = 900) {
    char *p = fixture("i8_roberta", "golden.py", "--shape minilm-l6 --dtype f16 --position-offset 2 --type-vocab 1 --no-pooler --seed 17");
    check_accuracy("roberta (minilm shape)", p, 200);
    free(p);
}

Test(int8, accuracy_mpnet_minilm_shape, .timeout = 900) {
    char *p = fixture("i8_mpnet", "golden.py",
                      "--shape minilm-l6 --dtype f16 --position-offset 2 --type-vocab 0 --rel-buckets 32 --no-pooler --seed 18");
    check_accuracy("mpnet (minilm shape)", p, 200);
    free(p);
}

Test(int8, accuracy_bert_base, .timeout = 1800) {
    char *p = fixture("i8_base", "golden.py", "--shape bert-base --dtype f16 --emb-dtype f16 --seed 13");
    check_accuracy("bert-base", p, 64);
    free(p);
}

// Outlier channels (3 hidden channels with LayerNorm gains x30, 4 FFN channels x10 per layer).
Test(int8, accuracy_outliers_minilm_l6, .timeout = 900) {
    char *p = fixture("i8_outl2_minilm_c3s30", "outliers.py --channels 3 --scale 30 --ffn-channels 4 --ffn-scale 10 --",
                      "--shape minilm-l6 --dtype f16 --seed 14");
    check_accuracy("minilm-l6 outliers", p, 200);
    free(p);
}

Test(int8, accuracy_outliers_bert_base, .timeout = 1800) {
    char *p = fixture("i8_outl2_base_c3s30", "outliers.py --channels 3 --scale 30 --ffn-channels 4 --ffn-scale 10 --",
                      "--shape bert-base --dtype f16 --emb-dtype f16 --seed 15");
    check_accuracy("bert-base outliers", p, 64);
    free(p);
}

// int8 embeddings are bit-identical one by one, in batches of 7 and 64, with 1 and 2 threads and
// token budgets that split a batch into several passes (per-row activation scales, exact int32
// sums, per-row epilogues), for mean and cls pooling.
Test(int8, batch_invariance, .timeout = 600) {
    char *path = fixture("i8_tiny", "golden.py", "--shape bert-tiny --seed 11");
    enum { N = 120 };
    const char *texts[N];
    char *buf = NULL;
    cr_assert_eq(sts_sentences(texts, N, &buf), N);
    struct sembed_model *m = load(path, SEMBED_COMPUTE_INT8);
    const uint32_t dim = sembed_model_dim(m);
    float *ref = malloc((size_t)N * dim * sizeof(float)), *got = malloc((size_t)N * dim * sizeof(float));
    cr_assert(ref && got);
    static const enum sembed_pooling pools[] = {SEMBED_POOLING_MEAN, SEMBED_POOLING_CLS};
    struct { uint32_t batch, tokens; int threads; } cfg[] = {{64, 150, 2}, {7, 0, 1}, {7, 0, 2}, {64, 0, 2}, {120, 0, 1}};
    for (size_t k = 0; k < 2; k++) {
        for (uint32_t i = 0; i < N; i++) embed(m, pools[k], 1, 1, &texts[i], 1, ref + (size_t)i * dim);
        for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
            struct sembed_context_params p = sembed_context_default_params();
            p.pooling = pools[k];
            p.n_threads = cfg[c].threads;
            p.batch_size = cfg[c].batch;
            p.batch_tokens = cfg[c].tokens;
            p.max_length = 128;
            struct sembed_context *ctx = NULL;
            cr_assert_eq(sembed_context_create(m, &p, &ctx), 0);
            memset(got, 0xff, (size_t)N * dim * sizeof(float));
            cr_assert_eq(sembed_embed_texts(ctx, texts, N, got), 0);
            struct sembed_embed_stats st;
            sembed_context_stats(ctx, &st);
            uint32_t bad = 0, first = 0;
            for (uint32_t i = 0; i < N; i++)
                if (memcmp(ref + (size_t)i * dim, got + (size_t)i * dim, dim * sizeof(float)) != 0 && !bad++) first = i;
            double d = 0;
            for (uint32_t j = 0; j < dim; j++) d = fmax(d, fabs((double)ref[(size_t)first * dim + j] - got[(size_t)first * dim + j]));
            cr_expect_eq(bad, 0, "int8 %s, batch %u, batch_tokens %u, %d threads (%llu passes): %u of %d embeddings differ "
                         "from one-by-one; first %u, max abs diff %.3g", sembed_pooling_name(pools[k]), cfg[c].batch,
                         cfg[c].tokens, cfg[c].threads, (unsigned long long)st.n_passes, bad, N, first, d);
            sembed_context_free(ctx);
        }
    }
    free(ref);
    free(got);
    free(buf);
    sembed_model_free(m);
    free(path);
}

// A q8_row file runs int8 by default (AUTO) and f32 on request; its int8 embeddings are close to
// the fp32 ones of the same stored weights.
Test(int8, q8_file_defaults_to_int8, .timeout = 600) {
    char *path = fixture("i8_tiny_q8", "golden.py", "--shape bert-tiny --dtype q8_row --seed 16");
    struct sembed_model *m = NULL;
    cr_assert_eq(sembed_model_load(path, NULL, &m), 0);
    cr_expect_eq(sembed_model_compute(m), SEMBED_COMPUTE_INT8, "q8_row file: expected int8 by default, got %s",
                 sembed_compute_name(sembed_model_compute(m)));
    sembed_model_free(m);
    struct sembed_model_params mp = sembed_model_default_params();
    mp.compute = SEMBED_COMPUTE_F32;
    cr_assert_eq(sembed_model_load(path, &mp, &m), 0);
    cr_expect_eq(sembed_model_compute(m), SEMBED_COMPUTE_F32);
    sembed_model_free(m);
    check_accuracy("bert-tiny q8_row file", path, 100);
    free(path);
}
