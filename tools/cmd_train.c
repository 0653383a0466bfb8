// `sembed train`: SimCSE (unsup / sup) or MLM training; `--plot LOG.csv -o chart.svg` draws a log.
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sembed/train.h"
#include "tools/cli.h"
#include "tools/mpi_comm.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed train -m MODEL.semb --data FILE -o OUT.semb [options]\n"
            "       sembed train --init-random CONFIG --objective mlm --data FILE -o OUT.semb [options]\n"
            "       sembed train --plot LOG.csv -o chart.svg\n"
            "\n"
            "Fine-tune a sentence encoder with SimCSE (unsup: dropout views of one sentence; sup: sent0,sent1[,hard_neg]\n"
            "rows) or train it with masked-language modelling. Reproducible bit for bit for a given --seed, whatever\n"
            "--threads; resumable from --checkpoint.\n"
            "\n"
            "model and data:\n"
            "  -m, --model FILE          starting .semb\n"
            "      --init-random CONFIG  fresh encoder instead: a JSON file {\"layers\",\"hidden\",\"heads\",\"intermediate\",\n"
            "                            \"max_position\",\"type_vocab\",\"vocab\":\"vocab.txt\",\"lowercase\"} or the same as\n"
            "                            key=value,... (e.g. layers=2,hidden=128,heads=2,intermediate=512,vocab=vocab.txt)\n"
            "      --data FILE           unsup/mlm: one sentence per line; sup: TSV or CSV of sent0,sent1[,hard_neg]\n"
            "      --strict              malformed data lines are fatal (default: reported as FILE:LINE and skipped)\n"
            "  -o, --output FILE         output .semb (written atomically)\n");
    fprintf(out, // two literals: C99 caps one string literal at 4095 bytes
            "objective:\n"
            "      --objective NAME      unsup (default), sup, mlm, distill\n"
            "      --pooler NAME         cls (default: [CLS] + MLP), cls_before_pooler, mean\n"
            "      --mlp-only-train      train with cls + MLP, evaluate and infer with cls_before_pooler (SimCSE unsup)\n"
            "      --temp T              InfoNCE temperature (0.05)\n"
            "      --hard-neg-weight W   added to each hard negative's logit (0)\n"
            "      --mlm-weight W        auxiliary MLM loss for unsup/sup (0 = off; SimCSE uses 0.1)\n"
            "      --mlm-prob P          masking probability (0.15)\n"
            "distillation (--objective distill; docs/train.md \"Distillation\"):\n"
            "      --teacher FILE.npy    float32 (rows, dim): the teacher's vector of each line of --data, in order\n"
            "      --mse-weight W        MSE to the teacher through a Dense projection when widths differ (1)\n"
            "      --rel-weight W        KL of in-batch cosine-similarity softmaxes, teacher vs student (0)\n"
            "      --rel-temp T          temperature of the relational loss (0.05)\n"
            "      --sim-weight W        MSE between in-batch cosine-similarity matrices, teacher vs student (0)\n"
            "      --cl-weight W         add SimCSE unsup InfoNCE (dropout views) with this weight (0)\n"
            "optimisation:\n"
            "      --batch N             rows per step (64)\n"
            "      --max-length N        tokens per sentence incl. [CLS]/[SEP] (32)\n"
            "      --lr LR               peak learning rate (3e-5)\n"
            "      --epochs N            passes over the data (1), or\n"
            "      --steps N             total steps (schedule length)\n"
            "      --stop-after N        stop after step N this run (the schedule still ends at --steps)\n"
            "      --warmup W            linear warmup: steps (>= 1) or fraction of the steps (< 1) (0)\n"
            "      --weight-decay W      AdamW decoupled decay, not on biases / LayerNorm (0)\n"
            "      --clip C              max gradient norm (1.0; 0 = off)\n"
            "      --dropout P           hidden dropout (default: the model's, 0.1 for BERT)\n"
            "      --attention-dropout P attention-probability dropout (default: the model's)\n"
            "      --seed N              (42)\n"
            "      --shuffle-group G     shuffle groups of G consecutive data rows (related sentences side by side)\n"
            "                            instead of single rows, so each group lands in one batch (0)\n"
            "      --threads N           OpenMP threads (default: all)\n"
            "evaluation, checkpoints, logs:\n"
            "      --eval-sts FILE       STS file (STS-B dev) evaluated every --eval-every steps; the best is kept\n"
            "      --eval-every N        (125)\n"
            "      --keep best|last      what -o gets with --eval-sts: the best on it (default) or the last step\n"
            "      --checkpoint DIR      write DIR/last.semb (weights + Adam state) and DIR/best.semb\n"
            "      --checkpoint-every N  also every N steps (default: at each evaluation and at the end)\n"
            "      --resume              continue from DIR/last.semb (bit-identical to an uninterrupted run)\n"
            "      --log FILE.csv        one CSV row per step\n"
            "      --plot LOG.csv        draw LOG.csv (loss and dev Spearman) as SVG into -o\n"
            "  -v, --verbose             more messages\n"
            "  -h, --help                this text\n"
            "\n"
            "Progress (step, loss, lr, sentences/s, ETA, dev) goes to stderr when it is a terminal; a summary goes to\n"
            "stdout at the end.\n"
            "\n"
            "Data-parallel: `mpirun -np N sembed train ...` (a build with MPI, docs/scale.md): --batch stays the global\n"
            "batch (a multiple of N); each rank computes its slice, embeddings are all-gathered so the loss sees the\n"
            "whole batch, gradients are summed; rank 0 writes the output, checkpoints and the log. Every objective\n"
            "(unsup, sup, mlm, distill, --mlm-weight) gives the losses and weights of one process with the same --batch.\n");
}

