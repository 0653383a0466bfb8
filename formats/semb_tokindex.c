// The tokenizer.index.* keys of a .semb file (docs/format.md): build, write, validate, verify.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "formats/semb_internal.h"
#include "formats/semb_tokindex.h"

size_t semb_tokidx_cap(size_t n_keys) {
    if (n_keys == 0) return 0;
    if (n_keys > SIZE_MAX / 4) return SIZE_MAX;
    size_t cap = 16;
    while (cap < 2 * n_keys) cap *= 2;
    return cap;
}

// memcmp(s, prefix, plen) == 0 for the short prefixes WordPiece uses, without a call.
static inline bool has_prefix(const uint8_t *s, const char *prefix, size_t plen) {
    for (size_t k = 0; k < plen; k++)
        if (s[k] != (uint8_t)prefix[k]) return false;
    return true;
}

// Stored offsets: token i must end exactly where token i + 1 starts, and the last where the array
// ends. Each token's length is loaded from its own stored offset, so unlike a walk the loads do
// not wait on each other (the vocabulary is ~30k tokens on every model load).
static uint64_t check_offsets(const uint8_t *v, uint64_t vbytes, uint32_t n, const uint8_t *off, const char *prefix,
                              size_t plen, struct semb_tokidx_stats *st, const char **why) {
    const uint8_t p0 = plen ? (uint8_t)prefix[0] : 0;
    uint64_t o = semb_rd32(off);
    if (o != 0) {
        *why = "offset is not where the token's string starts";
        return 1;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (vbytes < 9 || o > vbytes - 9) {
            *why = "string runs past the end of tokenizer.vocab";
            return (uint64_t)i + 1;
        }
        const uint64_t len = semb_rd64(v + o);
        const uint64_t next = i + 1 < n ? semb_rd32(off + 4 * ((size_t)i + 1)) : vbytes;
        if (len > vbytes - o - 9) {
            *why = "string runs past the end of tokenizer.vocab";
            return (uint64_t)i + 1;
        }
        if (next != o + 9 + len) {
            if (i + 1 < n) {
                *why = "offset is not where the token's string starts";
                return (uint64_t)i + 2;
            }
            *why = "bytes remain after the last token";
            return (uint64_t)n + 1;
        }
        if (len > st->max_all) st->max_all = len;
        if (plen && len >= plen && v[o + 8] == p0 && has_prefix(v + o + 8, prefix, plen)) {
            st->n_cont++;
            if (len - plen > st->max_cont) st->max_cont = len - plen;
        }
        o = next;
    }
    return 0;
}

uint64_t semb_tokidx_scan(const uint8_t *v, uint64_t vbytes, uint32_t n, const uint8_t *off_in, uint8_t *off_out,
                          const char *prefix, size_t plen, struct semb_tokidx_stats *st, const char **why) {
    memset(st, 0, sizeof *st);
    *why = "";
    if (off_in && !off_out) return check_offsets(v, vbytes, n, off_in, prefix, plen, st, why);
    const uint8_t p0 = plen ? (uint8_t)prefix[0] : 0;
    uint64_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (off_in && semb_rd32(off_in + 4 * (size_t)i) != pos) {
            *why = "offset is not where the token's string starts";
            return (uint64_t)i + 1;
        }
        if (pos > UINT32_MAX) {
            *why = "string starts beyond 4 GiB, which a u32 offset cannot address";
            return (uint64_t)i + 1;
        }
        if (vbytes - pos < 9 || semb_rd64(v + pos) > vbytes - pos - 9) {
            *why = "string runs past the end of tokenizer.vocab";
            return (uint64_t)i + 1;
        }
        const uint64_t len = semb_rd64(v + pos);
        if (off_out) semb_wr32(off_out + 4 * (size_t)i, (uint32_t)pos);
        if (len > st->max_all) st->max_all = len;
        // Few tokens start with the prefix's first byte: test it before calling memcmp.
        if (plen && len >= plen && v[pos + 8] == p0 && has_prefix(v + pos + 8, prefix, plen)) {
            st->n_cont++;
            if (len - plen > st->max_cont) st->max_cont = len - plen;
        }
        pos += 9 + len;
    }
    if (pos != vbytes) {
        *why = "bytes remain after the last token";
        return (uint64_t)n + 1;
    }
    return 0;
}

