// ONNX import: placeholder until the ONNX importer lands.
#include "convert/onnx_import.h"
#include "formats/log.h"

int sc_onnx_load(const char *path, struct sc_source *src) {
    (void)src;
    return sembed_fail(SEMBED_EUNSUPPORTED, "sembed_convert", "%s: ONNX import is not built yet", path);
}
