// sembed convert: every input path gives the PyTorch parameters bit for bit, the paths agree with
// each other, q8 stays within its error bound, the metadata carries config / tokenizer / pooling,
// and hostile inputs are refused with a clear error and no output file.
//
// Fixtures: tests/fixtures/bert-tiny (committed, F16 weights) and, when /usr/bin/python3 has
// torch, models/gen/make_fixtures.py output generated into the build dir (bert-tiny with a small
// vocabulary; MiniLM-L6 and bert-base shapes with the real 30,522-token vocabulary).
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "runtime/kernels/kernels.h"
#include "sembed/convert.h"
#include "sembed/model.h"
#include "sembed/model.h"
#include "sembed/semb.h"
#include "sembed/tokenizer.h"
#include "testutil.h"

// ---------------------------------------------------------------- log capture
static char g_log[8192];
static void capture(enum sembed_log_level lvl, const char *msg, void *ud) {
    (void)ud;
    if (lvl < SEMBED_LOG_WARN) return;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s\n", msg);
}
static void log_reset(void) {
    g_log[0] = 0;
    sembed_log_set(capture, NULL);
}

// ---------------------------------------------------------------- fixtures
static int have_torch(void) {
    static int cached = -1;
    if (cached < 0) cached = tu_run("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1", NULL) == 0;
    return cached;
}

// Generate (once per build dir) the fixture set for shape/vocab; returns its folder or NULL.
static const char *fixtures(const char *shape, const char *vocab, int max_pos, const char *only) {
    static char path[3][4096];
    int slot = !strcmp(shape, "bert-tiny") ? 0 : !strcmp(shape, "minilm-l6") ? 1 : 2;
    if (!have_torch()) return NULL;
    snprintf(path[slot], sizeof path[slot], "%s/convert-fixtures/%s-%s", SEMBED_BINARY_DIR, shape, vocab);
    char *done = tu_path(path[slot], ".done");
    if (!tu_file_exists(done)) {
        char *cmd = NULL;
        cr_assert(asprintf(&cmd, "/usr/bin/python3 %s/models/gen/make_fixtures.py --out %s --shape %s --vocab %s --max-pos %d %s%s >&2",
                           tu_source_dir(), path[slot], shape, vocab, max_pos, only ? "--only " : "", only ? only : "") > 0);
        int rc = tu_run(cmd, NULL);
        free(cmd);
        cr_assert_eq(rc, 0, "make_fixtures.py failed (exit %d)", rc);
        tu_write_file(done, "ok\n", 3);
    }
    free(done);
    return path[slot];
}

#define NEED_FIXTURES(var, ...)                                                                    \
    const char *var = fixtures(__VA_ARGS__);                                                       \
    if (!var) cr_skip_test("/usr/bin/python3 with torch is not available: PyTorch fixtures skipped")

// Expected tensors written by make_fixtures.py: name -> f32 data and shape.
struct expected {
    struct json_object *index;
    float *data;
    size_t n;
};
static struct expected load_expected(const char *dir, const char *stem) {
    struct expected e = {0};
    char *j = NULL, *b = NULL;
    cr_assert(asprintf(&j, "%s/expected/%s.json", dir, stem) > 0 && asprintf(&b, "%s/expected/%s.bin", dir, stem) > 0);
    e.index = json_object_from_file(j);
    cr_assert(e.index, "cannot read %s", j);
    size_t len;
    e.data = tu_read_file(b, &len);
    cr_assert(e.data, "cannot read %s", b);
    e.n = len / 4;
    free(j);
    free(b);
    return e;
}
static void expected_free(struct expected *e) {
    json_object_put(e->index);
    free(e->data);
}

static int convert(const char *src, const char *out, enum sembed_dtype dt, bool keep_mlm) {
    struct sembed_convert_params p = sembed_convert_default_params();
    p.src = src;
    p.out = out;
    p.dtype = dt;
    p.keep_mlm_head = keep_mlm;
    p.created = 0;
    log_reset();
    return sembed_convert(&p);
}

static struct sembed_file *convert_open(const char *src, const char *dir, const char *name, enum sembed_dtype dt, bool keep_mlm) {
    char *out = tu_path(dir, name);
    int rc = convert(src, out, dt, keep_mlm);
    cr_assert_eq(rc, 0, "convert %s: %s\n%s", src, sembed_strerror(rc), g_log);
    struct sembed_file *f;
    rc = sembed_file_open(out, &f);
    cr_assert_eq(rc, 0, "open %s: %s", out, sembed_strerror(rc));
    free(out);
    return f;
}

// Each expected tensor (optionally transformed by round) is in f as F32, bit for bit.
// Returns how many tensors were compared.
static int compare_expected(struct sembed_file *f, struct expected *e, const char *only_prefix, int round) {
    int n = 0;
    json_object_object_foreach(e->index, name, info) {
        if (only_prefix && strncmp(name, only_prefix, strlen(only_prefix))) continue;
        struct sembed_tensor t;
        int rc = sembed_file_find_tensor(f, name, &t);
        cr_assert_eq(rc, 0, "tensor %s missing from the .semb", name);
        cr_assert_eq(t.dtype, SEMBED_DTYPE_F32, "%s: dtype %s, expected f32", name, sembed_dtype_name(t.dtype));
        struct json_object *shape = json_object_object_get(info, "shape");
        size_t nd = json_object_array_length(shape), numel = 1;
        cr_assert_eq(t.n_dims, nd, "%s: %u dims, expected %zu", name, t.n_dims, nd);
        for (size_t d = 0; d < nd; d++) {
            int64_t want = json_object_get_int64(json_object_array_get_idx(shape, d));
            cr_assert_eq(t.dims[d], want, "%s: dim %zu is %lld, expected %lld", name, d, (long long)t.dims[d], (long long)want);
            numel *= (size_t)want;
        }
        size_t off = (size_t)json_object_get_int64(json_object_object_get(info, "offset")) / 4;
        cr_assert(off + numel <= e->n);
        const float *got = t.data, *want = e->data + off;
        size_t bad = 0;
        double maxdiff = 0;
        for (size_t i = 0; i < numel; i++) {
            float w = want[i];
            if (round == 16) w = sk_f16_to_f32(sk_f32_to_f16(w));
            if (round == 'b') w = sk_bf16_to_f32(sk_f32_to_bf16(w));
            if (memcmp(&got[i], &w, 4)) {
                bad++;
                double d = fabs((double)got[i] - (double)w);
                if (d > maxdiff) maxdiff = d;
            }
        }
        cr_assert_eq(bad, 0, "%s: %zu of %zu values differ from PyTorch (max abs diff %g)", name, bad, numel, maxdiff);
        n++;
    }
    return n;
}

