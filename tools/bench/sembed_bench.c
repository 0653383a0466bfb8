// sembed_bench: time libsembed's public API on batches of B inputs of exactly T tokens.
//
// One configuration per process, so that peak RSS belongs to this configuration alone. Prints one
// JSON object on stdout (tools/bench/README.md lists the fields); diagnostics go to stderr.
// Exit 0 when measured, 1 when the model cannot be loaded or embedded (the JSON says where and
// why: {"ok": false, "stage": ..., "error": ...}), 2 on bad arguments.
//
// Inputs are token ids, not text: [CLS], T-2 pseudo-random ids drawn from the vocabulary above
// the first 1000 entries (MINSTD, the same sequence torch_bench.py and ort_bench.js draw), [SEP],
// token types 0. Tokenization is thus excluded from every peer's time.
//
// Build (run.py does it): cc -O2 -std=c11 -Iinclude tools/bench/sembed_bench.c -Lbuild -lsembed
//                         -Wl,-rpath,build
// Run:   SEMBED_ISA=avx2 ./sembed_bench q8.semb --compute int8 --batch 32 --tokens 32 --threads 2
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "sembed/sembed.h"

struct opts {
    const char *path;
    enum sembed_compute compute;
    int batch, tokens, threads, warmup, min_reps;
    double min_time, max_time;
    long batch_tokens;
    unsigned seed;
    int verify; // -1: library default
};

static char g_log[1024]; // last error-level message from the library, for the JSON error

static void log_cb(enum sembed_log_level level, const char *msg, void *user_data) {
    (void)user_data;
    if (level >= SEMBED_LOG_WARN) fprintf(stderr, "sembed: %s\n", msg);
    if (level >= SEMBED_LOG_ERROR) snprintf(g_log, sizeof g_log, "%s", msg);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
    return (double)ru.ru_maxrss / 1024.0; // Linux: kilobytes
}

