/*
 * formats/safetensors.h: strict reader of the safetensors container (internal).
 *
 * Layout (https://github.com/huggingface/safetensors, README "Format"): u64 little-endian N, then
 * N bytes of UTF-8 JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 * ..., "__metadata__": {str: str}}, then the byte buffer; offsets are relative to the buffer.
 *
 * sf_parse() checks everything before any tensor is used: header length (8 <= N <= 100 MB and
 * within the file), JSON syntax and types, known dtype, shape dims >= 0 and product without
 * overflow, end - begin == numel * dtype size, begin <= end <= buffer length, no two tensors
 * overlapping, and no unindexed bytes (the spec forbids holes so that a file cannot carry hidden
 * content). Tensor data is borrowed from the caller's buffer (zero-copy); it is not aligned.
 *
 *     struct sf_file f;
 *     if (sf_parse(buf, len, "model.safetensors", &f) == 0) {
 *         for (size_t i = 0; i < f.n; i++) use(f.t[i].name, f.t[i].dtype, f.t[i].data);
 *         sf_free(&f);
 *     }
 */
#ifndef SEMBED_FORMATS_SAFETENSORS_H
#define SEMBED_FORMATS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define SF_MAX_HEADER (100u * 1024u * 1024u) /* the reference implementation's limit */
#define SF_MAX_DIMS 8

enum sf_dtype {
    SF_BOOL, SF_U8, SF_I8, SF_I16, SF_U16, SF_F16, SF_BF16, SF_I32, SF_U32, SF_F32, SF_F64,
    SF_I64, SF_U64, SF_F8_E4M3, SF_F8_E5M2,
    SF_DTYPE_COUNT
};

struct sf_tensor {
    char *name;          /* heap, NUL-terminated, valid UTF-8 */
    enum sf_dtype dtype;
    uint32_t n_dims;     /* 0 (scalar) .. SF_MAX_DIMS */
    int64_t dims[SF_MAX_DIMS];
    uint64_t nbytes;
    uint64_t offset;     /* from the start of the whole file */
    const void *data;    /* borrowed: buf + offset */
};

struct sf_file {
    struct sf_tensor *t; /* in header order */
    size_t n;
    uint64_t header_len; /* N */
};

/* "F32" -> SF_F32; -1 if unknown. */
int sf_dtype_from_name(const char *s);
const char *sf_dtype_name(enum sf_dtype d);
size_t sf_dtype_size(enum sf_dtype d);

/* Parse and validate buf[0, len). label names the file in error messages. On failure *out is
 * left empty (nothing to free). */
int sf_parse(const void *buf, size_t len, const char *label, struct sf_file *out);
/* Index of a tensor by name, or -1. */
long sf_find(const struct sf_file *f, const char *name);
void sf_free(struct sf_file *f);

#endif