static void expect_str(struct sembed_file *f, const char *key, const char *want) {
    const char *s;
    int rc = sembed_file_get_str(f, key, &s, NULL);
    cr_assert_eq(rc, 0, "%s missing", key);
    cr_assert_str_eq(s, want, "%s = \"%s\", expected \"%s\"", key, s, want);
}
static void expect_u32(struct sembed_file *f, const char *key, uint32_t want) {
    uint32_t v;
    cr_assert_eq(sembed_file_get_u32(f, key, &v), 0, "%s missing", key);
    cr_assert_eq(v, want, "%s = %u, expected %u", key, v, want);
}
static void expect_bool(struct sembed_file *f, const char *key, bool want) {
    bool v;
    cr_assert_eq(sembed_file_get_bool(f, key, &v), 0, "%s missing", key);
    cr_assert_eq(v, want, "%s = %d, expected %d", key, v, want);
}

static size_t dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    if (d) closedir(d);
    return n;
}

// ---------------------------------------------------------------- committed fixture (no torch needed)

Test(convert, committed_fixture_f16_source_widened_exactly) {
    char *src = tu_path(tu_source_dir(), "tests/fixtures/bert-tiny");
    char *dir = tu_mkdtemp();
    struct sembed_file *f = convert_open(src, dir, "tiny.semb", SEMBED_DTYPE_F32, false);
    // Compare with the source safetensors, decoded here from F16.
    char *st = tu_path(src, "model.safetensors");
    size_t len;
    void *buf = tu_read_file(st, &len);
    cr_assert(buf);
    struct sf_file sf;
    cr_assert_eq(sf_parse(buf, len, st, &sf), 0);
    cr_assert_eq((int64_t)sf.n, sembed_file_n_tensors(f), "tensor count: source %zu, semb %lld", sf.n, (long long)sembed_file_n_tensors(f));
    for (size_t i = 0; i < sf.n; i++) {
        struct sembed_tensor t;
        cr_assert_eq(sembed_file_find_tensor(f, sf.t[i].name, &t), 0, "%s missing", sf.t[i].name);
        cr_assert_eq(t.dtype, SEMBED_DTYPE_F32);
        size_t n = sf.t[i].nbytes / 2, bad = 0;
        for (size_t k = 0; k < n; k++) {
            uint16_t h;
            memcpy(&h, (const uint8_t *)sf.t[i].data + 2 * k, 2);
            float w = sk_f16_to_f32(h);
            bad += memcmp(&w, (const float *)t.data + k, 4) != 0;
        }
        cr_assert_eq(bad, 0, "%s: %zu values differ", sf.t[i].name, bad);
    }
    sf_free(&sf);
    free(buf);
    // Metadata from config.json, the tokenizer files and the sentence-transformers files.
    expect_str(f, "general.architecture", "bert");
    expect_str(f, "general.name", "bert-tiny");
    expect_str(f, "general.source.format", "safetensors");
    expect_str(f, "general.created", "1970-01-01T00:00:00Z");
    expect_u32(f, "bert.num_layers", 2);
    expect_u32(f, "bert.hidden_size", 128);
    expect_u32(f, "bert.num_heads", 2);
    expect_u32(f, "bert.intermediate_size", 512);
    expect_u32(f, "bert.vocab_size", 1049);
    expect_u32(f, "bert.type_vocab_size", 2);
    expect_str(f, "bert.hidden_act", "gelu");
    expect_bool(f, "bert.has_pooler", true);
    expect_str(f, "pooling.mode", "cls_before_pooler"); // ST's CLS token pooling: no pooler
    expect_bool(f, "pooling.normalize", true);
    expect_u32(f, "tokenizer.model_max_length", 64); // sentence_bert_config max_seq_length
    expect_bool(f, "tokenizer.lowercase", true);
    expect_bool(f, "tokenizer.strip_accents", true); // null in tokenizer.json: follows lowercase
    expect_bool(f, "tokenizer.pre_lowercase", false);
    expect_str(f, "tokenizer.cls_token", "[CLS]");
    expect_str(f, "tokenizer.mask_token", "[MASK]");
    enum sembed_type et;
    uint64_t count;
    const void *data;
    cr_assert_eq(sembed_file_get_arr(f, "tokenizer.vocab", &et, &count, &data), 0);
    cr_assert_eq(count, 1049, "vocab has %llu tokens, expected 1049", (unsigned long long)count);
    const char *tok;
    cr_assert_eq(sembed_file_get_arr_str(f, "tokenizer.vocab", 0, &tok, NULL), 0);
    cr_assert_str_eq(tok, "[PAD]");
    // Provenance: file names and 32-hex-digit xxh3-128 digests.
    cr_assert_eq(sembed_file_get_arr(f, "general.source.files", &et, &count, &data), 0);
    uint64_t nh;
    cr_assert_eq(sembed_file_get_arr(f, "general.source.xxh3", &et, &nh, &data), 0);
    cr_assert_eq(count, nh, "%llu files but %llu hashes", (unsigned long long)count, (unsigned long long)nh);
    bool saw_model = false;
    for (uint64_t i = 0; i < count; i++) {
        const char *name, *hex;
        sembed_file_get_arr_str(f, "general.source.files", i, &name, NULL);
        sembed_file_get_arr_str(f, "general.source.xxh3", i, &hex, NULL);
        cr_assert_eq(strlen(hex), 32, "hash of %s is \"%s\"", name, hex);
        saw_model |= !strcmp(name, "model.safetensors");
    }
    cr_assert(saw_model, "model.safetensors not listed in general.source.files");
    cr_assert_eq(sembed_file_verify(f, NULL), 0);
    sembed_file_free(f);
    free(st);
    tu_rmtree(dir);
    free(dir);
    free(src);
}

