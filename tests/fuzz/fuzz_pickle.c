// libFuzzer target for the restricted unpickler (input: a data.pkl).
#include <stdint.h>
#include <stdlib.h>

#include "formats/pickle.h"
#include "sembed/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    struct sp_state_dict sd;
    if (sp_load_state_dict(data, size, "fuzz", &sd) == 0) sp_free(&sd);
    return 0;
}
