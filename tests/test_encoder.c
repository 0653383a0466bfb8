// Encoder runtime vs the PyTorch twin (models/gen/golden.py), plus batch invariance and API checks.
//
// Fixtures are generated at test time into <build>/golden by /usr/bin/python3 models/gen/golden.py
// (reused when present with the same arguments: bert-base is 440 MB and takes a few seconds).
// Ids come from the golden file, so the encoder is tested apart from the tokenizer; the text tests
// then check that text -> embedding equals ids -> embedding bit for bit.
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/model_internal.h"
#include "sembed/sembed.h"
#include "testutil.h"

#define HIDDEN_TOL 1e-4
#define COS_TOL 0.99999

static const char *const MODES[] = {"cls", "cls_before_pooler", "mean", "max", "first_last_avg"};
#define N_MODES 5

struct golden {
    char *model_path;
    struct sembed_file *g;
    uint32_t n, L, H, dim, max_length;
};

static bool have_torch(void) {
    static int cached = -1;
    if (cached < 0) cached = tu_run("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1", NULL) == 0;
    return cached == 1;
}

// Generate (or reuse) fixture `name` with golden.py arguments `args`; skip if torch is absent.
static void golden_open(struct golden *gd, const char *name, const char *args) {
    if (!have_torch()) cr_skip_test("/usr/bin/python3 with torch and numpy is not available");
    memset(gd, 0, sizeof *gd);
    TU_DATA_FILE_OR_SKIP(vocab, "vocab/bert-base-uncased/vocab.txt");
    TU_DATA_FILE_OR_SKIP(sts, "sts/STSBenchmark/sts-dev.csv");
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/models/gen/golden.py --out-dir %s/golden --name %s --vocab '%s' --sts '%s' %s",
             tu_source_dir(), SEMBED_BINARY_DIR, name, vocab, sts, args);
    free(vocab);
    free(sts);
    int st = tu_run(cmd, NULL);
    cr_assert_eq(st, 0, "golden.py failed (exit %d): %s", st, cmd);
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/%s.golden.semb", SEMBED_BINARY_DIR, name);
    int rc = sembed_file_open(path, &gd->g);
    cr_assert_eq(rc, 0, "open %s: %s", path, sembed_strerror(rc));
    cr_assert_eq(sembed_file_get_u32(gd->g, "x.golden.n_inputs", &gd->n), 0);
    cr_assert_eq(sembed_file_get_u32(gd->g, "x.golden.num_layers", &gd->L), 0);
    cr_assert_eq(sembed_file_get_u32(gd->g, "x.golden.hidden_size", &gd->H), 0);
    cr_assert_eq(sembed_file_get_u32(gd->g, "x.golden.dim", &gd->dim), 0);
    cr_assert_eq(sembed_file_get_u32(gd->g, "x.golden.max_length", &gd->max_length), 0);
    gd->model_path = tu_path(SEMBED_BINARY_DIR "/golden", name);
    char *p = NULL;
    cr_assert(asprintf(&p, "%s.semb", gd->model_path) > 0);
    free(gd->model_path);
    gd->model_path = p;
}

static void golden_close(struct golden *gd) {
    sembed_file_free(gd->g);
    free(gd->model_path);
}

