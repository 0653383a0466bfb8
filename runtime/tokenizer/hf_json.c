// tokenizer.json -> struct tk_hf (runtime/tokenizer/hf_internal.h). The format is HuggingFace
// tokenizers' serialization (tokenizers/src/tokenizer/serialization.rs and each component's serde
// names); every field is type-checked and every unsupported component refused by name.
#define _GNU_SOURCE
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "formats/log.h"
#include "runtime/tokenizer/hf_internal.h"

/* ------------------------------------------------------------------ string pool and maps */

static int pool_add(struct tk_hf *h, const char *s, size_t n, uint64_t *off) {
    if (n > UINT32_MAX - 1) return SEMBED_ENOMEM;
    if (h->pool_len + n + 1 > h->pool_cap) {
        size_t cap = h->pool_cap ? h->pool_cap : 4096;
        while (cap < h->pool_len + n + 1) {
            if (cap > SIZE_MAX / 2) return SEMBED_ENOMEM;
            cap *= 2;
        }
        char *p = realloc(h->pool, cap);
        if (!p) return SEMBED_ENOMEM;
        h->pool = p;
        h->pool_cap = cap;
    }
    memcpy(h->pool + h->pool_len, s, n);
    h->pool[h->pool_len + n] = 0;
    *off = h->pool_len;
    h->pool_len += n + 1;
    return SEMBED_OK;
}

static int smap_init(struct tk_smap *m, size_t n) {
    size_t cap = 16;
    while (cap < n * 2 + 1) cap *= 2;
    m->slot = calloc(cap, sizeof *m->slot);
    if (!m->slot) return SEMBED_ENOMEM;
    m->cap = cap;
    return SEMBED_OK;
}

int32_t tk_smap_find(const struct tk_hf *h, const struct tk_smap *m, const char *s, size_t n) {
    if (!m->cap) return -1;
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)XXH3_64bits(s, n) & mask;; i = (i + 1) & mask) {
        uint32_t v = m->slot[i];
        if (!v) return -1;
        int32_t id = (int32_t)(v - 1);
        if (h->tlen[id] == n && memcmp(h->pool + h->toff[id], s, n) == 0) return id;
    }
}

// Insert id (its string already in the pool). Returns 1 when the string was present (kept the first).
static int smap_put(struct tk_hf *h, struct tk_smap *m, int32_t id) {
    size_t mask = m->cap - 1;
    const char *s = h->pool + h->toff[id];
    size_t n = h->tlen[id];
    for (size_t i = (size_t)XXH3_64bits(s, n) & mask;; i = (i + 1) & mask) {
        uint32_t v = m->slot[i];
        if (!v) { m->slot[i] = (uint32_t)id + 1; return 0; }
        int32_t o = (int32_t)(v - 1);
        if (h->tlen[o] == n && memcmp(h->pool + h->toff[o], s, n) == 0) return 1;
    }
}

static uint64_t mix64(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL; k ^= k >> 33;
    return k;
}

bool tk_merge_find(const struct tk_hf *h, int32_t a, int32_t b, uint32_t *rank, int32_t *id) {
    const struct tk_merges *m = &h->merges;
    if (!m->cap) return false;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)mix64(key) & mask;; i = (i + 1) & mask) {
        if (!m->used[i]) return false;
        if (m->key[i] == key) { *rank = m->rank[i]; *id = m->id[i]; return true; }
    }
}

/* ------------------------------------------------------------------ JSON helpers */

static const char *jtype(json_object *o) { return o ? json_type_to_name(json_object_get_type(o)) : "null"; }

// Member `key` of object o: *out is NULL when absent or null. Wrong container type is an error.
static json_object *jget(json_object *o, const char *key) {
    json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) return NULL;
    if (!json_object_object_get_ex(o, key, &v)) return NULL;
    if (json_object_is_type(v, json_type_null)) return NULL;
    return v;
}

static int want(json_object *v, enum json_type t, const char *fn, const char *path) {
    if (!v || !json_object_is_type(v, t))
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s: expected %s, got %s", path, json_type_to_name(t), jtype(v));
    return SEMBED_OK;
}

static int get_bool(json_object *o, const char *key, bool dflt, bool *out, const char *fn, const char *path) {
    json_object *v = jget(o, key);
    if (!v) { *out = dflt; return SEMBED_OK; }
    if (!json_object_is_type(v, json_type_boolean))
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s.%s: expected boolean, got %s", path, key, jtype(v));
    *out = json_object_get_boolean(v);
    return SEMBED_OK;
}

// A string member (NULL when absent and not required).
static int get_str(json_object *o, const char *key, bool required, const char **out, size_t *len, const char *fn,
                   const char *path) {
    json_object *v = jget(o, key);
    *out = NULL;
    if (len) *len = 0;
    if (!v) {
        if (required) return sembed_fail(SEMBED_EMISSING, fn, "%s.%s: required string is missing", path, key);
        return SEMBED_OK;
    }
    if (!json_object_is_type(v, json_type_string))
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s.%s: expected string, got %s", path, key, jtype(v));
    *out = json_object_get_string(v);
    if (len) *len = (size_t)json_object_get_string_len(v);
    return SEMBED_OK;
}

