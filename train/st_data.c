// Training data: lines (unsup, MLM) or pair/triplet rows (sup), tokenized once up front.
// CSV quoting follows RFC 4180 (fields in double quotes may hold commas, newlines and "" escapes).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "formats/log.h"
#include "sembed/tokenizer.h"
#include "train/st_data.h"

struct span {
    const char *p;
    size_t n;
};

struct parsed {
    struct span *s; // sentences, k per row
    size_t n, cap;
    int k;
    size_t skipped;
    char *scratch;  // unescaped CSV fields
    size_t scratch_len;
};

static int push(struct parsed *ps, const char *p, size_t n) {
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 1024;
        struct span *ns = realloc(ps->s, cap * sizeof *ns);
        if (!ns) return SEMBED_ENOMEM;
        ps->s = ns; ps->cap = cap;
    }
    ps->s[ps->n].p = p;
    ps->s[ps->n].n = n;
    ps->n++;
    return 0;
}

static int malformed(const char *name, size_t line, bool strict, struct parsed *ps, const char *why) {
    SEMBED_LOG_WARNF("%s:%zu: %s%s", name, line, why, strict ? "" : " (line skipped)");
    ps->skipped++;
    return strict ? SEMBED_EPARSE : 0;
}

static bool blank(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') return false;
    return true;
}

// Accept a row of nf fields: fixes k on the first row, skips a sent0/sent1 header.
static int accept_row(const char *name, size_t line, bool strict, struct parsed *ps, struct span *f, int nf,
                      bool first) {
    char why[96];
    if (nf < 2 || nf > 3) {
        snprintf(why, sizeof why, "expected 2 or 3 fields (sent0, sent1[, hard_neg]), found %d", nf);
        return malformed(name, line, strict, ps, why);
    }
    if (first && f[0].n == 5 && !memcmp(f[0].p, "sent0", 5) && f[1].n == 5 && !memcmp(f[1].p, "sent1", 5)) {
        ps->k = nf;
        return 0;
    }
    if (ps->k == 0) ps->k = nf;
    if (nf != ps->k) {
        snprintf(why, sizeof why, "expected %d fields like the first row, found %d", ps->k, nf);
        return malformed(name, line, strict, ps, why);
    }
    for (int i = 0; i < nf; i++)
        if (blank(f[i].p, f[i].n)) {
            snprintf(why, sizeof why, "field %d is empty", i + 1);
            return malformed(name, line, strict, ps, why);
        }
    for (int i = 0; i < nf; i++) {
        int rc = push(ps, f[i].p, f[i].n);
        if (rc) return rc;
    }
    return 0;
}

static int parse_lines(const char *name, const char *b, size_t len, bool strict, struct parsed *ps) {
    ps->k = 1;
    size_t line = 0, i = 0;
    while (i < len) {
        line++;
        const char *e = memchr(b + i, '\n', len - i);
        size_t n = e ? (size_t)(e - (b + i)) : len - i;
        size_t m = n;
        if (m && b[i + m - 1] == '\r') m--;
        if (blank(b + i, m)) {
            int rc = malformed(name, line, strict, ps, "empty line");
            if (rc) return rc;
        } else {
            int rc = push(ps, b + i, m);
            if (rc) return rc;
        }
        i += n + 1;
    }
    return 0;
}

static int parse_tsv(const char *name, const char *b, size_t len, bool strict, struct parsed *ps) {
    size_t line = 0, i = 0;
    bool first = true;
    while (i < len) {
        line++;
        const char *e = memchr(b + i, '\n', len - i);
        size_t n = e ? (size_t)(e - (b + i)) : len - i, m = n;
        if (m && b[i + m - 1] == '\r') m--;
        if (!blank(b + i, m)) {
            struct span f[4];
            int nf = 0;
            size_t s = i;
            for (size_t j = i; j <= i + m; j++) {
                if (j == i + m || b[j] == '\t') {
                    if (nf < 4) { f[nf].p = b + s; f[nf].n = j - s; }
                    nf++;
                    s = j + 1;
                }
            }
            int rc = accept_row(name, line, strict, ps, f, nf > 4 ? 4 : nf, first);
            if (rc) return rc;
            first = false;
        }
        i += n + 1;
    }
    return 0;
}

static int parse_csv(const char *name, const char *b, size_t len, bool strict, struct parsed *ps) {
    char *out = ps->scratch;
    size_t o = 0, i = 0, line = 1;
    bool first = true;
    while (i < len) {
        size_t row_line = line;
        struct span f[4];
        int nf = 0;
        const char *bad = NULL;
        bool row_done = false;
        while (!row_done) {
            size_t start = o;
            if (i < len && b[i] == '"') { // quoted field
                i++;
                bool closed = false;
                while (i < len) {
                    if (b[i] == '"') {
                        if (i + 1 < len && b[i + 1] == '"') { out[o++] = '"'; i += 2; continue; }
                        i++;
                        closed = true;
                        break;
                    }
                    if (b[i] == '\n') line++;
                    out[o++] = b[i++];
                }
                if (!closed) bad = "unterminated quoted field";
                else if (i < len && b[i] != ',' && b[i] != '\n' && !(b[i] == '\r' && (i + 1 == len || b[i + 1] == '\n')))
                    bad = "text after a closing quote";
            } else {
                while (i < len && b[i] != ',' && b[i] != '\n') {
                    if (b[i] == '"' && !bad) bad = "quote inside an unquoted field";
                    out[o++] = b[i++];
                }
                if (o > start && out[o - 1] == '\r' && (i == len || b[i] == '\n')) o--;
            }
            if (nf < 4) { f[nf].p = out + start; f[nf].n = o - start; }
            nf++;
            if (bad) { // skip to the end of the physical line
                while (i < len && b[i] != '\n') i++;
                if (i < len) { i++; line++; }
                break;
            }
            if (i < len && b[i] == '\r') i++;
            if (i >= len) row_done = true;
            else if (b[i] == ',') i++;
            else { i++; line++; row_done = true; } // '\n'
        }
        if (bad) {
            int rc = malformed(name, row_line, strict, ps, bad);
            if (rc) return rc;
            continue;
        }
        if (nf == 1 && blank(f[0].p, f[0].n)) continue; // blank line
        int rc = accept_row(name, row_line, strict, ps, f, nf > 4 ? 4 : nf, first);
        if (rc) return rc;
        first = false;
    }
    return 0;
}

