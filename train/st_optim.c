// AdamW (Loshchilov & Hutter 2019, decoupled weight decay) with torch.optim.AdamW's arithmetic,
// gradient-norm clipping (torch.nn.utils.clip_grad_norm_) and HF's linear warmup/decay schedule.
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#include "formats/log.h"

#include "train/st.h"
#include "train/st_ops.h"

// Tensors are cut into fixed chunks (threads take chunks; each chunk's arithmetic is
// element-wise), so the update does not depend on the thread count.
#define ADAM_CHUNK 16384

void st_adamw_step_ex(struct st_model *m, const struct st_adamw *o, float lr, int64_t t, float grad_scale,
                      bool zero_grad, int nt) {
    const struct st_ops *ops = st_ops_get();
    float bc1 = 1.0f - powf(o->beta1, (float)t), bc2 = 1.0f - powf(o->beta2, (float)t);
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
    // One parallel region over all chunks of all trainable tensors.
    size_t total = 0;
    for (int k = 0; k < m->n_tensors; k++)
        if (m->tensors[k].trainable) total += (m->tensors[k].numel + ADAM_CHUNK - 1) / ADAM_CHUNK;
    #pragma omp parallel num_threads(nt)
    {
        size_t idx = 0;
        int me = omp_get_thread_num(), nth = omp_get_num_threads();
        for (int k = 0; k < m->n_tensors; k++) {
            const struct st_tensor *tt = &m->tensors[k];
            if (!tt->trainable) continue;
            float *p = m->params + tt->offset, *g = m->grads + tt->offset;
            float *mm = m->adam_m + tt->offset, *vv = m->adam_v + tt->offset;
            float decay = tt->decay ? 1.0f - lr * o->weight_decay : 1.0f;
            for (size_t i0 = 0; i0 < tt->numel; i0 += ADAM_CHUNK, idx++) {
                if ((size_t)me != idx * (size_t)nth / total) continue; // contiguous ranges of chunks per thread
                size_t n = tt->numel - i0 < ADAM_CHUNK ? tt->numel - i0 : ADAM_CHUNK;
                if (grad_scale != 1.0f)
                    for (size_t i = 0; i < n; i++) g[i0 + i] *= grad_scale;
                ops->adamw(n, p + i0, g + i0, mm + i0, vv + i0, decay, o->beta1, o->beta2, step_size, bc2_sqrt, o->eps,
                           zero_grad);
            }
        }
    }
}

void st_adamw_step(struct st_model *m, const struct st_adamw *o, float lr, int64_t t, int nt) {
    st_adamw_step_ex(m, o, lr, t, 1.0f, false, nt);
}

double st_grad_norm(struct st_model *m, int nt) {
    // Fixed-size chunks, partial sums added in chunk order: independent of the thread count.
    enum { CH = 4096 };
    size_t total = 0;
    for (int k = 0; k < m->n_tensors; k++)
        if (m->tensors[k].trainable) total += (m->tensors[k].numel + CH - 1) / CH;
    double *part = malloc((total ? total : 1) * sizeof *part);
    SEMBED_ASSERT(part);
    #pragma omp parallel num_threads(nt)
    {
        size_t idx = 0;
        int me = omp_get_thread_num(), nth = omp_get_num_threads();
        for (int k = 0; k < m->n_tensors; k++) {
            const struct st_tensor *tt = &m->tensors[k];
            if (!tt->trainable) continue;
            const float *g = m->grads + tt->offset;
            for (size_t i0 = 0; i0 < tt->numel; i0 += CH, idx++) {
                if ((size_t)me != idx * (size_t)nth / total) continue;
                size_t i1 = i0 + CH < tt->numel ? i0 + CH : tt->numel;
                double acc[8] = {0};
                size_t i = i0;
                for (; i + 8 <= i1; i += 8)
                    for (int u = 0; u < 8; u++) acc[u] += (double)g[i + u] * g[i + u];
                for (; i < i1; i++) acc[0] += (double)g[i] * g[i];
                part[idx] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            }
        }
    }
    double s = 0.0;
    for (size_t i = 0; i < total; i++) s += part[i];
    free(part);
    return sqrt(s);
}

float st_clip_coef(double norm, float max_norm) {
    if (max_norm <= 0.0f) return 1.0f;
    double coef = max_norm / (norm + 1e-6);
    return coef < 1.0 ? (float)coef : 1.0f;
}

double st_clip_grad(struct st_model *m, float max_norm, int nt) {
    double norm = st_grad_norm(m, nt);
    float cf = st_clip_coef(norm, max_norm);
    if (cf != 1.0f) {
        for (int k = 0; k < m->n_tensors; k++) {
            const struct st_tensor *tt = &m->tensors[k];
            if (!tt->trainable) continue;
            float *g = m->grads + tt->offset;
            #pragma omp parallel for num_threads(nt) schedule(static)
            for (size_t i = 0; i < tt->numel; i++) g[i] *= cf;
        }
    }
    return norm;
}

float st_lr_at(float lr, int64_t step, int64_t warmup, int64_t total) {
    if (step < warmup) return lr * (float)step / (float)(warmup > 1 ? warmup : 1);
    double rest = (double)(total - step) / (double)(total - warmup > 1 ? total - warmup : 1);
    return lr * (float)(rest > 0.0 ? rest : 0.0);
}
