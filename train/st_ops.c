// Portable implementations of the trainer's fused ops (train/st_ops.h) and the dispatch to the
// AVX-512 ones. Plain C, scalar libm (erff, expf), double accumulators inside a row.
#include <math.h>
#include <string.h>

#include "train/st.h"
#include "train/st_ops.h"

size_t st_att_scratch(int T, int hd) {
    size_t tp = ((size_t)T + 15) & ~(size_t)15, hp = ((size_t)hd + 15) & ~(size_t)15;
    return 3 * tp * hp + 4 * tp + 64;
}

static void put_bit(uint8_t *bits, size_t i, bool keep) {
    uint8_t m = (uint8_t)(1u << (i & 7));
    bits[i >> 3] = keep ? (uint8_t)(bits[i >> 3] | m) : (uint8_t)(bits[i >> 3] & ~m);
}

static void ln_fwd(int r0, int r1, const float *x, int n, const float *g, const float *b, float eps, float *mean,
                   float *rstd, float *y) {
    for (int r = r0; r < r1; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        double mu = 0.0, var = 0.0;
        for (int i = 0; i < n; i++) mu += xr[i];
        mu /= n;
        for (int i = 0; i < n; i++) var += ((double)xr[i] - mu) * ((double)xr[i] - mu);
        var /= n;
        float rs = (float)(1.0 / sqrt(var + (double)eps)), m = (float)mu;
        mean[r] = m; rstd[r] = rs;
        for (int i = 0; i < n; i++) yr[i] = (xr[i] - m) * rs * g[i] + b[i];
    }
}

static void bias_drop_res(int r0, int r1, float *y, int n, const float *bias, const float *res, const struct st_drop *d,
                          uint8_t *bits) {
    for (int r = r0; r < r1; r++) {
        float *yr = y + (size_t)r * n;
        const float *rr = res ? res + (size_t)r * n : NULL;
        for (int c = 0; c < n; c++) {
            float v = bias ? yr[c] + bias[c] : yr[c];
            if (d->key) {
                size_t i = (size_t)r * n + (size_t)c;
                uint64_t ctr = d->rows ? (uint64_t)d->rows[r] * (uint64_t)n + (uint64_t)c : i;
                bool keep = st_rng_u32(d->key, ctr) >= d->thr;
                put_bit(bits, i, keep);
                v = keep ? v * d->scale : 0.0f;
            }
            yr[c] = rr ? v + rr[c] : v;
        }
    }
}

static void ln_bwd(int r0, int r1, const float *dy, const float *x, const float *mean, const float *rstd, int n,
                   const float *g, float *dx, float *part_g, float *part_b) {
    for (int r = r0; r < r1; r++) {
        const float *dyr = dy + (size_t)r * n, *xr = x + (size_t)r * n;
        float *dxr = dx + (size_t)r * n;
        float m = mean[r], rs = rstd[r];
        double s1 = 0.0, s2 = 0.0;
        for (int c = 0; c < n; c++) {
            float xh = (xr[c] - m) * rs;
            part_g[c] += dyr[c] * xh;
            part_b[c] += dyr[c];
            double dxh = (double)dyr[c] * g[c];
            s1 += dxh;
            s2 += dxh * xh;
        }
        float m1 = (float)(s1 / n), m2 = (float)(s2 / n);
        for (int c = 0; c < n; c++) {
            float xh = (xr[c] - m) * rs;
            dxr[c] = rs * (dyr[c] * g[c] - m1 - xh * m2);
        }
    }
}

static void drop_bwd(int r0, int r1, const float *dx, float *dt, int n, const struct st_drop *d, const uint8_t *bits,
                     float *part) {
    for (int r = r0; r < r1; r++) {
        const float *xr = dx + (size_t)r * n;
        float *tr = dt + (size_t)r * n;
        for (int c = 0; c < n; c++) {
            float v = xr[c];
            if (d->key) v = st_bit(bits, (size_t)r * n + (size_t)c) ? v * d->scale : 0.0f;
            tr[c] = v;
            if (part) part[c] += v;
        }
    }
}

