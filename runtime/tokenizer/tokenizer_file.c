// sembed_tokenizer_from_file / _borrow_file: the tokenizer.* keys of a .semb file
// (docs/format.md) -> tokenizer. Borrowing uses the file's strings and, when the file has one, its
// prebuilt index (tokenizer.index.*) in place: no copy, no table to build.
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "formats/semb_tokindex.h"
#include "sembed/semb.h"
#include "runtime/tokenizer/tokenizer_internal.h"
#include "sembed/tokenizer.h"

static int get_bool(const struct sembed_file *f, const char *FN, const char *key, bool required, bool *out) {
    int rc = sembed_file_get_bool(f, key, out);
    if (rc == SEMBED_ENOTFOUND && !required) return SEMBED_OK;
    if (rc == SEMBED_ENOTFOUND) return sembed_fail(SEMBED_EMISSING, FN, "required key '%s' (bool) is missing", key);
    if (rc) return sembed_fail(rc, FN, "key '%s': expected a bool (%s)", key, sembed_strerror(rc));
    return SEMBED_OK;
}

static int get_str(const struct sembed_file *f, const char *FN, const char *key, bool required, const char **out) {
    int rc = sembed_file_get_str(f, key, out, NULL);
    if (rc == SEMBED_ENOTFOUND && !required) return SEMBED_OK;
    if (rc == SEMBED_ENOTFOUND) return sembed_fail(SEMBED_EMISSING, FN, "required key '%s' (string) is missing", key);
    if (rc) return sembed_fail(rc, FN, "key '%s': expected a string (%s)", key, sembed_strerror(rc));
    return SEMBED_OK;
}

static int get_u32(const struct sembed_file *f, const char *FN, const char *key, uint32_t *out) {
    int rc = sembed_file_get_u32(f, key, out);
    if (rc == SEMBED_ENOTFOUND) return SEMBED_OK;
    if (rc) return sembed_fail(rc, FN, "key '%s': expected an unsigned 32-bit integer (%s)", key, sembed_strerror(rc));
    return SEMBED_OK;
}

