// safetensors writer (format facts: huggingface/safetensors README, "Format").
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/log.h"
#include "formats/safetensors_write.h"

struct afile {
    char *tmp;
    int fd;
};

static int afile_open(const char *path, struct afile *a) {
    a->tmp = malloc(strlen(path) + 16);
    if (!a->tmp) return SEMBED_ENOMEM;
    sprintf(a->tmp, "%s.tmp.XXXXXX", path);
    a->fd = mkstemp(a->tmp);
    if (a->fd < 0) {
        int e = errno;
        free(a->tmp);
        return sembed_fail(SEMBED_EIO, "sw_write", "cannot create a temporary file next to '%s': %s", path, strerror(e));
    }
    return 0;
}

static int afile_write(struct afile *a, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(a->fd, c, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return sembed_fail(SEMBED_EIO, "sw_write", "write to '%s' failed: %s", a->tmp, strerror(errno));
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int afile_finish(struct afile *a, const char *path, int rc) {
    if (!rc && fchmod(a->fd, 0644) != 0) rc = SEMBED_EIO;
    if (!rc && fsync(a->fd) != 0) rc = sembed_fail(SEMBED_EIO, "sw_write", "fsync '%s': %s", a->tmp, strerror(errno));
    if (close(a->fd) != 0 && !rc) rc = SEMBED_EIO;
    if (!rc && rename(a->tmp, path) != 0) rc = sembed_fail(SEMBED_EIO, "sw_write", "rename onto '%s': %s", path, strerror(errno));
    if (rc) unlink(a->tmp);
    free(a->tmp);
    return rc;
}

int sw_write_file_atomic(const char *path, const void *data, size_t len) {
    struct afile a;
    int rc = afile_open(path, &a);
    if (rc) return rc;
    return afile_finish(&a, path, afile_write(&a, data, len));
}

int sw_write(const char *path, const struct sw_tensor *t, size_t n, const char *const (*meta)[2], size_t n_meta) {
    struct json_object *root = json_object_new_object();
    if (!root) return SEMBED_ENOMEM;
    int rc = 0;
    if (n_meta) {
        struct json_object *m = json_object_new_object();
        for (size_t i = 0; i < n_meta; i++) json_object_object_add(m, meta[i][0], json_object_new_string(meta[i][1]));
        json_object_object_add(root, "__metadata__", m);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i].n_dims < 0 || t[i].n_dims > 8 || !t[i].name || !*t[i].name || !strcmp(t[i].name, "__metadata__")) {
            rc = sembed_fail(SEMBED_EINVAL, "sw_write", "tensor %zu: bad name or rank", i);
            break;
        }
        if (json_object_object_get_ex(root, t[i].name, NULL)) {
            rc = sembed_fail(SEMBED_EDUPLICATE, "sw_write", "duplicate tensor name '%s'", t[i].name);
            break;
        }
        struct json_object *e = json_object_new_object(), *shape = json_object_new_array(), *offs = json_object_new_array();
        json_object_object_add(e, "dtype", json_object_new_string(t[i].dtype));
        for (int d = 0; d < t[i].n_dims; d++) json_object_array_add(shape, json_object_new_int64(t[i].dims[d]));
        json_object_object_add(e, "shape", shape);
        json_object_array_add(offs, json_object_new_int64((int64_t)off));
        json_object_array_add(offs, json_object_new_int64((int64_t)(off + t[i].nbytes)));
        json_object_object_add(e, "data_offsets", offs);
        json_object_object_add(root, t[i].name, e);
        off += t[i].nbytes;
    }
    if (rc) { json_object_put(root); return rc; }
    const char *js = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t jl = strlen(js), padded = (jl + 7) & ~(size_t)7;
    char *hdr = malloc(8 + padded);
    if (!hdr) { json_object_put(root); return SEMBED_ENOMEM; }
    uint64_t n64 = padded;
    for (int b = 0; b < 8; b++) hdr[b] = (char)(n64 >> (8 * b));
    memcpy(hdr + 8, js, jl);
    memset(hdr + 8 + jl, ' ', padded - jl);
    json_object_put(root);
    struct afile a;
    rc = afile_open(path, &a);
    if (rc) { free(hdr); return rc; }
    rc = afile_write(&a, hdr, 8 + padded);
    free(hdr);
    for (size_t i = 0; i < n && !rc; i++) rc = afile_write(&a, t[i].data, t[i].nbytes);
    return afile_finish(&a, path, rc);
}
