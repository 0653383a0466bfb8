// `sembed inspect FILE [--verify] [--json]`: header, metadata, tensor table, totals by dtype.
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sembed/semb.h"
#include "sembed/tokenizer.h"
#include "tools/cli.h"

#define ARRAY_PREVIEW 8

static void usage(FILE *out) {
    fprintf(out,
            "usage: sembed inspect FILE [--verify] [--json]\n\n"
            "Show a .semb file: header, every metadata key with its type and value (long arrays\n"
            "summarised), the tensor table and totals by dtype.\n\n"
            "  --verify     recompute every checksum and check the tokenizer index against the\n"
            "               vocabulary; exit 1 naming each corrupt tensor or the bad index key\n"
            "  --json       print one JSON document instead of text\n"
            "  -h, --help   this text\n");
}

static void scalar_bytes(enum sembed_type t, const uint8_t *p, char *buf, size_t n) {
    uint64_t u = 0;
    int64_t s = 0;
    switch (t) {
    case SEMBED_TYPE_U8: snprintf(buf, n, "%u", p[0]); return;
    case SEMBED_TYPE_I8: snprintf(buf, n, "%d", (int8_t)p[0]); return;
    case SEMBED_TYPE_BOOL: snprintf(buf, n, "%s", p[0] ? "true" : "false"); return;
    case SEMBED_TYPE_U16: { uint16_t v; memcpy(&v, p, 2); snprintf(buf, n, "%u", v); return; }
    case SEMBED_TYPE_I16: { int16_t v; memcpy(&v, p, 2); snprintf(buf, n, "%d", v); return; }
    case SEMBED_TYPE_U32: { uint32_t v; memcpy(&v, p, 4); u = v; break; }
    case SEMBED_TYPE_I32: { int32_t v; memcpy(&v, p, 4); snprintf(buf, n, "%" PRId32, v); return; }
    case SEMBED_TYPE_U64: memcpy(&u, p, 8); break;
    case SEMBED_TYPE_I64: memcpy(&s, p, 8); snprintf(buf, n, "%" PRId64, s); return;
    case SEMBED_TYPE_F32: { float v; memcpy(&v, p, 4); snprintf(buf, n, "%.9g", v); return; }
    case SEMBED_TYPE_F64: { double v; memcpy(&v, p, 8); snprintf(buf, n, "%.17g", v); return; }
    default: snprintf(buf, n, "?"); return;
    }
    snprintf(buf, n, "%" PRIu64, u);
}

static json_object *scalar_json(enum sembed_type t, const uint8_t *p) {
    switch (t) {
    case SEMBED_TYPE_BOOL: return json_object_new_boolean(p[0] != 0);
    case SEMBED_TYPE_F32: { float v; memcpy(&v, p, 4); return json_object_new_double(v); }
    case SEMBED_TYPE_F64: { double v; memcpy(&v, p, 8); return json_object_new_double(v); }
    case SEMBED_TYPE_U64: { uint64_t v; memcpy(&v, p, 8); return json_object_new_uint64(v); }
    default: {
        char buf[64];
        scalar_bytes(t, p, buf, sizeof buf);
        return json_object_new_int64(strtoll(buf, NULL, 10));
    }
    }
}

static void print_str_escaped(FILE *out, const char *s, size_t max) {
    fputc('"', out);
    size_t i = 0;
    for (; s[i] && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f) fprintf(out, "\\x%02x", c);
        else fputc(c, out);
    }
    fputc('"', out);
    if (s[i]) fprintf(out, "...(%zu bytes)", strlen(s));
}

static void shape_str(const struct sembed_tensor *t, char *buf, size_t n) {
    size_t pos = 0;
    pos += (size_t)snprintf(buf + pos, n - pos, "[");
    for (uint32_t d = 0; d < t->n_dims && pos < n; d++)
        pos += (size_t)snprintf(buf + pos, n - pos, "%s%" PRId64, d ? ", " : "", t->dims[d]);
    if (pos < n) snprintf(buf + pos, n - pos, "]");
}

static uint64_t n_elements(const struct sembed_tensor *t) {
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) n *= (uint64_t)t->dims[d];
    return n;
}

static void human(uint64_t b, char *buf, size_t n) {
    if (b >= 1ull << 30) snprintf(buf, n, "%.2f GiB", (double)b / (1ull << 30));
    else if (b >= 1ull << 20) snprintf(buf, n, "%.2f MiB", (double)b / (1ull << 20));
    else if (b >= 1ull << 10) snprintf(buf, n, "%.1f KiB", (double)b / (1ull << 10));
    else snprintf(buf, n, "%" PRIu64 " B", b);
}

