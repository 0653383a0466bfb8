// libFuzzer target for torch.save zips as the converter reads them: zip directory, data.pkl
// through the restricted unpickler, then each tensor's storage member and the bounds of its view
// (sizes, strides, offset against the storage: where issue 20's audit found a wrapped element
// count). Seeds: tests/fuzz/corpus/torch/.
#include <stdint.h>
#include <string.h>

#include "convert/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    struct sc_source src;
    memset(&src, 0, sizeof src);
    sc_torch_load_memory(data, size, &src);
    sc_source_free(&src);
    return 0;
}
