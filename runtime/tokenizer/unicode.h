// runtime/tokenizer/unicode.h: the character classes BERT's normalizer and pre-tokenizer use,
// exactly as HuggingFace tokenizers (Rust) applies them. Internal to the tokenizer (prefix tk_).
//
// Categories, decompositions and case mappings come from utf8proc (Unicode 15 in utf8proc 2.8).
// HF's BertNormalizer / BertPreTokenizer take Cc/Cf/Co, P* and Mn from the `unicode_categories`
// crate, whose tables are older (Unicode 8/9 era): characters assigned later are plain letters to
// HF. tk_compat.c holds the measured differences so that ids match HF (tests/tokenizer/ proves
// it over every code point).
#ifndef SEMBED_TK_UNICODE_H
#define SEMBED_TK_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Decode one UTF-8 sequence from s[0..n) (n >= 1). Invalid input yields U+FFFD and consumes the
// maximal subpart of an ill-formed sequence (Unicode 15, section 3.9, "U+FFFD Substitution of
// Maximal Subparts"; the same as Python's errors='replace' and the WHATWG decoder). Returns the
// number of bytes consumed (1..4).
size_t tk_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp);
// Encode cp (<= 0x10FFFF, not a surrogate) into out[0..4); returns the byte count.
size_t tk_utf8_encode(uint32_t cp, char *out);

// Rust's char::is_whitespace (the Unicode White_Space property).
bool tk_is_whitespace(uint32_t cp);
// HF clean_text drops these: Cc, Cf, Co (as HF's tables know them) except \t \n \r.
bool tk_is_control(uint32_t cp);
// HF BertPreTokenizer punctuation: ASCII punctuation (33-47, 58-64, 91-96, 123-126) or P*.
bool tk_is_punct(uint32_t cp);
// Mn as HF's tables know it (strip_accents drops these after NFD).
bool tk_is_mn(uint32_t cp);
// HF's CJK ideograph ranges for handle_chinese_chars.
bool tk_is_chinese(uint32_t cp);
// Canonical combining class (0 for starters).
int tk_ccc(uint32_t cp);
// Canonical decomposition (NFD, not yet reordered) of cp into out (cap >= 8); returns count.
size_t tk_nfd(uint32_t cp, uint32_t *out, size_t cap);
// Rust's char::to_lowercase: writes 1 or 2 code points (U+0130 gives "i\u0307"); returns count.
size_t tk_lower_rust(uint32_t cp, uint32_t out[2]);
// Python's str.lower over a whole string (full case mapping, Final_Sigma in context):
// writes at most 2*n code points into out and returns the count.
size_t tk_lower_python(const uint32_t *in, size_t n, uint32_t *out);

#endif
