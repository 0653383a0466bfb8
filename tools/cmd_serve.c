// `sembed serve -m MODEL [options]`: an HTTP embedding server (serve/, docs/serve.md).
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve/serve.h"
#include "tools/cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed serve -m MODEL.semb [options]\n\n"
            "Serve embeddings over HTTP: POST /v1/embeddings (OpenAI), POST /embed, /tokenize, /similarity and\n"
            "GET /info, /health, /metrics (text-embeddings-inference). Concurrent requests are packed into\n"
            "shared forward passes; each answer is bit-identical to `sembed embed` (docs/serve.md).\n"
            "Prints 'sembed serve: listening on http://HOST:PORT' when ready; SIGINT/SIGTERM stop accepting\n"
            "connections, answer the requests already received, and exit 0.\n\n"
            "  -m, --model FILE                 the .semb model (required)\n"
            "      --host ADDR                  address to bind (default 127.0.0.1; 0.0.0.0 or :: for all)\n"
            "      --port N                     TCP port (default 8080; 0 = any free port)\n"
            "  -t, --threads N                  threads of each forward pass (default: all cores)\n"
            "      --max-batch-tokens N         tokens per forward pass (default 2048, or the maximum input\n"
            "                                   length if larger; TEI uses 16384, see docs/serve.md)\n"
            "      --max-client-batch-size N    inputs per request; more is 413 (default 32)\n"
            "      --max-concurrent-requests N  requests queued or running; more is 429 (default 512)\n"
            "      --max-input-length N         tokens per input incl. [CLS]/[SEP] (default: the model's)\n"
            "      --payload-limit N            request body bytes; more is 413, refused unread (default 2000000)\n"
            "      --timeout N                  seconds an idle or stalled connection is kept (default 30)\n"
            "      --api-key KEY                require 'Authorization: Bearer KEY' (all routes but /health);\n"
            "                                   also read from $SEMBED_API_KEY\n"
            "      --model-id NAME              model name in answers (default: the file's general.name)\n"
            "      --compute MODE               f32 | int8 | auto (default auto, as `sembed embed`)\n"
            "  -h, --help                       this text\n");
}

static int parse_num(const char *flag, const char *s, unsigned long long lo, unsigned long long hi,
                     unsigned long long *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end || s[0] == '-' || !s[0] || v < lo || v > hi)
        return cli_error(CLI_USAGE, "serve", "%s wants an integer in %llu..%llu, got '%s'", flag, lo, hi, s);
    *out = v;
    return 0;
}

// Library errors during a request are answered over HTTP (4xx/5xx), so the log only prints
// warnings; an error while starting is kept for the one-line failure message.
static char g_start_error[512];
static _Atomic bool g_starting = true; // read by the batcher thread's log calls
static void serve_log(enum sembed_log_level level, const char *msg, void *ud) {
    (void)ud;
    if (level >= SEMBED_LOG_ERROR) {
        if (g_starting && !g_start_error[0]) snprintf(g_start_error, sizeof g_start_error, "%s", msg);
    } else if (level >= SEMBED_LOG_WARN) {
        fprintf(stderr, "sembed serve: %s\n", msg);
    }
}

int cmd_serve(int argc, char **argv) {
    enum { O_HOST = 256, O_PORT, O_MBT, O_MCBS, O_MCR, O_MIL, O_PAYLOAD, O_TIMEOUT, O_KEY, O_ID, O_COMPUTE };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'}, {"host", required_argument, NULL, O_HOST},
        {"port", required_argument, NULL, O_PORT}, {"threads", required_argument, NULL, 't'},
        {"max-batch-tokens", required_argument, NULL, O_MBT},
        {"max-client-batch-size", required_argument, NULL, O_MCBS},
        {"max-concurrent-requests", required_argument, NULL, O_MCR},
        {"max-input-length", required_argument, NULL, O_MIL}, {"payload-limit", required_argument, NULL, O_PAYLOAD},
        {"timeout", required_argument, NULL, O_TIMEOUT}, {"api-key", required_argument, NULL, O_KEY},
        {"model-id", required_argument, NULL, O_ID}, {"compute", required_argument, NULL, O_COMPUTE},
        {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct serve_params p = serve_default_params();
    p.api_key = getenv("SEMBED_API_KEY");
    if (p.api_key && !p.api_key[0]) p.api_key = NULL;
    unsigned long long v;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': p.model_path = optarg; break;
        case O_HOST: p.host = optarg; break;
        case O_PORT: if (parse_num("--port", optarg, 0, 65535, &v)) return CLI_USAGE; p.port = (uint16_t)v; break;
        case 't': if (parse_num("--threads", optarg, 0, 1024, &v)) return CLI_USAGE; p.n_threads = (int32_t)v; break;
        case O_MBT:
            if (parse_num("--max-batch-tokens", optarg, 2, 1u << 22, &v)) return CLI_USAGE;
            p.max_batch_tokens = (uint32_t)v;
            break;
        case O_MCBS:
            if (parse_num("--max-client-batch-size", optarg, 1, 65536, &v)) return CLI_USAGE;
            p.max_client_batch_size = (uint32_t)v;
            break;
        case O_MCR:
            if (parse_num("--max-concurrent-requests", optarg, 1, 65536, &v)) return CLI_USAGE;
            p.max_concurrent_requests = (uint32_t)v;
            break;
        case O_MIL:
            if (parse_num("--max-input-length", optarg, 2, 1u << 20, &v)) return CLI_USAGE;
            p.max_input_length = (uint32_t)v;
            break;
        case O_PAYLOAD:
            if (parse_num("--payload-limit", optarg, 16, 1ull << 30, &v)) return CLI_USAGE;
            p.payload_limit = (size_t)v;
            break;
        case O_TIMEOUT: if (parse_num("--timeout", optarg, 1, 86400, &v)) return CLI_USAGE; p.timeout_s = (uint32_t)v; break;
        case O_KEY: p.api_key = optarg[0] ? optarg : NULL; break;
        case O_ID: p.model_id = optarg; break;
        case O_COMPUTE:
            if (sembed_compute_parse(optarg, &p.compute))
                return cli_error(CLI_USAGE, "serve", "--compute is f32, int8 or auto, got '%s'", optarg);
            break;
        case 'h': usage(stdout); return CLI_OK;
        default:
            return cli_error(CLI_USAGE, "serve", "unknown option or missing value: '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_error(CLI_USAGE, "serve", "unexpected argument '%s' (see --help)", argv[optind]);
    if (!p.model_path) return cli_error(CLI_USAGE, "serve", "-m MODEL.semb is required (see --help)");

    // Every thread the server starts inherits this mask; the main thread takes the signals.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct serve *s = NULL;
    char why[512] = "";
    sembed_log_set(serve_log, NULL);
    int rc = serve_start(&p, &s, why, sizeof why);
    if (rc) {
        cli_install_logger(false);
        if (g_start_error[0]) return cli_error(rc == SEMBED_EINVAL ? CLI_USAGE : CLI_FAIL, "serve", "%s [%s]", why, g_start_error);
        return cli_error(rc == SEMBED_EINVAL ? CLI_USAGE : CLI_FAIL, "serve", "%s", why[0] ? why : sembed_strerror(rc));
    }
    g_starting = false;
    printf("sembed serve: listening on %s\n", serve_address(s));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "sembed serve: %s, answering the requests in flight\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    serve_stop(s);
    fprintf(stderr, "sembed serve: stopped\n");
    return CLI_OK;
}
