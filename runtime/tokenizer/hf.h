// runtime/tokenizer/hf.h: HuggingFace tokenizer.json tokenizers (docs/tokenizer.md, "tokenizer.json"):
// normalizers, pre-tokenizers, the four models (BPE, Unigram, WordLevel, WordPiece), added tokens
// and post-processors, with offsets. Internal (prefix tk_hf_); the public face is sembed_tokenizer.
#ifndef SEMBED_TK_HF_H
#define SEMBED_TK_HF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tk_hf;

// Parse a tokenizer.json text (len bytes, need not be NUL-terminated). Every unsupported component
// is refused by name; malformed files get SEMBED_EPARSE / SEMBED_ECORRUPT with the JSON path.
int tk_hf_parse(const char *json, size_t len, const char *fn, struct tk_hf **out);
void tk_hf_free(struct tk_hf *h);

size_t tk_hf_vocab_size(const struct tk_hf *h); // largest id + 1 (model vocabulary and added tokens)
const char *tk_hf_token(const struct tk_hf *h, int32_t id);
int32_t tk_hf_id(const struct tk_hf *h, const char *tok, size_t len);
const char *tk_hf_model_name(const struct tk_hf *h); // "BPE", "Unigram", "WordLevel", "WordPiece"
// A one-line description: model, normalizer, pre-tokenizer, post-processor types.
void tk_hf_describe(const struct tk_hf *h, char *buf, size_t cap);
// Number of special tokens the post-processor adds (single text or pair).
size_t tk_hf_added_specials(const struct tk_hf *h, bool pair);
// The first special token id found among names (e.g. "[CLS]", "<s>"), or -1.
int32_t tk_hf_special(const struct tk_hf *h, const char *const *names);

// One encoded sequence or the post-processed result: token i is ids[i] with type types[i] and
// byte offsets [start[i], end[i]) into its own input text (0,0 for added special tokens); seq[i]
// is 0 or 1 (which text), -1 for a special token.
struct tk_hf_enc {
    int32_t *ids, *types, *seq;
    uint32_t *start, *end;
    size_t n, cap;
};
void tk_hf_enc_free(struct tk_hf_enc *e);

// Full encode: a (and b, may be NULL) -> post-processed tokens, truncated longest-first to
// max_len tokens when max_len > 0 (*truncated tells). add_special false skips the post-processor's
// special tokens (type ids stay 0 / 1 per sequence as HF's default processing gives them).
int tk_hf_encode(const struct tk_hf *h, const char *a, size_t a_len, const char *b, size_t b_len, bool add_special,
                 size_t max_len, bool error_if_long, struct tk_hf_enc *out, bool *truncated);

#endif
