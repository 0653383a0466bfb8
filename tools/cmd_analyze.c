// `sembed analyze -m MODEL [-m MODEL2...] --sts PATH [--svg-dir DIR]`: the geometry SimCSE is
// about. Per model, on the sentences of the given STS sets: alignment and uniformity (Wang & Isola
// 2020; SimCSE sec. 2 and 6.1), anisotropy (mean pairwise cosine, singular value spectrum), and SVG
// plots: the align/uniform plane (like SimCSE's Figure 3), spectrum curves, training curves from
// `sembed train --log` CSV files.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tools/cli.h"
#include "tools/eval_common.h"
#include "tools/svg.h"
#include "train/evalsets.h"
#include "train/metrics.h"

#define MAX_MODELS 16
#define MAX_TASKS 16
#define MAX_LOGS 16

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed analyze -m MODEL.semb [-m MODEL2.semb ...] --sts PATH [--sts PATH...] [options]\n"
            "       sembed analyze --log TRAIN.csv [--log ...] --svg-dir DIR\n\n"
            "Geometry of the sentence embeddings of each model, on the sentences of the STS sets given\n"
            "(same PATH kinds as `sembed eval`; duplicate sentences counted once), L2-normalised:\n"
            "  l_align    mean ||f(x) - f(x+)||^2 over positive pairs (gold >= --pos-threshold)\n"
            "  l_uniform  log mean exp(-2 ||f(x) - f(y)||^2) over all pairs of distinct sentences\n"
            "  mean_cos   mean cosine over all pairs of distinct sentences (anisotropy)\n"
            "  sv2/sv1, erank  singular values of the sentence x dim matrix normalised to the largest,\n"
            "             and their effective rank exp(entropy of sv / sum sv)\n"
            "Lower l_align and l_uniform are better (Wang & Isola 2020; SimCSE sec. 2).\n\n"
            "options:\n"
            "  -m, --model PATH       a .semb model (repeatable, up to %d)\n"
            "      --label NAME       name of the i-th model in tables and plots (repeatable;\n"
            "                         default: the file name without .semb)\n"
            "      --sts PATH         sentences and scored pairs (repeatable)\n"
            "      --pos-threshold X  gold score at or above which a pair is positive (default 4.0)\n"
            "      --max-sentences N  use only the first N distinct sentences for l_uniform, mean_cos and\n"
            "                         the spectrum (default: all)\n"
            "      --center           spectrum of the column-centred matrix (default: raw)\n"
            "      --svg-dir DIR      write align_uniform.svg, spectrum.svg (and training.svg) there\n"
            "      --arrows           connect the models in the align/uniform plot in the order given\n"
            "                         (e.g. MLM -> unsup -> sup)\n"
            "      --log CSV          a `sembed train --log` file (header row; columns step, loss, lr,\n"
            "                         dev_spearman are plotted when present); repeatable\n"
            "      --pooling P        override the file's pooler (as in `sembed eval`)\n"
            "      --max-length N     tokens per sentence incl. [CLS]/[SEP] (default: the model's)\n"
            "      --batch N          sentences per forward pass\n"
            "      --threads N        threads (default: all cores / OMP_NUM_THREADS)\n"
            "      --int8             run the int8 kernels (same as --compute int8)\n"
            "      --compute MODE     f32 | int8 | auto (default: the file's)\n"
            "      --json FILE        also write the results (and full spectra) as JSON (\"-\": stdout)\n"
            "  -h, --help             this text\n\n"
            "Exit status: 0 ok, 1 runtime failure, 2 usage error. See docs/eval.md.\n",
            MAX_MODELS);
}

// ---------------------------------------------------------------- sentences and pairs

struct corpus {
    size_t n_sent;        // distinct sentences
    const char **sent;    // [n_sent] in order of first appearance
    size_t n_pos;         // positive pairs
    size_t *pos_a, *pos_b; // [n_pos] sentence ids
    size_t n_pairs;       // all scored pairs read
};

struct occ {
    const char *text;
    size_t pos;
};

