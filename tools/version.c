// `sembed --version`: version and the git revision built from, CPU features, and the kernel
// path in use.
#include <stdio.h>

#include "runtime/kernels/kernels.h"
#include "sembed/common.h"

// The revision comes from a header written at build time (cmake/sembed_gitrev.cmake); a build
// that does not make it (another build system) says so rather than guessing.
#if defined(__has_include)
#if __has_include("sembed_gitrev.h")
#include "sembed_gitrev.h"
#endif
#endif
#ifndef SEMBED_GIT_REVISION
#define SEMBED_GIT_REVISION "unknown"
#endif

void cli_print_version(FILE *out);

void cli_print_version(FILE *out) {
    const struct sk_cpu *c = sk_cpu();
    fprintf(out, "sembed %s (git %s)\n", sembed_version(), SEMBED_GIT_REVISION);
    fprintf(out, "cpu:%s%s%s%s%s%s%s%s\n", c->avx2 ? " avx2" : "", c->avx512f ? " avx512f" : "",
            c->avx512bw ? " avx512bw" : "", c->avx512vnni ? " avx512vnni" : "", c->avxvnni ? " avxvnni" : "",
            c->avx512bf16 ? " avx512bf16" : "", c->amx_int8 ? " amx-int8" : "", c->amx_bf16 ? " amx-bf16" : "");
    fprintf(out, "kernels: best %s, active %s (SEMBED_ISA caps it)\n", sk_isa_name(sk_isa_best()),
            sk_isa_name(sk_isa_active()));
}