static void act_fwd(int r0, int r1, float *f, float *g, int n, const float *bias, enum sk_act act) {
    for (int r = r0; r < r1; r++) {
        float *fr = f + (size_t)r * n, *gr = g + (size_t)r * n;
        for (int c = 0; c < n; c++) {
            if (bias) fr[c] += bias[c];
            gr[c] = sk_act_ref(fr[c], act);
        }
    }
}

static float act_grad(float x, enum sk_act act) {
    switch (act) {
    case SK_ACT_GELU_ERF: // d/dx x*Phi(x) = Phi(x) + x*phi(x)
        return 0.5f * (1.0f + erff(x * 0.70710678118654752f)) + x * 0.39894228040143268f * expf(-0.5f * x * x);
    case SK_ACT_GELU_TANH: {
        const float c = 0.79788456080286536f;
        float u = c * (x + 0.044715f * x * x * x), th = tanhf(u);
        return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * c * (1.0f + 3.0f * 0.044715f * x * x);
    }
    case SK_ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case SK_ACT_TANH: { float t = tanhf(x); return 1.0f - t * t; }
    case SK_ACT_NONE: return 1.0f;
    }
    return 1.0f;
}

static void act_bwd(int r0, int r1, float *df, const float *f, const float *g, int n, enum sk_act act, float *part) {
    (void)g;
    for (int r = r0; r < r1; r++) {
        float *dr = df + (size_t)r * n;
        const float *fr = f + (size_t)r * n;
        for (int c = 0; c < n; c++) {
            dr[c] *= act_grad(fr[c], act);
            part[c] += dr[c];
        }
    }
}

static void colsum(int r0, int r1, const float *x, int ld, int n, float *part) {
    for (int r = r0; r < r1; r++) {
        const float *xr = x + (size_t)r * ld;
        for (int c = 0; c < n; c++) part[c] += xr[c];
    }
}

static void att_fwd(const struct st_att *a, float *q, float *k, float *v, const float *qb, const float *kb,
                    const float *vb, float *P, float *PD, float *ctx, int ldc, float *scratch) {
    (void)scratch;
    int T = a->T, len = a->len, hd = a->hd, ld = a->ld;
    for (int i = 0; i < T; i++)
        for (int d = 0; d < hd; d++) {
            if (qb) q[(size_t)i * ld + d] += qb[d];
            if (kb) k[(size_t)i * ld + d] += kb[d];
            if (vb) v[(size_t)i * ld + d] += vb[d];
        }
    for (int i = 0; i < T; i++) {
        float *pr = P + (size_t)i * T, *pd = PD + (size_t)i * T;
        const float *qi = q + (size_t)i * ld;
        for (int j = 0; j < len; j++) {
            const float *kj = k + (size_t)j * ld;
            float s = 0.0f;
            for (int d = 0; d < hd; d++) s = fmaf(qi[d], kj[d], s);
            pr[j] = a->scale * s;
        }
        sk_softmax_ref(pr, len);
        for (int j = len; j < T; j++) pr[j] = 0.0f;
        if (pd != pr)
            for (int j = 0; j < T; j++) {
                bool keep = !a->drop.key || st_rng_u32(a->drop.key, a->drop_base + (size_t)i * T + (size_t)j) >= a->drop.thr;
                pd[j] = keep ? pr[j] * a->drop.scale : 0.0f;
            }
        float *ci = ctx + (size_t)i * ldc;
        for (int d = 0; d < hd; d++) {
            float s = 0.0f;
            for (int j = 0; j < len; j++) s = fmaf(pd[j], v[(size_t)j * ld + d], s);
            ci[d] = s;
        }
    }
}

