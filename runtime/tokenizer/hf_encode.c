// Running a parsed tokenizer.json: added tokens -> normalizers -> pre-tokenizers -> model ->
// truncation -> post-processor, as HuggingFace tokenizers (Rust) runs them, with offsets.
//
// Text is carried as "units": one code point each with the byte span [s, e) of the original text
// it came from. A normalizer maps units to units (an inserted or decomposed character keeps the
// span of the character it came from), a pre-tokenizer cuts them into pieces, a model turns each
// piece into tokens covering a run of units; a token's offsets are the span from its first unit's
// start to its last unit's end (HF's alignments, per character).
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "formats/log.h"
#include "runtime/tokenizer/compat.h"
#include "runtime/tokenizer/hf_internal.h"

struct uv {
    uint32_t *c, *s, *e;
    size_t n, cap;
};

struct piece {
    size_t off, len; // units (an added token: the whitespace characters lstrip / rstrip took)
    int32_t added;   // >= 0: an added token (no units; span in os, oe)
    uint32_t os, oe;
};

struct pv {
    struct uv u;
    struct piece *p;
    size_t n, cap;
};

static void uv_free(struct uv *u) { free(u->c); free(u->s); free(u->e); memset(u, 0, sizeof *u); }
static void pv_free(struct pv *v) { uv_free(&v->u); free(v->p); memset(v, 0, sizeof *v); }

static int uv_push(struct uv *u, uint32_t c, uint32_t s, uint32_t e) {
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 64;
        uint32_t *a = realloc(u->c, cap * 4), *b, *d;
        if (!a) return SEMBED_ENOMEM;
        u->c = a;
        if (!(b = realloc(u->s, cap * 4))) return SEMBED_ENOMEM;
        u->s = b;
        if (!(d = realloc(u->e, cap * 4))) return SEMBED_ENOMEM;
        u->e = d;
        u->cap = cap;
    }
    u->c[u->n] = c;
    u->s[u->n] = s;
    u->e[u->n] = e;
    u->n++;
    return SEMBED_OK;
}

static int pv_piece(struct pv *v, size_t off, size_t len, int32_t added, uint32_t os, uint32_t oe) {
    if (added < 0 && len == 0) return SEMBED_OK; // HF drops empty pieces
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        struct piece *p = realloc(v->p, cap * sizeof *p);
        if (!p) return SEMBED_ENOMEM;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = (struct piece){off, len, added, os, oe};
    return SEMBED_OK;
}

// Copy units [off, off+len) of src to the end of dst as one new piece.
static int pv_copy(struct pv *dst, const struct uv *src, size_t off, size_t len) {
    size_t at = dst->u.n;
    for (size_t i = 0; i < len; i++) {
        int rc = uv_push(&dst->u, src->c[off + i], src->s[off + i], src->e[off + i]);
        if (rc) return rc;
    }
    return pv_piece(dst, at, len, -1, 0, 0);
}

// UTF-8 of units [off, off+len) with bo[k] = byte offset of unit k (bo[len] = total bytes).
struct u8 {
    char *b;
    size_t *bo;
    size_t n, cap, ocap;
};

static int u8_build(struct u8 *t, const struct uv *u, size_t off, size_t len) {
    if (len * 4 + 1 > t->cap) {
        size_t cap = len * 4 + 64;
        char *b = realloc(t->b, cap);
        if (!b) return SEMBED_ENOMEM;
        t->b = b;
        t->cap = cap;
    }
    if (len + 1 > t->ocap) {
        size_t *bo = realloc(t->bo, (len + 64) * sizeof *bo);
        if (!bo) return SEMBED_ENOMEM;
        t->bo = bo;
        t->ocap = len + 64;
    }
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        t->bo[i] = n;
        n += tk_utf8_encode(u->c[off + i], t->b + n);
    }
    t->bo[len] = n;
    t->b[n] = 0;
    t->n = n;
    return SEMBED_OK;
}

static void u8_free(struct u8 *t) { free(t->b); free(t->bo); }

// Unit index of byte offset b (a character boundary) in t, by binary search.
static size_t u8_unit(const struct u8 *t, size_t len, size_t b) {
    size_t lo = 0, hi = len;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->bo[mid] < b) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* ------------------------------------------------------------------ matches (delimiters) */

struct rng { size_t a, b; };
struct rv { struct rng *r; size_t n, cap; };

static int rv_push(struct rv *v, size_t a, size_t b) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 32;
        struct rng *r = realloc(v->r, cap * sizeof *r);
        if (!r) return SEMBED_ENOMEM;
        v->r = r;
        v->cap = cap;
    }
    v->r[v->n++] = (struct rng){a, b};
    return SEMBED_OK;
}

// All non-overlapping matches of re in units [off, off+len), as unit ranges (empty matches skipped).
static int regex_matches(pcre2_code *re, const struct uv *u, size_t off, size_t len, struct u8 *t, struct rv *out) {
    out->n = 0;
    int rc = u8_build(t, u, off, len);
    if (rc) return rc;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) return SEMBED_ENOMEM;
    size_t pos = 0;
    while (pos <= t->n) {
        int m = pcre2_match(re, (PCRE2_SPTR)t->b, t->n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            pcre2_match_data_free(md);
            return sembed_fail(SEMBED_EINVAL, "sembed_tokenizer_encode", "regex match failed (PCRE2 error %d)", m);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[0], b = ov[1];
        if (b > a) {
            if ((rc = rv_push(out, u8_unit(t, len, a), u8_unit(t, len, b)))) break;
            pos = b;
        } else {
            if (a >= t->n) break;
            pos = a + 1; // step over one character
            while (pos < t->n && ((uint8_t)t->b[pos] & 0xC0) == 0x80) pos++;
        }
    }
    pcre2_match_data_free(md);
    return rc;
}

// Cut units [off, off+len) at the delimiter ranges d (sorted, within [0, len)) with HF's
// SplitDelimiterBehavior; invert swaps which parts are delimiters. Pieces go to out (copied).
static int split_piece(struct pv *out, const struct uv *u, size_t off, size_t len, const struct rv *d, int behavior,
                       bool invert) {
    // The alternating list of (range, is_delimiter) covering the piece.
    struct { size_t a, b; bool m; } *parts = malloc((2 * d->n + 1) * sizeof *parts);
    if (!parts) return SEMBED_ENOMEM;
    size_t np = 0, prev = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (d->r[i].a > prev) { parts[np].a = prev; parts[np].b = d->r[i].a; parts[np++].m = invert; }
        parts[np].a = d->r[i].a; parts[np].b = d->r[i].b; parts[np++].m = !invert;
        prev = d->r[i].b;
    }
    if (prev < len) { parts[np].a = prev; parts[np].b = len; parts[np++].m = invert; }
    // Fold them as HF does for each behavior.
    size_t k = 0; // parts kept, merged in place
    bool prev_m = false;
    int rc = SEMBED_OK;
    switch (behavior) {
    case TK_B_REMOVED:
        for (size_t i = 0; i < np; i++) if (!parts[i].m) parts[k++] = parts[i];
        break;
    case TK_B_ISOLATED: k = np; break;
    case TK_B_MERGED_PREV:
        for (size_t i = 0; i < np; i++) {
            if (parts[i].m && !prev_m && k) parts[k - 1].b = parts[i].b;
            else parts[k++] = parts[i];
            prev_m = parts[i].m;
        }
        break;
    case TK_B_MERGED_NEXT: {
        // right to left: a delimiter joins the part after it
        size_t w = np;
        for (size_t i = np; i-- > 0;) {
            if (parts[i].m && !prev_m && w < np) parts[w].a = parts[i].a;
            else parts[--w] = parts[i];
            prev_m = parts[i].m;
        }
        memmove(parts, parts + w, (np - w) * sizeof *parts);
        k = np - w;
        break;
    }
    case TK_B_CONTIGUOUS:
        for (size_t i = 0; i < np; i++) {
            if (k && parts[i].m == prev_m) parts[k - 1].b = parts[i].b;
            else parts[k++] = parts[i];
            prev_m = parts[i].m;
        }
        break;
    }
    for (size_t i = 0; i < k && !rc; i++)
        if (parts[i].b > parts[i].a) rc = pv_copy(out, u, off + parts[i].a, parts[i].b - parts[i].a);
    free(parts);
    return rc;
}

