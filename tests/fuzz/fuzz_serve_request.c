// libFuzzer target for `sembed serve`'s request path without a socket: body bytes -> JSON ->
// inputs (serve_request_parse) -> token ids (serve_item_tokenize, with a small vocabulary) and
// the base64 encoder. The first byte picks the route and a few flags; the rest is the body.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/request.c" // the server's parser is not in libsembed: compile it into the target

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct sembed_tokenizer *tok;
    if (!tok) {
        sembed_log_set(quiet, NULL);
        static const char *const vocab[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "##b",
                                            "hello", "world", "##s", ",", "."};
        struct sembed_tokenizer_params tp = sembed_tokenizer_default_params();
        if (sembed_tokenizer_create(vocab, sizeof vocab / sizeof vocab[0], &tp, &tok)) abort();
    }
    if (size < 1) return 0;
    const enum serve_route route = (enum serve_route)(data[0] % SERVE_ROUTE_COUNT);
    const struct serve_limits lim = {.max_client_batch_size = 1u + (data[0] >> 4), .max_input_length = 16,
                                     .vocab_size = 13, .dim = 8};
    // the body in its own allocation, unterminated, so that reads past the end are caught
    char *body = malloc(size - 1 ? size - 1 : 1);
    if (!body) return 0;
    memcpy(body, data + 1, size - 1);
    struct serve_request req;
    struct serve_error err;
    if (serve_request_parse(route, body, size - 1, &lim, &req, &err) == 0) {
        if (req.n == 0 || !req.items) abort(); // a parsed request always has inputs
        for (size_t i = route == SERVE_ROUTE_RERANK ? 1 : 0; i < req.n; i++) {
            int32_t *ids = NULL, *types = NULL;
            uint32_t n = 0;
            bool cut = false;
            int rc = route == SERVE_ROUTE_RERANK
                         ? serve_pair_tokenize(tok, &req, i, lim.max_input_length, &ids, &types, &n, &cut, &err)
                         : serve_item_tokenize(tok, &req, i, lim.max_input_length, &ids, &n, &cut, &err);
            if (rc == 0) {
                if (n > lim.max_input_length) abort();
                for (uint32_t j = 0; j < n; j++)
                    if (ids[j] < 0 || ids[j] >= 13 || (types && types[j] != 0 && types[j] != 1)) abort();
                free(ids);
                free(types);
            } else if (err.status != 413 && err.status != 422 && err.status != 503) {
                abort();
            }
        }
        serve_request_free(&req);
    } else if (err.status < 400 || err.status > 503 || !err.type || !err.msg[0]) {
        abort(); // every refusal names a status, a type and a reason
    }
    float v[5];
    memcpy(v, data, size < sizeof v ? size : sizeof v);
    char b64[4 * ((4 * 5 + 2) / 3) + 1];
    size_t k = size % 6;
    if (serve_base64_f32(v, k, b64) != 4 * ((4 * k + 2) / 3)) abort();
    free(body);
    return 0;
}