static int get_int(json_object *v, int64_t lo, int64_t hi, int64_t *out, const char *fn, const char *path) {
    if (!v || !json_object_is_type(v, json_type_int))
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s: expected integer, got %s", path, jtype(v));

    int64_t x = json_object_get_int64(v);
    if (x < lo || x > hi) return sembed_fail(SEMBED_ECORRUPT, fn, "%s: %lld out of range %lld..%lld", path, (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return SEMBED_OK;
}

static int get_num(json_object *v, double *out, const char *fn, const char *path) {
    if (!v || !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s: expected number, got %s", path, jtype(v));
    *out = json_object_get_double(v);
    return SEMBED_OK;
}

// Oniguruma's \s (HF's regex engine) matches U+0085 but not U+180E; PCRE2's \s the other way round
// (measured on the corpus: "mongolian\u180Evs" is one word to HF). Outside character classes \s
// and \S are rewritten to Oniguruma's set before compiling; inside classes they are left as PCRE2
// has them (a known difference for those two characters); everything else is PCRE2 as written.
static char *onig_spaces(const char *pat, size_t n, size_t *out_n) {
    char *o = malloc(n * 16 + 1);
    if (!o) return NULL;
    size_t k = 0;
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < n) {
            char d = pat[i + 1];
            if (d == 's' && !in_class) { k += (size_t)sprintf(o + k, "(?:(?!\\x{180E})[\\s\\x{85}])"); i++; continue; }
            if (d == 'S' && !in_class) { k += (size_t)sprintf(o + k, "(?:\\x{180E}|[^\\s\\x{85}])"); i++; continue; }
            o[k++] = c;
            o[k++] = d;
            i++;
            continue;
        }
        if (c == '[' && !in_class) in_class = true;
        else if (c == ']' && in_class) in_class = false;
        o[k++] = c;
    }
    o[k] = 0;
    *out_n = k;
    return o;
}

static int regex_compile(const char *pat, size_t n, bool literal, pcre2_code **out, const char *fn, const char *path) {
    int err;
    PCRE2_SIZE eoff;
    char *rw = NULL;
    const char *orig = pat;
    size_t orig_n = n;
    if (!literal) {
        if (n > (1u << 20)) return sembed_fail(SEMBED_ECORRUPT, fn, "%s: regex of %zu bytes (at most 1 MiB)", path, n);
        if (!(rw = onig_spaces(pat, n, &n))) return SEMBED_ENOMEM;
        pat = rw;
    }
    uint32_t opt = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP); // LITERAL takes no UCP
    *out = pcre2_compile((PCRE2_SPTR)pat, n, opt, &err, &eoff, NULL);
    free(rw);
    if (!*out) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s: bad regex '%.*s': %s", path, (int)(orig_n > 80 ? 80 : orig_n), orig,
                           (const char *)msg);
    }
    (void)pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE); // optional speed-up; matching works without
    return SEMBED_OK;
}

// {"String": s} or {"Regex": r} (HF's Pattern enum).
static int get_pattern(json_object *o, pcre2_code **re, const char *fn, const char *path) {
    json_object *p = jget(o, "pattern");
    char where[128];
    snprintf(where, sizeof where, "%s.pattern", path);
    int rc = want(p, json_type_object, fn, where);
    if (rc) return rc;
    json_object *s = jget(p, "String"), *r = jget(p, "Regex");
    if (s && json_object_is_type(s, json_type_string))
        return regex_compile(json_object_get_string(s), (size_t)json_object_get_string_len(s), true, re, fn, path);
    if (r && json_object_is_type(r, json_type_string))
        return regex_compile(json_object_get_string(r), (size_t)json_object_get_string_len(r), false, re, fn, path);
    return sembed_fail(SEMBED_ECORRUPT, fn, "%s.pattern: expected {\"String\": ...} or {\"Regex\": ...}", path);
}

static int get_behavior(json_object *o, int *out, const char *fn, const char *path) {
    const char *b;
    int rc = get_str(o, "behavior", false, &b, NULL, fn, path);
    if (rc) return rc;
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    if (!b) { *out = TK_B_ISOLATED; return SEMBED_OK; }
    for (int i = 0; i < 5; i++)
        if (strcmp(b, names[i]) == 0) { *out = i; return SEMBED_OK; }
    return sembed_fail(SEMBED_ECORRUPT, fn, "%s.behavior: unknown '%s'", path, b);
}

static int get_char(json_object *o, const char *key, uint32_t dflt, uint32_t *out, const char *fn, const char *path) {
    const char *s;
    size_t n;
    int rc = get_str(o, key, false, &s, &n, fn, path);
    if (rc) return rc;
    if (!s) { *out = dflt; return SEMBED_OK; }
    uint32_t cp;
    if (n == 0 || tk_utf8_decode((const uint8_t *)s, n, &cp) != n)
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s.%s: expected exactly one character", path, key);
    *out = cp;
    return SEMBED_OK;
}

static int dup_str(const char *s, size_t n, char **out, size_t *len) {
    *out = malloc(n + 1);
    if (!*out) return SEMBED_ENOMEM;
    memcpy(*out, s, n);
    (*out)[n] = 0;
    if (len) *len = n;
    return SEMBED_OK;
}

/* ------------------------------------------------------------------ normalizers */

static int parse_normalizer(struct tk_hf *h, json_object *o, const char *fn, const char *path, int depth);

static int add_norm(struct tk_hf *h, struct tk_norm **n) {
    if (h->n_norm == h->cap_norm) {
        size_t cap = h->cap_norm ? h->cap_norm * 2 : 4;
        struct tk_norm *p = realloc(h->norm, cap * sizeof *p);
        if (!p) return SEMBED_ENOMEM;
        h->norm = p;
        h->cap_norm = cap;
    }
    *n = &h->norm[h->n_norm++];
    memset(*n, 0, sizeof **n);
    return SEMBED_OK;
}

static int parse_normalizer(struct tk_hf *h, json_object *o, const char *fn, const char *path, int depth) {
    if (depth > 8) return sembed_fail(SEMBED_ECORRUPT, fn, "%s: sequences nested deeper than 8", path);
    int rc = want(o, json_type_object, fn, path);
    if (rc) return rc;
    const char *type;
    if ((rc = get_str(o, "type", true, &type, NULL, fn, path))) return rc;
    if (strcmp(type, "Sequence") == 0) {
        json_object *a = jget(o, "normalizers");
        if ((rc = want(a, json_type_array, fn, "normalizer.normalizers"))) return rc;
        for (size_t i = 0; i < json_object_array_length(a); i++)
            if ((rc = parse_normalizer(h, json_object_array_get_idx(a, i), fn, "normalizer.normalizers[]", depth + 1)))
                return rc;
        return SEMBED_OK;
    }
    struct tk_norm *n;
    if ((rc = add_norm(h, &n))) return rc;
    if (strcmp(type, "NFC") == 0) n->kind = TK_N_NFC;
    else if (strcmp(type, "NFD") == 0) n->kind = TK_N_NFD;
    else if (strcmp(type, "NFKC") == 0) n->kind = TK_N_NFKC;
    else if (strcmp(type, "NFKD") == 0) n->kind = TK_N_NFKD;
    else if (strcmp(type, "Lowercase") == 0) n->kind = TK_N_LOWER;
    else if (strcmp(type, "StripAccents") == 0) n->kind = TK_N_STRIPACC;
    else if (strcmp(type, "Strip") == 0) {
        n->kind = TK_N_STRIP;
        if ((rc = get_bool(o, "strip_left", true, &n->left, fn, path)) ||
            (rc = get_bool(o, "strip_right", true, &n->right, fn, path)))
            return rc;
    } else if (strcmp(type, "Replace") == 0) {
        n->kind = TK_N_REPLACE;
        const char *c;
        size_t cl;
        if ((rc = get_pattern(o, &n->re, fn, path)) || (rc = get_str(o, "content", true, &c, &cl, fn, path)) ||
            (rc = dup_str(c, cl, &n->str, &n->slen)))
            return rc;
    } else if (strcmp(type, "Prepend") == 0) {
        n->kind = TK_N_PREPEND;
        const char *c;
        size_t cl;
        if ((rc = get_str(o, "prepend", true, &c, &cl, fn, path)) || (rc = dup_str(c, cl, &n->str, &n->slen))) return rc;
    } else if (strcmp(type, "BertNormalizer") == 0) {
        n->kind = TK_N_BERT;
        json_object *sa = jget(o, "strip_accents");
        if ((rc = get_bool(o, "clean_text", true, &n->clean, fn, path)) ||
            (rc = get_bool(o, "handle_chinese_chars", true, &n->chinese, fn, path)) ||
            (rc = get_bool(o, "lowercase", true, &n->lower, fn, path)))
            return rc;
        if (sa && !json_object_is_type(sa, json_type_boolean))
            return sembed_fail(SEMBED_ECORRUPT, fn, "%s.strip_accents: expected boolean or null, got %s", path, jtype(sa));
        n->strip_acc = sa ? json_object_get_boolean(sa) : n->lower; // HF: None follows lowercase
    } else if (strcmp(type, "Precompiled") == 0) {
        n->kind = TK_N_PRECOMPILED;
        const char *c;
        size_t cl;
        if ((rc = get_str(o, "precompiled_charsmap", true, &c, &cl, fn, path)) ||
            (rc = tk_precompiled_load_b64(n, c, cl, fn, "normalizer.precompiled_charsmap")))
            return rc;
    } else {
        h->n_norm--;
        return sembed_fail(SEMBED_EUNSUPPORTED, fn, "normalizer '%s' is not supported", type);
    }
    return SEMBED_OK;
}

