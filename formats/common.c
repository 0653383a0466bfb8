// Status strings, the log sink, version.
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "formats/log.h"
#include "sembed/common.h"

#ifndef SEMBED_VERSION_STRING
#define SEMBED_VERSION_STRING "0.0.0"
#endif

SEMBED_API const char *sembed_strerror(int status) {
    switch (status) {
#define SEMBED_X_CASE(name, value, msg) case value: return msg;
        SEMBED_ERRORS(SEMBED_X_CASE)
#undef SEMBED_X_CASE
    }
    return "unknown error";
}

SEMBED_API const char *sembed_version(void) { return SEMBED_VERSION_STRING; }

struct log_sink {
    sembed_log_fn fn;
    void *user_data;
};
static _Atomic(struct log_sink *) g_sink;
static struct log_sink g_sink_storage[2];
static atomic_int g_sink_slot;

SEMBED_API void sembed_log_set(sembed_log_fn fn, void *user_data) {
    if (!fn) { atomic_store(&g_sink, NULL); return; }
    int slot = atomic_fetch_add(&g_sink_slot, 1) & 1;
    g_sink_storage[slot].fn = fn;
    g_sink_storage[slot].user_data = user_data;
    atomic_store(&g_sink, &g_sink_storage[slot]);
}

static void vlog(enum sembed_log_level level, const char *func, const char *fmt, va_list ap) {
    char msg[1024];
    int n = snprintf(msg, sizeof msg, "%s: ", func);
    if (n < 0 || (size_t)n >= sizeof msg) n = 0;
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    struct log_sink *s = atomic_load(&g_sink);
    if (s && s->fn) s->fn(level, msg, s->user_data);
    else if (level >= SEMBED_LOG_WARN) fprintf(stderr, "sembed: %s\n", msg);
}

void sembed_logf(enum sembed_log_level level, const char *func, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(level, func, fmt, ap);
    va_end(ap);
}

int sembed_fail(int status, const char *func, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vlog(SEMBED_LOG_ERROR, func, fmt, ap);
    va_end(ap);
    return status;
}

_Noreturn void sembed_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "sembed: %s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}