static int cmp_occ(const void *pa, const void *pb) {
    const struct occ *a = pa, *b = pb;
    int c = strcmp(a->text, b->text);
    if (c) return c;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static void corpus_free(struct corpus *c) {
    free(c->sent);
    free(c->pos_a);
    free(c->pos_b);
    memset(c, 0, sizeof *c);
}

// Distinct sentences of all sets (first appearance order) and the ids of the positive pairs.
static int corpus_build(struct ev_task *const *tasks, size_t nt, double threshold, struct corpus *c) {
    memset(c, 0, sizeof *c);
    size_t n_pairs = 0;
    for (size_t t = 0; t < nt; t++) n_pairs += ev_task_n_pairs(tasks[t]);
    size_t n_occ = 2 * n_pairs;
    struct occ *o = malloc(n_occ * sizeof *o);
    size_t *rep = malloc(n_occ * sizeof *rep), *id = malloc(n_occ * sizeof *id);
    c->sent = malloc(n_occ * sizeof *c->sent);
    c->pos_a = malloc(n_pairs * sizeof *c->pos_a);
    c->pos_b = malloc(n_pairs * sizeof *c->pos_b);
    if (!o || !rep || !id || !c->sent || !c->pos_a || !c->pos_b) {
        free(o);
        free(rep);
        free(id);
        corpus_free(c);
        return cli_error(CLI_FAIL, "analyze", "out of memory");
    }
    // Occurrence 2k is sentence 1 of pair k, 2k+1 sentence 2, pairs in reading order.
    size_t k = 0;
    for (size_t t = 0; t < nt; t++)
        for (size_t s = 0; s < tasks[t]->n_sets; s++)
            for (size_t i = 0; i < tasks[t]->sets[s].n; i++, k++) {
                o[2 * k] = (struct occ){tasks[t]->sets[s].s1[i], 2 * k};
                o[2 * k + 1] = (struct occ){tasks[t]->sets[s].s2[i], 2 * k + 1};
            }
    qsort(o, n_occ, sizeof *o, cmp_occ);
    for (size_t a = 0; a < n_occ;) {
        size_t b = a;
        while (b < n_occ && !strcmp(o[b].text, o[a].text)) rep[o[b++].pos] = o[a].pos; // o[a]: first appearance
        a = b;
    }
    for (size_t p = 0; p < n_occ; p++) {
        if (rep[p] == p) {
            id[p] = c->n_sent;
            c->sent[c->n_sent++] = NULL; // filled below
        } else id[p] = id[rep[p]];
    }
    k = 0;
    for (size_t t = 0; t < nt; t++)
        for (size_t s = 0; s < tasks[t]->n_sets; s++)
            for (size_t i = 0; i < tasks[t]->sets[s].n; i++, k++) {
                const struct ev_set *set = &tasks[t]->sets[s];
                c->sent[id[2 * k]] = set->s1[i];
                c->sent[id[2 * k + 1]] = set->s2[i];
                if (set->gold[i] >= threshold) {
                    c->pos_a[c->n_pos] = id[2 * k];
                    c->pos_b[c->n_pos] = id[2 * k + 1];
                    c->n_pos++;
                }
            }
    c->n_pairs = n_pairs;
    free(o);
    free(rep);
    free(id);
    return 0;
}

// ---------------------------------------------------------------- per model

struct model_result {
    const char *path;
    char label[128];
    const char *pooling;
    size_t dim, n_used;
    size_t n_zero;
    double align, uniform, mean_cos, erank;
    double *sv; // [n_sv] normalised to sv[0]
    size_t n_sv;
};

static double effective_rank(const double *sv, size_t n) {
    // Roy & Vetterli 2007: exp of the Shannon entropy of p_i = sv_i / sum sv.
    double sum = 0, h = 0;
    for (size_t i = 0; i < n; i++) sum += sv[i];
    if (!(sum > 0)) return NAN;
    for (size_t i = 0; i < n; i++)
        if (sv[i] > 0) h -= sv[i] / sum * log(sv[i] / sum);
    return exp(h);
}

static int analyze_model(const char *path, const struct ec_opts *o, const struct corpus *c, size_t max_sent,
                         bool center, struct model_result *r) {
    struct ec_model m;
    int rc = ec_open("analyze", path, o, &m);
    if (rc) return rc;
    r->path = path;
    r->pooling = sembed_pooling_name(sembed_context_pooling(m.ctx));
    r->dim = m.dim;
    size_t d = m.dim, n = c->n_sent;
    float *e = malloc(n * d * sizeof *e);
    float *a = malloc((c->n_pos ? c->n_pos : 1) * d * sizeof *a), *b = malloc((c->n_pos ? c->n_pos : 1) * d * sizeof *b);
    if (!e || !a || !b) rc = cli_error(CLI_FAIL, "analyze", "out of memory (%zu sentences x %zu)", n, d);
    if (!rc) rc = ec_embed("analyze", &m, r->label, c->sent, n, e);
    if (!rc) {
        r->n_zero = mt_normalize_rows(e, n, d);
        for (size_t i = 0; i < c->n_pos; i++) {
            memcpy(a + i * d, e + c->pos_a[i] * d, d * sizeof *a);
            memcpy(b + i * d, e + c->pos_b[i] * d, d * sizeof *b);
        }
        r->align = mt_alignment(a, b, c->n_pos, d);
        r->n_used = max_sent && max_sent < n ? max_sent : n;
        r->uniform = mt_uniformity(e, r->n_used, d, 2.0, o->threads);
        r->mean_cos = mt_mean_cosine(e, r->n_used, d);
        r->n_sv = r->n_used < d ? r->n_used : d;
        r->sv = malloc(r->n_sv * sizeof *r->sv);
        if (!r->sv) rc = cli_error(CLI_FAIL, "analyze", "out of memory");
    }
    if (!rc) {
        int mrc = mt_singular_values(e, r->n_used, d, center, o->threads, r->sv);
        if (mrc) rc = cli_error(CLI_FAIL, "analyze", "%s: spectrum failed: %s", path, sembed_strerror(mrc));
    }
    if (!rc) {
        double top = r->n_sv ? r->sv[0] : 0;
        for (size_t i = 0; i < r->n_sv; i++) r->sv[i] = top > 0 ? r->sv[i] / top : 0;
        r->erank = effective_rank(r->sv, r->n_sv);
    }
    free(e);
    free(a);
    free(b);
    ec_close(&m);
    return rc;
}

// ---------------------------------------------------------------- training logs

struct train_log {
    char label[128];
    size_t n;
    double *step, *loss, *lr, *dev; // [n], NaN where absent
    bool has_loss, has_lr, has_dev;
};

static void log_free(struct train_log *l) {
    free(l->step);
    free(l->loss);
    free(l->lr);
    free(l->dev);
}

static double cell(const char *s) {
    while (*s == ' ') s++;
    if (!*s) return NAN;
    char *e;
    double v = strtod(s, &e);
    while (*e == ' ') e++;
    return e == s || *e ? NAN : v;
}

// Split a CSV line (no quoting: the trainer writes numbers) at sep, in place.
static size_t split_csv(char *line, char sep, char **f, size_t max) {
    size_t n = 0;
    for (char *s = line;;) {
        char *t = strchr(s, sep);
        if (n < max) f[n] = s;
        n++;
        if (!t) break;
        *t = 0;
        s = t + 1;
    }
    return n < max ? n : max;
}

static int log_read(const char *path, struct train_log *l) {
    memset(l, 0, sizeof *l);
    FILE *f = fopen(path, "r");
    if (!f) return cli_error(CLI_FAIL, "analyze", "cannot read %s: %s", path, strerror(errno));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(l->label, sizeof l->label, "%s", base);
    char *dot = strrchr(l->label, '.');
    if (dot && dot != l->label) *dot = 0;
    char *line = NULL;
    size_t cap = 0, lineno = 0, n_cap = 0;
    ssize_t len;
    int col[4] = {-1, -1, -1, -1}; // step, loss, lr, dev_spearman
    static const char *names[4] = {"step", "loss", "lr", "dev_spearman"};
    char sep = ',';
    bool header = false;
    int rc = 0;
    char *fl[64];
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0] || line[0] == '#') continue;
        if (!header) {
            sep = strchr(line, '\t') && !strchr(line, ',') ? '\t' : ',';
            size_t nf = split_csv(line, sep, fl, 64);
            for (size_t i = 0; i < nf; i++) {
                char *h = fl[i];
                while (*h == ' ') h++;
                for (int k = 0; k < 4; k++)
                    if (!strcmp(h, names[k])) col[k] = (int)i;
            }
            if (col[0] < 0) {
                rc = cli_error(CLI_FAIL, "analyze", "%s:%zu: the header has no 'step' column", path, lineno);
                break;
            }
            header = true;
            continue;
        }
        size_t nf = split_csv(line, sep, fl, 64);
        double v[4];
        for (int k = 0; k < 4; k++) v[k] = col[k] >= 0 && (size_t)col[k] < nf ? cell(fl[col[k]]) : NAN;
        if (isnan(v[0])) {
            fprintf(stderr, "sembed analyze: %s:%zu: no step value, line skipped\n", path, lineno);
            continue;
        }
        if (l->n == n_cap) {
            n_cap = n_cap ? 2 * n_cap : 256;
            double *p[4] = {realloc(l->step, n_cap * sizeof(double)), NULL, NULL, NULL};
            if (p[0]) l->step = p[0];
            p[1] = realloc(l->loss, n_cap * sizeof(double));
            if (p[1]) l->loss = p[1];
            p[2] = realloc(l->lr, n_cap * sizeof(double));
            if (p[2]) l->lr = p[2];
            p[3] = realloc(l->dev, n_cap * sizeof(double));
            if (p[3]) l->dev = p[3];
            if (!p[0] || !p[1] || !p[2] || !p[3]) {
                rc = cli_error(CLI_FAIL, "analyze", "out of memory reading %s", path);
                break;
            }
        }
        l->step[l->n] = v[0];
        l->loss[l->n] = v[1];
        l->lr[l->n] = v[2];
        l->dev[l->n] = v[3];
        l->has_loss |= isfinite(v[1]);
        l->has_lr |= isfinite(v[2]);
        l->has_dev |= isfinite(v[3]);
        l->n++;
    }
    free(line);
    fclose(f);
    if (!rc && !header) rc = cli_error(CLI_FAIL, "analyze", "%s: no header row", path);
    if (!rc && l->n == 0) rc = cli_error(CLI_FAIL, "analyze", "%s: no data rows", path);
    return rc;
}

