// AVX512-VNNI int8 GEMM: VPDPBUSD multiplies u8 activations (s8 ^ 0x80, i.e. q + 128) by s8
// weights, 4 products per int32 lane, no saturation. The +128 shift is undone exactly with the
// precomputed wcomp[j] = 128 * sum_p W[j, p].
//
// Register tile 8 rows x 48 columns (3 zmm): 24 accumulators + 3 weight vectors + 1 broadcast
// = 28 of 32 zmm. Per 4-k group: 3 weight loads and 8 broadcast loads feed 24 VPDPBUSD, i.e. 12
// cycles at Zen 5's two per cycle against ~6 cycles of loads; 24 independent chains cover the
// instruction's latency. 8 rows also divide the usual token counts (16, 32, 1024...) exactly.
//
// Blocking (docs/kernels.md): int32 sums are exact, so k may be split freely. Rows go in blocks
// of MC (the activation block, MC x kpad bytes, stays in L2 across all column tiles); for each
// 48-column tile, k goes in chunks of KC bytes so the tile's weights (48 x KC bytes) stay in L1
// while every 8-row tile of the block runs over them; partial sums of the block wait in an int32
// buffer (MC x 48) between chunks. With kpad <= KC there is one chunk and no buffer traffic.
#define SK_VL 16
#include "runtime/kernels/kernels_simd.h"

#define VN_MR 8
#define VN_NV 3
#define VN_NR (VN_NV * 16)
#define VN_KC 512  // bytes of k per chunk: 48 x 512 = 24 KiB of weights in L1
// Software prefetch distance along each weight stream (bytes, to L1). At m = 16-32 the weights
// come from DRAM once per call and the first 8-row tile of each chunk waits for them: prefetching
// 2 KiB ahead took bert-base int8 1 x 16 from 4.75 to 3.8 ms (median of 3, 2 threads; 1 KiB:
// 4.1 ms; 8 KiB into L2: 4.3 ms). In L1-resident passes the prefetches are cheap hits.
// 0 disables (compile with -DVN_PF=0 to compare).
#ifndef VN_PF
#define VN_PF 2048
#endif
#define VN_MC 128  // rows per block: the int32 buffer is 128 x 48 x 4 = 24 KiB

// acc[MR][NV] over groups [g0, g1) of 4 k; `first`: start from zero, else from t (ld VN_NR).
// Results go to t (int32, ld VN_NR); `last` subtracts the u8 compensation.
static inline __attribute__((always_inline)) void ukr_vnni(const int MR, const int NV, int g0, int g1, const uint8_t *aq,
                                                           size_t lda, const int8_t *const *bp, const int32_t *comp,
                                                           int32_t *t, bool first, bool last) {
    __m512i acc[VN_MR][VN_NV];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++)
#pragma GCC unroll 3
        for (int v = 0; v < NV; v++)
            acc[r][v] = first ? _mm512_setzero_si512() : _mm512_load_si512((const void *)(t + r * VN_NR + 16 * v));
    const uint8_t *a0 = aq + 4 * (size_t)g0;
    const int8_t *b0 = bp[0] + 64 * (size_t)g0, *b1 = bp[NV > 1 ? 1 : 0] + 64 * (size_t)g0,
                 *b2 = bp[NV > 2 ? 2 : 0] + 64 * (size_t)g0;
    for (int g = g0; g < g1; g++) {
        __m512i b[VN_NV];
        b[0] = _mm512_load_si512((const void *)b0);
        if (NV > 1) b[1] = _mm512_load_si512((const void *)b1);
        if (NV > 2) b[2] = _mm512_load_si512((const void *)b2);
        if (VN_PF) {
            _mm_prefetch((const char *)b0 + VN_PF, _MM_HINT_T0);
            if (NV > 1) _mm_prefetch((const char *)b1 + VN_PF, _MM_HINT_T0);
            if (NV > 2) _mm_prefetch((const char *)b2 + VN_PF, _MM_HINT_T0);
        }
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            int32_t a4;
            memcpy(&a4, a0 + (size_t)r * lda, 4);
            __m512i av = _mm512_set1_epi32(a4);
#pragma GCC unroll 3
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, b[v]);
        }
        a0 += 4; b0 += 64; b1 += 64; b2 += 64;
    }
