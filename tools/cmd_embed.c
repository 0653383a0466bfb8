// `sembed embed -m MODEL [options] [TEXT...]`: embeddings of the arguments, or of each line of
// stdin, streamed in chunks (memory stays bounded for inputs of any length).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sembed/model.h"
#include "tools/cli.h"
#include "tools/mpi_comm.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed embed -m MODEL.semb [options] [TEXT...]\n\n"
            "Embed each TEXT, or each line of stdin when no TEXT is given (one input per line, in order;\n"
            "an empty line is an input too). Output: one embedding per input, in input order.\n\n"
            "  -m, --model FILE       the .semb model (required)\n"
            "  -p, --pooling MODE     cls | cls_before_pooler | mean | max | first_last_avg (default: the model's)\n"
            "      --normalize        L2-normalize the embeddings\n"
            "      --no-normalize     do not (default: what the model says)\n"
            "  -L, --max-length N     tokens per input incl. [CLS]/[SEP] (default: the model's maximum)\n"
            "      --truncate MODE    longest_first (default: cut over-long inputs; their count goes to\n"
            "                         stderr) or error (exit 1 at the first input that does not fit)\n"
            "  -b, --batch N          inputs embedded together (default 32)\n"
            "  -t, --threads N        threads (default: all cores)\n"
            "      --compute MODE     f32 | int8 | auto (default auto: int8 when the model's Linear weights are\n"
            "                         int8, as after `sembed convert --dtype q8`, else f32); docs/int8.md\n"
            "      --int8             same as --compute int8 (quantizes float weights at load)\n"
            "      --verify           recompute every tensor checksum before embedding (off by default)\n"
            "      --pairs            inputs are pairs: each stdin line is 'a TAB b' (a line without a TAB\n"
            "                         is a pair with an empty b); TEXT arguments pair up: a1 b1 a2 b2 ...\n"
            "  -f, --format FMT       jsonl (default): one JSON array per line\n"
            "                         tsv: one line per input, values separated by TABs\n"
            "                         f32: raw little-endian float32, n x dim, no header\n"
            "                         npy: NumPy .npy v1.0, float32 (n, dim); when the input count is not\n"
            "                         known in advance (stdin) the header is patched at the end if the\n"
            "                         output is a regular file, else rows are spooled to a temporary file\n"
            "  -o, --output FILE      write there (temporary file + rename; never half-written) instead of stdout;\n"
            "                         a name ending in .npy selects -f npy unless -f is given\n"
            "  -i, --input FILE       read the inputs from FILE (one per line) instead of stdin\n"
            "  -h, --help             this text\n\n"
            "Floats are printed with 9 significant digits (exact float32 round trip).\n\n"
            "Several processes: `mpirun -np N sembed embed -m M.semb --input FILE -o OUT.npy` (a build with MPI;\n"
            "-f npy or f32): rank r embeds the r-th contiguous shard of the lines and writes its rows at their\n"
            "offsets of one output file (MPI-IO); the file is bit-identical to the one-process output.\n");
}

struct opts {
    const char *model, *output, *input;
    bool fmt_set;
    struct sembed_context_params cp;
    struct sembed_model_params mp;
    bool pairs;
    enum { FMT_JSONL, FMT_TSV, FMT_F32, FMT_NPY } fmt;
};

/* ---------------------------------------------------------------- output */

struct sink {
    FILE *f;          // where rows go (the output, or the spool)
    FILE *out;        // the real output
    bool spool;       // npy with unknown count on a pipe: rows go to a temporary file first
    bool patch;       // npy with unknown count on a seekable file: rewrite the header at the end
    int fmt;
    uint32_t dim;
    uint64_t rows;
    char *buf;        // text formatting buffer
    size_t buf_cap;
};

// NumPy format v1.0 (numpy.lib.format): magic, version 1.0, u16 header length, a Python dict
// literal padded with spaces and ending in '\n' so the data starts at a multiple of 64. The header
// is always sized for a 20-digit row count, so it can be rewritten in place once the count is known.
#define NPY_HEADER_BYTES 128
static int npy_header(FILE *f, uint64_t rows, uint32_t dim) {
    char dict[NPY_HEADER_BYTES];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%llu, %u), }",
                     (unsigned long long)rows, dim);
    size_t hl = NPY_HEADER_BYTES - 10;
    if (n < 0 || (size_t)n >= hl) return -1;
    memset(dict + n, ' ', hl - 1 - (size_t)n);
    dict[hl - 1] = '\n';
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    return fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, hl, f) == hl ? 0 : -1;
}

