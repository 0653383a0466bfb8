// semb_cmp A.semb B.semb [TOL]: compare the f32 tensors of two .semb files (same names, same
// order). Prints the worst max abs diff (and the tensor), "bit-identical" when every byte agrees.
// Exit 0 when every tensor's max abs diff <= TOL (default 0: bit-identical), 1 otherwise, 2 on
// unreadable or mismatched files.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/semb.h"

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: semb_cmp A.semb B.semb [TOL]\n"); return 2; }
    double tol = argc > 3 ? atof(argv[3]) : 0.0;
    struct sembed_file *fa, *fb;
    if (sembed_file_open(argv[1], &fa) || sembed_file_open(argv[2], &fb)) { fprintf(stderr, "semb_cmp: cannot open the files\n"); return 2; }
    int64_t n = sembed_file_n_tensors(fa);
    if (n != sembed_file_n_tensors(fb)) { fprintf(stderr, "semb_cmp: %lld vs %lld tensors\n", (long long)n, (long long)sembed_file_n_tensors(fb)); return 2; }
    double worst = 0;
    const char *wn = "";
    int64_t differ = 0;
    size_t floats = 0;
    for (int64_t i = 0; i < n; i++) {
        struct sembed_tensor ta, tb;
        if (sembed_file_tensor(fa, i, &ta) || sembed_file_tensor(fb, i, &tb) || strcmp(ta.name, tb.name) || ta.nbytes != tb.nbytes ||
            ta.dtype != SEMBED_DTYPE_F32 || tb.dtype != SEMBED_DTYPE_F32) {
            fprintf(stderr, "semb_cmp: tensor %lld differs in name, size or dtype (only f32 is compared)\n", (long long)i);
            return 2;
        }
        floats += ta.nbytes / 4;
        if (!memcmp(ta.data, tb.data, ta.nbytes)) continue;
        differ++;
        const float *x = ta.data, *y = tb.data;
        for (size_t k = 0; k < ta.nbytes / 4; k++) {
            double d = fabs((double)x[k] - y[k]);
            if (d > worst || isnan(d)) { worst = isnan(d) ? INFINITY : d; wn = ta.name; }
        }
    }
    if (!differ) printf("semb_cmp: %lld tensors, %zu floats: bit-identical\n", (long long)n, floats);
    else printf("semb_cmp: %lld tensors, %zu floats: %lld tensors differ, worst max abs diff %.3g (%s), tolerance %.3g\n",
                (long long)n, floats, (long long)differ, worst, wn, tol);
    sembed_file_free(fa);
    sembed_file_free(fb);
    return worst <= tol ? 0 : 1;
}