/* ------------------------------------------------------------------ pre-tokenizers */

static int add_pre(struct tk_hf *h, struct tk_pre **p) {
    if (h->n_pre == h->cap_pre) {
        size_t cap = h->cap_pre ? h->cap_pre * 2 : 4;
        struct tk_pre *q = realloc(h->pre, cap * sizeof *q);
        if (!q) return SEMBED_ENOMEM;
        h->pre = q;
        h->cap_pre = cap;
    }
    *p = &h->pre[h->n_pre++];
    memset(*p, 0, sizeof **p);
    return SEMBED_OK;
}

// GPT-2's split pattern (HF ByteLevel's use_regex), a fact of the format.
static const char GPT2_RE[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
// HF Whitespace: \w+|[^\w\s]+ with Oniguruma's Unicode \w (UTS #18 word: Alphabetic, marks,
// decimal digits, Pc, Join_Control) and \s (White_Space, which has U+0085 that PCRE2's \s lacks).
static const char WS_RE[] = "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]+|"
                            "(?:[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}\\s\\x{85}]|\\x{180E})+";

static int parse_pre(struct tk_hf *h, json_object *o, const char *fn, const char *path, int depth) {
    if (depth > 8) return sembed_fail(SEMBED_ECORRUPT, fn, "%s: sequences nested deeper than 8", path);
    int rc = want(o, json_type_object, fn, path);
    if (rc) return rc;
    const char *type;
    if ((rc = get_str(o, "type", true, &type, NULL, fn, path))) return rc;
    if (strcmp(type, "Sequence") == 0) {
        json_object *a = jget(o, "pretokenizers");
        if ((rc = want(a, json_type_array, fn, "pre_tokenizer.pretokenizers"))) return rc;
        for (size_t i = 0; i < json_object_array_length(a); i++)
            if ((rc = parse_pre(h, json_object_array_get_idx(a, i), fn, "pre_tokenizer.pretokenizers[]", depth + 1)))
                return rc;
        return SEMBED_OK;
    }
    struct tk_pre *p;
    if ((rc = add_pre(h, &p))) return rc;
    if (strcmp(type, "ByteLevel") == 0) {
        p->kind = TK_P_BYTELEVEL;
        if ((rc = get_bool(o, "add_prefix_space", true, &p->add_prefix_space, fn, path)) ||
            (rc = get_bool(o, "use_regex", true, &p->use_regex, fn, path)))
            return rc;
        if (p->use_regex && (rc = regex_compile(GPT2_RE, sizeof GPT2_RE - 1, false, &p->re, fn, path))) return rc;
        h->byte_level = true;
    } else if (strcmp(type, "Metaspace") == 0) {
        p->kind = TK_P_METASPACE;
        const char *scheme;
        bool aps;
        if ((rc = get_char(o, "replacement", 0x2581, &p->ch, fn, path)) ||
            (rc = get_bool(o, "split", true, &p->split, fn, path)) ||
            (rc = get_bool(o, "add_prefix_space", true, &aps, fn, path)) ||
            (rc = get_str(o, "prepend_scheme", false, &scheme, NULL, fn, path)))
            return rc;
        if (!scheme) p->scheme = aps ? TK_PS_ALWAYS : TK_PS_NEVER;
        else if (strcmp(scheme, "always") == 0) p->scheme = TK_PS_ALWAYS;
        else if (strcmp(scheme, "first") == 0) p->scheme = TK_PS_FIRST;
        else if (strcmp(scheme, "never") == 0) p->scheme = TK_PS_NEVER;
        else return sembed_fail(SEMBED_ECORRUPT, fn, "%s.prepend_scheme: unknown '%s'", path, scheme);
    } else if (strcmp(type, "Whitespace") == 0) {
        p->kind = TK_P_WHITESPACE;
        if ((rc = regex_compile(WS_RE, sizeof WS_RE - 1, false, &p->re, fn, path))) return rc;
    } else if (strcmp(type, "WhitespaceSplit") == 0) {
        p->kind = TK_P_WSSPLIT;
    } else if (strcmp(type, "Punctuation") == 0) {
        p->kind = TK_P_PUNCT;
        if ((rc = get_behavior(o, &p->behavior, fn, path))) return rc;
    } else if (strcmp(type, "Split") == 0) {
        p->kind = TK_P_SPLIT;
        if ((rc = get_pattern(o, &p->re, fn, path)) || (rc = get_behavior(o, &p->behavior, fn, path)) ||
            (rc = get_bool(o, "invert", false, &p->invert, fn, path)))
            return rc;
    } else if (strcmp(type, "Digits") == 0) {
        p->kind = TK_P_DIGITS;
        if ((rc = get_bool(o, "individual_digits", false, &p->individual, fn, path))) return rc;
    } else if (strcmp(type, "BertPreTokenizer") == 0) {
        p->kind = TK_P_BERT;
    } else if (strcmp(type, "CharDelimiterSplit") == 0) {
        p->kind = TK_P_CHARDELIM;
        if ((rc = get_char(o, "delimiter", 0, &p->ch, fn, path))) return rc;
        if (!jget(o, "delimiter")) return sembed_fail(SEMBED_EMISSING, fn, "%s.delimiter is missing", path);
    } else {
        h->n_pre--;
        return sembed_fail(SEMBED_EUNSUPPORTED, fn, "pre-tokenizer '%s' is not supported", type);
    }
    return SEMBED_OK;
}

/* ------------------------------------------------------------------ post-processors */

// ["token", id] pairs of BertProcessing / RobertaProcessing.
static int get_tok_pair(json_object *o, const char *key, int32_t *id, const char *fn, const char *path) {
    json_object *a = jget(o, key);
    if (!a || !json_object_is_type(a, json_type_array) || json_object_array_length(a) != 2 ||
        !json_object_is_type(json_object_array_get_idx(a, 0), json_type_string))
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s.%s: expected [\"token\", id]", path, key);
    int64_t x;
    int rc = get_int(json_object_array_get_idx(a, 1), 0, TK_MAX_ID, &x, fn, path);
    if (rc) return rc;
    *id = (int32_t)x;
    return SEMBED_OK;
}

static int parse_template(json_object *t, json_object *specials, struct tk_tpl **out, size_t *nout, const char *fn,
                          const char *path) {
    int rc = want(t, json_type_array, fn, path);
    if (rc) return rc;
    size_t n = json_object_array_length(t);
    if (n > 64) return sembed_fail(SEMBED_ECORRUPT, fn, "%s: %zu template pieces (at most 64)", path, n);
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out) return SEMBED_ENOMEM;
    *nout = n;
    for (size_t i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(t, i), *sp = jget(it, "SpecialToken"), *sq = jget(it, "Sequence");
        struct tk_tpl *p = &(*out)[i];
        json_object *body = sp ? sp : sq;
        if (!body || !json_object_is_type(body, json_type_object))
            return sembed_fail(SEMBED_ECORRUPT, fn, "%s[%zu]: expected {\"SpecialToken\": ...} or {\"Sequence\": ...}", path, i);
        int64_t ty = 0;
        json_object *tv = jget(body, "type_id");
        if (tv && (rc = get_int(tv, 0, 255, &ty, fn, path))) return rc;
        p->type = (uint32_t)ty;
        const char *id;
        if ((rc = get_str(body, "id", true, &id, NULL, fn, path))) return rc;
        if (sq) {
            if (strcmp(id, "A") == 0) p->seq = 0;
            else if (strcmp(id, "B") == 0) p->seq = 1;
            else return sembed_fail(SEMBED_ECORRUPT, fn, "%s[%zu]: sequence id '%s' is not A or B", path, i, id);
            continue;
        }
        p->seq = -1;
        json_object *st = jget(specials, id), *ids = jget(st, "ids");
        if (!ids || !json_object_is_type(ids, json_type_array))
            return sembed_fail(SEMBED_ECORRUPT, fn, "%s[%zu]: special token '%s' is not in special_tokens", path, i, id);
        p->n = json_object_array_length(ids);
        if (p->n > 64) return sembed_fail(SEMBED_ECORRUPT, fn, "special token '%s' has %zu ids (at most 64)", id, p->n);
        p->ids = calloc(p->n ? p->n : 1, sizeof *p->ids);
        if (!p->ids) return SEMBED_ENOMEM;
        for (size_t k = 0; k < p->n; k++) {
            int64_t x;
            if ((rc = get_int(json_object_array_get_idx(ids, k), 0, TK_MAX_ID, &x, fn, "special_tokens[].ids[]"))) return rc;
            p->ids[k] = (int32_t)x;
        }
    }
    return SEMBED_OK;
}

