// AVX512-VNNI int8 GEMM: VPDPBUSD multiplies u8 activations (s8 ^ 0x80, i.e. q + 128) by s8
// weights, 4 products per int32 lane, no saturation. The +128 shift is undone exactly with the
// precomputed wcomp[j] = 128 * sum_p W[j, p]. 6 rows x 64 columns per microkernel.
#define SK_VL 16
#include "runtime/kernels/kernels_simd.h"

#define VN_MR 6
#define VN_NV 4

static inline __attribute__((always_inline)) void ukr_q8_vnni(const int MR, const int NV, int kpad, const uint8_t *aq,
                                                              size_t lda, const int8_t *const *bp, const int32_t *comp,
                                                              int32_t *t) {
    __m512i acc[VN_MR][VN_NV];
    for (int r = 0; r < MR; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_si512();
    for (int g = 0; g < kpad / 4; g++) {
        __m512i b[VN_NV];
        for (int v = 0; v < NV; v++) b[v] = _mm512_loadu_si512((const void *)(bp[v] + (size_t)g * 64));
        for (int r = 0; r < MR; r++) {
            int32_t a4;
            memcpy(&a4, aq + (size_t)r * lda + 4 * (size_t)g, 4);
            __m512i av = _mm512_set1_epi32(a4);
            for (int v = 0; v < NV; v++) acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], av, b[v]);
        }
    }
    for (int v = 0; v < NV; v++) {
        __m512i cv = _mm512_loadu_si512((const void *)(comp + 16 * v));
        for (int r = 0; r < MR; r++)
            _mm512_storeu_si512((void *)(t + r * VN_NV * 16 + 16 * v), _mm512_sub_epi32(acc[r][v], cv));
    }
}

#define VN_CASE(MR_, NV_) case (MR_) * 8 + (NV_): ukr_q8_vnni(MR_, NV_, kpad, ai, lda, bp, comp, t); break;

static void q8_panels_avx512vnni(int m, int kpad, int j0, int j1, int n, const uint8_t *aq, size_t lda,
                                 const int8_t *wq, const int32_t *wcomp, float *c, size_t ldc, const struct sk_epi *epi) {
    (void)n;
    int32_t t[VN_MR * VN_NV * 16] __attribute__((aligned(64)));
    int32_t comp[VN_NV * 16] __attribute__((aligned(64)));
    for (int c0 = j0; c0 < j1; c0 += VN_NV * 16) {
        int nc = j1 - c0 < VN_NV * 16 ? j1 - c0 : VN_NV * 16;
        int nv = (nc + 15) / 16;
        const int8_t *bp[VN_NV];
        for (int v = 0; v < nv; v++) bp[v] = wq + (size_t)(c0 / 16 + v) * (size_t)kpad * 16;
        memset(comp, 0, sizeof comp);
        memcpy(comp, wcomp + c0, (size_t)nc * sizeof(int32_t));
        for (int i0 = 0; i0 < m; i0 += VN_MR) {
            int mr = m - i0 < VN_MR ? m - i0 : VN_MR;
            const uint8_t *ai = aq + (size_t)i0 * lda;
            switch (mr * 8 + nv) {
                VN_CASE(1, 1) VN_CASE(1, 2) VN_CASE(1, 3) VN_CASE(1, 4)
                VN_CASE(2, 1) VN_CASE(2, 2) VN_CASE(2, 3) VN_CASE(2, 4)
                VN_CASE(3, 1) VN_CASE(3, 2) VN_CASE(3, 3) VN_CASE(3, 4)
                VN_CASE(4, 1) VN_CASE(4, 2) VN_CASE(4, 3) VN_CASE(4, 4)
                VN_CASE(5, 1) VN_CASE(5, 2) VN_CASE(5, 3) VN_CASE(5, 4)
                VN_CASE(6, 1) VN_CASE(6, 2) VN_CASE(6, 3) VN_CASE(6, 4)
            default: break;
            }
            epi_block_q8(t, VN_NV * 16, c, ldc, i0, mr, c0, nc, epi);
        }
    }
}

bool sk_fill_avx512vnni(struct sk_kernels *t) {
    t->isa = SK_ISA_AVX512VNNI;
    t->q8_panels = q8_panels_avx512vnni;
    t->q8_u8 = true;
    t->q8_mpad = 1;
    t->q8_amx = false;
    return true;
}
