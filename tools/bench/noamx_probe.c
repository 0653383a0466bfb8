// noamx_probe: shows whether this process may use AMX tiles and whether noamx.so intercepts the
// request. Asks for tile permission through syscall(SYS_arch_prctl, ...) and through glibc's
// arch_prctl() wrapper, then reads back the granted feature mask (ARCH_GET_XCOMP_PERM).
// Prints one JSON object. tools/bench/run.py --check-noamx runs it with and without the shim.
//
// Build: cc -O2 -o noamx_probe tools/bench/noamx_probe.c -ldl
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_GET_XCOMP_PERM_ 0x1022
#define ARCH_REQ_XCOMP_PERM_ 0x1023
#define XFEATURE_XTILEDATA_ 18

int main(void) {
    unsigned a, b, c, d;
    int amx = 0;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        amx = (d >> 24) & 1 && (d >> 25) & 1; // AMX-TILE, AMX-INT8 (Intel SDM, CPUID leaf 7 EDX)
    }
    errno = 0;
    long rs = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM_, XFEATURE_XTILEDATA_);
    int es = rs ? errno : 0;
    int (*wrap)(int, unsigned long);
    *(void **)&wrap = dlsym(RTLD_DEFAULT, "arch_prctl"); // POSIX idiom: stays ISO C
    int rw = -2, ew = 0;
    if (wrap) {
        errno = 0;
        rw = wrap(ARCH_REQ_XCOMP_PERM_, XFEATURE_XTILEDATA_);
        ew = rw ? errno : 0;
    }
    unsigned long mask = 0;
    long rg = syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM_, &mask);
    long (*count)(void);
    *(void **)&count = dlsym(RTLD_DEFAULT, "noamx_refused_count");
    printf("{\"cpu_amx\": %s, \"syscall_rc\": %ld, \"syscall_errno\": \"%s\", \"wrapper_rc\": %d, "
           "\"wrapper_errno\": \"%s\", \"perm_mask\": \"0x%lx\", \"tiledata_permitted\": %s, "
           "\"shim_loaded\": %s, \"shim_refused\": %ld}\n",
           amx ? "true" : "false", rs, es ? strerror(es) : "", rw, ew ? strerror(ew) : "", rg == 0 ? mask : 0ul,
           rg == 0 && (mask >> XFEATURE_XTILEDATA_) & 1 ? "true" : "false", count ? "true" : "false",
           count ? count() : 0L);
    return 0;
}