static int parse_post(struct tk_hf *h, json_object *o, const char *fn, const char *path, int depth) {
    if (depth > 8) return sembed_fail(SEMBED_ECORRUPT, fn, "%s: sequences nested deeper than 8", path);
    int rc = want(o, json_type_object, fn, path);
    if (rc) return rc;
    const char *type;
    if ((rc = get_str(o, "type", true, &type, NULL, fn, path))) return rc;
    if (strcmp(type, "Sequence") == 0) {
        json_object *a = jget(o, "processors");
        if ((rc = want(a, json_type_array, fn, "post_processor.processors"))) return rc;
        for (size_t i = 0; i < json_object_array_length(a); i++)
            if ((rc = parse_post(h, json_object_array_get_idx(a, i), fn, "post_processor.processors[]", depth + 1))) return rc;
        return SEMBED_OK;
    }
    if (h->n_post == 4) return sembed_fail(SEMBED_EUNSUPPORTED, fn, "%s: more than 4 post-processors", path);
    struct tk_post *p = &h->post[h->n_post++];
    memset(p, 0, sizeof *p);
    if (strcmp(type, "BertProcessing") == 0) {
        p->kind = TK_PP_BERT;
        if ((rc = get_tok_pair(o, "sep", &p->sep, fn, path)) || (rc = get_tok_pair(o, "cls", &p->cls, fn, path))) return rc;
    } else if (strcmp(type, "RobertaProcessing") == 0) {
        p->kind = TK_PP_ROBERTA;
        if ((rc = get_tok_pair(o, "sep", &p->sep, fn, path)) || (rc = get_tok_pair(o, "cls", &p->cls, fn, path)) ||
            (rc = get_bool(o, "trim_offsets", true, &p->trim, fn, path)) ||
            (rc = get_bool(o, "add_prefix_space", true, &p->prefix, fn, path)))
            return rc;
    } else if (strcmp(type, "ByteLevel") == 0) {
        p->kind = TK_PP_BYTELEVEL;
        if ((rc = get_bool(o, "trim_offsets", true, &p->trim, fn, path)) ||
            (rc = get_bool(o, "add_prefix_space", true, &p->prefix, fn, path)))
            return rc;
    } else if (strcmp(type, "TemplateProcessing") == 0) {
        p->kind = TK_PP_TEMPLATE;
        json_object *sp = jget(o, "special_tokens");
        if (sp && (rc = want(sp, json_type_object, fn, "post_processor.special_tokens"))) return rc;
        if ((rc = parse_template(jget(o, "single"), sp, &p->single, &p->n_single, fn, "post_processor.single")) ||
            (rc = parse_template(jget(o, "pair"), sp, &p->pair, &p->n_pair, fn, "post_processor.pair")))
            return rc;
    } else {
        h->n_post--;
        return sembed_fail(SEMBED_EUNSUPPORTED, fn, "post-processor '%s' is not supported", type);
    }
    return SEMBED_OK;
}

