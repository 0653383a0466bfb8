// runtime/tokenizer/compat.h: code points whose class differs between utf8proc's Unicode tables
// and the older tables HuggingFace tokenizers uses (crate unicode_categories), as measured over
// every code point by test_tokenizer (tests/tokenizer/hf_classes.js asks HF). Internal to the tokenizer.
#ifndef SEMBED_TK_COMPAT_H
#define SEMBED_TK_COMPAT_H

#include <stdbool.h>
#include <stdint.h>

// HF's class of a code point, for the three properties it takes from old tables.
enum { TK_HF_NONE = 0, TK_HF_OTHER = 1, TK_HF_PUNCT = 2, TK_HF_MN = 3 };

// HF's class when it differs from what utf8proc's category implies; -1 when they agree.
int tk_compat_lookup(uint32_t cp);
// Lowercase of cp when HF's (Rust's, Unicode 16) differs from utf8proc's; 0 when they agree.
uint32_t tk_compat_lower(uint32_t cp);
// True for the code points HF's NFD leaves alone although Unicode 15 decomposes them.
bool tk_compat_keeps_composed(uint32_t cp);

#endif