Test(convert, cli_usage_and_errors) {
    char *out = NULL, *cmd = NULL;
    cr_assert(asprintf(&cmd, "%s convert --help", tu_cli()) > 0);
    int rc = tu_run(cmd, &out);
    cr_assert_eq(rc, 0, "--help exit %d", rc);
    cr_assert(strstr(out, "usage: sembed convert"), "help text: %s", out);
    free(out);
    free(cmd);
    cr_assert(asprintf(&cmd, "%s convert x -o y --dtype q4 2>/dev/null", tu_cli()) > 0);
    cr_assert_eq(tu_run(cmd, NULL), 2, "bad --dtype must exit 2");
    free(cmd);
    cr_assert(asprintf(&cmd, "%s convert /nonexistent -o /tmp/x.semb 2>/dev/null", tu_cli()) > 0);
    cr_assert_eq(tu_run(cmd, NULL), 1, "missing source must exit 1");
    free(cmd);
    char *dir = tu_mkdtemp(), *o = tu_path(dir, "cli.semb");
    cr_assert(asprintf(&cmd, "%s convert %s/tests/fixtures/bert-tiny -o %s --dtype q8 --pooling mean --no-normalize --name tiny-q8",
                       tu_cli(), tu_source_dir(), o) > 0);
    rc = tu_run(cmd, NULL);
    cr_assert_eq(rc, 0, "convert exit %d", rc);
    struct sembed_file *f;
    cr_assert_eq(sembed_file_open(o, &f), 0);
    expect_str(f, "general.name", "tiny-q8");
    expect_str(f, "general.file_type", "q8");
    expect_str(f, "pooling.mode", "mean");
    expect_bool(f, "pooling.normalize", false);
    sembed_file_free(f);
    free(cmd);
    free(o);
    tu_rmtree(dir);
    free(dir);
}

// The tokenizer index (tokenizer.index.*) is written with the vocabulary, survives the q8
// calibration rewrite, verifies, and the model's tokenizer (which uses it in place) agrees with
// one built from the vocabulary alone.
Test(convert, tokenizer_index_written_and_used) {
    char *dir = tu_mkdtemp();
    char *src = tu_path(tu_source_dir(), "tests/fixtures/bert-tiny");
    for (int q = 0; q < 2; q++) {
        const char *name = q ? "q8.semb" : "f32.semb";
        struct sembed_file *f = convert_open(src, dir, name, q ? SEMBED_DTYPE_Q8_ROW : SEMBED_DTYPE_F32, false);
        enum sembed_type et;
        uint64_t nv = 0, noff = 0, nall = 0;
        cr_assert_eq(sembed_file_get_arr(f, "tokenizer.vocab", &et, &nv, NULL), 0);
        cr_assert_eq(sembed_file_get_arr(f, "tokenizer.index.offsets", &et, &noff, NULL), 0, "%s: no index", name);
        cr_assert_eq(et, SEMBED_TYPE_U32);
        cr_assert_eq(noff, nv, "%s: %llu offsets for %llu tokens", name, (unsigned long long)noff, (unsigned long long)nv);
        cr_assert_eq(sembed_file_get_arr(f, "tokenizer.index.all", &et, &nall, NULL), 0);
        cr_assert(nall >= 2 * nv && !(nall & (nall - 1)), "%s: %llu slots", name, (unsigned long long)nall);
        cr_assert_eq(sembed_file_verify_tokenizer_index(f), 0, "%s: index verifies\n%s", name, g_log);
        int64_t bad = 0;
        cr_assert_eq(sembed_file_verify(f, &bad), 0, "%s: sembed_file_verify", name);
        struct sembed_model *m = NULL;
        cr_assert_eq(sembed_model_load_file(f, NULL, &m), 0, "%s: load\n%s", name, g_log);
        struct sembed_tokenizer *ref = NULL;
        cr_assert_eq(sembed_tokenizer_from_file(f, &ref), 0);
        const struct sembed_tokenizer *t = sembed_model_tokenizer(m);
        const char *texts[] = {"Hello, world! The unaffable cat sat.", "Café, naïve 我想 ##ing [MASK] supercalifragilistic"};
        for (int i = 0; i < 2; i++) {
            int32_t a[64], b[64];
            size_t na = 0, nb = 0;
            cr_assert_eq(sembed_tokenizer_encode(t, texts[i], SIZE_MAX, a, 64, &na), 0);
            cr_assert_eq(sembed_tokenizer_encode(ref, texts[i], SIZE_MAX, b, 64, &nb), 0);
            cr_assert(na == nb && na <= 64 && memcmp(a, b, na * sizeof *a) == 0, "%s: '%s' tokenized differently", name, texts[i]);
        }
        for (uint64_t i = 0; i < nv; i++) {
            const char *tok;
            cr_assert_eq(sembed_file_get_arr_str(f, "tokenizer.vocab", i, &tok, NULL), 0);
            cr_assert_str_eq(sembed_tokenizer_token(t, (int32_t)i), tok);
        }
        sembed_tokenizer_free(ref);
        sembed_model_free(m);
        // sembed_file_add_tokenizer_index: a fresh index; every other key and every tensor as it was
        char *in = tu_path(dir, name), *re = tu_path(dir, "re.semb");
        cr_assert_eq(sembed_file_add_tokenizer_index(in, re), 0, "%s: add index\n%s", name, g_log);
        struct sembed_file *g;
        cr_assert_eq(sembed_file_open(re, &g), 0);
        cr_assert_eq(sembed_file_verify_tokenizer_index(g), 0);
        cr_assert_eq(sembed_file_n_kv(g), sembed_file_n_kv(f));
        for (int64_t i = 0; i < sembed_file_n_kv(f); i++)
            cr_assert_geq(sembed_file_find_kv(g, sembed_file_kv_key(f, i)), 0, "%s lost", sembed_file_kv_key(f, i));
        cr_assert_eq(sembed_file_n_tensors(g), sembed_file_n_tensors(f));
        for (int64_t i = 0; i < sembed_file_n_tensors(f); i++) {
            struct sembed_tensor a, b;
            cr_assert_eq(sembed_file_tensor(f, i, &a), 0);
            cr_assert_eq(sembed_file_tensor(g, i, &b), 0);
            cr_assert(!strcmp(a.name, b.name) && a.dtype == b.dtype && a.nbytes == b.nbytes && a.checksum == b.checksum &&
                          memcmp(a.data, b.data, (size_t)a.nbytes) == 0, "%s: tensor %s differs", name, a.name);
        }
        cr_assert_eq(sembed_file_verify(g, NULL), 0);
        sembed_file_free(g);
        cr_assert_eq(sembed_file_add_tokenizer_index(re, re), 0, "in place");
        cr_assert_eq(sembed_file_add_tokenizer_index(src, re), SEMBED_EIO, "a folder is not a .semb file");
        free(in);
        free(re);
        sembed_file_free(f);
    }
    free(src);
    tu_rmtree(dir);
    free(dir);
}