/* ------------------------------------------------------------------ models */

// Make room for ids 0..n-1 (id -> string table).
static int grow_ids(struct tk_hf *h, size_t n) {
    if (n <= h->n_ids) return SEMBED_OK;
    if (n > (size_t)TK_MAX_ID + 1) return SEMBED_ECORRUPT;
    if (n > h->cap_ids) {
        size_t cap = h->cap_ids ? h->cap_ids : 1024;
        while (cap < n) cap *= 2;
        uint64_t *o = realloc(h->toff, cap * sizeof *o);
        if (!o) return SEMBED_ENOMEM;
        h->toff = o;
        uint32_t *l = realloc(h->tlen, cap * sizeof *l);
        if (!l) return SEMBED_ENOMEM;
        h->tlen = l;
        uint8_t *k = realloc(h->tkind, cap);
        if (!k) return SEMBED_ENOMEM;
        h->tkind = k;
        h->cap_ids = cap;
    }
    for (size_t i = h->n_ids; i < n; i++) { h->toff[i] = 0; h->tlen[i] = 0; h->tkind[i] = TK_ID_NONE; }
    h->n_ids = n;
    return SEMBED_OK;
}

// Set id's string (model vocabulary or added token). A second string for an id that has one keeps
// the first (HF keeps one per id as well; the other string still maps to the id in its map).
static int set_id(struct tk_hf *h, int32_t id, const char *s, size_t n, uint8_t kind) {
    int rc = grow_ids(h, (size_t)id + 1);
    if (rc) return rc;
    if (h->tkind[id] != TK_ID_NONE) return 1;
    uint64_t off;
    if ((rc = pool_add(h, s, n, &off))) return rc;
    h->toff[id] = off;
    h->tlen[id] = (uint32_t)n;
    h->tkind[id] = kind;
    return SEMBED_OK;
}

// {token: id} -> id table + model map. Tokens whose id is already taken by another string are kept
// in an alias list so that they still map (HF's vocab is a token -> id map).
static int parse_vocab_map(struct tk_hf *h, json_object *v, const char *fn) {
    int rc = want(v, json_type_object, fn, "model.vocab");
    if (rc) return rc;
    size_t n = (size_t)json_object_object_length(v);
    if (n == 0) return sembed_fail(SEMBED_ECORRUPT, fn, "model.vocab is empty");
    if (n > (size_t)TK_MAX_ID) return sembed_fail(SEMBED_ECORRUPT, fn, "model.vocab has %zu tokens (at most %d)", n, TK_MAX_ID);
    if ((rc = smap_init(&h->model_map, n))) return rc;
    json_object_object_foreach(v, key, val) {
        int64_t id;
        char where[96];
        snprintf(where, sizeof where, "model.vocab[\"%.60s\"]", key);
        if ((rc = get_int(val, 0, TK_MAX_ID, &id, fn, where))) return rc;
        rc = set_id(h, (int32_t)id, key, strlen(key), TK_ID_MODEL);
        if (rc < 0) return rc == SEMBED_ECORRUPT ? sembed_fail(rc, fn, "model.vocab: id %lld too large", (long long)id) : rc;
        if (rc == 1) return sembed_fail(SEMBED_ECORRUPT, fn, "model.vocab: id %lld is given to two tokens ('%.60s' and another)",
                                        (long long)id, key);
        smap_put(h, &h->model_map, (int32_t)id);
    }
    return SEMBED_OK;
}

static int parse_merges(struct tk_hf *h, json_object *m, const char *fn) {
    int rc = want(m, json_type_array, fn, "model.merges");
    if (rc) return rc;
    size_t n = json_object_array_length(m);
    if (n > (size_t)TK_MAX_ID) return sembed_fail(SEMBED_ECORRUPT, fn, "model.merges has %zu entries (at most %d)", n, TK_MAX_ID);
    struct tk_merges *mg = &h->merges;
    size_t cap = 16;
    while (cap < n * 2 + 1) cap *= 2;
    mg->cap = cap;
    mg->key = calloc(cap, sizeof *mg->key);
    mg->rank = calloc(cap, sizeof *mg->rank);
    mg->id = calloc(cap, sizeof *mg->id);
    mg->used = calloc(cap, 1);
    if (!mg->key || !mg->rank || !mg->id || !mg->used) return SEMBED_ENOMEM;
    char *buf = NULL;
    size_t bcap = 0;
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(m, i);
        const char *a, *b;
        size_t la, lb;
        if (json_object_is_type(e, json_type_string)) {
            a = json_object_get_string(e);
            size_t l = (size_t)json_object_get_string_len(e);
            const char *sp = memchr(a, ' ', l);
            if (!sp) { free(buf); return sembed_fail(SEMBED_ECORRUPT, fn, "model.merges[%zu]: '%.60s' has no space between its two tokens", i, a); }
            la = (size_t)(sp - a);
            b = sp + 1;
            lb = l - la - 1;
        } else if (json_object_is_type(e, json_type_array) && json_object_array_length(e) == 2 &&
                   json_object_is_type(json_object_array_get_idx(e, 0), json_type_string) &&
                   json_object_is_type(json_object_array_get_idx(e, 1), json_type_string)) {
            a = json_object_get_string(json_object_array_get_idx(e, 0));
            la = (size_t)json_object_get_string_len(json_object_array_get_idx(e, 0));
            b = json_object_get_string(json_object_array_get_idx(e, 1));
            lb = (size_t)json_object_get_string_len(json_object_array_get_idx(e, 1));
        } else {
            free(buf);
            return sembed_fail(SEMBED_ECORRUPT, fn, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"], got %s", i, jtype(e));
        }
        int32_t ia = tk_smap_find(h, &h->model_map, a, la), ib = tk_smap_find(h, &h->model_map, b, lb);
        if (ia < 0 || ib < 0) {
            free(buf);
            return sembed_fail(SEMBED_ECORRUPT, fn, "model.merges[%zu]: token '%.*s' is not in the vocabulary", i,
                               (int)(ia < 0 ? (la > 60 ? 60 : la) : (lb > 60 ? 60 : lb)), ia < 0 ? a : b);
        }
        // The merged token: a + b, without b's continuing-subword prefix (HF BPE builder).
        size_t skip = 0;
        if (h->prefix_len && lb >= h->prefix_len && memcmp(b, h->prefix, h->prefix_len) == 0) skip = h->prefix_len;
        size_t ln = la + lb - skip;
        if (ln + 1 > bcap) {
            bcap = (ln + 1) * 2;
            char *nb = realloc(buf, bcap);
            if (!nb) { free(buf); return SEMBED_ENOMEM; }
            buf = nb;
        }
        memcpy(buf, a, la);
        memcpy(buf + la, b + skip, lb - skip);
        int32_t inew = tk_smap_find(h, &h->model_map, buf, ln);
        if (inew < 0) {
            rc = sembed_fail(SEMBED_ECORRUPT, fn, "model.merges[%zu]: merged token '%.*s' is not in the vocabulary", i,
                             (int)(ln > 60 ? 60 : ln), buf);
            free(buf);
            return rc;
        }
        if (inew == ia || inew == ib) {
            free(buf);
            return sembed_fail(SEMBED_ECORRUPT, fn, "model.merges[%zu]: merge of '%.*s' gives back one of its parts (a cycle)",
                               i, (int)(la > 60 ? 60 : la), a);
        }
        uint64_t key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
        size_t mask = cap - 1, j = (size_t)mix64(key) & mask;
        while (mg->used[j] && mg->key[j] != key) j = (j + 1) & mask;
        // A repeated merge takes the later rank, as HF's map built from the list does.
        mg->used[j] = 1;
        mg->key[j] = key;
        mg->rank[j] = (uint32_t)i;
        mg->id[j] = inew;
    }
    free(buf);
    return SEMBED_OK;
}