// With PD = P * mask * s: dP = mask * s * dPD, so P * dP = PD * dPD and
// dS = P * (dP - sum_j P dP) = PD * dPD - P * sum_j PD dPD: no mask needed.
static void att_bwd(const struct st_att *a, const float *q, const float *k, const float *v, const float *P,
                    const float *PD, const float *dctx, int ldc, float *dq, float *dk, float *dv, float *scratch) {
    int T = a->T, len = a->len, hd = a->hd, ld = a->ld;
    float *dp = scratch;          // [T]
    float *ak = dp + T;           // [T * hd] dk accumulators
    float *av = ak + (size_t)T * hd;
    memset(ak, 0, 2 * (size_t)T * hd * sizeof(float));
    for (int i = 0; i < T; i++) {
        float *dqi = dq + (size_t)i * ld;
        if (i >= len) { memset(dqi, 0, (size_t)hd * sizeof(float)); continue; }
        const float *pr = P + (size_t)i * T, *pd = PD + (size_t)i * T, *gi = dctx + (size_t)i * ldc;
        const float *qi = q + (size_t)i * ld;
        double dot = 0.0;
        for (int j = 0; j < len; j++) {
            const float *vj = v + (size_t)j * ld;
            float s = 0.0f;
            for (int d = 0; d < hd; d++) s = fmaf(gi[d], vj[d], s);
            dp[j] = s;
            dot += (double)pd[j] * s;
            for (int d = 0; d < hd; d++) av[(size_t)j * hd + d] += pd[j] * gi[d];
        }
        float fd = (float)dot;
        for (int d = 0; d < hd; d++) dqi[d] = 0.0f;
        for (int j = 0; j < len; j++) {
            float ds = pd[j] * dp[j] - pr[j] * fd;
            const float *kj = k + (size_t)j * ld;
            for (int d = 0; d < hd; d++) {
                dqi[d] += ds * kj[d];
                ak[(size_t)j * hd + d] += ds * qi[d];
            }
        }
        for (int d = 0; d < hd; d++) dqi[d] *= a->scale;
    }
    for (int j = 0; j < T; j++)
        for (int d = 0; d < hd; d++) {
            dk[(size_t)j * ld + d] = j < len ? ak[(size_t)j * hd + d] * a->scale : 0.0f;
            dv[(size_t)j * ld + d] = j < len ? av[(size_t)j * hd + d] : 0.0f;
        }
}

static void adamw(size_t n, float *p, float *g, float *m, float *v, float decay, float b1, float b2, float step_size,
                  float bc2_sqrt, float eps, bool zero_grad) {
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        p[i] *= decay;
        m[i] = m[i] * b1 + gi * (1.0f - b1);
        v[i] = v[i] * b2 + gi * gi * (1.0f - b2);
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] += -step_size * (m[i] / denom);
        if (zero_grad) g[i] = 0.0f;
    }
}

static double xent_row(float *x, int V, int y, float dscale) {
    float mx = -INFINITY;
    for (int j = 0; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    double s = 0.0;
    for (int j = 0; j < V; j++) s += exp((double)(x[j] - mx));
    double loss = log(s) + mx - x[y];
    float inv = (float)(1.0 / s);
    for (int j = 0; j < V; j++) x[j] = expf(x[j] - mx) * inv * dscale;
    x[y] -= dscale;
    return loss;
}

static const struct st_ops portable = {
    .ln_fwd = ln_fwd, .bias_drop_res = bias_drop_res, .ln_bwd = ln_bwd, .drop_bwd = drop_bwd, .act_fwd = act_fwd,
    .act_bwd = act_bwd, .colsum = colsum, .att_fwd = att_fwd, .att_bwd = att_bwd, .xent_row = xent_row, .adamw = adamw};

const struct st_ops *st_ops_portable(void) { return &portable; }

const struct st_ops *st_ops_get(void) {
    enum sk_isa isa = sk_isa_active();
    if (isa == SK_ISA_AVX512 || isa == SK_ISA_AVX512VNNI || isa == SK_ISA_AMX) {
        const struct st_ops *o = st_ops_avx512();
        if (o) return o;
    }
    return &portable;
}