// ---------------------------------------------------------------- plots

static char *out_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int save(struct svg *s, const char *dir, const char *name, json_object *written) {
    char *p = out_path(dir, name);
    if (!p || svg_save(s, p) != 0) {
        int rc = cli_error(CLI_FAIL, "analyze", "cannot write %s/%s: %s", dir, name, strerror(errno));
        free(p);
        return rc;
    }
    json_object_array_add(written, json_object_new_string(p));
    if (cli_stderr_is_tty()) fprintf(stderr, "wrote %s\n", p);
    free(p);
    return 0;
}

static int plot_align_uniform(const struct model_result *r, size_t nm, const struct corpus *c, double thr,
                              const char *sets, bool arrows, const char *dir, json_object *written) {
    struct svg *s = svg_create(680, 520);
    if (!s) return cli_error(CLI_FAIL, "analyze", "out of memory");
    struct svg_panel p = {.left = 90, .top = 64, .width = 540, .height = 380,
                          .xlabel = "\xe2\x84\x93_uniform  (lower is better \xe2\x86\x90)",
                          .ylabel = "\xe2\x84\x93_align  (lower is better \xe2\x86\x93)"};
    double x[MAX_MODELS], y[MAX_MODELS];
    for (size_t i = 0; i < nm; i++) {
        x[i] = r[i].uniform;
        y[i] = r[i].align;
    }
    svg_panel_fit(&p, x, y, nm);
    svg_axes(s, &p);
    char note[512];
    snprintf(note, sizeof note, "%s: %zu positive pairs (gold \xe2\x89\xa5 %g), %zu sentences", sets, c->n_pos, thr,
             r[0].n_used);
    svg_title(s, p.left + p.width / 2, 26, "Alignment and uniformity");
    svg_label(s, p.left + p.width / 2, 46, "middle", 11, "#555", note);
    if (arrows)
        for (size_t i = 0; i + 1 < nm; i++) svg_arrow(s, &p, x[i], y[i], x[i + 1], y[i + 1], "#777");
    for (size_t i = 0; i < nm; i++) svg_marker(s, &p, x[i], y[i], svg_color(i), (int)i, r[i].label);
    int rc = save(s, dir, "align_uniform.svg", written);
    svg_free(s);
    return rc;
}