/* ------------------------------------------------------------------ normalizers */

// Combining class as HF's normalization tables know them: these marks (ccc > 0 in utf8proc's
// Unicode 15) are starters (ccc 0) to HF, whose tables are older. Measured with HF's NFD over every
// mark utf8proc gives a class above 1 ('a' + mark + U+0334 is reordered or not).
static const uint32_t HF_CCC0[] = {
    0x7FD, 0x898, 0x899, 0x89A, 0x89B, 0x89C, 0x89D, 0x89E, 0x89F, 0x8CA, 0x8CB, 0x8CC, 0x8CD, 0x8CE, 0x8CF,
    0x8D0, 0x8D1, 0x8D2, 0x8D3, 0x9FE, 0xC3C, 0xD3B, 0xD3C, 0xEBA, 0x1715, 0x1ABF, 0x1AC0, 0x1AC1, 0x1AC2,
    0x1AC3, 0x1AC4, 0x1AC5, 0x1AC6, 0x1AC7, 0x1AC8, 0x1AC9, 0x1ACA, 0x1ACB, 0x1ACC, 0x1ACD, 0x1ACE, 0x1DF6,
    0x1DF7, 0x1DF8, 0x1DF9, 0x1DFA, 0xA82C, 0x10D24, 0x10D25, 0x10D26, 0x10D27, 0x10EAB, 0x10EAC, 0x10EFD,
    0x10EFE, 0x10EFF, 0x10F46, 0x10F47, 0x10F48, 0x10F49, 0x10F4A, 0x10F4B, 0x10F4C, 0x10F4D, 0x10F4E,
    0x10F4F, 0x10F50, 0x10F82, 0x10F83, 0x10F84, 0x10F85, 0x11070, 0x1133B, 0x1145E, 0x11839, 0x1183A,
    0x1193D, 0x1193E, 0x11943, 0x119E0, 0x11A34, 0x11A47, 0x11A99, 0x11D42, 0x11D44, 0x11D45, 0x11D97,
    0x11F41, 0x11F42, 0x16FF0, 0x16FF1, 0x1E08F, 0x1E130, 0x1E131, 0x1E132, 0x1E133, 0x1E134, 0x1E135,
    0x1E136, 0x1E2AE, 0x1E2EC, 0x1E2ED, 0x1E2EE, 0x1E2EF, 0x1E4EC, 0x1E4ED, 0x1E4EE, 0x1E4EF
};

static int ccc(uint32_t c) {
    if (c < 0x300) return 0;
    int k = tk_ccc(c);
    if (!k || c < HF_CCC0[0]) return k;
    size_t lo = 0, hi = sizeof HF_CCC0 / sizeof *HF_CCC0;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (HF_CCC0[m] < c) lo = m + 1;
        else hi = m;
    }
    return lo < sizeof HF_CCC0 / sizeof *HF_CCC0 && HF_CCC0[lo] == c ? 0 : k;
}

// Characters with HF's "changes" (unicode-normalization-alignments): 0 = takes the place of the
// next input character, -n = takes it and swallows n more, +1 = inserted. Spans are handed out by
// position as HF's transform does: reordering marks moves characters, not spans (measured).
struct cl {
    uint32_t *c;
    int32_t *ch;
    size_t n, cap;
};

static int cl_push(struct cl *l, uint32_t c, int32_t ch) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        uint32_t *a = realloc(l->c, cap * 4);
        if (!a) return SEMBED_ENOMEM;
        l->c = a;
        int32_t *b = realloc(l->ch, cap * 4);
        if (!b) return SEMBED_ENOMEM;
        l->ch = b;
        l->cap = cap;
    }
    l->c[l->n] = c;
    l->ch[l->n] = ch;
    l->n++;
    return SEMBED_OK;
}

static void cl_free(struct cl *l) { free(l->c); free(l->ch); }

static int cl_apply(const struct uv *in, const struct cl *l, struct uv *out) {
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        uint32_t s, e;
        if (l->ch[i] > 0) {
            if (k) { s = in->s[k - 1]; e = in->e[k - 1]; }
            else { s = e = in->n ? in->s[0] : 0; }
        } else {
            size_t j = k < in->n ? k : in->n - 1;
            s = in->s[j];
            e = in->e[j];
            k += (size_t)(1 - l->ch[i]);
        }
        if (uv_push(out, l->c[i], s, e)) return SEMBED_ENOMEM;
    }
    return SEMBED_OK;
}

// Stable sort of each run of non-starters by combining class (canonical ordering), changes along.
static void reorder(struct cl *u) {
    size_t i = 0;
    while (i < u->n) {
        if (ccc(u->c[i]) == 0) { i++; continue; }
        size_t j = i;
        while (j < u->n && ccc(u->c[j]) != 0) j++;
        for (size_t a = i + 1; a < j; a++) { // insertion sort: runs are short in practice
            uint32_t c = u->c[a];
            int32_t ch = u->ch[a];
            int k = ccc(c);
            size_t b = a;
            while (b > i && ccc(u->c[b - 1]) > k) { u->c[b] = u->c[b - 1]; u->ch[b] = u->ch[b - 1]; b--; }
            u->c[b] = c;
            u->ch[b] = ch;
        }
        i = j;
    }
}

// Code points HF's NFKD leaves whole although utf8proc (Unicode 15) gives them a compatibility
// decomposition (added to Unicode after HF's tables): 10 ranges, measured with HF's NFKD over every
// code point utf8proc decomposes.
static const uint32_t HF_KD_KEEP[][2] = {
    {0x32FF, 0x32FF}, {0xA7F2, 0xA7F4}, {0xAB69, 0xAB69}, {0x10781, 0x10785}, {0x10787, 0x107B0}, {0x107B2,
    0x107BA}, {0x11938, 0x11938}, {0x1E030, 0x1E06D}, {0x1F16C, 0x1F16C}, {0x1FBF0, 0x1FBF9}
};

static bool hf_kd_keep(uint32_t c) {
    size_t lo = 0, hi = sizeof HF_KD_KEEP / sizeof *HF_KD_KEEP;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (HF_KD_KEEP[m][1] < c) lo = m + 1;
        else hi = m;
    }
    return lo < sizeof HF_KD_KEEP / sizeof *HF_KD_KEEP && HF_KD_KEEP[lo][0] <= c;
}