// One line on what the file is: the encoder family (from its keys), its source architecture, a
// cross-encoder's head, and the tokenizer model.
static void print_summary(const struct sembed_file *f) {
    const char *src = NULL, *tok = NULL, *act = NULL;
    uint32_t off = 0, buckets = 0, types = 2, labels = 0;
    sembed_file_get_str(f, "bert.source_architecture", &src, NULL);
    sembed_file_get_str(f, "tokenizer.model", &tok, NULL);
    sembed_file_get_u32(f, "bert.position_offset", &off);
    sembed_file_get_u32(f, "bert.relative_attention_buckets", &buckets);
    sembed_file_get_u32(f, "bert.type_vocab_size", &types);
    sembed_file_get_u32(f, "classifier.num_labels", &labels);
    sembed_file_get_str(f, "classifier.activation", &act, NULL);
    const char *family = buckets ? "MPNet" : off ? "RoBERTa / XLM-R" : types == 0 ? "DistilBERT-style BERT" : "BERT";
    printf("model:       %s encoder%s%s%s", family, src ? " (" : "", src ? src : "", src ? ")" : "");
    if (labels) printf(", cross-encoder: %u label%s, %s", labels, labels == 1 ? "" : "s", act ? act : "?");
    printf("; tokenizer %s\n", tok ? tok : "(none)");
}

static void print_text(const struct sembed_file *f, const char *path, const int *status) {
    int64_t nkv = sembed_file_n_kv(f), nt = sembed_file_n_tensors(f);
    char hb[32];
    human(sembed_file_size(f), hb, sizeof hb);
    printf("file:        %s\n", path);
    printf("format:      semb version %u, little-endian, %" PRIu64 " bytes (%s)\n", sembed_file_version(f), sembed_file_size(f), hb);
    printf("data offset: %" PRIu64 "\n", sembed_file_data_offset(f));
    print_summary(f);
    printf("\nmetadata (%" PRId64 " keys):\n", nkv);
    for (int64_t i = 0; i < nkv; i++) {
        const char *key = sembed_file_kv_key(f, i);
        enum sembed_type t = sembed_file_kv_type(f, i);
        if (t == SEMBED_TYPE_STRING) {
            const char *s;
            sembed_file_get_str(f, key, &s, NULL);
            printf("  %-40s %-8s ", key, "string");
            print_str_escaped(stdout, s, 200);
            putchar('\n');
        } else if (t == SEMBED_TYPE_ARRAY) {
            enum sembed_type e;
            uint64_t cnt;
            const void *data;
            sembed_file_get_arr(f, key, &e, &cnt, &data);
            char tn[32];
            snprintf(tn, sizeof tn, "%s[%" PRIu64 "]", sembed_type_name(e), cnt);
            printf("  %-40s %-8s [", key, tn);
            for (uint64_t j = 0; j < cnt && j < ARRAY_PREVIEW; j++) {
                if (j) fputs(", ", stdout);
                if (e == SEMBED_TYPE_STRING) {
                    const char *s;
                    sembed_file_get_arr_str(f, key, j, &s, NULL);
                    print_str_escaped(stdout, s, 40);
                } else {
                    char buf[64];
                    size_t sz = e == SEMBED_TYPE_BOOL || e <= SEMBED_TYPE_I8 ? 1 : e <= SEMBED_TYPE_I16 ? 2 : (e == SEMBED_TYPE_U64 || e == SEMBED_TYPE_I64 || e == SEMBED_TYPE_F64) ? 8 : 4;
                    scalar_bytes(e, (const uint8_t *)data + j * sz, buf, sizeof buf);
                    fputs(buf, stdout);
                }
            }
            if (cnt > ARRAY_PREVIEW) printf(", ... %" PRIu64 " more", cnt - ARRAY_PREVIEW);
            puts("]");
        } else {
            char buf[64];
            scalar_bytes(t, sembed_file_kv_data(f, i), buf, sizeof buf);
            printf("  %-40s %-8s %s\n", key, sembed_type_name(t), buf);
        }
    }
    printf("\ntensors (%" PRId64 "):\n", nt);
    printf("  %-52s %-7s %-16s %12s %12s%s\n", "name", "dtype", "shape", "bytes", "offset", status ? "  checksum" : "");
    uint64_t by_dtype_bytes[SEMBED_DTYPE_COUNT] = {0}, by_dtype_n[SEMBED_DTYPE_COUNT] = {0}, by_dtype_el[SEMBED_DTYPE_COUNT] = {0};
    for (int64_t i = 0; i < nt; i++) {
        struct sembed_tensor t;
        sembed_file_tensor(f, i, &t);
        char shape[96];
        shape_str(&t, shape, sizeof shape);
        printf("  %-52s %-7s %-16s %12" PRIu64 " %12" PRIu64 "%s\n", t.name, sembed_dtype_name(t.dtype), shape, t.nbytes,
               t.offset, status ? (status[i] ? "  CORRUPT" : "  ok") : "");
        by_dtype_bytes[t.dtype] += t.nbytes;
        by_dtype_n[t.dtype]++;
        by_dtype_el[t.dtype] += n_elements(&t);
    }
    printf("\ntotals by dtype:\n");
    uint64_t all = 0, all_el = 0;
    for (int d = 0; d < SEMBED_DTYPE_COUNT; d++) {
        if (!by_dtype_n[d]) continue;
        human(by_dtype_bytes[d], hb, sizeof hb);
        printf("  %-7s %4" PRIu64 " tensors %14" PRIu64 " elements %12s\n", sembed_dtype_name((enum sembed_dtype)d), by_dtype_n[d],
               by_dtype_el[d], hb);
        all += by_dtype_bytes[d];
        all_el += by_dtype_el[d];
    }
    human(all, hb, sizeof hb);
    printf("  %-7s %4" PRId64 " tensors %14" PRIu64 " elements %12s\n", "all", nt, all_el, hb);
}