static int plot_spectrum(const struct model_result *r, size_t nm, bool center, const char *dir,
                         json_object *written) {
    struct svg *s = svg_create(720, 480);
    if (!s) return cli_error(CLI_FAIL, "analyze", "out of memory");
    struct svg_panel p = {.left = 90, .top = 50, .width = 580, .height = 350, .ylog = true,
                          .title = center ? "Singular values of the centred embedding matrix"
                                          : "Singular values of the embedding matrix",
                          .xlabel = "index", .ylabel = "\xcf\x83 / \xcf\x83_max  (log)"};
    size_t maxn = 0;
    double lo = 1;
    for (size_t i = 0; i < nm; i++) {
        maxn = r[i].n_sv > maxn ? r[i].n_sv : maxn;
        for (size_t k = 0; k < r[i].n_sv; k++)
            if (r[i].sv[k] > 0 && r[i].sv[k] < lo) lo = r[i].sv[k];
    }
    p.x0 = 1;
    p.x1 = maxn > 1 ? (double)maxn : 2;
    p.y0 = lo > 1e-8 ? lo : 1e-8; // below ~1e-7 the Gram-based values are rounding noise
    p.y1 = 1;
    svg_panel_nice(&p);
    svg_axes(s, &p);
    const char *labels[MAX_MODELS], *colors[MAX_MODELS];
    for (size_t i = 0; i < nm; i++) {
        double *xs = malloc(r[i].n_sv * sizeof *xs);
        if (!xs) {
            svg_free(s);
            return cli_error(CLI_FAIL, "analyze", "out of memory");
        }
        for (size_t k = 0; k < r[i].n_sv; k++) xs[k] = (double)(k + 1);
        svg_polyline(s, &p, xs, r[i].sv, r[i].n_sv, svg_color(i), 2, false);
        free(xs);
        labels[i] = r[i].label;
        colors[i] = svg_color(i);
    }
    svg_legend(s, &p, labels, colors, nm, true, false);
    int rc = save(s, dir, "spectrum.svg", written);
    svg_free(s);
    return rc;
}

