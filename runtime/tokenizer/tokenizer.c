// BERT tokenizer: BertNormalizer + BertPreTokenizer + WordPiece, as HuggingFace tokenizers runs
// them (tokenizers/src/normalizers/bert.rs, pre_tokenizers/bert.rs, models/wordpiece), plus the
// [CLS] a [SEP] b [SEP] template and longest_first truncation (tokenizers/src/utils/truncation.rs).
//
// Text flows through one streaming pipeline, one code point at a time, with no allocation for
// ordinary input: decode -> clean_text -> CJK spacing -> NFD + canonical reordering + drop Mn ->
// lowercase -> split on whitespace / punctuation -> WordPiece per word. Only pre_lowercase (which
// needs context for Final_Sigma) and unusually long words or runs of combining marks use the heap.
#define _DEFAULT_SOURCE // MAP_ANONYMOUS, MAP_POPULATE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "formats/log.h"
#include "formats/semb_tokindex.h"
#include "runtime/tokenizer/hf.h"
#include "runtime/tokenizer/tokenizer_internal.h"
#include "runtime/tokenizer/unicode.h"
#include "sembed/tokenizer.h"

// One WordPiece lookup table (docs/format.md, tokenizer.index.*): little-endian slots holding
// id + 1 (0 = empty), either borrowed from the file's index or built into the tokenizer's block.
struct tk_table {
    struct semb_tokidx_table tb; // cap 0: no table
    size_t max_key;              // longest key in bytes: WordPiece never tries a longer substring
};

struct sembed_tokenizer {
    struct sembed_tokenizer_params p; // strings point into `specials`
    char *specials;
    void *block;                      // owned memory: whatever the file does not provide of
    size_t block_bytes;               // offsets, both tables' slots, strings (NULL: all borrowed)
    struct semb_vocab vc;             // token i: `u64 n | bytes | NUL` at vc.v + vc.off[i]
    size_t n;
    struct tk_table all;              // every token
    struct tk_table cont;             // tokens that start with the continuing prefix, prefix removed
    size_t prefix_len;
    int32_t cls, sep, pad, unk, mask;
    struct tk_hf *hf;                 // a tokenizer.json tokenizer (hf.h): everything above unused
    char kind[24];
};

