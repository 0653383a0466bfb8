// train/st_data.h: training data: parse, report malformed lines, tokenize once (prefix st_).
#ifndef SEMBED_TRAIN_ST_DATA_H
#define SEMBED_TRAIN_ST_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sembed_tokenizer;

enum st_data_kind { ST_DATA_LINES = 0, ST_DATA_PAIRS = 1 };

struct st_data {
    int k;            // sentences per row: 1 (lines), 2 or 3 (pairs, fixed by the first row)
    size_t n_rows;
    size_t *off;      // [n_rows*k + 1]: sentence j of row r = ids[off[r*k+j] .. off[r*k+j+1])
    int32_t *ids;     // token ids incl. [CLS] / [SEP], truncated to max_len
    uint64_t xxh3;    // XXH3-64 of the file bytes
    size_t n_skipped; // malformed lines skipped
    size_t n_truncated;
};

// Lines: one sentence per line (blank lines are malformed). Pairs: TSV if the file name ends in
// .tsv or the first line has a tab, else CSV (RFC 4180 quoting, fields may span lines); 2 or 3
// columns; a header row naming sent0/sent1 is skipped. Malformed rows are logged "path:line:
// reason" and skipped (strict: SEMBED_EPARSE). SEMBED_EINVAL when no row is left.
int st_data_load(const char *path, enum st_data_kind kind, bool strict, const struct sembed_tokenizer *tok,
                 uint32_t max_len, int n_threads, struct st_data **out);
void st_data_free(struct st_data *d);

// Same parsing over a memory buffer (tests, fuzzing); name is used in messages.
int st_data_parse(const char *name, const char *buf, size_t len, enum st_data_kind kind, bool strict,
                  const struct sembed_tokenizer *tok, uint32_t max_len, int n_threads, struct st_data **out);

#endif
