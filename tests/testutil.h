// tests/testutil.h: small helpers shared by the Criterion tests.
#ifndef SEMBED_TESTUTIL_H
#define SEMBED_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

// A fresh empty directory under $TMPDIR (or /tmp); heap string, free it after tu_rmtree.
char *tu_mkdtemp(void);
void tu_rmtree(const char *dir);
// Path join into a heap string.
char *tu_path(const char *dir, const char *name);
// Read a whole file (heap, NUL-terminated beyond len); NULL on failure.
void *tu_read_file(const char *path, size_t *len);
int tu_write_file(const char *path, const void *data, size_t len);
int tu_file_exists(const char *path);
// Path of the project's source tree, and of ../shared/data (or $SEMBED_DATA_DIR).
const char *tu_source_dir(void);
const char *tu_data_dir(void);
// Where data file (or folder) `rel` (relative to a data folder, e.g. "vocab/bert-base-uncased/vocab.txt") is:
// the first that exists of $SEMBED_DATA_DIR/rel, <source>/data/rel (vendored), ../shared/data/rel
// (data/README.md; tools/datafile.sh and tools/datafile.py apply the same rule). Heap string, or
// NULL when it is nowhere; tu_data_where(rel) then names the places searched (static buffer).
// In a Criterion test, TU_DATA_FILE_OR_SKIP(var, rel) declares char *var (heap) = the file, or
// skips the test with a line naming the file and the places searched when it is absent.
char *tu_data_file(const char *rel);
const char *tu_data_where(const char *rel);
// The folders tu_data_file searches, in order, joined by ':' (static buffer), for scripts that
// look files up themselves (tests/tokenizer/corpus.js).
const char *tu_data_dirs(void);
#define TU_DATA_FILE_OR_SKIP(var, rel)                                                              \
    char *var = tu_data_file(rel);                                                                  \
    if (!var) cr_skip_test("data file %s is not available (looked at %s)", (rel), tu_data_where(rel))
// Run a shell command, capture stdout into *out (heap) if out != NULL; returns exit status or -1.
int tu_run(const char *cmd, char **out);
// The sembed CLI binary (from $SEMBED_CLI, set by ctest).
const char *tu_cli(void);

#endif
