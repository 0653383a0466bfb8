// Type and dtype tables shared by the .semb reader and writer (docs/format.md).
#include <utf8proc.h>

#include "formats/checked.h"
#include "formats/semb_internal.h"

static const char *const type_names[SEMBED_TYPE_COUNT] = {"u8", "i8", "u16", "i16", "u32", "i32", "u64",
                                                          "i64", "f32", "f64", "bool", "string", "array"};
static const char *const dtype_names[SEMBED_DTYPE_COUNT] = {"f32", "f16", "bf16", "i32", "i8", "q8_row"};

SEMBED_API const char *sembed_type_name(enum sembed_type t) {
    return (unsigned)t < SEMBED_TYPE_COUNT ? type_names[t] : "?";
}

SEMBED_API const char *sembed_dtype_name(enum sembed_dtype t) {
    return (unsigned)t < SEMBED_DTYPE_COUNT ? dtype_names[t] : "?";
}

SEMBED_API int sembed_dtype_from_name(const char *name) {
    for (int i = 0; name && i < SEMBED_DTYPE_COUNT; i++)
        if (strcmp(name, dtype_names[i]) == 0) return i;
    return -1;
}

size_t semb_type_size(uint32_t t) {
    switch (t) {
    case SEMBED_TYPE_U8: case SEMBED_TYPE_I8: case SEMBED_TYPE_BOOL: return 1;
    case SEMBED_TYPE_U16: case SEMBED_TYPE_I16: return 2;
    case SEMBED_TYPE_U32: case SEMBED_TYPE_I32: case SEMBED_TYPE_F32: return 4;
    case SEMBED_TYPE_U64: case SEMBED_TYPE_I64: case SEMBED_TYPE_F64: return 8;
    default: return 0;
    }
}

SEMBED_API uint64_t sembed_dtype_nbytes(enum sembed_dtype t, uint32_t n_dims, const int64_t *dims) {
    if (n_dims < 1 || n_dims > SEMBED_MAX_DIMS || !dims) return 0;
    uint64_t n = 1;
    for (uint32_t i = 0; i < n_dims; i++) {
        if (dims[i] < 1 || (uint64_t)dims[i] > SEMB_MAX_DIM) return 0;
        if (!ck_mul_u64(n, (uint64_t)dims[i], &n)) return 0;
    }
    if (n > (1ull << 56)) return 0; // keeps every byte count below comfortably representable
    switch (t) {
    case SEMBED_DTYPE_F32: case SEMBED_DTYPE_I32: return 4 * n;
    case SEMBED_DTYPE_F16: case SEMBED_DTYPE_BF16: return 2 * n;
    case SEMBED_DTYPE_I8: return n;
    case SEMBED_DTYPE_Q8_ROW: {
        uint64_t cols = (uint64_t)dims[n_dims - 1], rows = n / cols;
        return semb_align64(n) + 4 * rows;
    }
    default: return 0;
    }
}

int semb_key_valid(const char *key, size_t len) {
    if (len < 1 || len > SEMB_MAX_NAME) return 0;
    int dot = 0;
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        if (c == '.') dot = 1;
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return dot && key[0] != '.' && key[len - 1] != '.';
}

int semb_utf8_valid(const uint8_t *s, size_t n) {
    // Fast path: one branch-free pass (vectorizable) tells whether the string is pure ASCII and
    // NUL-free, which is nearly every vocabulary entry and key.
    uint8_t hi = 0, zero = 0;
    for (size_t i = 0; i < n; i++) {
        hi |= s[i];
        zero |= (uint8_t)(s[i] == 0);
    }
    if (zero) return 0;
    if (!(hi & 0x80)) return 1;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0 || cp < 0) return 0;
        i += (size_t)k;
    }
    return 1;
}