static json_object *to_json(const struct sembed_file *f, const char *path, const int *status) {
    json_object *root = json_object_new_object();
    json_object_object_add(root, "file", json_object_new_string(path));
    json_object_object_add(root, "version", json_object_new_int((int32_t)sembed_file_version(f)));
    json_object_object_add(root, "size", json_object_new_uint64(sembed_file_size(f)));
    json_object_object_add(root, "data_offset", json_object_new_uint64(sembed_file_data_offset(f)));
    json_object *meta = json_object_new_array();
    for (int64_t i = 0; i < sembed_file_n_kv(f); i++) {
        const char *key = sembed_file_kv_key(f, i);
        enum sembed_type t = sembed_file_kv_type(f, i);
        json_object *e = json_object_new_object();
        json_object_object_add(e, "key", json_object_new_string(key));
        json_object_object_add(e, "type", json_object_new_string(sembed_type_name(t)));
        if (t == SEMBED_TYPE_STRING) {
            const char *s;
            sembed_file_get_str(f, key, &s, NULL);
            json_object_object_add(e, "value", json_object_new_string(s));
        } else if (t == SEMBED_TYPE_ARRAY) {
            enum sembed_type et;
            uint64_t cnt;
            const void *data;
            sembed_file_get_arr(f, key, &et, &cnt, &data);
            json_object_object_add(e, "elem_type", json_object_new_string(sembed_type_name(et)));
            json_object_object_add(e, "count", json_object_new_uint64(cnt));
            json_object *items = json_object_new_array();
            for (uint64_t j = 0; j < cnt && j < ARRAY_PREVIEW; j++) {
                if (et == SEMBED_TYPE_STRING) {
                    const char *s;
                    sembed_file_get_arr_str(f, key, j, &s, NULL);
                    json_object_array_add(items, json_object_new_string(s));
                } else {
                    size_t sz = et == SEMBED_TYPE_BOOL || et <= SEMBED_TYPE_I8 ? 1 : et <= SEMBED_TYPE_I16 ? 2 : (et == SEMBED_TYPE_U64 || et == SEMBED_TYPE_I64 || et == SEMBED_TYPE_F64) ? 8 : 4;
                    json_object_array_add(items, scalar_json(et, (const uint8_t *)data + j * sz));
                }
            }
            json_object_object_add(e, "first", items);
        } else {
            json_object_object_add(e, "value", scalar_json(t, sembed_file_kv_data(f, i)));
        }
        json_object_array_add(meta, e);
    }
    json_object_object_add(root, "metadata", meta);
    json_object *tensors = json_object_new_array();
    uint64_t total = 0;
    for (int64_t i = 0; i < sembed_file_n_tensors(f); i++) {
        struct sembed_tensor t;
        sembed_file_tensor(f, i, &t);
        json_object *e = json_object_new_object();
        json_object_object_add(e, "name", json_object_new_string(t.name));
        json_object_object_add(e, "dtype", json_object_new_string(sembed_dtype_name(t.dtype)));
        json_object *shape = json_object_new_array();
        for (uint32_t d = 0; d < t.n_dims; d++) json_object_array_add(shape, json_object_new_int64(t.dims[d]));
        json_object_object_add(e, "shape", shape);
        json_object_object_add(e, "bytes", json_object_new_uint64(t.nbytes));
        json_object_object_add(e, "offset", json_object_new_uint64(t.offset));
        char hex[17];
        snprintf(hex, sizeof hex, "%016" PRIx64, t.checksum);
        json_object_object_add(e, "xxh3", json_object_new_string(hex));
        if (status) json_object_object_add(e, "checksum_ok", json_object_new_boolean(!status[i]));
        json_object_array_add(tensors, e);
        total += t.nbytes;
    }
    json_object_object_add(root, "tensors", tensors);
    json_object_object_add(root, "tensor_bytes", json_object_new_uint64(total));
    return root;
}