static double cur_rss_mib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (!f) return -1.0;
    int n = fscanf(f, "%ld %ld", &size, &res);
    fclose(f);
    if (n != 2) return -1.0;
    return (double)res * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static void json_str(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

static int fail(const struct opts *o, const char *stage, int rc, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (rc) {
        size_t n = strlen(msg);
        snprintf(msg + n, sizeof msg - n, ": %s%s%s", sembed_strerror(rc), g_log[0] ? " (" : "", g_log);
        if (g_log[0]) strncat(msg, ")", sizeof msg - strlen(msg) - 1);
    }
    printf("{\"peer\": \"sembed\", \"ok\": false, \"stage\": ");
    json_str(stage);
    printf(", \"status\": %d, \"unsupported\": %s, \"error\": ", rc, rc == SEMBED_EUNSUPPORTED ? "true" : "false");
    json_str(msg);
    printf(", \"batch\": %d, \"tokens\": %d}\n", o->batch, o->tokens);
    fprintf(stderr, "sembed_bench: %s: %s\n", stage, msg);
    return 1;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// MINSTD (Park & Miller 1988): x' = 48271 x mod (2^31 - 1). The harness's other workers draw the
// same sequence so every peer sees the same ids.
static uint32_t minstd(uint32_t *x) {
    *x = (uint32_t)((uint64_t)*x * 48271u % 2147483647u);
    return *x;
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed_bench MODEL.semb [options]\n"
            "  --compute f32|int8   arithmetic (default f32)\n"
            "  --batch B            inputs per call (default 1)\n"
            "  --tokens T           tokens per input incl. [CLS]/[SEP] (default 16, >= 2)\n"
            "  --threads N          context threads (default 2)\n"
            "  --warmup N           untimed calls first (default 2)\n"
            "  --min-reps N         timed calls at least (default 10) ...\n"
            "  --min-time S         ... and at least S seconds (default 2)\n"
            "  --max-time S         stop after S seconds once 3 calls are timed (default 30)\n"
            "  --batch-tokens N     context batch_tokens (default 0: the library's default)\n"
            "  --verify / --no-verify  checksum verification at load (default: library default)\n"
            "  --seed N             token id seed (default 1)\n"
            "Environment: SEMBED_ISA caps the kernel path. Output: one JSON object on stdout.\n");
}

static int parse(int argc, char **argv, struct opts *o) {
    static const struct option longopts[] = {
        {"compute", required_argument, NULL, 'c'},   {"batch", required_argument, NULL, 'b'},
        {"tokens", required_argument, NULL, 't'},    {"threads", required_argument, NULL, 'j'},
        {"warmup", required_argument, NULL, 'w'},    {"min-reps", required_argument, NULL, 'r'},
        {"min-time", required_argument, NULL, 'm'},  {"max-time", required_argument, NULL, 'M'},
        {"batch-tokens", required_argument, NULL, 'k'}, {"seed", required_argument, NULL, 's'},
        {"verify", no_argument, NULL, 'V'},          {"no-verify", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0}};
    *o = (struct opts){.compute = SEMBED_COMPUTE_F32, .batch = 1, .tokens = 16, .threads = 2, .warmup = 2,
                       .min_reps = 10, .min_time = 2.0, .max_time = 30.0, .seed = 1, .verify = -1};
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (strcmp(optarg, "f32") == 0) o->compute = SEMBED_COMPUTE_F32;
            else if (strcmp(optarg, "int8") == 0) o->compute = SEMBED_COMPUTE_INT8;
            else { fprintf(stderr, "sembed_bench: --compute must be f32 or int8\n"); return 2; }
            break;
        case 'b': o->batch = atoi(optarg); break;
        case 't': o->tokens = atoi(optarg); break;
        case 'j': o->threads = atoi(optarg); break;
        case 'w': o->warmup = atoi(optarg); break;
        case 'r': o->min_reps = atoi(optarg); break;
        case 'm': o->min_time = atof(optarg); break;
        case 'M': o->max_time = atof(optarg); break;
        case 'k': o->batch_tokens = atol(optarg); break;
        case 's': o->seed = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'V': o->verify = 1; break;
        case 'N': o->verify = 0; break;
        case 'h': usage(stdout); exit(0);
        default: return 2;
        }
    }
    if (optind != argc - 1) { fprintf(stderr, "sembed_bench: expected one MODEL.semb argument\n"); return 2; }
    o->path = argv[optind];
    if (o->batch < 1 || o->tokens < 2 || o->threads < 1 || o->warmup < 0 || o->min_reps < 1 || o->batch_tokens < 0 ||
        !(o->min_time >= 0) || !(o->max_time >= 0)) {
        fprintf(stderr, "sembed_bench: need batch >= 1, tokens >= 2, threads >= 1, reps >= 1, times >= 0\n");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    struct opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    sembed_log_set(log_cb, NULL);

    const char *isa_env = getenv("SEMBED_ISA");
    double rss_start = cur_rss_mib();
    struct sembed_model_params mp = sembed_model_default_params();
    mp.compute = o.compute;
    if (o.verify >= 0) mp.verify_checksums = o.verify != 0;
    struct sembed_model *m = NULL;
    double t0 = now_s();
    rc = sembed_model_load(o.path, &mp, &m);
    double load_ms = 1e3 * (now_s() - t0);
    if (rc) return fail(&o, "load", rc, "sembed_model_load(%s, compute %s)", o.path, o.compute ? "int8" : "f32");

    struct sembed_context_params cp = sembed_context_default_params();
    cp.n_threads = o.threads;
    cp.batch_size = (uint32_t)o.batch;
    cp.batch_tokens = (uint32_t)o.batch_tokens;
    struct sembed_context *ctx = NULL;
    t0 = now_s();
    rc = sembed_context_create(m, &cp, &ctx);
    double ctx_ms = 1e3 * (now_s() - t0);
    if (rc) {
        sembed_model_free(m);
        return fail(&o, "context", rc, "sembed_context_create(batch %d, threads %d)", o.batch, o.threads);
    }
    double rss_loaded = cur_rss_mib();
    uint32_t max_len = sembed_context_max_length(ctx);
    if ((uint32_t)o.tokens > max_len) {
        sembed_context_free(ctx);
        sembed_model_free(m);
        return fail(&o, "inputs", 0, "%d tokens exceed the model's max length %u", o.tokens, max_len);
    }

    const struct sembed_tokenizer *tok = sembed_model_tokenizer(m);
    int32_t cls = sembed_tokenizer_cls_id(tok), sep = sembed_tokenizer_sep_id(tok);
    uint32_t vocab = (uint32_t)sembed_tokenizer_vocab_size(tok);
    uint32_t lo = vocab > 2000 ? 1000 : 0;
    size_t dim = sembed_model_dim(m), nb = (size_t)o.batch, nt = (size_t)o.tokens;
    int32_t *ids = malloc(nb * nt * sizeof *ids);
    struct sembed_ids *in = malloc(nb * sizeof *in);
    float *out = malloc(nb * dim * sizeof *out);
    size_t cap = 1024;
    double *lat = malloc(cap * sizeof *lat);
    if (!ids || !in || !out || !lat || cls < 0 || sep < 0) {
        free(ids), free(in), free(out), free(lat);
        sembed_context_free(ctx);
        sembed_model_free(m);
        return fail(&o, "inputs", 0, "out of memory or no [CLS]/[SEP] in the vocabulary");
    }
    uint32_t x = o.seed + 1;
    for (size_t b = 0; b < nb; b++) {
        int32_t *row = ids + b * nt;
        row[0] = cls;
        for (size_t t = 1; t + 1 < nt; t++) row[t] = (int32_t)(lo + minstd(&x) % (vocab - lo));
        row[nt - 1] = sep;
        in[b] = (struct sembed_ids){.ids = row, .type_ids = NULL, .n = (uint32_t)nt};
    }

    const char *stage = "embed";
    for (int i = 0; i < o.warmup || i < 1; i++) { // at least one untimed call, which is also checked
        rc = sembed_embed_ids(ctx, in, nb, out);
        if (rc) goto embed_fail;
        if (i == 0) {
            for (size_t j = 0; j < nb * dim; j++) {
                if (!isfinite(out[j])) {
                    stage = "check";
                    rc = 0;
                    goto embed_fail;
                }
            }
        }
    }
    sembed_context_stats_reset(ctx);
    size_t n = 0;
    double start = now_s(), el = 0;
    for (;;) {
        t0 = now_s();
        rc = sembed_embed_ids(ctx, in, nb, out);
        double t1 = now_s();
        if (rc) goto embed_fail;
        if (n == cap) {
            double *p = realloc(lat, 2 * cap * sizeof *lat);
            if (!p) break;
            lat = p, cap *= 2;
        }
        lat[n++] = t1 - t0;
        el = t1 - start;
        if (((int)n >= o.min_reps && el >= o.min_time) || (el >= o.max_time && n >= 3) || n >= 1000000) break;
    }
    struct sembed_embed_stats st;
    sembed_context_stats(ctx, &st);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += lat[i];
    qsort(lat, n, sizeof *lat, cmpd);
    double med = n % 2 ? lat[n / 2] : 0.5 * (lat[n / 2 - 1] + lat[n / 2]);
    double p90 = lat[(size_t)((double)(n - 1) * 0.9 + 0.5)];

    printf("{\"peer\": \"sembed\", \"ok\": true, \"model\": ");
    json_str(o.path);
    printf(", \"compute\": \"%s\", \"isa_env\": ", o.compute == SEMBED_COMPUTE_INT8 ? "int8" : "f32");
    if (isa_env) json_str(isa_env);
    else printf("null");
    printf(", \"version\": ");
    json_str(sembed_version());
    printf(", \"batch\": %d, \"tokens\": %d, \"threads\": %d, \"dim\": %zu, \"layers\": %u, \"hidden\": %u", o.batch,
           o.tokens, sembed_context_n_threads(ctx), dim, sembed_model_num_layers(m), sembed_model_hidden_size(m));
    printf(", \"load_ms\": %.4f, \"ctx_ms\": %.4f, \"arena_mib\": %.2f", load_ms, ctx_ms,
           (double)sembed_context_arena_bytes(ctx) / (1024.0 * 1024.0));
    printf(", \"reps\": %zu, \"time_s\": %.3f, \"lat_ms\": %.5f, \"lat_min_ms\": %.5f, \"lat_mean_ms\": %.5f, "
           "\"lat_p90_ms\": %.5f, \"sent_per_s\": %.3f",
           n, el, 1e3 * med, 1e3 * lat[0], 1e3 * sum / (double)n, 1e3 * p90, (double)o.batch / med);
    printf(", \"passes_per_call\": %.3f, \"rss_start_mib\": %.2f, \"rss_loaded_mib\": %.2f, \"peak_rss_mib\": %.2f",
           (double)st.n_passes / (double)n, rss_start, rss_loaded, peak_rss_mib());
    free(ids), free(in), free(out), free(lat);
    sembed_context_free(ctx);
    sembed_model_free(m);

    // Load cost split: the same load without checksum verification (after everything above is
    // freed, so it changes neither the timings nor the peak RSS).
    printf(", \"verify_checksums\": %s", mp.verify_checksums ? "true" : "false");
    if (mp.verify_checksums) {
        mp.verify_checksums = false;
        t0 = now_s();
        rc = sembed_model_load(o.path, &mp, &m);
        double nv_ms = 1e3 * (now_s() - t0);
        if (rc == 0) printf(", \"load_noverify_ms\": %.4f", nv_ms);
        sembed_model_free(m);
    }
    printf("}\n");
    return 0;

embed_fail:
    free(ids), free(in), free(out), free(lat);
    sembed_context_free(ctx);
    sembed_model_free(m);
    if (strcmp(stage, "check") == 0) return fail(&o, stage, 0, "non-finite value in the embeddings");
    return fail(&o, stage, rc, "sembed_embed_ids(%d x %d tokens)", o.batch, o.tokens);
}
