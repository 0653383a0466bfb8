// train/evalsets.h: readers for the sentence-similarity evaluation sets (prefix ev_).
//
// A task is what one path names; it holds one or more subsets ("sets") of scored sentence pairs:
//   - STS-B file (EV_FORMAT_STSB): sts-{train,dev,test}.csv, in the SentEval (lowercased,
//     tokenized) or the raw original-cased layout. Tab-separated: genre, file, year, id, score,
//     sentence1, sentence2, and on some lines 2 more (licence) fields, which are ignored. No
//     quoting: a '"' is text. One set.
//   - SentEval STS12-16 folder (EV_FORMAT_STS_FOLDER): STS.input.<set>.txt (sentence1 TAB
//     sentence2) with STS.gs.<set>.txt (one gold score per line, line for line; an empty gold line
//     is an unscored pair, skipped and counted). One set per input file with a gold file, in name
//     order (byte order). A single STS.input.<set>.txt path loads that set alone.
//   - SICK file (EV_FORMAT_SICK): header line, then TAB: pair_ID, sentence_A, sentence_B,
//     relatedness_score, entailment_judgment. One set; the relatedness score is the gold.
// EV_FORMAT_AUTO tells them apart: a folder is an STS folder; a file whose first line starts with
// "pair_ID" is SICK; a file named STS.input.*.txt is one STS set; a file whose first line has at
// least 7 tab fields with a number in the 5th is STS-B.
//
// Lines may end in "\n" or "\r\n"; a UTF-8 byte-order mark at the start of a file is skipped;
// blank lines in STS-B and SICK files are skipped. A malformed line (too few fields, a gold score
// that is not a finite number) is logged as "PATH:LINE: reason" and skipped (counted in
// n_malformed), or is fatal (SEMBED_EPARSE) with strict. In STS folders the input and gold files
// must have the same number of lines (anything else would misalign every later pair): fatal.
//
// Texts are kept byte for byte (invalid UTF-8 is the tokenizer's business).
#ifndef SEMBED_TRAIN_EVALSETS_H
#define SEMBED_TRAIN_EVALSETS_H

#include <stdbool.h>
#include <stddef.h>

struct sembed_context;

enum ev_format { EV_FORMAT_AUTO = 0, EV_FORMAT_STSB = 1, EV_FORMAT_STS_FOLDER = 2, EV_FORMAT_SICK = 3 };

// "auto", "stsb", "sts-folder", "sick".
const char *ev_format_name(enum ev_format f);

struct ev_set {
    char *name;         // "sts-dev", "MSRpar", "SICK_train"
    char *path;         // the file the sentences came from
    size_t n;           // scored pairs kept
    const char **s1;    // [n] NUL-terminated, into the set's buffer
    const char **s2;    // [n]
    double *gold;       // [n]
    size_t n_unscored;  // STS folders: pairs with an empty gold line (skipped)
    size_t n_malformed; // lines reported and skipped
    char *buf_;         // owned text storage
};

struct ev_task {
    char *name; // file stem or folder name
    char *path;
    enum ev_format format;
    size_t n_sets;
    struct ev_set *sets;
};

// Load path as format (EV_FORMAT_AUTO: detect). Errors: SEMBED_EIO (cannot read; the log names
// the path and errno text), SEMBED_ENOTFOUND (an STS folder with no input/gold file pair; a
// missing gold file), SEMBED_EPARSE (layout not recognised; malformed line with strict; line
// counts differ), SEMBED_EINVAL (no scored pair at all), SEMBED_ENOMEM.
int ev_task_load(const char *path, enum ev_format format, bool strict, struct ev_task **out);
void ev_task_free(struct ev_task *t);

// Total scored pairs over the task's sets.
size_t ev_task_n_pairs(const struct ev_task *t);

// Embed n texts with ctx into out[n * dim] (dim = sembed_model_dim() of the context's model) in
// chunks of `chunk` texts (0 = 256), calling progress(done, n, user) after each chunk when
// progress != NULL. Status of sembed_embed_texts.
typedef void (*ev_progress_fn)(size_t done, size_t total, void *user);
int ev_embed_texts(struct sembed_context *ctx, size_t dim, const char *const *texts, size_t n, size_t chunk,
                   float *out, ev_progress_fn progress, void *user);

#endif
