// formats/semb_internal.h: pieces of the .semb reader and writer shared between them (internal).
#ifndef SEMBED_SEMB_INTERNAL_H
#define SEMBED_SEMB_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include "sembed/semb.h"

#define SEMB_MAGIC "SEMB"
#define SEMB_BYTE_ORDER_MARK 0x01020304u
#define SEMB_FIXED_HEADER 56u
#define SEMB_MAX_NAME 255u
#define SEMB_MAX_DIM (1ull << 40)

// Byte size of one scalar of a metadata type; 0 for string/array/invalid.
size_t semb_type_size(uint32_t t);

static inline uint64_t semb_align64(uint64_t x) { return (x + (SEMBED_ALIGNMENT - 1)) & ~(uint64_t)(SEMBED_ALIGNMENT - 1); }

static inline uint32_t semb_rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t semb_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t semb_rd64(const uint8_t *p) { return (uint64_t)semb_rd32(p) | (uint64_t)semb_rd32(p + 4) << 32; }
static inline void semb_wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void semb_wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void semb_wr64(uint8_t *p, uint64_t v) { semb_wr32(p, (uint32_t)v); semb_wr32(p + 4, (uint32_t)(v >> 32)); }

// Key syntax of docs/format.md: 1..255 bytes of [a-z0-9_.] with at least one dot.
int semb_key_valid(const char *key, size_t len);
// True if s[0..n) is valid UTF-8 (no surrogates, no overlongs) without NUL bytes.
int semb_utf8_valid(const uint8_t *s, size_t n);

#endif
