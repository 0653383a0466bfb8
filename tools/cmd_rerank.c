// `sembed rerank -m CROSS_ENCODER.semb QUERY DOC...`: score (query, document) pairs with a
// cross-encoder (a sequence-classification head) and print the scores.
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/model.h"
#include "tools/cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed rerank -m MODEL.semb [options] QUERY [DOC...]\n"
            "       sembed rerank -m MODEL.semb --pairs < 'query TAB document' lines\n\n"
            "Score each document against the query with a cross-encoder (a model converted from a\n"
            "*ForSequenceClassification / sentence-transformers CrossEncoder checkpoint). Documents come\n"
            "from the arguments, or one per stdin line when only QUERY is given. Output: one line per\n"
            "document, in input order (or best first with --sort): index, score(s), document, TAB-separated;\n"
            "or with --json one object per line as text-embeddings-inference's /rerank returns them.\n"
            "Scores are the checkpoint's activation of its logits (sigmoid for one-label rerankers) unless --raw.\n\n"
            "  -m, --model FILE       the cross-encoder .semb (required)\n"
            "      --pairs            read 'query TAB document' pairs from stdin (no QUERY argument)\n"
            "      --sort             best first (by the first label's score)\n"
            "      --raw              print raw logits\n"
            "      --json             {\"index\": i, \"score\": s, \"text\": doc} per line\n"
            "  -L, --max-length N     tokens per pair incl. specials (default: the model's maximum;\n"
            "                         longer pairs are cut longest-first)\n"
            "  -t, --threads N        threads (default: all cores)\n"
            "      --compute MODE     f32 | int8 | auto (default: int8 for q8 models, else f32)\n"
            "  -h, --help             this text\n");
}

struct item {
    size_t index;
    const char *query, *doc;
    float *scores;
};

static int by_score(const void *a, const void *b) {
    float x = ((const struct item *)a)->scores[0], y = ((const struct item *)b)->scores[0];
    if (x != y) return x < y ? 1 : -1;
    size_t i = ((const struct item *)a)->index, j = ((const struct item *)b)->index;
    return (i > j) - (i < j); // stable on ties
}

static void json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