struct progress_ctx {
    bool tty;
    long long kill_step; // SEMBED_TEST_KILL_RANK_AT=RANK:STEP (tests): this rank SIGKILLs itself after STEP
};

static void on_progress(const struct sembed_train_progress *p, void *user) {
    const struct progress_ctx *c = user;
    if (c->kill_step > 0 && p->step == c->kill_step) raise(SIGKILL); // before that step's checkpoint
    if (!c->tty) return;
    char dev[64] = "";
    if (!isnan(p->best_dev)) snprintf(dev, sizeof dev, "  dev %.2f (best %.2f)", isnan(p->dev) ? p->best_dev : p->dev, p->best_dev);
    int eta = (int)p->eta_s;
    fprintf(stderr, "\rstep %lld/%lld  loss %.4f  lr %.2e  %.1f sent/s  ETA %d:%02d:%02d%s   ", (long long)p->step,
            (long long)p->total_steps, p->loss, (double)p->lr, p->examples_per_s, eta / 3600, eta / 60 % 60, eta % 60, dev);
    if (p->evaluated || p->step == p->total_steps) fputc('\n', stderr);
    fflush(stderr);
}

static bool parse_u64(const char *s, unsigned long long max, unsigned long long *out) {
    char *e;
    errno = 0;
    if (!s || !*s || *s == '-') return false;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || *e || v > max) return false;
    *out = v;
    return true;
}

static bool parse_f(const char *s, float *out) {
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || *e || !*s || !isfinite(v)) return false;
    *out = (float)v;
    return true;
}

