/*
 * sembed/semb.h: the .semb model file: open (mmap + validation), typed metadata, zero-copy
 * tensors, checksum verification, and an atomic streaming writer.
 *
 * Byte-exact spec: docs/format.md. Summary of version 1 (all integers little-endian):
 *
 *   header   "SEMB" | u32 version=1 | u32 byte-order mark 0x01020304 | u32 flags=0
 *            | u64 n_kv | u64 n_tensors | u64 dir_end | u64 data_offset | u64 data_size
 *   kv[n_kv]       string key | u32 type | value
 *   tensor[n]      string name | u32 dtype | u32 n_dims | u64 dims[n_dims] | u64 offset
 *                  | u64 nbytes | u64 xxh3_64(tensor bytes)
 *   u64 xxh3_64 of bytes [0, dir_end)      (dir_end = where this checksum starts)
 *   zero padding up to data_offset (a multiple of 64)
 *   data region of data_size bytes, ending exactly at the end of the file; every tensor offset
 *   (relative to data_offset) is a multiple of 64.
 *   string = u64 n | n bytes of UTF-8 without NUL | one 0x00 byte   (so strings are zero-copy C strings)
 *
 * Reading:
 *     struct sembed_file *f;
 *     int rc = sembed_file_open("model.semb", &f);            // validates structure, reads no tensor data
 *     if (rc) { fprintf(stderr, "%s\n", sembed_strerror(rc)); return 1; }
 *     uint32_t layers; sembed_file_get_u32(f, "bert.num_layers", &layers);
 *     struct sembed_tensor t;
 *     if (sembed_file_find_tensor(f, "embeddings.word_embeddings.weight", &t) == 0)
 *         use((const float *)t.data, t.dims[0], t.dims[1]);  // zero-copy, 64-byte aligned
 *     sembed_file_free(f);
 *
 * Writing (metadata and tensor declarations first, then the tensor bytes in declaration order):
 *     struct sembed_writer *w;
 *     sembed_writer_create("out.semb", &w);                  // temp file in out.semb's folder
 *     sembed_writer_add_str(w, "general.architecture", "bert");
 *     sembed_writer_add_tensor(w, "x", SEMBED_DTYPE_F32, 2, (int64_t[]){3, 4});
 *     sembed_writer_write(w, data, 48);                      // may be split over several calls
 *     rc = sembed_writer_finish(w);                          // fsync + rename; frees w either way
 *
 * A struct sembed_file is read-only after open and may be shared across threads.
 */
#ifndef SEMBED_SEMB_H
#define SEMBED_SEMB_H

#include <stdbool.h>
#include "sembed/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SEMBED_FORMAT_VERSION 1u
#define SEMBED_ALIGNMENT 64u
#define SEMBED_MAX_DIMS 4

/* Metadata value types. Values are stable on disk: never renumber, only append. */
enum sembed_type {
    SEMBED_TYPE_U8 = 0, SEMBED_TYPE_I8 = 1, SEMBED_TYPE_U16 = 2, SEMBED_TYPE_I16 = 3,
    SEMBED_TYPE_U32 = 4, SEMBED_TYPE_I32 = 5, SEMBED_TYPE_U64 = 6, SEMBED_TYPE_I64 = 7,
    SEMBED_TYPE_F32 = 8, SEMBED_TYPE_F64 = 9, SEMBED_TYPE_BOOL = 10, SEMBED_TYPE_STRING = 11,
    SEMBED_TYPE_ARRAY = 12,
    SEMBED_TYPE_COUNT
};

/* Tensor data types. Stable on disk: never renumber, only append (docs/format.md, "New dtypes").
 * Q8_ROW: a tensor of shape [..., cols] seen as rows x cols (rows = product of the leading dims);
 * bytes = int8 q[rows*cols] row-major, zero padding up to a multiple of 64, then f32 scale[rows];
 * value = q * scale[row]. This is the layout Linear weights [out, in] use after `--dtype q8`. */
