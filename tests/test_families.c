// RoBERTa (byte-level BPE) and XLM-R (SentencePiece Unigram) end to end: text -> ids -> embedding
// through sembed, against HF tokenizers' ids and the PyTorch twin's mean-pooled states
// (models/gen/family_e2e.py), for single texts and pairs (<s> a </s></s> b </s>).
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/sembed.h"
#include "testutil.h"

static void check_family(const char *family) {
    if (tu_run("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1", NULL) != 0)
        cr_skip_test("/usr/bin/python3 with torch is not available");
    char *oracle = tu_path(tu_source_dir(), "tools/node/node_modules/tokenizers");
    if (!tu_file_exists(oracle)) {
        free(oracle);
        if (getenv("CI")) cr_assert_fail("tools/node/node_modules/tokenizers is missing under CI (tools/install-deps.sh installs it)");
        cr_skip_test("the HF tokenizer (npm tokenizers in tools/node) is not installed");
    }
    free(oracle);
    char *dir = tu_mkdtemp(), *cmd = NULL;
    cr_assert(asprintf(&cmd, "/usr/bin/python3 %s/models/gen/family_e2e.py --family %s --out %s >&2", tu_source_dir(),
                       family, dir) > 0);
    cr_assert_eq(tu_run(cmd, NULL), 0, "%s", cmd);
    free(cmd);
    char *src = tu_path(dir, "model"), *semb = tu_path(dir, "m.semb"), *expp = tu_path(dir, "expected.json");
    struct sembed_convert_params cp = sembed_convert_default_params();
    cp.src = src;
    cp.out = semb;
    cr_assert_eq(sembed_convert(&cp), 0, "convert %s", family);
    json_object *exp = json_object_from_file(expp);
    cr_assert(exp);
    json_object *inputs = json_object_object_get(exp, "inputs"), *ids = json_object_object_get(exp, "ids"),
                *mean = json_object_object_get(exp, "mean");
    const size_t n = json_object_array_length(inputs);
    struct sembed_model *m = NULL;
    cr_assert_eq(sembed_model_load(semb, NULL, &m), 0);
    struct sembed_context_params p = sembed_context_default_params();
    p.pooling = SEMBED_POOLING_MEAN;
    p.normalize = SEMBED_NORMALIZE_OFF;
    struct sembed_context *ctx = NULL;
    cr_assert_eq(sembed_context_create(m, &p, &ctx), 0);
    const uint32_t H = sembed_model_dim(m);
    const char **a = calloc(n, sizeof *a), **b = calloc(n, sizeof *b);
    float *e = calloc(n * H, sizeof *e);
    int32_t tid[512];
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *in = json_object_array_get_idx(inputs, i);
        a[i] = json_object_get_string(json_object_array_get_idx(in, 0));
        json_object *bj = json_object_array_get_idx(in, 1);
        b[i] = bj ? json_object_get_string(bj) : NULL;
        uint32_t k = 0;
        bool cut = false;
        cr_assert_eq(sembed_tokenizer_encode_input(sembed_model_tokenizer(m), a[i], SIZE_MAX, b[i], SIZE_MAX, 512,
                                                   SEMBED_TRUNCATE_LONGEST_FIRST, tid, NULL, &k, &cut), 0);
        json_object *want = json_object_array_get_idx(ids, i);
        cr_assert_eq(k, json_object_array_length(want), "%s input %zu: %u ids, HF has %zu", family, i, k,
                     json_object_array_length(want));
        for (uint32_t t = 0; t < k; t++)
            cr_assert_eq(tid[t], json_object_get_int(json_object_array_get_idx(want, t)), "%s input %zu token %u", family, i, t);
    }
    // One call over singles and pairs together: each row equals the twin's.
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(sembed_embed_pairs(ctx, &a[i], b[i] ? &b[i] : NULL, 1, e + i * H), 0);
        json_object *w = json_object_array_get_idx(mean, i);
        for (uint32_t j = 0; j < H; j++) {
            double d = fabs(e[i * H + j] - json_object_get_double(json_object_array_get_idx(w, j)));
            cr_assert(d <= 1e-4, "%s input %zu dim %u: %g vs %g", family, i, j, (double)e[i * H + j],
                      json_object_get_double(json_object_array_get_idx(w, j)));
            worst = d > worst ? d : worst;
        }
    }
    fprintf(stderr, "%s: %zu inputs, ids equal to HF, max |emb - twin| %.2e\n", family, n, worst);
    free(a), free(b), free(e);
    sembed_context_free(ctx);
    sembed_model_free(m);
    json_object_put(exp);
    free(src), free(semb), free(expp);
    tu_rmtree(dir);
    free(dir);
}

Test(families, roberta_bpe_text_to_embedding, .timeout = 300) { check_family("roberta"); }
Test(families, xlmr_unigram_text_to_embedding, .timeout = 300) { check_family("xlmr"); }
// A checkpoint with sentencepiece.bpe.model only (sentencepiece's test_model.model): sembed converts
// the protobuf itself (convert/spm.c); HF's ids are those of the tokenizer.json made of it apart.
Test(families, xlmr_sentencepiece_model_text_to_embedding, .timeout = 300) { check_family("xlmr_spm"); }