// "layers=2,hidden=128,...,vocab=PATH"
static int parse_init_flags(const char *spec, struct sembed_train_init *in, char **vocab_owned) {
    *in = sembed_train_init_default();
    char *dup = strdup(spec), *save = NULL;
    if (!dup) return -1;
    int rc = 0;
    for (char *tok = strtok_r(dup, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) { rc = -1; break; }
        *eq = 0;
        const char *k = tok, *v = eq + 1;
        unsigned long long u;
        if (!strcmp(k, "vocab")) { free(*vocab_owned); *vocab_owned = strdup(v); in->vocab_path = *vocab_owned; continue; }
        if (!strcmp(k, "lowercase")) { in->lowercase = strcmp(v, "0") && strcmp(v, "false"); continue; }
        if (!strcmp(k, "hidden_dropout")) { if (!parse_f(v, &in->hidden_dropout)) rc = -1; continue; }
        if (!strcmp(k, "attention_dropout")) { if (!parse_f(v, &in->attention_dropout)) rc = -1; continue; }
        if (!parse_u64(v, 1u << 24, &u)) { rc = -1; break; }
        if (!strcmp(k, "layers")) in->layers = (uint32_t)u;
        else if (!strcmp(k, "hidden")) in->hidden = (uint32_t)u;
        else if (!strcmp(k, "heads")) in->heads = (uint32_t)u;
        else if (!strcmp(k, "intermediate")) in->intermediate = (uint32_t)u;
        else if (!strcmp(k, "max_position")) in->max_position = (uint32_t)u;
        else if (!strcmp(k, "type_vocab")) in->type_vocab = (uint32_t)u;
        else rc = -1;
    }
    free(dup);
    if (!rc && !in->vocab_path) rc = -1;
    return rc;
}

// ---------------------------------------------------------------- SVG plot of a training log

struct series {
    double *x, *y;
    size_t n, cap;
};

static int series_push(struct series *s, double x, double y) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        double *nx = realloc(s->x, cap * sizeof *nx);
        if (!nx) return -1;
        s->x = nx;
        double *ny = realloc(s->y, cap * sizeof *ny);
        if (!ny) return -1;
        s->y = ny;
        s->cap = cap;
    }
    s->x[s->n] = x; s->y[s->n] = y; s->n++;
    return 0;
}

static void panel(FILE *f, const struct series *s, double x0, double x1, int ox, int oy, int w, int h, const char *title,
                  const char *color, bool dots) {
    double y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < s->n; i++) { y0 = fmin(y0, s->y[i]); y1 = fmax(y1, s->y[i]); }
    if (!(y1 > y0)) { y0 -= 1; y1 += 1; }
    double pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='#888'/>\n", ox, oy, w, h);
    fprintf(f, "<text x='%d' y='%d' font-size='14' font-weight='bold'>%s</text>\n", ox, oy - 8, title);
    for (int k = 0; k <= 4; k++) {
        double v = y0 + (y1 - y0) * k / 4.0;
        int py = oy + h - (int)(h * k / 4.0);
        fprintf(f, "<line x1='%d' y1='%d' x2='%d' y2='%d' stroke='#eee'/>\n", ox, py, ox + w, py);
        fprintf(f, "<text x='%d' y='%d' font-size='11' text-anchor='end'>%.4g</text>\n", ox - 4, py + 4, v);
        double xv = x0 + (x1 - x0) * k / 4.0;
        int px = ox + (int)(w * k / 4.0);
        fprintf(f, "<text x='%d' y='%d' font-size='11' text-anchor='middle'>%.0f</text>\n", px, oy + h + 14, xv);
    }
    if (!s->n) return;
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='", color);
    for (size_t i = 0; i < s->n; i++)
        fprintf(f, "%.1f,%.1f ", ox + w * (s->x[i] - x0) / (x1 - x0), oy + h - h * (s->y[i] - y0) / (y1 - y0));
    fprintf(f, "'/>\n");
    if (dots)
        for (size_t i = 0; i < s->n; i++)
            fprintf(f, "<circle cx='%.1f' cy='%.1f' r='3' fill='%s'/>\n", ox + w * (s->x[i] - x0) / (x1 - x0),
                    oy + h - h * (s->y[i] - y0) / (y1 - y0), color);
}

