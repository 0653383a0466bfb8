// ONNX model files: bounded protobuf-c unpack, tensor data from raw_data / typed fields /
// external files. Field meanings follow onnx/onnx.proto (IR version 8) and
// onnx/docs/ExternalData.md (keys "location", "offset", "length", "checksum").
#define _GNU_SOURCE
#include "formats/onnx.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/checked.h"
#include "formats/log.h"

#define ARENA_ALIGN 16u
#define ARENA_SLACK ((size_t)64 << 20)

struct arena {
    unsigned char *base;
    size_t cap, used;
    bool exhausted;
};

static void *arena_alloc(void *ud, size_t size) {
    struct arena *a = ud;
    size_t start = (a->used + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1);
    if (start > a->cap || size > a->cap - start) { a->exhausted = true; return NULL; }
    a->used = start + size;
    return a->base + start;
}

// Everything is released at once with the arena.
static void arena_free(void *ud, void *p) { (void)ud; (void)p; }

size_t so_dtype_size(int32_t dtype) {
    switch (dtype) {
    case SO_FLOAT: case SO_INT32: case SO_UINT32: return 4;
    case SO_UINT8: case SO_INT8: case SO_BOOL: return 1;
    case SO_UINT16: case SO_INT16: case SO_FLOAT16: case SO_BFLOAT16: return 2;
    case SO_INT64: case SO_UINT64: case SO_DOUBLE: return 8;
    default: return 0;
    }
}

const char *so_dtype_name(int32_t dtype) {
    switch (dtype) {
    case SO_FLOAT: return "FLOAT"; case SO_UINT8: return "UINT8"; case SO_INT8: return "INT8";
    case SO_UINT16: return "UINT16"; case SO_INT16: return "INT16"; case SO_INT32: return "INT32";
    case SO_INT64: return "INT64"; case SO_STRING: return "STRING"; case SO_BOOL: return "BOOL";
    case SO_FLOAT16: return "FLOAT16"; case SO_DOUBLE: return "DOUBLE"; case SO_UINT32: return "UINT32";
    case SO_UINT64: return "UINT64"; case SO_BFLOAT16: return "BFLOAT16";
    default: return "unknown";
    }
}

static int unpack(const void *buf, size_t len, const char *label, const char *dir, struct so_onnx **out) {
    *out = NULL;
    struct so_onnx *m = calloc(1, sizeof *m);
    if (!m) return SEMBED_ENOMEM;
    m->label = strdup(label);
    m->dir = dir ? strdup(dir) : NULL;
    if (!m->label || (dir && !m->dir)) { so_onnx_free(m); return SEMBED_ENOMEM; }
    // Worst honest case is raw bytes copied once; message structs cost more per wire byte, which
    // only matters for hostile files, and those hit this cap instead of exhausting memory.
    size_t cap;
    if (!ck_madd_sz(len, 2, ARENA_SLACK, &cap)) cap = SIZE_MAX;  // mmap then fails: reported below
    void *base = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) { so_onnx_free(m); return sembed_fail(SEMBED_ENOMEM, "sembed_convert", "%s: cannot reserve %zu bytes to parse the model", label, cap); }
    m->arena = base;
    m->arena_cap = cap;
    struct arena a = {base, cap, 0, false};
    ProtobufCAllocator alloc = {arena_alloc, arena_free, &a};
    m->model = onnx__model_proto__unpack(&alloc, len, buf);
    if (!m->model) {
        int rc = a.exhausted ? SEMBED_ENOMEM : SEMBED_EPARSE;
        if (a.exhausted)
            sembed_fail(rc, "sembed_convert", "%s: parsing the ONNX protobuf needs more than %zu bytes (limit for a %zu-byte file): refusing", label, cap, len);
        else
            sembed_fail(rc, "sembed_convert", "%s: not a valid ONNX model (protobuf ModelProto does not parse: truncated or corrupt, %zu bytes)", label, len);
        so_onnx_free(m);
        return rc;
    }
    if (!m->model->graph) {
        so_onnx_free(m);
        return sembed_fail(SEMBED_EMISSING, "sembed_convert", "%s: ONNX model has no graph (ModelProto field 7)", label);
    }
    *out = m;
    return SEMBED_OK;
}

int so_onnx_open_memory(const void *buf, size_t len, const char *dir, const char *label, struct so_onnx **out) {
    SEMBED_ASSERT(out);
    if (!label) label = "<memory>";
    if (len > SO_ONNX_MAX_FILE)
        return sembed_fail(SEMBED_ETOOLONG, "sembed_convert", "%s: %zu bytes is over protobuf's 2 GiB limit", label, len);
    return unpack(buf, len, label, dir, out);
}

