// `sembed convert`: import a HuggingFace / sentence-transformers / ONNX checkpoint into .semb.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/calibrate.h"
#include "sembed/convert.h"
#include "tools/cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed convert SRC -o OUT.semb [options]\n"
            "\n"
            "SRC is a HuggingFace or sentence-transformers folder, or a single file: model.safetensors,\n"
            "model.safetensors.index.json (sharded), pytorch_model.bin (zip format, torch>=1.6), model.onnx.\n"
            "config.json and the tokenizer files are read from the folder holding the weights.\n"
            "\n"
            "options:\n"
            "  -o, --output PATH      the .semb file to write (replaced atomically)\n"
            "      --dtype TYPE       f32 (default, exact), f16, bf16, or q8 (int8 Linear weights with one\n"
            "                         scale per output row, f16 word embeddings, float LayerNorms/biases)\n"
            "      --pooling MODE     cls, cls_before_pooler, mean, max, first_last_avg\n"
            "                         (default: what the source declares; mean for a plain BERT folder)\n"
            "      --normalize        L2-normalize embeddings (default: what the source declares)\n"
            "      --no-normalize     do not L2-normalize\n"
            "      --name NAME        general.name (default: the source folder name)\n"
            "      --keep-mlm-head    keep the masked-LM head (for `sembed train --objective mlm`)\n"
            "      --meta KEY=VALUE   store an extra metadata entry (repeatable); KEY in x.*, train.* or eval.*;\n"
            "                         VALUE typed by its form (true/false, integer, decimal, else string) or\n"
            "                         by KEY:TYPE=VALUE with TYPE str, u32, u64, i64, f32, f64, bool\n"
            "      --no-calibrate     q8: skip measuring int8 vs f32 on the built-in calibration sentences\n"
            "                         (by default stored as quant.calib_cos_mean / _min / _count; docs/int8.md)\n"
            "      --calibrate        measure it whatever the dtype\n"
            "  -v, --verbose          print what was imported\n"
            "  -h, --help             this text\n"
            "\n"
            "A .semb SRC is rewritten with a freshly built tokenizer index (docs/format.md), every other\n"
            "key and tensor unchanged: how a file converted before the index existed loads in ~1 ms\n"
            "instead of ~2 ms. Only -o (which may name SRC itself) and -v apply then.\n"
            "\n"
            "See docs/convert.md for what is imported from where.\n");
}

static void on_progress(uint64_t done, uint64_t total, void *ud) {
    int *last = ud;
    int pct = total ? (int)(done * 100 / total) : 100;
    if (pct != *last) {
        *last = pct;
        fprintf(stderr, "\rconvert: %3d%%", pct);
        if (pct == 100) fputc('\n', stderr);
    }
}

