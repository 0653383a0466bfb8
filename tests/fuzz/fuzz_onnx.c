// libFuzzer target for the ONNX reader and graph matcher: protobuf-c unpack into the bounded
// arena, tensor resolution and BERT pattern matching, all on hostile bytes.
// In memory, external data is refused (no folder to read it from). An input whose in-memory load
// is refused for that reason (SEMBED_EUNSAFE) is loaded again as a file, model/model.onnx in a
// scratch folder (/dev/shm when there is one) made once per process:
//
//     <scratch>/outside.bin            a file outside the model's folder
//     <scratch>/model/weights.bin      64 KiB of float32 0.01 (seeds point their tensors here)
//     <scratch>/model/sub/w.bin        4 KiB of the same
//     <scratch>/model/escape.bin       symlink to ../outside.bin (must be refused: leaves the folder)
//     <scratch>/model/dir.bin          a folder (must be refused: not a regular file)
//
// so the external-data path (location checks, realpath containment, offset/length against the
// file, reads) runs on fuzzed locations, offsets and lengths. Seeds: tests/fuzz/seeds/gen_onnx.py.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/onnx_import.h"

#include "fuzz_scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void quiet(enum sembed_log_level l, const char *m, void *u) { (void)l; (void)m; (void)u; }

static char g_dir[256], g_model[300];
static const char *const FILES[] = {"model/model.onnx", "model/weights.bin", "model/sub/w.bin", "model/escape.bin",
                                    "outside.bin"};
static const char *const DIRS[] = {"model/dir.bin", "model/sub", "model"};

static void at(char *out, size_t cap, const char *name) { snprintf(out, cap, "%s/%s", g_dir, name); }

static void cleanup(void) {
    if (!g_dir[0]) return;
    char p[512];
    for (size_t i = 0; i < sizeof FILES / sizeof *FILES; i++) { at(p, sizeof p, FILES[i]); unlink(p); }
    for (size_t i = 0; i < sizeof DIRS / sizeof *DIRS; i++) { at(p, sizeof p, DIRS[i]); rmdir(p); }
    rmdir(g_dir);
}

static int write_pattern(const char *name, size_t bytes) {
    char p[512];
    at(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    const float v = 0.01f;
    for (size_t i = 0; i < bytes / sizeof v; i++) fwrite(&v, sizeof v, 1, f);
    return fclose(f);
}

static int scratch(void) {
    static int state; // 0 untried, 1 ready, -1 unavailable
    if (state) return state > 0;
    state = fuzz_scratch_dir(g_dir, sizeof g_dir, "fuzz_onnx") ? 1 : -1;
    if (state < 0) return 0;
    atexit(cleanup);
    char p[512];
    for (int i = 2; i >= 0; i--) { at(p, sizeof p, DIRS[i]); mkdir(p, 0700); }
    at(p, sizeof p, "model/escape.bin");
    if (write_pattern("model/weights.bin", 64 << 10) || write_pattern("model/sub/w.bin", 4 << 10) ||
        write_pattern("outside.bin", 4 << 10) || symlink("../outside.bin", p)) {
        state = -1;
        return 0;
    }
    at(g_model, sizeof g_model, "model/model.onnx");
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) { sembed_log_set(quiet, NULL); init = 1; }
    struct sc_source src;
    memset(&src, 0, sizeof src);
    int rc = sc_onnx_load_memory(data, size, &src);
    sc_source_free(&src);
    if (rc == SEMBED_EUNSAFE && scratch()) {
        FILE *f = fopen(g_model, "wb");
        if (!f) return 0;
        size_t put = fwrite(data, 1, size, f);
        if (fclose(f) != 0 || put != size) return 0;
        memset(&src, 0, sizeof src);
        sc_onnx_load(g_model, &src);
        sc_source_free(&src);
        unlink(g_model);
    }
    return 0;
}
