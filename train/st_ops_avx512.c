// AVX-512 (F/BW/VL/DQ) implementations of the trainer's fused ops (train/st_ops.h).
// Same contracts as the portable ones in st_ops.c; exp by range reduction + polynomial +
// vscalefps, erf by Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7), the dropout RNG as
// st_rng_u32 on 8 64-bit lanes (vpmullq), so masks are bit-identical to the portable path.
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "train/st.h"
#include "train/st_ops.h"

static inline __mmask16 tail(int n) { return (__mmask16)(n >= 16 ? 0xffffu : n <= 0 ? 0u : (1u << n) - 1u); }
static inline __m512 ld(const float *p, int n) { return _mm512_maskz_loadu_ps(tail(n), p); }
static inline void st(float *p, __m512 v, int n) { _mm512_mask_storeu_ps(p, tail(n), v); }

// e^x: x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor polynomial (relative truncation error < 6e-9),
// 2^n applied by vscalefps (which also underflows gracefully to 0).
static inline __m512 vexp(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.7f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723e-6f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

// Phi(x) (standard normal CDF) and e = exp(-x^2/2). erfc(z) = t P(t) exp(-z^2), t = 1/(1 + p z),
// z = |x|/sqrt(2) (A&S 7.1.26): Phi = 1 - erfc/2 for x >= 0, erfc/2 for x < 0 (no cancellation).
static inline __m512 vphi(__m512 x, __m512 *e) {
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(z, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(1.061405429f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
    *e = vexp(_mm512_mul_ps(_mm512_mul_ps(z, z), _mm512_set1_ps(-1.0f)));
    __m512 half_erfc = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(p, t), *e), _mm512_set1_ps(0.5f));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(neg, _mm512_sub_ps(_mm512_set1_ps(1.0f), half_erfc), half_erfc);
}

// 16 dropout decisions for counters base .. base+15: bit j set = keep (st_rng_u32 >= thr).
static inline __m512i mix64(__m512i z) {
    z = _mm512_add_epi64(z, _mm512_set1_epi64((long long)0x9e3779b97f4a7c15ull));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64((long long)0xbf58476d1ce4e5b9ull));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64((long long)0x94d049bb133111ebull));
    return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}
