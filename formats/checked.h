// formats/checked.h: checked arithmetic for integers that come from untrusted bytes.
//
// Every size, count, offset, shape product and string length read from a file or a request
// (model files, tokenizer files, .npy headers, HTTP bodies) goes through one of these helpers
// before it is used to allocate, index or compare. Each returns true when the exact result fits
// the destination type and stores it in *out; on overflow it returns false and *out holds the
// wrapped value, which the caller must not use. Unsigned and signed overflow are both caught
// (GCC/clang __builtin_*_overflow: the result is computed in infinite precision, then checked).
//
//   size_t nb;
//   if (!ck_mul_sz(count, sizeof(float), &nb)) return sembed_fail(SEMBED_EDIMS, FN, "%s: count %zu overflows", label, count);
//   if (!ck_span_ok(off, len, file_len)) return sembed_fail(SEMBED_EBOUNDS, FN, "%s: [%llu, +%llu) past the end", ...);
//
// Shapes: ck_numel() multiplies dims that must each be >= 0 (negative dims are refused) and
// caps the product at a caller-chosen limit, so a product that fits int64 but is absurd for the
// format is refused in the same call.
#ifndef SEMBED_FORMATS_CHECKED_H
#define SEMBED_FORMATS_CHECKED_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool ck_add_sz(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool ck_mul_sz(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool ck_add_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool ck_mul_u64(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool ck_add_i64(int64_t a, int64_t b, int64_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool ck_sub_i64(int64_t a, int64_t b, int64_t *out) { return !__builtin_sub_overflow(a, b, out); }
static inline bool ck_mul_i64(int64_t a, int64_t b, int64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool ck_mul_int(int a, int b, int *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool ck_add_int(int a, int b, int *out) { return !__builtin_add_overflow(a, b, out); }

// a * b + c in size_t (array index or byte offset of a row-major element).
static inline bool ck_madd_sz(size_t a, size_t b, size_t c, size_t *out) {
    size_t t;
    return ck_mul_sz(a, b, &t) && ck_add_sz(t, c, out);
}

// count elements of elem bytes each, as a size_t byte count (allocation sizes).
static inline bool ck_array_bytes(uint64_t count, size_t elem, size_t *out) {
    uint64_t nb;
    if (!ck_mul_u64(count, (uint64_t)elem, &nb) || nb > (uint64_t)SIZE_MAX) return false;
    *out = (size_t)nb;
    return true;
}

// [off, off + len) lies inside a buffer of total bytes (no wrap-around).
static inline bool ck_span_ok(uint64_t off, uint64_t len, uint64_t total) { return off <= total && len <= total - off; }

// Product of n dims, each in [0, limit], the product at most limit. false on a negative dim, a
// dim or product over limit, or int64 overflow; *out is the product when true.
static inline bool ck_numel(const int64_t *dims, size_t n, uint64_t limit, uint64_t *out) {
    uint64_t p = 1;
    for (size_t i = 0; i < n; i++) {
        if (dims[i] < 0 || (uint64_t)dims[i] > limit) return false;
        if (!ck_mul_u64(p, (uint64_t)dims[i], &p) || p > limit) return false;
    }
    *out = p;
    return true;
}

// An int64 that must fit an int / uint32 field (head counts, vocab sizes, layer counts).
static inline bool ck_i64_to_int(int64_t v, int *out) {
    if (v < INT_MIN || v > INT_MAX) return false;
    *out = (int)v;
    return true;
}
static inline bool ck_i64_to_u32(int64_t v, uint32_t *out) {
    if (v < 0 || v > (int64_t)UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

#endif
