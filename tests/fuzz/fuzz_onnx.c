// libFuzzer target for the ONNX reader and graph matcher: protobuf-c unpack into the bounded
// arena, tensor resolution and BERT pattern matching, all on hostile bytes. External data is
// refused in memory mode, so the fuzzer never touches the file system.
#include <stdint.h>
#include <string.h>

#include "convert/onnx_import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    struct sc_source src;
    memset(&src, 0, sizeof src);
    sc_onnx_load_memory(data, size, &src);
    sc_source_free(&src);
    return 0;
}
