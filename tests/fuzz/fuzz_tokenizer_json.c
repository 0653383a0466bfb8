// libFuzzer target for tokenizer.json parsing (runtime/tokenizer/hf_json.c) and, when a file
// parses, for encoding with it: a few fixed texts, a pair with truncation, and the input itself as
// text (ASan/UBSan catch any out-of-bounds access or overflow the parser or pipeline let through).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sembed/common.h"
#include "sembed/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    struct sembed_tokenizer *t = NULL;
    if (sembed_tokenizer_from_hf_json((const char *)data, size, 0, &t) != 0) return 0;
    char desc[512];
    sembed_tokenizer_describe(t, desc, sizeof desc);
    if (strlen(desc) >= sizeof desc || sembed_tokenizer_vocab_size(t) == 0) abort(); // a parsed tokenizer has ids
    static const char *const texts[] = {"", " ", "Hello, world! <s> </s> [CLS] 123", "  a  \xe2\x96\x81 b\tc\n",
                                        "Caf\xc3\xa9 e\xcc\x81 \xef\xac\x81 \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac", "\xff\xfe\x80 bad"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        struct sembed_encoding e;
        if (sembed_tokenizer_encode_full(t, texts[i], SIZE_MAX, NULL, 0, true, 0, SEMBED_TRUNCATE_LONGEST_FIRST, &e, NULL) == 0) {
            for (size_t k = 0; k < e.n; k++) (void)sembed_tokenizer_token(t, e.ids[k]);
            sembed_encoding_free(&e);
        }
    }
    struct sembed_encoding e;
    if (sembed_tokenizer_encode_full(t, texts[2], SIZE_MAX, texts[4], SIZE_MAX, true, 8, SEMBED_TRUNCATE_LONGEST_FIRST, &e, NULL) == 0)
        sembed_encoding_free(&e);
    size_t n = size < 512 ? size : 512;
    if (sembed_tokenizer_encode_full(t, (const char *)data, n, NULL, 0, true, 0, SEMBED_TRUNCATE_LONGEST_FIRST, &e, NULL) == 0)
        sembed_encoding_free(&e);
    sembed_tokenizer_free(t);
    return 0;
}
