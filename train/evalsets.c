// train/evalsets.c: STS-B, SentEval STS12-16 folders and SICK readers (layouts in evalsets.h).
#define _POSIX_C_SOURCE 200809L
#include "train/evalsets.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/log.h"
#include "sembed/model.h"

#define EV_MAX_FILE ((size_t)1 << 31) // 2 GiB: far above any STS file, below what fread can return

const char *ev_format_name(enum ev_format f) {
    switch (f) {
    case EV_FORMAT_AUTO: return "auto";
    case EV_FORMAT_STSB: return "stsb";
    case EV_FORMAT_STS_FOLDER: return "sts-folder";
    case EV_FORMAT_SICK: return "sick";
    }
    return "?";
}

// ---------------------------------------------------------------- small helpers

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

static char *join_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t o = a;
    if (a && dir[a - 1] != '/') p[o++] = '/';
    memcpy(p + o, name, b + 1);
    return p;
}

// Last path component without a trailing slash and, for files, without the extension.
static char *path_stem(const char *path, bool strip_ext) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    size_t e = n;
    if (strip_ext) {
        for (size_t i = n; i > b + 1; i--)
            if (path[i - 1] == '.') {
                e = i - 1;
                break;
            }
    }
    char *s = malloc(e - b + 1);
    if (!s) return NULL;
    memcpy(s, path + b, e - b);
    s[e - b] = 0;
    return s;
}

// Whole file into a NUL-terminated heap buffer.
static int read_all(const char *path, char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return sembed_fail(SEMBED_EIO, "ev_task_load", "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sembed_fail(SEMBED_EIO, "ev_task_load", "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size >= EV_MAX_FILE) {
        fclose(f);
        return sembed_fail(SEMBED_EIO, "ev_task_load", "%s: %lld bytes is too large for an evaluation set", path,
                           (long long)st.st_size);
    }
    size_t n = (size_t)st.st_size;
    char *b = malloc(n + 1);
    if (!b) {
        fclose(f);
        return SEMBED_ENOMEM;
    }
    size_t got = fread(b, 1, n, f);
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        free(b);
        return sembed_fail(SEMBED_EIO, "ev_task_load", "%s: read %zu of %zu bytes", path, got, n);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

// Line cursor over a mutable buffer: NUL-terminates each line in place, strips "\r".
struct lines {
    char *p, *end;
    size_t lineno;
};

static void lines_init(struct lines *l, char *buf, size_t len) {
    l->p = buf;
    l->end = buf + len;
    l->lineno = 0;
    if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB && (unsigned char)buf[2] == 0xBF)
        l->p += 3;
}

static char *lines_next(struct lines *l) {
    if (l->p >= l->end) return NULL;
    char *s = l->p, *nl = memchr(s, '\n', (size_t)(l->end - s));
    char *e = nl ? nl : l->end;
    l->p = nl ? nl + 1 : l->end;
    if (e > s && e[-1] == '\r') e--;
    *e = 0;
    l->lineno++;
    return s;
}

static size_t count_lines(const char *buf, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += buf[i] == '\n';
    return n + (len && buf[len - 1] != '\n');
}

// Split at tabs in place. Returns the number of fields; stores at most max of them.
static size_t split_tabs(char *line, char **f, size_t max) {
    size_t n = 0;
    for (char *s = line;;) {
        char *t = strchr(s, '\t');
        if (n < max) f[n] = s;
        n++;
        if (!t) break;
        *t = 0;
        s = t + 1;
    }
    return n;
}

static bool is_blank(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t') return false;
    return true;
}

// A gold score: a finite decimal number, optionally surrounded by spaces.
static bool parse_score(const char *s, double *out) {
    while (*s == ' ') s++;
    if (!*s) return false;
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (e == s || errno == ERANGE) return false;
    while (*e == ' ') e++;
    if (*e || !isfinite(v)) return false;
    *out = v;
    return true;
}

static void set_free(struct ev_set *s) {
    free(s->name);
    free(s->path);
    free(s->s1);
    free(s->s2);
    free(s->gold);
    free(s->buf_);
    memset(s, 0, sizeof *s);
}

static int set_alloc(struct ev_set *s, size_t cap) {
    if (cap == 0) cap = 1;
    if (cap > SIZE_MAX / sizeof(double)) return SEMBED_ENOMEM;
    s->s1 = malloc(cap * sizeof *s->s1);
    s->s2 = malloc(cap * sizeof *s->s2);
    s->gold = malloc(cap * sizeof *s->gold);
    return s->s1 && s->s2 && s->gold ? 0 : SEMBED_ENOMEM;
}

