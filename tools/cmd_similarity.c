// `sembed similarity -m MODEL TEXT TEXT...`: the cosine similarity matrix of the texts.
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/model.h"
#include "tools/cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed similarity -m MODEL.semb [options] TEXT TEXT [TEXT...]\n\n"
            "Embed the texts and print their cosine similarity matrix (rows and columns in argument\n"
            "order, then a legend). Cosine is computed on the embeddings whether or not the model\n"
            "normalizes them.\n\n"
            "  -m, --model FILE       the .semb model (required)\n"
            "  -p, --pooling MODE     cls | cls_before_pooler | mean | max | first_last_avg (default: the model's)\n"
            "  -L, --max-length N     tokens per text incl. [CLS]/[SEP] (default: the model's maximum)\n"
            "  -t, --threads N        threads (default: all cores)\n"
            "      --tsv              plain TAB-separated matrix, no legend\n"
            "      --compute MODE     f32 | int8 | auto (default: int8 for q8 models, else f32)\n"
            "      --int8             same as --compute int8\n"
            "  -h, --help             this text\n");
}

int cmd_similarity(int argc, char **argv) {
    enum { OPT_TSV = 256, OPT_COMPUTE, OPT_INT8 };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'}, {"pooling", required_argument, NULL, 'p'},
        {"max-length", required_argument, NULL, 'L'}, {"threads", required_argument, NULL, 't'},
        {"tsv", no_argument, NULL, OPT_TSV}, {"help", no_argument, NULL, 'h'},
        {"compute", required_argument, NULL, OPT_COMPUTE}, {"int8", no_argument, NULL, OPT_INT8}, {NULL, 0, NULL, 0}};
    struct sembed_context_params cp = sembed_context_default_params();
    struct sembed_model_params mp = sembed_model_default_params();
    const char *model = NULL;
    bool tsv = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:p:L:t:h", longopts, NULL)) != -1) {
        char *end = NULL;
        long v;
        switch (c) {
        case 'm': model = optarg; break;
        case 'p':
            if (sembed_pooling_parse(optarg, &cp.pooling))
                return cli_error(CLI_USAGE, "similarity",
                                 "--pooling is cls, cls_before_pooler, mean, max or first_last_avg, got '%s'", optarg);
            break;
        case 'L':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno || !end || *end || v < 2 || v > (1L << 20))
                return cli_error(CLI_USAGE, "similarity", "--max-length wants an integer >= 2, got '%s'", optarg);
            cp.max_length = (uint32_t)v;
            break;
        case 't':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno || !end || *end || v < 0 || v > 1024)
                return cli_error(CLI_USAGE, "similarity", "--threads wants an integer in 0..1024, got '%s'", optarg);
            cp.n_threads = (int32_t)v;
            break;
        case OPT_TSV: tsv = true; break;
        case OPT_COMPUTE:
            if (sembed_compute_parse(optarg, &mp.compute))
                return cli_error(CLI_USAGE, "similarity", "--compute is f32, int8 or auto, got '%s'", optarg);
            break;
        case OPT_INT8: mp.compute = SEMBED_COMPUTE_INT8; break;
        case 'h': usage(stdout); return CLI_OK;
        default:
            return cli_error(CLI_USAGE, "similarity", "unknown option or missing value: '%s' (see --help)",
                             argv[optind - 1]);
        }
    }
    if (!model) return cli_error(CLI_USAGE, "similarity", "-m MODEL.semb is required (see --help)");
    int n = argc - optind;
    if (n < 2) return cli_error(CLI_USAGE, "similarity", "give at least two texts (see --help)");
    char **texts = argv + optind;

    struct sembed_model *m = NULL;
    int rc = sembed_model_load(model, &mp, &m);
    if (rc) return cli_error(CLI_FAIL, "similarity", "cannot load %s: %s", model, sembed_strerror(rc));
    struct sembed_context *ctx = NULL;
    rc = sembed_context_create(m, &cp, &ctx);
    if (rc) {
        sembed_model_free(m);
        return cli_error(rc == SEMBED_EINVAL ? CLI_USAGE : CLI_FAIL, "similarity", "%s", sembed_strerror(rc));
    }
    const uint32_t dim = sembed_model_dim(m);
    float *e = malloc((size_t)n * dim * sizeof(float));
    int status = CLI_OK;
    if (!e) status = cli_error(CLI_FAIL, "similarity", "out of memory");
    else if ((rc = sembed_embed_texts(ctx, (const char *const *)texts, (size_t)n, e)))
        status = cli_error(CLI_FAIL, "similarity", "%s", sembed_strerror(rc));
    if (status == CLI_OK) {
        for (int i = 0; i < n; i++) { // unit length, so the matrix is plain dot products
            double ss = 0;
            for (uint32_t j = 0; j < dim; j++) ss += (double)e[(size_t)i * dim + j] * e[(size_t)i * dim + j];
            float inv = ss > 0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
            for (uint32_t j = 0; j < dim; j++) e[(size_t)i * dim + j] *= inv;
        }
        if (!tsv) {
            printf("%5s", "");
            for (int j = 0; j < n; j++) printf("  [%5d] ", j);
            putchar('\n');
        }
        for (int i = 0; i < n; i++) {
            if (!tsv) printf("[%3d]", i);
            for (int j = 0; j < n; j++) {
                double dot = 0;
                for (uint32_t k = 0; k < dim; k++) dot += (double)e[(size_t)i * dim + k] * e[(size_t)j * dim + k];
                if (tsv) printf(j ? "\t%.6f" : "%.6f", dot);
                else printf("  %7.4f ", dot);
            }
            putchar('\n');
        }
        if (!tsv) {
            putchar('\n');
            for (int i = 0; i < n; i++) {
                size_t len = strlen(texts[i]), show = len > 70 ? 67 : len;
                while (show < len && show > 0 && ((unsigned char)texts[i][show] & 0xC0) == 0x80) show--; // whole UTF-8 chars
                printf("[%3d] %.*s%s\n", i, (int)show, texts[i], show < len ? "..." : "");
            }
        }
    }
    free(e);
    sembed_context_free(ctx);
    sembed_model_free(m);
    return status;
}
