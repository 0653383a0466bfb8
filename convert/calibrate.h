/*
 * convert/calibrate.h: what `sembed convert` adds after the tensors are written (internal).
 *
 *  - Calibration (docs/int8.md): a model converted to int8 weights is loaded back twice, with f32
 *    and with int8 arithmetic, the built-in calibration sentences (convert/calib_sentences.h) are
 *    embedded with the file's own pipeline, and the mean and minimum cosine of int8 vs f32
 *    embeddings are stored as quant.calib_cos_mean, quant.calib_cos_min and quant.calib_count.
 *    The converter does not depend on the runtime's internals: it writes the file, calibrates by
 *    loading it through the public model API, then rewrites it with the keys added (the writer is
 *    atomic: the destination is either the old file or the complete new one).
 *  - User metadata (`sembed convert --meta key=value`): extra keys in the x.*, train.* and eval.*
 *    namespaces, so recipes can record scores and provenance in the file they produce.
 */
#ifndef SEMBED_CONVERT_CALIBRATE_H
#define SEMBED_CONVERT_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>

#include "sembed/convert.h"
#include "sembed/semb.h"

/* One metadata entry given by the user. Strings point into the spec passed to sc_meta_parse. */
struct sc_meta {
    char key[128];
    enum sembed_type type; /* U64, I64, F64, F32, U32, BOOL or STRING */
    union {
        uint64_t u;
        int64_t i;
        double f;
        bool b;
    } v;
    const char *str;
};

/* Parse "key=value" or "key:type=value" (type: str, u32, u64, i64, f32, f64, bool). Without a
 * type the value is typed by its form: true/false -> bool, an integer -> u64 (i64 if negative), a
 * decimal or exponent number -> f64, anything else -> string. The key must be in the x., train. or
 * eval. namespace and consist of [A-Za-z0-9_.-]. SEMBED_EINVAL (logged with the reason) if not. */
int sc_meta_parse(const char *spec, struct sc_meta *out);
/* Add one entry to a writer. */
int sc_meta_write(struct sembed_writer *w, const struct sc_meta *m);

/* Calibration result. */
struct sc_calib {
    double cos_mean, cos_min;
    uint32_t count;
};
/* Embed the built-in sentences with the model at path in f32 and int8; mean and min cosine. */
int sc_calibrate(const char *path, struct sc_calib *out);
/* The built-in calibration sentences. */
size_t sc_calib_n_sentences(void);
const char *sc_calib_sentence(size_t i);

/* Rewrite path (atomically) with every metadata entry and tensor it holds, plus `extra` entries;
 * an existing key of the same name is replaced. */
int sc_rewrite_with_meta(const char *path, const struct sc_meta *extra, size_t n_extra);

/* sembed_convert with the extras the CLI offers (the public params struct has no room for them
 * yet). calibrate: -1 = when the output has int8 Linear weights (q8), 0 = never, 1 = always. */
struct sc_convert_extra {
    const struct sc_meta *meta;
    size_t n_meta;
    int calibrate;
};
int sc_convert_ex(const struct sembed_convert_params *p, const struct sc_convert_extra *x);

#endif