static void put(const struct semb_vocab *vc, const struct semb_tokidx_table *t, uint32_t id, size_t skip) {
    size_t len;
    const char *key = semb_vocab_token(vc, id, &len) + skip;
    const size_t n = len - skip, mask = t->cap - 1;
    size_t i = (size_t)semb_tokidx_hash(key, n) & mask;
    for (;;) {
        uint32_t s = semb_tokidx_slot(t, i);
        if (!s) break;
        size_t ol;
        const char *o = semb_vocab_token(vc, s - 1, &ol);
        if (ol == len && memcmp(o + skip, key, n) == 0) break; // same key: the later id replaces it (HF)
        i = (i + 1) & mask;
    }
    uint8_t *slot = (uint8_t *)(uintptr_t)t->slots + (size_t)t->width * i; // the caller's writable table
    if (t->width == 2) semb_wr16(slot, (uint16_t)(id + 1));
    else semb_wr32(slot, id + 1);
}

void semb_tokidx_build(const struct semb_vocab *vc, const char *prefix, size_t plen, const struct semb_tokidx_table *all,
                       const struct semb_tokidx_table *cont) {
    for (uint32_t id = 0; id < vc->n; id++) put(vc, all, id, 0);
    if (!plen || !cont->cap) return;
    for (uint32_t id = 0; id < vc->n; id++) {
        size_t len;
        const char *tok = semb_vocab_token(vc, id, &len);
        if (len >= plen && has_prefix((const uint8_t *)tok, prefix, plen)) put(vc, cont, id, plen);
    }
}

int semb_tokidx_vocab(const struct sembed_file *f, const char *fn, const uint8_t **v, uint64_t *vbytes, uint32_t *n) {
    int64_t kv = sembed_file_find_kv(f, "tokenizer.vocab");
    if (kv < 0) return sembed_fail(SEMBED_EMISSING, fn, "required key 'tokenizer.vocab' (string array) is missing");
    enum sembed_type elem;
    uint64_t count = 0;
    if (sembed_file_kv_array_info(f, kv, &elem, &count) || elem != SEMBED_TYPE_STRING)
        return sembed_fail(SEMBED_ETYPE, fn, "tokenizer.vocab: expected an array of strings");
    if (count == 0 || count > (uint64_t)INT32_MAX - 1)
        return sembed_fail(SEMBED_ECORRUPT, fn, "tokenizer.vocab has %llu entries (expected 1..%d)", (unsigned long long)count,
                           INT32_MAX - 1);
    const void *data = NULL;
    int rc = sembed_file_kv_arr_bytes(f, kv, &data, vbytes);
    if (rc) return sembed_fail(rc, fn, "tokenizer.vocab: %s", sembed_strerror(rc));
    *v = data;
    *n = (uint32_t)count;
    return SEMBED_OK;
}

// An array of the index (u32, or u16 when slots allows it): its bytes, element count and width.
static int index_array(const struct sembed_file *f, int64_t kv, const char *key, bool slots, const char *fn,
                       const uint8_t **p, uint64_t *count, unsigned *width) {
    enum sembed_type elem;
    if (sembed_file_kv_array_info(f, kv, &elem, count) || !(elem == SEMBED_TYPE_U32 || (slots && elem == SEMBED_TYPE_U16)))
        return sembed_fail(SEMBED_ETYPE, fn, "%s: expected an array of %s", key, slots ? "u16 or u32" : "u32");
    *width = elem == SEMBED_TYPE_U16 ? 2 : 4;
    const void *data = NULL;
    uint64_t nbytes = 0;
    int rc = sembed_file_kv_arr_bytes(f, kv, &data, &nbytes);
    if (rc) return sembed_fail(rc, fn, "%s: %s", key, sembed_strerror(rc));
    *p = *count ? data : NULL;
    return SEMBED_OK;
}

static bool pow2(uint64_t x) { return x && !(x & (x - 1)); }

static int index_max(const struct sembed_file *f, const char *key, const char *fn, uint32_t *out) {
    int rc = sembed_file_get_u32(f, key, out);
    if (rc) return sembed_fail(rc == SEMBED_ENOTFOUND ? SEMBED_ECORRUPT : rc, fn, "%s: %s", key,
                               rc == SEMBED_ENOTFOUND ? "missing from an otherwise present tokenizer index"
                                                      : "expected an unsigned 32-bit integer");
    return SEMBED_OK;
}