static inline __mmask16 keep16(uint64_t key, uint32_t thr, uint64_t base) {
    const __m512i c = _mm512_set1_epi64((long long)0xd1b54a32d192ed03ull), k = _mm512_set1_epi64((long long)key);
    const __m512i t = _mm512_set1_epi64((long long)thr);
    __m512i i0 = _mm512_add_epi64(_mm512_set1_epi64((long long)base), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    __m512i i1 = _mm512_add_epi64(i0, _mm512_set1_epi64(8));
    __m512i z0 = mix64(_mm512_xor_si512(k, _mm512_mullo_epi64(i0, c)));
    __m512i z1 = mix64(_mm512_xor_si512(k, _mm512_mullo_epi64(i1, c)));
    __mmask8 m0 = _mm512_cmpge_epu64_mask(_mm512_srli_epi64(z0, 32), t);
    __mmask8 m1 = _mm512_cmpge_epu64_mask(_mm512_srli_epi64(z1, 32), t);
    return (__mmask16)(m0 | (unsigned)m1 << 8);
}

// Mask bits of elements pos .. pos+n-1 (n <= 16).
static inline void put_bits(uint8_t *bits, size_t pos, __mmask16 m, int n) {
    if ((pos & 7) == 0) {
        bits[pos >> 3] = n >= 8 ? (uint8_t)m : (uint8_t)((bits[pos >> 3] & ~((1u << n) - 1u)) | (m & ((1u << n) - 1u)));
        if (n > 8) {
            unsigned hn = (unsigned)n - 8, hm = (unsigned)m >> 8;
            bits[(pos >> 3) + 1] = hn >= 8 ? (uint8_t)hm : (uint8_t)((bits[(pos >> 3) + 1] & ~((1u << hn) - 1u)) | (hm & ((1u << hn) - 1u)));
        }
        return;
    }
    for (int j = 0; j < n; j++) {
        size_t i = pos + (size_t)j;
        uint8_t b = (uint8_t)(1u << (i & 7));
        bits[i >> 3] = (m >> j) & 1 ? (uint8_t)(bits[i >> 3] | b) : (uint8_t)(bits[i >> 3] & ~b);
    }
}
static inline __mmask16 get_bits(const uint8_t *bits, size_t pos, int n) {
    if ((pos & 7) == 0) {
        unsigned m = bits[pos >> 3];
        if (n > 8) m |= (unsigned)bits[(pos >> 3) + 1] << 8;
        return (__mmask16)(m & tail(n));
    }
    unsigned m = 0;
    for (int j = 0; j < n; j++) m |= (unsigned)st_bit(bits, pos + (size_t)j) << j;
    return (__mmask16)m;
}

static void ln_fwd(int r0, int r1, const float *x, int n, const float *g, const float *b, float eps, float *mean,
                   float *rstd, float *y) {
    for (int r = r0; r < r1; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        __m512 s = _mm512_setzero_ps();
        for (int c = 0; c < n; c += 16) s = _mm512_add_ps(s, ld(xr + c, n - c));
        float mu = _mm512_reduce_add_ps(s) / (float)n;
        __m512 vm = _mm512_set1_ps(mu), q = _mm512_setzero_ps();
        for (int c = 0; c < n; c += 16) {
            __m512 d = _mm512_maskz_sub_ps(tail(n - c), ld(xr + c, n - c), vm);
            q = _mm512_fmadd_ps(d, d, q);
        }
        float rs = 1.0f / sqrtf(_mm512_reduce_add_ps(q) / (float)n + eps);
        mean[r] = mu; rstd[r] = rs;
        __m512 vr = _mm512_set1_ps(rs);
        for (int c = 0; c < n; c += 16) {
            __m512 v = _mm512_mul_ps(_mm512_sub_ps(ld(xr + c, n - c), vm), vr);
            st(yr + c, _mm512_add_ps(_mm512_mul_ps(v, ld(g + c, n - c)), ld(b + c, n - c)), n - c);
        }
    }
}

static void bias_drop_res(int r0, int r1, float *y, int n, const float *bias, const float *res, const struct st_drop *d,
                          uint8_t *bits) {
    __m512 sc = _mm512_set1_ps(d->scale);
    for (int r = r0; r < r1; r++) {
        float *yr = y + (size_t)r * n;
        const float *rr = res ? res + (size_t)r * n : NULL;
        for (int c = 0; c < n; c += 16) {
            int nv = n - c;
            __m512 v = ld(yr + c, nv);
            if (bias) v = _mm512_add_ps(v, ld(bias + c, nv));
            if (d->key) {
                size_t i = (size_t)r * n + (size_t)c;
                uint64_t ctr = d->rows ? (uint64_t)d->rows[r] * (uint64_t)n + (uint64_t)c : i;
                __mmask16 k = keep16(d->key, d->thr, ctr);
                put_bits(bits, i, k, nv < 16 ? nv : 16);
                v = _mm512_maskz_mul_ps(k, v, sc);
            }
            if (rr) v = _mm512_add_ps(v, ld(rr + c, nv));
            st(yr + c, v, nv);
        }
    }
}

static void ln_bwd(int r0, int r1, const float *dy, const float *x, const float *mean, const float *rstd, int n,
                   const float *g, float *dx, float *part_g, float *part_b) {
    for (int r = r0; r < r1; r++) {
        const float *dyr = dy + (size_t)r * n, *xr = x + (size_t)r * n;
        float *dxr = dx + (size_t)r * n;
        __m512 vm = _mm512_set1_ps(mean[r]), vr = _mm512_set1_ps(rstd[r]);
        __m512 s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
        for (int c = 0; c < n; c += 16) {
            int nv = n - c;
            __m512 xh = _mm512_mul_ps(_mm512_maskz_sub_ps(tail(nv), ld(xr + c, nv), vm), vr), d = ld(dyr + c, nv);
            st(part_g + c, _mm512_fmadd_ps(d, xh, ld(part_g + c, nv)), nv);
            st(part_b + c, _mm512_add_ps(d, ld(part_b + c, nv)), nv);
            __m512 dg = _mm512_mul_ps(d, ld(g + c, nv));
            s1 = _mm512_add_ps(s1, dg);
            s2 = _mm512_fmadd_ps(dg, xh, s2);
        }
        __m512 m1 = _mm512_set1_ps(_mm512_reduce_add_ps(s1) / (float)n), m2 = _mm512_set1_ps(_mm512_reduce_add_ps(s2) / (float)n);
        for (int c = 0; c < n; c += 16) {
            int nv = n - c;
            __m512 xh = _mm512_mul_ps(_mm512_sub_ps(ld(xr + c, nv), vm), vr);
            __m512 dg = _mm512_mul_ps(ld(dyr + c, nv), ld(g + c, nv));
            st(dxr + c, _mm512_mul_ps(vr, _mm512_fnmadd_ps(xh, m2, _mm512_sub_ps(dg, m1))), nv);
        }
    }
}

static void drop_bwd(int r0, int r1, const float *dx, float *dt, int n, const struct st_drop *d, const uint8_t *bits,
                     float *part) {
    __m512 sc = _mm512_set1_ps(d->scale);
    for (int r = r0; r < r1; r++) {
        const float *xr = dx + (size_t)r * n;
        float *tr = dt + (size_t)r * n;
        for (int c = 0; c < n; c += 16) {
            int nv = n - c;
            __m512 v = ld(xr + c, nv);
            if (d->key) v = _mm512_maskz_mul_ps(get_bits(bits, (size_t)r * n + (size_t)c, nv < 16 ? nv : 16), v, sc);
            st(tr + c, v, nv);
            if (part) st(part + c, _mm512_add_ps(v, ld(part + c, nv)), nv);
        }
    }
}

static void act_fwd(int r0, int r1, float *f, float *g, int n, const float *bias, enum sk_act act) {
    if (act != SK_ACT_GELU_ERF) { st_ops_portable()->act_fwd(r0, r1, f, g, n, bias, act); return; }
    for (int r = r0; r < r1; r++) {
        float *fr = f + (size_t)r * n, *gr = g + (size_t)r * n;
        for (int c = 0; c < n; c += 16) {
            int nv = n - c;
            __m512 x = ld(fr + c, nv), e;
            if (bias) { x = _mm512_add_ps(x, ld(bias + c, nv)); st(fr + c, x, nv); }
            st(gr + c, _mm512_mul_ps(x, vphi(x, &e)), nv);
        }
    }
}

static void act_bwd(int r0, int r1, float *df, const float *f, const float *g, int n, enum sk_act act, float *part) {
    if (act != SK_ACT_GELU_ERF) { st_ops_portable()->act_bwd(r0, r1, df, f, g, n, act, part); return; }
    const __m512 inv_sqrt2pi = _mm512_set1_ps(0.39894228040143268f);
    for (int r = r0; r < r1; r++) {
        float *dr = df + (size_t)r * n;
        const float *fr = f + (size_t)r * n;
        for (int c = 0; c < n; c += 16) {
            int nv = n - c;
            __m512 x = ld(fr + c, nv), e;
            __m512 phi = vphi(x, &e);
            __m512 gr = _mm512_fmadd_ps(_mm512_mul_ps(x, inv_sqrt2pi), e, phi); // Phi(x) + x phi(x)
            __m512 v = _mm512_mul_ps(ld(dr + c, nv), gr);
            st(dr + c, v, nv);
            st(part + c, _mm512_add_ps(v, ld(part + c, nv)), nv);
        }
    }
}

static void colsum(int r0, int r1, const float *x, int ldx, int n, float *part) {
    for (int r = r0; r < r1; r++) {
        const float *xr = x + (size_t)r * ldx;
        for (int c = 0; c < n; c += 16) st(part + c, _mm512_add_ps(ld(xr + c, n - c), ld(part + c, n - c)), n - c);
    }
}

// ---- attention for one (sequence, head) pair

static inline void add_bias_rows(float *x, int T, int hd, int ldx, const float *b) {
    if (!b) return;
    for (int i = 0; i < T; i++)
        for (int c = 0; c < hd; c += 16) st(x + (size_t)i * ldx + c, _mm512_add_ps(ld(x + (size_t)i * ldx + c, hd - c), ld(b + c, hd - c)), hd - c);
}

// dst[d * tp + j] = src[j * lds + d] for j < len (zero for len <= j < tp), d < hd.
static inline void transpose_in(const float *src, int lds, int len, int hd, int tp, float *dst) {
    for (int d = 0; d < hd; d++) {
        float *row = dst + (size_t)d * tp;
        for (int j = 0; j < len; j++) row[j] = src[(size_t)j * lds + d];
        for (int j = len; j < tp; j++) row[j] = 0.0f;
    }
}

// out[jv] = sum_d a[d] * M[d * tp + jv] for the tp/16 vectors of a row (tp <= 256 here via chunks).
static inline void row_times_t(const float *a, int hd, const float *M, int tp, float *out) {
    for (int j0 = 0; j0 < tp; j0 += 64) {
        int nvec = (tp - j0) / 16 < 4 ? (tp - j0) / 16 : 4;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int d = 0; d < hd; d++) {
            __m512 ad = _mm512_set1_ps(a[d]);
            const float *m = M + (size_t)d * tp + j0;
            s0 = _mm512_fmadd_ps(ad, _mm512_loadu_ps(m), s0);
            if (nvec > 1) s1 = _mm512_fmadd_ps(ad, _mm512_loadu_ps(m + 16), s1);
            if (nvec > 2) s2 = _mm512_fmadd_ps(ad, _mm512_loadu_ps(m + 32), s2);
            if (nvec > 3) s3 = _mm512_fmadd_ps(ad, _mm512_loadu_ps(m + 48), s3);
        }
        _mm512_storeu_ps(out + j0, s0);
        if (nvec > 1) _mm512_storeu_ps(out + j0 + 16, s1);
        if (nvec > 2) _mm512_storeu_ps(out + j0 + 32, s2);
        if (nvec > 3) _mm512_storeu_ps(out + j0 + 48, s3);
    }
}

