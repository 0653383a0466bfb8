/*
 * sembed/convert.h: import a BERT-family checkpoint into one .semb file.
 *
 * Sources (docs/convert.md has the full mapping tables):
 *   - a HuggingFace folder or file: model.safetensors, sharded model.safetensors.index.json,
 *     pytorch_model.bin (PyTorch zip format, read by a restricted unpickler that never calls
 *     anything), plus config.json and the tokenizer files next to it;
 *   - a sentence-transformers folder (modules.json, 1_Pooling, 2_Dense, 2_Normalize,
 *     sentence_bert_config.json): the pooling pipeline travels into the .semb file;
 *   - an ONNX graph (.onnx file, or a folder holding model.onnx).
 * Architectures: BERT (MiniLM, bge, e5, gte, SimCSE-BERT, ...) and DistilBERT; anything else is
 * refused with SEMBED_EARCH naming what the source declares.
 *
 * Contract: the output is written through sembed_writer (temporary file, fsync, rename), so on
 * any failure the destination is untouched and no partial file is left behind. Source files are
 * mmapped and tensors are streamed to disk one at a time: peak memory stays well below the model
 * size. Errors return a negative SEMBED_E* code; the log callback receives the details (file,
 * tensor, expected vs found).
 *
 *     struct sembed_convert_params p = sembed_convert_default_params();
 *     p.src = "all-MiniLM-L6-v2/";          // folder or file
 *     p.out = "minilm.semb";
 *     p.dtype = SEMBED_DTYPE_Q8_ROW;        // int8 Linear weights, f16 word table
 *     int rc = sembed_convert(&p);
 *     if (rc) fprintf(stderr, "convert: %s\n", sembed_strerror(rc));
 */
#ifndef SEMBED_CONVERT_H
#define SEMBED_CONVERT_H

#include <stdbool.h>
#include "sembed/common.h"
#include "sembed/semb.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sembed_convert_params {
    const char *src;   /* folder or file (required) */
    const char *out;   /* destination .semb path (required) */
    /* Weight dtype: SEMBED_DTYPE_F32 (default: exact), F16, BF16 (matrices in that dtype, 1-D
     * tensors f32), or Q8_ROW (Linear weights int8 with one f32 scale per output row; word
     * embeddings f16; other embeddings, LayerNorms and biases f32). Int8 weights imported from a
     * quantized ONNX graph stay int8 whatever this says. */
    enum sembed_dtype dtype;
    const char *pooling; /* NULL: what the source declares; else cls, cls_before_pooler, mean, max,
                            first_last_avg */
    int normalize;       /* -1: what the source declares; 0: off; 1: L2-normalize embeddings */
    const char *name;    /* general.name; NULL: derived from the source folder or file name */
    bool keep_mlm_head;  /* keep cls.predictions.* (the trainer's MLM loss uses it) */
    int64_t created;     /* general.created as Unix seconds; -1: now */
    /* Progress (may be NULL): bytes of tensor data written so far, of total. */
    void (*progress)(uint64_t done, uint64_t total, void *user_data);
    void *progress_user_data;
};

SEMBED_API struct sembed_convert_params sembed_convert_default_params(void);

/* Convert params->src into params->out. */
SEMBED_API int sembed_convert(const struct sembed_convert_params *params);

#ifdef __cplusplus
}
#endif
#endif /* SEMBED_CONVERT_H */
