// AdamW (Loshchilov & Hutter 2019, decoupled weight decay) with torch.optim.AdamW's arithmetic,
// gradient-norm clipping (torch.nn.utils.clip_grad_norm_) and HF's linear warmup/decay schedule.
#include <math.h>
#include <stdlib.h>

#include "formats/log.h"

#include "train/st.h"

void st_adamw_step(struct st_model *m, const struct st_adamw *o, float lr, int64_t t, int nt) {
    float bc1 = 1.0f - powf(o->beta1, (float)t), bc2 = 1.0f - powf(o->beta2, (float)t);
    float step_size = lr / bc1, bc2_sqrt = sqrtf(bc2);
    for (int k = 0; k < m->n_tensors; k++) {
        const struct st_tensor *tt = &m->tensors[k];
        if (!tt->trainable) continue;
        float *p = m->params + tt->offset, *g = m->grads + tt->offset;
        float *mm = m->adam_m + tt->offset, *vv = m->adam_v + tt->offset;
        float decay = tt->decay ? 1.0f - lr * o->weight_decay : 1.0f;
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (size_t i = 0; i < tt->numel; i++) {
            p[i] *= decay;
            mm[i] = mm[i] * o->beta1 + g[i] * (1.0f - o->beta1);
            vv[i] = vv[i] * o->beta2 + g[i] * g[i] * (1.0f - o->beta2);
            float denom = sqrtf(vv[i]) / bc2_sqrt + o->eps;
            p[i] += -step_size * (mm[i] / denom);
        }
    }
}

double st_clip_grad(struct st_model *m, float max_norm, int nt) {
    double total = 0.0;
    for (int k = 0; k < m->n_tensors; k++) {
        const struct st_tensor *tt = &m->tensors[k];
        if (!tt->trainable) continue;
        const float *g = m->grads + tt->offset;
        // Fixed-size chunks, partial sums added in chunk order: independent of the thread count.
        enum { CH = 4096 };
        size_t nch = (tt->numel + CH - 1) / CH;
        double *part = malloc(nch * sizeof *part);
        SEMBED_ASSERT(part);
        #pragma omp parallel for num_threads(nt) schedule(static)
        for (size_t cidx = 0; cidx < nch; cidx++) {
            size_t i0 = cidx * CH, i1 = i0 + CH < tt->numel ? i0 + CH : tt->numel;
            double acc = 0.0;
            for (size_t i = i0; i < i1; i++) acc += (double)g[i] * g[i];
            part[cidx] = acc;
        }
        double s = 0.0;
        for (size_t cidx = 0; cidx < nch; cidx++) s += part[cidx];
        free(part);
        total += s;
    }
    double norm = sqrt(total);
    if (max_norm > 0.0f) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1.0) {
            float cf = (float)coef;
            for (int k = 0; k < m->n_tensors; k++) {
                const struct st_tensor *tt = &m->tensors[k];
                if (!tt->trainable) continue;
                float *g = m->grads + tt->offset;
                #pragma omp parallel for num_threads(nt) schedule(static)
                for (size_t i = 0; i < tt->numel; i++) g[i] *= cf;
            }
        }
    }
    return norm;
}

float st_lr_at(float lr, int64_t step, int64_t warmup, int64_t total) {
    if (step < warmup) return lr * (float)step / (float)(warmup > 1 ? warmup : 1);
    double rest = (double)(total - step) / (double)(total - warmup > 1 ? total - warmup : 1);
    return lr * (float)(rest > 0.0 ? rest : 0.0);
}
