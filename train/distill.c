// Knowledge distillation losses (st_distill_loss), the projection (pooling.dense.0) and the
// teacher .npy. MSE to the teacher through a Dense projection: Reimers & Gurevych 2020 ("Making
// monolingual sentence embeddings multilingual using knowledge distillation"), as
// sentence-transformers' MSELoss computes it (torch.nn.MSELoss, mean over all elements).
// Relational: KL between the teacher's and the student's row-wise softmaxes of in-batch cosine
// similarities (a form of relational knowledge distillation, Park et al. 2019), the diagonal
// excluded (it is 1/temp on both sides and would swamp the softmax at temp 0.05).
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/log.h"
#include "formats/npy.h"
#include "sembed/semb.h"
#include "sembed/train.h"
#include "train/st.h"
#include "train/st_io.h"

void st_proj_forward(const struct st_model *m, const float *z, int n, float *y) {
    int H = m->cfg.hidden, P = m->cfg.proj_dim;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < P; o++) {
            double s = m->w.proj_b[o];
            const float *w = m->w.proj_w + (size_t)o * H, *zi = z + (size_t)i * H;
            for (int k = 0; k < H; k++) s += (double)w[k] * zi[k];
            y[(size_t)i * P + o] = (float)s;
        }
}

// Unit rows u = z / max(|z|, 1e-8) (torch.cosine_similarity's clamp); returns norms in nrm.
static void unit_rows(const float *z, int n, int H, double *u, double *nrm) {
    for (int r = 0; r < n; r++) {
        double s = 0.0;
        for (int i = 0; i < H; i++) s += (double)z[(size_t)r * H + i] * z[(size_t)r * H + i];
        nrm[r] = sqrt(s) > 1e-8 ? sqrt(s) : 1e-8;
        for (int i = 0; i < H; i++) u[(size_t)r * H + i] = z[(size_t)r * H + i] / nrm[r];
    }
}

// Row-wise softmax of cos(i, j) / temp over j != i (diagonal excluded): p[B, B], p[i, i] = 0.
static void rel_softmax(const double *u, int B, int H, double temp, double *p) {
    for (int i = 0; i < B; i++) {
        double mx = -INFINITY;
        for (int j = 0; j < B; j++) {
            if (j == i) continue;
            double d = 0.0;
            for (int k = 0; k < H; k++) d += u[(size_t)i * H + k] * u[(size_t)j * H + k];
            p[(size_t)i * B + j] = d / temp;
            mx = p[(size_t)i * B + j] > mx ? p[(size_t)i * B + j] : mx;
        }
        double s = 0.0;
        for (int j = 0; j < B; j++) {
            if (j == i) { p[(size_t)i * B + j] = 0.0; continue; }
            p[(size_t)i * B + j] = exp(p[(size_t)i * B + j] - mx);
            s += p[(size_t)i * B + j];
        }
        for (int j = 0; j < B; j++) p[(size_t)i * B + j] /= s;
    }
}

double st_distill_loss(struct st_model *m, const float *z, int B, const float *teacher, int D,
                       const struct st_objective *o, float *dz, bool backward, double *mse_out, double *rel_out) {
    return st_distill_loss_ex(m, z, B, teacher, D, o, dz, backward, true, mse_out, rel_out);
}