// ---------------------------------------------------------------- PyTorch fixtures: bit-exact per path

static void check_path(const char *variant, bool keep_mlm) {
    NEED_FIXTURES(fx, "bert-tiny", "small", 128, NULL);
    char *src = tu_path(fx, variant), *dir = tu_mkdtemp();
    struct expected e = load_expected(fx, "params");
    struct sembed_file *f = convert_open(src, dir, "m.semb", SEMBED_DTYPE_F32, keep_mlm);
    int n = 0;
    n += compare_expected(f, &e, "embeddings.", 0);
    n += compare_expected(f, &e, "encoder.", 0);
    n += compare_expected(f, &e, "pooler.", 0);
    cr_assert_eq(n, 5 + 2 * 16 + 2, "compared %d tensors", n);
    struct sembed_tensor t;
    if (keep_mlm) {
        cr_assert_eq(compare_expected(f, &e, "cls.", 0), 5);
        expect_bool(f, "bert.has_mlm_head", true);
    } else {
        cr_assert_neq(sembed_file_find_tensor(f, "cls.predictions.bias", &t), 0, "MLM head kept without --keep-mlm-head");
    }
    cr_assert_eq(sembed_file_n_tensors(f), n + (keep_mlm ? 5 : 0), "unexpected extra tensors");
    sembed_file_free(f);
    expected_free(&e);
    tu_rmtree(dir);
    free(dir);
    free(src);
}

Test(convert, safetensors_bit_exact, .timeout = 300) { check_path("safetensors", false); }
Test(convert, sharded_safetensors_bit_exact, .timeout = 300) { check_path("sharded", false); }
Test(convert, pytorch_zip_bit_exact, .timeout = 300) { check_path("bin", false); }
Test(convert, pytorch_zip_deflated_bit_exact, .timeout = 300) { check_path("bin_deflate", false); }
Test(convert, pytorch_zip_keep_mlm_head, .timeout = 300) { check_path("bin", true); }

Test(convert, f16_and_bf16_sources, .timeout = 300) {
    NEED_FIXTURES(fx, "bert-tiny", "small", 128, NULL);
    struct expected e = load_expected(fx, "params");
    char *dir = tu_mkdtemp();
    for (int k = 0; k < 2; k++) {
        char *src = tu_path(fx, k ? "bf16" : "f16");
        struct sembed_file *f = convert_open(src, dir, k ? "bf16.semb" : "f16.semb", SEMBED_DTYPE_F32, false);
        int n = compare_expected(f, &e, "e", k ? 'b' : 16) + compare_expected(f, &e, "pooler.", k ? 'b' : 16);
        cr_assert_eq(n, 5 + 2 * 16 + 2);
        sembed_file_free(f);
        free(src);
    }
    expected_free(&e);
    tu_rmtree(dir);
    free(dir);
}

Test(convert, paths_agree_with_each_other, .timeout = 300) {
    NEED_FIXTURES(fx, "bert-tiny", "small", 128, NULL);
    static const char *const paths[] = {"safetensors", "sharded", "bin", "bin_deflate", "st"};
    char *dir = tu_mkdtemp();
    struct sembed_file *f[5];
    for (int i = 0; i < 5; i++) {
        char *src = tu_path(fx, paths[i]), name[64];
        snprintf(name, sizeof name, "%s.semb", paths[i]);
        f[i] = convert_open(src, dir, name, SEMBED_DTYPE_F32, false);
        free(src);
    }
    for (int64_t k = 0; k < sembed_file_n_tensors(f[0]); k++) {
        struct sembed_tensor a, b;
        sembed_file_tensor(f[0], k, &a);
        for (int i = 1; i < 5; i++) {
            cr_assert_eq(sembed_file_find_tensor(f[i], a.name, &b), 0, "%s: %s missing", paths[i], a.name);
            cr_assert(a.nbytes == b.nbytes && !memcmp(a.data, b.data, a.nbytes), "%s: tensor %s differs from safetensors", paths[i], a.name);
        }
    }
    for (int i = 0; i < 5; i++) sembed_file_free(f[i]);
    tu_rmtree(dir);
    free(dir);
}

