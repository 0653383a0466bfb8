// `sembed tokenize -m MODEL [--ids] [--pairs] [--max-length N] [--truncate MODE] [TEXT...]`:
// the model's tokenizer on each text (arguments, else stdin one text per line).
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/semb.h"
#include "sembed/tokenizer.h"
#include "tools/cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed tokenize (-m MODEL.semb | --tokenizer-json FILE) [--ids] [--offsets] [--pairs]\n"
            "                       [--max-length N] [--truncate longest_first|error] [--describe] [TEXT...]\n\n"
            "Tokenize each TEXT (or each line of stdin when no TEXT is given) with the model's\n"
            "tokenizer, as the encoder sees it: [CLS] text [SEP], or [CLS] a [SEP] b [SEP] for pairs.\n"
            "Output, one line per input: the tokens, a TAB, the ids (with --pairs, another TAB and\n"
            "the token type ids). Input that is not valid UTF-8 is decoded with U+FFFD replacement.\n\n"
            "  -m, --model FILE     the .semb model\n"
            "      --tokenizer-json FILE  a HuggingFace tokenizer.json instead of a model (any model type)\n"
            "      --offsets        add a column of byte offsets start,end per token\n"
            "      --describe       first print the tokenizer's type and components (stderr)\n"
            "      --ids            print only the ids, space-separated, [CLS]/[SEP] included\n"
            "      --pairs          each input is 'a TAB b' (a text without a TAB is a pair with an empty b)\n"
            "      --max-length N   tokens per input including specials (default: the model's maximum)\n"
            "      --truncate MODE  longest_first (default; the number of cut inputs goes to stderr)\n"
            "                       or error (exit 1 at the first input that does not fit)\n"
            "  -h, --help           this text\n");
}

struct opts {
    bool ids_only, pairs, offsets;
    uint32_t max_len;
    enum sembed_truncate mode;
};

static void print_line(const struct sembed_tokenizer *t, const struct opts *o, const int32_t *ids,
                       const int32_t *types, uint32_t n) {
    if (!o->ids_only) {
        for (uint32_t i = 0; i < n; i++) {
            const char *tok = sembed_tokenizer_token(t, ids[i]);
            if (i) putchar(' ');
            fputs(tok ? tok : "?", stdout);
        }
        putchar('\t');
    }
    for (uint32_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    if (o->pairs && !o->ids_only) {
        putchar('\t');
        for (uint32_t i = 0; i < n; i++) printf(i ? " %d" : "%d", types[i]);
    }
    putchar('\n');
}

// Tokenize one input; 0 ok, CLI_FAIL on error (message printed).
static int one(const struct sembed_tokenizer *t, const struct opts *o, const char *text, size_t len, size_t lineno,
               int32_t *ids, int32_t *types, size_t *n_cut) {
    const char *a = text, *b = NULL;
    size_t al = len, bl = 0;
    if (o->pairs) {
        const char *tab = memchr(text, '\t', len);
        if (tab) { al = (size_t)(tab - text); b = tab + 1; bl = len - al - 1; }
        else { b = ""; bl = 0; }
    }
    uint32_t n = 0;
    bool cut = false;
    if (o->offsets) {
        struct sembed_encoding e;
        int rc = sembed_tokenizer_encode_full(t, a, al, b, bl, true, o->max_len, o->mode, &e, &cut);
        if (rc == SEMBED_ETOOLONG)
            return cli_error(CLI_FAIL, "tokenize", "input %zu needs more than %u tokens (--truncate error)", lineno, o->max_len);
        if (rc) return cli_error(CLI_FAIL, "tokenize", "input %zu: %s", lineno, sembed_strerror(rc));
        *n_cut += cut;
        // tokens TAB ids [TAB types] TAB offsets
        if (!o->ids_only) {
            for (size_t i = 0; i < e.n; i++) {
                const char *tok = sembed_tokenizer_token(t, e.ids[i]);
                if (i) putchar(' ');
                fputs(tok ? tok : "?", stdout);
            }
            putchar('\t');
        }
        for (size_t i = 0; i < e.n; i++) printf(i ? " %d" : "%d", e.ids[i]);
        if (o->pairs && !o->ids_only) {
            putchar('\t');
            for (size_t i = 0; i < e.n; i++) printf(i ? " %d" : "%d", e.type_ids[i]);
        }
        putchar('\t');
        for (size_t i = 0; i < e.n; i++) printf(i ? " %u,%u" : "%u,%u", e.start[i], e.end[i]);
        putchar('\n');
        sembed_encoding_free(&e);
        return CLI_OK;
    }
    int rc = sembed_tokenizer_encode_input(t, a, al, b, bl, o->max_len, o->mode, ids, types, &n, &cut);
    if (rc == SEMBED_ETOOLONG)
        return cli_error(CLI_FAIL, "tokenize", "input %zu needs more than %u tokens (--truncate error)", lineno, o->max_len);
    if (rc) return cli_error(CLI_FAIL, "tokenize", "input %zu: %s", lineno, sembed_strerror(rc));
    *n_cut += cut;
    print_line(t, o, ids, types, n);
    return CLI_OK;
}

static char *read_all(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t k = fread(b + n, 1, cap - n, fp);
        n += k;
        if (n < cap) break;
        char *nb = cap <= (SIZE_MAX >> 1) ? realloc(b, cap * 2) : NULL;
        if (!nb) { free(b); b = NULL; break; }
        b = nb;
        cap *= 2;
    }
    if (b && ferror(fp)) { free(b); b = NULL; }
    fclose(fp);
    *len = n;
    return b;
}