double st_distill_loss_ex(struct st_model *m, const float *z, int B, const float *teacher, int D,
                          const struct st_objective *o, float *dz, bool backward, bool param_grads, double *mse_out,
                          double *rel_out) {
    int H = m->cfg.hidden;
    double total = 0.0, mse = 0.0, rel = 0.0, sim = 0.0;
    if (o->mse_weight > 0.0f) {
        int P = m->cfg.proj_dim > 0 ? m->cfg.proj_dim : H;
        SEMBED_ASSERT(P == D);
        float *y = malloc((size_t)B * P * sizeof *y);
        double *dy = malloc((size_t)B * P * sizeof *dy);
        SEMBED_ASSERT(y && dy);
        if (m->cfg.proj_dim > 0) st_proj_forward(m, z, B, y);
        else memcpy(y, z, (size_t)B * P * sizeof *y);
        double scale = 2.0 / ((double)B * P) * o->mse_weight;
        for (size_t k = 0; k < (size_t)B * P; k++) {
            double d = (double)y[k] - teacher[k];
            mse += d * d;
            dy[k] = scale * d;
        }
        mse /= (double)B * P;
        total += o->mse_weight * mse;
        if (backward) {
            if (m->cfg.proj_dim > 0) {
                // dW += dy^T z, db += sum_rows dy (param_grads), dz += dy W
                float *gw = m->g.proj_w, *gb = m->g.proj_b;
                const float *w = m->w.proj_w;
                for (int oo = 0; oo < P && param_grads; oo++) {
                    double sb = 0.0;
                    for (int i = 0; i < B; i++) sb += dy[(size_t)i * P + oo];
                    gb[oo] += (float)sb;
                    for (int k = 0; k < H; k++) {
                        double s = 0.0;
                        for (int i = 0; i < B; i++) s += dy[(size_t)i * P + oo] * z[(size_t)i * H + k];
                        gw[(size_t)oo * H + k] += (float)s;
                    }
                }
                for (int i = 0; i < B; i++)
                    for (int k = 0; k < H; k++) {
                        double s = 0.0;
                        for (int oo = 0; oo < P; oo++) s += dy[(size_t)i * P + oo] * w[(size_t)oo * H + k];
                        dz[(size_t)i * H + k] += (float)s;
                    }
            } else {
                for (size_t k = 0; k < (size_t)B * P; k++) dz[k] += (float)dy[k];
            }
        }
        free(y);
        free(dy);
    }
    bool use_rel = o->rel_weight > 0.0f && B >= 3, use_sim = o->sim_weight > 0.0f && B >= 2;
    if (use_rel || use_sim) {
        size_t nb = (size_t)B * B;
        double *us = malloc(((size_t)B * H + (size_t)B * D + 2 * (size_t)B + 2 * nb + (size_t)B * H) * sizeof(double));
        SEMBED_ASSERT(us);
        double *ut = us + (size_t)B * H, *ns = ut + (size_t)B * D, *nt = ns + B, *ps = nt + B, *pt = ps + nb,
               *du = pt + nb;
        unit_rows(z, B, H, us, ns);
        unit_rows(teacher, B, D, ut, nt);
        memset(du, 0, (size_t)B * H * sizeof *du);
        if (use_rel) {
            double temp = o->rel_temp;
            rel_softmax(us, B, H, temp, ps);
            rel_softmax(ut, B, D, temp, pt);
            for (int i = 0; i < B; i++)
                for (int j = 0; j < B; j++) {
                    double a = pt[(size_t)i * B + j];
                    if (j != i && a > 0.0) rel += a * (log(a) - log(ps[(size_t)i * B + j]));
                }
            rel /= B;
            total += o->rel_weight * rel;
            // d rel / d logit_ij = (ps_ij - pt_ij) / B; logit = cos / temp; cos_ij = u_i . u_j
            for (int i = 0; i < B && backward; i++)
                for (int j = 0; j < B; j++) {
                    if (j == i) continue;
                    double g = (ps[(size_t)i * B + j] - pt[(size_t)i * B + j]) / B / temp * o->rel_weight;
                    for (int k = 0; k < H; k++) {
                        du[(size_t)i * H + k] += g * us[(size_t)j * H + k];
                        du[(size_t)j * H + k] += g * us[(size_t)i * H + k];
                    }
                }
        }
        if (use_sim) {
            // sim = mean over ordered pairs i != j of (cos_s(i, j) - cos_t(i, j))^2;
            // d sim / d cos_s(i, j) = 2 (cos_s - cos_t) / (B (B - 1)) for each ordered pair
            double np = (double)B * (B - 1), ssum = 0.0;
            for (int i = 0; i < B; i++)
                for (int j = 0; j < B; j++) {
                    if (j == i) continue;
                    double cs = 0.0, ct = 0.0;
                    for (int k = 0; k < H; k++) cs += us[(size_t)i * H + k] * us[(size_t)j * H + k];
                    for (int k = 0; k < D; k++) ct += ut[(size_t)i * D + k] * ut[(size_t)j * D + k];
                    double d = cs - ct;
                    ssum += d * d;
                    if (!backward) continue;
                    double g = 2.0 * d / np * o->sim_weight;
                    for (int k = 0; k < H; k++) {
                        du[(size_t)i * H + k] += g * us[(size_t)j * H + k];
                        du[(size_t)j * H + k] += g * us[(size_t)i * H + k];
                    }
                }
            sim = ssum / np;
            total += o->sim_weight * sim;
        }
        if (backward) {
            // through the normalisation: dz = (du - (du.u) u) / |z|
            for (int r = 0; r < B; r++) {
                const double *ur = us + (size_t)r * H, *dr = du + (size_t)r * H;
                double dot = 0.0;
                for (int k = 0; k < H; k++) dot += dr[k] * ur[k];
                for (int k = 0; k < H; k++) dz[(size_t)r * H + k] += (float)((dr[k] - dot * ur[k]) / ns[r]);
            }
        }
        free(us);
    }
    if (mse_out) *mse_out = mse;
    if (rel_out) *rel_out = rel;
    return total;
}