Test(convert, sentence_transformers_pipeline, .timeout = 300) {
    NEED_FIXTURES(fx, "bert-tiny", "small", 128, NULL);
    char *src = tu_path(fx, "st"), *dir = tu_mkdtemp();
    struct expected e = load_expected(fx, "st");
    struct sembed_file *f = convert_open(src, dir, "st.semb", SEMBED_DTYPE_F32, false);
    cr_assert_eq(compare_expected(f, &e, NULL, 0), 2);
    expect_str(f, "pooling.mode", "mean");
    expect_bool(f, "pooling.normalize", true);
    expect_u32(f, "pooling.dense_count", 1);
    expect_str(f, "pooling.dense.0.activation", "tanh");
    expect_u32(f, "tokenizer.model_max_length", 128);
    expect_bool(f, "tokenizer.pre_lowercase", true);          // sentence_bert_config do_lower_case
    expect_bool(f, "tokenizer.lowercase", false);             // tokenizer.json BertNormalizer
    expect_bool(f, "tokenizer.strip_accents", false);         // null -> follows lowercase
    expect_bool(f, "tokenizer.handle_chinese_chars", false);
    expect_bool(f, "tokenizer.clean_text", true);
    sembed_file_free(f);
    expected_free(&e);
    tu_rmtree(dir);
    free(dir);
    free(src);
}

Test(convert, distilbert_maps_to_bert_names, .timeout = 300) {
    NEED_FIXTURES(fx, "bert-tiny", "small", 128, NULL);
    char *src = tu_path(fx, "distil"), *dir = tu_mkdtemp();
    struct expected e = load_expected(fx, "distil");
    struct sembed_file *f = convert_open(src, dir, "d.semb", SEMBED_DTYPE_F32, false);
    int n = compare_expected(f, &e, NULL, 0);
    cr_assert_eq(n, 4 + 2 * 16, "compared %d tensors", n);
    cr_assert_eq(sembed_file_n_tensors(f), n);
    expect_u32(f, "bert.type_vocab_size", 0);
    expect_bool(f, "bert.has_pooler", false);
    expect_str(f, "bert.source_architecture", "DistilBertModel");
    sembed_file_free(f);
    expected_free(&e);
    tu_rmtree(dir);
    free(dir);
    free(src);
}

Test(convert, roberta_positions_start_past_padding, .timeout = 300) {
    NEED_FIXTURES(fx, "bert-tiny", "small", 128, NULL);
    char *src = tu_path(fx, "roberta"), *dir = tu_mkdtemp();
    struct expected e = load_expected(fx, "roberta");
    struct sembed_file *f = convert_open(src, dir, "r.semb", SEMBED_DTYPE_F32, false);
    int n = compare_expected(f, &e, NULL, 0);
    cr_assert_eq(n, 7 + 2 * 16, "compared %d tensors", n); // embeddings 3 tables + LN, pooler, 16 per layer
    cr_assert_eq(sembed_file_n_tensors(f), n, "the lm_head must not be converted");
    expect_u32(f, "bert.type_vocab_size", 1);
    expect_u32(f, "bert.position_offset", 2);
    expect_u32(f, "bert.max_position_embeddings", 130);
    expect_u32(f, "tokenizer.model_max_length", 128);
    expect_str(f, "bert.source_architecture", "RobertaForMaskedLM");
    sembed_file_free(f);
    // The runtime takes 128 tokens at most: positions 2..129.
    struct sembed_model *m = NULL;
    char *path = tu_path(dir, "r.semb");
    cr_assert_eq(sembed_model_load(path, NULL, &m), 0);
    cr_assert_eq(sembed_model_max_length(m), 128, "max_length %u", sembed_model_max_length(m));
    sembed_model_free(m);
    free(path);
    expected_free(&e);
    tu_rmtree(dir);
    free(dir);
    free(src);
}

Test(convert, mpnet_maps_to_bert_names, .timeout = 300) {
    NEED_FIXTURES(fx, "bert-tiny", "small", 128, NULL);
    char *src = tu_path(fx, "mpnet"), *dir = tu_mkdtemp();
    struct expected e = load_expected(fx, "mpnet");
    struct sembed_file *f = convert_open(src, dir, "p.semb", SEMBED_DTYPE_Q8_ROW, false);
    struct sembed_tensor t;
    cr_assert_eq(sembed_file_find_tensor(f, "encoder.relative_attention_bias.weight", &t), 0);
    cr_assert_eq(t.dtype, SEMBED_DTYPE_F32, "the bias table stays f32 in a q8 file, got %s", sembed_dtype_name(t.dtype));
    cr_assert(t.n_dims == 2 && t.dims[0] == 32 && t.dims[1] == 2, "bias table shape");
    expect_u32(f, "bert.relative_attention_buckets", 32);
    expect_u32(f, "bert.relative_attention_max_distance", 128);
    expect_u32(f, "bert.position_offset", 2);
    expect_u32(f, "bert.type_vocab_size", 0);
    expect_str(f, "bert.source_architecture", "MPNetForMaskedLM");
    // word + position tables, embedding LayerNorm (2), the bias table, pooler (2), 16 per layer
    cr_assert_eq(sembed_file_n_tensors(f), 7 + 2 * 16, "%u tensors: the lm_head must not be converted",
                 (unsigned)sembed_file_n_tensors(f));
    sembed_file_free(f);
    // f32: every tensor equals the checkpoint's under its BERT name.
    f = convert_open(src, dir, "p32.semb", SEMBED_DTYPE_F32, false);
    int n = compare_expected(f, &e, NULL, 0);
    cr_assert_eq(n, (int)sembed_file_n_tensors(f), "compared %d of %u tensors", n, (unsigned)sembed_file_n_tensors(f));
    sembed_file_free(f);
    expected_free(&e);
    tu_rmtree(dir);
    free(dir);
    free(src);
}