int semb_tokidx_load(const struct sembed_file *f, const char *fn, struct semb_tokidx_view *out) {
    static const char *const keys[5] = {SEMB_TOKIDX_OFFSETS, SEMB_TOKIDX_ALL, SEMB_TOKIDX_CONT, SEMB_TOKIDX_ALL_MAX,
                                        SEMB_TOKIDX_CONT_MAX};
    int64_t kv[5];
    int present = 0, miss = -1;
    for (int i = 0; i < 5; i++) {
        if ((kv[i] = sembed_file_find_kv(f, keys[i])) >= 0) present++;
        else if (miss < 0) miss = i;
    }
    if (present == 0) return 0;
    if (miss >= 0) return sembed_fail(SEMBED_ECORRUPT, fn, "incomplete tokenizer index: '%s' is missing", keys[miss]);
    memset(out, 0, sizeof *out);
    const uint8_t *arr[3];
    uint64_t count[3];
    unsigned width[3];
    int rc;
    for (int i = 0; i < 3; i++)
        if ((rc = index_array(f, kv[i], keys[i], i > 0, fn, &arr[i], &count[i], &width[i]))) return rc;
    if ((rc = index_max(f, keys[3], fn, &out->all_max_len)) || (rc = index_max(f, keys[4], fn, &out->cont_max_len)))
        return rc;
    struct semb_vocab *vc = &out->vc;
    if ((rc = semb_tokidx_vocab(f, fn, &vc->v, &vc->vbytes, &vc->n))) return rc;
    if (count[0] != vc->n)
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s has %llu entries for %u tokens", keys[0], (unsigned long long)count[0],
                           vc->n);
    // Capacities: a power of two at least twice the keys (all: every token; cont: at most every
    // token, 0 when no token has the prefix).
    if (!pow2(count[1]) || count[1] < 2 * (uint64_t)vc->n)
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s has %llu slots for %u tokens (want a power of two, at least twice the tokens)",
                           keys[1], (unsigned long long)count[1], vc->n);
    if (count[2] && (!pow2(count[2]) || count[2] > count[1]))
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s has %llu slots (want 0 or a power of two up to the %llu of %s)", keys[2],
                           (unsigned long long)count[2], (unsigned long long)count[1], keys[1]);
    vc->off = arr[0];
    out->all = (struct semb_tokidx_table){arr[1], (size_t)count[1], width[1]};
    out->cont = (struct semb_tokidx_table){arr[2], (size_t)count[2], width[2]};
    return 1;
}

/* ---------------------------------------------------------------- public: write and verify */