static int byte_tokens(struct tk_hf *h) {
    // <0xXX> ids for byte fallback (-1 where absent).
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        h->byte_id[b] = tk_smap_find(h, &h->model_map, s, 6);
    }
    return SEMBED_OK;
}

static int parse_model(struct tk_hf *h, json_object *m, const char *fn) {
    int rc = want(m, json_type_object, fn, "model");
    if (rc) return rc;
    const char *type;
    if ((rc = get_str(m, "type", false, &type, NULL, fn, "model"))) return rc;
    if (!type) { // old files omit the type: guess from the fields, as HF does
        if (jget(m, "merges")) type = "BPE";
        else if (jget(m, "continuing_subword_prefix")) type = "WordPiece";
        else if (json_object_is_type(jget(m, "vocab"), json_type_array)) type = "Unigram";
        else type = "WordLevel";
    }
    const char *unk = NULL, *s;
    size_t unk_len = 0, sl;
    if (strcmp(type, "BPE") == 0) {
        h->model = TK_M_BPE;
        json_object *d = jget(m, "dropout");
        double dv = 0;
        if (d && (rc = get_num(d, &dv, fn, "model.dropout"))) return rc;
        if (dv != 0) return sembed_fail(SEMBED_EUNSUPPORTED, fn, "model.dropout %g: BPE dropout (random) is not supported", dv);
        if ((rc = get_str(m, "unk_token", false, &unk, &unk_len, fn, "model")) ||
            (rc = get_str(m, "continuing_subword_prefix", false, &s, &sl, fn, "model")) ||
            (s && (rc = dup_str(s, sl, &h->prefix, &h->prefix_len))) ||
            (rc = get_str(m, "end_of_word_suffix", false, &s, &sl, fn, "model")) ||
            (s && (rc = dup_str(s, sl, &h->suffix, &h->suffix_len))) ||
            (rc = get_bool(m, "fuse_unk", false, &h->fuse_unk, fn, "model")) ||
            (rc = get_bool(m, "byte_fallback", false, &h->byte_fallback, fn, "model")) ||
            (rc = get_bool(m, "ignore_merges", false, &h->ignore_merges, fn, "model")) ||
            (rc = parse_vocab_map(h, jget(m, "vocab"), fn)) || (rc = parse_merges(h, jget(m, "merges"), fn)))
            return rc;
    } else if (strcmp(type, "WordPiece") == 0) {
        h->model = TK_M_WORDPIECE;
        json_object *mx = jget(m, "max_input_chars_per_word");
        int64_t x = 100;
        if (mx && (rc = get_int(mx, 1, INT32_MAX, &x, fn, "model.max_input_chars_per_word"))) return rc;
        h->max_chars = (size_t)x;
        if ((rc = get_str(m, "unk_token", true, &unk, &unk_len, fn, "model")) ||
            (rc = get_str(m, "continuing_subword_prefix", false, &s, &sl, fn, "model")) ||
            (rc = dup_str(s ? s : "##", s ? sl : 2, &h->prefix, &h->prefix_len)) ||
            (rc = parse_vocab_map(h, jget(m, "vocab"), fn)))
            return rc;
    } else if (strcmp(type, "WordLevel") == 0) {
        h->model = TK_M_WORDLEVEL;
        if ((rc = get_str(m, "unk_token", true, &unk, &unk_len, fn, "model")) || (rc = parse_vocab_map(h, jget(m, "vocab"), fn)))
            return rc;
    } else if (strcmp(type, "Unigram") == 0) {
        h->model = TK_M_UNIGRAM;
        json_object *v = jget(m, "vocab"), *u = jget(m, "unk_id");
        if ((rc = want(v, json_type_array, fn, "model.vocab")) ||
            (rc = get_bool(m, "byte_fallback", false, &h->byte_fallback, fn, "model")))
            return rc;
        size_t n = json_object_array_length(v);
        if (n == 0 || n > (size_t)TK_MAX_ID)
            return sembed_fail(SEMBED_ECORRUPT, fn, "model.vocab has %zu pieces (1..%d)", n, TK_MAX_ID);
        h->score = malloc(n * sizeof *h->score);
        if (!h->score || (rc = smap_init(&h->model_map, n))) return SEMBED_ENOMEM;
        if ((rc = grow_ids(h, n))) return rc;
        double min_score = 1e300;
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(v, i);
            if (!json_object_is_type(e, json_type_array) || json_object_array_length(e) != 2 ||
                !json_object_is_type(json_object_array_get_idx(e, 0), json_type_string))
                return sembed_fail(SEMBED_ECORRUPT, fn, "model.vocab[%zu]: expected [\"piece\", score]", i);
            json_object *ps = json_object_array_get_idx(e, 0);
            if ((rc = get_num(json_object_array_get_idx(e, 1), &h->score[i], fn, "model.vocab[][1]"))) return rc;
            if (h->score[i] < min_score) min_score = h->score[i];
            size_t pl = (size_t)json_object_get_string_len(ps);
            if (pl == 0) return sembed_fail(SEMBED_ECORRUPT, fn, "model.vocab[%zu]: empty piece", i);
            if ((rc = set_id(h, (int32_t)i, json_object_get_string(ps), pl, TK_ID_MODEL)) < 0) return rc;
            if (smap_put(h, &h->model_map, (int32_t)i))
                return sembed_fail(SEMBED_ECORRUPT, fn, "model.vocab[%zu]: piece '%.60s' appears twice", i, json_object_get_string(ps));
            size_t chars = 0;
            for (size_t k = 0; k < pl; k++) chars += ((uint8_t)json_object_get_string(ps)[k] & 0xC0) != 0x80;
            if (chars > h->max_piece_chars) h->max_piece_chars = chars;
        }
        h->unk_score = min_score - 10.0; // HF unigram: kUnkPenalty = 10 below the lowest score
        h->unk = -1;
        if (u) {
            int64_t x;
            if ((rc = get_int(u, 0, (int64_t)n - 1, &x, fn, "model.unk_id"))) return rc;
            h->unk = (int32_t)x;
        }
    } else {
        return sembed_fail(SEMBED_EUNSUPPORTED, fn, "model type '%s' is not supported", type);
    }
    h->model_vocab = h->n_ids;
    if (h->model != TK_M_UNIGRAM) {
        h->unk = -1;
        if (unk) {
            h->unk = tk_smap_find(h, &h->model_map, unk, unk_len);
            if (h->unk < 0) return sembed_fail(SEMBED_ECORRUPT, fn, "model.unk_token '%.60s' is not in the vocabulary", unk);
        }
    }
    return byte_tokens(h);
}

