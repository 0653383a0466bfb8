// SentencePiece's compiled character map (the `Precompiled` normalizer of tokenizer.json and the
// normalizer_spec.precompiled_charsmap of a .model file): loading, validation and lookup.
//
// Blob layout (sentencepiece src/normalizer.cc, "DecodePrecompiledCharsMap"; darts-clone's unit
// encoding): uint32 LE trie size in bytes, the Darts double array (uint32 LE units), then the
// replacement strings, each NUL-terminated, indexed by the values stored in the trie's leaves.
// A unit: bit 8 = has a leaf child, bit 31 = is a leaf (value = low 31 bits), label = the low 8
// bits with bit 31, offset to the children = (unit >> 10) << ((unit & 0x200) >> 6).
// Every path the runtime can take (keys of at most TK_PC_MAX_KEY bytes) is checked here once, so
// lookups never fail; they still bound every index.
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "runtime/tokenizer/hf_internal.h"

#define PC_HAS_LEAF(u) (((u) >> 8) & 1u)
#define PC_VALUE(u) ((u) & 0x7fffffffu)
#define PC_LABEL(u) ((u) & (0x80000000u | 0xffu))
#define PC_OFFSET(u) (((u) >> 10) << (((u) & 0x200u) >> 6))

static int b64_val(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// Standard base64 with padding (HF serializes the charsmap with base64's STANDARD engine).
static int b64_decode(const char *s, size_t n, uint8_t **out, size_t *out_n, const char *fn, const char *path) {
    if (n % 4) return sembed_fail(SEMBED_ECORRUPT, fn, "%s: base64 text of %zu characters (not a multiple of 4)", path, n);
    uint8_t *o = malloc(n / 4 * 3 + 1);
    if (!o) return SEMBED_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            unsigned char c = (unsigned char)s[i + j];
            if (c == '=' && i + 4 == n && j >= 2 && (j == 3 || s[i + 3] == '=')) { v[j] = 0; pad++; continue; }
            if ((v[j] = b64_val(c)) < 0) {
                free(o);
                return sembed_fail(SEMBED_ECORRUPT, fn, "%s: bad base64 character 0x%02x at %zu", path, c, i + (size_t)j);
            }
        }
        uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        o[k++] = (uint8_t)(x >> 16);
        if (pad < 2) o[k++] = (uint8_t)(x >> 8);
        if (pad < 1) o[k++] = (uint8_t)x;
    }
    *out = o;
    *out_n = k;
    return SEMBED_OK;
}

// A replacement string at table offset v: NUL-terminated, well-formed UTF-8.
static int check_value(const struct tk_norm *nm, uint32_t v, const char *fn, const char *path) {
    if (v >= nm->slen)
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s: trie value %u is beyond the %zu-byte replacement table", path, v, nm->slen);
    const uint8_t *s = (const uint8_t *)nm->str + v;
    size_t n = strlen((const char *)s); // the table ends in NUL (checked before)
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t k = tk_utf8_decode(s + i, n - i, &c);
        if (c == 0xFFFD && !(k == 3 && s[i] == 0xEF && s[i + 1] == 0xBF && s[i + 2] == 0xBD))
            return sembed_fail(SEMBED_ECORRUPT, fn, "%s: replacement string at %u is not UTF-8", path, v);
        i += k;
    }
    return SEMBED_OK;
}