// q8: Linear weights int8 + per-row scale with |w - q*s| <= s/2; word table f16; the rest f32.
static void check_q8(const char *fx, const char *variant) {
    char *src = tu_path(fx, variant), *dir = tu_mkdtemp();
    struct expected e = load_expected(fx, "params");
    struct sembed_file *f = convert_open(src, dir, "q8.semb", SEMBED_DTYPE_Q8_ROW, false);
    expect_str(f, "quant.method", "q8_row");
    int n_q = 0;
    json_object_object_foreach(e.index, name, info) {
        struct sembed_tensor t;
        if (sembed_file_find_tensor(f, name, &t) != 0) continue; // MLM head
        size_t off = (size_t)json_object_get_int64(json_object_object_get(info, "offset")) / 4;
        const float *w = e.data + off;
        uint64_t numel = 1;
        for (uint32_t d = 0; d < t.n_dims; d++) numel *= (uint64_t)t.dims[d];
        if (!strcmp(name, "embeddings.word_embeddings.weight")) {
            cr_assert_eq(t.dtype, SEMBED_DTYPE_F16, "word embeddings: %s", sembed_dtype_name(t.dtype));
            for (uint64_t i = 0; i < numel; i++) {
                uint16_t h;
                memcpy(&h, (const uint8_t *)t.data + 2 * i, 2);
                cr_assert_eq(h, sk_f32_to_f16(w[i]), "word embedding %llu not the f16 rounding", (unsigned long long)i);
            }
        } else if (t.n_dims == 2 && strncmp(name, "embeddings.", 11)) {
            cr_assert_eq(t.dtype, SEMBED_DTYPE_Q8_ROW, "%s: %s", name, sembed_dtype_name(t.dtype));
            uint64_t rows = (uint64_t)t.dims[0], cols = (uint64_t)t.dims[1];
            const int8_t *q = t.data;
            const float *sc = (const float *)((const uint8_t *)t.data + ((rows * cols + 63) / 64) * 64);
            double worst = 0;
            for (uint64_t r = 0; r < rows; r++) {
                float amax = 0;
                for (uint64_t c = 0; c < cols; c++) amax = fmaxf(amax, fabsf(w[r * cols + c]));
                cr_assert_eq(sc[r], amax / 127.0f, "%s row %llu: scale %g, expected max|w|/127 = %g", name, (unsigned long long)r,
                             (double)sc[r], (double)(amax / 127.0f));
                for (uint64_t c = 0; c < cols; c++) {
                    double err = fabs((double)w[r * cols + c] - (double)q[r * cols + c] * (double)sc[r]);
                    double bound = 0.5 * (double)sc[r] * (1 + 1e-6);
                    if (err / sc[r] > worst) worst = err / sc[r];
                    cr_assert(err <= bound, "%s[%llu,%llu]: |w - q*s| = %g > s/2 = %g", name, (unsigned long long)r,
                              (unsigned long long)c, err, 0.5 * (double)sc[r]);
                }
            }
            cr_assert(worst <= 0.5 + 1e-6, "%s: worst error %g scales", name, worst);
            n_q++;
        } else {
            cr_assert_eq(t.dtype, SEMBED_DTYPE_F32, "%s: %s", name, sembed_dtype_name(t.dtype));
            cr_assert(!memcmp(t.data, w, numel * 4), "%s differs", name);
        }
    }
    struct sembed_tensor any;
    cr_assert_eq(sembed_file_find_tensor(f, "encoder.layer.0.attention.self.query.weight", &any), 0);
    cr_assert(n_q >= 6 * 2 + 1, "only %d q8 tensors checked", n_q);
    cr_assert_eq(sembed_file_verify(f, NULL), 0);
    sembed_file_free(f);
    expected_free(&e);
    tu_rmtree(dir);
    free(dir);
    free(src);
}

Test(convert, q8_row_error_within_half_scale, .timeout = 300) {
    NEED_FIXTURES(fx, "bert-tiny", "small", 128, NULL);
    check_q8(fx, "safetensors");
}

Test(convert, f16_and_bf16_targets, .timeout = 300) {
    NEED_FIXTURES(fx, "bert-tiny", "small", 128, NULL);
    char *src = tu_path(fx, "safetensors"), *dir = tu_mkdtemp();
    for (int k = 0; k < 2; k++) {
        struct sembed_file *f = convert_open(src, dir, k ? "b.semb" : "h.semb", k ? SEMBED_DTYPE_BF16 : SEMBED_DTYPE_F16, false);
        struct sembed_tensor t;
        cr_assert_eq(sembed_file_find_tensor(f, "encoder.layer.1.output.dense.weight", &t), 0);
        cr_assert_eq(t.dtype, k ? SEMBED_DTYPE_BF16 : SEMBED_DTYPE_F16);
        cr_assert_eq(sembed_file_find_tensor(f, "encoder.layer.1.output.LayerNorm.weight", &t), 0);
        cr_assert_eq(t.dtype, SEMBED_DTYPE_F32, "1-D tensors stay f32");
        expect_str(f, "general.file_type", k ? "bf16" : "f16");
        sembed_file_free(f);
    }
    tu_rmtree(dir);
    free(dir);
    free(src);
}

// ---------------------------------------------------------------- hostile inputs