static int plot(const char *csv, const char *svg) {
    FILE *in = fopen(csv, "r");
    if (!in) return cli_error(CLI_FAIL, "train", "cannot open %s: %s", csv, strerror(errno));
    char line[4096];
    struct series loss = {0}, dev = {0};
    size_t ln = 0;
    int col_loss = -1, col_dev = -1, col_step = -1, rc = CLI_OK;
    while (fgets(line, sizeof line, in)) {
        ln++;
        line[strcspn(line, "\r\n")] = 0;
        char *fields[32];
        int nf = 0;
        for (char *p = line; nf < 32;) {
            fields[nf++] = p;
            char *c = strchr(p, ',');
            if (!c) break;
            *c = 0;
            p = c + 1;
        }
        if (ln == 1) {
            for (int i = 0; i < nf; i++) {
                if (!strcmp(fields[i], "step")) col_step = i;
                if (!strcmp(fields[i], "loss")) col_loss = i;
                if (!strcmp(fields[i], "dev_spearman")) col_dev = i;
            }
            if (col_step < 0 || col_loss < 0) { rc = cli_error(CLI_FAIL, "train", "%s:1: not a sembed training log (no step/loss columns)", csv); break; }
            continue;
        }
        if (col_step >= nf) continue;
        double st = atof(fields[col_step]);
        if (col_loss < nf && *fields[col_loss] && series_push(&loss, st, atof(fields[col_loss]))) { rc = CLI_FAIL; break; }
        if (col_dev >= 0 && col_dev < nf && *fields[col_dev] && series_push(&dev, st, atof(fields[col_dev]))) { rc = CLI_FAIL; break; }
    }
    fclose(in);
    if (rc == CLI_OK) {
        double x0 = 0, x1 = 1;
        for (size_t i = 0; i < loss.n; i++) x1 = fmax(x1, loss.x[i]);
        for (size_t i = 0; i < dev.n; i++) x1 = fmax(x1, dev.x[i]);
        char *tmp = malloc(strlen(svg) + 8);
        sprintf(tmp, "%s.tmp", svg);
        FILE *f = fopen(tmp, "w");
        if (!f) rc = cli_error(CLI_FAIL, "train", "cannot write %s: %s", tmp, strerror(errno));
        else {
            int W = 760, H = dev.n ? 560 : 300;
            fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif'>\n", W, H);
            fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
            panel(f, &loss, x0, x1, 70, 30, W - 100, 220, "training loss", "#1f77b4", false);
            if (dev.n) panel(f, &dev, x0, x1, 70, 300, W - 100, 220, "dev Spearman x100", "#d62728", true);
            fprintf(f, "<text x='%d' y='%d' font-size='12' text-anchor='middle'>step</text>\n", W / 2, H - 6);
            fprintf(f, "</svg>\n");
            if (fclose(f) != 0 || rename(tmp, svg) != 0) { rc = cli_error(CLI_FAIL, "train", "cannot write %s", svg); remove(tmp); }
        }
        free(tmp);
    }
    free(loss.x); free(loss.y); free(dev.x); free(dev.y);
    return rc;
}

// ---------------------------------------------------------------- main