int cmd_inspect(int argc, char **argv) {
    static const struct option opts[] = {
        {"verify", no_argument, NULL, 'v'}, {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {0, 0, 0, 0}};
    int verify = 0, json = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'v': verify = 1; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return CLI_OK;
        default: return cli_error(CLI_USAGE, "inspect", "unknown option '%s' (see sembed inspect --help)", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return cli_error(CLI_USAGE, "inspect", "expected exactly one FILE (see sembed inspect --help)");
    const char *path = argv[optind];
    struct sembed_file *f = NULL;
    int rc = sembed_file_open(path, &f);
    if (rc) return cli_error(CLI_FAIL, "inspect", "%s: %s", path, sembed_strerror(rc));
    int *status = NULL, n_bad = 0, index_rc = 0;
    int64_t nt = sembed_file_n_tensors(f);
    const bool has_index = sembed_file_find_kv(f, "tokenizer.index.all") >= 0;
    if (verify) {
        index_rc = sembed_file_verify_tokenizer_index(f); // logs the key and slot that disagree
        status = calloc((size_t)(nt ? nt : 1), sizeof *status);
        if (!status) { sembed_file_free(f); return cli_error(CLI_FAIL, "inspect", "out of memory"); }
        for (int64_t i = 0; i < nt; i++) {
            status[i] = sembed_file_verify_tensor(f, i) != 0;
            n_bad += status[i];
        }
    }
    if (json) {
        json_object *root = to_json(f, path, status);
        struct sembed_tokenizer *tk = NULL;
        if (sembed_file_find_kv(f, "tokenizer.model") >= 0 && sembed_tokenizer_from_file(f, &tk) == SEMBED_OK) {
            char d[512];
            sembed_tokenizer_describe(tk, d, sizeof d);
            json_object_object_add(root, "tokenizer_kind", json_object_new_string(sembed_tokenizer_kind(tk)));
            json_object_object_add(root, "tokenizer", json_object_new_string(d));
        }
        sembed_tokenizer_free(tk);
        if (verify && has_index) json_object_object_add(root, "tokenizer_index_ok", json_object_new_boolean(index_rc == 0));
        puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(root);
    } else {
        print_text(f, path, status);
        struct sembed_tokenizer *tk = NULL;
        char d[512] = "none";
        int trc = sembed_file_find_kv(f, "tokenizer.model") >= 0 ? sembed_tokenizer_from_file(f, &tk) : SEMBED_OK;
        if (tk) sembed_tokenizer_describe(tk, d, sizeof d);
        else if (trc) snprintf(d, sizeof d, "unusable (%s)", sembed_strerror(trc));
        printf("\ntokenizer: %s\n", d);
        sembed_tokenizer_free(tk);
        if (verify && !n_bad) printf("\nverify: all %" PRId64 " tensor checksums match\n", nt);
        if (verify && !index_rc && has_index) printf("verify: tokenizer index matches the vocabulary\n");
    }
    if (n_bad) {
        for (int64_t i = 0; i < nt; i++) {
            struct sembed_tensor t;
            if (status[i] && sembed_file_tensor(f, i, &t) == 0)
                fprintf(stderr, "sembed inspect: %s: tensor '%s' is corrupt (checksum mismatch)\n", path, t.name);
        }
    }
    free(status);
    sembed_file_free(f);
    if (n_bad) return cli_error(CLI_FAIL, "inspect", "%s: %d corrupt tensor%s", path, n_bad, n_bad == 1 ? "" : "s");
    if (index_rc)
        return cli_error(CLI_FAIL, "inspect", "%s: the tokenizer index (tokenizer.index.*) does not match the vocabulary: %s",
                         path, sembed_strerror(index_rc));
    return CLI_OK;
}
