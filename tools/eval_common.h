// tools/eval_common.h: what `sembed eval` and `sembed analyze` share: opening a model with the
// runtime options they both take, embedding sentence lists with progress on a terminal, JSON
// numbers that stay valid JSON when undefined.
#ifndef SEMBED_TOOLS_EVAL_COMMON_H
#define SEMBED_TOOLS_EVAL_COMMON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "sembed/model.h"

struct ec_opts {
    enum sembed_pooling pooling; // DEFAULT: the file's
    int threads;                 // 0: OpenMP default
    unsigned batch;              // 0: runtime default
    unsigned max_length;         // 0: model max
    bool compute_set;            // --int8 / --compute given; else the file's default (auto)
    enum sembed_compute compute;
};

struct ec_model {
    const char *path;
    struct sembed_model *model;
    struct sembed_context *ctx;
    size_t dim;
};

// Parse a --pooling value; false (after printing the usage error) when unknown.
bool ec_parse_pooling(const char *cmd, const char *arg, enum sembed_pooling *out);
// Parse a positive integer option value; false (after printing the usage error) when invalid.
bool ec_parse_uint(const char *cmd, const char *flag, const char *arg, unsigned max, unsigned *out);

// The runtime options eval and analyze share: long-option ids (above any getopt character) and
// their table entries, to put in a command's struct option array.
enum { EC_OPT_POOLING = 0x4000, EC_OPT_MAXLEN, EC_OPT_BATCH, EC_OPT_THREADS, EC_OPT_INT8, EC_OPT_COMPUTE };
#define EC_LONG_OPTIONS                                                                                            \
    {"pooling", required_argument, NULL, EC_OPT_POOLING}, {"max-length", required_argument, NULL, EC_OPT_MAXLEN}, \
        {"batch", required_argument, NULL, EC_OPT_BATCH}, {"threads", required_argument, NULL, EC_OPT_THREADS},   \
        {"int8", no_argument, NULL, EC_OPT_INT8}, {"compute", required_argument, NULL, EC_OPT_COMPUTE}
// Apply option c (value arg) to o: 1 when c is one of EC_OPT_*, 0 when it is not, -1 after
// printing the usage error for a bad value.
int ec_option(const char *cmd, int c, const char *arg, struct ec_opts *o);

// Load the model and make one context. 0, or CLI_FAIL after printing one line.
int ec_open(const char *cmd, const char *path, const struct ec_opts *o, struct ec_model *m);
void ec_close(struct ec_model *m);

// Embed n texts into out[n * dim]; progress "what done/n" on stderr when it is a terminal.
// 0, or CLI_FAIL after printing one line.
int ec_embed(const char *cmd, struct ec_model *m, const char *what, const char *const *texts, size_t n,
             float *out);

// A double for JSON: null when not finite (JSON has no NaN).
json_object *ec_json_num(double v);

#endif