static int plot_training(const struct train_log *lg, size_t nl, const char *dir, json_object *written) {
    bool any_dev = false, any_lr = false;
    for (size_t i = 0; i < nl; i++) {
        any_dev |= lg[i].has_dev;
        any_lr |= lg[i].has_lr;
    }
    int panels = 1 + any_dev + any_lr;
    double ph = 220, gap = 90;
    struct svg *s = svg_create(760, 40 + panels * (ph + gap));
    if (!s) return cli_error(CLI_FAIL, "analyze", "out of memory");
    const char *labels[MAX_LOGS], *colors[MAX_LOGS];
    for (size_t i = 0; i < nl; i++) {
        labels[i] = lg[i].label;
        colors[i] = svg_color(i);
    }
    double top = 50;
    for (int k = 0; k < 3; k++) {
        if ((k == 1 && !any_dev) || (k == 2 && !any_lr)) continue;
        struct svg_panel p = {.left = 90, .top = top, .width = 620, .height = ph, .xlabel = "step",
                              .title = k == 0 ? "Training loss" : k == 1 ? "STS-B dev Spearman" : "Learning rate",
                              .ylabel = k == 0 ? "loss" : k == 1 ? "Spearman" : "lr",
                              .x0 = INFINITY, .x1 = -INFINITY, .y0 = INFINITY, .y1 = -INFINITY};
        for (size_t i = 0; i < nl; i++) {
            const double *v = k == 0 ? lg[i].loss : k == 1 ? lg[i].dev : lg[i].lr;
            for (size_t j = 0; j < lg[i].n; j++) {
                if (!isfinite(v[j])) continue;
                p.x0 = fmin(p.x0, lg[i].step[j]);
                p.x1 = fmax(p.x1, lg[i].step[j]);
                p.y0 = fmin(p.y0, v[j]);
                p.y1 = fmax(p.y1, v[j]);
            }
        }
        if (k == 2) p.y0 = 0;
        svg_panel_nice(&p);
        svg_axes(s, &p);
        for (size_t i = 0; i < nl; i++) {
            const double *v = k == 0 ? lg[i].loss : k == 1 ? lg[i].dev : lg[i].lr;
            // Dev scores are logged every N steps only: draw through the rows that have one.
            size_t m = 0;
            double *xs = malloc(lg[i].n * sizeof *xs), *ys = malloc(lg[i].n * sizeof *ys);
            if (!xs || !ys) {
                free(xs);
                free(ys);
                svg_free(s);
                return cli_error(CLI_FAIL, "analyze", "out of memory");
            }
            for (size_t j = 0; j < lg[i].n; j++)
                if (isfinite(v[j])) {
                    xs[m] = lg[i].step[j];
                    ys[m++] = v[j];
                }
            svg_polyline(s, &p, xs, ys, m, svg_color(i), k == 0 ? 1.5 : 2, false);
            if (k == 1)
                for (size_t j = 0; j < m; j++) svg_marker(s, &p, xs[j], ys[j], svg_color(i), 0, NULL);
            free(xs);
            free(ys);
        }
        if (nl > 1 || k == 0) svg_legend(s, &p, labels, colors, nl, true, k == 1);
        top += ph + gap;
    }
    int rc = save(s, dir, "training.svg", written);
    svg_free(s);
    return rc;
}

