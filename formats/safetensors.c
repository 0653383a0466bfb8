// Strict safetensors reader (formats/safetensors.h).
#define _POSIX_C_SOURCE 200809L
#include "formats/safetensors.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "formats/jsonx.h"
#include "formats/checked.h"
#include "formats/log.h"
#include "sembed/common.h"

static const struct {
    const char *name;
    size_t size;
} g_dtypes[SF_DTYPE_COUNT] = {
    [SF_BOOL] = {"BOOL", 1}, [SF_U8] = {"U8", 1},     [SF_I8] = {"I8", 1},
    [SF_I16] = {"I16", 2},   [SF_U16] = {"U16", 2},   [SF_F16] = {"F16", 2},
    [SF_BF16] = {"BF16", 2}, [SF_I32] = {"I32", 4},   [SF_U32] = {"U32", 4},
    [SF_F32] = {"F32", 4},   [SF_F64] = {"F64", 8},   [SF_I64] = {"I64", 8},
    [SF_U64] = {"U64", 8},   [SF_F8_E4M3] = {"F8_E4M3", 1}, [SF_F8_E5M2] = {"F8_E5M2", 1},
};

int sf_dtype_from_name(const char *s) {
    for (int i = 0; i < SF_DTYPE_COUNT; i++)
        if (!strcmp(s, g_dtypes[i].name)) return i;
    return -1;
}
const char *sf_dtype_name(enum sf_dtype d) { return (unsigned)d < SF_DTYPE_COUNT ? g_dtypes[d].name : "?"; }
size_t sf_dtype_size(enum sf_dtype d) { return (unsigned)d < SF_DTYPE_COUNT ? g_dtypes[d].size : 0; }

void sf_free(struct sf_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    memset(f, 0, sizeof *f);
}

long sf_find(const struct sf_file *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return (long)i;
    return -1;
}

static uint64_t rd_u64le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

#define FAIL(code, ...) do { rc = sembed_fail(code, "sembed_convert", __VA_ARGS__); goto fail; } while (0)

// One header entry -> t (name already set). data_len = bytes after the header.
static int parse_entry(struct json_object *v, const char *label, uint64_t data_len, uint64_t data_start,
                       struct sf_tensor *t) {
    int rc = SEMBED_OK;
    const char *name = t->name;
    if (!json_object_is_type(v, json_type_object))
        FAIL(SEMBED_EPARSE, "%s: tensor '%s': entry is not an object", label, name);
    if (json_object_object_length(v) != 3)
        FAIL(SEMBED_EPARSE, "%s: tensor '%s': entry has %d members (expected dtype, shape, data_offsets)", label,
             name, json_object_object_length(v));
    const char *dt = NULL;
    if (sj_get_str(v, "dtype", &dt) != 0) FAIL(SEMBED_EPARSE, "%s: tensor '%s': missing string 'dtype'", label, name);
    int d = sf_dtype_from_name(dt);
    if (d < 0) FAIL(SEMBED_EDTYPE, "%s: tensor '%s': unknown dtype \"%s\"", label, name, dt);
    t->dtype = (enum sf_dtype)d;
    struct json_object *shape = sj_get(v, "shape"), *offs = sj_get(v, "data_offsets");
    if (!shape || !json_object_is_type(shape, json_type_array))
        FAIL(SEMBED_EPARSE, "%s: tensor '%s': missing array 'shape'", label, name);
    if (!offs || !json_object_is_type(offs, json_type_array) || json_object_array_length(offs) != 2)
        FAIL(SEMBED_EPARSE, "%s: tensor '%s': 'data_offsets' must be [begin, end]", label, name);
    size_t nd = json_object_array_length(shape);
    if (nd > SF_MAX_DIMS) FAIL(SEMBED_EDIMS, "%s: tensor '%s': %zu dims (at most %d)", label, name, nd, SF_MAX_DIMS);
    t->n_dims = (uint32_t)nd;
    // numel * size must fit in the data region, which itself fits in size_t: bound as we go.
    uint64_t bytes = g_dtypes[d].size;
    for (size_t i = 0; i < nd; i++) {
        struct json_object *e = json_object_array_get_idx(shape, i);
        if (!e || !json_object_is_type(e, json_type_int) || json_object_get_int64(e) < 0)
            FAIL(SEMBED_EDIMS, "%s: tensor '%s': dim %zu is not a non-negative integer", label, name, i);
        int64_t dim = json_object_get_int64(e);
        if (dim > (int64_t)data_len + 1)
            FAIL(SEMBED_EDIMS, "%s: tensor '%s': dim %zu = %lld exceeds the data size", label, name, i, (long long)dim);
        t->dims[i] = dim;
        if (!ck_mul_u64(bytes, (uint64_t)dim, &bytes))
            FAIL(SEMBED_EDIMS, "%s: tensor '%s': shape overflows", label, name);
    }
    uint64_t be[2];
    for (int i = 0; i < 2; i++) {
        struct json_object *e = json_object_array_get_idx(offs, (size_t)i);
        if (!e || !json_object_is_type(e, json_type_int) || json_object_get_int64(e) < 0)
            FAIL(SEMBED_EBOUNDS, "%s: tensor '%s': data_offsets[%d] is not a non-negative integer", label, name, i);
        be[i] = (uint64_t)json_object_get_int64(e);
    }
    if (be[0] > be[1] || be[1] > data_len)
        FAIL(SEMBED_EBOUNDS, "%s: tensor '%s': data_offsets [%llu, %llu] outside the %llu-byte data region", label,
             name, (unsigned long long)be[0], (unsigned long long)be[1], (unsigned long long)data_len);
    if (be[1] - be[0] != bytes)
        FAIL(SEMBED_EDIMS, "%s: tensor '%s': %s shape needs %llu bytes but data_offsets span %llu", label, name, dt,
             (unsigned long long)bytes, (unsigned long long)(be[1] - be[0]));
    t->nbytes = bytes;
    t->offset = data_start + be[0];
    return SEMBED_OK;
fail:
    return rc;
}

