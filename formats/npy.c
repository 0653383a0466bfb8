// NumPy .npy reader (formats/npy.h): magic, version, header length, then a strict parser for the
// small Python dict literal NumPy writes; every count checked before use.
#include "formats/npy.h"

#include <stdio.h>
#include <string.h>

#include "formats/log.h"

#define FN "npy_parse"

struct cur {
    const char *p, *end;
    const char *label;
    const char *start;
};

static void skip_ws(struct cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t')) c->p++;
}

static int perr(struct cur *c, const char *what) {
    return sembed_fail(SEMBED_EPARSE, FN, "%s: header byte %td: %s", c->label, c->p - c->start, what);
}

// A quoted string of printable ASCII without escapes (NumPy's keys and descr need none).
static int parse_str(struct cur *c, char *dst, size_t cap) {
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return perr(c, "expected a quoted string");
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20 || ch > 0x7e || ch == '\\') return perr(c, "unsupported character in a string");
        if (n + 1 >= cap) return perr(c, "string too long");
        dst[n++] = (char)ch;
        c->p++;
    }
    if (c->p >= c->end) return perr(c, "unterminated string");
    c->p++;
    dst[n] = 0;
    return 0;
}

static bool lit(struct cur *c, const char *s) {
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n)) return false;
    c->p += n;
    return true;
}

static int parse_shape(struct cur *c, struct npy_array *a) {
    if (c->p >= c->end || *c->p != '(') return perr(c, "'shape' must be a tuple");
    c->p++;
    a->n_dims = 0;
    bool comma_after_last = false;
    for (;;) {
        skip_ws(c);
        if (c->p < c->end && *c->p == ')') { c->p++; break; }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return perr(c, "expected a non-negative integer in 'shape'");
        if (a->n_dims == NPY_MAX_DIMS) return perr(c, "'shape' has too many dimensions");
        uint64_t v = 0;
        const char *d0 = c->p;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            unsigned dig = (unsigned)(*c->p - '0');
            if (v > (UINT64_MAX - dig) / 10) return perr(c, "dimension overflows 64 bits");
            v = v * 10 + dig;
            c->p++;
        }
        if (c->p - d0 > 1 && *d0 == '0') return perr(c, "dimension with a leading zero");
        if (c->p < c->end && *c->p == 'L') c->p++; // Python 2 longs, as old NumPy wrote them
        a->dims[a->n_dims++] = v;
        skip_ws(c);
        comma_after_last = false;
        if (c->p < c->end && *c->p == ',') { c->p++; comma_after_last = true; continue; }
        if (c->p < c->end && *c->p == ')') { c->p++; break; }
        return perr(c, "expected ',' or ')' in 'shape'");
    }
    if (a->n_dims == 1 && !comma_after_last) return perr(c, "'shape' (n) is not a tuple: a 1-tuple is written (n,)");
    return 0;
}

