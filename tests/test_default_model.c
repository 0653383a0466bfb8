// The shipped default model (models/sembed-mini/sembed-mini.semb): intact, carries its recipe,
// data hashes and scores, runs int8 by default, and orders similarities the way a person would
// (each paraphrase closer to its partner than to the unrelated sentences). Fixed expectations
// from the recipe's own evaluation are checked against the file's eval.* keys.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/model.h"
#include "sembed/semb.h"
#include "testutil.h"

static char *model_path(void) { return tu_path(tu_source_dir(), "models/sembed-mini/sembed-mini.semb"); }

static double cosine(const float *a, const float *b, size_t d) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < d; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

Test(default_model, intact_and_self_describing) {
    char *path = model_path();
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(path, &f), 0, "cannot open %s", path);
    int64_t bad = -2;
    cr_expect_eq(sembed_file_verify(f, &bad), 0, "checksum mismatch in tensor %lld", (long long)bad);
    const char *s;
    cr_expect_eq(sembed_file_get_str(f, "general.name", &s, NULL), 0);
    cr_expect_str_eq(s, "sembed-mini");
    cr_expect_eq(sembed_file_get_str(f, "general.file_type", &s, NULL), 0);
    cr_expect_str_eq(s, "q8");
    cr_expect_eq(sembed_file_get_str(f, "train.recipe", &s, NULL), 0, "train.recipe missing");
    cr_expect_eq(sembed_file_get_str(f, "train.data_sha256.mlm_txt", &s, NULL), 0, "data hash missing");
    cr_expect(s && strlen(s) == 64, "sha256 hex: %s", s ? s : "(null)");
    float dev32, dev8, q_mean, q_min;
    cr_assert_eq(sembed_file_get_f32(f, "eval.stsb_dev_spearman_f32", &dev32), 0, "eval.stsb_dev_spearman_f32 missing");
    cr_assert_eq(sembed_file_get_f32(f, "eval.stsb_dev_spearman_int8", &dev8), 0);
    cr_expect(fabsf(dev32 - dev8) <= 0.3f, "int8 %.2f vs fp32 %.2f: more than 0.3 points apart", dev8, dev32);
    cr_expect(dev8 > 70.0f, "recorded STS-B dev %.2f: sembed-mini 2 records 72.68", dev8);
    cr_assert_eq(sembed_file_get_f32(f, "quant.calib_cos_mean", &q_mean), 0);
    cr_assert_eq(sembed_file_get_f32(f, "quant.calib_cos_min", &q_min), 0);
    cr_expect(q_mean >= 0.999f && q_min >= 0.995f, "calibration cosine mean %.6f min %.6f", q_mean, q_min);
    uint64_t size = 0;
    FILE *fp = fopen(path, "rb");
    cr_assert(fp);
    fseek(fp, 0, SEEK_END);
    size = (uint64_t)ftell(fp);
    fclose(fp);
    cr_expect(size <= 16u << 20, "%s is %llu bytes, over the 16 MiB budget", path, (unsigned long long)size);
    sembed_file_free(f);
    free(path);
}

// The shipped model, loaded as a user would (int8 kernels by default), and a 2-thread context.
static struct sembed_context *open_default(struct sembed_model **m) {
    char *path = model_path();
    cr_assert_eq(sembed_model_load(path, NULL, m), 0, "cannot load %s", path);
    free(path);
    cr_expect_eq(sembed_model_compute(*m), SEMBED_COMPUTE_INT8, "a q8 file runs int8 by default");
    struct sembed_context_params cp = sembed_context_default_params();
    cp.n_threads = 2;
    struct sembed_context *ctx;
    cr_assert_eq(sembed_context_create(*m, &cp, &ctx), 0);
    return ctx;
}

// Paraphrases that share no content word against a sentence built on the first one's template
// but meaning something else: a bag of words puts the template mate closer, a sentence encoder
// must not. Chosen with the teacher (USE lite) before the student existed: the five of ten
// candidate triples it ranks right by at least 0.05 (models/sembed-mini/README.md lists all ten).
// sembed-mini 1 (trained from scratch, no teacher) ranked all five wrong; sembed-mini 2 (distilled)
// ranks four right and still misses the last one (0.43 vs 0.56), so at least four must hold.
static const char *const TRIPLES[][3] = {
    {"The stock market fell sharply today.", "Share prices dropped steeply.", "The snow fell heavily today."},
    {"A man is playing the guitar.", "Somebody strums an instrument.", "A man is eating a sandwich."},
    {"The boy is sleeping.", "The child is asleep.", "The boy is swimming."},
    {"A dog is running through the grass.", "A puppy sprints across a lawn.", "A dog is sitting in the car."},
    {"Two people are dancing on a stage.", "A couple performs a routine for an audience.", "Two people are waiting at a bus stop."},
};

Test(default_model, paraphrases_without_shared_words_above_template_mates) {
    struct sembed_model *m;
    struct sembed_context *ctx = open_default(&m);
    const size_t n = sizeof TRIPLES / sizeof TRIPLES[0], d = sembed_model_dim(m);
    float *e = malloc(3 * d * sizeof *e);
    size_t right = 0;
    char misses[2048] = "";
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(sembed_embed_texts(ctx, TRIPLES[i], 3, e), 0);
        double para = cosine(e, e + d, d), mate = cosine(e, e + 2 * d, d);
        printf("[default_model] '%s': paraphrase %.3f, template mate %.3f%s\n", TRIPLES[i][0], para, mate, para > mate ? "" : "  (miss)");
        if (para > mate) right++;
        else snprintf(misses + strlen(misses), sizeof misses - strlen(misses), " ['%s' / '%s' %.3f <= '%s' %.3f]", TRIPLES[i][0],
                      TRIPLES[i][1], para, TRIPLES[i][2], mate);
    }
    cr_expect(right >= n - 1, "%zu of %zu paraphrases rank above their template mate (at least %zu expected); misses:%s", right, n, n - 1,
              misses);
    free(e);
    sembed_context_free(ctx);
    sembed_model_free(m);
}

Test(default_model, paraphrases_closer_than_unrelated) {
    struct sembed_model *m;
    struct sembed_context *ctx = open_default(&m);
    // pairs (0,1) (2,3) (4,5) (6,7) are paraphrases that share words; across pairs the topics differ
    const char *t[] = {"A man is playing a guitar.",          "A man plays the guitar.",
                       "A woman is slicing an onion.",        "A woman is cutting an onion.",
                       "The stock market fell sharply today.", "Stock prices fell sharply.",
                       "A dog runs in the park.",             "A puppy is running on the grass."};
    const size_t n = sizeof t / sizeof t[0], d = sembed_model_dim(m);
    float *e = malloc(n * d * sizeof *e);
    cr_assert_eq(sembed_embed_texts(ctx, t, n, e), 0);
    for (size_t i = 0; i < n; i++) {
        size_t p = i ^ 1;
        double pos = cosine(e + i * d, e + p * d, d);
        for (size_t j = 0; j < n; j++) {
            if (j == i || j == p) continue;
            double neg = cosine(e + i * d, e + j * d, d);
            cr_expect(pos > neg, "'%s': paraphrase cos %.3f <= '%s' cos %.3f", t[i], pos, t[j], neg);
        }
    }
    free(e);
    sembed_context_free(ctx);
    sembed_model_free(m);
}
