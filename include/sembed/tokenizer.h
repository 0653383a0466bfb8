/*
 * sembed/tokenizer.h: BERT BasicTokenizer + WordPiece, driven by the flags stored in a .semb file.
 *
 * Matches HuggingFace's BertTokenizer / tokenizers' BertWordPiece id for id (see tests).
 * Invalid UTF-8 in input is decoded as Python's bytes.decode('utf-8', errors='replace') would:
 * each maximal invalid subsequence becomes U+FFFD, which clean_text then drops.
 *
 *     struct sembed_tokenizer *tok;
 *     sembed_tokenizer_from_file(file, &tok);
 *     int32_t ids[512], types[512]; uint32_t n; bool cut;
 *     sembed_tokenizer_encode_input(tok, "a sentence", SIZE_MAX, NULL, 0, 128,
 *                                   SEMBED_TRUNCATE_LONGEST_FIRST, ids, types, &n, &cut);
 *     sembed_tokenizer_free(tok);
 *
 * A tokenizer is read-only after creation and may be shared across threads.
 */
#ifndef SEMBED_TOKENIZER_H
#define SEMBED_TOKENIZER_H

#include <stdbool.h>
#include "sembed/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sembed_file;
struct sembed_tokenizer;

struct sembed_tokenizer_params {
    bool lowercase;            /* lowercase (and, if strip_accents, NFD + drop Mn) */
    bool strip_accents;        /* resolved: HF's None means "same as lowercase" */
    bool handle_chinese_chars; /* put spaces around CJK ideographs */
    bool clean_text;           /* drop NUL, U+FFFD, control chars; map whitespace to ' ' */
    bool pre_lowercase;        /* sentence-transformers do_lower_case: lowercase input first */
    const char *unk_token, *cls_token, *sep_token, *pad_token, *mask_token; /* mask may be NULL */
    const char *continuing_prefix;     /* "##" */
    uint32_t max_input_chars_per_word; /* 100 */
    uint32_t model_max_length;         /* default max tokens incl. specials (e.g. 512) */
};

SEMBED_API struct sembed_tokenizer_params sembed_tokenizer_default_params(void);

/* Build from a vocabulary (token i = id i; copied). Special tokens must be in the vocabulary. */
SEMBED_API int sembed_tokenizer_create(const char *const *vocab, size_t n_vocab,
                                       const struct sembed_tokenizer_params *params,
                                       struct sembed_tokenizer **out);
/* Build from the tokenizer.* keys of a .semb file (docs/format.md). The tokenizer owns a copy of
 * everything: f may be freed first. */
SEMBED_API int sembed_tokenizer_from_file(const struct sembed_file *f, struct sembed_tokenizer **out);
/* Same tokenizer, but using the file's vocabulary strings in place and, when the file has one, its
 * prebuilt index (tokenizer.index.*: validated bounds, then probed in place), so creation costs
 * no copy and no table build (what sembed_model_load uses). f must outlive the tokenizer. */
SEMBED_API int sembed_tokenizer_borrow_file(const struct sembed_file *f, struct sembed_tokenizer **out);
SEMBED_API void sembed_tokenizer_free(struct sembed_tokenizer *t);

SEMBED_API size_t sembed_tokenizer_vocab_size(const struct sembed_tokenizer *t);
SEMBED_API const struct sembed_tokenizer_params *sembed_tokenizer_params(const struct sembed_tokenizer *t);
/* Token string for an id (NULL if out of range); id for a token string (-1 if absent). */
SEMBED_API const char *sembed_tokenizer_token(const struct sembed_tokenizer *t, int32_t id);
SEMBED_API int32_t sembed_tokenizer_id(const struct sembed_tokenizer *t, const char *token);
/* Ids of the special tokens (looked up by string at creation; -1 if absent). */
SEMBED_API int32_t sembed_tokenizer_cls_id(const struct sembed_tokenizer *t);
SEMBED_API int32_t sembed_tokenizer_sep_id(const struct sembed_tokenizer *t);
SEMBED_API int32_t sembed_tokenizer_pad_id(const struct sembed_tokenizer *t);
SEMBED_API int32_t sembed_tokenizer_unk_id(const struct sembed_tokenizer *t);
SEMBED_API int32_t sembed_tokenizer_mask_id(const struct sembed_tokenizer *t);