static const void *gt(const struct golden *gd, int64_t *count, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static const void *gt(const struct golden *gd, int64_t *count, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    struct sembed_tensor t;
    int rc = sembed_file_find_tensor(gd->g, name, &t);
    cr_assert_eq(rc, 0, "golden tensor '%s' missing", name);
    int64_t n = 1;
    for (uint32_t i = 0; i < t.n_dims; i++) n *= t.dims[i];
    if (count) *count = n;
    return t.data;
}

static struct sembed_ids golden_ids(const struct golden *gd, uint32_t i) {
    int64_t n;
    struct sembed_ids x;
    x.ids = gt(gd, &n, "in.%u.ids", i);
    x.type_ids = gt(gd, NULL, "in.%u.types", i);
    x.n = (uint32_t)n;
    return x;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; // NaN propagates as a failure
    }
    return m;
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

// fp32 arithmetic whatever the file's weights (a q8_row file would run int8 by default): the
// twin computes in fp32 with the weights exactly as the file stores them.
static struct sembed_model *load_model(const char *path) {
    struct sembed_model *m = NULL;
    struct sembed_model_params mp = sembed_model_default_params();
    mp.compute = SEMBED_COMPUTE_F32;
    int rc = sembed_model_load(path, &mp, &m);
    cr_assert_eq(rc, 0, "sembed_model_load(%s): %s", path, sembed_strerror(rc));
    return m;
}

static struct sembed_context *make_ctx(const struct sembed_model *m, enum sembed_pooling pool, enum sembed_normalize norm,
                                       uint32_t max_length, int threads, uint32_t batch, uint32_t batch_tokens) {
    struct sembed_context_params p = sembed_context_default_params();
    p.pooling = pool;
    p.normalize = norm;
    p.max_length = max_length;
    p.n_threads = threads;
    p.batch_size = batch;
    p.batch_tokens = batch_tokens;
    struct sembed_context *ctx = NULL;
    int rc = sembed_context_create(m, &p, &ctx);
    cr_assert_eq(rc, 0, "sembed_context_create: %s", sembed_strerror(rc));
    return ctx;
}

// One packed forward pass over all golden inputs (mixed lengths, singles and pairs) checks every
// hidden state of every input; every pooler is then applied to that same pass (internal API, so
// bert-base runs the encoder once). `public_api` also runs each pooler through sembed_embed_ids
// and the file's own pipeline (Dense layers + normalize), and sembed_encode_ids per input.
static void check_parity(const char *name, const char *args, bool public_api) {
    struct golden gd;
    golden_open(&gd, name, args);
    struct sembed_model *m = load_model(gd.model_path);
    cr_assert_eq(sembed_model_hidden_size(m), gd.H);
    cr_assert_eq(sembed_model_num_layers(m), gd.L);
    cr_assert_eq(sembed_model_dim(m), gd.dim, "dim: expected %u, got %u", gd.dim, sembed_model_dim(m));

    struct sembed_ids *xs = calloc(gd.n, sizeof *xs);
    int *offs = calloc(gd.n + 1, sizeof *offs);
    cr_assert(xs && offs);
    for (uint32_t i = 0; i < gd.n; i++) {
        xs[i] = golden_ids(&gd, i);
        offs[i + 1] = offs[i] + (int)xs[i].n;
    }
    const int T = offs[gd.n];
    int32_t *ids = malloc((size_t)T * sizeof(int32_t)), *types = malloc((size_t)T * sizeof(int32_t));
    float *all = malloc((size_t)(gd.L + 1) * T * gd.H * sizeof(float));
    float *out = malloc((size_t)gd.n * gd.dim * sizeof(float));
    cr_assert(ids && types && all && out);
    for (uint32_t i = 0; i < gd.n; i++) {
        memcpy(ids + offs[i], xs[i].ids, xs[i].n * sizeof(int32_t));
        memcpy(types + offs[i], xs[i].type_ids, xs[i].n * sizeof(int32_t));
    }
    // first_last_avg makes the context keep the embedding output, which every pooler can then use
    struct sembed_context *ctx = make_ctx(m, SEMBED_POOLING_FIRST_LAST_AVG, SEMBED_NORMALIZE_OFF, gd.max_length, 2, gd.n,
                                          (uint32_t)T > gd.max_length ? (uint32_t)T : gd.max_length);
    struct se_batch b = {.n_seq = (int)gd.n, .ids = ids, .types = types, .offs = offs};
    se_encoder_forward(ctx, &b, all);

    double worst_last = 0, worst_any = 0;
    const size_t TH = (size_t)T * gd.H;
    for (uint32_t i = 0; i < gd.n; i++) {
        for (uint32_t l = 0; l <= gd.L; l++) {
            const float *want = gt(&gd, NULL, "out.%u.hidden.%u", i, l);
            double d = max_abs_diff(all + l * TH + (size_t)offs[i] * gd.H, want, (size_t)xs[i].n * gd.H);
            cr_expect(d <= HIDDEN_TOL, "%s input %u (%u tokens) hidden state %u: max abs diff %.3g > %.1g", name, i,
                      xs[i].n, l, d, HIDDEN_TOL);
            if (d > worst_any) worst_any = d;
            if (l == gd.L && d > worst_last) worst_last = d;
        }
    }
    double worst_cos = 1.0, worst_emb = 0.0;
    for (int k = 0; k < N_MODES; k++) {
        cr_assert_eq(sembed_pooling_parse(MODES[k], &ctx->pooling), 0);
        se_pool(ctx, &b, out);
        for (uint32_t i = 0; i < gd.n; i++) {
            const float *want = gt(&gd, NULL, "out.%u.emb.%s", i, MODES[k]);
            double c = cosine(out + (size_t)i * gd.dim, want, gd.dim);
            double d = max_abs_diff(out + (size_t)i * gd.dim, want, gd.dim);
            cr_expect(c >= COS_TOL, "%s pooling %s input %u: cosine %.9f < %.5f (max abs diff %.3g)", name, MODES[k], i,
                      c, COS_TOL, d);
            if (c < worst_cos) worst_cos = c;
            if (d > worst_emb) worst_emb = d;
        }
    }
    sembed_context_free(ctx);

    if (public_api) {
        ctx = make_ctx(m, SEMBED_POOLING_DEFAULT, SEMBED_NORMALIZE_OFF, gd.max_length, 2, 0, 0);
        for (uint32_t i = 0; i < gd.n; i++) {
            size_t th = (size_t)xs[i].n * gd.H;
            float *last = malloc(th * sizeof(float)), *every = malloc((gd.L + 1) * th * sizeof(float));
            cr_assert(last && every);
            int rc = sembed_encode_ids(ctx, &xs[i], last, every);
            cr_assert_eq(rc, 0, "%s input %u: sembed_encode_ids: %s", name, i, sembed_strerror(rc));
            const float *want = gt(&gd, NULL, "out.%u.hidden.%u", i, gd.L);
            double d = max_abs_diff(last, want, th);
            cr_expect(d <= HIDDEN_TOL, "%s input %u sembed_encode_ids last hidden: max abs diff %.3g", name, i, d);
            cr_expect(memcmp(last, every + gd.L * th, th * sizeof(float)) == 0, "last_hidden differs from all_hidden[L]");
            cr_expect(memcmp(last, all + gd.L * TH + (size_t)offs[i] * gd.H, th * sizeof(float)) == 0,
                      "%s input %u: alone and in the packed batch differ", name, i);
            free(last);
            free(every);
        }
        sembed_context_free(ctx);
        for (int k = 0; k < N_MODES; k++) {
            enum sembed_pooling pool;
            cr_assert_eq(sembed_pooling_parse(MODES[k], &pool), 0);
            ctx = make_ctx(m, pool, SEMBED_NORMALIZE_OFF, gd.max_length, 2, 0, 0);
            int rc = sembed_embed_ids(ctx, xs, gd.n, out);
            cr_assert_eq(rc, 0, "%s %s: sembed_embed_ids: %s", name, MODES[k], sembed_strerror(rc));
            for (uint32_t i = 0; i < gd.n; i++) {
                const float *want = gt(&gd, NULL, "out.%u.emb.%s", i, MODES[k]);
                double c = cosine(out + (size_t)i * gd.dim, want, gd.dim);
                cr_expect(c >= COS_TOL, "%s sembed_embed_ids pooling %s input %u: cosine %.9f", name, MODES[k], i, c);
                if (c < worst_cos) worst_cos = c;
            }
            sembed_context_free(ctx);
        }
        // The file's own settings: its pooling, Dense layers, and normalize flag.
        ctx = make_ctx(m, SEMBED_POOLING_DEFAULT, SEMBED_NORMALIZE_DEFAULT, gd.max_length, 1, 0, 0);
        cr_assert_eq(sembed_embed_ids(ctx, xs, gd.n, out), 0);
        const char *mode = sembed_pooling_name(sembed_model_pooling(m));
        for (uint32_t i = 0; i < gd.n; i++) {
            const float *want = gt(&gd, NULL, "out.%u.emb.%s", i, mode);
            float *got = out + (size_t)i * gd.dim;
            double c = cosine(got, want, gd.dim), nn = 0;
            for (uint32_t j = 0; j < gd.dim; j++) nn += (double)got[j] * got[j];
            cr_expect(c >= COS_TOL, "%s default pipeline input %u: cosine %.9f", name, i, c);
            if (sembed_model_normalize(m))
                cr_expect(fabs(sqrt(nn) - 1.0) < 1e-5, "%s input %u: normalize on but norm %.7f", name, i, sqrt(nn));
        }
        sembed_context_free(ctx);
    }
    printf("%s: %u inputs, %d tokens; last hidden max abs diff %.3g (any layer %.3g); embeddings: min cosine %.9f, "
           "max abs diff %.3g\n",
           name, gd.n, T, worst_last, worst_any, worst_cos, worst_emb);
    fflush(stdout);
    free(xs); free(offs); free(ids); free(types); free(all); free(out);
    sembed_model_free(m);
    golden_close(&gd);
}

// Fixtures. bert-tiny variants cover every activation, weight dtype, Dense layers, no pooler,
// no token types, and truncated long inputs; MiniLM-L6 and bert-base are the real shapes.
#define TINY_ARGS "--shape bert-tiny --singles 8 --pairs 6 --long 2 --max-length 64"
#define TINY_F16_ARGS \
    "--shape bert-tiny --act gelu_tanh --dtype f16 --emb-dtype f16 --no-pooler --type-vocab 0 --pooling cls --singles 4 --pairs 3"
#define TINY_BF16_ARGS                                                                                                 \
    "--shape bert-tiny --act relu --dtype bf16 --emb-dtype bf16 --dense 96:tanh,64:identity --pooling first_last_avg " \
    "--normalize --singles 4 --pairs 3 --seed 3"
#define TINY_Q8_ARGS "--shape bert-tiny --dtype q8_row --pooling max --singles 4 --pairs 3 --seed 4"
#define MINILM_ARGS \
    "--shape minilm-l6 --singles 6 --pairs 4 --long 1 --max-length 96 --dense 256:tanh --normalize --seed 1"
#define BASE_ARGS "--shape bert-base --singles 3 --pairs 2 --pooling cls"
// RoBERTa / XLM-R bodies: positions start at padding_idx + 1 = 2, one token type.
#define ROBERTA_ARGS \
    "--shape bert-tiny --position-offset 2 --type-vocab 1 --no-pooler --singles 6 --pairs 3 --long 1 --max-length 64 --seed 5"
// MPNet: RoBERTa positions, no token types, a relative-position bias shared by all layers; one long
// input (> 128 tokens) reaches the log-spaced buckets and the clamp at max_distance.
#define MPNET_ARGS \
    "--shape bert-tiny --rel-buckets 32 --position-offset 2 --type-vocab 0 --no-pooler --singles 6 --pairs 3 --long 2 " \
    "--max-length 256 --seed 7"
#define MPNET_Q8_ARGS \
    "--shape minilm-l6 --rel-buckets 32 --position-offset 2 --type-vocab 0 --dtype q8_row --pooling mean --normalize " \
    "--singles 4 --pairs 2 --long 1 --max-length 200 --seed 8"
#define ROBERTA_Q8_ARGS \
    "--shape minilm-l6 --position-offset 2 --type-vocab 1 --dtype q8_row --pooling mean --normalize --singles 4 --pairs 2 --seed 6"

Test(encoder, parity_bert_tiny, .timeout = 300) { check_parity("tiny", TINY_ARGS, true); }
Test(encoder, parity_bert_tiny_gelu_tanh_f16_no_pooler_no_types, .timeout = 300) {
    check_parity("tiny_f16", TINY_F16_ARGS, true);
}
Test(encoder, parity_bert_tiny_relu_bf16_dense, .timeout = 300) { check_parity("tiny_bf16", TINY_BF16_ARGS, true); }
Test(encoder, parity_bert_tiny_q8_row_weights, .timeout = 300) { check_parity("tiny_q8", TINY_Q8_ARGS, true); }
Test(encoder, parity_minilm_l6, .timeout = 900) { check_parity("minilm", MINILM_ARGS, false); }
Test(encoder, parity_bert_base, .timeout = 1800) { check_parity("base", BASE_ARGS, false); }
Test(encoder, parity_roberta_tiny, .timeout = 300) { check_parity("roberta", ROBERTA_ARGS, true); }
Test(encoder, parity_mpnet_tiny, .timeout = 300) { check_parity("mpnet", MPNET_ARGS, true); }
Test(encoder, parity_mpnet_minilm_shape_q8_row, .timeout = 900) { check_parity("mpnet_q8", MPNET_Q8_ARGS, false); }
Test(encoder, parity_roberta_minilm_shape_q8_row, .timeout = 900) { check_parity("roberta_q8", ROBERTA_Q8_ARGS, false); }

// Text -> embedding equals golden ids -> embedding, bit for bit (tokenizer + plumbing), and the
// tokenizer gives the golden ids (exact for these ASCII sentences, incl. longest_first truncation).
Test(encoder, text_equals_ids, .timeout = 300) {
    struct golden gd;
    golden_open(&gd, "tiny", TINY_ARGS);
    struct sembed_model *m = load_model(gd.model_path);
    struct sembed_context *ctx = make_ctx(m, SEMBED_POOLING_DEFAULT, SEMBED_NORMALIZE_DEFAULT, gd.max_length, 2, 5, 0);
    struct sembed_input *in = calloc(gd.n, sizeof *in);
    struct sembed_ids *xs = calloc(gd.n, sizeof *xs);
    float *a = malloc((size_t)gd.n * gd.dim * sizeof(float)), *b = malloc((size_t)gd.n * gd.dim * sizeof(float));
    cr_assert(in && xs && a && b);
    uint32_t n_long = 0;
    for (uint32_t i = 0; i < gd.n; i++) {
        char key[64];
        snprintf(key, sizeof key, "x.golden.text.%u.a", i);
        cr_assert_eq(sembed_file_get_str(gd.g, key, &in[i].a, NULL), 0);
        snprintf(key, sizeof key, "x.golden.text.%u.b", i);
        if (sembed_file_get_str(gd.g, key, &in[i].b, NULL)) in[i].b = NULL;
        in[i].a_len = in[i].b_len = SIZE_MAX;
        xs[i] = golden_ids(&gd, i);
        if (xs[i].n == gd.max_length) n_long++;

        int32_t ids[1024], types[1024];
        uint32_t n = 0;
        bool cut = false;
        int rc = sembed_tokenizer_encode_input(sembed_model_tokenizer(m), in[i].a, SIZE_MAX, in[i].b, SIZE_MAX,
                                               gd.max_length, SEMBED_TRUNCATE_LONGEST_FIRST, ids, types, &n, &cut);
        cr_assert_eq(rc, 0, "tokenize input %u: %s", i, sembed_strerror(rc));
        cr_expect_eq(n, xs[i].n, "input %u: %u tokens, golden %u", i, n, xs[i].n);
        if (n == xs[i].n) {
            cr_expect(memcmp(ids, xs[i].ids, n * sizeof(int32_t)) == 0, "input %u: ids differ from golden", i);
            cr_expect(memcmp(types, xs[i].type_ids, n * sizeof(int32_t)) == 0, "input %u: types differ", i);
        }
    }
    cr_assert(n_long >= 1, "fixture should contain truncated inputs");
    cr_assert_eq(sembed_embed_inputs(ctx, in, gd.n, a), 0);
    struct sembed_embed_stats st;
    sembed_context_stats(ctx, &st);
    cr_expect_eq(st.n_inputs, gd.n);
    cr_expect_eq(st.n_truncated, n_long, "truncated count: expected %u, got %llu", n_long, (unsigned long long)st.n_truncated);
    cr_assert_eq(sembed_embed_ids(ctx, xs, gd.n, b), 0);
    for (uint32_t i = 0; i < gd.n; i++)
        cr_expect(memcmp(a + (size_t)i * gd.dim, b + (size_t)i * gd.dim, gd.dim * sizeof(float)) == 0,
                  "input %u: text and ids embeddings differ (max abs %.3g)", i,
                  max_abs_diff(a + (size_t)i * gd.dim, b + (size_t)i * gd.dim, gd.dim));

    // truncate = error refuses the long inputs instead
    struct sembed_context_params p = sembed_context_default_params();
    p.max_length = gd.max_length;
    p.truncate = SEMBED_TRUNCATE_ERROR;
    struct sembed_context *strict;
    cr_assert_eq(sembed_context_create(m, &p, &strict), 0);
    cr_expect_eq(sembed_embed_inputs(strict, in, gd.n, a), SEMBED_ETOOLONG);
    sembed_context_free(strict);

    free(in); free(xs); free(a); free(b);
    sembed_context_free(ctx);
    sembed_model_free(m);
    golden_close(&gd);
}

// 200 real sentences (singles and pairs): one by one vs batches of 7 and 64, 1 and 2 threads,
// small token budgets (several passes per batch): all bit-identical, for every pooler.
Test(encoder, batch_invariance, .timeout = 600) {
    struct golden gd;
    golden_open(&gd, "tiny", TINY_ARGS);
    struct sembed_model *m = load_model(gd.model_path);
    TU_DATA_FILE_OR_SKIP(path, "sts/STSBenchmark/sts-dev.csv");
    size_t len;
    char *csv = tu_read_file(path, &len);
    cr_assert(csv, "cannot read %s", path);
    free(path);
    enum { N = 200 };
    struct sembed_input in[N];
    uint32_t n = 0;
    for (char *line = csv; line && *line && n < N;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        char *f[8] = {0};
        int k = 0;
        for (char *c = line; k < 8; k++) {
            f[k] = c;
            c = strchr(c, '\t');
            if (!c) break;
            *c++ = 0;
        }
        if (k >= 6 && f[5] && f[6]) {
            // every third input is a pair; the rest alternate between the two sentences
            in[n] = (struct sembed_input){n % 2 ? f[6] : f[5], SIZE_MAX, n % 3 == 0 ? f[6] : NULL, SIZE_MAX};
            n++;
        }
        line = nl ? nl + 1 : NULL;
    }
    cr_assert_eq(n, N);
    const uint32_t dim = sembed_model_dim(m);
    float *ref = malloc((size_t)N * dim * sizeof(float)), *got = malloc((size_t)N * dim * sizeof(float));
    cr_assert(ref && got);
    struct { uint32_t batch, tokens; int threads; } cfg[] = {{64, 100, 2}, {7, 0, 1}, {7, 0, 2}, {64, 0, 1}, {64, 0, 2}, {200, 0, 2}};
    for (int k = 0; k < N_MODES; k++) {
        // every configuration for mean pooling; the first (the most passes and threads) for the others
        size_t n_cfg = strcmp(MODES[k], "mean") == 0 ? sizeof cfg / sizeof cfg[0] : 1;
        enum sembed_pooling pool;
        sembed_pooling_parse(MODES[k], &pool);
        struct sembed_context *one = make_ctx(m, pool, SEMBED_NORMALIZE_ON, 64, 1, 1, 0);
        for (uint32_t i = 0; i < N; i++) cr_assert_eq(sembed_embed_inputs(one, &in[i], 1, ref + (size_t)i * dim), 0);
        sembed_context_free(one);
        if (strcmp(MODES[k], "mean") == 0) {
            // One by one on 2 threads with the kernels' work threshold at 0: a short pass runs its
            // embedding lookup and attention on one thread but splits every Linear layer.
            double old = sk_set_mt_min_us_for_testing(0.0);
            struct sembed_context *two = make_ctx(m, pool, SEMBED_NORMALIZE_ON, 64, 2, 1, 0);
            uint32_t bad = 0;
            for (uint32_t i = 0; i < N; i++) {
                cr_assert_eq(sembed_embed_inputs(two, &in[i], 1, got), 0);
                if (memcmp(ref + (size_t)i * dim, got, dim * sizeof(float)) != 0) bad++;
            }
            sembed_context_free(two);
            sk_set_mt_min_us_for_testing(old);
            cr_expect_eq(bad, 0, "one by one, Linear layers split over 2 threads: %u of %d embeddings differ", bad, N);
        }
        for (size_t c = 0; c < n_cfg; c++) {
            struct sembed_context *ctx = make_ctx(m, pool, SEMBED_NORMALIZE_ON, 64, cfg[c].threads, cfg[c].batch, cfg[c].tokens);
            memset(got, 0xff, (size_t)N * dim * sizeof(float));
            cr_assert_eq(sembed_embed_inputs(ctx, in, N, got), 0);
            struct sembed_embed_stats st;
            sembed_context_stats(ctx, &st);
            uint32_t bad = 0, first = 0;
            for (uint32_t i = 0; i < N; i++)
                if (memcmp(ref + (size_t)i * dim, got + (size_t)i * dim, dim * sizeof(float)) != 0) {
                    if (!bad) first = i;
                    bad++;
                }
            cr_expect_eq(bad, 0,
                         "pooling %s, batch %u, batch_tokens %u, %d threads (%llu passes): %u of %d embeddings differ "
                         "from one-by-one; first input %u, max abs diff %.3g",
                         MODES[k], cfg[c].batch, cfg[c].tokens, cfg[c].threads, (unsigned long long)st.n_passes, bad, N,
                         first, max_abs_diff(ref + (size_t)first * dim, got + (size_t)first * dim, dim));
            sembed_context_free(ctx);
        }
    }
    free(ref); free(got); free(csv);
    sembed_model_free(m);
    golden_close(&gd);
}

// Misuse is refused with a status, never a crash.
Test(encoder, api_errors, .timeout = 300) {
    struct golden gd;
    golden_open(&gd, "tiny", TINY_ARGS);
    struct sembed_model *m = load_model(gd.model_path);
    struct sembed_context *ctx = make_ctx(m, SEMBED_POOLING_DEFAULT, SEMBED_NORMALIZE_DEFAULT, 16, 1, 0, 0);
    float out[1024];
    int32_t ids[32] = {101, 2000, 102}, types[32] = {0};
    struct sembed_ids x = {ids, types, 3};
    cr_expect_eq(sembed_embed_ids(ctx, &x, 1, out), 0);
    ids[1] = 30522;
    cr_expect_eq(sembed_embed_ids(ctx, &x, 1, out), SEMBED_EINVAL, "id past the vocabulary");
    ids[1] = -1;
    cr_expect_eq(sembed_embed_ids(ctx, &x, 1, out), SEMBED_EINVAL, "negative id");
    ids[1] = 2000;
    types[1] = 2;
    cr_expect_eq(sembed_embed_ids(ctx, &x, 1, out), SEMBED_EINVAL, "token type past type_vocab_size");
    types[1] = 0;
    x.n = 17;
    cr_expect_eq(sembed_embed_ids(ctx, &x, 1, out), SEMBED_ETOOLONG, "17 ids with max_length 16");
    x.n = 0;
    cr_expect_eq(sembed_embed_ids(ctx, &x, 1, out), SEMBED_EINVAL, "empty input");
    cr_expect_eq(sembed_embed_ids(ctx, NULL, 0, out), 0, "n == 0 is a no-op");
    const char *texts[] = {"", "hello"};
    cr_expect_eq(sembed_embed_texts(ctx, texts, 2, out), 0, "empty text is [CLS] [SEP]");

    struct sembed_context_params p = sembed_context_default_params();
    struct sembed_context *bad = NULL;
    p.max_length = sembed_model_max_length(m) + 1;
    cr_expect_eq(sembed_context_create(m, &p, &bad), SEMBED_EINVAL, "max_length above the model's");
    p = sembed_context_default_params();
    p.batch_tokens = 8;
    cr_expect_eq(sembed_context_create(m, &p, &bad), SEMBED_EINVAL, "batch_tokens below max_length");
    p = sembed_context_default_params();
    p.n_threads = -1;
    cr_expect_eq(sembed_context_create(m, &p, &bad), SEMBED_EINVAL);
    cr_expect_null(bad);
    struct sembed_model_params mp = sembed_model_default_params();
    cr_expect_eq(mp.compute, SEMBED_COMPUTE_AUTO);
    cr_expect(!mp.verify_checksums, "checksum verification is opt-in");
    struct sembed_model *m8 = NULL;
    cr_expect_eq(sembed_model_load(gd.model_path, NULL, &m8), 0);
    cr_expect_eq(sembed_model_compute(m8), SEMBED_COMPUTE_F32, "an f32 file runs f32 by default");
    sembed_model_free(m8);
    m8 = NULL;
    mp.compute = SEMBED_COMPUTE_INT8;
    cr_expect_eq(sembed_model_load(gd.model_path, &mp, &m8), 0);
    cr_expect_eq(sembed_model_compute(m8), SEMBED_COMPUTE_INT8);
    sembed_model_free(m8);
    m8 = NULL;
    mp.compute = (enum sembed_compute)7;
    cr_expect_eq(sembed_model_load(gd.model_path, &mp, &m8), SEMBED_EINVAL, "unknown compute mode");
    cr_expect_null(m8);
    enum sembed_compute cm;
    cr_expect_eq(sembed_compute_parse("int8", &cm), 0);
    cr_expect_eq(cm, SEMBED_COMPUTE_INT8);
    cr_expect_eq(sembed_compute_parse("q8", &cm), SEMBED_EINVAL);
    cr_expect_str_eq(sembed_compute_name(SEMBED_COMPUTE_F32), "f32");
    cr_expect_neq(sembed_model_load("/nonexistent/model.semb", NULL, &m8), 0);
    sembed_model_free(NULL);
    sembed_context_free(NULL);

    enum sembed_pooling pool;
    cr_expect_eq(sembed_pooling_parse("mean", &pool), 0);
    cr_expect_eq(pool, SEMBED_POOLING_MEAN);
    cr_expect_eq(sembed_pooling_parse("avg", &pool), SEMBED_EINVAL);
    cr_expect_str_eq(sembed_pooling_name(SEMBED_POOLING_FIRST_LAST_AVG), "first_last_avg");
    sembed_context_free(ctx);
    sembed_model_free(m);
    golden_close(&gd);
}

// Models that are well-formed .semb files but wrong as BERTs: refused with a status naming the
// problem, never a crash or an out-of-bounds read.
Test(encoder, hostile_models, .timeout = 600) {
    static const struct {
        const char *mutation;
        int want;
    } cases[] = {
        {"drop_tensor=encoder.layer.1.output.dense.weight", SEMBED_EMISSING},
        {"drop_tensor=embeddings.LayerNorm.bias", SEMBED_EMISSING},
        {"transpose=encoder.layer.0.intermediate.dense.weight", SEMBED_EDIMS},
        {"dtype=encoder.layer.0.attention.self.key.weight:i32", SEMBED_EDTYPE},
        {"set=bert.hidden_act:str:swish", SEMBED_EUNSUPPORTED},
        {"set=bert.num_heads:u32:3", SEMBED_ECORRUPT},
        {"set=bert.num_layers:u32:3", SEMBED_EMISSING},
        {"set=bert.hidden_size:u32:0", SEMBED_ECORRUPT},
        {"set=bert.vocab_size:u32:30000", SEMBED_ECORRUPT},
        {"set=bert.has_pooler:bool:false", SEMBED_ECORRUPT},
        {"set=pooling.mode:str:weighted", SEMBED_EUNSUPPORTED},
        {"drop_key=pooling.normalize", SEMBED_EMISSING},
        {"set=general.architecture:str:gpt2", SEMBED_EARCH},
        {"set=bert.layer_norm_eps:f32:nan", SEMBED_ECORRUPT},
        {"set=pooling.dense_count:u32:2", SEMBED_EMISSING},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32], args[512];
        snprintf(name, sizeof name, "hostile_%zu", i);
        snprintf(args, sizeof args, "--shape bert-tiny --model-only --singles 0 --pairs 1 --mutate '%s'", cases[i].mutation);
        if (!have_torch()) cr_skip_test("/usr/bin/python3 with torch and numpy is not available");
        TU_DATA_FILE_OR_SKIP(vocab, "vocab/bert-base-uncased/vocab.txt");
        TU_DATA_FILE_OR_SKIP(sts, "sts/STSBenchmark/sts-dev.csv");
        char cmd[4096];
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 %s/models/gen/golden.py --out-dir %s/golden --name %s --vocab '%s' --sts '%s' %s",
                 tu_source_dir(), SEMBED_BINARY_DIR, name, vocab, sts, args);
        free(vocab);
        free(sts);
        cr_assert_eq(tu_run(cmd, NULL), 0, "golden.py failed: %s", cmd);
        char path[1024];
        snprintf(path, sizeof path, "%s/golden/%s.semb", SEMBED_BINARY_DIR, name);
        struct sembed_model *m = (struct sembed_model *)1;
        int rc = sembed_model_load(path, NULL, &m);
        cr_expect_eq(rc, cases[i].want, "%s: expected %s, got %s", cases[i].mutation, sembed_strerror(cases[i].want),
                     sembed_strerror(rc));
        cr_expect_null(m, "%s: *out must be NULL on failure", cases[i].mutation);
        if (rc == 0) sembed_model_free(m);
    }
}

// MPNet's bucket function against the PyTorch reference for every distance up to +-2047 (the
// parity tests reach 255): the float log step and the clamp must agree to the bucket.
Test(encoder, mpnet_relative_buckets_match_reference, .timeout = 120) {
    if (!have_torch()) cr_skip_test("/usr/bin/python3 with torch and numpy is not available");
    char *cmd = NULL, *out = NULL;
    cr_assert(asprintf(&cmd, "/usr/bin/python3 -c \"import sys, torch; sys.path.insert(0, '%s/models/gen'); import twin; "
                             "d = torch.arange(-2047, 2048); print(' '.join(str(int(x)) for x in twin.relative_position_bucket(d, 32, 128)))\"",
                       tu_source_dir()) > 0);
    cr_assert_eq(tu_run(cmd, &out), 0, "%s", cmd);
    char *p = out;
    for (int32_t d = -2047; d <= 2047; d++) {
        char *end = NULL;
        long want = strtol(p, &end, 10);
        cr_assert(end != p, "short reference output at d = %d", d);
        p = end;
        cr_assert_eq(se_rel_bucket(d, 32, 128), want, "d = %d: bucket %d, reference %ld", d, se_rel_bucket(d, 32, 128), want);
    }
    free(cmd);
    free(out);
}