int st_model_add_proj(struct st_model **mp, int D, uint64_t seed) {
    struct st_model *old = *mp;
    if (old->cfg.proj_dim == D) return 0;
    struct st_config c = old->cfg;
    c.proj_dim = D;
    struct st_model *m;
    int rc = st_model_create(&c, &m);
    if (rc) return rc;
    for (int i = 0; i < m->n_tensors; i++) {
        const struct st_tensor *t = &m->tensors[i];
        const struct st_tensor *src = st_model_find(old, t->name);
        if (src && src->numel == t->numel) {
            memcpy(m->params + t->offset, old->params + src->offset, t->numel * sizeof(float));
            m->tensors[i].trainable = src->trainable;
        } else {
            // Nearly zero: the projection first fits the student's current space (dz = dy W ~ 0),
            // instead of pushing large random outputs at the encoder. A N(0, 1/sqrt(H)) start made
            // the projected outputs ~20x the teacher's scale and MSE wrecked STS-B dev (55 -> 33 in
            // 100 steps, docs/train.md).
            st_model_init_tensor(m, t, seed, 1e-3f);
        }
    }
    if (old->grads && (rc = st_model_alloc_train(m))) { st_model_free(m); return rc; }
    st_model_free(old);
    *mp = m;
    return 0;
}

int st_teacher_open(const char *path, size_t expect_rows, struct st_teacher **out) {
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sembed_fail(SEMBED_EIO, "sembed_train", "cannot open teacher '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sembed_fail(SEMBED_EIO, "sembed_train", "teacher '%s' is not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (len && map == MAP_FAILED) return sembed_fail(SEMBED_EIO, "sembed_train", "cannot map '%s': %s", path, strerror(errno));
    struct npy_array a;
    int rc = npy_f32_matrix(map, len, path, &a);
    if (!rc && (a.dims[1] < 1 || a.dims[1] > (1 << 16)))
        rc = sembed_fail(SEMBED_EDIMS, "sembed_train", "teacher '%s': dim %llu is not in [1, 65536]", path,
                         (unsigned long long)a.dims[1]);
    if (!rc && a.dims[0] != expect_rows)
        rc = sembed_fail(SEMBED_EDIMS, "sembed_train",
                         "teacher '%s' has %llu rows (dim %llu) but the training data has %zu rows: one teacher row per "
                         "line of --data, in order",
                         path, (unsigned long long)a.dims[0], (unsigned long long)a.dims[1], expect_rows);
    if (!rc) {
        // finite values only: a NaN target would silently poison the run
        for (uint64_t k = 0; k < a.numel; k++) {
            float v;
            memcpy(&v, (const unsigned char *)a.data + 4 * k, 4);
            if (!isfinite(v)) {
                rc = sembed_fail(SEMBED_ECORRUPT, "sembed_train", "teacher '%s': row %llu, column %llu is not finite",
                                 path, (unsigned long long)(k / a.dims[1]), (unsigned long long)(k % a.dims[1]));
                break;
            }
        }
    }
    struct st_teacher *t = rc ? NULL : calloc(1, sizeof *t);
    if (!rc && !t) rc = SEMBED_ENOMEM;
    if (rc) {
        if (len) munmap(map, len);
        return rc;
    }
    t->rows = (size_t)a.dims[0];
    t->dim = (int)a.dims[1];
    t->data = a.data;
    t->map = map;
    t->map_len = len;
    *out = t;
    return 0;
}

void st_teacher_free(struct st_teacher *t) {
    if (!t) return;
    if (t->map_len) munmap(t->map, t->map_len);
    free(t);
}

void st_teacher_row(const struct st_teacher *t, size_t r, float *dst) {
    memcpy(dst, t->data + r * (size_t)t->dim * 4, (size_t)t->dim * 4);
}

int st_distill_save_keys(struct sembed_writer *w, const struct sembed_train_params *p) {
    const char *base = strrchr(p->teacher_path, '/');
    base = base ? base + 1 : p->teacher_path;
    int r = 0;
    r |= sembed_writer_add_str(w, "train.distill.teacher_file", base);
    r |= sembed_writer_add_f32(w, "train.distill.mse_weight", p->mse_weight);
    r |= sembed_writer_add_f32(w, "train.distill.rel_weight", p->rel_weight);
    r |= sembed_writer_add_f32(w, "train.distill.rel_temp", p->rel_temp);
    r |= sembed_writer_add_f32(w, "train.distill.cl_weight", p->cl_weight);
    if (p->sim_weight > 0) r |= sembed_writer_add_f32(w, "train.distill.sim_weight", p->sim_weight);
    // The teacher step writes X.json next to X.npy (package names, versions, tarball hashes):
    // copied verbatim when it is there, small and valid UTF-8 without NULs.
    size_t n = strlen(p->teacher_path);
    if (n > 4 && !strcmp(p->teacher_path + n - 4, ".npy")) {
        char *jp = malloc(n + 2);
        if (!jp) return SEMBED_ENOMEM;
        memcpy(jp, p->teacher_path, n - 4);
        strcpy(jp + n - 4, ".json");
        FILE *f = fopen(jp, "rb");
        free(jp);
        if (f) {
            char *buf = malloc(65537);
            size_t len = buf ? fread(buf, 1, 65536, f) : 0;
            bool ok = buf && len > 0 && len < 65536 && !memchr(buf, 0, len);
            fclose(f);
            if (ok) {
                buf[len] = 0;
                r |= sembed_writer_add_str(w, "train.distill.teacher_json", buf);
            }
            free(buf);
        }
    }
    return r ? SEMBED_EINVAL : 0;
}
