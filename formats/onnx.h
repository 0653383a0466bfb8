/*
 * formats/onnx.h: ONNX model files (protobuf, onnx/onnx.proto) read safely (internal).
 *
 * so_onnx_open() maps the file, unpacks it with protobuf-c into one bounded arena (the allocator
 * refuses to grow past 2x the file size + 64 MiB, so a hostile message cannot make the process
 * allocate without bound), and unmaps the file. Every unpacked byte, including raw_data of the
 * initializers, lives in that arena; so_onnx_take_arena() hands it to a longer-lived owner so
 * tensors can be borrowed zero-copy after the model object is gone.
 *
 * so_tensor_get() resolves one TensorProto into a typed, bounds-checked view: raw_data (exact
 * length), typed fields (float_data, int32_data, int64_data; int32_data also carries INT8/UINT8/
 * FLOAT16 one element per int32, as the ONNX spec says), or external data (location relative to
 * the model's folder: absolute paths, ".." components and symlinks leading outside the folder are
 * refused; offset/length checked against the file size).
 *
 *     struct so_onnx *m;
 *     if (so_onnx_open("model.onnx", &m)) return -1;        // details went to the log
 *     Onnx__GraphProto *g = m->model->graph;
 *     for (size_t i = 0; i < g->n_initializer; i++) {
 *         struct so_tensor t;
 *         if (so_tensor_get(m, g->initializer[i], &t) == 0) { use(&t); so_tensor_release(&t); }
 *     }
 *     so_onnx_free(m);
 */
#ifndef SEMBED_FORMATS_ONNX_H
#define SEMBED_FORMATS_ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "onnx_min.pb-c.h"

/* protobuf messages are limited to 2 GiB; bigger ONNX models must use external data. */
#define SO_ONNX_MAX_FILE ((uint64_t)2 << 30)
#define SO_MAX_DIMS 8
/* Largest tensor we accept (elements * element size), and largest single dim. */
#define SO_MAX_TENSOR_BYTES ((uint64_t)1 << 36)
#define SO_MAX_DIM ((int64_t)1 << 40)

/* ONNX TensorProto.DataType values (onnx.proto). */
enum so_dtype {
    SO_FLOAT = 1, SO_UINT8 = 2, SO_INT8 = 3, SO_UINT16 = 4, SO_INT16 = 5, SO_INT32 = 6,
    SO_INT64 = 7, SO_STRING = 8, SO_BOOL = 9, SO_FLOAT16 = 10, SO_DOUBLE = 11, SO_UINT32 = 12,
    SO_UINT64 = 13, SO_BFLOAT16 = 16
};

struct so_onnx {
    Onnx__ModelProto *model;  /* non-NULL, model->graph non-NULL after a successful open */
    char *label;              /* file path (or "<memory>") for messages, heap */
    char *dir;                /* folder of the model file, external data base; NULL: refused */
    void *arena;              /* anonymous mapping that owns every unpacked byte */
    size_t arena_cap;         /* its size (munmap length) */
};

/* Open an .onnx file. Errors: EIO (cannot read), ETOOLONG (over 2 GiB), EPARSE (not a valid
 * ONNX protobuf: truncated or corrupt), ENOMEM (arena limit), EMISSING (no graph). */
int so_onnx_open(const char *path, struct so_onnx **out);
/* Same from memory (fuzzers, tests). dir = base folder for external data, or NULL to refuse it. */
int so_onnx_open_memory(const void *buf, size_t len, const char *dir, const char *label, struct so_onnx **out);
/* Transfer the arena to the caller (munmap(ptr, size) releases it); m keeps pointers into it, so
 * only so_onnx_free(m) may follow, and it will no longer release the arena. */
void so_onnx_take_arena(struct so_onnx *m, void **ptr, size_t *size);
void so_onnx_free(struct so_onnx *m);

struct so_tensor {
    const char *name;         /* may be "" (e.g. Constant attribute tensors) */
    int32_t dtype;            /* enum so_dtype */
    uint32_t n_dims;          /* 0 = scalar */
    int64_t dims[SO_MAX_DIMS];
    uint64_t numel;
    size_t elem_size;
    const void *data;         /* numel * elem_size bytes, little-endian, element-aligned; NULL if numel 0 */
    void *owned;              /* heap buffer behind data (typed fields, external data), or NULL */
};

/* Byte size of one element of an ONNX dtype, 0 for unsupported ones (strings, complex, ...). */
size_t so_dtype_size(int32_t dtype);
const char *so_dtype_name(int32_t dtype);
/* Shape and dtype only, no data touched: validates dims (count, range, overflow). */
int so_tensor_info(const struct so_onnx *m, const Onnx__TensorProto *tp, struct so_tensor *t);
/* Shape, dtype and data. Supported dtypes: FLOAT, FLOAT16, INT8, UINT8, INT32, INT64 (others are
 * SEMBED_EDTYPE naming the tensor). On failure t holds nothing to release. */
int so_tensor_get(const struct so_onnx *m, const Onnx__TensorProto *tp, struct so_tensor *t);
void so_tensor_release(struct so_tensor *t);

/* Attribute lookup on a node: NULL when absent. */
const Onnx__AttributeProto *so_node_attr(const Onnx__NodeProto *n, const char *name);
/* Integer / float attribute or the default when absent or of another type. */
int64_t so_attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt);
float so_attr_float(const Onnx__NodeProto *n, const char *name, float dflt);

#endif
