// .semb writer: metadata and tensor declarations first, then tensor bytes streamed in order,
// into a temporary file beside the destination; finish() patches checksums, fsyncs, renames.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "formats/log.h"
#include "formats/semb_internal.h"

struct wkv {
    char *key;
    uint8_t *val; // encoded: u32 type | value
    size_t val_len;
};

struct wtensor {
    char *name;
    uint32_t dtype, n_dims;
    int64_t dims[SEMBED_MAX_DIMS];
    uint64_t offset, nbytes;
    size_t checksum_pos; // where its checksum sits in the header buffer
};

struct sembed_writer {
    char *path, *tmp_path;
    int fd;
    struct wkv *kvs;
    size_t n_kv, cap_kv;
    struct wtensor *ts;
    size_t n_t, cap_t;
    int started, failed;
    uint8_t *header; // serialized [0, data_offset)
    uint64_t dir_end, data_offset, data_size;
    size_t cur;             // tensor being written
    uint64_t cur_written;   // bytes of it written so far
    uint64_t file_pos;      // bytes of the data region emitted
    XXH3_state_t *xxh;
    uint8_t *buf;           // write buffer
    size_t buf_len;
};

#define WBUF (1u << 20)

static int set_failed(struct sembed_writer *w, int rc) {
    w->failed = rc;
    return rc;
}

SEMBED_API int sembed_writer_create(const char *path, struct sembed_writer **out) {
    static const char *const FN = "sembed_writer_create";
    if (!out || !path || !*path) return SEMBED_EINVAL;
    *out = NULL;
    struct sembed_writer *w = calloc(1, sizeof *w);
    if (!w) return SEMBED_ENOMEM;
    w->fd = -1;
    w->path = strdup(path);
    if (!w->path || asprintf(&w->tmp_path, "%s.tmp-XXXXXX", path) < 0) {
        w->tmp_path = NULL;
        sembed_writer_free(w);
        return SEMBED_ENOMEM;
    }
    // The file is renamed over `path` at the end: never over a device, FIFO or directory.
    struct stat dst;
    if (stat(path, &dst) == 0 && !S_ISREG(dst.st_mode)) {
        sembed_writer_free(w);
        return sembed_fail(SEMBED_EINVAL, FN, "%s exists and is not a regular file: a model is written only to a "
                           "regular file (it is created beside it and renamed over it)", path);
    }
    w->fd = mkostemp(w->tmp_path, O_CLOEXEC);
    if (w->fd < 0) {
        int e = errno;
        free(w->tmp_path);
        w->tmp_path = NULL;
        sembed_writer_free(w);
        return sembed_fail(SEMBED_EIO, FN, "cannot create a temporary file beside %s: %s", path, strerror(e));
    }
    w->xxh = XXH3_createState();
    w->buf = malloc(WBUF);
    if (!w->xxh || !w->buf) {
        sembed_writer_free(w);
        return SEMBED_ENOMEM;
    }
    *out = w;
    return 0;
}

SEMBED_API void sembed_writer_free(struct sembed_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (w->tmp_path) unlink(w->tmp_path);
    for (size_t i = 0; i < w->n_kv; i++) { free(w->kvs[i].key); free(w->kvs[i].val); }
    for (size_t i = 0; i < w->n_t; i++) free(w->ts[i].name);
    free(w->kvs);
    free(w->ts);
    free(w->header);
    free(w->buf);
    if (w->xxh) XXH3_freeState(w->xxh);
    free(w->path);
    free(w->tmp_path);
    free(w);
}

static int check_open(struct sembed_writer *w, const char *fn) {
    if (!w) return SEMBED_EINVAL;
    if (w->failed) return w->failed;
    if (w->started) return sembed_fail(SEMBED_ESTATE, fn, "metadata and tensors must be added before tensor data is written");
    return 0;
}

// Add a kv whose encoded value (type + payload) is val[0..len); takes ownership of val.
static int add_kv(struct sembed_writer *w, const char *key, uint8_t *val, size_t len) {
    static const char *const FN = "sembed_writer_add";
    int rc = check_open(w, FN);
    if (rc) { free(val); return rc; }
    if (!key || !semb_key_valid(key, strlen(key))) {
        free(val);
        return sembed_fail(SEMBED_EINVAL, FN, "invalid metadata key '%s' (want [a-z0-9_.] with a dot)", key ? key : "(null)");
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kvs[i].key, key) == 0) {
            free(val);
            return sembed_fail(SEMBED_EDUPLICATE, FN, "metadata key '%s' added twice", key);
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        struct wkv *n = realloc(w->kvs, cap * sizeof *n);
        if (!n) { free(val); return SEMBED_ENOMEM; }
        w->kvs = n;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) { free(val); return SEMBED_ENOMEM; }
    w->kvs[w->n_kv++] = (struct wkv){k, val, len};
    return 0;
}

