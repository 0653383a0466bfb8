// `sembed bench -m MODEL [--batch B,...] [--tokens T,...]`: embedding speed on synthetic inputs of
// exactly T tokens, B per call. A quick local measurement; the peer comparison lives in tools/bench/.
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/kernels/kernels.h"
#include "sembed/model.h"
#include "tools/cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed bench -m MODEL.semb [--batch B[,B...]] [--tokens T[,T...]] [--threads N]\n"
            "                    [--seconds S] [--warmup N] [--compute f32|int8|auto] [--int8]\n\n"
            "Time sembed_embed_ids on synthetic inputs of exactly T tokens ([CLS] ... [SEP]), B inputs\n"
            "per call, for every (B, T) combination; one line per combination on stdout:\n"
            "batch, tokens, threads, calls timed, median ms per call, sentences/s, tokens/s.\n\n"
            "  -m, --model FILE     the .semb model (required)\n"
            "  -b, --batch LIST     inputs per call (default 1,32)\n"
            "  -T, --tokens LIST    tokens per input incl. [CLS]/[SEP] (default 16,32)\n"
            "  -t, --threads N      threads (default: all cores)\n"
            "      --batch-tokens N tokens per forward pass (context arena; default max(2048, tokens))\n"
            "  -s, --seconds S      time each combination for about S seconds (default 2)\n"
            "  -w, --warmup N       untimed calls first (default 2)\n"
            "      --compute MODE   f32 | int8 | auto (default auto: int8 for q8 models, else f32)\n"
            "      --int8           same as --compute int8\n\n"
            "The header line reports the load time (sembed_model_load: mmap, validation, tokenizer;\n"
            "weights are packed on first use) and the first call's time (packing included).\n"
            "  -h, --help           this text\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int parse_list(const char *flag, const char *s, uint32_t *v, int cap, int *n) {
    *n = 0;
    char *dup = strdup(s), *save = NULL;
    if (!dup) return cli_error(CLI_FAIL, "bench", "out of memory");
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *end = NULL;
        errno = 0;
        long x = strtol(tok, &end, 10);
        if (errno || !end || *end || x < 1 || x > 65536 || *n == cap) {
            free(dup);
            return cli_error(CLI_USAGE, "bench", "%s wants up to %d comma-separated integers in 1..65536, got '%s'",
                             flag, cap, s);
        }
        v[(*n)++] = (uint32_t)x;
    }
    free(dup);
    if (*n == 0) return cli_error(CLI_USAGE, "bench", "%s is empty", flag);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int cmd_bench(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},   {"batch", required_argument, NULL, 'b'},
        {"tokens", required_argument, NULL, 'T'},  {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'}, {"warmup", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},          {"compute", required_argument, NULL, 'C'},
        {"int8", no_argument, NULL, '8'},          {"batch-tokens", required_argument, NULL, 'K'},
        {NULL, 0, NULL, 0}};
    struct sembed_model_params mp = sembed_model_default_params();
    enum { CAP = 16 };
    uint32_t batches[CAP] = {1, 32}, tokens[CAP] = {16, 32};
    int nb = 2, ntok = 2, warmup = 2;
    long threads = 0, batch_tokens = 0;
    double seconds = 2.0;
    const char *model = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:b:T:t:s:w:h", longopts, NULL)) != -1) {
        char *end = NULL;
        errno = 0;
        switch (c) {
        case 'm': model = optarg; break;
        case 'b': if (parse_list("--batch", optarg, batches, CAP, &nb)) return CLI_USAGE; break;
        case 'T': if (parse_list("--tokens", optarg, tokens, CAP, &ntok)) return CLI_USAGE; break;
        case 't':
            threads = strtol(optarg, &end, 10);
            if (errno || !end || *end || threads < 0 || threads > 1024)
                return cli_error(CLI_USAGE, "bench", "--threads wants an integer in 0..1024, got '%s'", optarg);
            break;
        case 'K':
            batch_tokens = strtol(optarg, &end, 10);
            if (errno || !end || *end || batch_tokens < 1 || batch_tokens > (1l << 24))
                return cli_error(CLI_USAGE, "bench", "--batch-tokens wants an integer in 1..16777216, got '%s'", optarg);
            break;
        case 's':
            seconds = strtod(optarg, &end);
            if (errno || !end || *end || !(seconds > 0 && seconds <= 3600))
                return cli_error(CLI_USAGE, "bench", "--seconds wants a number in (0, 3600], got '%s'", optarg);
            break;
        case 'w': {
            long w = strtol(optarg, &end, 10);
            if (errno || !end || *end || w < 0 || w > 1000)
                return cli_error(CLI_USAGE, "bench", "--warmup wants an integer in 0..1000, got '%s'", optarg);
            warmup = (int)w;
            break;
        }
        case 'C':
            if (sembed_compute_parse(optarg, &mp.compute))
                return cli_error(CLI_USAGE, "bench", "--compute is f32, int8 or auto, got '%s'", optarg);
            break;
        case '8': mp.compute = SEMBED_COMPUTE_INT8; break;
        case 'h': usage(stdout); return CLI_OK;
        default:
            return cli_error(CLI_USAGE, "bench", "unknown option or missing value: '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (!model) return cli_error(CLI_USAGE, "bench", "-m MODEL.semb is required (see --help)");
    if (optind < argc) return cli_error(CLI_USAGE, "bench", "unexpected argument '%s'", argv[optind]);

    struct sembed_model *m = NULL;
    double t_load = now_s();
    int rc = sembed_model_load(model, &mp, &m);
    t_load = now_s() - t_load;
    if (rc) return cli_error(CLI_FAIL, "bench", "cannot load %s: %s", model, sembed_strerror(rc));
    bool first_call = true;
    const struct sembed_tokenizer *tok = sembed_model_tokenizer(m);
    const int32_t cls = sembed_tokenizer_cls_id(tok), sep = sembed_tokenizer_sep_id(tok);
    const uint32_t vocab = (uint32_t)sembed_tokenizer_vocab_size(tok);
    int status = CLI_OK;
    printf("# %s  dim %u  hidden %u  layers %u  compute %s  kernels %s  load %.3f ms\n", model, sembed_model_dim(m),
           sembed_model_hidden_size(m), sembed_model_num_layers(m), sembed_compute_name(sembed_model_compute(m)),
           sk_isa_name(sk_isa_active()), 1e3 * t_load);
    printf("%6s %6s %7s %6s %10s %12s %12s\n", "batch", "tokens", "threads", "calls", "ms/call", "sentences/s", "tokens/s");
    for (int bi = 0; bi < nb && status == CLI_OK; bi++) {
        for (int ti = 0; ti < ntok && status == CLI_OK; ti++) {
            const uint32_t B = batches[bi], T = tokens[ti];
            struct sembed_context_params cp = sembed_context_default_params();
            cp.n_threads = (int32_t)threads;
            cp.batch_size = B;
            cp.max_length = T < 2 ? 2 : T;
            if (batch_tokens) cp.batch_tokens = (uint32_t)(batch_tokens > cp.max_length ? batch_tokens : cp.max_length);
            if (cp.max_length > sembed_model_max_length(m)) {
                status = cli_error(CLI_USAGE, "bench", "--tokens %u exceeds the model's maximum %u", T,
                                   sembed_model_max_length(m));
                break;
            }
            cp.batch_tokens = B * cp.max_length;
            struct sembed_context *ctx = NULL;
            int32_t *ids = malloc((size_t)B * cp.max_length * sizeof(int32_t));
            struct sembed_ids *in = malloc(B * sizeof *in);
            float *out = malloc((size_t)B * sembed_model_dim(m) * sizeof(float));
            enum { MAX_CALLS = 100000 };
            double *dt = malloc(MAX_CALLS * sizeof(double));
            if (!ids || !in || !out || !dt) status = cli_error(CLI_FAIL, "bench", "out of memory");
            else if ((rc = sembed_context_create(m, &cp, &ctx))) status = cli_error(CLI_FAIL, "bench", "%s", sembed_strerror(rc));
            if (status == CLI_OK) {
                // deterministic ordinary word pieces, away from the special tokens at the start of the vocab
                for (uint32_t s = 0; s < B; s++) {
                    int32_t *x = ids + (size_t)s * cp.max_length;
                    x[0] = cls;
                    for (uint32_t t = 1; t + 1 < cp.max_length; t++)
                        x[t] = (int32_t)(vocab > 2000 ? 1000 + (s * 7919u + t * 104729u) % (vocab - 1000) : t % vocab);
                    x[cp.max_length - 1] = sep;
                    in[s] = (struct sembed_ids){x, NULL, cp.max_length};
                }
                for (int w = 0; w < warmup && status == CLI_OK; w++) {
                    double t0 = now_s();
                    if ((rc = sembed_embed_ids(ctx, in, B, out))) status = cli_error(CLI_FAIL, "bench", "%s", sembed_strerror(rc));
                    if (first_call && status == CLI_OK)
                        printf("# first call (%u x %u, weights packed): %.3f ms\n", B, cp.max_length, 1e3 * (now_s() - t0));
                    first_call = false;
                }
                int calls = 0;
                double start = now_s();
                while (status == CLI_OK && calls < MAX_CALLS && (calls < 3 || now_s() - start < seconds)) {
                    double t0 = now_s();
                    if ((rc = sembed_embed_ids(ctx, in, B, out))) status = cli_error(CLI_FAIL, "bench", "%s", sembed_strerror(rc));
                    dt[calls++] = now_s() - t0;
                }
                if (status == CLI_OK) {
                    qsort(dt, (size_t)calls, sizeof *dt, cmp_double);
                    double med = dt[calls / 2];
                    printf("%6u %6u %7d %6d %10.3f %12.1f %12.0f\n", B, cp.max_length, sembed_context_n_threads(ctx), calls,
                           1e3 * med, B / med, (double)B * cp.max_length / med);
                    fflush(stdout);
                }
            }
            sembed_context_free(ctx);
            free(ids);
            free(in);
            free(out);
            free(dt);
        }
    }
    sembed_model_free(m);
    return status;
}
