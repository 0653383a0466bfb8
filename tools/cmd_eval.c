// `sembed eval -m MODEL --sts PATH...`: STS evaluation as SentEval / SimCSE run it: cosine
// similarity of the two sentence embeddings against the gold score, Spearman and Pearson x100
// per subset, and per task the "all" (subsets concatenated), "mean" and "wmean" aggregates.
#include <getopt.h>
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "tools/eval_common.h"
#include "train/evalsets.h"
#include "train/metrics.h"

#define MAX_TASKS 64

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed eval -m MODEL.semb --sts PATH [--sts PATH...] [options]\n\n"
            "Semantic textual similarity: the cosine of the two sentence embeddings of each pair is\n"
            "ranked against the gold score (Spearman's rho with average ranks for ties, and Pearson's r,\n"
            "both x100). Per task: each subset, then SentEval's aggregates \"all\" (subsets concatenated;\n"
            "the numbers the SimCSE paper reports), \"mean\" and \"wmean\" (weighted by pair count).\n\n"
            "PATH is one of\n"
            "  an STS-B file      sts-{train,dev,test}.csv, SentEval or raw (original case) layout\n"
            "  an STS12-16 folder STS.input.<set>.txt + STS.gs.<set>.txt (unscored pairs skipped),\n"
            "                     or one STS.input.<set>.txt\n"
            "  a SICK file        SICK_*.txt (relatedness score as gold)\n\n"
            "options:\n"
            "  -m, --model PATH     the .semb model\n"
            "      --sts PATH       an evaluation set (repeatable)\n"
            "      --pooling P      override the file's pooler: cls, cls_before_pooler, mean, max,\n"
            "                       first_last_avg (default: the file's pooling.mode)\n"
            "      --max-length N   tokens per sentence incl. [CLS]/[SEP] (default: the model's)\n"
            "      --batch N        sentences per forward pass (default: the runtime's)\n"
            "      --threads N      threads (default: all cores / OMP_NUM_THREADS)\n"
            "      --int8           run the int8 kernels (same as --compute int8)\n"
            "      --compute MODE   f32 | int8 | auto (default: the file's: int8 for q8 files, else f32)\n"
            "      --strict         a malformed line in a set is fatal (default: reported with\n"
            "                       file:line and skipped)\n"
            "      --json FILE      also write the results as JSON (\"-\": JSON on stdout instead of\n"
            "                       the table)\n"
            "  -h, --help           this text\n\n"
            "Exit status: 0 ok, 1 runtime failure, 2 usage error. See docs/eval.md.\n");
}

struct task_result {
    struct ev_task *task;
    struct mt_corr *per_set; // [n_sets]
    struct mt_agg agg;
};

// Cosines of every pair of every set of a task, then the statistics.
static int eval_task(struct ec_model *m, struct task_result *r) {
    struct ev_task *t = r->task;
    r->per_set = calloc(t->n_sets, sizeof *r->per_set);
    struct mt_subset *subs = calloc(t->n_sets, sizeof *subs);
    double **cos = calloc(t->n_sets, sizeof *cos);
    int rc = r->per_set && subs && cos ? 0 : cli_error(CLI_FAIL, "eval", "out of memory");
    for (size_t s = 0; s < t->n_sets && !rc; s++) {
        const struct ev_set *set = &t->sets[s];
        size_t n = set->n;
        const char **texts = malloc(2 * n * sizeof *texts);
        float *emb = malloc(2 * n * m->dim * sizeof *emb);
        cos[s] = malloc(n * sizeof *cos[s]);
        if (!texts || !emb || !cos[s]) rc = cli_error(CLI_FAIL, "eval", "out of memory (%zu pairs)", n);
        if (!rc) {
            memcpy(texts, set->s1, n * sizeof *texts);
            memcpy(texts + n, set->s2, n * sizeof *texts);
            char what[256];
            snprintf(what, sizeof what, "%s/%s", t->name, set->name);
            rc = ec_embed("eval", m, what, texts, 2 * n, emb);
        }
        for (size_t i = 0; i < n && !rc; i++) cos[s][i] = mt_cosine(emb + i * m->dim, emb + (n + i) * m->dim, m->dim);
        subs[s] = (struct mt_subset){cos[s], set->gold, n};
        free(texts);
        free(emb);
    }
    if (!rc) {
        int mrc = mt_aggregate(subs, t->n_sets, r->per_set, &r->agg);
        if (mrc) rc = cli_error(CLI_FAIL, "eval", "%s: statistics failed: %s", t->path, sembed_strerror(mrc));
    }
    if (cos)
        for (size_t s = 0; s < t->n_sets; s++) free(cos[s]);
    free(cos);
    free(subs);
    return rc;
}

