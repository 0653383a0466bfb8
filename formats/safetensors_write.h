// formats/safetensors_write.h: write a .safetensors file (prefix sw_).
//
// Layout (safetensors spec, huggingface/safetensors README): u64 little-endian N, then N bytes of
// a JSON object {"name": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...,
// "__metadata__": {str: str}}, padded with spaces to a multiple of 8, then the tensor bytes;
// offsets are relative to the end of the header. Written to a temp file in the destination's
// folder, fsync'd and renamed: the destination is never half-written.
#ifndef SEMBED_FORMATS_SAFETENSORS_WRITE_H
#define SEMBED_FORMATS_SAFETENSORS_WRITE_H

#include <stddef.h>
#include <stdint.h>

struct sw_tensor {
    const char *name;
    const char *dtype;      // "F32", "F16", "BF16", "I32", ...
    int n_dims;             // 0..8
    const int64_t *dims;
    const void *data;       // nbytes bytes, little-endian
    size_t nbytes;
};

// meta: n_meta (key, value) string pairs for "__metadata__" (may be 0).
int sw_write(const char *path, const struct sw_tensor *t, size_t n, const char *const (*meta)[2], size_t n_meta);

// Write len bytes to path atomically (temp file + fsync + rename). Shared by exporters.
int sw_write_file_atomic(const char *path, const void *data, size_t len);

#endif