int so_onnx_open(const char *path, struct so_onnx **out) {
    SEMBED_ASSERT(path && out);
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sembed_fail(SEMBED_EIO, "sembed_convert", "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sembed_fail(SEMBED_EIO, "sembed_convert", "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > SO_ONNX_MAX_FILE) {
        close(fd);
        return sembed_fail(SEMBED_ETOOLONG, "sembed_convert", "%s: %lld bytes is over protobuf's 2 GiB limit (models this big keep weights as external data)", path, (long long)st.st_size);
    }
    if (st.st_size == 0) {
        close(fd);
        return sembed_fail(SEMBED_ETRUNCATED, "sembed_convert", "%s: empty file", path);
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return sembed_fail(SEMBED_EIO, "sembed_convert", "%s: mmap failed: %s", path, strerror(errno));
    char *dir = strdup(path);
    if (!dir) { munmap(map, len); return SEMBED_ENOMEM; }
    char *slash = strrchr(dir, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    int rc = unpack(map, len, path, dir, out);
    free(dir);
    munmap(map, len);
    return rc;
}

void so_onnx_take_arena(struct so_onnx *m, void **ptr, size_t *size) {
    *ptr = m->arena;
    *size = m->arena_cap;
    m->arena = NULL;
    m->arena_cap = 0;
}

void so_onnx_free(struct so_onnx *m) {
    if (!m) return;
    if (m->arena) munmap(m->arena, m->arena_cap);
    free(m->label);
    free(m->dir);
    free(m);
}

int so_tensor_info(const struct so_onnx *m, const Onnx__TensorProto *tp, struct so_tensor *t) {
    memset(t, 0, sizeof *t);
    const char *label = m ? m->label : "onnx";
    t->name = tp->name ? tp->name : "";
    t->dtype = tp->has_data_type ? tp->data_type : 0;
    if (tp->n_dims > SO_MAX_DIMS)
        return sembed_fail(SEMBED_EDIMS, "sembed_convert", "%s: tensor '%s' has %zu dims (at most %d supported)", label, t->name, tp->n_dims, SO_MAX_DIMS);
    t->n_dims = (uint32_t)tp->n_dims;
    uint64_t numel = 1;
    for (size_t i = 0; i < tp->n_dims; i++) {
        int64_t d = tp->dims[i];
        if (d < 0 || d > SO_MAX_DIM)
            return sembed_fail(SEMBED_EDIMS, "sembed_convert", "%s: tensor '%s' dim %zu is %lld (expected 0..2^40)", label, t->name, i, (long long)d);
        t->dims[i] = d;
        if (!ck_mul_u64(numel, (uint64_t)d, &numel) || numel > SO_MAX_TENSOR_BYTES)
            return sembed_fail(SEMBED_EDIMS, "sembed_convert", "%s: tensor '%s' has more than 2^36 elements", label, t->name);
    }
    t->numel = numel;
    t->elem_size = so_dtype_size(t->dtype);
    uint64_t nbytes;
    if (!ck_mul_u64(numel, t->elem_size, &nbytes) || nbytes > SO_MAX_TENSOR_BYTES)
        return sembed_fail(SEMBED_EDIMS, "sembed_convert", "%s: tensor '%s' is larger than 2^36 bytes", label, t->name);
    return SEMBED_OK;
}

static bool supported(int32_t dt) {
    return dt == SO_FLOAT || dt == SO_FLOAT16 || dt == SO_INT8 || dt == SO_UINT8 || dt == SO_INT32 || dt == SO_INT64;
}

// "offset"/"length" values: decimal digits only.
static int parse_u64(const char *s, uint64_t *v) {
    if (!s || !*s) return -1;
    uint64_t x = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        uint64_t d = (uint64_t)(*s - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 0;
}

// A location must name a file inside the model's folder: relative, no "..", no empty or
// absolute components, and (after resolving symlinks) still inside the folder.
static int external_path(const struct so_onnx *m, const char *name, const char *loc, char **out) {
    *out = NULL;
    if (!m->dir)
        return sembed_fail(SEMBED_EUNSAFE, "sembed_convert", "%s: tensor '%s' uses external data '%s', but the model was not read from a file", m->label, name, loc);
    if (!*loc || loc[0] == '/' || strlen(loc) > 1024)
        return sembed_fail(SEMBED_EUNSAFE, "sembed_convert", "%s: tensor '%s': external data location '%s' must be a relative path inside the model's folder", m->label, name, loc);
    for (const char *p = loc; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if ((n == 2 && p[0] == '.' && p[1] == '.') || n == 0 || strchr(loc, '\\'))
            return sembed_fail(SEMBED_EUNSAFE, "sembed_convert", "%s: tensor '%s': external data location '%s' leaves the model's folder (or is malformed): refused", m->label, name, loc);
        p += n + (e ? 1 : 0);
    }
    char *full = NULL;
    if (asprintf(&full, "%s/%s", m->dir, loc) < 0) return SEMBED_ENOMEM;
    char *rdir = realpath(m->dir, NULL), *rfull = realpath(full, NULL);
    int rc = SEMBED_OK;
    if (!rdir || !rfull) {
        rc = sembed_fail(SEMBED_EIO, "sembed_convert", "%s: tensor '%s': external data file '%s' not found: %s", m->label, name, full, strerror(errno));
    } else {
        size_t n = strlen(rdir);
        bool inside = strncmp(rfull, rdir, n) == 0 && (rfull[n] == '/' || (n == 1 && rdir[0] == '/'));
        if (!inside)
            rc = sembed_fail(SEMBED_EUNSAFE, "sembed_convert", "%s: tensor '%s': external data '%s' resolves to '%s', outside the model's folder '%s': refused", m->label, name, loc, rfull, rdir);
    }
    free(rdir);
    free(rfull);
    if (rc) { free(full); return rc; }
    *out = full;
    return SEMBED_OK;
}

static int read_external(const struct so_onnx *m, const Onnx__TensorProto *tp, struct so_tensor *t) {
    const char *loc = NULL, *off_s = NULL, *len_s = NULL;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e->key || !e->value) continue;
        if (!strcmp(e->key, "location")) loc = e->value;
        else if (!strcmp(e->key, "offset")) off_s = e->value;
        else if (!strcmp(e->key, "length")) len_s = e->value;
    }
    if (!loc)
        return sembed_fail(SEMBED_ECORRUPT, "sembed_convert", "%s: tensor '%s' says its data is external but has no 'location'", m->label, t->name);
    uint64_t off = 0, want = t->numel * t->elem_size, len = want;  // <= 2^36: so_tensor_info
    if ((off_s && parse_u64(off_s, &off)) || (len_s && parse_u64(len_s, &len)))
        return sembed_fail(SEMBED_ECORRUPT, "sembed_convert", "%s: tensor '%s': external offset '%s' / length '%s' are not decimal numbers", m->label, t->name, off_s ? off_s : "", len_s ? len_s : "");
    if (len != want)
        return sembed_fail(SEMBED_ECORRUPT, "sembed_convert", "%s: tensor '%s': external length %llu bytes, but %s dims imply %llu", m->label, t->name, (unsigned long long)len, so_dtype_name(t->dtype), (unsigned long long)want);
    char *full;
    int rc = external_path(m, t->name, loc, &full);
    if (rc) return rc;
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = sembed_fail(SEMBED_EIO, "sembed_convert", "%s: tensor '%s': cannot read external data file '%s'", m->label, t->name, full);
        goto done;
    }
    if (!ck_span_ok(off, want, (uint64_t)st.st_size)) {
        rc = sembed_fail(SEMBED_EBOUNDS, "sembed_convert", "%s: tensor '%s': external data [%llu, +%llu) is past the end of '%s' (%lld bytes)", m->label, t->name,
                         (unsigned long long)off, (unsigned long long)want, full, (long long)st.st_size);
        goto done;
    }
    if (want) {
        void *buf = aligned_alloc(64, (want + 63) & ~(uint64_t)63);
        if (!buf) { rc = SEMBED_ENOMEM; goto done; }
        size_t got = 0;
        while (got < want) {
            ssize_t r = pread(fd, (char *)buf + got, want - got, (off_t)(off + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
        }
        if (got != want) {
            free(buf);
            rc = sembed_fail(SEMBED_EIO, "sembed_convert", "%s: tensor '%s': short read from '%s'", m->label, t->name, full);
            goto done;
        }
        t->owned = buf;
        t->data = buf;
    }
done:
    if (fd >= 0) close(fd);
    free(full);
    return rc;
}

// INT8/UINT8/FLOAT16 in int32_data: one element per int32 (onnx.proto, TensorProto.int32_data).
static int narrow_int32(const struct so_onnx *m, const Onnx__TensorProto *tp, struct so_tensor *t) {
    int64_t lo, hi;
    switch (t->dtype) {
    case SO_INT8: lo = -128; hi = 127; break;
    case SO_UINT8: lo = 0; hi = 255; break;
    default: lo = 0; hi = 65535; break; /* FLOAT16 bits */
    }
    size_t nb;
    if (!ck_array_bytes(t->numel, t->elem_size, &nb)) return SEMBED_ENOMEM;
    void *buf = malloc(nb ? nb : 1);
    if (!buf) return SEMBED_ENOMEM;
    for (uint64_t i = 0; i < t->numel; i++) {
        int32_t v = tp->int32_data[i];
        if (v < lo || v > hi) {
            free(buf);
            return sembed_fail(SEMBED_ECORRUPT, "sembed_convert", "%s: tensor '%s': int32_data[%llu] = %d is out of range for %s", m->label, t->name, (unsigned long long)i, v, so_dtype_name(t->dtype));
        }
        if (t->elem_size == 1) ((uint8_t *)buf)[i] = (uint8_t)(v & 0xff);
        else ((uint16_t *)buf)[i] = (uint16_t)v;
    }
    t->owned = buf;
    t->data = buf;
    return SEMBED_OK;
}

int so_tensor_get(const struct so_onnx *m, const Onnx__TensorProto *tp, struct so_tensor *t) {
    int rc = so_tensor_info(m, tp, t);
    if (rc) return rc;
    const char *label = m ? m->label : "onnx";
    if (!tp->has_data_type || !supported(t->dtype))
        return sembed_fail(SEMBED_EDTYPE, "sembed_convert", "%s: tensor '%s' has data type %s (%d); supported: FLOAT, FLOAT16, INT8, UINT8, INT32, INT64", label, t->name,
                           so_dtype_name(t->dtype), (int)t->dtype);
    uint64_t want = t->numel * t->elem_size;  // <= 2^36: so_tensor_info
    bool external = tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    size_t typed = tp->n_float_data + tp->n_int32_data + tp->n_int64_data + tp->n_double_data;
    if (external) {
        if (tp->has_raw_data || typed)
            return sembed_fail(SEMBED_ECORRUPT, "sembed_convert", "%s: tensor '%s' has both external and inline data", label, t->name);
        rc = read_external(m, tp, t);
        if (rc) memset(t, 0, sizeof *t);
        return rc;
    }
    if (tp->has_raw_data) {
        if (typed)
            return sembed_fail(SEMBED_ECORRUPT, "sembed_convert", "%s: tensor '%s' has both raw_data and typed data", label, t->name);
        if (tp->raw_data.len != want)
            return sembed_fail(SEMBED_ECORRUPT, "sembed_convert", "%s: tensor '%s': raw_data is %zu bytes, but %s dims imply %llu", label, t->name, tp->raw_data.len,
                               so_dtype_name(t->dtype), (unsigned long long)want);
        t->data = want ? tp->raw_data.data : NULL;
        return SEMBED_OK;
    }
    size_t n = 0;
    const void *src = NULL;
    bool narrow = false;
    switch (t->dtype) {
    case SO_FLOAT: n = tp->n_float_data; src = tp->float_data; break;
    case SO_INT32: n = tp->n_int32_data; src = tp->int32_data; break;
    case SO_INT64: n = tp->n_int64_data; src = tp->int64_data; break;
    default: n = tp->n_int32_data; narrow = true; break;
    }
    if (n != t->numel || typed != n)
        return sembed_fail(SEMBED_ECORRUPT, "sembed_convert", "%s: tensor '%s' holds %zu typed values (of %zu in all fields), but its dims imply %llu %s values", label, t->name, n, typed,
                           (unsigned long long)t->numel, so_dtype_name(t->dtype));
    if (!n) return SEMBED_OK;
    if (narrow) {
        rc = narrow_int32(m, tp, t);
        if (rc) memset(t, 0, sizeof *t);
        return rc;
    }
    t->data = src;  // protobuf-c unpacks packed fields into host arrays (little-endian host assumed)
    return SEMBED_OK;
}

void so_tensor_release(struct so_tensor *t) {
    if (!t) return;
    free(t->owned);
    t->owned = NULL;
    t->data = NULL;
}

const Onnx__AttributeProto *so_node_attr(const Onnx__NodeProto *n, const char *name) {
    for (size_t i = 0; i < n->n_attribute; i++)
        if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
    return NULL;
}

int64_t so_attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt) {
    const Onnx__AttributeProto *a = so_node_attr(n, name);
    return a && a->has_i ? a->i : dflt;
}

float so_attr_float(const Onnx__NodeProto *n, const char *name, float dflt) {
    const Onnx__AttributeProto *a = so_node_attr(n, name);
    return a && a->has_f ? a->f : dflt;
}