// out[c] (hd floats) = sum_{j < len} w[j] * X[j * ldx + c], chunks of 64 columns in registers.
static inline void weighted_rows(const float *w, int len, const float *X, int ldx, int hd, float *out) {
    for (int c0 = 0; c0 < hd; c0 += 64) {
        int n0 = hd - c0, n1 = n0 - 16, n2 = n0 - 32, n3 = n0 - 48;
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int j = 0; j < len; j++) {
            __m512 wj = _mm512_set1_ps(w[j]);
            const float *x = X + (size_t)j * ldx + c0;
            s0 = _mm512_fmadd_ps(wj, ld(x, n0), s0);
            if (n1 > 0) s1 = _mm512_fmadd_ps(wj, ld(x + 16, n1), s1);
            if (n2 > 0) s2 = _mm512_fmadd_ps(wj, ld(x + 32, n2), s2);
            if (n3 > 0) s3 = _mm512_fmadd_ps(wj, ld(x + 48, n3), s3);
        }
        st(out + c0, s0, n0);
        if (n1 > 0) st(out + c0 + 16, s1, n1);
        if (n2 > 0) st(out + c0 + 32, s2, n2);
        if (n3 > 0) st(out + c0 + 48, s3, n3);
    }
}

static void att_fwd(const struct st_att *a, float *q, float *k, float *v, const float *qb, const float *kb,
                    const float *vb, float *P, float *PD, float *ctx, int ldc, float *scratch) {
    int T = a->T, len = a->len, hd = a->hd, ldq = a->ld, tp = (len + 15) & ~15;
    add_bias_rows(q, T, hd, ldq, qb);
    add_bias_rows(k, T, hd, ldq, kb);
    add_bias_rows(v, T, hd, ldq, vb);
    float *KT = scratch, *s = KT + (size_t)hd * tp;
    transpose_in(k, ldq, len, hd, tp, KT);
    const __m512 scale = _mm512_set1_ps(a->scale), dsc = _mm512_set1_ps(a->drop.scale);
    for (int i = 0; i < T; i++) {
        float *pr = P + (size_t)i * T, *pd = PD + (size_t)i * T;
        row_times_t(q + (size_t)i * ldq, hd, KT, tp, s);
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int j = 0; j < len; j += 16) {
            __m512 x = _mm512_mask_mul_ps(_mm512_set1_ps(-INFINITY), tail(len - j), _mm512_loadu_ps(s + j), scale);
            _mm512_storeu_ps(s + j, x);
            mx = _mm512_max_ps(mx, x);
        }
        __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
        for (int j = 0; j < len; j += 16) {
            __m512 e = _mm512_maskz_mov_ps(tail(len - j), vexp(_mm512_sub_ps(_mm512_loadu_ps(s + j), m)));
            _mm512_storeu_ps(s + j, e);
            sum = _mm512_add_ps(sum, e);
        }
        __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (int j = 0; j < T; j += 16) {
            __m512 p = j < len ? _mm512_maskz_mul_ps(tail(len - j), _mm512_loadu_ps(s + j), inv) : _mm512_setzero_ps();
            st(pr + j, p, T - j);
            if (pd != pr) {
                if (a->drop.key) p = _mm512_maskz_mul_ps(keep16(a->drop.key, a->drop.thr, a->drop_base + (size_t)i * T + (size_t)j), p, dsc);
                st(pd + j, p, T - j);
            }
        }
        weighted_rows(pd, len, v, ldq, hd, ctx + (size_t)i * ldc);
    }
}