int st_data_parse(const char *name, const char *buf, size_t len, enum st_data_kind kind, bool strict,
                  const struct sembed_tokenizer *tok, uint32_t max_len, int nt, struct st_data **out) {
    *out = NULL;
    struct parsed ps = {0};
    int rc = 0;
    struct st_data *d = NULL;
    int32_t *tmp = NULL;
    uint32_t *lens = NULL;
    if (max_len < 2 || max_len > 4096) return sembed_fail(SEMBED_EINVAL, "sembed_train", "max_length %u is out of range", max_len);
    uint64_t hash = XXH3_64bits(buf, len);
    if (len >= 3 && !memcmp(buf, "\xEF\xBB\xBF", 3)) { buf += 3; len -= 3; } // UTF-8 byte-order mark
    if (kind == ST_DATA_LINES) {
        rc = parse_lines(name, buf, len, strict, &ps);
    } else {
        size_t nl = strcspn(name, "");
        bool tsv = nl >= 4 && !strcmp(name + nl - 4, ".tsv");
        const char *e = memchr(buf, '\n', len);
        if (!tsv && memchr(buf, '\t', e ? (size_t)(e - buf) : len)) tsv = true;
        if (tsv) rc = parse_tsv(name, buf, len, strict, &ps);
        else {
            ps.scratch = malloc(len + 1);
            if (!ps.scratch) { rc = SEMBED_ENOMEM; goto done; }
            rc = parse_csv(name, buf, len, strict, &ps);
        }
    }
    if (rc) goto done;
    if (ps.n == 0 || ps.k == 0) { rc = sembed_fail(SEMBED_EINVAL, "sembed_train", "%s: no usable rows", name); goto done; }
    d = calloc(1, sizeof *d);
    size_t ns = ps.n;
    tmp = malloc(ns * max_len * sizeof *tmp);
    lens = malloc(ns * sizeof *lens);
    if (!d || !tmp || !lens) { rc = SEMBED_ENOMEM; goto done; }
    d->k = ps.k;
    d->n_rows = ns / (size_t)ps.k;
    d->xxh3 = hash;
    d->n_skipped = ps.skipped;
    int fail = 0;
    size_t truncated = 0;
    #pragma omp parallel for num_threads(nt > 0 ? nt : 1) schedule(dynamic, 256) reduction(+ : truncated) reduction(| : fail)
    for (size_t i = 0; i < ns; i++) {
        uint32_t n = 0;
        bool cut = false;
        int r = sembed_tokenizer_encode_input(tok, ps.s[i].p, ps.s[i].n, NULL, 0, max_len, SEMBED_TRUNCATE_LONGEST_FIRST,
                                              tmp + i * max_len, NULL, &n, &cut);
        if (r) fail = 1;
        lens[i] = n;
        truncated += cut;
    }
    if (fail) { rc = sembed_fail(SEMBED_EINVAL, "sembed_train", "%s: tokenizer failed", name); goto done; }
    d->n_truncated = truncated;
    size_t total = 0;
    for (size_t i = 0; i < ns; i++) total += lens[i];
    d->off = malloc((ns + 1) * sizeof *d->off);
    d->ids = malloc((total ? total : 1) * sizeof *d->ids);
    if (!d->off || !d->ids) { rc = SEMBED_ENOMEM; goto done; }
    size_t o = 0;
    for (size_t i = 0; i < ns; i++) {
        d->off[i] = o;
        memcpy(d->ids + o, tmp + i * max_len, lens[i] * sizeof *d->ids);
        o += lens[i];
    }
    d->off[ns] = o;
done:
    free(tmp); free(lens); free(ps.s); free(ps.scratch);
    if (rc) { st_data_free(d); return rc; }
    *out = d;
    return 0;
}

int st_data_load(const char *path, enum st_data_kind kind, bool strict, const struct sembed_tokenizer *tok,
                 uint32_t max_len, int nt, struct st_data **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sembed_fail(SEMBED_EIO, "sembed_train", "cannot open data '%s': %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 65536) {
            size_t ncap = cap ? cap * 2 : 1 << 20;
            char *nb = realloc(buf, ncap);
            if (!nb) { free(buf); fclose(f); return SEMBED_ENOMEM; }
            buf = nb; cap = ncap;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) { free(buf); return sembed_fail(SEMBED_EIO, "sembed_train", "cannot read data '%s'", path); }
    int rc = st_data_parse(path, buf, len, kind, strict, tok, max_len, nt, out);
    free(buf);
    return rc;
}

void st_data_free(struct st_data *d) {
    if (!d) return;
    free(d->off);
    free(d->ids);
    free(d);
}