static void expect_refused(const char *src, int want_rc, const char *want_msg) {
    char *dir = tu_mkdtemp(), *out = tu_path(dir, "x.semb");
    int rc = convert(src, out, SEMBED_DTYPE_F32, false);
    cr_assert_eq(rc, want_rc, "%s: got %s (%d), expected %s\nlog:\n%s", src, sembed_strerror(rc), rc, sembed_strerror(want_rc), g_log);
    cr_assert(strstr(g_log, want_msg), "%s: error does not mention \"%s\":\n%s", src, want_msg, g_log);
    cr_assert_eq(dir_entries(dir), 0, "%s: a file was left in the output folder", src);
    tu_rmtree(dir);
    free(dir);
    free(out);
}

Test(convert, malicious_pickles_refused, .timeout = 300) {
    NEED_FIXTURES(fx, "bert-tiny", "small", 128, NULL);
    char *p;
    p = tu_path(fx, "hostile/zip_os_system"); expect_refused(p, SEMBED_EUNSAFE, "posix.system"); free(p);
    p = tu_path(fx, "hostile/zip_eval"); expect_refused(p, SEMBED_EUNSAFE, "builtins.eval"); free(p);
    p = tu_path(fx, "hostile/zip_subprocess"); expect_refused(p, SEMBED_EUNSAFE, "subprocess.Popen"); free(p);
    cr_assert(!tu_file_exists("/tmp/sembed-pwned"), "a payload ran");
}

Test(convert, legacy_torch_format_refused, .timeout = 300) {
    NEED_FIXTURES(fx, "bert-tiny", "small", 128, NULL);
    char *p = tu_path(fx, "legacy");
    expect_refused(p, SEMBED_EUNSUPPORTED, "torch>=1.6");
    free(p);
}

// Copy the committed fixture's config/tokenizer into a temp folder with a given weights file.
static char *folder_with_weights(const void *w, size_t n, const char *wname) {
    char *dir = tu_mkdtemp();
    static const char *const files[] = {"config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *s = NULL;
        cr_assert(asprintf(&s, "%s/tests/fixtures/bert-tiny/%s", tu_source_dir(), files[i]) > 0);
        size_t len;
        void *b = tu_read_file(s, &len);
        cr_assert(b, "%s", s);
        char *d = tu_path(dir, files[i]);
        tu_write_file(d, b, len);
        free(d);
        free(b);
        free(s);
    }
    char *d = tu_path(dir, wname);
    tu_write_file(d, w, n);
    free(d);
    return dir;
}

static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

// The committed model with a rewritten header: one tensor's data_offsets lie.
static uint8_t *rewrite_offsets(const uint8_t *orig, size_t len, const char *how, size_t *out_len) {
    uint64_t hl;
    memcpy(&hl, orig, 8);
    char *hs = strndup((const char *)orig + 8, hl);
    struct json_object *h = json_tokener_parse(hs);
    free(hs);
    cr_assert(h);
    const char *victim = "encoder.layer.0.attention.self.key.weight";
    struct json_object *e = json_object_object_get(h, victim), *offs = json_object_object_get(e, "data_offsets");
    int64_t a = json_object_get_int64(json_object_array_get_idx(offs, 0)), b = json_object_get_int64(json_object_array_get_idx(offs, 1));
    int64_t na = a, nb = b;
    if (!strcmp(how, "past_end")) { na = a + ((int64_t)1 << 30); nb = b + ((int64_t)1 << 30); }
    if (!strcmp(how, "overlap")) { na = 0; nb = b - a; }          // on top of the first tensor
    if (!strcmp(how, "lying_size")) { nb = b + 4; }               // more bytes than the shape needs
    json_object_array_put_idx(offs, 0, json_object_new_int64(na));
    json_object_array_put_idx(offs, 1, json_object_new_int64(nb));
    const char *js = json_object_to_json_string_ext(h, JSON_C_TO_STRING_PLAIN);
    size_t jl = strlen(js), data = len - 8 - hl;
    uint8_t *b2 = malloc(8 + jl + data);
    uint64_t jl64 = jl;
    memcpy(b2, &jl64, 8);
    memcpy(b2 + 8, js, jl);
    memcpy(b2 + 8 + jl, orig + 8 + hl, data);
    *out_len = 8 + jl + data;
    json_object_put(h);
    return b2;
}