/* Tokenize text (len bytes; len == SIZE_MAX means NUL-terminated) into WordPiece ids, without
 * [CLS]/[SEP]. Writes at most cap ids; *n_out receives the full count even when it exceeds cap
 * (call again with a bigger buffer). */
SEMBED_API int sembed_tokenizer_encode(const struct sembed_tokenizer *t, const char *text, size_t len,
                                       int32_t *ids, size_t cap, size_t *n_out);

enum sembed_truncate {
    SEMBED_TRUNCATE_LONGEST_FIRST = 0, /* HF default: drop tokens from the longer side first */
    SEMBED_TRUNCATE_ERROR = 1          /* return SEMBED_ETOOLONG instead */
};

/* Model input: [CLS] a [SEP] or [CLS] a [SEP] b [SEP] (b may be NULL), token types 0 / 1,
 * truncated to max_len tokens (0 = model_max_length). ids and type_ids need max_len slots
 * (type_ids may be NULL). *truncated (may be NULL) tells whether anything was cut.
 * LONGEST_FIRST keeps a single text's first max_len - 2 tokens and splits a pair exactly as HF
 * tokenizers does (docs/tokenizer.md); ERROR returns SEMBED_ETOOLONG instead of cutting.
 * max_len below 2 (3 for a pair) is SEMBED_EINVAL. */
SEMBED_API int sembed_tokenizer_encode_input(const struct sembed_tokenizer *t, const char *a, size_t a_len,
                                             const char *b, size_t b_len, uint32_t max_len,
                                             enum sembed_truncate mode, int32_t *ids, int32_t *type_ids,
                                             uint32_t *n_out, bool *truncated);

/* ---- HuggingFace tokenizer.json tokenizers (docs/tokenizer.md, "tokenizer.json") ----
 * Any model type (BPE, Unigram, WordLevel, WordPiece) with its normalizers, pre-tokenizers,
 * added tokens and post-processor, matching HF tokenizers id for id and offset for offset.
 * Every function above works on such a tokenizer: encode_input adds the post-processor's special
 * tokens and type ids; the special-token ids are looked up by their usual strings ([CLS] or <s>, ...). */

/* Parse a tokenizer.json text (len bytes, SIZE_MAX = NUL-terminated). model_max_length is the
 * default max_len of encode_input (0: 512). Unsupported components fail with SEMBED_EUNSUPPORTED
 * naming them; malformed files with SEMBED_EPARSE / SEMBED_ECORRUPT and the JSON path. */
SEMBED_API int sembed_tokenizer_from_hf_json(const char *json, size_t len, uint32_t model_max_length,
                                             struct sembed_tokenizer **out);
/* "wordpiece" (the BERT tokenizer of the tokenizer.* flags) or "hf:BPE", "hf:Unigram", "hf:WordLevel",
 * "hf:WordPiece". */
SEMBED_API const char *sembed_tokenizer_kind(const struct sembed_tokenizer *t);
/* One line: model, vocabulary size, normalizers, pre-tokenizers, post-processors. */
SEMBED_API void sembed_tokenizer_describe(const struct sembed_tokenizer *t, char *buf, size_t cap);

/* An encoding with offsets: token i has id ids[i], type type_ids[i], comes from text seq_ids[i]
 * (0 = a, 1 = b, -1 = a special token the post-processor added) and covers bytes [start[i], end[i])
 * of its text (0, 0 for added special tokens). Arrays owned by the encoding. */
struct sembed_encoding {
    int32_t *ids, *type_ids, *seq_ids;
    uint32_t *start, *end;
    size_t n;
};
/* Encode a (and b, may be NULL) with offsets; add_special runs the post-processor's template;
 * max_len > 0 truncates longest-first (mode ERROR: SEMBED_ETOOLONG instead). Every tokenizer:
 * the BERT tokenizer's offsets are those of HF's BertWordPiece (a token of a word split by
 * normalization covers its source characters; an [UNK] word covers the whole word).
 * Free with sembed_encoding_free. */
SEMBED_API int sembed_tokenizer_encode_full(const struct sembed_tokenizer *t, const char *a, size_t a_len, const char *b,
                                            size_t b_len, bool add_special, uint32_t max_len, enum sembed_truncate mode,
                                            struct sembed_encoding *out, bool *truncated);
SEMBED_API void sembed_encoding_free(struct sembed_encoding *e);

#ifdef __cplusplus
}
#endif
#endif /* SEMBED_TOKENIZER_H */
