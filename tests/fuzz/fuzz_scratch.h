// tests/fuzz/fuzz_scratch.h: a private scratch folder for fuzz targets whose parsers read files
// (fuzz_onnx's external data, fuzz_semb's index rewrite, fuzz_hf_dir's checkpoint folders). Made
// once per process, in RAM where /dev/shm exists (thousands of writes per second), else $TMPDIR
// or /tmp; each target registers its own atexit clean-up.
#ifndef SEMBED_FUZZ_SCRATCH_H
#define SEMBED_FUZZ_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>

// mkdtemp "BASE/TAG-XXXXXX" into dir[cap] under the first base that works: 1, or 0 (dir = "").
static inline int fuzz_scratch_dir(char *dir, size_t cap, const char *tag) {
    const char *bases[3] = {"/dev/shm", getenv("TMPDIR"), "/tmp"};
    for (int i = 0; i < 3; i++) {
        if (!bases[i] || !*bases[i]) continue;
        snprintf(dir, cap, "%s/%s-XXXXXX", bases[i], tag);
        if (mkdtemp(dir)) return 1;
    }
    dir[0] = 0;
    return 0;
}

#endif
