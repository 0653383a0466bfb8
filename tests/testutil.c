#define _GNU_SOURCE
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_mkdtemp(void) {
    const char *t = getenv("TMPDIR");
    char *p = NULL;
    if (asprintf(&p, "%s/sembed-test-XXXXXX", t && *t ? t : "/tmp") < 0) return NULL;
    if (!mkdtemp(p)) { free(p); return NULL; }
    return p;
}

void tu_rmtree(const char *dir) {
    if (!dir || !*dir || strstr(dir, "sembed-test-") == NULL) return;
    char *cmd = NULL;
    if (asprintf(&cmd, "rm -rf '%s'", dir) < 0) return;
    if (system(cmd) != 0) fprintf(stderr, "tu_rmtree: could not remove %s\n", dir);
    free(cmd);
}

char *tu_path(const char *dir, const char *name) {
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0) return NULL;
    return p;
}

void *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return NULL; }
    long n = ftell(f);
    if (n < 0) { fclose(f); return NULL; }
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = 0; if (len) *len = (size_t)n; }
    return buf;
}

int tu_write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

int tu_file_exists(const char *path) { struct stat st; return stat(path, &st) == 0; }

const char *tu_source_dir(void) { return SEMBED_SOURCE_DIR; }

const char *tu_data_dir(void) {
    static char buf[4096];
    const char *e = getenv("SEMBED_DATA_DIR");
    if (e && *e) return e;
    snprintf(buf, sizeof buf, "%s/../shared/data", SEMBED_SOURCE_DIR);
    return buf;
}

// The folders tu_data_file searches, in order; n set to their count.
static const char *const *data_dirs(int *n) {
    static char vendored[4096], shared[4096];
    static const char *dirs[3];
    int k = 0;
    const char *e = getenv("SEMBED_DATA_DIR");
    if (e && *e) dirs[k++] = e;
    snprintf(vendored, sizeof vendored, "%s/data", SEMBED_SOURCE_DIR);
    snprintf(shared, sizeof shared, "%s/../shared/data", SEMBED_SOURCE_DIR);
    dirs[k++] = vendored;
    dirs[k++] = shared;
    *n = k;
    return dirs;
}

char *tu_data_file(const char *rel) {
    int n;
    const char *const *dirs = data_dirs(&n);
    for (int i = 0; i < n; i++) {
        char *p = tu_path(dirs[i], rel);
        struct stat st;
        if (p && stat(p, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) return p;
        free(p);
    }
    return NULL;
}

const char *tu_data_where(const char *rel) {
    static char buf[8192];
    int n;
    const char *const *dirs = data_dirs(&n);
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len < sizeof buf; i++) {
        int w = snprintf(buf + len, sizeof buf - len, "%s%s/%s", i ? ", " : "", dirs[i], rel);
        if (w < 0) break;
        len += (size_t)w;
    }
    return buf;
}

const char *tu_data_dirs(void) {
    static char buf[8192];
    int n;
    const char *const *dirs = data_dirs(&n);
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < n && len < sizeof buf; i++) {
        int w = snprintf(buf + len, sizeof buf - len, "%s%s", i ? ":" : "", dirs[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
    return buf;
}

int tu_run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) { char *nb = realloc(buf, cap *= 2); if (!nb) { free(buf); buf = NULL; } else buf = nb; }
    }
    int st = pclose(p);
    if (buf) buf[len] = 0;
    if (out) *out = buf; else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *tu_cli(void) {
    const char *e = getenv("SEMBED_CLI");
    return e && *e ? e : SEMBED_BINARY_DIR "/sembed";
}
