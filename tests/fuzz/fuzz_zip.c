// libFuzzer target for the zip reader: open, then extract every member (bounded to 1 MiB each).
#include <stdint.h>
#include <stdlib.h>

#include "formats/zip.h"
#include "sembed/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    struct sz_archive z;
    if (sz_open(data, size, "fuzz", &z) != 0) return 0;
    for (size_t i = 0; i < z.n; i++) {
        const void *d;
        size_t n;
        void *owned;
        if (sz_extract(&z, i, 1u << 20, &d, &n, &owned) == 0) free(owned);
    }
    sz_close(&z);
    return 0;
}