enum sembed_dtype {
    SEMBED_DTYPE_F32 = 0, SEMBED_DTYPE_F16 = 1, SEMBED_DTYPE_BF16 = 2, SEMBED_DTYPE_I32 = 3,
    SEMBED_DTYPE_I8 = 4, SEMBED_DTYPE_Q8_ROW = 5,
    SEMBED_DTYPE_COUNT
};

SEMBED_API const char *sembed_type_name(enum sembed_type t);   /* "u32", "string", ... or "?" */
SEMBED_API const char *sembed_dtype_name(enum sembed_dtype t); /* "f32", "q8_row", ... or "?" */
/* Parse a dtype name ("f32", "f16", "bf16", "i32", "i8", "q8_row"); -1 if unknown. */
SEMBED_API int sembed_dtype_from_name(const char *name);
/* Bytes a tensor of this dtype and shape occupies; 0 if the shape is invalid or overflows. */
SEMBED_API uint64_t sembed_dtype_nbytes(enum sembed_dtype t, uint32_t n_dims, const int64_t *dims);

/* ---------------------------------------------------------------- reading */

struct sembed_file;

struct sembed_tensor {
    const char *name;          /* NUL-terminated, points into the mapping */
    enum sembed_dtype dtype;
    uint32_t n_dims;           /* 1..SEMBED_MAX_DIMS */
    int64_t dims[SEMBED_MAX_DIMS]; /* outermost first (PyTorch order); unused dims are 1 */
    uint64_t offset;           /* relative to the data region */
    uint64_t nbytes;
    uint64_t checksum;         /* stored xxh3_64 of the bytes */
    const void *data;          /* zero-copy, 64-byte aligned, read-only */
};

/* Open and mmap a file read-only. Validates everything but tensor bytes: magic, version,
 * byte order, header checksum, every length/offset against the file size, UTF-8, types, dims,
 * dtype, alignment, overlap, duplicate keys and names. Cost does not grow with tensor data size. */
SEMBED_API int sembed_file_open(const char *path, struct sembed_file **out);
/* Same on a caller-owned buffer, which must outlive the file object and be 64-byte aligned for
 * tensor pointers to be aligned (tests and fuzzers use it). No copy is made. */
SEMBED_API int sembed_file_open_memory(const void *buf, size_t len, struct sembed_file **out);
SEMBED_API void sembed_file_free(struct sembed_file *f);

SEMBED_API uint32_t sembed_file_version(const struct sembed_file *f);
SEMBED_API uint64_t sembed_file_size(const struct sembed_file *f);
SEMBED_API uint64_t sembed_file_data_offset(const struct sembed_file *f);

/* Metadata: index access in file order, or lookup by key. */
SEMBED_API int64_t sembed_file_n_kv(const struct sembed_file *f);
SEMBED_API const char *sembed_file_kv_key(const struct sembed_file *f, int64_t i);
SEMBED_API enum sembed_type sembed_file_kv_type(const struct sembed_file *f, int64_t i);
/* For arrays: element type and count. Returns SEMBED_ETYPE if kv i is not an array. */
SEMBED_API int sembed_file_kv_array_info(const struct sembed_file *f, int64_t i, enum sembed_type *elem, uint64_t *count);
/* Index of key, or -1. */
SEMBED_API int64_t sembed_file_find_kv(const struct sembed_file *f, const char *key);

/* Typed getters: SEMBED_ENOTFOUND if the key is absent, SEMBED_ETYPE if its type differs.
 * get_u32/get_i64/get_u64 accept any integer type whose value fits; get_f32 accepts f32 and f64. */
