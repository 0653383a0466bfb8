// Calibration of int8 conversions, user metadata, and the metadata rewrite (convert/calibrate.h).
#define _GNU_SOURCE
#include "convert/calibrate.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/calib_sentences.h"
#include "formats/log.h"
#include "formats/semb_internal.h"
#include "sembed/model.h"

#define FN "sembed_convert"

size_t sc_calib_n_sentences(void) { return sizeof sc_calib_sentences / sizeof sc_calib_sentences[0]; }
const char *sc_calib_sentence(size_t i) { return i < sc_calib_n_sentences() ? sc_calib_sentences[i] : NULL; }

/* ---------------------------------------------------------------- --meta */

static bool key_ok(const char *k, size_t n) {
    static const char *const ns[] = {"x.", "train.", "eval."};
    bool in_ns = false;
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t l = strlen(ns[i]);
        if (n > l && !strncmp(k, ns[i], l)) in_ns = true;
    }
    if (!in_ns || k[n - 1] == '.') return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)k[i]) && k[i] != '_' && k[i] != '.' && k[i] != '-') return false;
    return true;
}

static bool parse_u64(const char *s, uint64_t *v) {
    if (!isdigit((unsigned char)*s)) return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *v = x;
    return true;
}

static bool parse_i64(const char *s, int64_t *v) {
    if (*s != '-' || !isdigit((unsigned char)s[1])) return false;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end) return false;
    *v = x;
    return true;
}

static bool parse_f64(const char *s, double *v) {
    if (!*s || isspace((unsigned char)*s)) return false;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || *end || !isfinite(x)) return false;
    // only plain decimal notation (strtod also takes hex, inf, nan)
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p)) return false;
    *v = x;
    return true;
}

int sc_meta_parse(const char *spec, struct sc_meta *out) {
    memset(out, 0, sizeof *out);
    const char *eq = spec ? strchr(spec, '=') : NULL;
    if (!eq) return sembed_fail(SEMBED_EINVAL, FN, "--meta '%s': expected key=value", spec ? spec : "");
    const char *colon = memchr(spec, ':', (size_t)(eq - spec));
    size_t klen = (size_t)((colon ? colon : eq) - spec);
    if (klen == 0 || klen >= sizeof out->key || !key_ok(spec, klen))
        return sembed_fail(SEMBED_EINVAL, FN,
                           "--meta '%s': the key must be x.*, train.* or eval.* made of letters, digits, '_', '.', '-' "
                           "(at most %zu characters)", spec, sizeof out->key - 1);
    memcpy(out->key, spec, klen);
    out->key[klen] = 0;
    const char *val = eq + 1;
    char type[8] = "";
    if (colon) {
        size_t tl = (size_t)(eq - colon - 1);
        if (tl == 0 || tl >= sizeof type)
            return sembed_fail(SEMBED_EINVAL, FN, "--meta '%s': unknown type (str, u32, u64, i64, f32, f64, bool)", spec);
        memcpy(type, colon + 1, tl);
        type[tl] = 0;
    }
    bool ok = true;
    if (!strcmp(type, "str")) {
        out->type = SEMBED_TYPE_STRING;
    } else if (!strcmp(type, "u32")) {
        out->type = SEMBED_TYPE_U32;
        ok = parse_u64(val, &out->v.u) && out->v.u <= UINT32_MAX;
    } else if (!strcmp(type, "u64")) {
        out->type = SEMBED_TYPE_U64;
        ok = parse_u64(val, &out->v.u);
    } else if (!strcmp(type, "i64")) {
        out->type = SEMBED_TYPE_I64;
        uint64_t u;
        if (parse_u64(val, &u) && u <= INT64_MAX) out->v.i = (int64_t)u;
        else ok = parse_i64(val, &out->v.i);
    } else if (!strcmp(type, "f32") || !strcmp(type, "f64")) {
        out->type = type[1] == '3' ? SEMBED_TYPE_F32 : SEMBED_TYPE_F64;
        ok = parse_f64(val, &out->v.f) && (out->type == SEMBED_TYPE_F64 || fabs(out->v.f) <= 3.4028234e38);
    } else if (!strcmp(type, "bool")) {
        out->type = SEMBED_TYPE_BOOL;
        ok = !strcmp(val, "true") || !strcmp(val, "false");
        out->v.b = !strcmp(val, "true");
    } else if (type[0]) {
        return sembed_fail(SEMBED_EINVAL, FN, "--meta '%s': unknown type '%s' (str, u32, u64, i64, f32, f64, bool)",
                           spec, type);
    } else if (!strcmp(val, "true") || !strcmp(val, "false")) {
        out->type = SEMBED_TYPE_BOOL;
        out->v.b = !strcmp(val, "true");
    } else if (parse_u64(val, &out->v.u)) {
        out->type = SEMBED_TYPE_U64;
    } else if (parse_i64(val, &out->v.i)) {
        out->type = SEMBED_TYPE_I64;
    } else if (parse_f64(val, &out->v.f)) {
        out->type = SEMBED_TYPE_F64;
    } else {
        out->type = SEMBED_TYPE_STRING;
    }
    if (!ok) return sembed_fail(SEMBED_EINVAL, FN, "--meta '%s': '%s' is not a valid %s", spec, val, type);
    out->str = val;
    return SEMBED_OK;
}