static int decompose(const struct uv *in, struct cl *out, bool compat) {
    for (size_t i = 0; i < in->n; i++) {
        utf8proc_int32_t d[32];
        int last = 0;
        utf8proc_ssize_t k;
        if (!compat) {
            uint32_t dd[16];
            size_t m = tk_nfd(in->c[i], dd, 16);
            for (size_t j = 0; j < m; j++) if (cl_push(out, dd[j], j ? 1 : 0)) return SEMBED_ENOMEM;
            continue;
        }
        if (hf_kd_keep(in->c[i])) { if (cl_push(out, in->c[i], 0)) return SEMBED_ENOMEM; continue; }
        k = utf8proc_decompose_char((utf8proc_int32_t)in->c[i], d, 32, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, &last);
        if (k < 1 || k > 32) { d[0] = (utf8proc_int32_t)in->c[i]; k = 1; }
        for (utf8proc_ssize_t j = 0; j < k; j++) if (cl_push(out, (uint32_t)d[j], j ? 1 : 0)) return SEMBED_ENOMEM;
    }
    reorder(out);
    return SEMBED_OK;
}

static uint32_t compose2(uint32_t a, uint32_t b) {
    // Hangul LV / LVT (Unicode 15, section 3.12), then the canonical pair table through utf8proc.
    if (a >= 0x1100 && a < 0x1113 && b >= 0x1161 && b < 0x1176) return 0xAC00 + ((a - 0x1100) * 21 + (b - 0x1161)) * 28;
    if (a >= 0xAC00 && a < 0xD7A4 && (a - 0xAC00) % 28 == 0 && b > 0x11A7 && b < 0x11C3) return a + (b - 0x11A7);
    utf8proc_int32_t buf[2] = {(utf8proc_int32_t)a, (utf8proc_int32_t)b};
    utf8proc_ssize_t n = utf8proc_normalize_utf32(buf, 2, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    return n == 1 ? (uint32_t)buf[0] : 0;
}

// Canonical composition in place (UAX #15); the composite takes over the absorbed character's
// change (one input character fewer in the output).
static void compose(struct cl *u) {
    if (!u->n) return;
    size_t starter = 0, w = 1;
    int last = ccc(u->c[0]);
    if (last != 0) last = 256;
    for (size_t i = 1; i < u->n; i++) {
        uint32_t c = u->c[i];
        int cc = ccc(c);
        uint32_t comp = (last < cc || last == 0) ? compose2(u->c[starter], c) : 0;
        if (comp) {
            u->c[starter] = comp;
            u->ch[starter] += u->ch[i] - 1;
            continue;
        }
        if (cc == 0) starter = w;
        last = cc;
        u->c[w] = c;
        u->ch[w] = u->ch[i];
        w++;
    }
    u->n = w;
}

// NFD / NFKD (and NFC / NFKC with compose) of in into out, spans by HF's rule.
static int normalize_form(const struct uv *in, struct uv *out, bool compat, bool comp) {
    struct cl l = {0};
    int rc = decompose(in, &l, compat);
    if (!rc && comp) compose(&l);
    if (!rc) rc = cl_apply(in, &l, out);
    cl_free(&l);
    return rc;
}

static bool is_mark(uint32_t c) {
    int o = tk_compat_lookup(c);
    if (o >= 0) return o == TK_HF_MN;
    int k = (int)utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME;
}

// HF's Precompiled::replace: the new characters take the old ones' places; extra ones are marked
// inserted (the last `diff` entries so far), fewer ones make the last entry so far swallow the rest.
static int pc_replace(struct cl *l, size_t old_n, const char *rep) {
    size_t p = 0, n = strlen(rep), k = 0;
    while (p < n) {
        uint32_t c;
        p += tk_utf8_decode((const uint8_t *)rep + p, n - p, &c);
        if (cl_push(l, c, 0)) return SEMBED_ENOMEM;
        k++;
    }
    if (k > old_n) for (size_t i = 0; i < k - old_n; i++) l->ch[l->n - 1 - i] = 1;
    else if (k < old_n && l->n) l->ch[l->n - 1] -= (int32_t)(old_n - k);
    return SEMBED_OK;
}

// SentencePiece's charsmap as HF applies it (tokenizers normalizers/precompiled.rs): per extended
// grapheme cluster (utf8proc's segmentation), a cluster under 6 bytes whose bytes start with a
// trie key is replaced whole; otherwise each character is looked up alone or copied.
static int precompiled(const struct tk_norm *nm, const struct uv *in, struct uv *out) {
    struct cl l = {0};
    int rc = SEMBED_OK;
    utf8proc_int32_t state = 0;
    for (size_t a = 0; a < in->n && !rc;) {
        size_t b = a + 1;
        while (b < in->n && !utf8proc_grapheme_break_stateful((utf8proc_int32_t)in->c[b - 1], (utf8proc_int32_t)in->c[b], &state))
            b++;
        uint8_t key[8];
        size_t kn = 0;
        for (size_t i = a; i < b && kn < 6; i++) {
            char u8[4];
            size_t k = tk_utf8_encode(in->c[i], u8);
            if (kn + k > sizeof key) { kn = sizeof key; break; }
            memcpy(key + kn, u8, k);
            kn += k;
        }
        const char *rep = kn < 6 ? tk_precompiled_find(nm, key, kn) : NULL;
        if (rep) rc = pc_replace(&l, b - a, rep);
        for (size_t i = a; i < b && !rep && !rc; i++) {
            char u8[4];
            size_t k = tk_utf8_encode(in->c[i], u8);
            const char *r = tk_precompiled_find(nm, (const uint8_t *)u8, k);
            rc = r ? pc_replace(&l, 1, r) : cl_push(&l, in->c[i], 0);
        }
        a = b;
    }
    if (!rc) rc = cl_apply(in, &l, out);
    cl_free(&l);
    return rc;
}

static int normalize_one(const struct tk_norm *nm, struct uv *in, struct uv *out) {
    int rc = SEMBED_OK;
    out->n = 0;
    switch (nm->kind) {
    case TK_N_NFD: case TK_N_NFKD: return normalize_form(in, out, nm->kind == TK_N_NFKD, false);
    case TK_N_NFC: case TK_N_NFKC: return normalize_form(in, out, nm->kind == TK_N_NFKC, true);
    case TK_N_PRECOMPILED: return precompiled(nm, in, out);
    case TK_N_LOWER:
        for (size_t i = 0; i < in->n && !rc; i++) {
            uint32_t lw[2];
            size_t k = tk_lower_rust(in->c[i], lw);
            for (size_t j = 0; j < k && !rc; j++) rc = uv_push(out, lw[j], in->s[i], in->e[i]);
        }
        return rc;
    case TK_N_STRIPACC:
        for (size_t i = 0; i < in->n && !rc; i++)
            if (!is_mark(in->c[i])) rc = uv_push(out, in->c[i], in->s[i], in->e[i]);
        return rc;
    case TK_N_STRIP: {
        size_t a = 0, b = in->n;
        if (nm->left) while (a < b && tk_is_whitespace(in->c[a])) a++;
        if (nm->right) while (b > a && tk_is_whitespace(in->c[b - 1])) b--;
        for (size_t i = a; i < b && !rc; i++) rc = uv_push(out, in->c[i], in->s[i], in->e[i]);
        return rc;
    }
    case TK_N_PREPEND: {
        if (!in->n) return SEMBED_OK;
        size_t p = 0;
        while (p < nm->slen && !rc) {
            uint32_t c;
            p += tk_utf8_decode((const uint8_t *)nm->str + p, nm->slen - p, &c);
            rc = uv_push(out, c, in->s[0], in->e[0]);
        }
        for (size_t i = 0; i < in->n && !rc; i++) rc = uv_push(out, in->c[i], in->s[i], in->e[i]);
        return rc;
    }
    case TK_N_REPLACE: {
        struct u8 t = {0};
        struct rv m = {0};
        rc = regex_matches(nm->re, in, 0, in->n, &t, &m);
        size_t prev = 0;
        for (size_t k = 0; k <= m.n && !rc; k++) {
            size_t a = k < m.n ? m.r[k].a : in->n;
            for (size_t i = prev; i < a && !rc; i++) rc = uv_push(out, in->c[i], in->s[i], in->e[i]);
            if (k == m.n) break;
            // HF removes the matched characters and inserts the replacement after the last of
            // them: every replacement character takes the last matched character's span.
            size_t b = m.r[k].b, p = 0;
            while (p < nm->slen && !rc) {
                uint32_t c;
                p += tk_utf8_decode((const uint8_t *)nm->str + p, nm->slen - p, &c);
                rc = uv_push(out, c, in->s[b - 1], in->e[b - 1]);
            }
            prev = b;
        }
        u8_free(&t);
        free(m.r);
        return rc;
    }
    case TK_N_BERT: {
        struct uv a = {0}, b = {0};
        for (size_t i = 0; i < in->n && !rc; i++) {
            uint32_t c = in->c[i];
            if (nm->clean) {
                if (c == 0 || c == 0xFFFD || tk_is_control(c)) continue;
                if (tk_is_whitespace(c)) c = ' ';
            }
            if (nm->chinese && c >= 0x3400 && tk_is_chinese(c)) {
                rc = uv_push(&a, ' ', in->s[i], in->e[i]);
                if (!rc) rc = uv_push(&a, c, in->s[i], in->e[i]);
                if (!rc) rc = uv_push(&a, ' ', in->s[i], in->e[i]);
            } else {
                rc = uv_push(&a, c, in->s[i], in->e[i]);
            }
        }
        struct uv *cur = &a;
        if (!rc && nm->strip_acc) {
            rc = normalize_form(&a, &b, false, false);
            size_t w = 0;
            for (size_t i = 0; i < b.n; i++)
                if (!tk_is_mn(b.c[i])) { b.c[w] = b.c[i]; b.s[w] = b.s[i]; b.e[w] = b.e[i]; w++; }
            b.n = w;
            cur = &b;
        }
        for (size_t i = 0; i < cur->n && !rc; i++) {
            if (!nm->lower) { rc = uv_push(out, cur->c[i], cur->s[i], cur->e[i]); continue; }
            uint32_t lw[2];
            size_t k = tk_lower_rust(cur->c[i], lw);
            for (size_t j = 0; j < k && !rc; j++) rc = uv_push(out, lw[j], cur->s[i], cur->e[i]);
        }
        uv_free(&a);
        uv_free(&b);
        return rc;
    }
    }
    return SEMBED_EINVAL;
}

// Run every normalizer over u (replaced by the result).
static int normalize(const struct tk_hf *h, struct uv *u) {
    for (size_t i = 0; i < h->n_norm; i++) {
        struct uv o = {0};
        int rc = normalize_one(&h->norm[i], u, &o);
        if (rc) { uv_free(&o); return rc; }
        uv_free(u);
        *u = o;
    }
    return SEMBED_OK;
}

/* ------------------------------------------------------------------ pre-tokenizers */

static bool is_numeric(uint32_t c) { // Rust char::is_numeric: Nd, Nl, No
    if (c < 0x80) return c >= '0' && c <= '9';
    int k = (int)utf8proc_category((utf8proc_int32_t)c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

static int char_matches(const struct uv *u, size_t off, size_t len, int what, uint32_t ch, struct rv *m) {
    m->n = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t c = u->c[off + i];
        bool hit = what == 0 ? tk_is_whitespace(c) : what == 1 ? tk_is_punct(c) : what == 2 ? is_numeric(c) : c == ch;
        if (hit && rv_push(m, i, i + 1)) return SEMBED_ENOMEM;
    }
    return SEMBED_OK;
}

// GPT-2's byte -> character table (each byte a printable character; bytes_to_unicode).
static uint32_t byte_char(uint8_t b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    // the others, in byte order, become U+0100 onwards
    uint32_t k = b <= 32 ? b : b <= 160 ? 33u + (b - 127u) : 67u;
    return 256 + k;
}

static int pre_one(const struct tk_pre *p, const struct pv *in, struct pv *out, struct u8 *t, struct rv *m) {
    int rc = SEMBED_OK;
    for (size_t k = 0; k < in->n && !rc; k++) {
        const struct piece *pc = &in->p[k];
        if (pc->added >= 0) { rc = pv_piece(out, pc->off, pc->len, pc->added, pc->os, pc->oe); continue; }
        const struct uv *u = &in->u;
        size_t off = pc->off, len = pc->len;
        switch (p->kind) {
        case TK_P_WSSPLIT:
            if (!(rc = char_matches(u, off, len, 0, 0, m))) rc = split_piece(out, u, off, len, m, TK_B_REMOVED, false);
            break;
        case TK_P_PUNCT:
            if (!(rc = char_matches(u, off, len, 1, 0, m))) rc = split_piece(out, u, off, len, m, p->behavior, false);
            break;
        case TK_P_DIGITS:
            if (!(rc = char_matches(u, off, len, 2, 0, m)))
                rc = split_piece(out, u, off, len, m, p->individual ? TK_B_ISOLATED : TK_B_CONTIGUOUS, false);
            break;
        case TK_P_CHARDELIM:
            if (!(rc = char_matches(u, off, len, 3, p->ch, m))) rc = split_piece(out, u, off, len, m, TK_B_REMOVED, false);
            break;
        case TK_P_BERT: {
            struct pv tmp = {0};
            if (!(rc = char_matches(u, off, len, 0, 0, m))) rc = split_piece(&tmp, u, off, len, m, TK_B_REMOVED, false);
            for (size_t j = 0; j < tmp.n && !rc; j++)
                if (!(rc = char_matches(&tmp.u, tmp.p[j].off, tmp.p[j].len, 1, 0, m)))
                    rc = split_piece(out, &tmp.u, tmp.p[j].off, tmp.p[j].len, m, TK_B_ISOLATED, false);
            pv_free(&tmp);
            break;
        }
        case TK_P_WHITESPACE:
            if (!(rc = regex_matches(p->re, u, off, len, t, m))) rc = split_piece(out, u, off, len, m, TK_B_REMOVED, true);
            break;
        case TK_P_SPLIT:
            if (!(rc = regex_matches(p->re, u, off, len, t, m))) rc = split_piece(out, u, off, len, m, p->behavior, p->invert);
            break;
        case TK_P_METASPACE: {
            struct uv w = {0};
            bool starts = len && (u->c[off] == ' ' || u->c[off] == p->ch);
            bool prepend = p->scheme == TK_PS_ALWAYS || (p->scheme == TK_PS_FIRST && len && u->s[off] == 0);
            if (prepend && !starts && len) rc = uv_push(&w, p->ch, u->s[off], u->e[off]);
            for (size_t i = 0; i < len && !rc; i++)
                rc = uv_push(&w, u->c[off + i] == ' ' ? p->ch : u->c[off + i], u->s[off + i], u->e[off + i]);
            if (!rc) {
                if (p->split) {
                    if (!(rc = char_matches(&w, 0, w.n, 3, p->ch, m))) rc = split_piece(out, &w, 0, w.n, m, TK_B_MERGED_NEXT, false);
                } else {
                    rc = pv_copy(out, &w, 0, w.n);
                }
            }
            uv_free(&w);
            break;
        }
        case TK_P_BYTELEVEL: {
            struct uv w = {0};
            if (p->add_prefix_space && len && u->c[off] != ' ') rc = uv_push(&w, ' ', u->s[off], u->e[off]);
            for (size_t i = 0; i < len && !rc; i++) rc = uv_push(&w, u->c[off + i], u->s[off + i], u->e[off + i]);
            struct pv parts = {0};
            if (!rc) {
                if (p->use_regex) {
                    if (!(rc = regex_matches(p->re, &w, 0, w.n, t, m))) rc = split_piece(&parts, &w, 0, w.n, m, TK_B_ISOLATED, false);
                } else {
                    rc = pv_copy(&parts, &w, 0, w.n);
                }
            }
            // Each character becomes its UTF-8 bytes, each byte a character of GPT-2's alphabet.
            for (size_t j = 0; j < parts.n && !rc; j++) {
                size_t at = out->u.n;
                for (size_t i = 0; i < parts.p[j].len && !rc; i++) {
                    size_t x = parts.p[j].off + i;
                    char b[4];
                    size_t nb = tk_utf8_encode(parts.u.c[x], b);
                    for (size_t q = 0; q < nb && !rc; q++) rc = uv_push(&out->u, byte_char((uint8_t)b[q]), parts.u.s[x], parts.u.e[x]);
                }
                if (!rc) rc = pv_piece(out, at, out->u.n - at, -1, 0, 0);
            }
            pv_free(&parts);
            uv_free(&w);
            break;
        }
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ models */

struct toks {
    int32_t *id;
    uint32_t *s, *e;
    uint32_t *ws; // added tokens: whitespace characters stripped left << 16 | right; else UINT32_MAX
    size_t n, cap;
    size_t stop_at; // stop after the piece that brings n to this (SIZE_MAX: never)
};

static int tok_push(struct toks *o, int32_t id, uint32_t s, uint32_t e) {
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 64;
        int32_t *a = realloc(o->id, cap * sizeof *a);
        if (!a) return SEMBED_ENOMEM;
        o->id = a;
        uint32_t *b = realloc(o->s, cap * 4);
        if (!b) return SEMBED_ENOMEM;
        o->s = b;
        uint32_t *c = realloc(o->e, cap * 4);
        if (!c) return SEMBED_ENOMEM;
        o->e = c;
        uint32_t *w = realloc(o->ws, cap * 4);
        if (!w) return SEMBED_ENOMEM;
        o->ws = w;
        o->cap = cap;
    }
    o->ws[o->n] = UINT32_MAX;
    o->id[o->n] = id;
    o->s[o->n] = s;
    o->e[o->n] = e;
    o->n++;
    return SEMBED_OK;
}

static int need_unk(const struct tk_hf *h) {
    (void)h;
    return sembed_fail(SEMBED_EINVAL, "sembed_tokenizer_encode", "the text needs the unknown token but the model has none");
}

// A BPE symbol covers bytes [a, b) of the piece as HF counts them: the byte lengths of the symbols
// kept so far. A character dropped for want of an unknown token takes no room, so the symbols after
// it sit earlier than their characters (HF's BPE word offsets do the same; measured).
struct sym { int32_t id; size_t a, b; };

// Unit holding byte b of the piece (the last unit starting at or before b).
static size_t unit_at(const struct u8 *t, size_t len, size_t b) {
    size_t k = u8_unit(t, len, b);
    if (k == len || t->bo[k] > b) k--;
    return k;
}

// Merge the lowest-ranked adjacent pair, leftmost first, until none applies: HF's merge_all order
// (a priority queue of (rank, position)). Symbols sit in a linked list over sy[0..n); a min-heap
// of candidate merges keyed (rank, left position) is checked against the list when popped, so a
// word of n symbols costs O(n log n) (a hostile 1 MB word stays fast).
struct cand { uint32_t rank; uint32_t pos; int32_t id; int32_t left, right; };

static bool cand_less(const struct cand *a, const struct cand *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(struct cand *hp, size_t *n, struct cand c) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(&c, &hp[p])) break;
        hp[i] = hp[p];
        i = p;
    }
    hp[i] = c;
}

static struct cand heap_pop(struct cand *hp, size_t *n) {
    struct cand top = hp[0], last = hp[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct cand *best = &last;
        if (l < *n && cand_less(&hp[l], best)) { m = l; best = &hp[l]; }
        if (r < *n && cand_less(&hp[r], best)) m = r;
        if (m == i) break;
        hp[i] = hp[m];
        i = m;
    }
    if (*n) hp[i] = last;
    return top;
}

static int merge_all(const struct tk_hf *h, struct sym *sy, size_t *ns) {
    size_t n = *ns;
    if (n < 2) return SEMBED_OK;
    int32_t *next = malloc(n * sizeof *next), *prev = malloc(n * sizeof *prev);
    uint8_t *dead = calloc(n, 1);
    // each merge adds at most two candidates: n initial + 2n
    struct cand *hp = malloc(3 * n * sizeof *hp);
    if (!next || !prev || !dead || !hp) { free(next); free(prev); free(dead); free(hp); return SEMBED_ENOMEM; }
    size_t nh = 0;
    for (size_t i = 0; i < n; i++) { next[i] = i + 1 < n ? (int32_t)(i + 1) : -1; prev[i] = (int32_t)i - 1; }
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r;
        int32_t id;
        if (tk_merge_find(h, sy[i].id, sy[i + 1].id, &r, &id))
            heap_push(hp, &nh, (struct cand){r, (uint32_t)i, id, sy[i].id, sy[i + 1].id});
    }
    while (nh) {
        struct cand c = heap_pop(hp, &nh);
        int32_t i = (int32_t)c.pos, j = next[i];
        if (dead[i] || j < 0 || sy[i].id != c.left || sy[j].id != c.right) continue; // stale
        sy[i].id = c.id;
        sy[i].b = sy[j].b;
        dead[j] = 1;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        uint32_t r;
        int32_t id;
        if (prev[i] >= 0 && tk_merge_find(h, sy[prev[i]].id, sy[i].id, &r, &id))
            heap_push(hp, &nh, (struct cand){r, (uint32_t)prev[i], id, sy[prev[i]].id, sy[i].id});
        if (next[i] >= 0 && tk_merge_find(h, sy[i].id, sy[next[i]].id, &r, &id))
            heap_push(hp, &nh, (struct cand){r, (uint32_t)i, id, sy[i].id, sy[next[i]].id});
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++) if (!dead[i]) sy[w++] = sy[i];
    *ns = w;
    free(next); free(prev); free(dead); free(hp);
    return SEMBED_OK;
}

static int bpe(const struct tk_hf *h, const struct uv *u, size_t off, size_t len, struct u8 *t, struct toks *o) {
    int rc = u8_build(t, u, off, len);
    if (rc) return rc;
    if (h->ignore_merges) {
        int32_t id = tk_smap_find(h, &h->model_map, t->b, t->n);
        if (id >= 0) return tok_push(o, id, u->s[off], u->e[off + len - 1]);
    }
    struct sym *sy = malloc((t->n + 1) * sizeof *sy);
    char *buf = malloc(t->n + h->prefix_len + h->suffix_len + 1);
    if (!sy || !buf) { free(sy); free(buf); return SEMBED_ENOMEM; }
    size_t ns = 0, pos = 0;
    struct sym unk = {-1, 0, 0};
    for (size_t i = 0; i < len; i++) {
        size_t cb = t->bo[i + 1] - t->bo[i], bl = 0;
        if (i > 0 && h->prefix_len) { memcpy(buf, h->prefix, h->prefix_len); bl = h->prefix_len; }
        memcpy(buf + bl, t->b + t->bo[i], cb);
        bl += cb;
        if (i + 1 == len && h->suffix_len) { memcpy(buf + bl, h->suffix, h->suffix_len); bl += h->suffix_len; }
        int32_t id = tk_smap_find(h, &h->model_map, buf, bl);
        if (id >= 0) {
            if (unk.id >= 0) { sy[ns++] = unk; unk.id = -1; }
            sy[ns++] = (struct sym){id, pos, pos + cb};
            pos += cb;
            continue;
        }
        if (h->byte_fallback) {
            bool all = true;
            for (size_t q = 0; q < cb; q++) all = all && h->byte_id[(uint8_t)t->b[t->bo[i] + q]] >= 0;
            if (all) {
                if (unk.id >= 0) { sy[ns++] = unk; unk.id = -1; }
                for (size_t q = 0; q < cb; q++, pos++) sy[ns++] = (struct sym){h->byte_id[(uint8_t)t->b[t->bo[i] + q]], pos, pos + 1};
                continue;
            }
        }
        if (h->unk < 0) continue; // HF drops the character when there is no unknown token
        if (unk.id >= 0 && h->fuse_unk) { unk.b = pos + cb; pos += cb; continue; }
        if (unk.id >= 0) sy[ns++] = unk;
        unk = (struct sym){h->unk, pos, pos + cb};
        pos += cb;
    }
    if (unk.id >= 0) sy[ns++] = unk;
    rc = merge_all(h, sy, &ns);
    for (size_t i = 0; i < ns && !rc; i++)
        rc = tok_push(o, sy[i].id, u->s[off + unit_at(t, len, sy[i].a)], u->e[off + unit_at(t, len, sy[i].b - 1)]);
    free(sy);
    free(buf);
    return rc;
}

static int wordpiece(const struct tk_hf *h, const struct uv *u, size_t off, size_t len, struct u8 *t, struct toks *o) {
    uint32_t S = u->s[off], E = u->e[off + len - 1];
    if (len > h->max_chars) return h->unk < 0 ? need_unk(h) : tok_push(o, h->unk, S, E);
    int rc = u8_build(t, u, off, len);
    if (rc) return rc;
    char *buf = malloc(t->n + h->prefix_len + 1);
    if (!buf) return SEMBED_ENOMEM;
    size_t first = o->n, start = 0;
    while (start < len) {
        size_t end = len;
        int32_t id = -1;
        while (end > start) {
            size_t bl = 0;
            if (start > 0) { memcpy(buf, h->prefix, h->prefix_len); bl = h->prefix_len; }
            memcpy(buf + bl, t->b + t->bo[start], t->bo[end] - t->bo[start]);
            bl += t->bo[end] - t->bo[start];
            id = tk_smap_find(h, &h->model_map, buf, bl);
            if (id >= 0) break;
            end--;
        }
        if (id < 0) {
            o->n = first;
            free(buf);
            return h->unk < 0 ? need_unk(h) : tok_push(o, h->unk, S, E);
        }
        if ((rc = tok_push(o, id, u->s[off + start], u->e[off + end - 1]))) break;
        start = end;
    }
    free(buf);
    return rc;
}

static int wordlevel(const struct tk_hf *h, const struct uv *u, size_t off, size_t len, struct u8 *t, struct toks *o) {
    int rc = u8_build(t, u, off, len);
    if (rc) return rc;
    int32_t id = tk_smap_find(h, &h->model_map, t->b, t->n);
    if (id < 0) id = h->unk;
    if (id < 0) return need_unk(h);
    return tok_push(o, id, u->s[off], u->e[off + len - 1]);
}

// Viterbi over the piece scores (HF Unigram::encode_optimized): for each end position keep the
// best-scoring path, updating only on a strictly better score; a position no single-character
// piece covers gets an unknown node scored unk_score. Consecutive unknowns fuse into one.
static int unigram(const struct tk_hf *h, const struct uv *u, size_t off, size_t len, struct u8 *t, struct toks *o) {
    int rc = u8_build(t, u, off, len);
    if (rc) return rc;
    double *best = malloc((len + 1) * sizeof *best);
    size_t *from = malloc((len + 1) * sizeof *from);
    int32_t *bid = malloc((len + 1) * sizeof *bid);
    if (!best || !from || !bid) { rc = SEMBED_ENOMEM; goto out; }
    for (size_t i = 0; i <= len; i++) bid[i] = -2; // -2: no path yet, -1: unknown
    best[0] = 0;
    bid[0] = -3;
    for (size_t st = 0; st < len; st++) {
        if (bid[st] == -2) continue;
        bool single = false;
        size_t maxl = len - st < h->max_piece_chars ? len - st : h->max_piece_chars;
        for (size_t l = 1; l <= maxl; l++) {
            int32_t id = tk_smap_find(h, &h->model_map, t->b + t->bo[st], t->bo[st + l] - t->bo[st]);
            if (id < 0) continue;
            if (l == 1) single = true;
            double c = best[st] + h->score[id];
            if (bid[st + l] == -2 || c > best[st + l]) { best[st + l] = c; from[st + l] = st; bid[st + l] = id; }
        }
        if (!single) {
            double c = best[st] + h->unk_score;
            if (bid[st + 1] == -2 || c > best[st + 1]) { best[st + 1] = c; from[st + 1] = st; bid[st + 1] = -1; }
        }
    }
    // Walk back, then emit left to right.
    size_t cnt = 0;
    for (size_t e = len; e > 0; e = from[e]) cnt++;
    size_t *ends = malloc(cnt * sizeof *ends);
    if (!ends) { rc = SEMBED_ENOMEM; goto out; }
    size_t k = cnt;
    for (size_t e = len; e > 0; e = from[e]) ends[--k] = e;
    size_t st = 0;
    for (size_t i = 0; i < cnt && !rc; i++) {
        size_t e = ends[i];
        int32_t id = bid[e];
        if (id == -1) {
            while (i + 1 < cnt && bid[ends[i + 1]] == -1) e = ends[++i]; // fuse unknowns
            if (h->byte_fallback) {
                bool all = true;
                for (size_t q = t->bo[st]; q < t->bo[e]; q++) all = all && h->byte_id[(uint8_t)t->b[q]] >= 0;
                if (all) {
                    for (size_t q = t->bo[st]; q < t->bo[e] && !rc; q++)
                        rc = tok_push(o, h->byte_id[(uint8_t)t->b[q]], u->s[off + st], u->e[off + e - 1]);
                    st = e;
                    continue;
                }
            }
            if (h->unk < 0) { rc = need_unk(h); break; }
            id = h->unk;
        }
        rc = tok_push(o, id, u->s[off + st], u->e[off + e - 1]);
        st = e;
    }
    free(ends);
out:
    free(best);
    free(from);
    free(bid);
    return rc;
}

/* ------------------------------------------------------------------ added tokens */

static bool is_word_char(uint32_t c) {
    if (c == '_') return true;
    int k = (int)utf8proc_category((utf8proc_int32_t)c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

// Leftmost-longest match of an added token (normalized ones or the others) in units [0, n) of u
// from unit `from`. Returns true with the units [*a, *b) it takes (lstrip/rstrip whitespace
// included) and [*ca, *cb) of the token itself (its offsets: HF leaves the stripped spaces out).
static bool find_added(const struct tk_hf *h, bool normalized, const struct uv *u, const struct u8 *t, size_t n,
                       size_t from, size_t *a, size_t *b, size_t *ca, size_t *cb, int32_t *id) {
    for (size_t i = from; i < n; i++) {
        uint8_t c0 = (uint8_t)t->b[t->bo[i]];
        if (!h->first_byte[c0]) continue;
        size_t best_len = 0;
        const struct tk_added *bt = NULL;
        for (size_t k = 0; k < h->n_added; k++) {
            const struct tk_added *x = &h->added[k];
            if (x->normalized != normalized || x->len <= best_len || (uint8_t)x->s[0] != c0) continue;
            if (t->bo[i] + x->len > t->n || memcmp(t->b + t->bo[i], x->s, x->len) != 0) continue;
            size_t end_b = t->bo[i] + x->len;
            size_t j = u8_unit(t, n, end_b);
            if (t->bo[j] != end_b) continue; // ends inside a character
            if (x->single_word && ((i > 0 && is_word_char(u->c[i - 1])) || (j < n && is_word_char(u->c[j])))) continue;
            best_len = x->len;
            bt = x;
        }
        if (!bt) continue;
        size_t s = i, e = u8_unit(t, n, t->bo[i] + bt->len);
        *ca = s;
        *cb = e;
        if (bt->lstrip) while (s > from && tk_is_whitespace(u->c[s - 1])) s--;
        if (bt->rstrip) while (e < n && tk_is_whitespace(u->c[e])) e++;
        *a = s;
        *b = e;
        *id = bt->id;
        return true;
    }
    return false;
}

// Split units [0, u->n) on added tokens of one kind: the rest become pieces of out (copied), the
// matches added-token pieces. When `norm`, the rest is normalized first (HF's extract_and_normalize:
// non-normalized tokens are found in the raw text, normalized ones in the normalized text).
static int split_added(const struct tk_hf *h, bool normalized, struct uv *u, struct pv *out, bool then_normalize,
                       struct u8 *t);

static int emit_rest(const struct tk_hf *h, struct uv *u, size_t a, size_t b, struct pv *out, bool then_normalize,
                     struct u8 *t) {
    if (b <= a) return SEMBED_OK;
    if (!then_normalize) return pv_copy(out, u, a, b - a);
    struct uv seg = {0};
    int rc = SEMBED_OK;
    for (size_t i = a; i < b && !rc; i++) rc = uv_push(&seg, u->c[i], u->s[i], u->e[i]);
    if (!rc) rc = normalize(h, &seg);
    struct u8 t2 = {0};
    if (!rc) rc = split_added(h, true, &seg, out, false, &t2);
    u8_free(&t2);
    uv_free(&seg);
    (void)t;
    return rc;
}

static int split_added(const struct tk_hf *h, bool normalized, struct uv *u, struct pv *out, bool then_normalize,
                       struct u8 *t) {
    int rc = h->n_added ? u8_build(t, u, 0, u->n) : SEMBED_OK;
    size_t pos = 0, a, b, ca, cb;
    int32_t id;
    while (!rc && h->n_added && pos < u->n && find_added(h, normalized, u, t, u->n, pos, &a, &b, &ca, &cb, &id)) {
        if ((rc = emit_rest(h, u, pos, a, out, then_normalize, t))) break;
        // The token's offsets take the stripped whitespace too (trim_offsets may remove it later).
        rc = pv_piece(out, ca - a, b - cb, id, u->s[a], u->e[b - 1]);
        pos = b;
        if (!rc && then_normalize) rc = u8_build(t, u, 0, u->n); // emit_rest may have reused nothing, but be safe
    }
    if (!rc) rc = emit_rest(h, u, pos, u->n, out, then_normalize, t);
    return rc;
}

/* ------------------------------------------------------------------ one sequence */

// text -> model tokens (no specials). With stop_at, stops after the first piece at which it has
// stop_at tokens or more (HF's truncation looks no further; see docs/tokenizer.md).
static int encode_seq(const struct tk_hf *h, const char *text, size_t len, struct toks *o) {
    if (len > UINT32_MAX - 1) return sembed_fail(SEMBED_ETOOLONG, "sembed_tokenizer_encode", "text over 4 GiB");
    struct uv raw = {0};
    struct pv cur = {0}, nxt = {0};
    struct u8 t = {0};
    struct rv m = {0};
    int rc = SEMBED_OK;
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < len && !rc;) {
        uint32_t c;
        size_t k = s[i] < 0x80 ? (c = s[i], 1) : tk_utf8_decode(s + i, len - i, &c);
        rc = uv_push(&raw, c, (uint32_t)i, (uint32_t)(i + k));
        i += k;
    }
    if (!rc) rc = split_added(h, false, &raw, &cur, true, &t);
    for (size_t i = 0; i < h->n_pre && !rc; i++) {
        nxt.u.n = 0;
        nxt.n = 0;
        rc = pre_one(&h->pre[i], &cur, &nxt, &t, &m);
        struct pv x = cur;
        cur = nxt;
        nxt = x;
    }
    for (size_t k = 0; k < cur.n && !rc; k++) {
        const struct piece *p = &cur.p[k];
        if (p->added >= 0) {
            rc = tok_push(o, p->added, p->os, p->oe);
            if (!rc) o->ws[o->n - 1] = (uint32_t)(p->off < 0xFFFF ? p->off : 0xFFFF) << 16 | (uint32_t)(p->len < 0xFFFF ? p->len : 0xFFFF);
        }
        else if (h->model == TK_M_BPE) rc = bpe(h, &cur.u, p->off, p->len, &t, o);
        else if (h->model == TK_M_WORDPIECE) rc = wordpiece(h, &cur.u, p->off, p->len, &t, o);
        else if (h->model == TK_M_WORDLEVEL) rc = wordlevel(h, &cur.u, p->off, p->len, &t, o);
        else rc = unigram(h, &cur.u, p->off, p->len, &t, o);
        if (o->n >= o->stop_at) break;
    }
    uv_free(&raw);
    pv_free(&cur);
    pv_free(&nxt);
    u8_free(&t);
    free(m.r);
    return rc;
}

/* ------------------------------------------------------------------ post-processing */

void tk_hf_enc_free(struct tk_hf_enc *e) {
    if (!e) return;
    free(e->ids); free(e->types); free(e->seq); free(e->start); free(e->end);
    memset(e, 0, sizeof *e);
}

static int enc_push(struct tk_hf_enc *e, int32_t id, int32_t type, int32_t seq, uint32_t s, uint32_t en) {
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        int32_t *a = realloc(e->ids, cap * 4), *b, *c;
        if (!a) return SEMBED_ENOMEM;
        e->ids = a;
        if (!(b = realloc(e->types, cap * 4))) return SEMBED_ENOMEM;
        e->types = b;
        if (!(c = realloc(e->seq, cap * 4))) return SEMBED_ENOMEM;
        e->seq = c;
        uint32_t *d = realloc(e->start, cap * 4), *f;
        if (!d) return SEMBED_ENOMEM;
        e->start = d;
        if (!(f = realloc(e->end, cap * 4))) return SEMBED_ENOMEM;
        e->end = f;
        e->cap = cap;
    }
    e->ids[e->n] = id; e->types[e->n] = type; e->seq[e->n] = seq; e->start[e->n] = s; e->end[e->n] = en;
    e->n++;
    return SEMBED_OK;
}

// HF ByteLevel's process_offsets: leading / trailing spaces of a byte-level token ('Ġ' or
// whitespace) leave its offsets, except the one space add_prefix_space put before the first word.
static void trim_offsets(const struct tk_hf *h, struct toks *o, bool add_prefix_space) {
    for (size_t i = 0; i < o->n; i++) {
        const char *tok = tk_hf_token(h, o->id[i]);
        if (!tok) continue;
        size_t n = h->tlen[o->id[i]], lead = 0, trail = 0, p = 0;
        uint32_t c;
        size_t nch = 0;
        uint32_t cps[1024];
        while (p < n && nch < 1024) { p += tk_utf8_decode((const uint8_t *)tok + p, n - p, &c); cps[nch++] = c; }
        while (lead < nch && (cps[lead] == 0x120 || tk_is_whitespace(cps[lead]))) lead++;
        while (trail < nch && (cps[nch - 1 - trail] == 0x120 || tk_is_whitespace(cps[nch - 1 - trail]))) trail++;
        if (o->ws[i] != UINT32_MAX) { // an added token's string is the text it matched, stripped spaces included
            if (lead == 0) lead = o->ws[i] >> 16;
            if (trail == 0) trail = o->ws[i] & 0xFFFF;
        }
        if (lead) {
            bool first = i == 0 || o->s[i] == 0;
            if (first && add_prefix_space && lead == 1) lead = 0;
            uint32_t ns = o->s[i] + (uint32_t)lead;
            o->s[i] = ns < o->e[i] ? ns : o->e[i];
        }
        if (trail && o->e[i] >= trail) {
            uint32_t ne = o->e[i] - (uint32_t)trail;
            o->e[i] = ne > o->s[i] ? ne : o->s[i];
        }
    }
}

static int add_seq(struct tk_hf_enc *out, const struct toks *o, size_t n, int32_t type, int32_t seq) {
    for (size_t i = 0; i < n; i++) {
        int rc = enc_push(out, o->id[i], type, seq, o->s[i], o->e[i]);
        if (rc) return rc;
    }
    return SEMBED_OK;
}

static int post(const struct tk_hf *h, struct toks *a, size_t na, struct toks *b, size_t nb, bool special,
                struct tk_hf_enc *out) {
    // Offset trimming first (it does not depend on add_special).
    for (size_t i = 0; i < h->n_post; i++) {
        const struct tk_post *p = &h->post[i];
        if ((p->kind == TK_PP_ROBERTA || p->kind == TK_PP_BYTELEVEL) && p->trim) {
            struct toks ta = *a;
            ta.n = na;
            trim_offsets(h, &ta, p->prefix);
            if (b) { struct toks tb = *b; tb.n = nb; trim_offsets(h, &tb, p->prefix); }
        }
    }
    const struct tk_post *sp = NULL;
    for (size_t i = 0; i < h->n_post; i++)
        if (h->post[i].kind != TK_PP_BYTELEVEL) sp = &h->post[i];
    int rc = SEMBED_OK;
    if (!special || !sp) {
        if ((rc = add_seq(out, a, na, 0, 0))) return rc;
        return b ? add_seq(out, b, nb, 1, 1) : SEMBED_OK;
    }
    switch (sp->kind) {
    case TK_PP_BERT:
        if ((rc = enc_push(out, sp->cls, 0, -1, 0, 0)) || (rc = add_seq(out, a, na, 0, 0)) ||
            (rc = enc_push(out, sp->sep, 0, -1, 0, 0)))
            return rc;
        if (b && ((rc = add_seq(out, b, nb, 1, 1)) || (rc = enc_push(out, sp->sep, 1, -1, 0, 0)))) return rc;
        return SEMBED_OK;
    case TK_PP_ROBERTA:
        if ((rc = enc_push(out, sp->cls, 0, -1, 0, 0)) || (rc = add_seq(out, a, na, 0, 0)) ||
            (rc = enc_push(out, sp->sep, 0, -1, 0, 0)))
            return rc;
        if (b && ((rc = enc_push(out, sp->sep, 0, -1, 0, 0)) || (rc = add_seq(out, b, nb, 0, 1)) ||
                  (rc = enc_push(out, sp->sep, 0, -1, 0, 0))))
            return rc;
        return SEMBED_OK;
    case TK_PP_TEMPLATE: {
        const struct tk_tpl *t = b ? sp->pair : sp->single;
        size_t nt = b ? sp->n_pair : sp->n_single;
        for (size_t k = 0; k < nt && !rc; k++) {
            if (t[k].seq == 0) rc = add_seq(out, a, na, (int32_t)t[k].type, 0);
            else if (t[k].seq == 1) rc = b ? add_seq(out, b, nb, (int32_t)t[k].type, 1) : SEMBED_OK;
            else
                for (size_t j = 0; j < t[k].n && !rc; j++) rc = enc_push(out, t[k].ids[j], (int32_t)t[k].type, -1, 0, 0);
        }
        return rc;
    }
    }
    return SEMBED_OK;
}

static void toks_free(struct toks *o) { free(o->id); free(o->s); free(o->e); free(o->ws); }

int tk_hf_encode(const struct tk_hf *h, const char *a, size_t a_len, const char *b, size_t b_len, bool add_special,
                 size_t max_len, bool error_if_long, struct tk_hf_enc *out, bool *truncated) {
    static const char fn[] = "sembed_tokenizer_encode_input";
    if (truncated) *truncated = false;
    out->n = 0;
    size_t added = add_special ? tk_hf_added_specials(h, b != NULL) : 0;
    if (max_len && max_len < added)
        return sembed_fail(SEMBED_EINVAL, fn, "max_len %zu leaves no room for the %zu special tokens", max_len, added);
    size_t room = max_len ? max_len - added : SIZE_MAX;
    struct toks ta = {0}, tb = {0};
    ta.stop_at = tb.stop_at = max_len ? (b ? max_len : room + 1) : SIZE_MAX;
    int rc = encode_seq(h, a, a_len, &ta);
    if (!rc && b) rc = encode_seq(h, b, b_len, &tb);
    if (rc) goto done;
    size_t na = ta.n, nb = b ? tb.n : 0;
    bool cut = max_len && na + nb > room;
    if (cut && error_if_long) {
        rc = sembed_fail(SEMBED_ETOOLONG, fn, "input needs more than %zu tokens", max_len);
        goto done;
    }
    if (cut && !b) na = room;
    else if (cut) { // HF truncate_encodings, LongestFirst
        size_t n1 = na, n2 = nb;
        bool swap = n1 > n2;
        if (swap) { size_t x = n1; n1 = n2; n2 = x; }
        if (n1 > room) n2 = n1;
        else n2 = n1 > room - n1 ? n1 : room - n1;
        if (n1 + n2 > room) { n1 = room / 2; n2 = n1 + room % 2; }
        if (swap) { size_t x = n1; n1 = n2; n2 = x; }
        na = n1 < na ? n1 : na;
        nb = n2 < nb ? n2 : nb;
    }
    if (truncated) *truncated = cut;
    rc = post(h, &ta, na, b ? &tb : NULL, nb, add_special, out);
done:
    toks_free(&ta);
    toks_free(&tb);
    return rc;
}
