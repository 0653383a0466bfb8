// One objective evaluation: contrastive pass and/or MLM pass, losses summed, gradients accumulated.
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "train/st.h"

double st_loss_and_grad(struct st_model *m, struct st_acts *a, const struct st_objective *o,
                        const struct st_step_data *d, uint64_t drop_key_cl, uint64_t drop_key_mlm, bool backward,
                        int nt, double *cl_loss, double *mlm_loss) {
    int H = m->cfg.hidden;
    double total = 0.0, lc = 0.0, lm = 0.0;
    if (o->contrastive || o->distill) {
        size_t n = (size_t)d->cl.n * H;
        float *z = a->z, *dz = z + n;
        st_forward(m, a, &d->cl, drop_key_cl, nt);
        st_pool_forward(m, a, &d->cl, o->pool, o->mlp, z, nt);
        float wcl = o->distill ? o->cl_weight : 1.0f;
        if (o->contrastive) {
            lc = st_infonce(z, d->B, H, d->hard_neg, o->temp, o->hn_weight, wcl, dz);
            total += wcl * lc;
        } else {
            memset(dz, 0, n * sizeof *dz);
        }
        // distillation on the anchors (rows [0, B)); adds into dz
        if (o->distill) total += st_distill_loss(m, z, d->B, d->teacher, d->teacher_dim, o, dz, backward, NULL, NULL);
        if (backward) {
            st_pool_backward(m, a, &d->cl, o->pool, o->mlp, dz, a->dY, nt);
            st_backward(m, a, &d->cl, a->dY, drop_key_cl, nt);
        }
    }
    if (o->mlm && d->M > 0) {
        float w = st_mlm_weight(o);
        st_forward(m, a, &d->mlm, drop_key_mlm, nt);
        memset(a->dY, 0, (size_t)st_acts_rows(a) * H * sizeof(float));
        lm = st_mlm_loss(m, a, st_last_hidden(m, a), d->M, d->mlm_rows, d->mlm_labels, w, backward ? a->dY : NULL, nt);
        total += w * lm;
        if (backward) st_backward(m, a, &d->mlm, a->dY, drop_key_mlm, nt);
    }
    if (cl_loss) *cl_loss = lc;
    if (mlm_loss) *mlm_loss = lm;
    return total;
}