// dS = PD * dPD - P * sum_j PD dPD (see st_ops.c), dq = scale dS k, dk = scale dS^T q, dv = PD^T dctx.
static void att_bwd(const struct st_att *a, const float *q, const float *k, const float *v, const float *P,
                    const float *PD, const float *dctx, int ldc, float *dq, float *dk, float *dv, float *scratch) {
    int T = a->T, len = a->len, hd = a->hd, ldq = a->ld, tp = (len + 15) & ~15, hp = (hd + 15) & ~15;
    float *VT = scratch, *dp = VT + (size_t)hd * tp, *ak = dp + tp, *av = ak + (size_t)tp * hp;
    transpose_in(v, ldq, len, hd, tp, VT);
    memset(ak, 0, 2 * (size_t)tp * hp * sizeof(float));
    const __m512 scale = _mm512_set1_ps(a->scale);
    for (int i = 0; i < len; i++) {
        const float *pr = P + (size_t)i * T, *pd = PD + (size_t)i * T, *gi = dctx + (size_t)i * ldc;
        const float *qi = q + (size_t)i * ldq;
        row_times_t(gi, hd, VT, tp, dp);
        __m512 dot = _mm512_setzero_ps();
        for (int j = 0; j < len; j += 16) dot = _mm512_fmadd_ps(ld(pd + j, len - j), ld(dp + j, len - j), dot);
        __m512 vd = _mm512_set1_ps(_mm512_reduce_add_ps(dot));
        for (int j = 0; j < len; j += 16) {
            __m512 ds = _mm512_fnmadd_ps(ld(pr + j, len - j), vd, _mm512_mul_ps(ld(pd + j, len - j), ld(dp + j, len - j)));
            st(dp + j, ds, len - j);
        }
        for (int j = 0; j < len; j++) {
            __m512 dsj = _mm512_set1_ps(dp[j]), pdj = _mm512_set1_ps(pd[j]);
            float *akj = ak + (size_t)j * hp, *avj = av + (size_t)j * hp;
            for (int c = 0; c < hd; c += 16) {
                _mm512_storeu_ps(akj + c, _mm512_fmadd_ps(dsj, ld(qi + c, hd - c), _mm512_loadu_ps(akj + c)));
                _mm512_storeu_ps(avj + c, _mm512_fmadd_ps(pdj, ld(gi + c, hd - c), _mm512_loadu_ps(avj + c)));
            }
        }
        float *dqi = dq + (size_t)i * ldq;
        weighted_rows(dp, len, k, ldq, hd, dqi);
        for (int c = 0; c < hd; c += 16) st(dqi + c, _mm512_mul_ps(ld(dqi + c, hd - c), scale), hd - c);
    }
    for (int i = len; i < T; i++) memset(dq + (size_t)i * ldq, 0, (size_t)hd * sizeof(float));
    for (int j = 0; j < T; j++)
        for (int c = 0; c < hd; c += 16) {
            __m512 vk = j < len ? _mm512_mul_ps(_mm512_loadu_ps(ak + (size_t)j * hp + c), scale) : _mm512_setzero_ps();
            __m512 vv = j < len ? _mm512_loadu_ps(av + (size_t)j * hp + c) : _mm512_setzero_ps();
            st(dk + (size_t)j * ldq + c, vk, hd - c);
            st(dv + (size_t)j * ldq + c, vv, hd - c);
        }
}