/* ------------------------------------------------------------------ added tokens */

static int parse_added(struct tk_hf *h, json_object *a, const char *fn) {
    if (!a) return SEMBED_OK;
    int rc = want(a, json_type_array, fn, "added_tokens");
    if (rc) return rc;
    size_t n = json_object_array_length(a);
    if (n > 1u << 20) return sembed_fail(SEMBED_ECORRUPT, fn, "added_tokens has %zu entries (at most 2^20)", n);
    h->added = calloc(n ? n : 1, sizeof *h->added);
    if (!h->added) return SEMBED_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(a, i);
        if ((rc = want(o, json_type_object, fn, "added_tokens[]"))) return rc;
        struct tk_added *t = &h->added[h->n_added];
        int64_t id;
        const char *c;
        size_t cl;
        if ((rc = get_int(jget(o, "id"), 0, TK_MAX_ID, &id, fn, "added_tokens[].id")) ||
            (rc = get_str(o, "content", true, &c, &cl, fn, "added_tokens[]")) ||
            (rc = get_bool(o, "single_word", false, &t->single_word, fn, "added_tokens[]")) ||
            (rc = get_bool(o, "lstrip", false, &t->lstrip, fn, "added_tokens[]")) ||
            (rc = get_bool(o, "rstrip", false, &t->rstrip, fn, "added_tokens[]")) ||
            (rc = get_bool(o, "special", false, &t->special, fn, "added_tokens[]")))
            return rc;
        if (!cl) return sembed_fail(SEMBED_ECORRUPT, fn, "added_tokens[%zu]: empty content", i);
        // HF's default: normalized unless special.
        if ((rc = get_bool(o, "normalized", !t->special, &t->normalized, fn, "added_tokens[]"))) return rc;
        t->id = (int32_t)id;
        if ((rc = dup_str(c, cl, &t->s, &t->len))) return rc;
        h->n_added++; // owns t->s from here (freed with h)
        rc = set_id(h, t->id, c, cl, TK_ID_ADDED);
        if (rc < 0) return rc == SEMBED_ECORRUPT ? sembed_fail(rc, fn, "added_tokens[%zu]: id %lld too large", i, (long long)id) : rc;
        if (rc == 1 && (h->tlen[t->id] != cl || memcmp(h->pool + h->toff[t->id], c, cl) != 0))
            return sembed_fail(SEMBED_ECORRUPT, fn, "added_tokens[%zu]: id %d is already the token '%.60s', not '%.60s'", i,
                               t->id, h->pool + h->toff[t->id], c);
        h->first_byte[(uint8_t)c[0]] = 1;
    }
    if ((rc = smap_init(&h->added_map, h->n_added))) return rc;
    for (size_t i = 0; i < h->n_added; i++) {
        int32_t id = h->added[i].id;
        // the map keys on the id's string, which for an added token is its content
        smap_put(h, &h->added_map, id);
    }
    return SEMBED_OK;
}

/* ------------------------------------------------------------------ entry */

void tk_hf_free(struct tk_hf *h) {
    if (!h) return;
    for (size_t i = 0; i < h->n_norm; i++) { pcre2_code_free(h->norm[i].re); free(h->norm[i].str); free(h->norm[i].trie); }
    for (size_t i = 0; i < h->n_pre; i++) pcre2_code_free(h->pre[i].re);
    for (size_t i = 0; i < h->n_post; i++) {
        struct tk_post *p = &h->post[i];
        for (size_t k = 0; k < p->n_single; k++) free(p->single[k].ids);
        for (size_t k = 0; k < p->n_pair; k++) free(p->pair[k].ids);
        free(p->single);
        free(p->pair);
    }
    for (size_t i = 0; i < h->n_added; i++) free(h->added[i].s);
    free(h->added);
    free(h->norm);
    free(h->pre);
    free(h->pool);
    free(h->toff);
    free(h->tlen);
    free(h->tkind);
    free(h->model_map.slot);
    free(h->added_map.slot);
    free(h->merges.key);
    free(h->merges.rank);
    free(h->merges.id);
    free(h->merges.used);
    free(h->score);
    free(h->prefix);
    free(h->suffix);
    free(h);
}

