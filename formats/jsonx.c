// Strict JSON helpers over json-c (formats/jsonx.h).
#define _POSIX_C_SOURCE 200809L
#include "formats/jsonx.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/log.h"
#include "sembed/common.h"

int sj_parse(const char *buf, size_t len, const char *label, struct json_object **out) {
    *out = NULL;
    if (len > (size_t)INT32_MAX)
        return sembed_fail(SEMBED_ETOOLONG, "sembed_convert", "%s: JSON of %zu bytes is too large", label, len);
    struct json_tokener *tok = json_tokener_new_ex(SJ_MAX_DEPTH);
    if (!tok) return SEMBED_ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
    struct json_object *o = json_tokener_parse_ex(tok, buf, (int)len);
    enum json_tokener_error err = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!o || err != json_tokener_success) {
        if (o) json_object_put(o);
        return sembed_fail(SEMBED_EPARSE, "sembed_convert", "%s: invalid JSON near byte %zu: %s", label, end,
                           json_tokener_error_desc(err == json_tokener_success ? json_tokener_continue : err));
    }
    for (size_t i = end; i < len; i++) {
        char c = buf[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            json_object_put(o);
            return sembed_fail(SEMBED_EPARSE, "sembed_convert", "%s: unexpected bytes after the JSON value at byte %zu",
                               label, i);
        }
    }
    *out = o;
    return SEMBED_OK;
}

int sj_load_file(const char *path, size_t max_len, struct json_object **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return SEMBED_ENOTFOUND;
        return sembed_fail(SEMBED_EIO, "sembed_convert", "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sembed_fail(SEMBED_EIO, "sembed_convert", "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max_len) {
        fclose(f);
        return sembed_fail(SEMBED_ETOOLONG, "sembed_convert", "%s: %lld bytes, more than the %zu allowed for this file",
                           path, (long long)st.st_size, max_len);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) { fclose(f); return SEMBED_ENOMEM; }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) {
        free(buf);
        return sembed_fail(SEMBED_EIO, "sembed_convert", "%s: short read (%zu of %zu bytes)", path, got, n);
    }
    size_t skip = (n >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB &&
                   (unsigned char)buf[2] == 0xBF) ? 3 : 0; // UTF-8 BOM, written by some Windows tools
    int rc = sj_parse(buf + skip, n - skip, path, out);
    free(buf);
    return rc;
}

struct json_object *sj_get(struct json_object *o, const char *key) {
    struct json_object *v = NULL;
    if (!o || !json_object_is_type(o, json_type_object)) return NULL;
    if (!json_object_object_get_ex(o, key, &v)) return NULL;
    return v; // JSON null is stored as a NULL object
}

static int wrong_type(const char *key, const char *want, struct json_object *v) {
    return sembed_fail(SEMBED_ETYPE, "sembed_convert", "JSON key \"%s\": expected %s, found %s", key, want,
                       json_type_to_name(json_object_get_type(v)));
}

int sj_get_int(struct json_object *o, const char *key, int64_t *out) {
    struct json_object *v = sj_get(o, key);
    if (!v) return SEMBED_ENOTFOUND;
    if (json_object_is_type(v, json_type_int)) {
        *out = json_object_get_int64(v);
        return SEMBED_OK;
    }
    if (json_object_is_type(v, json_type_double)) { // 512.0 is an integer written by some tools
        double d = json_object_get_double(v);
        if (d >= -9.0e18 && d <= 9.0e18 && d == (double)(int64_t)d) { *out = (int64_t)d; return SEMBED_OK; }
        if (d > 9.0e18) { *out = INT64_MAX; return SEMBED_OK; }
    }
    return wrong_type(key, "an integer", v);
}

int sj_get_bool(struct json_object *o, const char *key, bool *out) {
    struct json_object *v = sj_get(o, key);
    if (!v) return SEMBED_ENOTFOUND;
    if (!json_object_is_type(v, json_type_boolean)) return wrong_type(key, "a boolean", v);
    *out = json_object_get_boolean(v) != 0;
    return SEMBED_OK;
}

int sj_get_num(struct json_object *o, const char *key, double *out) {
    struct json_object *v = sj_get(o, key);
    if (!v) return SEMBED_ENOTFOUND;
    if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
        return wrong_type(key, "a number", v);
    *out = json_object_get_double(v);
    return SEMBED_OK;
}

int sj_get_str(struct json_object *o, const char *key, const char **out) {
    struct json_object *v = sj_get(o, key);
    if (!v) return SEMBED_ENOTFOUND;
    if (!json_object_is_type(v, json_type_string)) return wrong_type(key, "a string", v);
    *out = json_object_get_string(v);
    return SEMBED_OK;
}
