// AMX-INT8 GEMM: TDPBSSD on s8 activations x s8 weights, int32 tiles; no u8 shift needed.
// Tiles: 0-3 accumulators (16 rows x 16 int32), 4-5 activations (16 rows x 64 bytes of k),
// 6-7 weights. The packed weight panel (kernels_impl.h) is already the B-tile layout: 16 k-groups
// of 64 bytes = one 1 KiB tile per 64 k. Blocks of 32 rows x 32 columns (2 x 2 tiles); row tails
// read the zero rows the caller pads activations with (q8_mpad = 16).
// Tile facts: Intel SDM vol. 1 ch. 18 (palette 1: 8 tiles of 16 rows x 64 bytes; TILECFG layout).
#define SK_VL 16
#include "runtime/kernels/kernels_simd.h"

struct tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

static void tiles_config(void) {
    struct tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
}

// One 32 x 32 block (or a 16-row / 16-column part of it: two_r, two_c).
static inline __attribute__((always_inline)) void blk_amx(const bool two_r, const bool two_c, int kpad, const uint8_t *aq,
                                                          size_t lda, const int8_t *b0, const int8_t *b1, int32_t *t) {
    _tile_zero(0);
    if (two_c) _tile_zero(1);
    if (two_r) _tile_zero(2);
    if (two_r && two_c) _tile_zero(3);
    for (int kc = 0; kc < kpad / 64; kc++) {
        _tile_loadd(4, aq + (size_t)kc * 64, lda);
        _tile_loadd(6, b0 + (size_t)kc * 1024, 64);
        if (two_c) _tile_loadd(7, b1 + (size_t)kc * 1024, 64);
        _tile_dpbssd(0, 4, 6);
        if (two_c) _tile_dpbssd(1, 4, 7);
        if (two_r) {
            _tile_loadd(5, aq + 16 * lda + (size_t)kc * 64, lda);
            _tile_dpbssd(2, 5, 6);
            if (two_c) _tile_dpbssd(3, 5, 7);
        }
    }
    _tile_stored(0, t, 128);
    if (two_c) _tile_stored(1, t + 16, 128);
    if (two_r) _tile_stored(2, t + 16 * 32, 128);
    if (two_r && two_c) _tile_stored(3, t + 16 * 32 + 16, 128);
}

static void q8_panels_amx(int m, int kpad, int j0, int j1, int n, const uint8_t *aq, size_t lda, const int8_t *wq,
                          const int32_t *wcomp, float *c, size_t ldc, const struct sk_epi *epi) {
    (void)n; (void)wcomp;
    int32_t t[32 * 32] __attribute__((aligned(64)));
    tiles_config();
    for (int c0 = j0; c0 < j1; c0 += 32) {
        int nc = j1 - c0 < 32 ? j1 - c0 : 32;
        bool two_c = nc > 16;
        const int8_t *b0 = wq + (size_t)(c0 / 16) * (size_t)kpad * 16;
        const int8_t *b1 = two_c ? b0 + (size_t)kpad * 16 : b0;
        for (int i0 = 0; i0 < m; i0 += 32) {
            int mr = m - i0 < 32 ? m - i0 : 32;
            bool two_r = mr > 16;
            const uint8_t *ai = aq + (size_t)i0 * lda;
            if (two_r && two_c) blk_amx(true, true, kpad, ai, lda, b0, b1, t);
            else if (two_r) blk_amx(true, false, kpad, ai, lda, b0, b1, t);
            else if (two_c) blk_amx(false, true, kpad, ai, lda, b0, b1, t);
            else blk_amx(false, false, kpad, ai, lda, b0, b1, t);
            epi_block_q8(t, 32, c, ldc, i0, mr, c0, nc, epi);
        }
    }
    _tile_release();
}

bool sk_fill_amx(struct sk_kernels *t) {
    t->isa = SK_ISA_AMX;
    t->q8_panels = q8_panels_amx;
    t->q8_u8 = false;
    t->q8_mpad = 16;
    t->q8_amx = true;
    return true;
}
