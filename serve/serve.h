// serve/serve.h: `sembed serve`, an HTTP embedding server (docs/serve.md). Internal to the CLI;
// built on the public API in include/sembed/ only, libmicrohttpd for HTTP and json-c for JSON.
//
//     struct serve_params p = serve_default_params();
//     p.model_path = "model.semb";
//     struct serve *s;
//     char why[256];
//     if (serve_start(&p, &s, why, sizeof why) == 0) {            // listening once it returns
//         printf("listening on %s\n", serve_address(s));
//         ... wait for SIGTERM ...
//         serve_stop(s);                         // refuse new connections, answer in-flight ones
//     }
//
// Threads: libmicrohttpd runs one thread per connection (bounded by a connection limit and a
// timeout); a connection's thread parses and tokenizes its request, queues it, and sleeps on the
// request's condition variable until one batcher thread, owning the sembed contexts, has packed its
// inputs (with other requests' inputs) into forward passes. See docs/serve.md for why.
#ifndef SEMBED_SERVE_H
#define SEMBED_SERVE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sembed/sembed.h"

struct serve_params {
    const char *model_path;           // required
    const char *host;                 // "127.0.0.1"
    uint16_t port;                    // 8080; 0 = any free port (see serve_port)
    int32_t n_threads;                // OpenMP threads of the forward passes; 0 = all cores
    uint32_t max_batch_tokens;        // tokens per forward pass; 0 = max(2048, max_input_length)
    uint32_t max_client_batch_size;   // inputs per request (32); more is 413
    uint32_t max_concurrent_requests; // requests queued or running (512); more is 429
    uint32_t max_input_length;        // tokens per input incl. specials; 0 = the model's maximum
    size_t payload_limit;             // request body bytes (2000000); more is 413, refused unread
    uint32_t timeout_s;               // idle connection timeout in seconds (30)
    uint32_t drain_timeout_s;         // serve_stop waits this long for in-flight requests (30)
    const char *api_key;              // NULL: no authentication
    const char *model_id;             // NULL: the file's general.name, else the file name
    enum sembed_compute compute;      // SEMBED_COMPUTE_AUTO
};
struct serve_params serve_default_params(void);

struct serve;
// Load the model, start the batcher and the HTTP daemon: 0, or a SEMBED_E* status with the reason
// in why[why_len] (SEMBED_EINVAL: a bad setting; SEMBED_EIO: cannot listen).
int serve_start(const struct serve_params *p, struct serve **out, char *why, size_t why_len);
// The bound port (useful with port 0) and "http://HOST:PORT".
uint16_t serve_port(const struct serve *s);
const char *serve_address(const struct serve *s);
// Graceful drain: stop accepting connections, answer every request already received (up to
// drain_timeout_s), then close everything and free. NULL is a no-op.
void serve_stop(struct serve *s);

/* ---------------------------------------------------------------- request parsing */
// Split out of the HTTP code so that it can be tested and fuzzed without a socket.

enum serve_route {
    SERVE_ROUTE_OPENAI = 0, // POST /v1/embeddings
    SERVE_ROUTE_EMBED,      // POST /embed (TEI)
    SERVE_ROUTE_TOKENIZE,   // POST /tokenize (TEI)
    SERVE_ROUTE_SIMILARITY, // POST /similarity
    SERVE_ROUTE_RERANK,     // POST /rerank (TEI)
    SERVE_ROUTE_COUNT
};

// One input: a text (text != NULL, len bytes, may hold NULs) or token ids used as given (ids).
struct serve_item {
    const char *text;
    size_t len;
    int32_t *ids;
    uint32_t n_ids;
};

struct serve_request {
    enum serve_route route;
    json_object *root;       // owns the strings items point into
    struct serve_item *items;
    size_t n;
    int normalize;           // -1: the model's default; 0 / 1
    bool truncate;           // false: an over-long input is 413
    bool truncate_left;      // truncation_direction "left": keep the last tokens
    bool base64;             // OpenAI encoding_format "base64"
    uint32_t dimensions;     // OpenAI: keep the first d values; 0 = all
    bool add_special_tokens; // /tokenize (true)
    bool sim_pairs;          // /similarity: items are pairs (a0 b0 a1 b1 ...), else source + sentences
    bool raw_scores;         // /rerank: logits instead of the checkpoint's activation
    bool return_text;        // /rerank: echo each text
};

// What went wrong, as an HTTP status, a TEI error_type ("Validation", "Overloaded", ...), the
// offending parameter (OpenAI's "param"; may be empty) and a message.
struct serve_error {
    int status;
    const char *type;
    char param[32];
    char msg[256];
};

struct serve_limits {
    uint32_t max_client_batch_size;
    uint32_t max_input_length; // for token-id inputs
    uint32_t vocab_size;       // token ids must be below
    uint32_t dim;              // OpenAI dimensions must be 1..dim
};

// Parse a request body for route. Malformed JSON, invalid UTF-8, missing or mistyped fields are
// 422; too many inputs or an over-long id input are 413. On success the request owns its data
// (serve_request_free); on failure *err says why and nothing needs freeing.
int serve_request_parse(enum serve_route route, const char *body, size_t len, const struct serve_limits *lim,
                        struct serve_request *req, struct serve_error *err);
void serve_request_free(struct serve_request *req);

// Tokenize item i for the model: [CLS] text [SEP] cut to max_len when req->truncate (from the left
// with truncate_left), else 413 when longer. Id items are copied (cut to max_len when truncating).
// *ids is heap memory (free it); *cut tells whether anything was dropped.
int serve_item_tokenize(const struct sembed_tokenizer *tok, const struct serve_request *req, size_t i,
                        uint32_t max_len, int32_t **ids, uint32_t *n, bool *cut, struct serve_error *err);

// /rerank: items[0] is the query, items[1..n) the texts. Tokenize the pair (query, items[i]) as the
// model's post-processor does ([CLS] q [SEP] t [SEP], types 0 / 1), cut longest-first to max_len
// when req->truncate, else 413 when longer. *ids and *types are heap memory (free both).
int serve_pair_tokenize(const struct sembed_tokenizer *tok, const struct serve_request *req, size_t i, uint32_t max_len,
                        int32_t **ids, int32_t **types, uint32_t *n, bool *cut, struct serve_error *err);

// Base64 (RFC 4648, with padding) of n little-endian float32 values into out[4 * ((4n + 2) / 3) + 1].
size_t serve_base64_f32(const float *v, size_t n, char *out);

#endif
