/*
 * sembed/info.h: which kernel path this process runs, for callers that cannot include the
 * internal kernel table (bindings, servers, `--version`-style reports).
 *
 *     printf("kernels: %s (best %s)\n", sembed_kernel_isa(), sembed_kernel_isa_best());
 */
#ifndef SEMBED_INFO_H
#define SEMBED_INFO_H

#include "sembed/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The kernel path in use: the best the CPU and OS support, capped by SEMBED_ISA ("ref", "avx2",
 * "avx512", "avxvnni", "avx512vnni", "amx"). Static string, never NULL. */
SEMBED_API const char *sembed_kernel_isa(void);
/* The best path the CPU and OS support, ignoring SEMBED_ISA. */
SEMBED_API const char *sembed_kernel_isa_best(void);

#ifdef __cplusplus
}
#endif
#endif /* SEMBED_INFO_H */
