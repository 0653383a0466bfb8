// CPU feature detection and the dispatch table. Compiled with no ISA flags: nothing here may
// execute an instruction the CPU lacks.
//
// Facts used (Intel SDM vol. 2A "CPUID", vol. 1 ch. 13 "XSAVE"; Linux Documentation/arch/x86/xstate.rst):
//   leaf 1 ECX: FMA bit 12, OSXSAVE bit 27, AVX bit 28, F16C bit 29
//   leaf 7.0 EBX: AVX2 5, AVX512F 16, AVX512DQ 17, AVX512BW 30, AVX512VL 31
//   leaf 7.0 ECX: AVX512_VNNI 11;  leaf 7.0 EDX: AMX-BF16 22, AMX-TILE 24, AMX-INT8 25
//   leaf 7.1 EAX: AVX-VNNI 4, AVX512_BF16 5
//   XCR0: SSE 1, AVX 2 (YMM), opmask 5, ZMM_Hi256 6, Hi16_ZMM 7, XTILECFG 17, XTILEDATA 18
//   arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18) grants AMX tile data.
#define _GNU_SOURCE // syscall()
#include "runtime/kernels/kernels_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "formats/log.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define SK_X86 1
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static struct sk_cpu g_cpu;
static bool g_amx_perm;
static enum sk_isa g_best, g_active;
static struct sk_kernels g_tables[SK_ISA_COUNT];
static bool g_have[SK_ISA_COUNT];
static _Atomic(const struct sk_kernels *) g_cur;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#ifdef SK_X86
static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0)); // xgetbv, ecx = 0
    return ((uint64_t)hi << 32) | lo;
}

static bool request_amx(void) {
#if defined(__linux__) && defined(SYS_arch_prctl)
    // 0x1023 ARCH_REQ_XCOMP_PERM; 18 XFEATURE_XTILEDATA (asm/prctl.h, not always installed)
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
    return false;
#endif
}

static void detect(struct sk_cpu *c) {
    unsigned a, b, cx, d, max_leaf = __get_cpuid_max(0, NULL);
    if (max_leaf < 1) return;
    __cpuid(1, a, b, cx, d);
    bool osxsave = cx & (1u << 27);
    c->fma = cx & (1u << 12);
    c->f16c = cx & (1u << 29);
    bool avx = cx & (1u << 28);
    uint64_t xcr0 = osxsave ? xgetbv0() : 0;
    c->os_avx = avx && (xcr0 & 0x6) == 0x6;
    c->os_avx512 = c->os_avx && (xcr0 & 0xe0) == 0xe0;
    c->os_amx = (xcr0 & 0x60000) == 0x60000; // completed below by the arch_prctl request
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, cx, d);
        unsigned max_sub = a;
        c->avx2 = b & (1u << 5);
        c->avx512f = b & (1u << 16);
        c->avx512dq = b & (1u << 17);
        c->avx512bw = b & (1u << 30);
        c->avx512vl = b & (1u << 31);
        c->avx512vnni = cx & (1u << 11);
        c->amx_bf16 = d & (1u << 22);
        c->amx_tile = d & (1u << 24);
        c->amx_int8 = d & (1u << 25);
        if (max_sub >= 1) {
            __cpuid_count(7, 1, a, b, cx, d);
            c->avxvnni = a & (1u << 4);
            c->avx512bf16 = a & (1u << 5);
        }
    }
    if (c->os_amx && c->amx_tile && c->amx_int8) c->os_amx = request_amx();
    else c->os_amx = false;
}
#else
static void detect(struct sk_cpu *c) { (void)c; }
#endif

static bool isa_supported(const struct sk_cpu *c, enum sk_isa isa) {
    bool avx2 = c->os_avx && c->avx2 && c->fma && c->f16c;
    bool avx512 = avx2 && c->os_avx512 && c->avx512f && c->avx512bw && c->avx512vl && c->avx512dq;
    switch (isa) {
    case SK_ISA_REF: return true;
    case SK_ISA_AVX2: return avx2;
    case SK_ISA_AVX512: return avx512;
    case SK_ISA_AVXVNNI: return avx2 && c->avxvnni;
    case SK_ISA_AVX512VNNI: return avx512 && c->avx512vnni;
    case SK_ISA_AMX: return avx512 && c->avx512vnni && c->amx_tile && c->amx_int8 && c->os_amx;
    default: return false;
    }
}

