// runtime/tokenizer/tokenizer_internal.h: the normalize + pre-tokenize stage on its own, for tests
// and for tools that want words rather than ids. Internal (prefix tk_).
#ifndef SEMBED_TK_INTERNAL_H
#define SEMBED_TK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sembed/tokenizer.h"

// Called once per pre-tokenized word (normalized UTF-8, nbytes > 0; nchars code points). When
// nchars exceeds the tokenizer's max_input_chars_per_word only the first bytes are kept (the word
// becomes [UNK] anyway) and nbytes is what was kept. Return 0 to go on, 1 to stop early (not an
// error), or a negative SEMBED_E* status to abort.
typedef int (*tk_word_fn)(void *ud, const char *word, size_t nbytes, size_t nchars);

// Run BertNormalizer + BertPreTokenizer over text (len bytes, any bytes: invalid UTF-8 is
// replaced, see tokenizer.h) with t's flags. Returns 0 or the callback's negative status
// (or SEMBED_ENOMEM).
int tk_pretokenize(const struct sembed_tokenizer *t, const char *text, size_t len, tk_word_fn fn, void *ud);

// Where each word came from in the input, filled in before every fn call of tk_pretokenize_src:
// the word covers input bytes [word_s, word_e); the character that starts at byte b of the word
// (as passed to fn) came from input bytes [at[2b], at[2b + 1]). Characters that normalization
// adds (CJK spacing) or splits (NFD, lowercase expansions) map to their source character.
struct tk_word_src {
    const uint32_t *at;
    uint32_t word_s, word_e;
};
// tk_pretokenize with source offsets in *src (texts up to 4 GiB - 1).
int tk_pretokenize_src(const struct sembed_tokenizer *t, const char *text, size_t len, tk_word_fn fn, void *ud,
                       struct tk_word_src *src);

// Where a tokenizer's vocabulary comes from: its strings encoded as a .semb string array stores
// them (v[0..vbytes), n tokens), copied or used in place (borrow: v must outlive the tokenizer),
// and optionally a prebuilt index already validated by semb_tokidx_load, used in place (needs
// borrow). Without an index the tokenizer builds its offsets and tables itself.
struct semb_tokidx_view;
struct tk_source {
    const uint8_t *v;
    uint64_t vbytes;
    uint32_t n;
    bool borrow;
    const struct semb_tokidx_view *index;
};
int tk_create(const struct tk_source *src, const struct sembed_tokenizer_params *params, const char *fn,
              struct sembed_tokenizer **out);

// Zeroed scratch or table memory, prefaulted in one call when large; free with the same size.
void *tk_block_alloc(size_t bytes);
void tk_block_free(void *p, size_t bytes);

#endif
