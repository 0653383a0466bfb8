// libFuzzer target for the .npy reader: parse, then touch the first and last data bytes (ASan
// catches any pointer the parser let escape the buffer).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"
#include "sembed/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    struct npy_array a;
    if (npy_parse(data, size, "fuzz", &a) == 0) {
        size_t nb = (size_t)a.numel * a.itemsize;
        volatile uint8_t acc = 0;
        if (nb) acc ^= ((const uint8_t *)a.data)[0] ^ ((const uint8_t *)a.data)[nb - 1];
        (void)acc;
        if (a.data_offset + nb != size) abort(); // the parser promised an exact length
    }
    (void)npy_f32_matrix(data, size, "fuzz", &a);
    return 0;
}