// A malformed line: logged with file:line; fatal with strict.
static int malformed(struct ev_set *s, bool strict, const char *path, size_t lineno, const char *why) {
    sembed_logf(strict ? SEMBED_LOG_ERROR : SEMBED_LOG_WARN, "ev_task_load", "%s:%zu: %s%s", path, lineno, why,
                strict ? "" : " (line skipped)");
    s->n_malformed++;
    return strict ? SEMBED_EPARSE : 0;
}

// ---------------------------------------------------------------- STS-B and SICK files

static int load_columns(const char *path, enum ev_format fmt, bool strict, struct ev_set *s) {
    size_t len;
    int rc = read_all(path, &s->buf_, &len);
    if (rc) return rc;
    if ((rc = set_alloc(s, count_lines(s->buf_, len)))) return rc;
    // STS-B: genre file year id score s1 s2 [extra...]; SICK: id A B score [judgment]
    size_t need = fmt == EV_FORMAT_STSB ? 7 : 4;
    size_t i_score = fmt == EV_FORMAT_STSB ? 4 : 3, i_s1 = fmt == EV_FORMAT_STSB ? 5 : 1;
    struct lines L;
    lines_init(&L, s->buf_, len);
    bool first = true;
    char *line;
    while ((line = lines_next(&L))) {
        if (is_blank(line)) continue;
        if (first && fmt == EV_FORMAT_SICK && !strncmp(line, "pair_ID", 7)) {
            first = false;
            continue;
        }
        first = false;
        char *f[7];
        size_t nf = split_tabs(line, f, 7);
        char why[96];
        if (nf < need) {
            snprintf(why, sizeof why, "%zu tab-separated fields, expected at least %zu", nf, need);
            if ((rc = malformed(s, strict, path, L.lineno, why))) return rc;
            continue;
        }
        double g;
        if (!parse_score(f[i_score], &g)) {
            snprintf(why, sizeof why, "score field %zu '%.40s' is not a finite number", i_score + 1, f[i_score]);
            if ((rc = malformed(s, strict, path, L.lineno, why))) return rc;
            continue;
        }
        s->s1[s->n] = f[i_s1];
        s->s2[s->n] = f[i_s1 + 1];
        s->gold[s->n] = g;
        s->n++;
    }
    return 0;
}

// ---------------------------------------------------------------- SentEval STS folders

