// formats/checked.h: each helper is exact up to its type's limit and reports overflow one past it.
#include <criterion/criterion.h>
#include <stdint.h>

#include "formats/checked.h"

Test(checked, size_and_u64_limits) {
    size_t z;
    uint64_t u;
    cr_expect(ck_add_sz(SIZE_MAX - 1, 1, &z) && z == SIZE_MAX, "SIZE_MAX-1 + 1: got %zu", z);
    cr_expect(!ck_add_sz(SIZE_MAX, 1, &z), "SIZE_MAX + 1 must overflow");
    cr_expect(ck_mul_sz(SIZE_MAX / 2, 2, &z) && z == SIZE_MAX - 1, "SIZE_MAX/2 * 2: got %zu", z);
    cr_expect(!ck_mul_sz(SIZE_MAX / 2 + 1, 2, &z), "(SIZE_MAX/2+1) * 2 must overflow");
    cr_expect(ck_mul_u64(UINT64_C(1) << 32, (UINT64_C(1) << 32) - 1, &u) && u == UINT64_MAX - UINT32_MAX, "2^32 * (2^32-1): got %llu",
              (unsigned long long)u);
    cr_expect(!ck_mul_u64(UINT64_C(1) << 32, UINT64_C(1) << 32, &u), "2^32 * 2^32 must overflow");
    cr_expect(!ck_add_u64(UINT64_MAX, 1, &u), "UINT64_MAX + 1 must overflow");
    cr_expect(ck_madd_sz(3, 5, 7, &z) && z == 22, "3*5+7: got %zu", z);
    cr_expect(!ck_madd_sz(SIZE_MAX / 2 + 1, 2, 0, &z) && !ck_madd_sz(SIZE_MAX, 1, 1, &z), "madd overflow in either step");
    cr_expect(ck_array_bytes(10, 4, &z) && z == 40, "10 x 4 bytes: got %zu", z);
    cr_expect(!ck_array_bytes(UINT64_MAX / 4 + 1, 4, &z), "count * elem past UINT64_MAX must fail");
}

Test(checked, signed_limits) {
    int64_t s;
    int i;
    cr_expect(!ck_mul_i64(2, INT64_C(1) << 62, &s), "2 * 2^62 (the issue 20 Reshape) must overflow int64");
    cr_expect(ck_mul_i64(-2, INT64_C(1) << 62, &s) && s == INT64_MIN, "-2 * 2^62 == INT64_MIN: got %lld", (long long)s);
    cr_expect(!ck_mul_i64(-1, INT64_MIN, &s), "-1 * INT64_MIN must overflow");
    cr_expect(!ck_add_i64(INT64_MAX, 1, &s) && !ck_sub_i64(INT64_MIN, 1, &s), "int64 add/sub overflow");
    cr_expect(ck_sub_i64(0, INT64_MAX, &s) && s == -INT64_MAX, "0 - INT64_MAX: got %lld", (long long)s);
    cr_expect(!ck_mul_int(1 << 30, 2, &i) && ck_mul_int(1 << 29, 2, &i) && i == 1 << 30, "int doubling at 2^30");
    cr_expect(!ck_add_int(INT32_MAX, 1, &i), "INT_MAX + 1 must overflow");
    uint32_t w;
    cr_expect(ck_i64_to_int(INT32_MAX, &i) && i == INT32_MAX && !ck_i64_to_int((int64_t)INT32_MAX + 1, &i) && !ck_i64_to_int((int64_t)INT32_MIN - 1, &i),
              "int range");
    cr_expect(ck_i64_to_u32(UINT32_MAX, &w) && w == UINT32_MAX && !ck_i64_to_u32((int64_t)UINT32_MAX + 1, &w) && !ck_i64_to_u32(-1, &w), "u32 range");
}

Test(checked, spans_and_shapes) {
    cr_expect(ck_span_ok(0, 10, 10) && ck_span_ok(10, 0, 10) && ck_span_ok(4, 6, 10), "spans ending at the end are inside");
    cr_expect(!ck_span_ok(4, 7, 10) && !ck_span_ok(11, 0, 10), "spans past the end are outside");
    cr_expect(!ck_span_ok(UINT64_MAX, 2, UINT64_MAX) && !ck_span_ok(2, UINT64_MAX, UINT64_MAX), "off + len wrapping around is outside");
    uint64_t n = 0;
    const int64_t ok[3] = {2, 3, 4}, zero[2] = {0, INT64_C(1) << 40}, neg[2] = {3, -1}, big[4] = {65536, 65536, 65536, 65536};
    cr_expect(ck_numel(ok, 3, 1000, &n) && n == 24, "2*3*4: got %llu", (unsigned long long)n);
    cr_expect(ck_numel(ok, 0, 1000, &n) && n == 1, "a scalar has one element: got %llu", (unsigned long long)n);
    cr_expect(!ck_numel(ok, 3, 23, &n), "24 over a limit of 23 must fail");
    cr_expect(ck_numel(zero, 2, INT64_C(1) << 40, &n) && n == 0, "a zero dim gives 0 elements");
    cr_expect(!ck_numel(neg, 2, 1000, &n), "a negative dim must fail");
    cr_expect(!ck_numel(big, 4, UINT64_MAX, &n), "65536^4 = 2^64 must fail, not wrap to 0 (the torch view of issue 20's audit)");
}