int tk_hf_parse(const char *json, size_t len, const char *fn, struct tk_hf **out) {
    *out = NULL;
    if (!json) return sembed_fail(SEMBED_EINVAL, fn, "tokenizer.json text is NULL");
    if (len > TK_MAX_JSON)
        return sembed_fail(SEMBED_ECORRUPT, fn, "tokenizer.json is %zu bytes (at most %u MiB)", len, TK_MAX_JSON >> 20);
    struct json_tokener *tok = json_tokener_new_ex(64);
    if (!tok) return SEMBED_ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    json_object *root = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    size_t where = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    size_t rest = where; // only whitespace may follow the value (the text need not end in NUL)
    while (rest < len && (json[rest] == ' ' || json[rest] == '\t' || json[rest] == '\r' || json[rest] == '\n')) rest++;
    if (!root || jerr != json_tokener_success || rest < len) {
        json_object_put(root);
        if (jerr == json_tokener_continue) return sembed_fail(SEMBED_EPARSE, fn, "tokenizer.json: unexpected end of text");
        return sembed_fail(SEMBED_EPARSE, fn, "tokenizer.json: bad JSON near byte %zu: %s", where,
                           jerr == json_tokener_success ? "trailing data" : json_tokener_error_desc(jerr));
    }
    struct tk_hf *h = calloc(1, sizeof *h);
    int rc = SEMBED_ENOMEM;
    if (!h) goto done;
    if ((rc = want(root, json_type_object, fn, "tokenizer.json"))) goto done;
    json_object *n = jget(root, "normalizer"), *p = jget(root, "pre_tokenizer"), *pp = jget(root, "post_processor");
    json_object *m = jget(root, "model");
    if (!m) { rc = sembed_fail(SEMBED_EMISSING, fn, "tokenizer.json: 'model' is missing"); goto done; }
    if ((rc = parse_model(h, m, fn))) goto done;
    if (n && (rc = parse_normalizer(h, n, fn, "normalizer", 0))) goto done;
    if (p && (rc = parse_pre(h, p, fn, "pre_tokenizer", 0))) goto done;
    if (pp && (rc = parse_post(h, pp, fn, "post_processor", 0))) goto done;
    if ((rc = parse_added(h, jget(root, "added_tokens"), fn))) goto done;
    // Post-processor ids must exist.
    for (size_t i = 0; i < h->n_post; i++) {
        struct tk_post *q = &h->post[i];
        int32_t ids[2] = {q->cls, q->sep};
        for (int k = 0; k < 2 && (q->kind == TK_PP_BERT || q->kind == TK_PP_ROBERTA); k++)
            if ((size_t)ids[k] >= h->n_ids) {
                rc = sembed_fail(SEMBED_ECORRUPT, fn, "post_processor: special id %d is outside the vocabulary (%zu)", ids[k], h->n_ids);
                goto done;
            }
        for (int w = 0; w < 2; w++) {
            struct tk_tpl *t = w ? q->pair : q->single;
            size_t nt = w ? q->n_pair : q->n_single;
            for (size_t k = 0; k < nt; k++)
                for (size_t j = 0; j < t[k].n; j++)
                    if ((size_t)t[k].ids[j] >= h->n_ids) {
                        rc = sembed_fail(SEMBED_ECORRUPT, fn, "post_processor: template id %d is outside the vocabulary (%zu)",
                                         t[k].ids[j], h->n_ids);
                        goto done;
                    }
        }
    }
    rc = SEMBED_OK;
done:
    json_object_put(root);
    if (rc) tk_hf_free(h);
    else *out = h;
    return rc;
}

size_t tk_hf_vocab_size(const struct tk_hf *h) { return h->n_ids; }

const char *tk_hf_token(const struct tk_hf *h, int32_t id) {
    if (id < 0 || (size_t)id >= h->n_ids || h->tkind[id] == TK_ID_NONE) return NULL;
    return h->pool + h->toff[id];
}

int32_t tk_hf_id(const struct tk_hf *h, const char *tok, size_t len) {
    int32_t id = tk_smap_find(h, &h->added_map, tok, len);
    return id >= 0 ? id : tk_smap_find(h, &h->model_map, tok, len);
}

const char *tk_hf_model_name(const struct tk_hf *h) {
    static const char *names[] = {"BPE", "Unigram", "WordLevel", "WordPiece"};
    return names[h->model];
}

void tk_hf_describe(const struct tk_hf *h, char *buf, size_t cap) {
    static const char *nn[] = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase", "StripAccents", "Strip", "Replace", "Prepend",
                               "BertNormalizer", "Precompiled"};
    static const char *pn[] = {"ByteLevel", "Metaspace", "Whitespace", "WhitespaceSplit", "Punctuation", "Split",
                               "Digits", "BertPreTokenizer", "CharDelimiterSplit"};
    static const char *qn[] = {"BertProcessing", "RobertaProcessing", "TemplateProcessing", "ByteLevel"};
    size_t o = 0;
#define PUT(...) do { int k_ = snprintf(buf + o, o < cap ? cap - o : 0, __VA_ARGS__); if (k_ > 0) o += (size_t)k_; } while (0)
    PUT("hf %s vocab=%zu", tk_hf_model_name(h), h->n_ids);
    PUT(" normalizer=");
    if (!h->n_norm) PUT("none");
    for (size_t i = 0; i < h->n_norm; i++) PUT("%s%s", i ? "," : "", nn[h->norm[i].kind]);
    PUT(" pre_tokenizer=");
    if (!h->n_pre) PUT("none");
    for (size_t i = 0; i < h->n_pre; i++) PUT("%s%s", i ? "," : "", pn[h->pre[i].kind]);
    PUT(" post_processor=");
    if (!h->n_post) PUT("none");
    for (size_t i = 0; i < h->n_post; i++) PUT("%s%s", i ? "," : "", qn[h->post[i].kind]);
    PUT(" added_tokens=%zu", h->n_added);
#undef PUT
    if (cap) buf[o < cap ? o : cap - 1] = 0;
}

size_t tk_hf_added_specials(const struct tk_hf *h, bool pair) {
    size_t n = 0;
    for (size_t i = 0; i < h->n_post; i++) {
        const struct tk_post *p = &h->post[i];
        if (p->kind == TK_PP_BERT) n += pair ? 3 : 2;
        else if (p->kind == TK_PP_ROBERTA) n += pair ? 4 : 2;
        else if (p->kind == TK_PP_TEMPLATE) {
            const struct tk_tpl *t = pair ? p->pair : p->single;
            size_t nt = pair ? p->n_pair : p->n_single;
            for (size_t k = 0; k < nt; k++) n += t[k].seq < 0 ? t[k].n : 0;
        }
    }
    return n;
}

int32_t tk_hf_special(const struct tk_hf *h, const char *const *names) {
    for (; *names; names++) {
        int32_t id = tk_hf_id(h, *names, strlen(*names));
        if (id >= 0) return id;
    }
    return -1;
}