static int load_sts_set(const char *input, const char *gold_path, bool strict, struct ev_set *s) {
    size_t len, glen;
    char *gbuf;
    int rc = read_all(input, &s->buf_, &len);
    if (rc) return rc;
    if ((rc = read_all(gold_path, &gbuf, &glen))) return rc;
    size_t n_in = count_lines(s->buf_, len), n_gold = count_lines(gbuf, glen);
    if (n_in != n_gold) {
        free(gbuf);
        return sembed_fail(SEMBED_EPARSE, "ev_task_load", "%s has %zu lines but %s has %zu: pairs would misalign",
                           input, n_in, gold_path, n_gold);
    }
    if ((rc = set_alloc(s, n_in))) {
        free(gbuf);
        return rc;
    }
    struct lines Li, Lg;
    lines_init(&Li, s->buf_, len);
    lines_init(&Lg, gbuf, glen);
    char *line, *gl;
    while ((line = lines_next(&Li)) && (gl = lines_next(&Lg))) {
        if (is_blank(gl)) {
            s->n_unscored++;
            continue;
        }
        char why[96];
        double g;
        if (!parse_score(gl, &g)) {
            snprintf(why, sizeof why, "gold score '%.40s' is not a finite number", gl);
            if ((rc = malformed(s, strict, gold_path, Lg.lineno, why))) break;
            continue;
        }
        char *f[2];
        size_t nf = split_tabs(line, f, 2);
        if (nf < 2) {
            if ((rc = malformed(s, strict, input, Li.lineno, "no tab: expected sentence1 TAB sentence2"))) break;
            continue;
        }
        s->s1[s->n] = f[0];
        s->s2[s->n] = f[1];
        s->gold[s->n] = g;
        s->n++;
    }
    free(gbuf);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// "STS.input.<name>.txt" -> heap "<name>", else NULL.
static char *sts_input_name(const char *file) {
    static const char pre[] = "STS.input.", suf[] = ".txt";
    size_t n = strlen(file), a = sizeof pre - 1, b = sizeof suf - 1;
    if (n <= a + b || strncmp(file, pre, a) || strcmp(file + n - b, suf)) return NULL;
    char *s = malloc(n - a - b + 1);
    if (!s) return NULL;
    memcpy(s, file + a, n - a - b);
    s[n - a - b] = 0;
    return s;
}

static int sts_add_set(struct ev_task *t, const char *dir, const char *name, bool strict) {
    char in_name[512], gs_name[512];
    if ((size_t)snprintf(in_name, sizeof in_name, "STS.input.%s.txt", name) >= sizeof in_name ||
        (size_t)snprintf(gs_name, sizeof gs_name, "STS.gs.%s.txt", name) >= sizeof gs_name)
        return sembed_fail(SEMBED_EINVAL, "ev_task_load", "%s: set name too long", dir);
    char *in = join_path(dir, in_name), *gs = join_path(dir, gs_name);
    struct ev_set *s = &t->sets[t->n_sets];
    memset(s, 0, sizeof *s);
    int rc = in && gs ? 0 : SEMBED_ENOMEM;
    if (!rc) {
        s->name = dup_str(name);
        s->path = dup_str(in);
        if (!s->name || !s->path) rc = SEMBED_ENOMEM;
    }
    if (!rc) rc = load_sts_set(in, gs, strict, s);
    free(in);
    free(gs);
    t->n_sets++; // counted even on failure so ev_task_free releases it
    return rc;
}

static int load_sts_folder(const char *dir, bool strict, struct ev_task *t) {
    DIR *d = opendir(dir);
    if (!d) return sembed_fail(SEMBED_EIO, "ev_task_load", "%s: %s", dir, strerror(errno));
    size_t n = 0, cap = 0;
    char **names = NULL;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        char *nm = sts_input_name(de->d_name);
        if (!nm) continue;
        char gs_name[512];
        char *gs = NULL;
        struct stat st;
        if ((size_t)snprintf(gs_name, sizeof gs_name, "STS.gs.%s.txt", nm) >= sizeof gs_name ||
            !(gs = join_path(dir, gs_name)) || stat(gs, &st) != 0) {
            SEMBED_LOG_WARNF("%s/%s has no gold file %s: set ignored", dir, de->d_name, gs_name);
            free(gs);
            free(nm);
            continue;
        }
        free(gs);
        if (n == cap) {
            size_t nc = cap ? 2 * cap : 16;
            char **nn = realloc(names, nc * sizeof *nn);
            if (!nn) {
                free(nm);
                rc = SEMBED_ENOMEM;
                break;
            }
            names = nn;
            cap = nc;
        }
        names[n++] = nm;
    }
    closedir(d);
    if (!rc && n == 0)
        rc = sembed_fail(SEMBED_ENOTFOUND, "ev_task_load",
                         "%s: no STS.input.<set>.txt with a matching STS.gs.<set>.txt (not a SentEval STS folder)", dir);
    if (!rc) {
        qsort(names, n, sizeof *names, cmp_str);
        t->sets = calloc(n, sizeof *t->sets);
        if (!t->sets) rc = SEMBED_ENOMEM;
        for (size_t i = 0; i < n && !rc; i++) rc = sts_add_set(t, dir, names[i], strict);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

// ---------------------------------------------------------------- detection and loading

static int detect_file(const char *path, enum ev_format *fmt) {
    char *stem = path_stem(path, false);
    if (!stem) return SEMBED_ENOMEM;
    char *nm = sts_input_name(stem);
    free(stem);
    if (nm) {
        free(nm);
        *fmt = EV_FORMAT_STS_FOLDER;
        return 0;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return sembed_fail(SEMBED_EIO, "ev_task_load", "%s: %s", path, strerror(errno));
    char line[4096];
    bool got = false;
    while (fgets(line, sizeof line, f)) {
        char *s = line;
        if ((unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF) s += 3;
        s[strcspn(s, "\r\n")] = 0;
        if (is_blank(s)) continue;
        got = true;
        memmove(line, s, strlen(s) + 1);
        break;
    }
    fclose(f);
    if (!got) return sembed_fail(SEMBED_EPARSE, "ev_task_load", "%s: empty file", path);
    if (!strncmp(line, "pair_ID", 7)) {
        *fmt = EV_FORMAT_SICK;
        return 0;
    }
    char copy[4096];
    memcpy(copy, line, sizeof copy);
    char *fl[7];
    double v;
    if (split_tabs(copy, fl, 7) >= 7 && parse_score(fl[4], &v)) {
        *fmt = EV_FORMAT_STSB;
        return 0;
    }
    return sembed_fail(SEMBED_EPARSE, "ev_task_load",
                       "%s: cannot tell the layout from the first line '%.60s' (expected STS-B: 7+ tab fields with "
                       "the score 5th; SICK: a 'pair_ID' header; or an STS.input.<set>.txt / STS12-16 folder)",
                       path, line);
}

// One STS.input.<set>.txt file named directly.
static int load_sts_file(const char *path, bool strict, struct ev_task *t) {
    char *base = path_stem(path, false), *nm = base ? sts_input_name(base) : NULL;
    size_t n = strlen(path), b = strlen(base ? base : "");
    char *dir = malloc(n + 2);
    int rc = nm && dir ? 0 : SEMBED_ENOMEM;
    if (!rc) {
        // the folder part of path, slash included ("." when there is none)
        size_t dl = n - b;
        if (dl == 0) strcpy(dir, ".");
        else {
            memcpy(dir, path, dl);
            dir[dl] = 0;
        }
        t->sets = calloc(1, sizeof *t->sets);
        rc = t->sets ? sts_add_set(t, dir, nm, strict) : SEMBED_ENOMEM;
    }
    free(base);
    free(nm);
    free(dir);
    return rc;
}

int ev_task_load(const char *path, enum ev_format format, bool strict, struct ev_task **out) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return sembed_fail(SEMBED_EIO, "ev_task_load", "%s: %s", path, strerror(errno));
    bool is_dir = S_ISDIR(st.st_mode);
    int rc = 0;
    if (format == EV_FORMAT_AUTO) {
        if (is_dir) format = EV_FORMAT_STS_FOLDER;
        else if ((rc = detect_file(path, &format))) return rc;
    }
    if (is_dir && format != EV_FORMAT_STS_FOLDER)
        return sembed_fail(SEMBED_EINVAL, "ev_task_load", "%s is a folder; the %s layout is a file", path,
                           ev_format_name(format));
    struct ev_task *t = calloc(1, sizeof *t);
    if (!t) return SEMBED_ENOMEM;
    t->format = format;
    t->path = dup_str(path);
    t->name = path_stem(path, !is_dir);
    if (!t->path || !t->name) rc = SEMBED_ENOMEM;
    else if (format == EV_FORMAT_STS_FOLDER) rc = is_dir ? load_sts_folder(path, strict, t) : load_sts_file(path, strict, t);
    else {
        t->sets = calloc(1, sizeof *t->sets);
        if (!t->sets) rc = SEMBED_ENOMEM;
        else {
            t->n_sets = 1;
            t->sets[0].name = dup_str(t->name);
            t->sets[0].path = dup_str(path);
            rc = t->sets[0].name && t->sets[0].path ? load_columns(path, format, strict, &t->sets[0]) : SEMBED_ENOMEM;
        }
    }
    if (!rc && ev_task_n_pairs(t) == 0)
        rc = sembed_fail(SEMBED_EINVAL, "ev_task_load", "%s: no scored sentence pair", path);
    if (rc) {
        ev_task_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void ev_task_free(struct ev_task *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n_sets; i++) set_free(&t->sets[i]);
    free(t->sets);
    free(t->name);
    free(t->path);
    free(t);
}

size_t ev_task_n_pairs(const struct ev_task *t) {
    size_t n = 0;
    for (size_t i = 0; i < t->n_sets; i++) n += t->sets[i].n;
    return n;
}

// ---------------------------------------------------------------- embedding

int ev_embed_texts(struct sembed_context *ctx, size_t dim, const char *const *texts, size_t n, size_t chunk,
                   float *out, ev_progress_fn progress, void *user) {
    if (chunk == 0) chunk = 256;
    for (size_t i = 0; i < n; i += chunk) {
        size_t cnt = n - i < chunk ? n - i : chunk;
        int rc = sembed_embed_texts(ctx, texts + i, cnt, out + i * dim);
        if (rc) return rc;
        if (progress) progress(i + cnt, n, user);
    }
    return 0;
}