int npy_parse(const void *buf, size_t len, const char *label, struct npy_array *out) {
    memset(out, 0, sizeof *out);
    const unsigned char *b = buf;
    if (!label) label = "npy";
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0)
        return sembed_fail(SEMBED_EMAGIC, FN, "%s: not a .npy file (magic \\x93NUMPY missing)", label);
    int major = b[6], minor = b[7];
    size_t hl, pre;
    if (major == 1) {
        hl = (size_t)b[8] | (size_t)b[9] << 8;
        pre = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return sembed_fail(SEMBED_ETRUNCATED, FN, "%s: truncated before the header length", label);
        hl = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        pre = 12;
    } else {
        return sembed_fail(SEMBED_EVERSION, FN, "%s: .npy version %d.%d is not supported (1.0, 2.0, 3.0)", label, major,
                           minor);
    }
    if (minor != 0)
        return sembed_fail(SEMBED_EVERSION, FN, "%s: .npy version %d.%d is not supported (1.0, 2.0, 3.0)", label, major,
                           minor);
    if (hl > NPY_MAX_HEADER)
        return sembed_fail(SEMBED_ECORRUPT, FN, "%s: header length %zu exceeds %u", label, hl, NPY_MAX_HEADER);
    if (hl > len - pre)
        return sembed_fail(SEMBED_ETRUNCATED, FN, "%s: header of %zu bytes but only %zu bytes follow", label, hl,
                           len - pre);
    out->major = major;
    out->minor = minor;
    const char *h = (const char *)b + pre;
    if (hl == 0 || h[hl - 1] != '\n') return sembed_fail(SEMBED_EPARSE, FN, "%s: header does not end with a newline", label);
    struct cur c = {.p = h, .end = h + hl - 1, .label = label, .start = h};
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') return perr(&c, "expected '{'");
    c.p++;
    bool seen_descr = false, seen_fo = false, seen_shape = false;
    for (;;) {
        skip_ws(&c);
        if (c.p < c.end && *c.p == '}') { c.p++; break; }
        char key[32];
        int rc = parse_str(&c, key, sizeof key);
        if (rc) return rc;
        skip_ws(&c);
        if (c.p >= c.end || *c.p != ':') return perr(&c, "expected ':' after a key");
        c.p++;
        skip_ws(&c);
        if (!strcmp(key, "descr")) {
            if (seen_descr) return perr(&c, "duplicate key 'descr'");
            seen_descr = true;
            if (c.p < c.end && *c.p == '[') return perr(&c, "structured dtypes ('descr' as a list) are not supported");
            if ((rc = parse_str(&c, out->descr, sizeof out->descr))) return rc;
        } else if (!strcmp(key, "fortran_order")) {
            if (seen_fo) return perr(&c, "duplicate key 'fortran_order'");
            seen_fo = true;
            if (lit(&c, "True")) out->fortran_order = true;
            else if (lit(&c, "False")) out->fortran_order = false;
            else return perr(&c, "'fortran_order' must be True or False");
        } else if (!strcmp(key, "shape")) {
            if (seen_shape) return perr(&c, "duplicate key 'shape'");
            seen_shape = true;
            if ((rc = parse_shape(&c, out))) return rc;
        } else {
            char msg[96];
            snprintf(msg, sizeof msg, "unexpected key '%s' (expected descr, fortran_order, shape)", key);
            return perr(&c, msg);
        }
        skip_ws(&c);
        if (c.p < c.end && *c.p == ',') { c.p++; continue; }
        if (c.p < c.end && *c.p == '}') { c.p++; break; }
        return perr(&c, "expected ',' or '}'");
    }
    skip_ws(&c);
    if (c.p != c.end) return perr(&c, "unexpected text after the dictionary");
    if (!seen_descr || !seen_fo || !seen_shape)
        return sembed_fail(SEMBED_EPARSE, FN, "%s: header lacks key '%s'", label,
                           !seen_descr ? "descr" : !seen_fo ? "fortran_order" : "shape");
    // itemsize from descr: [<>|=]? kind letter, then decimal digits
    const char *d = out->descr;
    if (*d == '<' || *d == '>' || *d == '|' || *d == '=') d++;
    if (!*d || !((*d >= 'a' && *d <= 'z') || (*d >= 'A' && *d <= 'Z')))
        return sembed_fail(SEMBED_EDTYPE, FN, "%s: dtype '%s' is not understood", label, out->descr);
    d++;
    size_t isz = 0;
    if (!*d) return sembed_fail(SEMBED_EDTYPE, FN, "%s: dtype '%s' has no item size", label, out->descr);
    for (; *d; d++) {
        if (*d < '0' || *d > '9' || isz > 1000)
            return sembed_fail(SEMBED_EDTYPE, FN, "%s: dtype '%s' is not understood", label, out->descr);
        isz = isz * 10 + (size_t)(*d - '0');
    }
    if (isz == 0 || isz > 64) return sembed_fail(SEMBED_EDTYPE, FN, "%s: dtype '%s' has item size %zu", label, out->descr, isz);
    out->itemsize = isz;
    uint64_t numel = 1;
    for (uint32_t i = 0; i < out->n_dims; i++) {
        if (out->dims[i] && numel > UINT64_MAX / out->dims[i])
            return sembed_fail(SEMBED_ECORRUPT, FN, "%s: shape overflows 64 bits", label);
        numel *= out->dims[i];
    }
    if (numel > (uint64_t)SIZE_MAX / isz) return sembed_fail(SEMBED_ECORRUPT, FN, "%s: shape too large", label);
    out->numel = numel;
    size_t need = (size_t)numel * isz, off = pre + hl;
    if (len - off != need)
        return sembed_fail(len - off < need ? SEMBED_ETRUNCATED : SEMBED_ECORRUPT, FN,
                           "%s: shape needs %zu data bytes, the file has %zu after the header", label, need, len - off);
    out->data_offset = off;
    out->data = b + off;
    return 0;
}

int npy_f32_matrix(const void *buf, size_t len, const char *label, struct npy_array *out) {
    int rc = npy_parse(buf, len, label, out);
    if (rc) return rc;
    if (!label) label = "npy";
    if (strcmp(out->descr, "<f4") != 0)
        return sembed_fail(SEMBED_EDTYPE, FN, "%s: dtype '%s': expected '<f4' (float32, little-endian)", label, out->descr);
    if (out->fortran_order)
        return sembed_fail(SEMBED_EUNSUPPORTED, FN, "%s: fortran_order is True: expected C order (np.ascontiguousarray)",
                           label);
    if (out->n_dims != 2)
        return sembed_fail(SEMBED_EDIMS, FN, "%s: %u-d array: expected 2-d (rows, dim)", label, out->n_dims);
    return 0;
}
