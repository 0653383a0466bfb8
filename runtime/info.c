// runtime/info.c: sembed/info.h over the kernel dispatch (runtime/kernels/kernels.h).
#include "sembed/info.h"

#include "runtime/kernels/kernels.h"

const char *sembed_kernel_isa(void) { return sk_isa_name(sk_isa_active()); }
const char *sembed_kernel_isa_best(void) { return sk_isa_name(sk_isa_best()); }
