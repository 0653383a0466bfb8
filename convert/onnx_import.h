/* convert/onnx_import.h: ONNX graphs (torch.onnx.export, ORT-optimized, dynamically quantized int8)
 * mapped onto canonical BERT tensor names (internal). What is recognised: docs/onnx.md.
 *
 * On success src holds the canonical tensors (F32/F16 as stored, int8 weights as Q8_ROW [out, in]
 * with the graph's per-row scales), the hyper-parameters recovered from the graph (num_layers,
 * hidden_size, num_heads, intermediate_size, vocab_size, max_position_embeddings,
 * type_vocab_size, layer_norm_eps, hidden_act) and format = "onnx" | "onnx-ort" | "onnx-int8".
 * On failure src may hold part of that; release it with sc_source_free().
 */
#ifndef SEMBED_ONNX_IMPORT_H
#define SEMBED_ONNX_IMPORT_H

#include <stddef.h>
#include "convert/source.h"

/* Load path (.onnx; external data files resolved relative to its folder) into src. */
int sc_onnx_load(const char *path, struct sc_source *src);
/* Same from memory (fuzzing); external data is refused. buf need not outlive the call. */
int sc_onnx_load_memory(const void *buf, size_t len, struct sc_source *src);

#endif