// Zeroed memory for what a tokenizer owns of its vocabulary: offsets and tables when the file has
// no index, plus the strings when copying (bert-base-uncased: 280 KB, 760 KB). From 64 KiB up it
// is a mapping prefaulted in one call (MAP_POPULATE): page by page, first-touch faults cost ~10 us
// each in the VM this was measured on, prefaulted pages ~5 us.
void *tk_block_alloc(size_t bytes) {
    if (bytes < (64u << 10)) return calloc(1, bytes ? bytes : 1);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void tk_block_free(void *p, size_t bytes) {
    if (!p) return;
    if (bytes < (64u << 10)) free(p);
    else munmap(p, bytes);
}

static int32_t table_find(const struct sembed_tokenizer *t, const struct tk_table *tb, const char *key, size_t n,
                          size_t skip) {
    return semb_tokidx_find(&tb->tb, &t->vc, key, n, skip);
}

SEMBED_API struct sembed_tokenizer_params sembed_tokenizer_default_params(void) {
    struct sembed_tokenizer_params p;
    memset(&p, 0, sizeof p);
    p.lowercase = true;
    p.strip_accents = true;
    p.handle_chinese_chars = true;
    p.clean_text = true;
    p.pre_lowercase = false;
    p.unk_token = "[UNK]";
    p.cls_token = "[CLS]";
    p.sep_token = "[SEP]";
    p.pad_token = "[PAD]";
    p.mask_token = "[MASK]";
    p.continuing_prefix = "##";
    p.max_input_chars_per_word = 100;
    p.model_max_length = 512;
    return p;
}

static int special_id(struct sembed_tokenizer *t, const char *name, const char *tok, bool required, int32_t *out) {
    *out = -1;
    if (!tok) {
        if (!required) return SEMBED_OK;
        return sembed_fail(SEMBED_EINVAL, "sembed_tokenizer_create", "%s is NULL", name);
    }
    *out = sembed_tokenizer_id(t, tok);
    if (*out < 0 && required)
        return sembed_fail(SEMBED_EINVAL, "sembed_tokenizer_create", "%s '%s' is not in the vocabulary", name, tok);
    return SEMBED_OK;
}

static int check_params(const struct sembed_tokenizer_params *params, const char *fn) {
    if (!params) return sembed_fail(SEMBED_EINVAL, fn, "params is NULL");
    if (!params->unk_token || !params->cls_token || !params->sep_token || !params->pad_token)
        return sembed_fail(SEMBED_EINVAL, fn, "unk, cls, sep and pad tokens are required");
    if (params->max_input_chars_per_word == 0) return sembed_fail(SEMBED_EINVAL, fn, "max_input_chars_per_word is 0");
    return SEMBED_OK;
}

int tk_create(const struct tk_source *src, const struct sembed_tokenizer_params *params, const char *fn,
              struct sembed_tokenizer **out) {
    *out = NULL;
    int rc = check_params(params, fn);
    if (rc) return rc;
    SEMBED_ASSERT(!src->index || src->borrow); // a borrowed index points into borrowed strings
    if (src->n == 0 || src->n > (uint32_t)INT32_MAX - 1)
        return sembed_fail(SEMBED_EINVAL, fn, "vocabulary size %u out of range 1..%d", src->n, INT32_MAX - 1);
    struct sembed_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return SEMBED_ENOMEM;
    rc = SEMBED_ENOMEM;
    t->p = *params;
    if (!t->p.continuing_prefix) t->p.continuing_prefix = "";

    // Copy the special-token strings into one block.
    const char *sp[6] = {t->p.unk_token, t->p.cls_token, t->p.sep_token, t->p.pad_token, t->p.mask_token,
                         t->p.continuing_prefix};
    size_t sp_bytes = 0;
    for (int i = 0; i < 6; i++) if (sp[i]) sp_bytes += strlen(sp[i]) + 1;
    t->specials = malloc(sp_bytes);
    if (!t->specials) goto fail;
    char *w = t->specials;
    const char **dst[6] = {&t->p.unk_token, &t->p.cls_token, &t->p.sep_token, &t->p.pad_token, &t->p.mask_token,
                           &t->p.continuing_prefix};
    for (int i = 0; i < 6; i++) {
        if (!sp[i]) continue;
        size_t l = strlen(sp[i]) + 1;
        memcpy(w, sp[i], l);
        *dst[i] = w;
        w += l;
    }
    const char *prefix = t->p.continuing_prefix;
    t->prefix_len = strlen(prefix);
    t->n = src->n;

    struct semb_tokidx_stats st = {0, 0, 0};
    size_t cap_all = 0, cap_cont = 0;
    const char *why;
    if (src->index) {
        st.max_all = src->index->all_max_len;
        st.max_cont = src->index->cont_max_len;
    } else if (semb_tokidx_scan(src->v, src->vbytes, src->n, NULL, NULL, prefix, t->prefix_len, &st, &why)) {
        rc = sembed_fail(SEMBED_ECORRUPT, fn, "vocabulary: %s", why);
        goto fail;
    } else {
        cap_all = semb_tokidx_cap(src->n);
        cap_cont = semb_tokidx_cap(st.n_cont);
    }
    // One block for what is not borrowed: offsets and tables (no index), strings (a copy).
    const unsigned width = semb_tokidx_width(src->n);
    const size_t tables = src->index ? 0 : (size_t)src->n * 4 + (cap_all + cap_cont) * width;
    const size_t strings = src->borrow ? 0 : (size_t)src->vbytes;
    t->block_bytes = tables + strings;
    if (t->block_bytes) {
        t->block = tk_block_alloc(t->block_bytes);
        if (!t->block) goto fail;
    }
    uint8_t *blk = t->block;
    t->vc.n = src->n;
    t->vc.vbytes = src->vbytes;
    t->vc.v = src->v;
    if (!src->borrow) {
        memcpy(blk + tables, src->v, (size_t)src->vbytes);
        t->vc.v = blk + tables;
    }
    if (src->index) {
        t->vc.off = src->index->vc.off;
        t->all.tb = src->index->all;
        t->cont.tb = src->index->cont;
    } else {
        uint8_t *off = blk;
        (void)semb_tokidx_scan(t->vc.v, t->vc.vbytes, t->n, NULL, off, prefix, t->prefix_len, &st, &why); // passed above
        t->vc.off = off;
        uint8_t *all = off + (size_t)t->n * 4;
        t->all.tb = (struct semb_tokidx_table){all, cap_all, width};
        t->cont.tb = (struct semb_tokidx_table){cap_cont ? all + cap_all * width : NULL, cap_cont, width};
        semb_tokidx_build(&t->vc, prefix, t->prefix_len, &t->all.tb, &t->cont.tb);
    }
    if (!t->prefix_len) t->cont.tb.cap = 0; // every piece is looked up whole
    t->all.max_key = (size_t)st.max_all;
    t->cont.max_key = (size_t)st.max_cont;

    if ((rc = special_id(t, "unk_token", t->p.unk_token, true, &t->unk)) ||
        (rc = special_id(t, "cls_token", t->p.cls_token, true, &t->cls)) ||
        (rc = special_id(t, "sep_token", t->p.sep_token, true, &t->sep)) ||
        (rc = special_id(t, "pad_token", t->p.pad_token, true, &t->pad)) ||
        (rc = special_id(t, "mask_token", t->p.mask_token, false, &t->mask)))
        goto fail;
    *out = t;
    return SEMBED_OK;
fail:
    sembed_tokenizer_free(t);
    return rc;
}

SEMBED_API int sembed_tokenizer_create(const char *const *vocab, size_t n_vocab,
                                       const struct sembed_tokenizer_params *params,
                                       struct sembed_tokenizer **out) {
    static const char fn[] = "sembed_tokenizer_create";
    if (!out) return sembed_fail(SEMBED_EINVAL, fn, "out is NULL");
    *out = NULL;
    if (!params || (!vocab && n_vocab)) return sembed_fail(SEMBED_EINVAL, fn, "params or vocab is NULL");
    if (n_vocab == 0 || n_vocab > (size_t)INT32_MAX - 1)
        return sembed_fail(SEMBED_EINVAL, fn, "vocabulary size %zu out of range 1..%d", n_vocab, INT32_MAX - 1);
    int rc = check_params(params, fn);
    if (rc) return rc;
    // Encode the vocabulary as a .semb string array stores it; tk_create copies it into its block.
    size_t total = 0;
    for (size_t i = 0; i < n_vocab; i++) {
        if (!vocab[i]) return sembed_fail(SEMBED_EINVAL, fn, "vocabulary entry %zu is NULL", i);
        size_t l = strlen(vocab[i]);
        if (l > UINT32_MAX - 9 || total > (size_t)UINT32_MAX - 9 - l)
            return sembed_fail(SEMBED_EINVAL, fn, "vocabulary strings exceed 4 GiB");
        total += 9 + l;
    }
    uint8_t *v = malloc(total);
    if (!v) return SEMBED_ENOMEM;
    size_t pos = 0;
    for (size_t i = 0; i < n_vocab; i++) {
        size_t l = strlen(vocab[i]);
        semb_wr64(v + pos, l);
        memcpy(v + pos + 8, vocab[i], l + 1);
        pos += 9 + l;
    }
    struct tk_source src = {.v = v, .vbytes = total, .n = (uint32_t)n_vocab, .borrow = false, .index = NULL};
    rc = tk_create(&src, params, fn, out);
    free(v);
    return rc;
}

SEMBED_API void sembed_tokenizer_free(struct sembed_tokenizer *t) {
    if (!t) return;
    tk_hf_free(t->hf);
    tk_block_free(t->block, t->block_bytes);
    free(t->specials);
    free(t);
}

SEMBED_API size_t sembed_tokenizer_vocab_size(const struct sembed_tokenizer *t) {
    return t ? (t->hf ? tk_hf_vocab_size(t->hf) : t->n) : 0;
}
SEMBED_API const struct sembed_tokenizer_params *sembed_tokenizer_params(const struct sembed_tokenizer *t) {
    return t ? &t->p : NULL;
}
SEMBED_API const char *sembed_tokenizer_token(const struct sembed_tokenizer *t, int32_t id) {
    if (t && t->hf) return tk_hf_token(t->hf, id);
    if (!t || id < 0 || (size_t)id >= t->n) return NULL;
    size_t len;
    return semb_vocab_token(&t->vc, (uint32_t)id, &len);
}
SEMBED_API int32_t sembed_tokenizer_id(const struct sembed_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    if (t->hf) return tk_hf_id(t->hf, token, strlen(token));
    return table_find(t, &t->all, token, strlen(token), 0);
}
SEMBED_API int32_t sembed_tokenizer_cls_id(const struct sembed_tokenizer *t) { return t ? t->cls : -1; }
SEMBED_API int32_t sembed_tokenizer_sep_id(const struct sembed_tokenizer *t) { return t ? t->sep : -1; }
SEMBED_API int32_t sembed_tokenizer_pad_id(const struct sembed_tokenizer *t) { return t ? t->pad : -1; }
SEMBED_API int32_t sembed_tokenizer_unk_id(const struct sembed_tokenizer *t) { return t ? t->unk : -1; }
SEMBED_API int32_t sembed_tokenizer_mask_id(const struct sembed_tokenizer *t) { return t ? t->mask : -1; }

/* ------------------------------------------------------------------ normalize + pre-tokenize */

enum { WORD_LOCAL = 512, MARKS_LOCAL = 32 };

struct run {
    bool lower, strip, clean, chinese;
    size_t max_chars;
    tk_word_fn fn;
    void *ud;
    int rc;                 // != 0: stop (1 = early stop requested, < 0 = error)
    char *word;             // current word, UTF-8
    size_t wlen, wcap, wchars;
    uint32_t *marks;        // pending combining marks (ccc > 0) awaiting canonical reordering
    size_t nm, mcap;
    char word_local[WORD_LOCAL];
    uint32_t marks_local[MARKS_LOCAL];
    // Source offsets (tk_pretokenize_src only; src == NULL otherwise): the input bytes of the
    // code point being fed, of the pending marks, and per word byte (at[2b], at[2b + 1]).
    struct tk_word_src *src;
    // Marks carry HF's alignment "change" in bit 31 (set: inserted by a decomposition, takes the
    // previous span); the spans of the unset ones, in input order, wait in sp (HF's transform hands
    // spans out by position after canonical reordering, runtime/tokenizer/hf_encode.c).
    uint32_t cur_s, cur_e, last_s, last_e, run_s, run_e;
    uint32_t *sp;
    size_t sp_n, sp_cap;
    uint32_t *at;
    size_t at_cap; // bytes of word covered
};

#define MARK_INSERTED 0x80000000u
#define MARK_CP(m) ((m) & 0x1FFFFFu)

static void end_word(struct run *r) {
    if (r->wchars && r->rc == 0) {
        if (r->src) r->src->at = r->at;
        r->rc = r->fn(r->ud, r->word, r->wlen, r->wchars);
    }
    r->wlen = 0;
    r->wchars = 0;
}

static void append(struct run *r, uint32_t cp) {
    r->wchars++;
    if (r->src) {
        if (r->wchars == 1) r->src->word_s = r->cur_s;
        r->src->word_e = r->cur_e;
    }
    if (r->wchars > r->max_chars) return; // the word is [UNK] now; its bytes no longer matter
    if (r->wlen + 4 > r->wcap) {
        size_t ncap = r->wcap * 2;
        char *nw = r->word == r->word_local ? malloc(ncap) : realloc(r->word, ncap);
        if (!nw) { if (r->rc == 0) r->rc = SEMBED_ENOMEM; return; }
        if (r->word == r->word_local) memcpy(nw, r->word, r->wlen);
        r->word = nw;
        r->wcap = ncap;
    }
    if (r->src) {
        if (r->wcap > r->at_cap) {
            uint32_t *na = realloc(r->at, r->wcap * 2 * sizeof *na);
            if (!na) { if (r->rc == 0) r->rc = SEMBED_ENOMEM; return; }
            r->at = na;
            r->at_cap = r->wcap;
        }
        r->at[2 * r->wlen] = r->cur_s;
        r->at[2 * r->wlen + 1] = r->cur_e;
    }
    r->wlen += tk_utf8_encode(cp, r->word + r->wlen);
}

// BertPreTokenizer: split on whitespace (removed) and punctuation (isolated).
static void pretok(struct run *r, uint32_t cp) {
    if (tk_is_whitespace(cp)) {
        end_word(r);
    } else if (tk_is_punct(cp)) {
        end_word(r);
        append(r, cp);
        end_word(r);
    } else {
        append(r, cp);
    }
}

static void lowercase(struct run *r, uint32_t cp) {
    if (!r->lower) { pretok(r, cp); return; }
    uint32_t lw[2];
    size_t n = tk_lower_rust(cp, lw);
    for (size_t i = 0; i < n; i++) pretok(r, lw[i]);
}

// Emit the pending marks in canonical order (stable by combining class), dropping Mn.
static void flush_marks(struct run *r) {
    size_t n = r->nm;
    if (!n) return;
    uint32_t *m = r->marks;
    if (n > 1) {
        // Insertion sort for the usual short runs; a stable counting sort keeps long hostile
        // runs linear.
        if (n <= 16) {
            for (size_t i = 1; i < n; i++) {
                uint32_t x = m[i];
                int cx = tk_ccc(MARK_CP(x));
                size_t j = i;
                while (j > 0 && tk_ccc(MARK_CP(m[j - 1])) > cx) { m[j] = m[j - 1]; j--; }
                m[j] = x;
            }
        } else {
            size_t count[257] = {0};
            uint32_t *tmp = malloc(n * sizeof *tmp);
            if (!tmp) { if (r->rc == 0) r->rc = SEMBED_ENOMEM; r->nm = 0; return; }
            for (size_t i = 0; i < n; i++) count[tk_ccc(MARK_CP(m[i])) + 1]++;
            for (int c = 1; c < 257; c++) count[c] += count[c - 1];
            for (size_t i = 0; i < n; i++) tmp[count[tk_ccc(MARK_CP(m[i]))]++] = m[i];
            memcpy(m, tmp, n * sizeof *tmp);
            free(tmp);
        }
    }
    r->nm = 0;
    uint32_t s0 = r->cur_s, e0 = r->cur_e;
    size_t k = 0;                                 // spans handed out
    uint32_t ps = r->run_s, pe = r->run_e;        // the last one
    for (size_t i = 0; i < n; i++) {
        if (r->src) {
            if (!(m[i] & MARK_INSERTED) && k < r->sp_n) { ps = r->sp[2 * k]; pe = r->sp[2 * k + 1]; k++; }
            r->cur_s = ps;
            r->cur_e = pe;
        }
        uint32_t cp = MARK_CP(m[i]);
        if (!tk_is_mn(cp)) lowercase(r, cp);
    }
    r->sp_n = 0;
    r->cur_s = s0;
    r->cur_e = e0;
}

static void push_mark(struct run *r, uint32_t cp, bool inserted) {
    if (r->nm == r->mcap) {
        size_t ncap = r->mcap * 2;
        uint32_t *nm = r->marks == r->marks_local ? malloc(ncap * sizeof *nm) : realloc(r->marks, ncap * sizeof *nm);
        if (!nm) { if (r->rc == 0) r->rc = SEMBED_ENOMEM; return; }
        if (r->marks == r->marks_local) memcpy(nm, r->marks, r->nm * sizeof *nm);
        r->marks = nm;
        r->mcap = ncap;
    }
    if (r->src) {
        if (r->nm == 0) { r->run_s = r->last_s; r->run_e = r->last_e; }
        if (!inserted) {
            if (r->sp_n == r->sp_cap) {
                size_t ncap = r->sp_cap ? r->sp_cap * 2 : 32;
                uint32_t *ns = realloc(r->sp, ncap * 2 * sizeof *ns);
                if (!ns) { if (r->rc == 0) r->rc = SEMBED_ENOMEM; return; }
                r->sp = ns;
                r->sp_cap = ncap;
            }
            r->sp[2 * r->sp_n] = r->cur_s;
            r->sp[2 * r->sp_n + 1] = r->cur_e;
            r->sp_n++;
            r->last_s = r->cur_s;
            r->last_e = r->cur_e;
        }
    }
    r->marks[r->nm++] = cp | (inserted ? MARK_INSERTED : 0);
}

// strip_accents: NFD, canonical reordering, drop Mn.
static void strip(struct run *r, uint32_t cp) {
    if (cp < 0x80 && r->nm == 0) {
        if (r->src) { r->last_s = r->cur_s; r->last_e = r->cur_e; }
        lowercase(r, cp);
        return;
    }
    uint32_t d[16];
    size_t n = tk_nfd(cp, d, 16);
    for (size_t i = 0; i < n; i++) {
        if (tk_ccc(d[i]) == 0) {
            flush_marks(r);
            if (r->src && i == 0) { r->last_s = r->cur_s; r->last_e = r->cur_e; }
            if (!tk_is_mn(d[i])) lowercase(r, d[i]);
        } else {
            push_mark(r, d[i], i > 0);
        }
    }
}

static void after_clean(struct run *r, uint32_t cp) {
    if (r->strip) strip(r, cp);
    else lowercase(r, cp);
}

static void input(struct run *r, uint32_t cp) {
    if (r->clean) {
        if (cp == 0 || cp == 0xFFFD || tk_is_control(cp)) return;
        if (tk_is_whitespace(cp)) cp = ' ';
    }
    if (r->chinese && cp >= 0x3400 && tk_is_chinese(cp)) {
        after_clean(r, ' ');
        after_clean(r, cp);
        after_clean(r, ' ');
    } else {
        after_clean(r, cp);
    }
}

static int run_pretokenize(const struct sembed_tokenizer *t, const char *text, size_t len, tk_word_fn fn, void *ud,
                           struct tk_word_src *src) {
    if (t->hf) return SEMBED_EUNSUPPORTED;
    if (src && len > UINT32_MAX - 1) return SEMBED_ETOOLONG;
    struct run r;
    r.src = src;
    r.cur_s = r.cur_e = r.last_s = r.last_e = r.run_s = r.run_e = 0;
    r.sp = NULL;
    r.sp_n = r.sp_cap = 0;
    r.at = NULL;
    r.at_cap = 0;
    r.lower = t->p.lowercase;
    r.strip = t->p.strip_accents;
    r.clean = t->p.clean_text;
    r.chinese = t->p.handle_chinese_chars;
    r.max_chars = t->p.max_input_chars_per_word;
    r.fn = fn;
    r.ud = ud;
    r.rc = 0;
    r.word = r.word_local;
    r.wlen = r.wchars = 0;
    r.wcap = WORD_LOCAL;
    r.marks = r.marks_local;
    r.nm = 0;
    r.mcap = MARKS_LOCAL;

    const uint8_t *s = (const uint8_t *)text;
    if (!t->p.pre_lowercase) {
        size_t i = 0;
        while (i < len && r.rc == 0) {
            uint32_t cp;
            r.cur_s = (uint32_t)i;
            if (s[i] < 0x80) { cp = s[i]; i++; }
            else i += tk_utf8_decode(s + i, len - i, &cp);
            r.cur_e = (uint32_t)i;
            input(&r, cp);
        }
    } else {
        // sentence-transformers' do_lower_case runs Python's str.lower on the whole text first.
        if (len > SIZE_MAX / (3 * sizeof(uint32_t))) return SEMBED_ENOMEM;
        uint32_t *cps = len ? malloc(len * 3 * sizeof *cps) : NULL;
        if (len && !cps) return SEMBED_ENOMEM;
        uint32_t *pos = src && len ? malloc((len + 1) * sizeof *pos) : NULL;
        if (src && len && !pos) { free(cps); return SEMBED_ENOMEM; }
        size_t n = 0, i = 0;
        while (i < len) {
            if (pos) pos[n] = (uint32_t)i;
            i += tk_utf8_decode(s + i, len - i, &cps[n++]);
        }
        if (pos) pos[n] = (uint32_t)len;
        uint32_t *low = cps + n; // 2n slots left
        size_t m = tk_lower_python(cps, n, low);
        // Lowercasing maps each code point to one (sigma, whatever its final form) or more.
        size_t from = 0, left = 0;
        for (size_t k = 0; k < m && r.rc == 0; k++) {
            if (pos) {
                while (left == 0 && from < n) {
                    uint32_t lw[2];
                    left = cps[from] == 0x3A3 ? 1 : tk_lower_rust(cps[from], lw);
                    r.cur_s = pos[from];
                    r.cur_e = pos[from + 1];
                    from++;
                }
                left--;
            }
            input(&r, low[k]);
        }
        free(pos);
        free(cps);
    }
    if (r.rc == 0) flush_marks(&r);
    end_word(&r);
    if (r.word != r.word_local) free(r.word);
    if (r.marks != r.marks_local) free(r.marks);
    free(r.at);
    free(r.sp);
    return r.rc < 0 ? r.rc : SEMBED_OK;
}

int tk_pretokenize(const struct sembed_tokenizer *t, const char *text, size_t len, tk_word_fn fn, void *ud) {
    return run_pretokenize(t, text, len, fn, ud, NULL);
}

int tk_pretokenize_src(const struct sembed_tokenizer *t, const char *text, size_t len, tk_word_fn fn, void *ud,
                       struct tk_word_src *src) {
    if (!src) return SEMBED_EINVAL;
    return run_pretokenize(t, text, len, fn, ud, src);
}

/* ------------------------------------------------------------------ WordPiece */

struct enc {
    const struct sembed_tokenizer *t;
    int32_t *ids;
    size_t cap;
    size_t n;       // ids produced so far (stored or not)
    size_t stop_at; // stop once n reaches this (SIZE_MAX: never)
    const struct tk_word_src *src; // with offsets: st, en get each token's input bytes (cap slots)
    uint32_t *st, *en;
};

// Token id for the word's characters starting at bytes b0 .. b1 (b1 == SIZE_MAX: the whole word).
static void put(struct enc *e, int32_t id, size_t b0, size_t b1) {
    if (e->n < e->cap) {
        e->ids[e->n] = id;
        if (e->src) {
            const uint32_t *at = e->src->at;
            if (b1 == SIZE_MAX) { // the whole word
                e->st[e->n] = e->src->word_s;
                e->en[e->n] = e->src->word_e;
            } else {
                e->st[e->n] = at[2 * b0];
                e->en[e->n] = at[2 * b1 + 1];
            }
        }
    }
    e->n++;
}

// Greedy longest match first (HF WordPiece::tokenize); a word with an unmatchable rest is one [UNK].
static int wordpiece(void *ud, const char *w, size_t nb, size_t nchars) {
    struct enc *e = ud;
    const struct sembed_tokenizer *t = e->t;
    size_t first = e->n;
    if (nchars > t->p.max_input_chars_per_word) {
        put(e, t->unk, 0, SIZE_MAX);
    } else {
        size_t start = 0;
        while (start < nb) {
            const struct tk_table *tb = start == 0 || t->prefix_len == 0 ? &t->all : &t->cont;
            size_t end = nb;
            if (end - start > tb->max_key) {
                end = start + tb->max_key;
                while (end > start && ((uint8_t)w[end] & 0xC0) == 0x80) end--;
            }
            int32_t id = -1;
            while (end > start) {
                id = table_find(t, tb, w + start, end - start, tb == &t->cont ? t->prefix_len : 0);
                if (id >= 0) break;
                end--;
                while (end > start && ((uint8_t)w[end] & 0xC0) == 0x80) end--;
            }
            if (id < 0) {
                e->n = first;
                put(e, t->unk, 0, SIZE_MAX);
                break;
            }
            size_t last = end - 1; // first byte of the piece's last character
            while (last > start && ((uint8_t)w[last] & 0xC0) == 0x80) last--;
            put(e, id, start, last);
            start = end;
        }
    }
    return e->n >= e->stop_at ? 1 : 0;
}

static int encode(const struct sembed_tokenizer *t, const char *text, size_t len, int32_t *ids, size_t cap,
                  size_t stop_at, size_t *n_out) {
    struct enc e = {t, ids, cap, 0, stop_at, NULL, NULL, NULL};
    int rc = tk_pretokenize(t, text, len, wordpiece, &e);
    *n_out = e.n;
    return rc;
}

// truncate_encodings, LongestFirst, of a pair of na and nb tokens into room tokens: keep the
// shorter side whole if the longer one can absorb the cut, else split the room evenly, the longer
// side getting the odd token (the second sequence when both are as long).
static void split_room(size_t na, size_t nb, size_t room, size_t *la, size_t *lb) {
    size_t n1 = na, n2 = nb;
    bool swap = n1 > n2;
    if (swap) { size_t x = n1; n1 = n2; n2 = x; }
    if (n1 > room) n2 = n1;
    else n2 = n1 > room - n1 ? n1 : room - n1;
    if (n1 + n2 > room) {
        n1 = room / 2;
        n2 = n1 + room % 2;
    }
    if (swap) { size_t x = n1; n1 = n2; n2 = x; }
    *la = n1 < na ? n1 : na;
    *lb = n2 < nb ? n2 : nb;
}

/* ------------------------------------------------------------------ tokenizer.json (hf.h) */

static int hf_encode_plain(const struct sembed_tokenizer *t, const char *text, size_t len, int32_t *ids, size_t cap,
                           size_t *n_out) {
    struct tk_hf_enc e = {0};
    int rc = tk_hf_encode(t->hf, text, len, NULL, 0, false, 0, false, &e, NULL);
    if (!rc) {
        if (cap && e.n) memcpy(ids, e.ids, (e.n < cap ? e.n : cap) * sizeof *ids);
        *n_out = e.n;
    }
    tk_hf_enc_free(&e);
    return rc;
}

static int hf_encode_input(const struct sembed_tokenizer *t, const char *a, size_t a_len, const char *b, size_t b_len,
                           uint32_t max_len, enum sembed_truncate mode, int32_t *ids, int32_t *type_ids, uint32_t *n_out,
                           bool *truncated) {
    struct tk_hf_enc e = {0};
    int rc = tk_hf_encode(t->hf, a, a_len, b, b_len, true, max_len, mode == SEMBED_TRUNCATE_ERROR, &e, truncated);
    if (!rc) {
        SEMBED_ASSERT(e.n <= max_len);
        memcpy(ids, e.ids, e.n * sizeof *ids);
        if (type_ids) memcpy(type_ids, e.types, e.n * sizeof *type_ids);
        *n_out = (uint32_t)e.n;
    }
    tk_hf_enc_free(&e);
    return rc;
}

SEMBED_API int sembed_tokenizer_from_hf_json(const char *json, size_t len, uint32_t model_max_length,
                                             struct sembed_tokenizer **out) {
    static const char fn[] = "sembed_tokenizer_from_hf_json";
    if (!out) return sembed_fail(SEMBED_EINVAL, fn, "out is NULL");
    *out = NULL;
    if (!json) return sembed_fail(SEMBED_EINVAL, fn, "json is NULL");
    if (len == SIZE_MAX) len = strlen(json);
    struct sembed_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return SEMBED_ENOMEM;
    int rc = tk_hf_parse(json, len, fn, &t->hf);
    if (rc) { free(t); return rc; }
    static const char *const cls[] = {"[CLS]", "<s>", "<cls>", NULL}, *const sep[] = {"[SEP]", "</s>", "<sep>", NULL},
                             *const pad[] = {"[PAD]", "<pad>", NULL}, *const unk[] = {"[UNK]", "<unk>", NULL},
                             *const mask[] = {"[MASK]", "<mask>", NULL};
    t->cls = tk_hf_special(t->hf, cls);
    t->sep = tk_hf_special(t->hf, sep);
    t->pad = tk_hf_special(t->hf, pad);
    t->unk = tk_hf_special(t->hf, unk);
    t->mask = tk_hf_special(t->hf, mask);
    t->p = sembed_tokenizer_default_params();
    t->p.unk_token = tk_hf_token(t->hf, t->unk);
    t->p.cls_token = tk_hf_token(t->hf, t->cls);
    t->p.sep_token = tk_hf_token(t->hf, t->sep);
    t->p.pad_token = tk_hf_token(t->hf, t->pad);
    t->p.mask_token = tk_hf_token(t->hf, t->mask);
    t->p.continuing_prefix = NULL;
    t->p.lowercase = t->p.strip_accents = t->p.handle_chinese_chars = t->p.clean_text = false;
    t->p.model_max_length = model_max_length ? model_max_length : 512;
    if (t->p.model_max_length < tk_hf_added_specials(t->hf, true) + 1) {
        sembed_tokenizer_free(t);
        return sembed_fail(SEMBED_EINVAL, fn, "model_max_length %u leaves no room for the special tokens", model_max_length);
    }
    snprintf(t->kind, sizeof t->kind, "hf:%s", tk_hf_model_name(t->hf));
    *out = t;
    return SEMBED_OK;
}

SEMBED_API const char *sembed_tokenizer_kind(const struct sembed_tokenizer *t) {
    if (!t) return NULL;
    return t->hf ? t->kind : "wordpiece";
}

SEMBED_API void sembed_tokenizer_describe(const struct sembed_tokenizer *t, char *buf, size_t cap) {
    if (!buf || !cap) return;
    if (!t) { buf[0] = 0; return; }
    if (t->hf) { tk_hf_describe(t->hf, buf, cap); return; }
    snprintf(buf, cap, "wordpiece vocab=%zu lowercase=%d strip_accents=%d chinese=%d clean_text=%d", t->n,
             (int)t->p.lowercase, (int)t->p.strip_accents, (int)t->p.handle_chinese_chars, (int)t->p.clean_text);
}

// One text's WordPiece tokens with offsets, as encode_input would count them (stop_at).
struct wp_seq {
    int32_t *ids;
    uint32_t *st, *en;
    size_t n;
};

static int wp_seq_encode(const struct sembed_tokenizer *t, const char *text, size_t len, size_t stop_at,
                         struct wp_seq *q) {
    size_t n = 0;
    int rc = encode(t, text, len, NULL, 0, stop_at, &n);
    if (rc) return rc;
    q->ids = malloc((n ? n : 1) * sizeof *q->ids);
    q->st = malloc((n ? n : 1) * sizeof *q->st);
    q->en = malloc((n ? n : 1) * sizeof *q->en);
    if (!q->ids || !q->st || !q->en) return SEMBED_ENOMEM;
    struct tk_word_src src = {0};
    struct enc e = {t, q->ids, n, 0, stop_at, &src, q->st, q->en};
    rc = tk_pretokenize_src(t, text, len, wordpiece, &e, &src);
    q->n = e.n < n ? e.n : n;
    return rc;
}

// sembed_tokenizer_encode_full for the BERT tokenizer: the same ids and truncation as
// encode_input, with the input bytes of each token (BertProcessing adds [CLS] / [SEP]).
static int wp_encode_full(const struct sembed_tokenizer *t, const char *a, size_t a_len, const char *b, size_t b_len,
                          bool add_special, uint32_t max_len, enum sembed_truncate mode, struct sembed_encoding *out,
                          bool *truncated) {
    static const char fn[] = "sembed_tokenizer_encode_full";
    size_t specials = add_special ? (b ? 3 : 2) : 0;
    if (max_len && max_len < specials)
        return sembed_fail(SEMBED_EINVAL, fn, "max_len %u leaves no room for the %zu special tokens", max_len, specials);
    size_t room = max_len ? max_len - specials : SIZE_MAX;
    size_t stop = !max_len ? SIZE_MAX : b ? max_len : room + 1;
    struct wp_seq qa = {0}, qb = {0};
    int rc = wp_seq_encode(t, a, a_len, stop, &qa);
    if (!rc && b) rc = wp_seq_encode(t, b, b_len, stop, &qb);
    size_t la = qa.n, lb = qb.n;
    bool cut = max_len && la + lb > room;
    if (!rc && cut && mode == SEMBED_TRUNCATE_ERROR)
        rc = sembed_fail(SEMBED_ETOOLONG, fn, "input needs more than %u tokens", max_len);
    if (!rc && cut) {
        if (b) split_room(qa.n, qb.n, room, &la, &lb);
        else la = room;
    }
    size_t n = la + lb + specials;
    if (!rc) {
        out->ids = malloc((n ? n : 1) * sizeof *out->ids);
        out->type_ids = malloc((n ? n : 1) * sizeof *out->type_ids);
        out->seq_ids = malloc((n ? n : 1) * sizeof *out->seq_ids);
        out->start = malloc((n ? n : 1) * sizeof *out->start);
        out->end = malloc((n ? n : 1) * sizeof *out->end);
        if (!out->ids || !out->type_ids || !out->seq_ids || !out->start || !out->end) rc = SEMBED_ENOMEM;
    }
    if (!rc) {
        size_t k = 0;
#define WP_PUT(id_, type_, seq_, s_, e_)                                                                               \
    do {                                                                                                               \
        out->ids[k] = (id_); out->type_ids[k] = (type_); out->seq_ids[k] = (seq_);                                     \
        out->start[k] = (s_); out->end[k] = (e_); k++;                                                                 \
    } while (0)
        if (add_special) WP_PUT(t->cls, 0, -1, 0, 0);
        for (size_t i = 0; i < la; i++) WP_PUT(qa.ids[i], 0, 0, qa.st[i], qa.en[i]);
        if (add_special) WP_PUT(t->sep, 0, -1, 0, 0);
        for (size_t i = 0; i < lb; i++) WP_PUT(qb.ids[i], 1, 1, qb.st[i], qb.en[i]);
        if (add_special && b) WP_PUT(t->sep, 1, -1, 0, 0);
#undef WP_PUT
        out->n = k;
        if (truncated) *truncated = cut;
    } else {
        sembed_encoding_free(out);
    }
    free(qa.ids); free(qa.st); free(qa.en);
    free(qb.ids); free(qb.st); free(qb.en);
    return rc;
}

SEMBED_API int sembed_tokenizer_encode_full(const struct sembed_tokenizer *t, const char *a, size_t a_len, const char *b,
                                            size_t b_len, bool add_special, uint32_t max_len, enum sembed_truncate mode,
                                            struct sembed_encoding *out, bool *truncated) {
    static const char fn[] = "sembed_tokenizer_encode_full";
    if (truncated) *truncated = false;
    if (out) memset(out, 0, sizeof *out);
    if (!t || !out || (!a && a_len && a_len != SIZE_MAX)) return sembed_fail(SEMBED_EINVAL, fn, "NULL argument");
    if (!a) { a = ""; a_len = 0; }
    if (a_len == SIZE_MAX) a_len = strlen(a);
    if (b && b_len == SIZE_MAX) b_len = strlen(b);
    if (!t->hf) return wp_encode_full(t, a, a_len, b, b_len, add_special, max_len, mode, out, truncated);
    struct tk_hf_enc e = {0};
    int rc = tk_hf_encode(t->hf, a, a_len, b, b_len, add_special, max_len, mode == SEMBED_TRUNCATE_ERROR, &e, truncated);
    if (rc) { tk_hf_enc_free(&e); return rc; }
    out->ids = e.ids;
    out->type_ids = e.types;
    out->seq_ids = e.seq;
    out->start = e.start;
    out->end = e.end;
    out->n = e.n;
    return SEMBED_OK;
}

SEMBED_API void sembed_encoding_free(struct sembed_encoding *e) {
    if (!e) return;
    free(e->ids); free(e->type_ids); free(e->seq_ids); free(e->start); free(e->end);
    memset(e, 0, sizeof *e);
}

SEMBED_API int sembed_tokenizer_encode(const struct sembed_tokenizer *t, const char *text, size_t len,
                                       int32_t *ids, size_t cap, size_t *n_out) {
    static const char fn[] = "sembed_tokenizer_encode";
    if (n_out) *n_out = 0;
    if (!t || !n_out || (!text && len) || (!ids && cap)) return sembed_fail(SEMBED_EINVAL, fn, "NULL argument");
    if (!text) text = "";
    if (len == SIZE_MAX) len = strlen(text);
    if (t->hf) return hf_encode_plain(t, text, len, ids, cap, n_out);
    return encode(t, text, len, ids, cap, SIZE_MAX, n_out);
}

SEMBED_API int sembed_tokenizer_encode_input(const struct sembed_tokenizer *t, const char *a, size_t a_len,
                                             const char *b, size_t b_len, uint32_t max_len,
                                             enum sembed_truncate mode, int32_t *ids, int32_t *type_ids,
                                             uint32_t *n_out, bool *truncated) {
    static const char fn[] = "sembed_tokenizer_encode_input";
    if (n_out) *n_out = 0;
    if (truncated) *truncated = false;
    if (!t || !ids || !n_out || (!a && a_len && a_len != SIZE_MAX)) return sembed_fail(SEMBED_EINVAL, fn, "NULL argument");
    if (mode != SEMBED_TRUNCATE_LONGEST_FIRST && mode != SEMBED_TRUNCATE_ERROR)
        return sembed_fail(SEMBED_EINVAL, fn, "unknown truncation mode %d", (int)mode);
    if (!a) { a = ""; a_len = 0; }
    if (a_len == SIZE_MAX) a_len = strlen(a);
    if (b && b_len == SIZE_MAX) b_len = strlen(b);
    if (max_len == 0) max_len = t->p.model_max_length;
    if (t->hf) return hf_encode_input(t, a, a_len, b, b_len, max_len, mode, ids, type_ids, n_out, truncated);
    size_t specials = b ? 3 : 2;
    if (max_len < specials)
        return sembed_fail(SEMBED_EINVAL, fn, "max_len %u leaves no room for the %zu special tokens", max_len, specials);
    size_t room = max_len - specials; // content tokens that fit
    int rc;

    if (!b) {
        size_t na;
        // Stop tokenizing once the input is known not to fit.
        rc = encode(t, a, a_len, ids + 1, room, room + 1, &na);
        if (rc) return rc;
        bool cut = na > room;
        if (cut && mode == SEMBED_TRUNCATE_ERROR)
            return sembed_fail(SEMBED_ETOOLONG, fn, "input needs more than %u tokens", max_len);
        size_t la = cut ? room : na;
        ids[0] = t->cls;
        ids[la + 1] = t->sep;
        uint32_t n = (uint32_t)(la + 2);
        if (type_ids) memset(type_ids, 0, n * sizeof *type_ids);
        *n_out = n;
        if (truncated) *truncated = cut;
        return SEMBED_OK;
    }

    int32_t local[512];
    int32_t *bb = room <= 512 ? local : malloc(room * sizeof *bb);
    if (!bb) return SEMBED_ENOMEM;
    // HF tokenizers (npm 0.23, measured) stops tokenizing a sequence at the first word boundary
    // where it has max_len tokens or more, and compares those lengths: a sequence that crosses
    // max_len in the middle of a multi-piece word counts as longer than one that reaches it exactly.
    size_t na, nb;
    rc = encode(t, a, a_len, ids + 1, room, max_len, &na);
    if (!rc) rc = encode(t, b, b_len, bb, room, max_len, &nb);
    if (rc) goto done;
    size_t la = na, lb = nb;
    bool cut = na + nb > room;
    if (cut && mode == SEMBED_TRUNCATE_ERROR) {
        rc = sembed_fail(SEMBED_ETOOLONG, fn, "pair needs more than %u tokens", max_len);
        goto done;
    }
    if (cut) split_room(na, nb, room, &la, &lb);
    ids[0] = t->cls;
    ids[la + 1] = t->sep;
    memcpy(ids + la + 2, bb, lb * sizeof *ids);
    ids[la + lb + 2] = t->sep;
    uint32_t n = (uint32_t)(la + lb + 3);
    if (type_ids) {
        for (size_t i = 0; i < la + 2; i++) type_ids[i] = 0;
        for (size_t i = la + 2; i < n; i++) type_ids[i] = 1;
    }
    *n_out = n;
    if (truncated) *truncated = cut;
done:
    if (bb != local) free(bb);
    return rc;
}
