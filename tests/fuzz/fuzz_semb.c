// libFuzzer target for the .semb reader and the tokenizer built on a file (tokenizer.* keys and
// the prebuilt tokenizer.index.*, used in place). The harness repairs the header checksum when the
// directory bounds allow it, so mutations reach the parser instead of dying at the checksum.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sembed/semb.h"
#include "sembed/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    uint8_t *buf = aligned_alloc(64, (size + 64) / 64 * 64);
    if (!buf) return 0;
    memcpy(buf, data, size);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) { // repaired checksum
            if (size < 56) break;
            uint64_t dir_end;
            memcpy(&dir_end, buf + 32, 8);
            if (dir_end > size - 8 || dir_end < 56) break;
            uint64_t h = XXH3_64bits(buf, (size_t)dir_end);
            memcpy(buf + dir_end, &h, 8);
        }
        struct sembed_file *f = NULL;
        if (sembed_file_open_memory(buf, size, &f) == 0) {
            // touch everything the API exposes
            for (int64_t i = 0; i < sembed_file_n_kv(f); i++) {
                const char *k = sembed_file_kv_key(f, i);
                const char *s;
                uint64_t n = 0;
                enum sembed_type et;
                if (sembed_file_get_arr(f, k, &et, &n, NULL) == 0 && et == SEMBED_TYPE_STRING)
                    for (uint64_t j = 0; j < n && j < 64; j++) sembed_file_get_arr_str(f, k, j, &s, NULL);
                sembed_file_get_str(f, k, &s, NULL);
                double d;
                sembed_file_get_f64(f, k, &d);
                int64_t v;
                sembed_file_get_i64(f, k, &v);
            }
            for (int64_t i = 0; i < sembed_file_n_tensors(f); i++) {
                struct sembed_tensor t;
                sembed_file_tensor(f, i, &t);
                sembed_file_find_tensor(f, t.name, NULL);
            }
            sembed_file_verify(f, NULL);
            // the tokenizer, borrowing the file's vocabulary and index in place: a hostile index
            // may make ids wrong, never a read out of bounds or an endless probe
            struct sembed_tokenizer *t = NULL;
            if (sembed_tokenizer_borrow_file(f, &t) == 0) {
                static const char text[] = "Hello, world! unaffable ##ing caf\xc3\xa9 \xe6\x88\x91 [CLS] xyzzyplugh";
                int32_t ids[64];
                size_t n = 0;
                sembed_tokenizer_encode(t, text, sizeof text - 1, ids, 64, &n);
                for (size_t k = 0; k < n && k < 64; k++) {
                    const char *s = sembed_tokenizer_token(t, ids[k]);
                    if (s) (void)strlen(s);
                }
                sembed_tokenizer_id(t, "[SEP]");
                sembed_tokenizer_free(t);
            }
            sembed_file_free(f);
        }
    }
    free(buf);
    return 0;
}