Test(convert, hostile_safetensors_refused_without_output) {
    char *st = NULL;
    cr_assert(asprintf(&st, "%s/tests/fixtures/bert-tiny/model.safetensors", tu_source_dir()) > 0);
    size_t len;
    uint8_t *orig = tu_read_file(st, &len);
    cr_assert(orig);
    struct { const char *what; int rc; const char *msg; } cases[] = {
        {"past_end", SEMBED_EBOUNDS, "outside"},      {"overlap", SEMBED_EOVERLAP, "overlaps"},
        {"lying_size", SEMBED_EDIMS, "needs"},        {"header_len", SEMBED_ETRUNCATED, "header length"},
        {"huge_header", SEMBED_ETOOLONG, "header length"}, {"truncated", SEMBED_ECORRUPT, "unindexed"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n = len;
        uint8_t *b;
        if (c < 3) {
            b = rewrite_offsets(orig, len, cases[c].what, &n);
        } else {
            b = malloc(len);
            memcpy(b, orig, len);
            if (c == 3) put_u64(b, len);
            if (c == 4) put_u64(b, (uint64_t)1 << 40);
            if (c == 5) n = len - 100; // last tensor cut short: the header now points past the end
        }
        char *dir = folder_with_weights(b, n, "model.safetensors");
        char *out = tu_path(dir, "out.semb");
        int rc = convert(dir, out, SEMBED_DTYPE_F32, false);
        if (c == 5) cases[c].rc = SEMBED_EBOUNDS, cases[c].msg = "outside";
        cr_assert_eq(rc, cases[c].rc, "%s: got %s, expected %s\n%s", cases[c].what, sembed_strerror(rc), sembed_strerror(cases[c].rc), g_log);
        cr_assert(strstr(g_log, "model.safetensors") && strstr(g_log, cases[c].msg), "%s: unclear error:\n%s", cases[c].what, g_log);
        cr_assert(!tu_file_exists(out), "%s: output left behind", cases[c].what);
        cr_assert_eq(dir_entries(dir), 6, "%s: stray files in the folder", cases[c].what);
        free(out);
        tu_rmtree(dir);
        free(dir);
        free(b);
    }
    free(orig);
    free(st);
}

// Issue 20 audit: a torch.save zip whose tensor view is [65536, 65536, 65536, 65536] with strides 0
// over a 65536-float storage (tests/fixtures/pickle/regress-view-overflow.bin, written by a Python
// pickler with torch's record layout). The element count 2^64 once wrapped to 0 and passed the
// storage bound (and the contiguity stride overflowed int64: UBSan); now it is refused.
Test(convert, torch_view_shape_overflow_refused) {
    char *bin = NULL;
    cr_assert(asprintf(&bin, "%s/tests/fixtures/pickle/regress-view-overflow.bin", tu_source_dir()) > 0);
    size_t len;
    void *b = tu_read_file(bin, &len);
    cr_assert(b, "%s missing", bin);
    char *dir = folder_with_weights(b, len, "pytorch_model.bin");
    char *out = tu_path(dir, "out.semb");
    int rc = convert(dir, out, SEMBED_DTYPE_F32, false);
    cr_expect_eq(rc, SEMBED_EBOUNDS, "got %s, expected %s\n%s", sembed_strerror(rc), sembed_strerror(SEMBED_EBOUNDS), g_log);
    cr_expect(strstr(g_log, "outside its storage") != NULL, "unclear error:\n%s", g_log);
    cr_expect(!tu_file_exists(out), "output left behind");
    free(out);
    tu_rmtree(dir);
    free(dir);
    free(b);
    free(bin);
}

Test(convert, refuses_other_architectures) {
    char *dir = tu_mkdtemp();
    char *cfg = tu_path(dir, "config.json");
    const char *j = "{\"architectures\": [\"ElectraModel\"], \"model_type\": \"electra\", \"hidden_size\": 8}";
    tu_write_file(cfg, j, strlen(j));
    char *out = tu_path(dir, "o.semb");
    int rc = convert(dir, out, SEMBED_DTYPE_F32, false);
    cr_assert_eq(rc, SEMBED_EARCH, "got %s\n%s", sembed_strerror(rc), g_log);
    cr_assert(strstr(g_log, "ElectraModel") && strstr(g_log, "electra"), "error does not name the architecture:\n%s", g_log);
    cr_assert(!tu_file_exists(out));
    free(out);
    free(cfg);
    tu_rmtree(dir);
    free(dir);
}

Test(convert, does_not_replace_existing_output_on_failure) {
    char *dir = tu_mkdtemp(), *out = tu_path(dir, "keep.semb");
    tu_write_file(out, "precious", 8);
    int rc = convert("/nonexistent/folder", out, SEMBED_DTYPE_F32, false);
    cr_assert_neq(rc, 0);
    size_t n;
    char *b = tu_read_file(out, &n);
    cr_assert(b && n == 8 && !memcmp(b, "precious", 8), "existing output was touched");
    free(b);
    free(out);
    tu_rmtree(dir);
    free(dir);
}

// ---------------------------------------------------------------- real shapes, real vocabulary

Test(convert, minilm_l6_real_vocab_all_paths, .timeout = 900) {
    NEED_FIXTURES(fx, "minilm-l6", "real", 512, "safetensors,bin,st");
    struct expected e = load_expected(fx, "params");
    char *dir = tu_mkdtemp();
    static const char *const paths[] = {"safetensors", "bin", "st"};
    for (int i = 0; i < 3; i++) {
        char *src = tu_path(fx, paths[i]);
        struct sembed_file *f = convert_open(src, dir, "m.semb", SEMBED_DTYPE_F32, false);
        int n = compare_expected(f, &e, "e", 0) + compare_expected(f, &e, "pooler.", 0);
        cr_assert_eq(n, 5 + 6 * 16 + 2, "%s: compared %d tensors", paths[i], n);
        expect_u32(f, "bert.vocab_size", 30522);
        const char *tok;
        cr_assert_eq(sembed_file_get_arr_str(f, "tokenizer.vocab", 101, &tok, NULL), 0);
        cr_assert_str_eq(tok, "[CLS]");
        sembed_file_free(f);
        free(src);
    }
    check_q8(fx, "safetensors");
    expected_free(&e);
    tu_rmtree(dir);
    free(dir);
}

Test(convert, bert_base_real_vocab, .timeout = 1800) {
    if (!getenv("SEMBED_TEST_LARGE") && !getenv("CI"))
        cr_skip_test("bert-base fixture (~1.3 GB on disk) runs in CI or with SEMBED_TEST_LARGE=1");
    NEED_FIXTURES(fx, "bert-base", "real", 512, "safetensors");
    struct expected e = load_expected(fx, "params");
    char *src = tu_path(fx, "safetensors"), *dir = tu_mkdtemp();
    struct sembed_file *f = convert_open(src, dir, "base.semb", SEMBED_DTYPE_F32, false);
    int n = compare_expected(f, &e, "e", 0) + compare_expected(f, &e, "pooler.", 0);
    cr_assert_eq(n, 5 + 12 * 16 + 2, "compared %d tensors", n);
    sembed_file_free(f);
    expected_free(&e);
    check_q8(fx, "safetensors");
    tu_rmtree(dir);
    free(dir);
    free(src);
}
