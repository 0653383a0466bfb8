// libFuzzer target for the HuggingFace / sentence-transformers folder readers of `sembed convert`
// (convert/hf.c over formats/jsonx.c): config.json, tokenizer_config.json, special_tokens_map.json,
// vocab.txt, tokenizer.json (WordPiece), vocab.json + merges.txt (legacy BPE), modules.json and
// the module configs. Those readers take a folder, so the input is a small archive of text files,
// written into a scratch folder (/dev/shm when there is one) before each run:
//
//     === config.json
//     {"hidden_size": 8, ...}
//     === vocab.txt
//     [PAD]
//     ...
//
// A record starts with "=== NAME\n" at the start of the input or after a newline and runs to the
// next record (the newline before "===" is not part of the file). Names outside the list below are
// ignored, so the fuzzer cannot write elsewhere. Seeds: tests/fuzz/seeds/gen_hf_dir.py.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/internal.h"

#include "fuzz_scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

static const char *const NAMES[] = {
    "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
    "vocab.json", "merges.txt", "modules.json", "sentence_bert_config.json", "1_Pooling/config.json",
    "2_Dense/config.json", "2_Dense/model.safetensors", "0_Transformer/config.json", "0_Transformer/vocab.txt",
    "tensors.txt",
};
#define N_NAMES (sizeof NAMES / sizeof *NAMES)
static const char *const SUBDIRS[] = {"1_Pooling", "2_Dense", "0_Transformer"};

static char g_dir[256];

static void path_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static void clear(void) {
    char p[512];
    for (size_t i = 0; i < N_NAMES; i++) {
        path_of(p, sizeof p, NAMES[i]);
        unlink(p);
    }
}

static void cleanup(void) {
    if (!g_dir[0]) return;
    clear();
    char p[512];
    for (size_t i = 0; i < sizeof SUBDIRS / sizeof *SUBDIRS; i++) {
        path_of(p, sizeof p, SUBDIRS[i]);
        rmdir(p);
    }
    rmdir(g_dir);
}

static int scratch(void) {
    static int state; // 0 untried, 1 ready, -1 unavailable
    if (state) return state > 0;
    state = fuzz_scratch_dir(g_dir, sizeof g_dir, "fuzz_hf_dir") ? 1 : -1;
    if (state < 0) return 0;
    char p[512];
    for (size_t i = 0; i < sizeof SUBDIRS / sizeof *SUBDIRS; i++) {
        path_of(p, sizeof p, SUBDIRS[i]);
        mkdir(p, 0700);
    }
    atexit(cleanup);
    return 1;
}

static void put(const char *name, size_t nlen, const uint8_t *body, size_t blen) {
    for (size_t i = 0; i < N_NAMES; i++) {
        if (strlen(NAMES[i]) != nlen || memcmp(NAMES[i], name, nlen)) continue;
        char p[512];
        path_of(p, sizeof p, NAMES[i]);
        FILE *f = fopen(p, "wb");
        if (!f) return;
        if (blen) fwrite(body, 1, blen, f);
        fclose(f);
        return;
    }
}

// Split the input into records and write them.
static void unpack(const uint8_t *d, size_t n) {
    static const char MARK[] = "\n=== ";
    size_t pos;
    if (n >= 4 && !memcmp(d, "=== ", 4)) pos = 4;
    else {
        const uint8_t *m = memmem(d, n, MARK, 5);
        if (!m) return;
        pos = (size_t)(m - d) + 5;
    }
    while (pos < n) {
        const uint8_t *nl = memchr(d + pos, '\n', n - pos);
        if (!nl) return;
        size_t name_end = (size_t)(nl - d), body = name_end + 1;
        const uint8_t *next = body < n ? memmem(d + body, n - body, MARK, 5) : NULL;
        size_t body_end = next ? (size_t)(next - d) : n;
        put((const char *)d + pos, name_end - pos, d + body, body_end - body);
        if (!next) return;
        pos = body_end + 5;
    }
}

// The tensor-name stage of a conversion (sc_hf_canonicalize: source names -> canonical names per
// architecture, task heads dropped; sc_hf_validate: every expected tensor with the shape the
// config implies, nothing unexpected) over the tensors listed in tensors.txt, one per line:
// "NAME D0 [D1] [f16|bf16|q8|i32]". These stages read names, shapes and dtypes, never data. A line
// "!keep_mlm" asks for the MLM head as --keep-mlm-head does.
static void tensor_stage(struct sc_ctx *c) {
    char p[512];
    path_of(p, sizeof p, "tensors.txt");
    FILE *f = fopen(p, "r");
    if (!f) return;
    char line[512];
    bool keep_mlm = false;
    for (int k = 0; k < 4096 && fgets(line, sizeof line, f); k++) {
        if (!strncmp(line, "!keep_mlm", 9)) { keep_mlm = true; continue; }
        char name[300], ty[8] = "";
        long long d[2] = {0, 0};
        int got = sscanf(line, "%299s %lld %lld %7s", name, &d[0], &d[1], ty);
        if (got < 2) continue;
        if (got == 3 && (d[1] < 0)) got = 2;
        uint32_t nd = got >= 3 ? 2 : 1;
        int64_t dims[2] = {d[0], d[1]};
        if (d[0] < 0 || d[0] > (1 << 20) || d[1] < 0 || d[1] > (1 << 20)) continue;
        enum sembed_dtype dt = !strcmp(ty, "f16") ? SEMBED_DTYPE_F16 : !strcmp(ty, "bf16") ? SEMBED_DTYPE_BF16
                             : !strcmp(ty, "q8") ? SEMBED_DTYPE_Q8_ROW : !strcmp(ty, "i32") ? SEMBED_DTYPE_I32
                                                                                               : SEMBED_DTYPE_F32;
        if (sc_source_add(&c->src, name, dt, nd, dims, NULL, NULL)) break;
    }
    fclose(f);
    bool has_pooler = false, has_mlm = false;
    if (sc_hf_canonicalize(c, keep_mlm) == 0) sc_hf_validate(c, keep_mlm, &has_pooler, &has_mlm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    if (!scratch() || size > ((size_t)1 << 20)) return 0;
    clear();
    unpack(data, size);
    struct sc_ctx c;
    memset(&c, 0, sizeof c); // as sc_convert_ex starts one
    c.tok.pre_lowercase = -1;
    c.pool.normalize = -1;
    c.root = g_dir;
    char *model_dir = NULL;
    const char *md = g_dir;
    if (sc_hf_st_modules(&c, g_dir, &model_dir) == 0 && model_dir) md = model_dir;
    int cfg = sc_hf_config(&c, md, false);
    sc_hf_tokenizer(&c, md);
    if (cfg == 0 && c.hp.hidden_size) tensor_stage(&c);
    free(model_dir);
    sc_ctx_free(&c);
    return 0;
}