SEMBED_API int sembed_writer_add_tokenizer_index(struct sembed_writer *w, const char *const *vocab, uint64_t n,
                                                 const char *continuing_prefix) {
    static const char FN[] = "sembed_writer_add_tokenizer_index";
    if (!w || !vocab) return sembed_fail(SEMBED_EINVAL, FN, "writer or vocabulary is NULL");
    if (n == 0 || n > (uint64_t)INT32_MAX - 1)
        return sembed_fail(SEMBED_EINVAL, FN, "vocabulary size %llu out of range 1..%d", (unsigned long long)n, INT32_MAX - 1);
    const char *prefix = continuing_prefix ? continuing_prefix : SEMB_TOKIDX_DEFAULT_PREFIX;
    uint64_t vbytes = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (!vocab[i]) return sembed_fail(SEMBED_EINVAL, FN, "vocabulary entry %llu is NULL", (unsigned long long)i);
        vbytes += 9 + strlen(vocab[i]);
        if (vbytes > (uint64_t)UINT32_MAX) // every string must start below 4 GiB; simpler to bound the total
            return sembed_fail(SEMBED_ETOOLONG, FN, "vocabulary strings exceed the 4 GiB a u32 offset addresses");
    }
    // The vocabulary as the file stores it, so the tables are built from exactly those bytes.
    uint8_t *v = malloc((size_t)vbytes), *off = malloc((size_t)n * 4);
    uint8_t *all = NULL, *cont = NULL;
    int rc = SEMBED_ENOMEM;
    if (!v || !off) goto done;
    uint64_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t l = strlen(vocab[i]);
        semb_wr32(off + 4 * i, (uint32_t)pos);
        semb_wr64(v + pos, l);
        memcpy(v + pos + 8, vocab[i], l + 1);
        pos += 9 + l;
    }
    struct semb_vocab vc = {v, vbytes, off, (uint32_t)n};
    struct semb_tokidx_stats st;
    const char *why;
    const size_t plen = strlen(prefix);
    (void)semb_tokidx_scan(v, vbytes, (uint32_t)n, off, NULL, prefix, plen, &st, &why); // well formed: written above
    const size_t cap_all = semb_tokidx_cap((size_t)n), cap_cont = semb_tokidx_cap(st.n_cont);
    const unsigned width = semb_tokidx_width(n);
    all = calloc(cap_all, width);
    cont = calloc(cap_cont ? cap_cont : 1, width);
    if (!all || !cont) goto done;
    const struct semb_tokidx_table ta = {all, cap_all, width}, tc = {cont, cap_cont, width};
    semb_tokidx_build(&vc, prefix, plen, &ta, &tc);
    // On the little-endian hosts sembed builds for, these byte arrays are the host-order arrays
    // sembed_writer_add_arr expects.
    const enum sembed_type st_slots = width == 2 ? SEMBED_TYPE_U16 : SEMBED_TYPE_U32;
    if ((rc = sembed_writer_add_arr(w, SEMB_TOKIDX_OFFSETS, SEMBED_TYPE_U32, off, n)) ||
        (rc = sembed_writer_add_arr(w, SEMB_TOKIDX_ALL, st_slots, all, cap_all)) ||
        (rc = sembed_writer_add_arr(w, SEMB_TOKIDX_CONT, st_slots, cont, cap_cont)) ||
        (rc = sembed_writer_add_u32(w, SEMB_TOKIDX_ALL_MAX, (uint32_t)st.max_all)) ||
        (rc = sembed_writer_add_u32(w, SEMB_TOKIDX_CONT_MAX, (uint32_t)st.max_cont)))
        goto done;
    rc = SEMBED_OK;
done:
    free(v);
    free(off);
    free(all);
    free(cont);
    return rc;
}

SEMBED_API int sembed_file_add_tokenizer_index(const char *in_path, const char *out_path) {
    static const char FN[] = "sembed_file_add_tokenizer_index";
    if (!in_path || !out_path) return sembed_fail(SEMBED_EINVAL, FN, "path is NULL");
    struct sembed_file *f = NULL;
    struct sembed_writer *w = NULL;
    const char **vocab = NULL;
    int rc = sembed_file_open(in_path, &f);
    if (rc) return sembed_fail(rc, FN, "%s: %s", in_path, sembed_strerror(rc));
    const uint8_t *v;
    uint64_t vbytes;
    uint32_t n;
    if ((rc = semb_tokidx_vocab(f, FN, &v, &vbytes, &n))) goto done;
    const char *prefix = NULL; // absent: the default
    if ((rc = sembed_file_get_str(f, "tokenizer.continuing_prefix", &prefix, NULL)) && rc != SEMBED_ENOTFOUND) {
        rc = sembed_fail(rc, FN, "tokenizer.continuing_prefix: expected a string");
        goto done;
    }
    if (!(vocab = malloc((size_t)n * sizeof *vocab))) { rc = SEMBED_ENOMEM; goto done; }
    for (uint64_t i = 0, pos = 0; i < n; i++) { // validated at open: n strings back to back
        vocab[i] = (const char *)v + pos + 8;
        pos += 9 + semb_rd64(v + pos);
    }
    if ((rc = sembed_writer_create(out_path, &w))) goto done;
    for (int64_t i = 0; i < sembed_file_n_kv(f) && !rc; i++)
        if (strncmp(sembed_file_kv_key(f, i), "tokenizer.index.", 16) != 0) rc = sembed_writer_copy_kv(w, f, i);
    if (!rc) rc = sembed_writer_add_tokenizer_index(w, vocab, n, prefix);
    if (!rc) rc = sembed_writer_copy_tensors(w, f);
    if (!rc) {
        rc = sembed_writer_finish(w);
        w = NULL;
    }
    if (rc) sembed_fail(rc, FN, "cannot write %s: %s", out_path, sembed_strerror(rc));
done:
    sembed_writer_free(w);
    free(vocab);
    sembed_file_free(f);
    return rc;
}