// Encode a string (u64 n | bytes | NUL) at p; returns bytes used (p may be NULL to measure).
static size_t enc_str(uint8_t *p, const char *s, size_t n) {
    if (p) {
        semb_wr64(p, n);
        memcpy(p + 8, s, n);
        p[8 + n] = 0;
    }
    return 9 + n;
}

static int check_str(const char *s, const char *key) {
    if (!s) return sembed_fail(SEMBED_EINVAL, "sembed_writer_add", "'%s': NULL string", key ? key : "");
    if (!semb_utf8_valid((const uint8_t *)s, strlen(s)))
        return sembed_fail(SEMBED_EUTF8, "sembed_writer_add", "'%s': value is not valid UTF-8", key ? key : "");
    return 0;
}

// Little-endian encoding of count scalars of type t (host is little-endian on every target we
// build for; the byte-order mark guards readers elsewhere).
static void enc_scalars(uint8_t *p, uint32_t t, const void *items, uint64_t count) {
    size_t sz = semb_type_size(t);
    memcpy(p, items, (size_t)(sz * count));
}

SEMBED_API int sembed_writer_add_scalar(struct sembed_writer *w, const char *key, enum sembed_type t, const void *value) {
    size_t sz = semb_type_size((uint32_t)t);
    if (!sz || !value) return sembed_fail(SEMBED_EINVAL, "sembed_writer_add", "'%s': not a scalar type", key ? key : "");
    if (t == SEMBED_TYPE_BOOL && *(const uint8_t *)value > 1) return SEMBED_EINVAL;
    uint8_t *v = malloc(4 + sz);
    if (!v) return SEMBED_ENOMEM;
    semb_wr32(v, (uint32_t)t);
    enc_scalars(v + 4, (uint32_t)t, value, 1);
    return add_kv(w, key, v, 4 + sz);
}

SEMBED_API int sembed_writer_add_u32(struct sembed_writer *w, const char *key, uint32_t v) { return sembed_writer_add_scalar(w, key, SEMBED_TYPE_U32, &v); }
SEMBED_API int sembed_writer_add_u64(struct sembed_writer *w, const char *key, uint64_t v) { return sembed_writer_add_scalar(w, key, SEMBED_TYPE_U64, &v); }
SEMBED_API int sembed_writer_add_i64(struct sembed_writer *w, const char *key, int64_t v) { return sembed_writer_add_scalar(w, key, SEMBED_TYPE_I64, &v); }
SEMBED_API int sembed_writer_add_f32(struct sembed_writer *w, const char *key, float v) { return sembed_writer_add_scalar(w, key, SEMBED_TYPE_F32, &v); }
SEMBED_API int sembed_writer_add_f64(struct sembed_writer *w, const char *key, double v) { return sembed_writer_add_scalar(w, key, SEMBED_TYPE_F64, &v); }
SEMBED_API int sembed_writer_add_bool(struct sembed_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return sembed_writer_add_scalar(w, key, SEMBED_TYPE_BOOL, &b);
}

SEMBED_API int sembed_writer_add_str(struct sembed_writer *w, const char *key, const char *s) {
    int rc = check_str(s, key);
    if (rc) return rc;
    size_t n = strlen(s);
    uint8_t *v = malloc(4 + enc_str(NULL, s, n));
    if (!v) return SEMBED_ENOMEM;
    semb_wr32(v, SEMBED_TYPE_STRING);
    return add_kv(w, key, v, 4 + enc_str(v + 4, s, n));
}

SEMBED_API int sembed_writer_add_arr(struct sembed_writer *w, const char *key, enum sembed_type elem, const void *items,
                                     uint64_t count) {
    size_t sz = semb_type_size((uint32_t)elem);
    if (!sz || (count && !items) || count > (SIZE_MAX - 16) / sz)
        return sembed_fail(SEMBED_EINVAL, "sembed_writer_add_arr", "'%s': invalid element type or count", key ? key : "");
    if (elem == SEMBED_TYPE_BOOL)
        for (uint64_t i = 0; i < count; i++)
            if (((const uint8_t *)items)[i] > 1) return SEMBED_EINVAL;
    size_t len = 16 + (size_t)(sz * count);
    uint8_t *v = malloc(len);
    if (!v) return SEMBED_ENOMEM;
    semb_wr32(v, SEMBED_TYPE_ARRAY);
    semb_wr32(v + 4, (uint32_t)elem);
    semb_wr64(v + 8, count);
    if (count) enc_scalars(v + 16, (uint32_t)elem, items, count);
    return add_kv(w, key, v, len);
}