// ---------------------------------------------------------------- output

static void print_table(const struct model_result *r, size_t nm, const struct corpus *c, double thr) {
    printf("sentences: %zu distinct from %zu scored pairs; positive pairs (gold >= %g): %zu\n\n", c->n_sent,
           c->n_pairs, thr, c->n_pos);
    printf("%-24s %-18s %8s %9s %9s %8s %8s %8s\n", "model", "pooling", "n", "l_align", "l_uniform", "mean_cos",
           "sv2/sv1", "erank");
    for (size_t i = 0; i < nm; i++)
        printf("%-24s %-18s %8zu %9.4f %9.4f %8.4f %8.4f %8.2f\n", r[i].label, r[i].pooling, r[i].n_used, r[i].align,
               r[i].uniform, r[i].mean_cos, r[i].n_sv > 1 ? r[i].sv[1] : NAN, r[i].erank);
    for (size_t i = 0; i < nm; i++)
        if (r[i].n_zero) printf("note: %s: %zu sentences embedded to the zero vector\n", r[i].label, r[i].n_zero);
}

static json_object *results_json(const struct model_result *r, size_t nm, const struct corpus *c, double thr,
                                 bool center, char *const *sts, size_t nt) {
    json_object *root = json_object_new_object(), *sets = json_object_new_array(), *models = json_object_new_array();
    for (size_t i = 0; i < nt; i++) json_object_array_add(sets, json_object_new_string(sts[i]));
    json_object_object_add(root, "sts", sets);
    json_object_object_add(root, "n_pairs", json_object_new_uint64(c->n_pairs));
    json_object_object_add(root, "n_sentences", json_object_new_uint64(c->n_sent));
    json_object_object_add(root, "pos_threshold", json_object_new_double(thr));
    json_object_object_add(root, "n_positive", json_object_new_uint64(c->n_pos));
    json_object_object_add(root, "spectrum_centered", json_object_new_boolean(center));
    for (size_t i = 0; i < nm; i++) {
        json_object *o = json_object_new_object(), *sv = json_object_new_array();
        json_object_object_add(o, "path", json_object_new_string(r[i].path));
        json_object_object_add(o, "label", json_object_new_string(r[i].label));
        json_object_object_add(o, "pooling", json_object_new_string(r[i].pooling));
        json_object_object_add(o, "dim", json_object_new_uint64(r[i].dim));
        json_object_object_add(o, "n_sentences_used", json_object_new_uint64(r[i].n_used));
        json_object_object_add(o, "l_align", ec_json_num(r[i].align));
        json_object_object_add(o, "l_uniform", ec_json_num(r[i].uniform));
        json_object_object_add(o, "mean_cosine", ec_json_num(r[i].mean_cos));
        json_object_object_add(o, "effective_rank", ec_json_num(r[i].erank));
        for (size_t k = 0; k < r[i].n_sv; k++) json_object_array_add(sv, ec_json_num(r[i].sv[k]));
        json_object_object_add(o, "spectrum", sv);
        json_object_array_add(models, o);
    }
    json_object_object_add(root, "models", models);
    return root;
}

