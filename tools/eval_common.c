// tools/eval_common.c: shared by cmd_eval.c and cmd_analyze.c (see eval_common.h).
#include "tools/eval_common.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/cli.h"
#include "train/evalsets.h"

bool ec_parse_pooling(const char *cmd, const char *arg, enum sembed_pooling *out) {
    if (!strcmp(arg, "default")) {
        *out = SEMBED_POOLING_DEFAULT;
        return true;
    }
    if (sembed_pooling_parse(arg, out) == 0) return true;
    cli_error(CLI_USAGE, cmd, "--pooling %s: expected cls, cls_before_pooler, mean, max, first_last_avg or default",
              arg);
    return false;
}

bool ec_parse_uint(const char *cmd, const char *flag, const char *arg, unsigned max, unsigned *out) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (errno || end == arg || *end || arg[0] == '-' || v == 0 || v > max) {
        cli_error(CLI_USAGE, cmd, "%s %s: expected an integer in 1..%u", flag, arg, max);
        return false;
    }
    *out = (unsigned)v;
    return true;
}

int ec_option(const char *cmd, int c, const char *arg, struct ec_opts *o) {
    unsigned u;
    switch (c) {
    case EC_OPT_POOLING: return ec_parse_pooling(cmd, arg, &o->pooling) ? 1 : -1;
    case EC_OPT_MAXLEN: return ec_parse_uint(cmd, "--max-length", arg, 1u << 20, &o->max_length) ? 1 : -1;
    case EC_OPT_BATCH: return ec_parse_uint(cmd, "--batch", arg, 1u << 20, &o->batch) ? 1 : -1;
    case EC_OPT_THREADS:
        if (!ec_parse_uint(cmd, "--threads", arg, 4096, &u)) return -1;
        o->threads = (int)u;
        return 1;
    case EC_OPT_INT8: o->compute_set = true; o->compute = SEMBED_COMPUTE_INT8; return 1;
    case EC_OPT_COMPUTE:
        o->compute_set = true;
        if (!strcmp(arg, "f32")) o->compute = SEMBED_COMPUTE_F32;
        else if (!strcmp(arg, "int8")) o->compute = SEMBED_COMPUTE_INT8;
        else if (!strcmp(arg, "auto")) o->compute = SEMBED_COMPUTE_AUTO;
        else {
            cli_error(CLI_USAGE, cmd, "--compute %s: expected f32, int8 or auto", arg);
            return -1;
        }
        return 1;
    default: return 0;
    }
}

int ec_open(const char *cmd, const char *path, const struct ec_opts *o, struct ec_model *m) {
    memset(m, 0, sizeof *m);
    m->path = path;
    struct sembed_model_params mp = sembed_model_default_params();
    if (o->compute_set) mp.compute = o->compute;
    int rc = sembed_model_load(path, &mp, &m->model);
    if (rc) return cli_error(CLI_FAIL, cmd, "cannot load %s: %s", path, sembed_strerror(rc));
    struct sembed_context_params cp = sembed_context_default_params();
    cp.pooling = o->pooling;
    cp.n_threads = o->threads;
    if (o->batch) cp.batch_size = o->batch;
    if (o->max_length) cp.max_length = o->max_length;
    rc = sembed_context_create(m->model, &cp, &m->ctx);
    if (rc) {
        sembed_model_free(m->model);
        m->model = NULL;
        return cli_error(CLI_FAIL, cmd, "%s: cannot create a context: %s", path, sembed_strerror(rc));
    }
    m->dim = sembed_model_dim(m->model);
    return 0;
}

void ec_close(struct ec_model *m) {
    sembed_context_free(m->ctx);
    sembed_model_free(m->model);
    m->ctx = NULL;
    m->model = NULL;
}

struct progress {
    const char *what;
};

static void on_progress(size_t done, size_t total, void *user) {
    const struct progress *p = user;
    fprintf(stderr, "\r  embedding %s: %zu/%zu", p->what, done, total);
    if (done == total) fputs("\r\033[K", stderr);
    fflush(stderr);
}

int ec_embed(const char *cmd, struct ec_model *m, const char *what, const char *const *texts, size_t n,
             float *out) {
    struct progress p = {what};
    int rc = ev_embed_texts(m->ctx, m->dim, texts, n, 256, out, cli_stderr_is_tty() ? on_progress : NULL, &p);
    if (rc) return cli_error(CLI_FAIL, cmd, "%s: embedding %s failed: %s", m->path, what, sembed_strerror(rc));
    return 0;
}

json_object *ec_json_num(double v) { return isfinite(v) ? json_object_new_double(v) : NULL; }