SEMBED_API int sembed_writer_add_arr_str(struct sembed_writer *w, const char *key, const char *const *items, uint64_t count) {
    if (count && !items) return SEMBED_EINVAL;
    size_t len = 16;
    for (uint64_t i = 0; i < count; i++) {
        int rc = check_str(items[i], key);
        if (rc) return rc;
        len += enc_str(NULL, items[i], strlen(items[i]));
    }
    uint8_t *v = malloc(len);
    if (!v) return SEMBED_ENOMEM;
    semb_wr32(v, SEMBED_TYPE_ARRAY);
    semb_wr32(v + 4, SEMBED_TYPE_STRING);
    semb_wr64(v + 8, count);
    size_t pos = 16;
    for (uint64_t i = 0; i < count; i++) pos += enc_str(v + pos, items[i], strlen(items[i]));
    return add_kv(w, key, v, len);
}

SEMBED_API int sembed_writer_copy_kv(struct sembed_writer *w, const struct sembed_file *f, int64_t i) {
    const char *key = f ? sembed_file_kv_key(f, i) : NULL;
    if (!key) return sembed_fail(SEMBED_ENOTFOUND, "sembed_writer_copy_kv", "no metadata entry %lld", (long long)i);
    // The value's encoding is the same in both files: copy its bytes (the reader validated them).
    const enum sembed_type t = sembed_file_kv_type(f, i);
    const void *p = NULL;
    uint64_t nb = 0, count = 0;
    enum sembed_type elem = SEMBED_TYPE_COUNT;
    size_t head = 4;
    if (t == SEMBED_TYPE_STRING) {
        const char *str;
        if (sembed_file_get_str(f, key, &str, &nb)) return SEMBED_ETYPE;
        p = str;
        head += 8;
        nb += 1; // the NUL
    } else if (t == SEMBED_TYPE_ARRAY) {
        if (sembed_file_kv_array_info(f, i, &elem, &count) || sembed_file_kv_arr_bytes(f, i, &p, &nb)) return SEMBED_ETYPE;
        head += 12;
    } else {
        nb = semb_type_size((uint32_t)t);
        p = sembed_file_kv_data(f, i);
        if (!nb || !p) return SEMBED_ETYPE;
    }
    if (nb > SIZE_MAX - head) return SEMBED_ENOMEM;
    uint8_t *v = malloc(head + (size_t)nb);
    if (!v) return SEMBED_ENOMEM;
    semb_wr32(v, (uint32_t)t);
    if (t == SEMBED_TYPE_STRING) semb_wr64(v + 4, nb - 1);
    if (t == SEMBED_TYPE_ARRAY) {
        semb_wr32(v + 4, (uint32_t)elem);
        semb_wr64(v + 8, count);
    }
    if (nb) memcpy(v + head, p, (size_t)nb);
    return add_kv(w, key, v, head + (size_t)nb);
}

SEMBED_API int sembed_writer_copy_tensors(struct sembed_writer *w, const struct sembed_file *f) {
    if (!f) return sembed_fail(SEMBED_EINVAL, "sembed_writer_copy_tensors", "f is NULL");
    const int64_t nt = sembed_file_n_tensors(f);
    struct sembed_tensor t;
    int rc = 0;
    for (int64_t i = 0; i < nt && !rc; i++)
        if (!(rc = sembed_file_tensor(f, i, &t))) rc = sembed_writer_add_tensor(w, t.name, t.dtype, t.n_dims, t.dims);
    for (int64_t i = 0; i < nt && !rc; i++)
        if (!(rc = sembed_file_tensor(f, i, &t))) rc = sembed_writer_write(w, t.data, (size_t)t.nbytes);
    return rc;
}