int cmd_rerank(int argc, char **argv) {
    enum { OPT_PAIRS = 256, OPT_SORT, OPT_RAW, OPT_JSON, OPT_COMPUTE };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'}, {"pairs", no_argument, NULL, OPT_PAIRS},
        {"sort", no_argument, NULL, OPT_SORT}, {"raw", no_argument, NULL, OPT_RAW}, {"json", no_argument, NULL, OPT_JSON},
        {"max-length", required_argument, NULL, 'L'}, {"threads", required_argument, NULL, 't'},
        {"compute", required_argument, NULL, OPT_COMPUTE}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct sembed_context_params cp = sembed_context_default_params();
    struct sembed_model_params mp = sembed_model_default_params();
    const char *model = NULL;
    bool pairs = false, sort = false, raw = false, json = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:L:t:h", longopts, NULL)) != -1) {
        char *end = NULL;
        long v;
        switch (c) {
        case 'm': model = optarg; break;
        case OPT_PAIRS: pairs = true; break;
        case OPT_SORT: sort = true; break;
        case OPT_RAW: raw = true; break;
        case OPT_JSON: json = true; break;
        case 'L':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno || !end || *end || v < 3 || v > (1L << 20))
                return cli_error(CLI_USAGE, "rerank", "--max-length wants an integer >= 3, got '%s'", optarg);
            cp.max_length = (uint32_t)v;
            break;
        case 't':
            errno = 0;
            v = strtol(optarg, &end, 10);
            if (errno || !end || *end || v < 0 || v > 1024)
                return cli_error(CLI_USAGE, "rerank", "--threads wants an integer in 0..1024, got '%s'", optarg);
            cp.n_threads = (int32_t)v;
            break;
        case OPT_COMPUTE:
            if (sembed_compute_parse(optarg, &mp.compute))
                return cli_error(CLI_USAGE, "rerank", "--compute is f32, int8 or auto, got '%s'", optarg);
            break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_error(CLI_USAGE, "rerank", "unknown option or missing value: '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (!model) return cli_error(CLI_USAGE, "rerank", "-m MODEL.semb is required (see --help)");
    int nargs = argc - optind;
    if (pairs && nargs) return cli_error(CLI_USAGE, "rerank", "--pairs reads stdin: give no QUERY or DOC arguments");
    if (!pairs && nargs < 1) return cli_error(CLI_USAGE, "rerank", "give a QUERY (and documents, or documents on stdin)");

    // Inputs: arguments, or stdin lines (documents, or query TAB document with --pairs).
    struct item *items = NULL;
    size_t n = 0, cap = 0;
    char **lines = NULL;
    size_t n_lines = 0;
    int status = CLI_OK;
    if (!pairs && nargs > 1) {
        n = (size_t)nargs - 1;
        if (!(items = calloc(n, sizeof *items))) return cli_error(CLI_FAIL, "rerank", "out of memory");
        for (size_t i = 0; i < n; i++) items[i] = (struct item){i, argv[optind], argv[optind + 1 + i], NULL};
    } else {
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        while ((len = getline(&line, &lcap, stdin)) >= 0) {
            if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
            if (len > 0 && line[len - 1] == '\r') line[--len] = 0;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct item *ni = realloc(items, nc * sizeof *ni);
                char **nl = realloc(lines, nc * sizeof *nl);
                if (ni) items = ni;
                if (nl) lines = nl;
                if (!ni || !nl) { status = cli_error(CLI_FAIL, "rerank", "out of memory"); break; }
                cap = nc;
            }
            if (!(lines[n_lines] = strdup(line))) { status = cli_error(CLI_FAIL, "rerank", "out of memory"); break; }
            char *doc = lines[n_lines], *query = argv[optind];
            if (pairs) {
                char *tab = strchr(doc, '\t');
                if (!tab) {
                    status = cli_error(CLI_USAGE, "rerank", "stdin line %zu has no TAB: --pairs wants 'query TAB document'", n + 1);
                    n_lines++;
                    break;
                }
                *tab = 0;
                query = doc;
                doc = tab + 1;
            }
            items[n] = (struct item){n, query, doc, NULL};
            n++, n_lines++;
        }
        free(line);
        if (status == CLI_OK && ferror(stdin)) status = cli_error(CLI_FAIL, "rerank", "reading stdin: %s", strerror(errno));
    }

    struct sembed_model *m = NULL;
    struct sembed_context *ctx = NULL;
    float *scores = NULL;
    int rc;
    if (status == CLI_OK && (rc = sembed_model_load(model, &mp, &m)))
        status = cli_error(CLI_FAIL, "rerank", "cannot load %s: %s", model, sembed_strerror(rc));
    if (status == CLI_OK && !sembed_model_num_labels(m))
        status = cli_error(CLI_USAGE, "rerank", "%s is an embedding model, not a cross-encoder (no classifier head): "
                           "use `sembed similarity`", model);
    if (status == CLI_OK && (rc = sembed_context_create(m, &cp, &ctx)))
        status = cli_error(rc == SEMBED_EINVAL ? CLI_USAGE : CLI_FAIL, "rerank", "%s", sembed_strerror(rc));
    const uint32_t nl = m ? sembed_model_num_labels(m) : 0;
    if (status == CLI_OK && n && !(scores = malloc(n * nl * sizeof *scores)))
        status = cli_error(CLI_FAIL, "rerank", "out of memory");
    // Consecutive pairs with the same query go through one sembed_rerank call.
    for (size_t i = 0; status == CLI_OK && i < n;) {
        size_t j = i;
        while (j < n && (items[j].query == items[i].query || !strcmp(items[j].query, items[i].query))) j++;
        const char **docs = malloc((j - i) * sizeof *docs);
        if (!docs) { status = cli_error(CLI_FAIL, "rerank", "out of memory"); break; }
        for (size_t k = i; k < j; k++) docs[k - i] = items[k].doc;
        if ((rc = sembed_rerank(ctx, items[i].query, docs, j - i, raw, scores + i * nl)))
            status = cli_error(CLI_FAIL, "rerank", "%s", sembed_strerror(rc));
        free(docs);
        i = j;
    }
    if (status == CLI_OK) {
        for (size_t i = 0; i < n; i++) items[i].scores = scores + i * nl;
        if (sort) qsort(items, n, sizeof *items, by_score);
        for (size_t i = 0; i < n; i++) {
            if (json) {
                printf("{\"index\": %zu, \"score\": %.9g", items[i].index, (double)items[i].scores[0]);
                if (nl > 1) {
                    printf(", \"scores\": [");
                    for (uint32_t k = 0; k < nl; k++) printf(k ? ", %.9g" : "%.9g", (double)items[i].scores[k]);
                    putchar(']');
                }
                printf(", \"text\": ");
                json_string(items[i].doc);
                printf("}\n");
            } else {
                printf("%zu", items[i].index);
                for (uint32_t k = 0; k < nl; k++) printf("\t%.6f", (double)items[i].scores[k]);
                printf("\t%s\n", items[i].doc);
            }
        }
        if (fflush(stdout) != 0) status = cli_error(CLI_FAIL, "rerank", "writing stdout: %s", strerror(errno));
    }
    free(scores);
    sembed_context_free(ctx);
    sembed_model_free(m);
    for (size_t i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
    free(items);
    return status;
}