// Exponentials summed in double lanes (30k-term sums), stored once, then scaled.
static double xent_row(float *x, int V, int y, float dscale) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int j = 0; j < V; j += 16) mx = _mm512_max_ps(mx, _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), tail(V - j), ld(x + j, V - j)));
    float m = _mm512_reduce_max_ps(mx);
    double xy = x[y];
    __m512 vm = _mm512_set1_ps(m);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    for (int j = 0; j < V; j += 16) {
        __m512 e = _mm512_maskz_mov_ps(tail(V - j), vexp(_mm512_sub_ps(ld(x + j, V - j), vm)));
        st(x + j, e, V - j);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm512_extractf32x8_ps(e, 1)));
    }
    double s = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    __m512 sc = _mm512_set1_ps((float)(1.0 / s) * dscale);
    for (int j = 0; j < V; j += 16) st(x + j, _mm512_mul_ps(ld(x + j, V - j), sc), V - j);
    x[y] -= dscale;
    return log(s) + m - xy;
}

// Same operation order as the portable adamw (no fma), hence bit-identical to it.
static void adamw(size_t n, float *p, float *g, float *m, float *v, float decay, float b1, float b2, float step_size,
                  float bc2_sqrt, float eps, bool zero_grad) {
    const __m512 vdecay = _mm512_set1_ps(decay), vb1 = _mm512_set1_ps(b1), vb2 = _mm512_set1_ps(b2);
    const __m512 c1 = _mm512_set1_ps(1.0f - b1), c2 = _mm512_set1_ps(1.0f - b2), vbc = _mm512_set1_ps(bc2_sqrt);
    const __m512 veps = _mm512_set1_ps(eps), vstep = _mm512_set1_ps(-step_size);
    for (size_t i = 0; i < n; i += 16) {
        int nv = n - i < 16 ? (int)(n - i) : 16;
        __m512 gi = ld(g + i, nv);
        __m512 pi = _mm512_mul_ps(ld(p + i, nv), vdecay);
        __m512 mi = _mm512_add_ps(_mm512_mul_ps(ld(m + i, nv), vb1), _mm512_mul_ps(gi, c1));
        __m512 vi = _mm512_add_ps(_mm512_mul_ps(ld(v + i, nv), vb2), _mm512_mul_ps(_mm512_mul_ps(gi, gi), c2));
        __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), vbc), veps);
        pi = _mm512_add_ps(pi, _mm512_mul_ps(vstep, _mm512_div_ps(mi, den)));
        st(p + i, pi, nv);
        st(m + i, mi, nv);
        st(v + i, vi, nv);
        if (zero_grad) st(g + i, _mm512_setzero_ps(), nv);
    }
}

static const struct st_ops avx512_ops = {
    .ln_fwd = ln_fwd, .bias_drop_res = bias_drop_res, .ln_bwd = ln_bwd, .drop_bwd = drop_bwd, .act_fwd = act_fwd,
    .act_bwd = act_bwd, .colsum = colsum, .att_fwd = att_fwd, .att_bwd = att_bwd, .xent_row = xent_row, .adamw = adamw};

const struct st_ops *st_ops_avx512(void) { return sk_isa_supported(SK_ISA_AVX512) ? &avx512_ops : NULL; }
