/*
 * formats/npy.h: strict reader of NumPy .npy arrays (internal), for teacher vectors.
 *
 * Layout (NumPy's format spec, numpy.lib.format / NEP 1): magic "\x93NUMPY", u8 major, u8 minor
 * (1.0: u16 little-endian header length; 2.0 and 3.0: u32), then the header: an ASCII (3.0:
 * UTF-8) Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (n, d), }
 * padded with spaces and ended by '\n', then the data in C order.
 *
 * npy_parse() accepts exactly that: the three keys, each once, in any order, single- or
 * double-quoted; descr a string; fortran_order True or False; shape a tuple of up to NPY_MAX_DIMS
 * non-negative decimal integers (a 1-tuple needs its comma, as in Python); an optional trailing
 * comma; spaces around tokens; nothing after the closing brace but spaces and the final '\n'.
 * Every count is checked for overflow and the data length must equal numel * itemsize exactly.
 * Which dtypes and ranks are usable is the caller's choice (npy_f32_matrix checks '<f4', 2-d,
 * C order). Data is borrowed from the caller's buffer and may be unaligned (read it with memcpy).
 *
 *     struct npy_array a;
 *     if (npy_f32_matrix(buf, len, "teacher.npy", &a) == 0) use(a.dims[0], a.dims[1], a.data);
 */
#ifndef SEMBED_FORMATS_NPY_H
#define SEMBED_FORMATS_NPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_DIMS 8
#define NPY_MAX_HEADER (1u << 20) /* far above any real header (NumPy writes < 200 bytes) */

struct npy_array {
    int major, minor;
    char descr[16];           /* e.g. "<f4" */
    bool fortran_order;
    uint32_t n_dims;
    uint64_t dims[NPY_MAX_DIMS];
    uint64_t numel;
    size_t itemsize;          /* from descr's digits: '<f4' -> 4 */
    size_t data_offset;       /* bytes before the data */
    const void *data;         /* borrowed: buf + data_offset */
};

/* Parse and validate buf[0, len); label names the file in messages. 0 or SEMBED_E*
 * (SEMBED_EPARSE for a malformed header, SEMBED_ECORRUPT for sizes that disagree). */
int npy_parse(const void *buf, size_t len, const char *label, struct npy_array *out);
/* npy_parse, then require a 2-d float32 little-endian C-order array. */
int npy_f32_matrix(const void *buf, size_t len, const char *label, struct npy_array *out);

#endif