int sc_meta_write(struct sembed_writer *w, const struct sc_meta *m) {
    int rc;
    switch (m->type) {
    case SEMBED_TYPE_STRING: rc = sembed_writer_add_str(w, m->key, m->str); break;
    case SEMBED_TYPE_U32: rc = sembed_writer_add_u32(w, m->key, (uint32_t)m->v.u); break;
    case SEMBED_TYPE_U64: rc = sembed_writer_add_u64(w, m->key, m->v.u); break;
    case SEMBED_TYPE_I64: rc = sembed_writer_add_i64(w, m->key, m->v.i); break;
    case SEMBED_TYPE_F32: rc = sembed_writer_add_f32(w, m->key, (float)m->v.f); break;
    case SEMBED_TYPE_F64: rc = sembed_writer_add_f64(w, m->key, m->v.f); break;
    case SEMBED_TYPE_BOOL: rc = sembed_writer_add_bool(w, m->key, m->v.b); break;
    default: rc = SEMBED_EINVAL; break;
    }
    if (rc == SEMBED_EDUPLICATE) return sembed_fail(rc, FN, "metadata key '%s' is given twice", m->key);
    return rc;
}

/* ---------------------------------------------------------------- calibration */

static int embed_all(const char *path, enum sembed_compute c, float **out, uint32_t *dim) {
    struct sembed_model_params mp = sembed_model_default_params();
    mp.compute = c;
    struct sembed_model *m = NULL;
    struct sembed_context *ctx = NULL;
    const size_t n = sc_calib_n_sentences();
    int rc = sembed_model_load(path, &mp, &m);
    if (rc == SEMBED_OK) {
        struct sembed_context_params cp = sembed_context_default_params();
        cp.max_length = sembed_model_max_length(m) < 128 ? sembed_model_max_length(m) : 128;
        cp.batch_size = 64;
        rc = sembed_context_create(m, &cp, &ctx);
    }
    if (rc == SEMBED_OK) {
        *dim = sembed_model_dim(m);
        *out = malloc(n * *dim * sizeof(float));
        rc = *out ? sembed_embed_texts(ctx, sc_calib_sentences, n, *out) : SEMBED_ENOMEM;
    }
    sembed_context_free(ctx);
    sembed_model_free(m);
    return rc;
}

int sc_calibrate(const char *path, struct sc_calib *out) {
    float *a = NULL, *b = NULL;
    uint32_t da = 0, db = 0;
    int rc = embed_all(path, SEMBED_COMPUTE_F32, &a, &da);
    if (rc == SEMBED_OK) rc = embed_all(path, SEMBED_COMPUTE_INT8, &b, &db);
    if (rc == SEMBED_OK && da != db) rc = SEMBED_ECORRUPT;
    if (rc == SEMBED_OK) {
        const size_t n = sc_calib_n_sentences();
        double sum = 0, mn = 1.0;
        for (size_t i = 0; i < n; i++) {
            const float *x = a + i * da, *y = b + i * da;
            double xy = 0, xx = 0, yy = 0;
            for (uint32_t j = 0; j < da; j++) {
                xy += (double)x[j] * y[j];
                xx += (double)x[j] * x[j];
                yy += (double)y[j] * y[j];
            }
            double c = xx > 0 && yy > 0 ? xy / (sqrt(xx) * sqrt(yy)) : (xx == yy ? 1.0 : 0.0);
            if (!(c >= mn)) mn = c; // NaN becomes the minimum
            sum += c;
        }
        out->cos_mean = sum / (double)n;
        out->cos_min = mn;
        out->count = (uint32_t)n;
    }
    free(a);
    free(b);
    return rc;
}

/* ---------------------------------------------------------------- rewrite */

int sc_rewrite_with_meta(const char *path, const struct sc_meta *extra, size_t n_extra) {
    struct sembed_file *f = NULL;
    struct sembed_writer *w = NULL;
    int rc = sembed_file_open(path, &f);
    if (rc) return sembed_fail(rc, FN, "%s: cannot reopen to add metadata (%s)", path, sembed_strerror(rc));
    if ((rc = sembed_writer_create(path, &w))) goto done;
    for (int64_t i = 0; i < sembed_file_n_kv(f) && rc == 0; i++) {
        const char *key = sembed_file_kv_key(f, i);
        bool replaced = false;
        for (size_t k = 0; k < n_extra; k++) replaced |= !strcmp(key, extra[k].key);
        if (!replaced) rc = sembed_writer_copy_kv(w, f, i);
    }
    for (size_t k = 0; k < n_extra && rc == 0; k++) rc = sc_meta_write(w, &extra[k]);
    if (rc == 0) rc = sembed_writer_copy_tensors(w, f);
    if (rc == 0) {
        rc = sembed_writer_finish(w);
        w = NULL;
    }
    if (rc) sembed_fail(rc, FN, "%s: cannot rewrite with the added metadata (%s)", path, sembed_strerror(rc));
done:
    sembed_writer_free(w);
    sembed_file_free(f);
    return rc;
}