static bool need_room(struct sink *s, size_t n) {
    if (s->buf_cap >= n) return true;
    char *b = realloc(s->buf, n);
    if (!b) return false;
    s->buf = b;
    s->buf_cap = n;
    return true;
}

static int write_rows(struct sink *s, const float *v, size_t n) {
    const uint32_t dim = s->dim;
    if (s->fmt == FMT_F32 || s->fmt == FMT_NPY) {
        // little-endian bytes whatever the host order
        if (!need_room(s, (size_t)dim * 4)) return -1;
        unsigned char *p = (unsigned char *)s->buf;
        for (size_t r = 0; r < n; r++) {
            for (uint32_t j = 0; j < dim; j++) {
                uint32_t u;
                memcpy(&u, &v[r * dim + j], 4);
                p[4 * j] = (unsigned char)u; p[4 * j + 1] = (unsigned char)(u >> 8);
                p[4 * j + 2] = (unsigned char)(u >> 16); p[4 * j + 3] = (unsigned char)(u >> 24);
            }
            if (fwrite(p, 4, dim, s->f) != dim) return -1;
        }
    } else {
        if (!need_room(s, (size_t)dim * 20 + 4)) return -1;
        for (size_t r = 0; r < n; r++) {
            char *p = s->buf;
            if (s->fmt == FMT_JSONL) *p++ = '[';
            for (uint32_t j = 0; j < dim; j++) {
                float x = v[r * dim + j];
                if (j) *p++ = s->fmt == FMT_JSONL ? ',' : '\t';
                if (isfinite(x)) p += snprintf(p, 18, "%.9g", (double)x);
                else p += snprintf(p, 18, "%s", s->fmt == FMT_JSONL ? "null" : isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
            }
            if (s->fmt == FMT_JSONL) *p++ = ']';
            *p++ = '\n';
            if (fwrite(s->buf, 1, (size_t)(p - s->buf), s->f) != (size_t)(p - s->buf)) return -1;
        }
    }
    s->rows += n;
    return 0;
}

static bool seekable_at_start(FILE *f) {
    struct stat st;
    int fd = fileno(f);
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && !(fl & O_APPEND) && lseek(fd, 0, SEEK_CUR) == 0;
}

// known: the row count when known in advance, else -1.
static int sink_open(struct sink *s, FILE *out, int fmt, uint32_t dim, long long known) {
    memset(s, 0, sizeof *s);
    s->f = s->out = out;
    s->fmt = fmt;
    s->dim = dim;
    if (fmt != FMT_NPY) return 0;
    if (known >= 0) return npy_header(out, (uint64_t)known, dim);
    if (seekable_at_start(out)) {
        s->patch = true;
        return npy_header(out, 0, dim);
    }
    s->spool = true;
    s->f = tmpfile();
    return s->f ? 0 : -1;
}

static int sink_close(struct sink *s) {
    int rc = 0;
    if (s->patch) {
        if (fflush(s->out) != 0 || fseeko(s->out, 0, SEEK_SET) != 0 || npy_header(s->out, s->rows, s->dim) != 0 ||
            fseeko(s->out, 0, SEEK_END) != 0)
            rc = -1;
    } else if (s->spool) {
        rc = npy_header(s->out, s->rows, s->dim);
        if (rc == 0 && (fflush(s->f) != 0 || fseeko(s->f, 0, SEEK_SET) != 0)) rc = -1;
        char buf[1 << 16];
        size_t n;
        while (rc == 0 && (n = fread(buf, 1, sizeof buf, s->f)) > 0)
            if (fwrite(buf, 1, n, s->out) != n) rc = -1;
        if (ferror(s->f)) rc = -1;
        fclose(s->f);
    }
    free(s->buf);
    return rc;
}

/* ---------------------------------------------------------------- progress */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress(bool show, uint64_t done, long long total, double t0, bool final) {
    if (!show) return;
    double dt = now_s() - t0, rate = dt > 0 ? (double)done / dt : 0.0;
    if (total > 0) {
        int w = 30, k = (int)((double)w * (double)done / (double)total);
        fprintf(stderr, "\r[%.*s%*s] %llu/%lld  %.0f inputs/s ", k, "##############################", w - k, "",
                (unsigned long long)done, total, rate);
    } else {
        fprintf(stderr, "\r%llu inputs  %.0f inputs/s ", (unsigned long long)done, rate);
    }
    if (final) fputc('\n', stderr);
}

/* ---------------------------------------------------------------- main */

static int parse_u32(const char *flag, const char *s, uint32_t lo, uint32_t hi, uint32_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !end || *end || s[0] == '-' || v < lo || v > hi)
        return cli_error(CLI_USAGE, "embed", "%s wants an integer in %u..%u, got '%s'", flag, lo, hi, s);
    *out = (uint32_t)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o) {
    enum { OPT_NORM = 256, OPT_NONORM, OPT_PAIRS, OPT_TRUNC, OPT_COMPUTE, OPT_INT8, OPT_VERIFY };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},   {"pooling", required_argument, NULL, 'p'},
        {"normalize", no_argument, NULL, OPT_NORM},  {"no-normalize", no_argument, NULL, OPT_NONORM},
        {"max-length", required_argument, NULL, 'L'}, {"truncate", required_argument, NULL, OPT_TRUNC},
        {"batch", required_argument, NULL, 'b'},   {"threads", required_argument, NULL, 't'},
        {"pairs", no_argument, NULL, OPT_PAIRS},     {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},  {"help", no_argument, NULL, 'h'},
        {"compute", required_argument, NULL, OPT_COMPUTE}, {"int8", no_argument, NULL, OPT_INT8},
        {"verify", no_argument, NULL, OPT_VERIFY}, {"input", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->cp = sembed_context_default_params();
    o->mp = sembed_model_default_params();
    o->fmt = FMT_JSONL;
    uint32_t v = 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "m:p:L:b:t:f:o:i:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'p':
            if (sembed_pooling_parse(optarg, &o->cp.pooling))
                return cli_error(CLI_USAGE, "embed",
                                 "--pooling is cls, cls_before_pooler, mean, max or first_last_avg, got '%s'", optarg);
            break;
        case OPT_NORM: o->cp.normalize = SEMBED_NORMALIZE_ON; break;
        case OPT_NONORM: o->cp.normalize = SEMBED_NORMALIZE_OFF; break;
        case 'L': if (parse_u32("--max-length", optarg, 2, 1u << 20, &o->cp.max_length)) return CLI_USAGE; break;
        case 'b': if (parse_u32("--batch", optarg, 1, 65536, &o->cp.batch_size)) return CLI_USAGE; break;
        case 't':
            if (parse_u32("--threads", optarg, 0, 1024, &v)) return CLI_USAGE;
            o->cp.n_threads = (int32_t)v;
            break;
        case OPT_PAIRS: o->pairs = true; break;
        case OPT_COMPUTE:
            if (sembed_compute_parse(optarg, &o->mp.compute))
                return cli_error(CLI_USAGE, "embed", "--compute is f32, int8 or auto, got '%s'", optarg);
            break;
        case OPT_INT8: o->mp.compute = SEMBED_COMPUTE_INT8; break;
        case OPT_VERIFY: o->mp.verify_checksums = true; break;
        case OPT_TRUNC:
            if (!strcmp(optarg, "longest_first")) o->cp.truncate = SEMBED_TRUNCATE_LONGEST_FIRST;
            else if (!strcmp(optarg, "error")) o->cp.truncate = SEMBED_TRUNCATE_ERROR;
            else return cli_error(CLI_USAGE, "embed", "--truncate is longest_first or error, got '%s'", optarg);
            break;
        case 'f':
            if (!strcmp(optarg, "jsonl")) o->fmt = FMT_JSONL;
            else if (!strcmp(optarg, "tsv")) o->fmt = FMT_TSV;
            else if (!strcmp(optarg, "f32")) o->fmt = FMT_F32;
            else if (!strcmp(optarg, "npy")) o->fmt = FMT_NPY;
            else return cli_error(CLI_USAGE, "embed", "--format is jsonl, tsv, f32 or npy, got '%s'", optarg);
            o->fmt_set = true;
            break;
        case 'o': o->output = optarg; break;
        case 'i': o->input = optarg; break;
        case 'h': usage(stdout); return -1;
        default:
            return cli_error(CLI_USAGE, "embed", "unknown option or missing value: '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (!o->model) return cli_error(CLI_USAGE, "embed", "-m MODEL.semb is required (see --help)");
    size_t ol = o->output ? strlen(o->output) : 0;
    if (!o->fmt_set && ol > 4 && !strcmp(o->output + ol - 4, ".npy")) o->fmt = FMT_NPY;
    if (o->input && argc > optind) return cli_error(CLI_USAGE, "embed", "give TEXT arguments or --input FILE, not both");
    if (o->pairs && (argc - optind) % 2)
        return cli_error(CLI_USAGE, "embed", "--pairs with TEXT arguments needs an even count (a1 b1 a2 b2 ...)");
    return 0;
}

// Stdin, one input per line, in chunks of `chunk` lines; line buffers are reused across chunks.
struct reader {
    char **line;
    size_t *cap;
    struct sembed_input *in;
    size_t chunk;
    uint64_t lineno;
    FILE *src;        // stdin or --input
};

static ssize_t read_chunk(struct reader *r, bool pairs) {
    size_t n = 0;
    while (n < r->chunk) {
        ssize_t len = getline(&r->line[n], &r->cap[n], r->src);
        if (len < 0) break;
        r->lineno++;
        char *s = r->line[n];
        if (len > 0 && s[len - 1] == '\n') len--;
        if (len > 0 && s[len - 1] == '\r') len--;
        struct sembed_input x = {s, (size_t)len, NULL, 0};
        if (pairs) {
            char *tab = memchr(s, '\t', (size_t)len);
            x.b = tab ? tab + 1 : s + len;
            x.b_len = tab ? (size_t)(s + len - tab - 1) : 0;
            x.a_len = tab ? (size_t)(tab - s) : (size_t)len;
        }
        r->in[n++] = x;
    }
    if (ferror(r->src)) return -1;
    return (ssize_t)n;
}

static int run(const struct opts *o, int n_args, char **args, FILE *out) {
    struct sembed_model *m = NULL;
    int rc = sembed_model_load(o->model, &o->mp, &m);
    if (rc) return cli_error(CLI_FAIL, "embed", "cannot load %s: %s", o->model, sembed_strerror(rc));
    struct sembed_context *ctx = NULL;
    rc = sembed_context_create(m, &o->cp, &ctx);
    if (rc) {
        sembed_model_free(m);
        return cli_error(rc == SEMBED_EINVAL ? CLI_USAGE : CLI_FAIL, "embed", "%s", sembed_strerror(rc));
    }
    const uint32_t dim = sembed_model_dim(m);
    const size_t chunk = 1024;
    long long known = n_args > 0 ? (o->pairs ? n_args / 2 : n_args) : -1;
    float *emb = malloc(chunk * dim * sizeof(float));
    struct reader r = {calloc(chunk, sizeof(char *)), calloc(chunk, sizeof(size_t)), calloc(chunk, sizeof(struct sembed_input)),
                       chunk, 0, stdin};
    struct sink s;
    int status = CLI_OK;
    if (!emb || !r.line || !r.cap || !r.in) {
        status = cli_error(CLI_FAIL, "embed", "out of memory");
        goto done;
    }
    if (o->input && !(r.src = fopen(o->input, "rb"))) {
        r.src = stdin;
        status = cli_error(CLI_FAIL, "embed", "cannot open --input %s: %s", o->input, strerror(errno));
        goto done;
    }
    if (sink_open(&s, out, o->fmt, dim, known) != 0) {
        status = cli_error(CLI_FAIL, "embed", "cannot write the output: %s", strerror(errno));
        goto done;
    }
    bool show = cli_stderr_is_tty();
    double t0 = now_s();
    uint64_t done_n = 0, arg_i = 0;
    for (;;) {
        ssize_t n;
        if (n_args > 0) {
            n = 0;
            while ((size_t)n < chunk && arg_i < (uint64_t)n_args) {
                if (o->pairs) {
                    r.in[n++] = (struct sembed_input){args[arg_i], SIZE_MAX, args[arg_i + 1], SIZE_MAX};
                    arg_i += 2;
                } else {
                    r.in[n++] = (struct sembed_input){args[arg_i++], SIZE_MAX, NULL, 0};
                }
            }
        } else {
            n = read_chunk(&r, o->pairs);
            if (n < 0) {
                status = cli_error(CLI_FAIL, "embed", "reading %s: %s", o->input ? o->input : "stdin", strerror(errno));
                break;
            }
        }
        if (n == 0) break;
        rc = sembed_embed_inputs(ctx, r.in, (size_t)n, emb);
        if (rc) {
            status = cli_error(CLI_FAIL, "embed", "inputs %llu..%llu: %s", (unsigned long long)done_n + 1,
                               (unsigned long long)(done_n + (uint64_t)n), sembed_strerror(rc));
            break;
        }
        if (write_rows(&s, emb, (size_t)n) != 0) {
            status = cli_error(CLI_FAIL, "embed", "write error: %s", strerror(errno));
            break;
        }
        done_n += (uint64_t)n;
        progress(show, done_n, known, t0, false);
    }
    progress(show, done_n, known, t0, true);
    if (sink_close(&s) != 0 && status == CLI_OK) status = cli_error(CLI_FAIL, "embed", "write error: %s", strerror(errno));
    struct sembed_embed_stats st;
    sembed_context_stats(ctx, &st);
    if (st.n_truncated)
        fprintf(stderr, "sembed embed: %llu of %llu inputs were longer than %u tokens and were truncated\n",
                (unsigned long long)st.n_truncated, (unsigned long long)st.n_inputs, sembed_context_max_length(ctx));
done:
    if (r.src && r.src != stdin) fclose(r.src);
    for (size_t i = 0; r.line && i < chunk; i++) free(r.line[i]);
    free(r.line);
    free(r.cap);
    free(r.in);
    free(emb);
    sembed_context_free(ctx);
    sembed_model_free(m);
    return status;
}

/* ---------------------------------------------------------------- several processes (MPI) */

// The input file's lines (all of it; every rank reads it: a shared or copied file).
struct lines {
    char *buf;
    size_t *off, n; // line i = buf[off[i] .. off[i+1]) without its line break
};

static int read_lines(const char *path, struct lines *L) {
    memset(L, 0, sizeof *L);
    FILE *f = fopen(path, "rb");
    if (!f) return cli_error(CLI_FAIL, "embed", "cannot open --input %s: %s", path, strerror(errno));
    size_t cap = 0, len = 0;
    for (;;) {
        if (cap - len < 65536) {
            char *nb = realloc(L->buf, cap = cap ? 2 * cap : 1 << 20);
            if (!nb) { fclose(f); return cli_error(CLI_FAIL, "embed", "out of memory reading %s", path); }
            L->buf = nb;
        }
        size_t k = fread(L->buf + len, 1, cap - len - 1, f);
        len += k;
        if (!k) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return cli_error(CLI_FAIL, "embed", "reading %s: %s", path, strerror(errno));
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += L->buf[i] == '\n';
    if (len && L->buf[len - 1] != '\n') n++;
    L->off = malloc((n + 1) * sizeof *L->off);
    if (!L->off) return cli_error(CLI_FAIL, "embed", "out of memory");
    size_t k = 0;
    L->off[0] = 0;
    for (size_t i = 0; i < len; i++)
        if (L->buf[i] == '\n') L->off[++k] = i + 1;
    if (k < n) L->off[++k] = len + 1; // last line without a newline
    L->n = n;
    return 0;
}

static struct sembed_input line_input(const struct lines *L, size_t i, bool pairs) {
    const char *s = L->buf + L->off[i];
    size_t len = L->off[i + 1] - L->off[i] - 1;
    if (len > 0 && s[len - 1] == '\r') len--;
    struct sembed_input x = {s, len, NULL, 0};
    if (pairs) {
        const char *tab = memchr(s, '\t', len);
        x.b = tab ? tab + 1 : s + len;
        x.b_len = tab ? (size_t)(s + len - tab - 1) : 0;
        x.a_len = tab ? (size_t)(tab - s) : len;
    }
    return x;
}

// Rank r embeds the r-th of N contiguous shards of the lines (sizes differ by at most one) and writes them at their offsets of one file (MPI-IO);
// rank 0 creates the temporary file with the header and renames it once every rank succeeded.
// Batch invariance (sembed/model.h) makes each row bit-identical to the one-process output.
static int run_mpi(const struct opts *o) {
    int R = cli_mpi_rank(), N = cli_mpi_size();
    if (!o->input || !o->output || (o->fmt != FMT_NPY && o->fmt != FMT_F32))
        return cli_error(CLI_USAGE, "embed", "with several processes give --input FILE and -o OUT (.npy, or -f f32)");
    struct lines L;
    struct sembed_model *m = NULL;
    struct sembed_context *ctx = NULL;
    struct cli_mpi_file *f = NULL;
    float *emb = NULL;
    unsigned char *le = NULL;
    char tmp[4096] = "";
    int fail = read_lines(o->input, &L);
    int rc = fail ? 0 : sembed_model_load(o->model, &o->mp, &m);
    if (rc) fail = cli_error(CLI_FAIL, "embed", "cannot load %s: %s", o->model, sembed_strerror(rc));
    if (!fail && (rc = sembed_context_create(m, &o->cp, &ctx)))
        fail = cli_error(rc == SEMBED_EINVAL ? CLI_USAGE : CLI_FAIL, "embed", "%s", sembed_strerror(rc));
    const uint32_t dim = m ? sembed_model_dim(m) : 0;
    const size_t chunk = 1024;
    uint64_t hdr = o->fmt == FMT_NPY ? NPY_HEADER_BYTES : 0;
    if (!fail && R == 0) { // the temporary file, header included, sized by rank 0
        snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", o->output);
        int fd = strlen(o->output) + 12 < sizeof tmp ? mkstemp(tmp) : -1;
        FILE *hf = fd >= 0 ? fdopen(fd, "wb") : NULL;
        if (!hf || (hdr && npy_header(hf, (uint64_t)L.n, dim) != 0) || fclose(hf) != 0) {
            fail = cli_error(CLI_FAIL, "embed", "cannot create a temporary file next to %s: %s", o->output, strerror(errno));
            if (fd >= 0) unlink(tmp);
            tmp[0] = 0;
        }
    }
    if (cli_mpi_allreduce_max(&fail) || fail) goto done; // every rank stops together
    if (cli_mpi_bcast(tmp, sizeof tmp) || cli_mpi_file_open(tmp, &f)) {
        fail = cli_error(CLI_FAIL, "embed", "MPI-IO cannot open %s", tmp);
        goto agree;
    }
    emb = malloc(chunk * dim * sizeof *emb);
    le = malloc(chunk * dim * 4);
    struct sembed_input *in = malloc(chunk * sizeof *in);
    if (!emb || !le || !in) fail = cli_error(CLI_FAIL, "embed", "out of memory");
    size_t q = L.n / (size_t)N, rem = L.n % (size_t)N; // shard sizes differ by at most one line
    size_t lo = q * (size_t)R + ((size_t)R < rem ? (size_t)R : rem), hi = lo + q + ((size_t)R < rem ? 1 : 0);
    for (size_t i = lo; !fail && i < hi; i += chunk) {
        size_t n = hi - i < chunk ? hi - i : chunk;
        for (size_t k = 0; k < n; k++) in[k] = line_input(&L, i + k, o->pairs);
        if ((rc = sembed_embed_inputs(ctx, in, n, emb))) {
            fail = cli_error(CLI_FAIL, "embed", "inputs %zu..%zu: %s", i + 1, i + n, sembed_strerror(rc));
            break;
        }
        for (size_t k = 0; k < n * dim; k++) { // little-endian whatever the host order
            uint32_t u;
            memcpy(&u, &emb[k], 4);
            le[4 * k] = (unsigned char)u; le[4 * k + 1] = (unsigned char)(u >> 8);
            le[4 * k + 2] = (unsigned char)(u >> 16); le[4 * k + 3] = (unsigned char)(u >> 24);
        }
        if (cli_mpi_file_write_at(f, hdr + (uint64_t)i * dim * 4, le, n * dim * 4))
            fail = cli_error(CLI_FAIL, "embed", "MPI-IO write of rows %zu..%zu failed", i + 1, i + n);
    }
    free(in);
    if (cli_mpi_file_close(f) && !fail) fail = cli_error(CLI_FAIL, "embed", "MPI-IO close of %s failed", tmp);
agree:
    if (cli_mpi_allreduce_max(&fail)) fail = CLI_FAIL;
    if (R == 0 && tmp[0]) {
        mode_t um = umask(0);
        umask(um);
        if (!fail && (chmod(tmp, 0666 & ~um) != 0 || rename(tmp, o->output) != 0))
            fail = cli_error(CLI_FAIL, "embed", "cannot rename onto %s: %s", o->output, strerror(errno));
        if (fail) unlink(tmp);
    }
    if (!fail && ctx) {
        struct sembed_embed_stats st;
        sembed_context_stats(ctx, &st);
        if (st.n_truncated)
            fprintf(stderr, "sembed embed: rank %d: %llu of %llu inputs were longer than %u tokens and were truncated\n", R,
                    (unsigned long long)st.n_truncated, (unsigned long long)st.n_inputs, sembed_context_max_length(ctx));
    }
done:
    free(emb); free(le);
    free(L.buf); free(L.off);
    sembed_context_free(ctx);
    sembed_model_free(m);
    return fail;
}

int cmd_embed(int argc, char **argv) {
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc < 0) return CLI_OK; // --help
    if (rc) return rc;
    if (cli_mpi_size() > 1) return run_mpi(&o);
    if (!o.output) {
        int st = run(&o, argc - optind, argv + optind, stdout);
        if (fflush(stdout) != 0 && st == CLI_OK) st = cli_error(CLI_FAIL, "embed", "write error: %s", strerror(errno));
        return st;
    }
    // -o onto something that is not a regular file (/dev/null, a FIFO, a terminal): write to it
    // directly. Renaming a temporary file over it would replace the device node itself.
    struct stat dst;
    if (stat(o.output, &dst) == 0 && !S_ISREG(dst.st_mode)) {
        if (S_ISDIR(dst.st_mode)) return cli_error(CLI_USAGE, "embed", "-o %s is a directory", o.output);
        FILE *df = fopen(o.output, "wb");
        if (!df) return cli_error(CLI_FAIL, "embed", "cannot open %s: %s", o.output, strerror(errno));
        int st = run(&o, argc - optind, argv + optind, df);
        if (fclose(df) != 0 && st == CLI_OK) st = cli_error(CLI_FAIL, "embed", "writing %s: %s", o.output, strerror(errno));
        return st;
    }
    // -o: a temporary file in the destination's folder, renamed over it only on success.
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp-XXXXXX", o.output) < 0) return cli_error(CLI_FAIL, "embed", "out of memory");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = cli_error(CLI_FAIL, "embed", "cannot create a temporary file next to %s: %s", o.output, strerror(errno));
        free(tmp);
        return rc;
    }
    FILE *f = fdopen(fd, "w+b");
    int st = f ? run(&o, argc - optind, argv + optind, f) : cli_error(CLI_FAIL, "embed", "fdopen: %s", strerror(errno));
    if (f && st == CLI_OK && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        st = cli_error(CLI_FAIL, "embed", "writing %s: %s", o.output, strerror(errno));
    if (f) fclose(f);
    else close(fd);
    if (st == CLI_OK) {
        mode_t um = umask(0);
        umask(um);
        if (chmod(tmp, 0666 & ~um) != 0 || rename(tmp, o.output) != 0) // mkstemp made it 0600
            st = cli_error(CLI_FAIL, "embed", "cannot rename onto %s: %s", o.output, strerror(errno));
    }
    if (st != CLI_OK) unlink(tmp);
    free(tmp);
    return st;
}