int cmd_convert(int argc, char **argv) {
    enum { OPT_DTYPE = 256, OPT_POOLING, OPT_NORM, OPT_NO_NORM, OPT_NAME, OPT_MLM, OPT_META, OPT_CAL, OPT_NO_CAL };
    enum { MAX_META = 64 };
    static struct sc_meta meta[MAX_META];
    struct sc_convert_extra extra = {.meta = meta, .n_meta = 0, .calibrate = -1};
    static const struct option opts[] = {
        {"output", required_argument, NULL, 'o'},   {"dtype", required_argument, NULL, OPT_DTYPE},
        {"pooling", required_argument, NULL, OPT_POOLING}, {"normalize", no_argument, NULL, OPT_NORM},
        {"no-normalize", no_argument, NULL, OPT_NO_NORM}, {"name", required_argument, NULL, OPT_NAME},
        {"keep-mlm-head", no_argument, NULL, OPT_MLM}, {"verbose", no_argument, NULL, 'v'},
        {"meta", required_argument, NULL, OPT_META}, {"calibrate", no_argument, NULL, OPT_CAL},
        {"no-calibrate", no_argument, NULL, OPT_NO_CAL},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    struct sembed_convert_params p = sembed_convert_default_params();
    bool verbose = false, import_opts = false;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":o:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': p.out = optarg; break;
        case OPT_DTYPE:
            import_opts = true;
            if (!strcmp(optarg, "f32")) p.dtype = SEMBED_DTYPE_F32;
            else if (!strcmp(optarg, "f16")) p.dtype = SEMBED_DTYPE_F16;
            else if (!strcmp(optarg, "bf16")) p.dtype = SEMBED_DTYPE_BF16;
            else if (!strcmp(optarg, "q8") || !strcmp(optarg, "q8_row")) p.dtype = SEMBED_DTYPE_Q8_ROW;
            else return cli_error(CLI_USAGE, "convert", "--dtype %s: expected f32, f16, bf16 or q8", optarg);
            break;
        case OPT_POOLING: {
            import_opts = true;
            static const char *const modes[] = {"cls", "cls_before_pooler", "mean", "max", "first_last_avg"};
            bool ok = false;
            for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) ok |= !strcmp(optarg, modes[i]);
            if (!ok) return cli_error(CLI_USAGE, "convert", "--pooling %s: expected cls, cls_before_pooler, mean, max or first_last_avg", optarg);
            p.pooling = optarg;
            break;
        }
        case OPT_NORM: p.normalize = 1; import_opts = true; break;
        case OPT_NO_NORM: p.normalize = 0; import_opts = true; break;
        case OPT_NAME: p.name = optarg; import_opts = true; break;
        case OPT_MLM: p.keep_mlm_head = true; import_opts = true; break;
        case OPT_META:
            import_opts = true;
            if (extra.n_meta == MAX_META) return cli_error(CLI_USAGE, "convert", "at most %d --meta entries", MAX_META);
            cli_install_logger(false);
            if (sc_meta_parse(optarg, &meta[extra.n_meta])) return CLI_USAGE; // the reason is logged
            for (size_t i = 0; i < extra.n_meta; i++)
                if (!strcmp(meta[i].key, meta[extra.n_meta].key))
                    return cli_error(CLI_USAGE, "convert", "--meta %s is given twice", meta[i].key);
            extra.n_meta++;
            break;
        case OPT_CAL: extra.calibrate = 1; import_opts = true; break;
        case OPT_NO_CAL: extra.calibrate = 0; import_opts = true; break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_error(CLI_USAGE, "convert", "%s needs a value", argv[optind - 1]);
        default: return cli_error(CLI_USAGE, "convert", "unknown option %s (try --help)", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_error(CLI_USAGE, "convert", "missing SRC (try --help)");
    if (optind + 1 < argc) return cli_error(CLI_USAGE, "convert", "one SRC expected, got %d", argc - optind);
    if (!p.out) return cli_error(CLI_USAGE, "convert", "missing -o OUT.semb");
    p.src = argv[optind];
    size_t sl = strlen(p.src);
    if (sl > 5 && !strcmp(p.src + sl - 5, ".semb")) {
        if (import_opts)
            return cli_error(CLI_USAGE, "convert", "%s is a .semb file: it is only re-indexed, and takes -o and -v alone",
                             p.src);
        cli_install_logger(verbose);
        int rc = sembed_file_add_tokenizer_index(p.src, p.out);
        if (rc) return cli_error(CLI_FAIL, "convert", "%s: %s", p.src, sembed_strerror(rc));
        if (verbose) fprintf(stderr, "wrote %s with a fresh tokenizer index\n", p.out);
        return CLI_OK;
    }
    // Reproducible output when the build system asks for it (reproducible-builds.org convention).
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        char *end;
        long long t = strtoll(sde, &end, 10);
        if (*end == 0 && t >= 0) p.created = t;
    }
    int last = -1;
    if (cli_stderr_is_tty()) {
        p.progress = on_progress;
        p.progress_user_data = &last;
    }
    cli_install_logger(verbose);
    int rc = sc_convert_ex(&p, &extra);
    if (rc) return cli_error(CLI_FAIL, "convert", "%s: %s", p.src, sembed_strerror(rc));
    if (verbose) fprintf(stderr, "wrote %s\n", p.out);
    return CLI_OK;
}
