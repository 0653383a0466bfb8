// `sembed export`: a .semb as a HuggingFace BertModel + sentence-transformers folder.
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "sembed/train.h"
#include "tools/cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed export -m MODEL.semb -o DIR\n"
            "\n"
            "Write DIR/ so PyTorch tools load the model: config.json + model.safetensors (transformers\n"
            "BertModel), vocab.txt, tokenizer_config.json, special_tokens_map.json, and the\n"
            "sentence-transformers modules (modules.json, sentence_bert_config.json, 1_Pooling/, a Dense\n"
            "module for the cls pooler's dense+tanh and any Dense layers, Normalize). Weights are written\n"
            "as f32 (quantized models are dequantized); the MLM head is not exported.\n"
            "\n"
            "  -m, --model FILE   the .semb to export\n"
            "  -o, --output DIR   folder (created if needed; files in it are replaced atomically)\n"
            "  -v, --verbose      more messages\n"
            "  -h, --help         this text\n");
}

int cmd_export(int argc, char **argv) {
    static const struct option opts[] = {{"model", required_argument, 0, 'm'}, {"output", required_argument, 0, 'o'},
                                         {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL, *out = NULL;
    bool verbose = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:o:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return CLI_OK;
        case ':': return cli_error(CLI_USAGE, "export", "option %s needs a value", argv[optind - 1]);
        default: return cli_error(CLI_USAGE, "export", "unknown option '%s' (see sembed export --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_error(CLI_USAGE, "export", "unexpected argument '%s'", argv[optind]);
    if (!model || !out) return cli_error(CLI_USAGE, "export", "-m MODEL.semb and -o DIR are required");
    cli_install_logger(verbose);
    int rc = sembed_export_hf(model, out);
    if (rc) return cli_error(CLI_FAIL, "export", "%s: %s", model, sembed_strerror(rc));
    printf("%s\n", out);
    return CLI_OK;
}
