// The state dict every importer fills (convert/source.h): a growable tensor list plus the
// mappings and buffers the tensors borrow from, released together.
#define _POSIX_C_SOURCE 200809L
#include "convert/source.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "formats/log.h"

int sc_source_add(struct sc_source *src, const char *name, enum sembed_dtype dtype, uint32_t n_dims,
                  const int64_t *dims, const void *data, void *owned) {
    SEMBED_ASSERT(src && name);
    if (n_dims < 1 || n_dims > SEMBED_MAX_DIMS) {
        free(owned);
        return sembed_fail(SEMBED_EDIMS, "sembed_convert", "tensor '%s': %u dims (expected 1..%d)", name,
                           n_dims, SEMBED_MAX_DIMS);
    }
    if (sc_source_find(src, name)) {
        free(owned);
        return sembed_fail(SEMBED_EDUPLICATE, "sembed_convert", "tensor '%s' appears twice in the source", name);
    }
    if (src->n == src->cap) {
        size_t cap = src->cap ? src->cap * 2 : 64;
        struct sc_tensor *t = realloc(src->t, cap * sizeof *t);
        if (!t) { free(owned); return SEMBED_ENOMEM; }
        src->t = t;
        src->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) { free(owned); return SEMBED_ENOMEM; }
    struct sc_tensor *t = &src->t[src->n++];
    memset(t, 0, sizeof *t);
    t->name = copy;
    t->dtype = dtype;
    t->n_dims = n_dims;
    for (uint32_t i = 0; i < SEMBED_MAX_DIMS; i++) t->dims[i] = i < n_dims ? dims[i] : 1;
    t->data = data;
    t->owned = owned;
    return SEMBED_OK;
}

int sc_source_keep(struct sc_source *src, void *ptr, size_t size) {
    SEMBED_ASSERT(src);
    if (!ptr) return SEMBED_OK;
    int cap = (int)(sizeof src->mappings / sizeof src->mappings[0]);
    if (src->n_mappings >= cap) {
        if (size) munmap(ptr, size); else free(ptr);
        return sembed_fail(SEMBED_ETOOLONG, "sembed_convert", "more than %d source files or buffers", cap);
    }
    src->mappings[src->n_mappings] = ptr;
    src->mapping_sizes[src->n_mappings] = size;
    src->n_mappings++;
    return SEMBED_OK;
}

struct sc_tensor *sc_source_find(struct sc_source *src, const char *name) {
    if (!src || !name) return NULL;
    for (size_t i = 0; i < src->n; i++)
        if (!strcmp(src->t[i].name, name)) return &src->t[i];
    return NULL;
}

void sc_source_free(struct sc_source *src) {
    if (!src) return;
    for (size_t i = 0; i < src->n; i++) {
        free(src->t[i].name);
        free(src->t[i].owned);
    }
    free(src->t);
    for (int i = 0; i < src->n_mappings; i++) {
        if (src->mapping_sizes[i]) munmap(src->mappings[i], src->mapping_sizes[i]);
        else free(src->mappings[i]);
    }
    memset(src, 0, sizeof *src);
}
