// formats/semb_tokindex.h: the prebuilt WordPiece lookup index of a .semb file (the
// tokenizer.index.* keys, docs/format.md): layout, probe, builder and checks. The writer,
// sembed_file_verify_tokenizer_index and the runtime tokenizer all go through these, so the table
// a writer stores is by construction the table the runtime probes. Internal (prefix semb_tokidx_).
//
// Every array here is little-endian (offsets u32, slots u16 or u32) and possibly unaligned: the
// index is used in place inside the mapped header, where metadata values are packed. Tables the
// runtime builds itself (files without an index) use the same byte layout.
#ifndef SEMBED_SEMB_TOKINDEX_H
#define SEMBED_SEMB_TOKINDEX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "formats/semb_internal.h"
#include "sembed/semb.h"

#define SEMB_TOKIDX_OFFSETS "tokenizer.index.offsets"
#define SEMB_TOKIDX_ALL "tokenizer.index.all"
#define SEMB_TOKIDX_CONT "tokenizer.index.cont"
#define SEMB_TOKIDX_ALL_MAX "tokenizer.index.all_max_len"
#define SEMB_TOKIDX_CONT_MAX "tokenizer.index.cont_max_len"
#define SEMB_TOKIDX_DEFAULT_PREFIX "##" // tokenizer.continuing_prefix when the key is absent

// A vocabulary as a .semb string array stores it: token i is `u64 n | n bytes | 0x00` at
// v + off[i], off being n little-endian u32. vbytes >= 9 (at least one string) and v[vbytes - 1]
// is a NUL (the last string's terminator).
struct semb_vocab {
    const uint8_t *v; // the array's element bytes
    uint64_t vbytes;
    const uint8_t *off; // 4 * n bytes
    uint32_t n;
};

// Token id's bytes and length (id < vc->n). Offsets from a file's index are only checked here, at
// use: one that points outside the array yields an empty token, a length running past it is cut
// at the array's end. Either way the bytes lie inside the array, whose last byte is a NUL, so the
// result is a C string. (sembed_file_verify_tokenizer_index proves a file's offsets exact.)
static inline const char *semb_vocab_token(const struct semb_vocab *vc, uint32_t id, size_t *len) {
    const uint64_t o = semb_rd32(vc->off + 4 * (size_t)id);
    if (o > vc->vbytes - 9) {
        *len = 0;
        return "";
    }
    const uint64_t n = semb_rd64(vc->v + o);
    *len = (size_t)(n <= vc->vbytes - 9 - o ? n : vc->vbytes - 9 - o);
    return (const char *)vc->v + o + 8;
}

static inline uint64_t semb_tokidx_hash(const void *key, size_t n) { return XXH3_64bits(key, n); }

// One lookup table: cap slots (0 or a power of two) of `width` bytes (2 or 4), each id + 1 of a
// token or 0 for empty.
struct semb_tokidx_table {
    const uint8_t *slots; // NULL when cap is 0
    size_t cap;
    unsigned width;
};

static inline uint32_t semb_tokidx_slot(const struct semb_tokidx_table *t, size_t i) {
    return t->width == 2 ? semb_rd16(t->slots + 2 * i) : semb_rd32(t->slots + 4 * i);
}

// Slot width for a vocabulary of n tokens: u16 while every id + 1 fits (halves the tables), else u32.
static inline unsigned semb_tokidx_width(uint64_t n) { return n <= 65535 ? 2 : 4; }

// Id of the token whose bytes after the first `skip` equal key[0..n), or -1. A probe visits each
// slot at most once and skips values above the vocabulary size, so a hostile table can make a
// lookup slow or wrong but never endless or out of bounds.
static inline int32_t semb_tokidx_find(const struct semb_tokidx_table *t, const struct semb_vocab *vc, const char *key,
                                       size_t n, size_t skip) {
    if (!t->cap) return -1;
    const size_t mask = t->cap - 1;
    size_t i = (size_t)semb_tokidx_hash(key, n) & mask;
    for (size_t k = 0; k <= mask; k++) {
        const uint32_t s = semb_tokidx_slot(t, i);
        if (!s) return -1;
        if (s <= vc->n) {
            size_t len;
            const char *tok = semb_vocab_token(vc, s - 1, &len);
            if (len == n + skip && memcmp(tok + skip, key, n) == 0) return (int32_t)(s - 1);
        }
        i = (i + 1) & mask;
    }
    return -1;
}

// What one pass over a vocabulary learns: tokens that start with the continuing prefix (the
// keys of the continuing table) and the longest key of each table in bytes.
struct semb_tokidx_stats {
    uint32_t n_cont;
    uint64_t max_all, max_cont;
};

// Table capacity for n_keys keys: the smallest power of two >= max(16, 2 * n_keys); 0 when
// n_keys is 0. SIZE_MAX when it would not fit.
size_t semb_tokidx_cap(size_t n_keys);

// Walk the n strings stored in v[0..vbytes) (the encoding above, back to back). When off_in is
// given (and off_out is not), each token's stored offset must be exactly where its string starts;
// when off_out is given, the offsets are written there (4 * n bytes). Fills *st for
// prefix[0..plen) (plen 0: no continuing tokens). Returns 0, or 1 + the index of the first token
// whose offset is wrong or whose string runs past vbytes (*why says which), or 1 + n when bytes
// remain after the last token.
uint64_t semb_tokidx_scan(const uint8_t *v, uint64_t vbytes, uint32_t n, const uint8_t *off_in, uint8_t *off_out,
                          const char *prefix, size_t plen, struct semb_tokidx_stats *st, const char **why);

// Insert ids 0..n-1 in order into `all` (keyed by the whole token) and, when plen > 0, the tokens
// that start with prefix into `cont` (keyed by the bytes after the prefix). A later duplicate key
// takes the earlier one's slot (HF's vocabulary map). The tables' slots must be zeroed and
// writable, their capacities powers of two above their key counts (cont may have none), their
// widths able to hold n; vc's offsets exact.
void semb_tokidx_build(const struct semb_vocab *vc, const char *prefix, size_t plen, const struct semb_tokidx_table *all,
                       const struct semb_tokidx_table *cont);

// The index of a file as a tokenizer uses it. semb_tokidx_load checks only what costs O(1) (all
// keys present, types, counts, capacities); the per-slot and per-offset safety checks happen at
// use (semb_tokidx_find, semb_vocab_token), so a load never walks the ~400 KB of tables.
struct semb_tokidx_view {
    struct semb_vocab vc;
    struct semb_tokidx_table all, cont;
    uint32_t all_max_len, cont_max_len; // longest key of each table in bytes, as stored
};

// Vocabulary of f (tokenizer.vocab) as raw element bytes: 0, or a negative status logged under fn.
int semb_tokidx_vocab(const struct sembed_file *f, const char *fn, const uint8_t **v, uint64_t *vbytes, uint32_t *n);
// 1 and *out filled when f holds an index; 0 when it holds none; a negative status (logged under
// fn, naming the key and the problem) when it is malformed.
int semb_tokidx_load(const struct sembed_file *f, const char *fn, struct semb_tokidx_view *out);

#endif