// "empty" or "token 123 'abc'" for a slot value, into buf.
static const char *describe(const struct semb_vocab *vc, uint32_t s, char *buf, size_t cap) {
    if (!s) return "empty";
    if (s > vc->n) {
        snprintf(buf, cap, "%u (above the vocabulary size %u)", s, vc->n);
        return buf;
    }
    size_t len;
    const char *tok = semb_vocab_token(vc, s - 1, &len);
    snprintf(buf, cap, "token %u '%.*s'", s - 1, (int)(len < 48 ? len : 48), tok);
    return buf;
}

SEMBED_API int sembed_file_verify_tokenizer_index(const struct sembed_file *f) {
    static const char FN[] = "sembed_file_verify_tokenizer_index";
    if (!f) return sembed_fail(SEMBED_EINVAL, FN, "file is NULL");
    struct semb_tokidx_view ix;
    int rc = semb_tokidx_load(f, FN, &ix);
    if (rc <= 0) return rc; // absent (nothing to check) or already named
    const char *prefix = SEMB_TOKIDX_DEFAULT_PREFIX;
    rc = sembed_file_get_str(f, "tokenizer.continuing_prefix", &prefix, NULL);
    if (rc && rc != SEMBED_ENOTFOUND) return sembed_fail(rc, FN, "tokenizer.continuing_prefix: expected a string");
    const size_t plen = strlen(prefix);
    // Offsets: exactly where the strings are.
    struct semb_tokidx_stats st;
    const char *why;
    uint64_t bad = semb_tokidx_scan(ix.vc.v, ix.vc.vbytes, ix.vc.n, ix.vc.off, NULL, prefix, plen, &st, &why);
    if (bad)
        return sembed_fail(SEMBED_ECORRUPT, FN, "%s[%llu] disagrees with tokenizer.vocab: %s", SEMB_TOKIDX_OFFSETS,
                           (unsigned long long)(bad - 1), why);
    // Longest keys and capacities: what the builder derives from the vocabulary.
    if (ix.all_max_len != st.max_all || ix.cont_max_len != st.max_cont)
        return sembed_fail(SEMBED_ECORRUPT, FN, "%s = %u and %s = %u, but the longest keys are %llu and %llu bytes",
                           SEMB_TOKIDX_ALL_MAX, ix.all_max_len, SEMB_TOKIDX_CONT_MAX, ix.cont_max_len,
                           (unsigned long long)st.max_all, (unsigned long long)st.max_cont);
    if (st.n_cont ? ix.cont.cap < 2 * (uint64_t)st.n_cont : ix.cont.cap != 0)
        return sembed_fail(SEMBED_ECORRUPT, FN, "%s has %zu slots for the %u tokens that start with '%s'", SEMB_TOKIDX_CONT,
                           ix.cont.cap, st.n_cont, prefix);
    // Tables: slot by slot what the builder makes at the file's capacities and widths.
    uint8_t *all = calloc(ix.all.cap, ix.all.width), *cont = calloc(ix.cont.cap ? ix.cont.cap : 1, ix.cont.width);
    if (!all || !cont) {
        free(all);
        free(cont);
        return sembed_fail(SEMBED_ENOMEM, FN, "no memory to rebuild the index");
    }
    const struct semb_tokidx_table ta = {all, ix.all.cap, ix.all.width}, tc = {cont, ix.cont.cap, ix.cont.width};
    semb_tokidx_build(&ix.vc, prefix, plen, &ta, &tc);
    const struct { const char *key; const struct semb_tokidx_table *got, *want; } t[2] = {
        {SEMB_TOKIDX_ALL, &ix.all, &ta}, {SEMB_TOKIDX_CONT, &ix.cont, &tc}};
    rc = SEMBED_OK;
    for (int k = 0; k < 2 && !rc; k++)
        for (size_t i = 0; i < t[k].got->cap; i++) {
            uint32_t g = semb_tokidx_slot(t[k].got, i), w = semb_tokidx_slot(t[k].want, i);
            if (g == w) continue;
            char a[96], b[96];
            rc = sembed_fail(SEMBED_ECORRUPT, FN, "%s disagrees with tokenizer.vocab: slot %zu holds %s where the builder puts %s",
                             t[k].key, i, describe(&ix.vc, g, a, sizeof a), describe(&ix.vc, w, b, sizeof b));
            break;
        }
    free(all);
    free(cont);
    return rc;
}