SEMBED_API int sembed_file_get_bool(const struct sembed_file *f, const char *key, bool *out);
SEMBED_API int sembed_file_get_u32(const struct sembed_file *f, const char *key, uint32_t *out);
SEMBED_API int sembed_file_get_i64(const struct sembed_file *f, const char *key, int64_t *out);
SEMBED_API int sembed_file_get_u64(const struct sembed_file *f, const char *key, uint64_t *out);
SEMBED_API int sembed_file_get_f32(const struct sembed_file *f, const char *key, float *out);
SEMBED_API int sembed_file_get_f64(const struct sembed_file *f, const char *key, double *out);
/* Zero-copy NUL-terminated string; len may be NULL. */
SEMBED_API int sembed_file_get_str(const struct sembed_file *f, const char *key, const char **s, uint64_t *len);
/* Arrays of numbers/bools: pointer to the packed little-endian elements (may be unaligned:
 * copy with memcpy). Arrays of strings: use sembed_file_get_arr_str. */
SEMBED_API int sembed_file_get_arr(const struct sembed_file *f, const char *key, enum sembed_type *elem,
                                   uint64_t *count, const void **data);
SEMBED_API int sembed_file_get_arr_str(const struct sembed_file *f, const char *key, uint64_t i,
                                       const char **s, uint64_t *len);
/* Element i of the string array at metadata index kv (from sembed_file_find_kv): O(1), for
 * walking large arrays such as tokenizer.vocab without a key lookup per element. The first
 * element lookup in an array indexes it (16 bytes per element, kept until sembed_file_free; safe
 * from concurrent threads); SEMBED_ENOMEM if that fails. */
SEMBED_API int sembed_file_kv_arr_str(const struct sembed_file *f, int64_t kv, uint64_t i, const char **s, uint64_t *len);
/* Elements of the array at metadata index kv exactly as stored (docs/format.md), zero-copy: packed
 * little-endian numbers, or for strings each `u64 n | n bytes | 0x00` back to back (validated at
 * open). *nbytes is their total size. SEMBED_ETYPE if kv is not an array. */
SEMBED_API int sembed_file_kv_arr_bytes(const struct sembed_file *f, int64_t kv, const void **data, uint64_t *nbytes);
/* Scalar value of kv i as raw bytes (numbers/bools; little-endian, possibly unaligned). */
SEMBED_API const void *sembed_file_kv_data(const struct sembed_file *f, int64_t i);

/* Tensors. */
SEMBED_API int64_t sembed_file_n_tensors(const struct sembed_file *f);
SEMBED_API int sembed_file_tensor(const struct sembed_file *f, int64_t i, struct sembed_tensor *out);
SEMBED_API int sembed_file_find_tensor(const struct sembed_file *f, const char *name, struct sembed_tensor *out);

/* Recompute the checksum of tensor i: 0 if it matches, SEMBED_ECHECKSUM if not. */
SEMBED_API int sembed_file_verify_tensor(const struct sembed_file *f, int64_t i);
/* Verify every tensor; on mismatch logs each bad tensor by name, stores the first bad index in
 * *first_bad (if non-NULL, -1 when all good) and returns SEMBED_ECHECKSUM. Then checks the
 * tokenizer index as sembed_file_verify_tokenizer_index does: SEMBED_ECORRUPT (with *first_bad
 * -1) when only the index is wrong. */
SEMBED_API int sembed_file_verify(const struct sembed_file *f, int64_t *first_bad);
/* Full check of the optional tokenizer.index.* keys (docs/format.md): rebuilds both tables from
 * tokenizer.vocab and compares them slot by slot. 0 when they match or the file has no index;
 * otherwise logs the key and the first disagreeing slot (with the tokens involved) and returns
 * SEMBED_ECORRUPT (or the status of a malformed key). Cost: one pass over the vocabulary. */
SEMBED_API int sembed_file_verify_tokenizer_index(const struct sembed_file *f);
/* Hint that bytes [p, p + n) of a mapped file will not be read soon (e.g. weights a runtime has
 * copied into its own layout): their pages leave the process's resident set and come back from
 * the page cache if read again. Contents never change. No-op for files opened from memory. */
SEMBED_API void sembed_file_release(const struct sembed_file *f, const void *p, size_t n);

/* ---------------------------------------------------------------- writing */

struct sembed_writer;