// Table for ISA x: the reference, overridden by each lower ISA it includes, then by x itself.
// AVX-VNNI sits on the AVX2 chain (no AVX-512 needed); the others chain through AVX-512.
static bool build_table(struct sk_kernels *t, enum sk_isa isa) {
    sk_fill_ref(t);
    switch (isa) {
    case SK_ISA_REF: return true;
    case SK_ISA_AVX2: return sk_fill_avx2(t);
    case SK_ISA_AVXVNNI: return sk_fill_avx2(t) && sk_fill_avxvnni(t);
    case SK_ISA_AVX512: return sk_fill_avx2(t) && sk_fill_avx512(t);
    case SK_ISA_AVX512VNNI: return sk_fill_avx2(t) && sk_fill_avx512(t) && sk_fill_avx512vnni(t);
    case SK_ISA_AMX: return sk_fill_avx2(t) && sk_fill_avx512(t) && sk_fill_avx512vnni(t) && sk_fill_amx(t);
    default: return false;
    }
}

static void init_once(void) {
    detect(&g_cpu);
    g_amx_perm = g_cpu.os_amx;
    g_best = SK_ISA_REF;
    for (int i = 0; i < SK_ISA_COUNT; i++) {
        g_have[i] = isa_supported(&g_cpu, (enum sk_isa)i) && build_table(&g_tables[i], (enum sk_isa)i);
        g_tables[i].isa = (enum sk_isa)i;
        // Enum order is the preference order. AMX is opt-in (SEMBED_ISA=amx) until its kernel has
        // run on AMX hardware: the machines it was written on have none (docs/kernels.md).
        if (g_have[i] && i != SK_ISA_AMX) g_best = (enum sk_isa)i;
    }
    g_active = g_best;
    const char *env = getenv("SEMBED_ISA");
    if (env && *env) {
        int want = sk_isa_from_name(env);
        if (want < 0) {
            sembed_logf(SEMBED_LOG_WARN, "kernels", "SEMBED_ISA=%s is not one of ref|avx2|avx512|avxvnni|avx512vnni|amx; using %s",
                        env, sk_isa_name(g_best));
        } else if (!g_have[want]) {
            // The best supported path at or below the request (enum order is preference order).
            enum sk_isa got = SK_ISA_REF;
            for (int i = 0; i <= want; i++)
                if (g_have[i]) got = (enum sk_isa)i;
            sembed_logf(SEMBED_LOG_WARN, "kernels", "SEMBED_ISA=%s is not supported by this CPU/OS; using %s", env,
                        sk_isa_name(got));
            g_active = got;
        } else {
            g_active = (enum sk_isa)want;
        }
    }
    atomic_store(&g_cur, &g_tables[g_active]);
}

static void ensure_init(void) { pthread_once(&g_once, init_once); }

const struct sk_cpu *sk_cpu(void) { ensure_init(); return &g_cpu; }
enum sk_isa sk_isa_best(void) { ensure_init(); return g_best; }
enum sk_isa sk_isa_active(void) { ensure_init(); return atomic_load(&g_cur)->isa; }
bool sk_amx_permitted(void) { ensure_init(); return g_amx_perm; }

bool sk_isa_supported(enum sk_isa isa) {
    ensure_init();
    return (unsigned)isa < SK_ISA_COUNT && g_have[isa];
}

const struct sk_kernels *sk_kernels_get(void) {
    ensure_init();
    return atomic_load(&g_cur);
}

const struct sk_kernels *sk_kernels_for(enum sk_isa isa) {
    ensure_init();
    return (unsigned)isa < SK_ISA_COUNT && g_have[isa] ? &g_tables[isa] : NULL;
}

int sk_set_isa_for_testing(enum sk_isa isa) {
    ensure_init();
    if ((unsigned)isa >= SK_ISA_COUNT || !g_have[isa]) return SEMBED_EUNSUPPORTED;
    atomic_store(&g_cur, &g_tables[isa]);
    return SEMBED_OK;
}