static int from_file(const struct sembed_file *f, bool borrow, const char *FN, struct sembed_tokenizer **out) {
    if (!out) return sembed_fail(SEMBED_EINVAL, FN, "out is NULL");
    *out = NULL;
    if (!f) return sembed_fail(SEMBED_EINVAL, FN, "file is NULL");
    int rc;
    const char *model = NULL;
    if ((rc = get_str(f, FN, "tokenizer.model", true, &model))) return rc;
    if (strcmp(model, "hf_json") == 0) { // a tokenizer.json kept whole (docs/format.md)
        const char *js = NULL;
        uint64_t jl = 0;
        rc = sembed_file_get_str(f, "tokenizer.json", &js, &jl);
        if (rc == SEMBED_ENOTFOUND) return sembed_fail(SEMBED_EMISSING, FN, "tokenizer.model is 'hf_json' but 'tokenizer.json' is missing");
        if (rc) return sembed_fail(rc, FN, "key 'tokenizer.json': expected a string (%s)", sembed_strerror(rc));
        uint32_t mml = 0, max_pos = 0;
        if (sembed_file_get_u32(f, "bert.max_position_embeddings", &max_pos) == SEMBED_OK) mml = max_pos;
        if ((rc = get_u32(f, FN, "tokenizer.model_max_length", &mml))) return rc;
        if (max_pos > 0 && mml > max_pos)
            return sembed_fail(SEMBED_ECORRUPT, FN, "tokenizer.model_max_length %u exceeds bert.max_position_embeddings %u", mml, max_pos);
        rc = sembed_tokenizer_from_hf_json(js, (size_t)jl, mml, out);
        if (rc) return rc;
        uint32_t vocab_rows = 0;
        if (sembed_file_get_u32(f, "bert.vocab_size", &vocab_rows) == SEMBED_OK && vocab_rows < sembed_tokenizer_vocab_size(*out)) {
            size_t n = sembed_tokenizer_vocab_size(*out);
            sembed_tokenizer_free(*out);
            *out = NULL;
            return sembed_fail(SEMBED_ECORRUPT, FN, "tokenizer.json has %zu ids but bert.vocab_size is %u", n, vocab_rows);
        }
        return SEMBED_OK;
    }
    if (strcmp(model, "wordpiece") != 0)
        return sembed_fail(SEMBED_EUNSUPPORTED, FN, "tokenizer.model is '%s'; 'wordpiece' and 'hf_json' are supported", model);

    struct sembed_tokenizer_params p = sembed_tokenizer_default_params();
    p.mask_token = NULL;
    p.continuing_prefix = SEMB_TOKIDX_DEFAULT_PREFIX;
    if ((rc = get_bool(f, FN, "tokenizer.lowercase", true, &p.lowercase)) ||
        (rc = get_bool(f, FN, "tokenizer.strip_accents", true, &p.strip_accents)) ||
        (rc = get_bool(f, FN, "tokenizer.handle_chinese_chars", true, &p.handle_chinese_chars)) ||
        (rc = get_bool(f, FN, "tokenizer.clean_text", true, &p.clean_text)) ||
        (rc = get_bool(f, FN, "tokenizer.pre_lowercase", false, &p.pre_lowercase)) ||
        (rc = get_str(f, FN, "tokenizer.unk_token", true, &p.unk_token)) ||
        (rc = get_str(f, FN, "tokenizer.cls_token", true, &p.cls_token)) ||
        (rc = get_str(f, FN, "tokenizer.sep_token", true, &p.sep_token)) ||
        (rc = get_str(f, FN, "tokenizer.pad_token", true, &p.pad_token)) ||
        (rc = get_str(f, FN, "tokenizer.mask_token", false, &p.mask_token)) ||
        (rc = get_str(f, FN, "tokenizer.continuing_prefix", false, &p.continuing_prefix)) ||
        (rc = get_u32(f, FN, "tokenizer.max_input_chars_per_word", &p.max_input_chars_per_word)))
        return rc;
    // Default length: the model's position table, else BERT's 512.
    uint32_t max_pos = 0;
    if (sembed_file_get_u32(f, "bert.max_position_embeddings", &max_pos) == SEMBED_OK && max_pos > 0)
        p.model_max_length = max_pos;
    if ((rc = get_u32(f, FN, "tokenizer.model_max_length", &p.model_max_length))) return rc;
    if (p.model_max_length < 3)
        return sembed_fail(SEMBED_ECORRUPT, FN, "tokenizer.model_max_length %u is below 3", p.model_max_length);
    if (max_pos > 0 && p.model_max_length > max_pos)
        return sembed_fail(SEMBED_ECORRUPT, FN, "tokenizer.model_max_length %u exceeds bert.max_position_embeddings %u",
                           p.model_max_length, max_pos);

    struct tk_source src = {.borrow = borrow, .index = NULL};
    if ((rc = semb_tokidx_vocab(f, FN, &src.v, &src.vbytes, &src.n))) return rc;
    uint32_t vocab_rows = 0;
    if (sembed_file_get_u32(f, "bert.vocab_size", &vocab_rows) == SEMBED_OK && vocab_rows < src.n)
        return sembed_fail(SEMBED_ECORRUPT, FN, "tokenizer.vocab has %u tokens but bert.vocab_size is %u", src.n, vocab_rows);
    struct semb_tokidx_view ix;
    if (borrow) {
        rc = semb_tokidx_load(f, FN, &ix);
        if (rc < 0) return rc;
        if (rc == 1) src.index = &ix;
    }
    return tk_create(&src, &p, FN, out);
}

SEMBED_API int sembed_tokenizer_from_file(const struct sembed_file *f, struct sembed_tokenizer **out) {
    return from_file(f, false, "sembed_tokenizer_from_file", out);
}

SEMBED_API int sembed_tokenizer_borrow_file(const struct sembed_file *f, struct sembed_tokenizer **out) {
    return from_file(f, true, "sembed_tokenizer_borrow_file", out);
}