SEMBED_API int sembed_writer_add_tensor(struct sembed_writer *w, const char *name, enum sembed_dtype dtype, uint32_t n_dims,
                                        const int64_t *dims) {
    static const char *const FN = "sembed_writer_add_tensor";
    int rc = check_open(w, FN);
    if (rc) return rc;
    size_t nlen = name ? strlen(name) : 0;
    if (nlen < 1 || nlen > SEMB_MAX_NAME || !semb_utf8_valid((const uint8_t *)name, nlen))
        return sembed_fail(SEMBED_EINVAL, FN, "invalid tensor name (want 1..255 bytes of UTF-8)");
    if ((unsigned)dtype >= SEMBED_DTYPE_COUNT) return sembed_fail(SEMBED_EDTYPE, FN, "tensor '%s': unknown dtype %d", name, (int)dtype);
    uint64_t nbytes = sembed_dtype_nbytes(dtype, n_dims, dims);
    if (!nbytes) return sembed_fail(SEMBED_EDIMS, FN, "tensor '%s': invalid shape", name);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->ts[i].name, name) == 0) return sembed_fail(SEMBED_EDUPLICATE, FN, "tensor '%s' added twice", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        struct wtensor *n = realloc(w->ts, cap * sizeof *n);
        if (!n) return SEMBED_ENOMEM;
        w->ts = n;
        w->cap_t = cap;
    }
    struct wtensor *t = &w->ts[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return SEMBED_ENOMEM;
    t->dtype = (uint32_t)dtype;
    t->n_dims = n_dims;
    for (uint32_t i = 0; i < n_dims; i++) t->dims[i] = dims[i];
    t->nbytes = nbytes;
    t->offset = w->data_size; // data_size accumulates the layout while declaring
    w->data_size = semb_align64(t->offset + nbytes);
    w->n_t++;
    return 0;
}

static int write_all(struct sembed_writer *w, const void *p, size_t n, const char *fn) {
    const uint8_t *b = p;
    while (n) {
        ssize_t k = write(w->fd, b, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return set_failed(w, sembed_fail(SEMBED_EIO, fn, "%s: write failed: %s", w->tmp_path, strerror(errno)));
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static int flush_buf(struct sembed_writer *w) {
    int rc = w->buf_len ? write_all(w, w->buf, w->buf_len, "sembed_writer_write") : 0;
    w->buf_len = 0;
    return rc;
}

static int emit(struct sembed_writer *w, const void *p, size_t n) {
    if (w->buf_len + n > WBUF) {
        int rc = flush_buf(w);
        if (rc) return rc;
        if (n >= WBUF) return write_all(w, p, n, "sembed_writer_write");
    }
    memcpy(w->buf + w->buf_len, p, n);
    w->buf_len += n;
    return 0;
}

static int emit_zeros(struct sembed_writer *w, size_t n) {
    static const uint8_t zeros[SEMBED_ALIGNMENT];
    while (n) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        int rc = emit(w, zeros, k);
        if (rc) return rc;
        n -= k;
    }
    return 0;
}

// Serialize header + directory (tensor checksums still zero) and write them.
static int begin_data(struct sembed_writer *w) {
    size_t len = SEMB_FIXED_HEADER;
    for (size_t i = 0; i < w->n_kv; i++) len += 9 + strlen(w->kvs[i].key) + w->kvs[i].val_len;
    for (size_t i = 0; i < w->n_t; i++) len += 9 + strlen(w->ts[i].name) + 8 + 8 * w->ts[i].n_dims + 24;
    w->dir_end = len;
    w->data_offset = semb_align64(len + 8);
    w->header = calloc(1, (size_t)w->data_offset);
    if (!w->header) return set_failed(w, SEMBED_ENOMEM);
    uint8_t *h = w->header;
    memcpy(h, SEMB_MAGIC, 4);
    semb_wr32(h + 4, SEMBED_FORMAT_VERSION);
    semb_wr32(h + 8, SEMB_BYTE_ORDER_MARK);
    semb_wr32(h + 12, 0);
    semb_wr64(h + 16, w->n_kv);
    semb_wr64(h + 24, w->n_t);
    semb_wr64(h + 32, w->dir_end);
    semb_wr64(h + 40, w->data_offset);
    semb_wr64(h + 48, w->data_size);
    size_t pos = SEMB_FIXED_HEADER;
    for (size_t i = 0; i < w->n_kv; i++) {
        pos += enc_str(h + pos, w->kvs[i].key, strlen(w->kvs[i].key));
        memcpy(h + pos, w->kvs[i].val, w->kvs[i].val_len);
        pos += w->kvs[i].val_len;
    }
    for (size_t i = 0; i < w->n_t; i++) {
        struct wtensor *t = &w->ts[i];
        pos += enc_str(h + pos, t->name, strlen(t->name));
        semb_wr32(h + pos, t->dtype);
        semb_wr32(h + pos + 4, t->n_dims);
        pos += 8;
        for (uint32_t d = 0; d < t->n_dims; d++, pos += 8) semb_wr64(h + pos, (uint64_t)t->dims[d]);
        semb_wr64(h + pos, t->offset);
        semb_wr64(h + pos + 8, t->nbytes);
        t->checksum_pos = pos + 16;
        pos += 24;
    }
    SEMBED_ASSERT(pos == w->dir_end);
    w->started = 1;
    XXH3_64bits_reset(w->xxh);
    return emit(w, h, (size_t)w->data_offset);
}

// Close the current tensor: store its checksum, pad to the next tensor's offset.
static int close_tensor(struct sembed_writer *w) {
    struct wtensor *t = &w->ts[w->cur];
    semb_wr64(w->header + t->checksum_pos, XXH3_64bits_digest(w->xxh));
    uint64_t end = t->offset + t->nbytes, next = semb_align64(end);
    int rc = emit_zeros(w, (size_t)(next - end));
    w->file_pos = next;
    w->cur++;
    w->cur_written = 0;
    XXH3_64bits_reset(w->xxh);
    return rc;
}

SEMBED_API int sembed_writer_write(struct sembed_writer *w, const void *data, size_t nbytes) {
    static const char *const FN = "sembed_writer_write";
    if (!w || (nbytes && !data)) return SEMBED_EINVAL;
    if (w->failed) return w->failed;
    int rc;
    if (!w->started && (rc = begin_data(w))) return rc;
    const uint8_t *p = data;
    while (nbytes) {
        if (w->cur >= w->n_t)
            return set_failed(w, sembed_fail(SEMBED_ESTATE, FN, "%zu bytes written past the last declared tensor", nbytes));
        struct wtensor *t = &w->ts[w->cur];
        uint64_t left = t->nbytes - w->cur_written;
        size_t k = nbytes < left ? nbytes : (size_t)left;
        XXH3_64bits_update(w->xxh, p, k);
        if ((rc = emit(w, p, k))) return rc;
        w->cur_written += k;
        p += k;
        nbytes -= k;
        if (w->cur_written == t->nbytes && (rc = close_tensor(w))) return rc;
    }
    return 0;
}

static int fsync_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return SEMBED_ENOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0) return SEMBED_EIO;
    int rc = fsync(fd) == 0 ? 0 : SEMBED_EIO;
    close(fd);
    return rc;
}