int cmd_tokenize(int argc, char **argv) {
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'}, {"ids", no_argument, NULL, 'i'},
        {"pairs", no_argument, NULL, 'p'},       {"max-length", required_argument, NULL, 'L'},
        {"truncate", required_argument, NULL, 'T'}, {"help", no_argument, NULL, 'h'},
        {"tokenizer-json", required_argument, NULL, 'J'}, {"offsets", no_argument, NULL, 'O'},
        {"describe", no_argument, NULL, 'D'},
        {NULL, 0, NULL, 0}};
    struct opts o = {false, false, false, 0, SEMBED_TRUNCATE_LONGEST_FIRST};
    const char *model = NULL, *tjson = NULL;
    bool describe = false;
    long max_len = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'i': o.ids_only = true; break;
        case 'J': tjson = optarg; break;
        case 'O': o.offsets = true; break;
        case 'D': describe = true; break;
        case 'p': o.pairs = true; break;
        case 'L': {
            char *end = NULL;
            max_len = strtol(optarg, &end, 10);
            if (!end || *end || max_len < 1 || max_len > 1000000)
                return cli_error(CLI_USAGE, "tokenize", "--max-length wants a positive integer, got '%s'", optarg);
            break;
        }
        case 'T':
            if (!strcmp(optarg, "longest_first")) o.mode = SEMBED_TRUNCATE_LONGEST_FIRST;
            else if (!strcmp(optarg, "error")) o.mode = SEMBED_TRUNCATE_ERROR;
            else return cli_error(CLI_USAGE, "tokenize", "--truncate is longest_first or error, got '%s'", optarg);
            break;
        case 'h': usage(stdout); return CLI_OK;
        default:
            return cli_error(CLI_USAGE, "tokenize", "unknown option or missing value: '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (!model == !tjson) return cli_error(CLI_USAGE, "tokenize", "one of -m MODEL.semb or --tokenizer-json FILE is required (see --help)");
    uint32_t need = o.pairs ? 3 : 2;
    if (max_len && (uint32_t)max_len < need)
        return cli_error(CLI_USAGE, "tokenize", "--max-length %ld leaves no room for the %u special tokens", max_len, need);

    struct sembed_file *f = NULL;
    struct sembed_tokenizer *t = NULL;
    int rc;
    if (tjson) {
        size_t jl = 0;
        char *js = read_all(tjson, &jl);
        if (!js) return cli_error(CLI_FAIL, "tokenize", "%s: cannot read", tjson);
        rc = sembed_tokenizer_from_hf_json(js, jl, 0, &t);
        free(js);
        if (rc) return cli_error(CLI_FAIL, "tokenize", "%s: not a usable tokenizer.json: %s", tjson, sembed_strerror(rc));
    } else {
        rc = sembed_file_open(model, &f);
        if (rc) return cli_error(CLI_FAIL, "tokenize", "%s: %s", model, sembed_strerror(rc));
        rc = sembed_tokenizer_from_file(f, &t);
        if (rc) {
            sembed_file_free(f);
            return cli_error(CLI_FAIL, "tokenize", "%s: no usable tokenizer: %s", model, sembed_strerror(rc));
        }
    }
    if (describe) {
        char d[512];
        sembed_tokenizer_describe(t, d, sizeof d);
        fprintf(stderr, "tokenizer: %s\n", d);
    }
    uint32_t model_max = sembed_tokenizer_params(t)->model_max_length;
    if (max_len && (uint32_t)max_len > model_max) {
        sembed_tokenizer_free(t);
        sembed_file_free(f);
        return cli_error(CLI_USAGE, "tokenize", "--max-length %ld exceeds the model's maximum of %u tokens", max_len, model_max);
    }
    o.max_len = max_len ? (uint32_t)max_len : model_max;

    int32_t *ids = malloc(o.max_len * sizeof *ids), *types = malloc(o.max_len * sizeof *types);
    int status = CLI_OK;
    size_t n_in = 0, n_cut = 0;
    if (!ids || !types) {
        status = cli_error(CLI_FAIL, "tokenize", "out of memory");
    } else if (optind < argc) {
        for (int i = optind; i < argc && status == CLI_OK; i++)
            status = one(t, &o, argv[i], strlen(argv[i]), ++n_in, ids, types, &n_cut);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (status == CLI_OK && (n = getline(&line, &cap, stdin)) >= 0) {
            size_t len = (size_t)n;
            if (len && line[len - 1] == '\n') len--;
            status = one(t, &o, line, len, ++n_in, ids, types, &n_cut);
        }
        if (status == CLI_OK && ferror(stdin)) status = cli_error(CLI_FAIL, "tokenize", "reading stdin failed");
        free(line);
    }
    if (status == CLI_OK && fflush(stdout) != 0) status = cli_error(CLI_FAIL, "tokenize", "writing stdout failed");
    if (status == CLI_OK && n_cut)
        fprintf(stderr, "sembed tokenize: %zu of %zu inputs truncated to %u tokens\n", n_cut, n_in, o.max_len);
    free(ids);
    free(types);
    sembed_tokenizer_free(t);
    sembed_file_free(f);
    return status;
}