static void print_row(const char *task, const char *set, size_t n, struct mt_corr c) {
    printf("%-22s %-22s %7zu %9.2f %9.2f\n", task, set, n, c.spearman, c.pearson);
}

static void print_table(const struct ec_model *m, const char *compute, const struct task_result *r, size_t nt,
                        double avg) {
    printf("model: %s (pooling %s, dim %zu, %s)\n\n", m->path, sembed_pooling_name(sembed_context_pooling(m->ctx)),
           m->dim, compute);
    printf("%-22s %-22s %7s %9s %9s\n", "task", "set", "pairs", "spearman", "pearson");
    for (size_t i = 0; i < nt; i++) {
        const struct ev_task *t = r[i].task;
        for (size_t s = 0; s < t->n_sets; s++) print_row(s ? "" : t->name, t->sets[s].name, t->sets[s].n, r[i].per_set[s]);
        if (t->n_sets > 1) {
            print_row("", "all", r[i].agg.n_total, r[i].agg.all);
            print_row("", "mean", r[i].agg.n_total, r[i].agg.mean);
            print_row("", "wmean", r[i].agg.n_total, r[i].agg.wmean);
        }
    }
    if (nt > 1) printf("\navg over %zu tasks (spearman \"all\"): %.2f\n", nt, avg);
    for (size_t i = 0; i < nt; i++)
        for (size_t s = 0; s < r[i].task->n_sets; s++) {
            const struct ev_set *set = &r[i].task->sets[s];
            if (set->n_unscored || set->n_malformed)
                printf("note: %s/%s: %zu unscored pairs skipped, %zu malformed lines skipped\n", r[i].task->name,
                       set->name, set->n_unscored, set->n_malformed);
        }
}

static json_object *corr_json(struct mt_corr c, size_t n) {
    json_object *o = json_object_new_object();
    json_object_object_add(o, "spearman", ec_json_num(c.spearman));
    json_object_object_add(o, "pearson", ec_json_num(c.pearson));
    json_object_object_add(o, "n", json_object_new_uint64(n));
    return o;
}

static json_object *results_json(const struct ec_model *m, const char *compute, const struct task_result *r,
                                 size_t nt, double avg) {
    json_object *root = json_object_new_object();
    json_object_object_add(root, "model", json_object_new_string(m->path));
    json_object_object_add(root, "pooling",
                           json_object_new_string(sembed_pooling_name(sembed_context_pooling(m->ctx))));
    json_object_object_add(root, "compute", json_object_new_string(compute));
    json_object_object_add(root, "dim", json_object_new_uint64(m->dim));
    json_object_object_add(root, "max_length", json_object_new_uint64(sembed_context_max_length(m->ctx)));
    json_object *tasks = json_object_new_array();
    for (size_t i = 0; i < nt; i++) {
        const struct ev_task *t = r[i].task;
        json_object *to = json_object_new_object();
        json_object_object_add(to, "name", json_object_new_string(t->name));
        json_object_object_add(to, "path", json_object_new_string(t->path));
        json_object_object_add(to, "format", json_object_new_string(ev_format_name(t->format)));
        json_object *sets = json_object_new_array();
        for (size_t s = 0; s < t->n_sets; s++) {
            const struct ev_set *set = &t->sets[s];
            json_object *so = corr_json(r[i].per_set[s], set->n);
            json_object_object_add(so, "name", json_object_new_string(set->name));
            json_object_object_add(so, "path", json_object_new_string(set->path));
            json_object_object_add(so, "unscored", json_object_new_uint64(set->n_unscored));
            json_object_object_add(so, "malformed", json_object_new_uint64(set->n_malformed));
            json_object_array_add(sets, so);
        }
        json_object_object_add(to, "sets", sets);
        json_object_object_add(to, "all", corr_json(r[i].agg.all, r[i].agg.n_total));
        json_object_object_add(to, "mean", corr_json(r[i].agg.mean, r[i].agg.n_total));
        json_object_object_add(to, "wmean", corr_json(r[i].agg.wmean, r[i].agg.n_total));
        json_object_array_add(tasks, to);
    }
    json_object_object_add(root, "tasks", tasks);
    json_object_object_add(root, "avg_spearman_all", ec_json_num(avg));
    return root;
}

