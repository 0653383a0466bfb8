// libFuzzer target for the safetensors reader: parse, then touch every tensor's bytes (ASan
// catches any pointer the parser let escape the buffer).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "sembed/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    struct sf_file f;
    if (sf_parse(data, size, "fuzz", &f) != 0) return 0;
    volatile uint8_t acc = 0;
    for (size_t i = 0; i < f.n; i++) {
        const uint8_t *p = f.t[i].data;
        if (f.t[i].nbytes) acc ^= p[0] ^ p[f.t[i].nbytes - 1];
    }
    (void)acc;
    sf_free(&f);
    return 0;
}
