/*
 * convert/source.h: what every importer (safetensors, PyTorch zip, ONNX) hands to the converter
 * core (internal). An importer maps its container into a HuggingFace-named state dict, with
 * canonical names (docs/format.md "Tensor names": no "bert." prefix, BERT names for DistilBERT),
 * and whatever hyper-parameters it could recover.
 */
#ifndef SEMBED_CONVERT_SOURCE_H
#define SEMBED_CONVERT_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sembed/semb.h"

struct sc_tensor {
    char *name;                   /* canonical name, heap */
    enum sembed_dtype dtype;      /* F32, F16, BF16, or Q8_ROW (int8 imported as-is) */
    uint32_t n_dims;
    int64_t dims[SEMBED_MAX_DIMS];
    const void *data;             /* nbytes = sembed_dtype_nbytes(dtype, ...); borrowed from a
                                     mapping or pointing into `owned` */
    void *owned;                  /* heap buffer to free, or NULL */
};

struct sc_source {
    struct sc_tensor *t;
    size_t n, cap;
    /* Hyper-parameters an importer recovered from the graph itself (ONNX); 0 = unknown. A
     * config.json, when present, is authoritative and these are cross-checked against it. */
    uint32_t num_layers, hidden_size, num_heads, intermediate_size, vocab_size,
        max_position_embeddings, type_vocab_size;
    float layer_norm_eps;         /* 0 = unknown */
    char hidden_act[16];          /* "" = unknown, else "gelu", "gelu_tanh", "relu" */
    char format[24];              /* general.source.format value */
    char position_shift[96];      /* ONNX: what offsets the position ids ("" = they count from 0) */
    void *mappings[8];            /* mmaps / buffers to release with the source */
    size_t mapping_sizes[8];
    int n_mappings;
};

/* Implemented in convert/source.c. */
/* Append a tensor (name copied). data is borrowed unless owned != NULL (then freed with src). */
int sc_source_add(struct sc_source *src, const char *name, enum sembed_dtype dtype, uint32_t n_dims,
                  const int64_t *dims, const void *data, void *owned);
/* Register a mapping (munmap'd) or heap buffer (size 0: free'd) released with the source. */
int sc_source_keep(struct sc_source *src, void *ptr, size_t size);
struct sc_tensor *sc_source_find(struct sc_source *src, const char *name);
void sc_source_free(struct sc_source *src);
#endif