static int cmp_offset(const void *a, const void *b) {
    const struct sf_tensor *x = *(const struct sf_tensor *const *)a, *y = *(const struct sf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

int sf_parse(const void *buf, size_t len, const char *label, struct sf_file *out) {
    const unsigned char *p = buf;
    int rc = SEMBED_OK;
    struct json_object *root = NULL;
    struct sf_tensor **order = NULL;
    struct sf_file f = {0};
    memset(out, 0, sizeof *out);
    if (len < 8) FAIL(SEMBED_ETRUNCATED, "%s: %zu bytes, too short for a safetensors header", label, len);
    uint64_t n = rd_u64le(p);
    if (n < 2 || n > SF_MAX_HEADER)
        FAIL(SEMBED_ETOOLONG, "%s: header length %llu outside [2, %u]", label, (unsigned long long)n, SF_MAX_HEADER);
    if (n > len - 8)
        FAIL(SEMBED_ETRUNCATED, "%s: header length %llu but only %zu bytes follow", label, (unsigned long long)n, len - 8);
    if (p[8] != '{') FAIL(SEMBED_EPARSE, "%s: header does not start with '{'", label);
    rc = sj_parse((const char *)p + 8, (size_t)n, label, &root);
    if (rc) goto fail;
    if (!json_object_is_type(root, json_type_object)) FAIL(SEMBED_EPARSE, "%s: header is not a JSON object", label);
    uint64_t data_start = 8 + n, data_len = len - data_start;
    size_t cap = (size_t)json_object_object_length(root);
    f.t = calloc(cap ? cap : 1, sizeof *f.t);
    if (!f.t) FAIL(SEMBED_ENOMEM, "%s: out of memory", label);
    f.header_len = n;
    json_object_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_object_is_type(val, json_type_object))
                FAIL(SEMBED_EPARSE, "%s: __metadata__ is not an object", label);
            json_object_object_foreach(val, mk, mv) {
                if (!json_object_is_type(mv, json_type_string))
                    FAIL(SEMBED_EPARSE, "%s: __metadata__[\"%s\"] is not a string", label, mk);
            }
            continue;
        }
        if (!*key) FAIL(SEMBED_EPARSE, "%s: empty tensor name", label);
        struct sf_tensor *t = &f.t[f.n];
        t->name = strdup(key);
        if (!t->name) FAIL(SEMBED_ENOMEM, "%s: out of memory", label);
        f.n++;
        rc = parse_entry(val, label, data_len, data_start, t);
        if (rc) goto fail;
        t->data = p + t->offset;
    }
    // No overlap and no holes: sorted by offset, every tensor starts where the previous ended and
    // the last ends at the end of the file. Zero-byte tensors may sit anywhere in the covered range.
    order = malloc((f.n ? f.n : 1) * sizeof *order);
    if (!order) FAIL(SEMBED_ENOMEM, "%s: out of memory", label);
    for (size_t i = 0; i < f.n; i++) order[i] = &f.t[i];
    qsort(order, f.n, sizeof *order, cmp_offset);
    uint64_t pos = data_start;
    for (size_t i = 0; i < f.n; i++) {
        const struct sf_tensor *t = order[i];
        if (t->nbytes == 0) {
            if (t->offset > pos) FAIL(SEMBED_EBOUNDS, "%s: empty tensor '%s' points past the previous data", label, t->name);
            continue;
        }
        if (t->offset < pos)
            FAIL(SEMBED_EOVERLAP, "%s: tensor '%s' [%llu, %llu) overlaps the tensor before it (which ends at %llu)",
                 label, t->name, (unsigned long long)(t->offset - data_start),
                 (unsigned long long)(t->offset - data_start + t->nbytes), (unsigned long long)(pos - data_start));
        if (t->offset > pos)
            FAIL(SEMBED_ECORRUPT, "%s: %llu unindexed bytes before tensor '%s' at data offset %llu", label,
                 (unsigned long long)(t->offset - pos), t->name, (unsigned long long)(pos - data_start));
        pos = t->offset + t->nbytes;
    }
    if (pos != len)
        FAIL(SEMBED_ECORRUPT, "%s: %llu unindexed bytes after the last tensor (data region is %llu bytes)", label,
             (unsigned long long)(len - pos), (unsigned long long)data_len);
    free(order);
    json_object_put(root);
    *out = f;
    return SEMBED_OK;
fail:
    free(order);
    if (root) json_object_put(root);
    sf_free(&f);
    return rc;
}
