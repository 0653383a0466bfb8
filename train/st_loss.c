// Contrastive loss (InfoNCE over in-batch negatives) on cosine similarity / temperature.
// SimCSE, Gao, Yao, Chen 2021, eq. 1 (unsup) and eq. 5 (sup with hard negatives); the hard
// negative weight is added to the logit of each row's own hard negative, as in SimCSE's code.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"
#include "train/st.h"

double st_infonce(const float *z, int B, int H, bool hard_neg, float temp, float hn_weight, float weight,
                  float *dz) {
    int R = hard_neg ? 3 * B : 2 * B, C = hard_neg ? 2 * B : B;
    double *u = malloc(((size_t)R * H + (size_t)R + (size_t)C + (size_t)R * H) * sizeof(double));
    SEMBED_ASSERT(u);
    double *nrm = u + (size_t)R * H, *row = nrm + R, *du = row + C;
    for (int r = 0; r < R; r++) {
        double s = 0.0;
        for (int i = 0; i < H; i++) s += (double)z[(size_t)r * H + i] * z[(size_t)r * H + i];
        // torch.cosine_similarity clamps the product of norms at eps = 1e-8
        nrm[r] = sqrt(s) > 1e-8 ? sqrt(s) : 1e-8;
        for (int i = 0; i < H; i++) u[(size_t)r * H + i] = z[(size_t)r * H + i] / nrm[r];
    }
    memset(du, 0, (size_t)R * H * sizeof(double));
    double loss = 0.0;
    for (int a = 0; a < B; a++) {
        const double *ua = u + (size_t)a * H;
        double mx = -INFINITY;
        for (int j = 0; j < C; j++) {
            const double *ub = u + (size_t)(B + j) * H;
            double d = 0.0;
            for (int i = 0; i < H; i++) d += ua[i] * ub[i];
            row[j] = d / temp + (hard_neg && j == B + a ? hn_weight : 0.0);
            mx = row[j] > mx ? row[j] : mx;
        }
        double s = 0.0;
        for (int j = 0; j < C; j++) s += exp(row[j] - mx);
        loss += log(s) + mx - row[a];
        // d loss_a / d logit_j = softmax_j - [j == a]; d logit / d cos = 1/temp
        for (int j = 0; j < C; j++) {
            double g = (exp(row[j] - mx) / s - (j == a ? 1.0 : 0.0)) * weight / B / temp;
            const double *ub = u + (size_t)(B + j) * H;
            double *dua = du + (size_t)a * H, *dub = du + (size_t)(B + j) * H;
            for (int i = 0; i < H; i++) { dua[i] += g * ub[i]; dub[i] += g * ua[i]; }
        }
    }
    // through the normalisation: dz = (du - (du.u) u) / |z|
    for (int r = 0; r < R; r++) {
        const double *ur = u + (size_t)r * H, *dr = du + (size_t)r * H;
        double dot = 0.0;
        for (int i = 0; i < H; i++) dot += dr[i] * ur[i];
        for (int i = 0; i < H; i++) dz[(size_t)r * H + i] = (float)((dr[i] - dot * ur[i]) / nrm[r]);
    }
    free(u);
    return loss / B;
}
