// sembed_tokenizer_from_file: the tokenizer.* keys of a .semb file (docs/format.md) -> tokenizer.
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "sembed/semb.h"
#include "runtime/tokenizer/tokenizer_internal.h"
#include "sembed/tokenizer.h"

static const char FN[] = "sembed_tokenizer_from_file";

static int get_bool(const struct sembed_file *f, const char *key, bool required, bool *out) {
    int rc = sembed_file_get_bool(f, key, out);
    if (rc == SEMBED_ENOTFOUND && !required) return SEMBED_OK;
    if (rc == SEMBED_ENOTFOUND) return sembed_fail(SEMBED_EMISSING, FN, "required key '%s' (bool) is missing", key);
    if (rc) return sembed_fail(rc, FN, "key '%s': expected a bool (%s)", key, sembed_strerror(rc));
    return SEMBED_OK;
}

static int get_str(const struct sembed_file *f, const char *key, bool required, const char **out) {
    int rc = sembed_file_get_str(f, key, out, NULL);
    if (rc == SEMBED_ENOTFOUND && !required) return SEMBED_OK;
    if (rc == SEMBED_ENOTFOUND) return sembed_fail(SEMBED_EMISSING, FN, "required key '%s' (string) is missing", key);
    if (rc) return sembed_fail(rc, FN, "key '%s': expected a string (%s)", key, sembed_strerror(rc));
    return SEMBED_OK;
}

static int get_u32(const struct sembed_file *f, const char *key, uint32_t *out) {
    int rc = sembed_file_get_u32(f, key, out);
    if (rc == SEMBED_ENOTFOUND) return SEMBED_OK;
    if (rc) return sembed_fail(rc, FN, "key '%s': expected an unsigned 32-bit integer (%s)", key, sembed_strerror(rc));
    return SEMBED_OK;
}

SEMBED_API int sembed_tokenizer_from_file(const struct sembed_file *f, struct sembed_tokenizer **out) {
    if (!out) return sembed_fail(SEMBED_EINVAL, FN, "out is NULL");
    *out = NULL;
    if (!f) return sembed_fail(SEMBED_EINVAL, FN, "file is NULL");
    int rc;
    const char *model = NULL;
    if ((rc = get_str(f, "tokenizer.model", true, &model))) return rc;
    if (strcmp(model, "wordpiece") != 0)
        return sembed_fail(SEMBED_EUNSUPPORTED, FN, "tokenizer.model is '%s'; only 'wordpiece' is supported", model);

    struct sembed_tokenizer_params p = sembed_tokenizer_default_params();
    p.mask_token = NULL;
    if ((rc = get_bool(f, "tokenizer.lowercase", true, &p.lowercase)) ||
        (rc = get_bool(f, "tokenizer.strip_accents", true, &p.strip_accents)) ||
        (rc = get_bool(f, "tokenizer.handle_chinese_chars", true, &p.handle_chinese_chars)) ||
        (rc = get_bool(f, "tokenizer.clean_text", true, &p.clean_text)) ||
        (rc = get_bool(f, "tokenizer.pre_lowercase", false, &p.pre_lowercase)) ||
        (rc = get_str(f, "tokenizer.unk_token", true, &p.unk_token)) ||
        (rc = get_str(f, "tokenizer.cls_token", true, &p.cls_token)) ||
        (rc = get_str(f, "tokenizer.sep_token", true, &p.sep_token)) ||
        (rc = get_str(f, "tokenizer.pad_token", true, &p.pad_token)) ||
        (rc = get_str(f, "tokenizer.mask_token", false, &p.mask_token)) ||
        (rc = get_str(f, "tokenizer.continuing_prefix", false, &p.continuing_prefix)) ||
        (rc = get_u32(f, "tokenizer.max_input_chars_per_word", &p.max_input_chars_per_word)))
        return rc;
    // Default length: the model's position table, else BERT's 512.
    uint32_t max_pos = 0;
    if (sembed_file_get_u32(f, "bert.max_position_embeddings", &max_pos) == SEMBED_OK && max_pos > 0)
        p.model_max_length = max_pos;
    if ((rc = get_u32(f, "tokenizer.model_max_length", &p.model_max_length))) return rc;
    if (p.model_max_length < 3)
        return sembed_fail(SEMBED_ECORRUPT, FN, "tokenizer.model_max_length %u is below 3", p.model_max_length);
    if (max_pos > 0 && p.model_max_length > max_pos)
        return sembed_fail(SEMBED_ECORRUPT, FN, "tokenizer.model_max_length %u exceeds bert.max_position_embeddings %u",
                           p.model_max_length, max_pos);

    int64_t kv = sembed_file_find_kv(f, "tokenizer.vocab");
    if (kv < 0) return sembed_fail(SEMBED_EMISSING, FN, "required key 'tokenizer.vocab' (string array) is missing");
    enum sembed_type elem;
    uint64_t count = 0;
    rc = sembed_file_kv_array_info(f, kv, &elem, &count);
    if (rc || elem != SEMBED_TYPE_STRING)
        return sembed_fail(SEMBED_ETYPE, FN, "tokenizer.vocab: expected an array of strings");
    if (count == 0 || count > (uint64_t)INT32_MAX - 1)
        return sembed_fail(SEMBED_ECORRUPT, FN, "tokenizer.vocab has %llu entries (expected 1..%d)",
                           (unsigned long long)count, INT32_MAX - 1);
    const size_t vbytes = (size_t)count * sizeof(const char *);
    const char **vocab = tk_block_alloc(vbytes);
    if (!vocab) return SEMBED_ENOMEM;
    for (uint64_t i = 0; i < count; i++) {
        rc = sembed_file_kv_arr_str(f, kv, i, &vocab[i], NULL);
        if (rc) {
            tk_block_free(vocab, vbytes);
            return sembed_fail(rc, FN, "tokenizer.vocab[%llu]: %s", (unsigned long long)i, sembed_strerror(rc));
        }
    }
    uint32_t vocab_rows = 0;
    if (sembed_file_get_u32(f, "bert.vocab_size", &vocab_rows) == SEMBED_OK && vocab_rows < count) {
        tk_block_free(vocab, vbytes);
        return sembed_fail(SEMBED_ECORRUPT, FN, "tokenizer.vocab has %llu tokens but bert.vocab_size is %u",
                           (unsigned long long)count, vocab_rows);
    }
    rc = sembed_tokenizer_create(vocab, (size_t)count, &p, out);
    tk_block_free(vocab, vbytes);
    return rc;
}
