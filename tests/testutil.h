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
// Path of the project's source tree, build tree, and ../shared/data.
const char *tu_source_dir(void);
const char *tu_data_dir(void);
// Run a shell command, capture stdout into *out (heap) if out != NULL; returns exit status or -1.
int tu_run(const char *cmd, char **out);
// The sembed CLI binary (from $SEMBED_CLI, set by ctest).
const char *tu_cli(void);

#endif
