// noamx.so: an LD_PRELOAD shim that refuses AMX tile permission, so that a peer which asks Linux
// for it (ONNX Runtime's MLAS does, before using AMX int8 kernels) falls back to its non-AMX path
// (AVX512-VNNI on a Sapphire Rapids-class CPU). Used by tools/bench/run.py for "ort-int8-noamx".
//
// Linux grants AMX tile data per process through arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023,
// XFEATURE_XTILEDATA = 18) (Documentation/arch/x86/xstate.rst); until it is granted, executing a
// tile instruction faults. Programs reach it two ways, both intercepted here:
//   - glibc's arch_prctl() wrapper (glibc >= 2.35 exports it);
//   - the generic syscall(SYS_arch_prctl, ...) wrapper, which is what libonnxruntime imports
//     (`nm -D libonnxruntime.so.1` lists syscall, not arch_prctl).
// Both return -1 with errno = EPERM for that request only; every other call passes through.
// Inline `syscall` instructions cannot be intercepted this way (ORT has none for this request).
//
// NOAMX_LOG=1 prints one line per refused request to stderr, so the harness can tell whether the
// peer asked at all (on CPUs without AMX it never does, and the shim changes nothing).
//
// Build: cc -O2 -shared -fPIC -o noamx.so tools/bench/noamx.c -ldl
// Use:   LD_PRELOAD=$PWD/noamx.so NOAMX_LOG=1 node tools/bench/ort_bench.js ...
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NOAMX_ARCH_REQ_XCOMP_PERM 0x1023
#define NOAMX_XFEATURE_XTILEDATA 18

// The interposed libc entry points, and a counter the harness's probe reads (dlsym) to check the
// shim is loaded. dlsym results are stored through a void * (POSIX dlsym rationale) so the code
// stays ISO C.
long noamx_refused_count(void);
int arch_prctl(int code, unsigned long addr);

static long g_refused;

static int refuse(long code, unsigned long feature) {
    return code == NOAMX_ARCH_REQ_XCOMP_PERM && feature == NOAMX_XFEATURE_XTILEDATA;
}

static void note(const char *via) {
    __atomic_add_fetch(&g_refused, 1, __ATOMIC_RELAXED);
    const char *log = getenv("NOAMX_LOG");
    if (log && *log && *log != '0') {
        char msg[160];
        int n = snprintf(msg, sizeof msg, "noamx: refused arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) via %s, pid %ld\n",
                         via, (long)getpid());
        if (n > 0) (void)!write(2, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    }
}

long noamx_refused_count(void) { return __atomic_load_n(&g_refused, __ATOMIC_RELAXED); }

typedef long (*syscall_fn)(long, ...);
typedef int (*arch_prctl_fn)(int, unsigned long);

long syscall(long number, ...) {
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long); // the x86-64 wrapper always reads six
    va_end(ap);
#ifdef SYS_arch_prctl
    if (number == SYS_arch_prctl && refuse(a[0], (unsigned long)a[1])) {
        note("syscall()");
        errno = EPERM;
        return -1;
    }
#endif
    static syscall_fn real;
    syscall_fn f = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (!f) {
        *(void **)&f = dlsym(RTLD_NEXT, "syscall");
        if (!f) { errno = ENOSYS; return -1; }
        __atomic_store_n(&real, f, __ATOMIC_RELEASE);
    }
    return f(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int arch_prctl(int code, unsigned long addr) {
    if (refuse(code, addr)) {
        note("arch_prctl()");
        errno = EPERM;
        return -1;
    }
    static arch_prctl_fn real;
    arch_prctl_fn f = __atomic_load_n(&real, __ATOMIC_ACQUIRE);
    if (!f) {
        *(void **)&f = dlsym(RTLD_NEXT, "arch_prctl");
        if (!f) {
#ifdef SYS_arch_prctl
            // glibc < 2.35 has no wrapper: go to the kernel through the real syscall()
            return (int)syscall(SYS_arch_prctl, (long)code, (long)addr);
#else
            errno = ENOSYS;
            return -1;
#endif
        }
        __atomic_store_n(&real, f, __ATOMIC_RELEASE);
    }
    return f(code, addr);
}