int tk_precompiled_load(struct tk_norm *nm, const uint8_t *blob, size_t n, const char *fn, const char *path) {
    if (n < 4) return sembed_fail(SEMBED_ECORRUPT, fn, "%s: %zu bytes, shorter than its 4-byte trie size", path, n);
    uint32_t tsize = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 | (uint32_t)blob[3] << 24;
    if (tsize == 0 || tsize % 4 || tsize > n - 4)
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s: trie size %u is not a positive multiple of 4 within the %zu bytes after it",
                           path, tsize, n - 4);
    size_t nu = tsize / 4, tl = n - 4 - tsize;
    if (tl && blob[n - 1] != 0)
        return sembed_fail(SEMBED_ECORRUPT, fn, "%s: the replacement table does not end in NUL", path);
    nm->trie = malloc(nu * sizeof *nm->trie);
    nm->str = malloc(tl + 1);
    if (!nm->trie || !nm->str) return SEMBED_ENOMEM;
    for (size_t i = 0; i < nu; i++) {
        const uint8_t *p = blob + 4 + 4 * i;
        nm->trie[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    }
    memcpy(nm->str, blob + 4 + tsize, tl);
    nm->str[tl] = 0;
    nm->n_trie = nu;
    nm->slen = tl;

    // Breadth-first over the nodes reachable by keys of at most TK_PC_MAX_KEY bytes (first visit =
    // shortest key, so a node seen again needs no second walk); every leaf's string is checked.
    size_t *q = malloc(nu * sizeof *q);
    uint8_t *depth = calloc(nu, 1); // 0 = unvisited, else depth + 1 of the unit that was reached
    int rc = SEMBED_OK;
    if (!q || !depth) { rc = SEMBED_ENOMEM; goto done; }
    size_t qh = 0, qt = 0;
    size_t root = (size_t)PC_OFFSET(nm->trie[0]);
    // The root node is a position, not a unit: its children are root ^ c. Encode it as a queue
    // entry with depth 0 through a sentinel handled in the loop.
    size_t cur_pos = root;
    unsigned cur_depth = 0;
    for (;;) {
        for (unsigned c = 1; c < 256 && !rc; c++) {
            size_t child = cur_pos ^ c;
            if (child >= nu) continue;
            uint32_t u = nm->trie[child];
            if (PC_LABEL(u) != c) continue;
            size_t next = child ^ (size_t)PC_OFFSET(u);
            if (PC_HAS_LEAF(u)) {
                if (next >= nu) {
                    rc = sembed_fail(SEMBED_ECORRUPT, fn, "%s: leaf at unit %zu is beyond the %zu-unit trie", path, next, nu);
                    break;
                }
                if ((rc = check_value(nm, PC_VALUE(nm->trie[next]), fn, path))) break;
            }
            if (cur_depth + 1 < TK_PC_MAX_KEY && !depth[child]) {
                depth[child] = (uint8_t)(cur_depth + 2);
                q[qt++] = child;
            }
        }
        if (rc || qh == qt) break;
        size_t unit = q[qh++];
        cur_depth = depth[unit] - 1u;
        cur_pos = unit ^ (size_t)PC_OFFSET(nm->trie[unit]);
    }
done:
    free(q);
    free(depth);
    return rc;
}

int tk_precompiled_load_b64(struct tk_norm *nm, const char *b64, size_t n, const char *fn, const char *path) {
    uint8_t *blob = NULL;
    size_t bn = 0;
    int rc = b64_decode(b64, n, &blob, &bn, fn, path);
    if (rc) return rc;
    rc = tk_precompiled_load(nm, blob, bn, fn, path);
    free(blob);
    return rc;
}

// HF's Precompiled::transform: the value of the FIRST leaf met along key (its shortest prefix in
// the trie, as the spm_precompiled crate returns results[0]), stopping at a NUL byte.
const char *tk_precompiled_find(const struct tk_norm *nm, const uint8_t *key, size_t n) {
    size_t pos = (size_t)PC_OFFSET(nm->trie[0]);
    for (size_t i = 0; i < n && key[i]; i++) {
        pos ^= key[i];
        if (pos >= nm->n_trie) return NULL;
        uint32_t u = nm->trie[pos];
        if (PC_LABEL(u) != key[i]) return NULL;
        pos ^= (size_t)PC_OFFSET(u);
        if (PC_HAS_LEAF(u)) {
            if (pos >= nm->n_trie) return NULL;
            uint32_t v = PC_VALUE(nm->trie[pos]);
            return v < nm->slen ? nm->str + v : NULL;
        }
    }
    return NULL;
}
