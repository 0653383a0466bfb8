// libFuzzer target for the .semb reader and the tokenizer built on a file (tokenizer.* keys and
// the prebuilt tokenizer.index.*, used in place). The harness repairs the header checksum when the
// directory bounds allow it, so mutations reach the parser instead of dying at the checksum.
// A file that opens and has a tokenizer.vocab also goes through the index writer from a real file
// (sembed_file_add_tokenizer_index in a scratch folder, /dev/shm when there is one): the rewritten
// file must open and its fresh index must verify, or the target aborts (a writer/verifier bug).
// Seeds: tests/fuzz/corpus/semb/, plus tests/fuzz/seeds/gen_semb.py (tokenizer keys with and
// without an index, and malformed indexes).
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "sembed/semb.h"
#include "sembed/tokenizer.h"

#include "fuzz_scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

static char g_dir[256], g_in[300], g_out[300];

static void cleanup(void) {
    if (!g_dir[0]) return;
    unlink(g_in);
    unlink(g_out);
    rmdir(g_dir);
}

// A private scratch folder, made once per process and removed at exit.
static int scratch(void) {
    static int state; // 0 untried, 1 ready, -1 unavailable
    if (state) return state > 0;
    state = fuzz_scratch_dir(g_dir, sizeof g_dir, "fuzz_semb") ? 1 : -1;
    if (state < 0) return 0;
    snprintf(g_in, sizeof g_in, "%s/in.semb", g_dir);
    snprintf(g_out, sizeof g_out, "%s/out.semb", g_dir);
    atexit(cleanup);
    return 1;
}

// sembed_file_add_tokenizer_index on the input as a file: what it writes must open and verify.
static void index_round_trip(const uint8_t *buf, size_t size) {
    if (!scratch()) return;
    FILE *fp = fopen(g_in, "wb");
    if (!fp) return;
    size_t put = fwrite(buf, 1, size, fp);
    if (fclose(fp) != 0 || put != size) return;
    if (sembed_file_add_tokenizer_index(g_in, g_out) == 0) {
        struct sembed_file *g = NULL;
        int rc = sembed_file_open(g_out, &g);
        if (rc == 0) rc = sembed_file_verify_tokenizer_index(g);
        sembed_file_free(g);
        if (rc) {
            fprintf(stderr, "fuzz_semb: the index sembed_file_add_tokenizer_index wrote does not %s: %s\n",
                    g ? "verify" : "open", sembed_strerror(rc));
            abort();
        }
    }
    unlink(g_in);
    unlink(g_out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    uint8_t *buf = aligned_alloc(64, (size + 64) / 64 * 64);
    if (!buf) return 0;
    memcpy(buf, data, size);
    int round_trip = 0;
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
            sembed_file_verify_tokenizer_index(f);
            if (sembed_file_find_kv(f, "tokenizer.vocab") >= 0) round_trip = 1;
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
    // After pass 1 buf holds the repaired bytes, which are what opened in either pass.
    if (round_trip && size <= ((size_t)4 << 20)) index_round_trip(buf, size);
    free(buf);
    return 0;
}
