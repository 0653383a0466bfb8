/* convert/onnx_import.h: ONNX graphs (torch.onnx.export, ORT-optimized, dynamically quantized int8)
 * mapped onto canonical BERT tensor names (internal). */
#ifndef SEMBED_ONNX_IMPORT_H
#define SEMBED_ONNX_IMPORT_H

#include "convert/source.h"

/* Load path (.onnx; external data files resolved relative to it) into src. */
int sc_onnx_load(const char *path, struct sc_source *src);

#endif