#pragma GCC unroll 3
    for (int v = 0; v < NV; v++) {
        __m512i cv = last ? _mm512_load_si512((const void *)(comp + 16 * v)) : _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++)
            _mm512_store_si512((void *)(t + r * VN_NR + 16 * v), _mm512_sub_epi32(acc[r][v], cv));
    }
}

#define VN_FN(MR_, NV_)                                                                                              \
    static void ukr_##MR_##_##NV_(int g0, int g1, const uint8_t *aq, size_t lda, const int8_t *const *bp,           \
                                  const int32_t *comp, int32_t *t, bool first, bool last) {                        \
        ukr_vnni(MR_, NV_, g0, g1, aq, lda, bp, comp, t, first, last);                                              \
    }
#define VN_FN3(MR_) VN_FN(MR_, 1) VN_FN(MR_, 2) VN_FN(MR_, 3)
VN_FN3(1) VN_FN3(2) VN_FN3(3) VN_FN3(4) VN_FN3(5) VN_FN3(6) VN_FN3(7) VN_FN3(8)

typedef void (*ukr_fn)(int, int, const uint8_t *, size_t, const int8_t *const *, const int32_t *, int32_t *, bool, bool);
#define VN_ROW(MR_) {ukr_##MR_##_1, ukr_##MR_##_2, ukr_##MR_##_3}
static const ukr_fn UKR[VN_MR][VN_NV] = {VN_ROW(1), VN_ROW(2), VN_ROW(3), VN_ROW(4),
                                         VN_ROW(5), VN_ROW(6), VN_ROW(7), VN_ROW(8)};

static void q8_panels_avx512vnni(int m, int kpad, int j0, int j1, int n, const uint8_t *aq, size_t lda,
                                 const int8_t *wq, const int32_t *wcomp, float *c, size_t ldc, const struct sk_epi *epi) {
    (void)n;
    // One chunk: accumulate a whole 8 x 48 tile in registers, epilogue from a small buffer.
    // Several chunks: the block's partial sums live in buf between chunks.
    const int G = kpad / 4, GC = VN_KC / 4, chunks = (G + GC - 1) / GC;
    int32_t buf[VN_MC * VN_NR] __attribute__((aligned(64)));
    int32_t comp[VN_NR] __attribute__((aligned(64)));
    for (int i0 = 0; i0 < m; i0 += VN_MC) {
        int mc = m - i0 < VN_MC ? m - i0 : VN_MC;
        for (int c0 = j0; c0 < j1; c0 += VN_NR) {
            int nc = j1 - c0 < VN_NR ? j1 - c0 : VN_NR;
            int nv = (nc + 15) / 16;
            const int8_t *bp[VN_NV];
            for (int v = 0; v < VN_NV; v++) bp[v] = wq + (size_t)(c0 / 16 + (v < nv ? v : 0)) * (size_t)kpad * 16;
            memset(comp, 0, sizeof comp);
            memcpy(comp, wcomp + c0, (size_t)nc * sizeof(int32_t));
            for (int ch = 0; ch < chunks; ch++) {
                int g0 = ch * GC, g1 = g0 + GC < G ? g0 + GC : G;
                for (int r0 = 0; r0 < mc; r0 += VN_MR) {
                    int mr = mc - r0 < VN_MR ? mc - r0 : VN_MR;
                    int32_t *t = buf + (size_t)r0 * VN_NR;
                    if (ch == chunks - 1) epi_prefetch(epi, c, ldc, i0 + r0, mr, c0, nc);
                    UKR[mr - 1][nv - 1](g0, g1, aq + (size_t)(i0 + r0) * lda, lda, bp, comp, t, ch == 0, ch == chunks - 1);
                    if (ch == chunks - 1) epi_block_q8(t, VN_NR, c, ldc, i0 + r0, mr, c0, nc, epi);
                }
            }
        }
    }
}

static void attention_q16_avx512vnni(int n_q, int n_kv, int d, const float *q, size_t ldq, const float *k, size_t ldk,
                                  const float *v, size_t ldv, float scale, float *out, size_t ldo, void *scratch) {
    attention_q16_simd(n_q, n_kv, d, q, ldq, k, ldk, v, ldv, scale, out, ldo, scratch);
}

bool sk_fill_avx512vnni(struct sk_kernels *t) {
    t->isa = SK_ISA_AVX512VNNI;
    t->attention_q16 = attention_q16_avx512vnni;
    t->q8_panels = q8_panels_avx512vnni;
    t->q8_u8 = true;
    t->q8_mpad = 1;
    t->q8_amx = false;
    return true;
}
