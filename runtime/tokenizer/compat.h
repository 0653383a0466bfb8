// runtime/tokenizer/compat.h: code points whose class differs between utf8proc's Unicode tables
// and the older tables HuggingFace tokenizers uses (crate unicode_categories), as measured by
// tests/tokenizer/gen_compat.js over every code point. Internal to the tokenizer.
#ifndef SEMBED_TK_COMPAT_H
#define SEMBED_TK_COMPAT_H

#include <stdint.h>

// HF's class of a code point, for the three properties it takes from old tables.
enum { TK_HF_NONE = 0, TK_HF_OTHER = 1, TK_HF_PUNCT = 2, TK_HF_MN = 3 };

// HF's class when it differs from what utf8proc's category implies; -1 when they agree.
int tk_compat_lookup(uint32_t cp);

#endif
