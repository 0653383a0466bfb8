/*
 * formats/jsonx.h: strict JSON loading and typed field access on top of json-c (internal).
 * Used for safetensors headers and the HuggingFace / sentence-transformers config files.
 *
 *     struct json_object *cfg;
 *     if (sj_load_file("config.json", SJ_MAX_CONFIG, &cfg) == 0) {
 *         int64_t h; if (sj_get_int(cfg, "hidden_size", &h) == 0) ...
 *         json_object_put(cfg);
 *     }
 */
#ifndef SEMBED_FORMATS_JSONX_H
#define SEMBED_FORMATS_JSONX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_object;

#define SJ_MAX_DEPTH 64
#define SJ_MAX_CONFIG (64u * 1024u * 1024u) /* tokenizer.json of big vocabularies is a few MB */

/* Parse len bytes as one JSON value (strict syntax, valid UTF-8, at most SJ_MAX_DEPTH nesting,
 * only whitespace after it). label names the input in errors. *out is owned by the caller
 * (json_object_put). */
int sj_parse(const char *buf, size_t len, const char *label, struct json_object **out);
/* Read and parse a file of at most max_len bytes. SEMBED_ENOTFOUND if it does not exist. */
int sj_load_file(const char *path, size_t max_len, struct json_object **out);

/* Typed lookups in an object: SEMBED_ENOTFOUND if absent (or JSON null), SEMBED_ETYPE if the
 * member has another type (logged with key and label). Strings are borrowed from the object. */
int sj_get_int(struct json_object *o, const char *key, int64_t *v);
int sj_get_bool(struct json_object *o, const char *key, bool *v);
int sj_get_num(struct json_object *o, const char *key, double *v);
int sj_get_str(struct json_object *o, const char *key, const char **v);
/* The member itself if present and not null, else NULL. */
struct json_object *sj_get(struct json_object *o, const char *key);

#endif