static int write_json(json_object *root, const char *path) {
    const char *txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!strcmp(path, "-")) {
        printf("%s\n", txt);
        return 0;
    }
    size_t n = strlen(path);
    char *tmp = malloc(n + 8);
    if (!tmp) return cli_error(CLI_FAIL, "eval", "out of memory");
    snprintf(tmp, n + 8, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f && fprintf(f, "%s\n", txt) >= 0;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    if (!ok) {
        remove(tmp);
        free(tmp);
        return cli_error(CLI_FAIL, "eval", "cannot write %s", path);
    }
    free(tmp);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    enum { OPT_STS = 256, OPT_STRICT, OPT_JSON };
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},     {"sts", required_argument, NULL, OPT_STS},
        EC_LONG_OPTIONS,                             {"strict", no_argument, NULL, OPT_STRICT},
        {"json", required_argument, NULL, OPT_JSON}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct ec_opts o = {0};
    const char *model = NULL, *json = NULL, *sts[MAX_TASKS];
    size_t n_sts = 0;
    bool strict = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case OPT_STS:
            if (n_sts == MAX_TASKS) return cli_error(CLI_USAGE, "eval", "at most %d --sts paths", MAX_TASKS);
            sts[n_sts++] = optarg;
            break;
        case OPT_STRICT: strict = true; break;
        case OPT_JSON: json = optarg; break;
        case 'h': usage(stdout); return CLI_OK;
        case EC_OPT_POOLING: case EC_OPT_MAXLEN: case EC_OPT_BATCH: case EC_OPT_THREADS: case EC_OPT_INT8:
        case EC_OPT_COMPUTE:
            if (ec_option("eval", c, optarg, &o) < 0) return CLI_USAGE;
            break;
        case ':': return cli_error(CLI_USAGE, "eval", "%s needs a value", argv[optind - 1]);
        default: return cli_error(CLI_USAGE, "eval", "unknown option '%s' (see sembed eval --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_error(CLI_USAGE, "eval", "unexpected argument '%s'", argv[optind]);
    if (!model) return cli_error(CLI_USAGE, "eval", "-m MODEL is required");
    if (!n_sts) return cli_error(CLI_USAGE, "eval", "at least one --sts PATH is required");

    struct task_result r[MAX_TASKS];
    memset(r, 0, sizeof r);
    int rc = 0;
    size_t nt = 0;
    for (; nt < n_sts && !rc; nt++) {
        int lrc = ev_task_load(sts[nt], EV_FORMAT_AUTO, strict, &r[nt].task);
        if (lrc) rc = cli_error(CLI_FAIL, "eval", "cannot read %s: %s", sts[nt], sembed_strerror(lrc));
    }
    struct ec_model m = {0};
    if (!rc) rc = ec_open("eval", model, &o, &m);
    for (size_t i = 0; i < nt && !rc; i++) rc = eval_task(&m, &r[i]);
    if (!rc) {
        const char *compute = sembed_compute_name(sembed_model_compute(m.model));
        double avg = 0;
        for (size_t i = 0; i < nt; i++) avg += r[i].agg.all.spearman;
        avg /= (double)nt;
        bool json_stdout = json && !strcmp(json, "-");
        if (!json_stdout) print_table(&m, compute, r, nt, avg);
        if (json) {
            json_object *root = results_json(&m, compute, r, nt, avg);
            rc = write_json(root, json);
            json_object_put(root);
        }
    }
    ec_close(&m);
    for (size_t i = 0; i < nt; i++) {
        ev_task_free(r[i].task);
        free(r[i].per_set);
    }
    return rc;
}
