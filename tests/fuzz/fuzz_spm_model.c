// libFuzzer target for SentencePiece .model files (convert/spm.c: protobuf-c unpacking of the
// ModelProto, the checks on pieces and ids, the tokenizer.json built from it with its Precompiled
// charsmap) and, when one converts, for encoding a few texts with the result.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convert/internal.h"
#include "sembed/common.h"
#include "sembed/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    for (int xlmr = 0; xlmr < 2; xlmr++) {
        char *js = NULL;
        if (sc_spm_to_hf_json(data, size, xlmr, "fuzz.model", &js) != 0) continue;
        struct sembed_tokenizer *t = NULL;
        if (sembed_tokenizer_from_hf_json(js, strlen(js), 0, &t) == 0) {
            static const char *const texts[] = {"", "Hello  world", "Caf\xc3\xa9 e\xcc\x81 \xef\xbc\xa1\xcc\x81 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd",
                                                "\xe2\x80\x8b\xce\xb1 a\xcc\x88"};
            for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
                struct sembed_encoding e;
                if (sembed_tokenizer_encode_full(t, texts[i], SIZE_MAX, NULL, 0, true, 0, SEMBED_TRUNCATE_LONGEST_FIRST, &e, NULL) == 0)
                    sembed_encoding_free(&e);
            }
            sembed_tokenizer_free(t);
        }
        free(js);
    }
    return 0;
}