static int write_json(json_object *root, const char *path) {
    const char *txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!strcmp(path, "-")) {
        printf("%s\n", txt);
        return 0;
    }
    char *tmp = malloc(strlen(path) + 8);
    if (!tmp) return cli_error(CLI_FAIL, "analyze", "out of memory");
    sprintf(tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fprintf(f, "%s\n", txt) >= 0;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok) remove(tmp);
    free(tmp);
    return ok ? 0 : cli_error(CLI_FAIL, "analyze", "cannot write %s", path);
}

static void default_label(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%s", b);
    size_t l = strlen(out);
    if (l > 5 && !strcmp(out + l - 5, ".semb")) out[l - 5] = 0;
}

int cmd_analyze(int argc, char **argv) {
    enum {
        OPT_STS = 256, OPT_LABEL, OPT_THR, OPT_MAXS, OPT_CENTER, OPT_SVG, OPT_ARROWS, OPT_LOG, OPT_JSON
    };
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},         {"sts", required_argument, NULL, OPT_STS},
        {"label", required_argument, NULL, OPT_LABEL},   {"pos-threshold", required_argument, NULL, OPT_THR},
        {"max-sentences", required_argument, NULL, OPT_MAXS}, {"center", no_argument, NULL, OPT_CENTER},
        {"svg-dir", required_argument, NULL, OPT_SVG},   {"arrows", no_argument, NULL, OPT_ARROWS},
        {"log", required_argument, NULL, OPT_LOG},       EC_LONG_OPTIONS,
        {"json", required_argument, NULL, OPT_JSON},     {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct ec_opts o = {0};
    char *models[MAX_MODELS], *labels[MAX_MODELS], *sts[MAX_TASKS], *logs[MAX_LOGS];
    size_t nm = 0, nlab = 0, nt = 0, nl = 0;
    const char *svg_dir = NULL, *json = NULL;
    double thr = 4.0;
    unsigned max_sent = 0;
    bool center = false, arrows = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (nm == MAX_MODELS) return cli_error(CLI_USAGE, "analyze", "at most %d models", MAX_MODELS);
            models[nm++] = optarg;
            break;
        case OPT_LABEL:
            if (nlab == MAX_MODELS) return cli_error(CLI_USAGE, "analyze", "at most %d labels", MAX_MODELS);
            labels[nlab++] = optarg;
            break;
        case OPT_STS:
            if (nt == MAX_TASKS) return cli_error(CLI_USAGE, "analyze", "at most %d --sts paths", MAX_TASKS);
            sts[nt++] = optarg;
            break;
        case OPT_LOG:
            if (nl == MAX_LOGS) return cli_error(CLI_USAGE, "analyze", "at most %d --log files", MAX_LOGS);
            logs[nl++] = optarg;
            break;
        case OPT_THR: {
            char *e;
            thr = strtod(optarg, &e);
            if (e == optarg || *e || !isfinite(thr))
                return cli_error(CLI_USAGE, "analyze", "--pos-threshold %s: expected a number", optarg);
            break;
        }
        case OPT_MAXS:
            if (!ec_parse_uint("analyze", "--max-sentences", optarg, 1u << 30, &max_sent)) return CLI_USAGE;
            if (max_sent < 2) return cli_error(CLI_USAGE, "analyze", "--max-sentences must be at least 2");
            break;
        case OPT_CENTER: center = true; break;
        case OPT_SVG: svg_dir = optarg; break;
        case OPT_ARROWS: arrows = true; break;
        case OPT_JSON: json = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        case EC_OPT_POOLING: case EC_OPT_MAXLEN: case EC_OPT_BATCH: case EC_OPT_THREADS: case EC_OPT_INT8:
        case EC_OPT_COMPUTE:
            if (ec_option("analyze", c, optarg, &o) < 0) return CLI_USAGE;
            break;
        case ':': return cli_error(CLI_USAGE, "analyze", "%s needs a value", argv[optind - 1]);
        default:
            return cli_error(CLI_USAGE, "analyze", "unknown option '%s' (see sembed analyze --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_error(CLI_USAGE, "analyze", "unexpected argument '%s'", argv[optind]);
    if (!nm && !nl) return cli_error(CLI_USAGE, "analyze", "give -m MODEL (with --sts PATH) or --log CSV");
    if (nm && !nt) return cli_error(CLI_USAGE, "analyze", "--sts PATH is required with -m");
    if (nl && !svg_dir) return cli_error(CLI_USAGE, "analyze", "--log needs --svg-dir DIR to plot into");
    if (nlab > nm) return cli_error(CLI_USAGE, "analyze", "%zu labels for %zu models", nlab, nm);
    if (svg_dir) {
        struct stat st;
        if (stat(svg_dir, &st) != 0 && mkdir(svg_dir, 0777) != 0)
            return cli_error(CLI_FAIL, "analyze", "cannot create %s: %s", svg_dir, strerror(errno));
    }

    int rc = 0;
    struct ev_task *tasks[MAX_TASKS] = {0};
    struct corpus corp = {0};
    struct model_result res[MAX_MODELS];
    struct train_log lg[MAX_LOGS];
    memset(res, 0, sizeof res);
    memset(lg, 0, sizeof lg);
    size_t loaded = 0, done = 0, logs_read = 0;
    for (; loaded < nt && !rc; loaded++) {
        int lrc = ev_task_load(sts[loaded], EV_FORMAT_AUTO, false, &tasks[loaded]);
        if (lrc) rc = cli_error(CLI_FAIL, "analyze", "cannot read %s: %s", sts[loaded], sembed_strerror(lrc));
    }
    if (!rc && nm) rc = corpus_build(tasks, loaded, thr, &corp);
    if (!rc && nm && corp.n_pos == 0)
        fprintf(stderr, "sembed analyze: no pair has gold >= %g: l_align is undefined\n", thr);
    for (; done < nm && !rc; done++) {
        if (done < nlab) snprintf(res[done].label, sizeof res[done].label, "%s", labels[done]);
        else default_label(models[done], res[done].label, sizeof res[done].label);
        rc = analyze_model(models[done], &o, &corp, max_sent, center, &res[done]);
    }
    for (; logs_read < nl && !rc; logs_read++) rc = log_read(logs[logs_read], &lg[logs_read]);

    json_object *written = json_object_new_array();
    if (!rc && nm && !(json && !strcmp(json, "-"))) print_table(res, nm, &corp, thr);
    if (!rc && svg_dir && nm) {
        char sets[256] = "";
        for (size_t i = 0; i < loaded; i++) {
            size_t l = strlen(sets);
            snprintf(sets + l, sizeof sets - l, "%s%s", i ? " + " : "", tasks[i]->name);
        }
        rc = plot_align_uniform(res, nm, &corp, thr, sets, arrows, svg_dir, written);
        if (!rc) rc = plot_spectrum(res, nm, center, svg_dir, written);
    }
    if (!rc && svg_dir && nl) rc = plot_training(lg, nl, svg_dir, written);
    if (!rc && json) {
        json_object *root = results_json(res, nm, &corp, thr, center, sts, nt);
        json_object_object_add(root, "svg", json_object_get(written));
        rc = write_json(root, json);
        json_object_put(root);
    }
    json_object_put(written);
    for (size_t i = 0; i < nm; i++) free(res[i].sv);
    for (size_t i = 0; i < nl; i++) log_free(&lg[i]);
    corpus_free(&corp);
    for (size_t i = 0; i < loaded; i++) ev_task_free(tasks[i]);
    return rc;
}