/* Start writing path. Data goes to a temporary file in the same folder; path itself is only
 * replaced by sembed_writer_finish(). */
SEMBED_API int sembed_writer_create(const char *path, struct sembed_writer **out);

/* Metadata (any order, before the first sembed_writer_write). Keys are namespaced ASCII
 * ("general.name"); a duplicate key is SEMBED_EDUPLICATE. Values are copied. */
SEMBED_API int sembed_writer_add_scalar(struct sembed_writer *w, const char *key, enum sembed_type t, const void *value);
SEMBED_API int sembed_writer_add_u32(struct sembed_writer *w, const char *key, uint32_t v);
SEMBED_API int sembed_writer_add_u64(struct sembed_writer *w, const char *key, uint64_t v);
SEMBED_API int sembed_writer_add_i64(struct sembed_writer *w, const char *key, int64_t v);
SEMBED_API int sembed_writer_add_f32(struct sembed_writer *w, const char *key, float v);
SEMBED_API int sembed_writer_add_f64(struct sembed_writer *w, const char *key, double v);
SEMBED_API int sembed_writer_add_bool(struct sembed_writer *w, const char *key, bool v);
SEMBED_API int sembed_writer_add_str(struct sembed_writer *w, const char *key, const char *v);
/* Array of numbers/bools: count packed elements of type elem (host byte order, little-endian). */
SEMBED_API int sembed_writer_add_arr(struct sembed_writer *w, const char *key, enum sembed_type elem,
                                     const void *items, uint64_t count);
SEMBED_API int sembed_writer_add_arr_str(struct sembed_writer *w, const char *key,
                                         const char *const *items, uint64_t count);
/* Copy metadata entry i of f (key, type and value) as it is. */
SEMBED_API int sembed_writer_copy_kv(struct sembed_writer *w, const struct sembed_file *f, int64_t i);
/* Declare every tensor of f, in its order, and write their bytes (after all metadata; no other
 * tensor may be declared before or after). */
SEMBED_API int sembed_writer_copy_tensors(struct sembed_writer *w, const struct sembed_file *f);
/* The tokenizer index (tokenizer.index.offsets/all/cont, docs/format.md): WordPiece's two lookup
 * tables prebuilt, so sembed_model_load uses them in place instead of building them. vocab must
 * be exactly what tokenizer.vocab holds and continuing_prefix what tokenizer.continuing_prefix
 * holds (NULL: the key is absent, which means "##"). SEMBED_ETOOLONG if the vocabulary's strings
 * exceed 4 GiB (the file is then valid without an index). */
SEMBED_API int sembed_writer_add_tokenizer_index(struct sembed_writer *w, const char *const *vocab, uint64_t n,
                                                 const char *continuing_prefix);
/* Rewrite the model file in_path as out_path (atomically; they may be the same path) with a
 * freshly built tokenizer index replacing any it has: every other key and every tensor unchanged.
 * How a file converted before the index existed gets one without its source checkpoint. */
SEMBED_API int sembed_file_add_tokenizer_index(const char *in_path, const char *out_path);

/* Declare a tensor (before the first sembed_writer_write). Its bytes come later, in order. */
SEMBED_API int sembed_writer_add_tensor(struct sembed_writer *w, const char *name, enum sembed_dtype dtype,
                                        uint32_t n_dims, const int64_t *dims);
/* Append bytes of the declared tensors, in declaration order; a call may span tensors. */
SEMBED_API int sembed_writer_write(struct sembed_writer *w, const void *data, size_t nbytes);
/* Check that every declared byte was written, patch checksums, fsync, rename onto the
 * destination, fsync the folder. Frees w whatever the result; on failure the temp file is removed
 * and the destination is untouched. */
SEMBED_API int sembed_writer_finish(struct sembed_writer *w);
/* Abandon: remove the temp file, free w. NULL is a no-op. */
SEMBED_API void sembed_writer_free(struct sembed_writer *w);

#ifdef __cplusplus
}
#endif
#endif /* SEMBED_SEMB_H */