int cmd_train(int argc, char **argv) {
    enum { O_OBJ = 256, O_DATA, O_BATCH, O_LR, O_EPOCHS, O_STEPS, O_STOP, O_KEEP, O_MAXLEN, O_TEMP, O_POOLER, O_SEED, O_THREADS,
           O_MLPONLY, O_MLMW, O_MLMP, O_HNW, O_WARMUP, O_WD, O_CLIP, O_DROP, O_ADROP, O_INIT, O_EVAL, O_EVERY, O_CKPT,
           O_CKEVERY, O_RESUME, O_LOG, O_STRICT, O_PLOT, O_TEACHER, O_MSEW, O_RELW, O_RELT, O_CLW, O_SIMW, O_GROUP };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"output", required_argument, 0, 'o'}, {"objective", required_argument, 0, O_OBJ},
        {"data", required_argument, 0, O_DATA}, {"batch", required_argument, 0, O_BATCH}, {"lr", required_argument, 0, O_LR},
        {"epochs", required_argument, 0, O_EPOCHS}, {"steps", required_argument, 0, O_STEPS},
        {"stop-after", required_argument, 0, O_STOP}, {"keep", required_argument, 0, O_KEEP}, {"max-length", required_argument, 0, O_MAXLEN},
        {"temp", required_argument, 0, O_TEMP}, {"pooler", required_argument, 0, O_POOLER}, {"seed", required_argument, 0, O_SEED},
        {"threads", required_argument, 0, O_THREADS}, {"mlp-only-train", no_argument, 0, O_MLPONLY},
        {"mlm-weight", required_argument, 0, O_MLMW}, {"mlm-prob", required_argument, 0, O_MLMP},
        {"hard-neg-weight", required_argument, 0, O_HNW}, {"warmup", required_argument, 0, O_WARMUP},
        {"weight-decay", required_argument, 0, O_WD}, {"clip", required_argument, 0, O_CLIP},
        {"dropout", required_argument, 0, O_DROP}, {"attention-dropout", required_argument, 0, O_ADROP},
        {"init-random", required_argument, 0, O_INIT}, {"eval-sts", required_argument, 0, O_EVAL},
        {"eval-every", required_argument, 0, O_EVERY}, {"checkpoint", required_argument, 0, O_CKPT},
        {"checkpoint-every", required_argument, 0, O_CKEVERY}, {"resume", no_argument, 0, O_RESUME},
        {"log", required_argument, 0, O_LOG}, {"strict", no_argument, 0, O_STRICT}, {"plot", required_argument, 0, O_PLOT},
        {"teacher", required_argument, 0, O_TEACHER}, {"mse-weight", required_argument, 0, O_MSEW},
        {"rel-weight", required_argument, 0, O_RELW}, {"rel-temp", required_argument, 0, O_RELT}, {"sim-weight", required_argument, 0, O_SIMW},
        {"shuffle-group", required_argument, 0, O_GROUP},
        {"cl-weight", required_argument, 0, O_CLW},
        {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    struct sembed_train_params p = sembed_train_default_params();
    struct sembed_train_init init;
    const char *init_spec = NULL, *plot_csv = NULL;
    bool verbose = false;
    unsigned long long u;
    int c;
    optind = 1;
    opterr = 0;
#define BAD(...) do { cli_error(CLI_USAGE, "train", __VA_ARGS__); return CLI_USAGE; } while (0)
    while ((c = getopt_long(argc, argv, ":m:o:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': p.model_path = optarg; break;
        case 'o': p.out_path = optarg; break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return CLI_OK;
        case O_OBJ:
            if (!strcmp(optarg, "unsup")) p.objective = SEMBED_OBJECTIVE_UNSUP;
            else if (!strcmp(optarg, "sup")) p.objective = SEMBED_OBJECTIVE_SUP;
            else if (!strcmp(optarg, "mlm")) p.objective = SEMBED_OBJECTIVE_MLM;
            else if (!strcmp(optarg, "distill")) p.objective = SEMBED_OBJECTIVE_DISTILL;
            else BAD("--objective must be unsup, sup, mlm or distill, not '%s'", optarg);
            break;
        case O_POOLER:
            if (!strcmp(optarg, "cls")) p.pooler = SEMBED_TRAIN_POOL_CLS;
            else if (!strcmp(optarg, "cls_before_pooler")) p.pooler = SEMBED_TRAIN_POOL_CLS_BEFORE_POOLER;
            else if (!strcmp(optarg, "mean")) p.pooler = SEMBED_TRAIN_POOL_MEAN;
            else BAD("--pooler must be cls, cls_before_pooler or mean, not '%s'", optarg);
            break;
        case O_DATA: p.data_path = optarg; break;
        case O_BATCH: if (!parse_u64(optarg, 65536, &u) || u < 2) BAD("--batch wants an integer in [2, 65536]"); p.batch = (uint32_t)u; break;
        case O_MAXLEN: if (!parse_u64(optarg, 4096, &u) || u < 3) BAD("--max-length wants an integer in [3, 4096]"); p.max_length = (uint32_t)u; break;
        case O_EPOCHS: if (!parse_u64(optarg, 1u << 20, &u) || u < 1) BAD("--epochs wants a positive integer"); p.epochs = (uint32_t)u; break;
        case O_STEPS: if (!parse_u64(optarg, 1ull << 40, &u) || u < 1) BAD("--steps wants a positive integer"); p.steps = (int64_t)u; break;
        case O_KEEP:
            if (!strcmp(optarg, "last")) p.keep_last = true;
            else if (!strcmp(optarg, "best")) p.keep_last = false;
            else BAD("--keep wants best or last");
            break;
        case O_STOP: if (!parse_u64(optarg, 1ull << 40, &u) || u < 1) BAD("--stop-after wants a positive integer"); p.stop_after = (int64_t)u; break;
        case O_EVERY: if (!parse_u64(optarg, 1ull << 40, &u) || u < 1) BAD("--eval-every wants a positive integer"); p.eval_every = (int64_t)u; break;
        case O_CKEVERY: if (!parse_u64(optarg, 1ull << 40, &u) || u < 1) BAD("--checkpoint-every wants a positive integer"); p.checkpoint_every = (int64_t)u; break;
        case O_SEED: if (!parse_u64(optarg, UINT64_MAX, &u)) BAD("--seed wants a non-negative integer"); p.seed = u; break;
        case O_THREADS: if (!parse_u64(optarg, 1024, &u) || u < 1) BAD("--threads wants an integer in [1, 1024]"); p.n_threads = (int)u; break;
        case O_LR: if (!parse_f(optarg, &p.lr) || !(p.lr > 0 && p.lr < 1)) BAD("--lr wants a number in (0, 1)"); break;
        case O_TEMP: if (!parse_f(optarg, &p.temp) || !(p.temp > 0)) BAD("--temp wants a positive number"); break;
        case O_MLMW: if (!parse_f(optarg, &p.mlm_weight) || p.mlm_weight < 0) BAD("--mlm-weight wants a number >= 0"); break;
        case O_MLMP: if (!parse_f(optarg, &p.mlm_prob) || !(p.mlm_prob > 0 && p.mlm_prob < 1)) BAD("--mlm-prob wants a number in (0, 1)"); break;
        case O_HNW: if (!parse_f(optarg, &p.hard_neg_weight)) BAD("--hard-neg-weight wants a number"); break;
        case O_WARMUP: if (!parse_f(optarg, &p.warmup) || p.warmup < 0) BAD("--warmup wants a number >= 0"); break;
        case O_WD: if (!parse_f(optarg, &p.weight_decay) || p.weight_decay < 0) BAD("--weight-decay wants a number >= 0"); break;
        case O_CLIP: if (!parse_f(optarg, &p.clip) || p.clip < 0) BAD("--clip wants a number >= 0"); break;
        case O_DROP: if (!parse_f(optarg, &p.hidden_dropout) || !(p.hidden_dropout >= 0 && p.hidden_dropout < 1)) BAD("--dropout wants a number in [0, 1)"); break;
        case O_ADROP: if (!parse_f(optarg, &p.attention_dropout) || !(p.attention_dropout >= 0 && p.attention_dropout < 1)) BAD("--attention-dropout wants a number in [0, 1)"); break;
        case O_MLPONLY: p.mlp_only_train = true; break;
        case O_INIT: init_spec = optarg; break;
        case O_EVAL: p.eval_sts = optarg; break;
        case O_CKPT: p.checkpoint_dir = optarg; break;
        case O_RESUME: p.resume = true; break;
        case O_LOG: p.log_csv = optarg; break;
        case O_STRICT: p.strict = true; break;
        case O_PLOT: plot_csv = optarg; break;
        case O_TEACHER: p.teacher_path = optarg; break;
        case O_MSEW: if (!parse_f(optarg, &p.mse_weight) || !(p.mse_weight >= 0) || !isfinite(p.mse_weight)) BAD("--mse-weight wants a number >= 0"); break;
        case O_RELW: if (!parse_f(optarg, &p.rel_weight) || !(p.rel_weight >= 0) || !isfinite(p.rel_weight)) BAD("--rel-weight wants a number >= 0"); break;
        case O_RELT: if (!parse_f(optarg, &p.rel_temp) || !(p.rel_temp > 0) || !isfinite(p.rel_temp)) BAD("--rel-temp wants a positive number"); break;
        case O_GROUP: if (!parse_u64(optarg, 65536, &u)) BAD("--shuffle-group wants an integer in [0, 65536]"); p.shuffle_group = (uint32_t)u; break;
        case O_SIMW: if (!parse_f(optarg, &p.sim_weight) || !(p.sim_weight >= 0) || !isfinite(p.sim_weight)) BAD("--sim-weight wants a number >= 0"); break;
        case O_CLW: if (!parse_f(optarg, &p.cl_weight) || !(p.cl_weight >= 0) || !isfinite(p.cl_weight)) BAD("--cl-weight wants a number >= 0"); break;
        case ':': BAD("option %s needs a value", argv[optind - 1]);
        default: BAD("unknown option '%s' (see sembed train --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) BAD("unexpected argument '%s'", argv[optind]);
    cli_install_logger(verbose);
    if (plot_csv) {
        if (!p.out_path) BAD("--plot needs -o chart.svg");
        return plot(plot_csv, p.out_path);
    }
    if (!p.data_path) BAD("--data FILE is required");
    if (!p.out_path) BAD("-o OUT.semb is required");
    if (!p.model_path == !init_spec) BAD("give exactly one of -m MODEL.semb and --init-random CONFIG");
    if (p.mlp_only_train && p.pooler != SEMBED_TRAIN_POOL_CLS) BAD("--mlp-only-train needs --pooler cls");
    if (p.resume && !p.checkpoint_dir) BAD("--resume needs --checkpoint DIR");
    if (p.objective == SEMBED_OBJECTIVE_DISTILL && !p.teacher_path) BAD("--objective distill needs --teacher FILE.npy");
    if (p.objective != SEMBED_OBJECTIVE_DISTILL && p.teacher_path) BAD("--teacher is only used with --objective distill");
    if (p.objective == SEMBED_OBJECTIVE_DISTILL && p.mse_weight == 0 && p.rel_weight == 0 && p.sim_weight == 0)
        BAD("--objective distill needs --mse-weight, --rel-weight or --sim-weight > 0");
    char *vocab_owned = NULL;
    bool init_json = false;
    if (init_spec) {
        if (strchr(init_spec, '=')) {
            if (parse_init_flags(init_spec, &init, &vocab_owned)) {
                free(vocab_owned);
                BAD("--init-random: expected key=value,... with keys layers, hidden, heads, intermediate, max_position, "
                    "type_vocab, lowercase, vocab (required)");
            }
        } else {
            if (sembed_train_init_from_json(init_spec, &init)) return cli_error(CLI_FAIL, "train", "cannot use --init-random %s", init_spec);
            init_json = true;
        }
        p.init = &init;
    }
    struct progress_ctx pc = {.tty = cli_stderr_is_tty() && cli_mpi_rank() == 0};
    const char *kill_at = getenv("SEMBED_TEST_KILL_RANK_AT");
    int kill_rank = -1;
    if (kill_at && sscanf(kill_at, "%d:%lld", &kill_rank, &pc.kill_step) == 2 && kill_rank != cli_mpi_rank()) pc.kill_step = 0;
    p.comm = cli_mpi_train_comm();
    p.progress = on_progress;
    p.progress_user = &pc;
    struct sembed_train_result r;
    int rc = sembed_train(&p, &r);
    if (init_json) sembed_train_init_free(&init);
    free(vocab_owned);
    if (rc) return cli_error(CLI_FAIL, "train", "%s", sembed_strerror(rc));
    if (cli_mpi_rank() != 0) return CLI_OK;
    printf("steps %lld  loss %.5f  rows %llu  skipped %llu  data_xxh3 %016llx  %.1f s", (long long)r.steps, r.final_loss,
           (unsigned long long)r.n_rows, (unsigned long long)r.n_skipped, (unsigned long long)r.data_xxh3, r.seconds);
    if (!isnan(r.best_dev))
        printf("  dev_before %.2f  dev_best %.2f (step %lld)", r.first_dev, r.best_dev, (long long)r.best_step);
    printf("\n");
    return CLI_OK;
#undef BAD
}