SEMBED_API int sembed_writer_finish(struct sembed_writer *w) {
    static const char *const FN = "sembed_writer_finish";
    if (!w) return SEMBED_EINVAL;
    int rc = w->failed;
    if (!rc && !w->started) rc = begin_data(w);
    if (!rc && w->cur < w->n_t)
        rc = sembed_fail(SEMBED_ESTATE, FN, "tensor '%s' got %llu of %llu bytes; %zu tensors incomplete", w->ts[w->cur].name,
                         (unsigned long long)w->cur_written, (unsigned long long)w->ts[w->cur].nbytes, w->n_t - w->cur);
    if (!rc) rc = flush_buf(w);
    if (!rc) {
        semb_wr64(w->header + w->dir_end, XXH3_64bits(w->header, (size_t)w->dir_end));
        size_t hl = (size_t)w->data_offset;
        if (pwrite(w->fd, w->header, hl, 0) != (ssize_t)hl)
            rc = sembed_fail(SEMBED_EIO, FN, "%s: header write failed: %s", w->tmp_path, strerror(errno));
    }
    if (!rc && fsync(w->fd) != 0) rc = sembed_fail(SEMBED_EIO, FN, "%s: fsync failed: %s", w->tmp_path, strerror(errno));
    if (!rc) {
        mode_t um = umask(0);
        umask(um);
        if (fchmod(w->fd, 0666 & ~um) != 0) rc = sembed_fail(SEMBED_EIO, FN, "%s: chmod failed", w->tmp_path);
    }
    if (!rc && close(w->fd) != 0) rc = sembed_fail(SEMBED_EIO, FN, "%s: close failed: %s", w->tmp_path, strerror(errno));
    if (!rc) w->fd = -1;
    if (!rc && rename(w->tmp_path, w->path) != 0)
        rc = sembed_fail(SEMBED_EIO, FN, "cannot rename %s to %s: %s", w->tmp_path, w->path, strerror(errno));
    if (!rc) {
        free(w->tmp_path);
        w->tmp_path = NULL; // nothing to unlink now
        if (fsync_dir(w->path) != 0) SEMBED_LOG_WARNF("could not fsync the folder of %s", w->path);
    }
    sembed_writer_free(w);
    return rc;
}
