// runtime/tokenizer/hf_internal.h: the parsed form of a tokenizer.json (hf_json.c builds it,
// hf_encode.c runs it). Internal.
#ifndef SEMBED_TK_HF_INTERNAL_H
#define SEMBED_TK_HF_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "runtime/tokenizer/hf.h"
#include "runtime/tokenizer/unicode.h"
#include "sembed/common.h"

enum { TK_MAX_ID = (1 << 24) - 1 };           // 16.7M ids: far above any real vocabulary (bge-m3: 250k)
#define TK_MAX_JSON (512u << 20)              // bytes of tokenizer.json accepted

enum { TK_N_NFC, TK_N_NFD, TK_N_NFKC, TK_N_NFKD, TK_N_LOWER, TK_N_STRIPACC, TK_N_STRIP, TK_N_REPLACE, TK_N_PREPEND,
       TK_N_BERT, TK_N_PRECOMPILED };
// Longest key a Precompiled lookup can see: HF tries whole graphemes under 6 bytes, else characters.
enum { TK_PC_MAX_KEY = 5 };
enum { TK_P_BYTELEVEL, TK_P_METASPACE, TK_P_WHITESPACE, TK_P_WSSPLIT, TK_P_PUNCT, TK_P_SPLIT, TK_P_DIGITS, TK_P_BERT,
       TK_P_CHARDELIM };
enum { TK_B_REMOVED, TK_B_ISOLATED, TK_B_MERGED_PREV, TK_B_MERGED_NEXT, TK_B_CONTIGUOUS };
enum { TK_PS_ALWAYS, TK_PS_FIRST, TK_PS_NEVER };
enum { TK_PP_BERT, TK_PP_ROBERTA, TK_PP_TEMPLATE, TK_PP_BYTELEVEL };
enum { TK_M_BPE, TK_M_UNIGRAM, TK_M_WORDLEVEL, TK_M_WORDPIECE };
enum { TK_ID_NONE, TK_ID_MODEL, TK_ID_ADDED };

struct tk_norm {
    int kind;
    bool left, right;                     // Strip
    bool clean, chinese, strip_acc, lower; // BertNormalizer (strip_acc resolved)
    pcre2_code *re;                       // Replace pattern
    char *str;                            // Replace content / Prepend string / Precompiled strings
    size_t slen;
    uint32_t *trie;                       // Precompiled: the double array (host order)
    size_t n_trie;
};

struct tk_pre {
    int kind, behavior, scheme;
    bool invert, add_prefix_space, use_regex, individual, split;
    uint32_t ch; // Metaspace replacement, CharDelimiterSplit delimiter
    pcre2_code *re;
};

struct tk_tpl {
    int seq;       // 0 = A, 1 = B, -1 = special token
    uint32_t type; // type id
    int32_t *ids;
    size_t n;
};

struct tk_post {
    int kind;
    int32_t cls, sep;
    bool trim, prefix;
    struct tk_tpl *single, *pair;
    size_t n_single, n_pair;
};

struct tk_added {
    int32_t id;
    char *s;
    size_t len;
    bool single_word, lstrip, rstrip, normalized, special;
};

struct tk_smap { uint32_t *slot; size_t cap; }; // id + 1, 0 = empty; keys are the ids' strings
struct tk_merges { uint64_t *key; uint32_t *rank; int32_t *id; uint8_t *used; size_t cap; };

struct tk_hf {
    int model;
    // id -> string (pool offsets), for the model vocabulary and added tokens
    char *pool;
    size_t pool_len, pool_cap;
    uint64_t *toff;
    uint32_t *tlen;
    uint8_t *tkind;
    size_t n_ids, cap_ids, model_vocab;
    struct tk_smap model_map, added_map;
    int32_t unk;
    // BPE / WordPiece
    struct tk_merges merges;
    char *prefix, *suffix;
    size_t prefix_len, suffix_len, max_chars;
    bool fuse_unk, byte_fallback, ignore_merges;
    int32_t byte_id[256];
    // Unigram
    double *score, unk_score;
    size_t max_piece_chars;
    // pipeline
    struct tk_norm *norm;
    size_t n_norm, cap_norm;
    struct tk_pre *pre;
    size_t n_pre, cap_pre;
    struct tk_post post[4];
    size_t n_post;
    struct tk_added *added;
    size_t n_added;
    uint8_t first_byte[256];
    bool byte_level;
};

// Precompiled charsmap (hf_precompiled.c): load checks every path of <= TK_PC_MAX_KEY bytes;
// find returns the replacement (NUL-terminated UTF-8) of key's first trie match, or NULL.
int tk_precompiled_load(struct tk_norm *nm, const uint8_t *blob, size_t n, const char *fn, const char *path);
int tk_precompiled_load_b64(struct tk_norm *nm, const char *b64, size_t n, const char *fn, const char *path);
const char *tk_precompiled_find(const struct tk_norm *nm, const uint8_t *key, size_t n);

int32_t tk_smap_find(const struct tk_hf *h, const struct tk_smap *m, const char *s, size_t n);
bool tk_merge_find(const struct tk_hf *h, int32_t a, int32_t b, uint32_t *rank, int32_t *id);

#endif
