// q8_row: per-output-row symmetric int8 (docs/format.md "Dtypes", docs/convert.md "q8").
// Row r of a Linear weight [out, in] gets scale_r = max_i |w_ri| / 127 and q_ri = round(w_ri / scale_r),
// so |w_ri - q_ri * scale_r| <= scale_r / 2 (round-to-nearest), and the extreme value maps to +-127.
#include <math.h>

#include "convert/internal.h"
#include "sembed/common.h"

int sc_q8_row_scale(const float *row, size_t n, float *scale) {
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(row[i]);
        if (!isfinite(a)) return SEMBED_EINVAL;
        if (a > m) m = a;
    }
    *scale = m / 127.0f;
    return SEMBED_OK;
}

void sc_q8_row_quantize(const float *row, size_t n, float scale, int8_t *q) {
    if (scale == 0.0f) { // all-zero row (or values so small that max/127 underflows to 0)
        for (size_t i = 0; i < n; i++) q[i] = 0;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        // The quotient in double: in float, w/s can round across a .5 boundary and break the bound.
        double v = nearbyint((double)row[i] / (double)scale); // default rounding mode: half to even
        if (v > 127.0) v = 127.0;
        if (v < -127.0) v = -127.0;
        q[i] = (int8_t)v;
    }
}
