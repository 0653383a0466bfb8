// formats/log.h: internal logging used across the library (details of errors go here).
#ifndef SEMBED_LOG_H
#define SEMBED_LOG_H

#include "sembed/common.h"

// Formats "<func>: <message>" and hands it to the log callback.
void sembed_logf(enum sembed_log_level level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SEMBED_LOG_ERR(...) sembed_logf(SEMBED_LOG_ERROR, __func__, __VA_ARGS__)
#define SEMBED_LOG_WARNF(...) sembed_logf(SEMBED_LOG_WARN, __func__, __VA_ARGS__)
#define SEMBED_LOG_INFOF(...) sembed_logf(SEMBED_LOG_INFO, __func__, __VA_ARGS__)
// Log an error detail as coming from an explicit public function name, return status.
int sembed_fail(int status, const char *func, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// Always-on assertion for programmer errors: prints file:line and aborts.
#define SEMBED_ASSERT(x)                                                                  \
    do {                                                                                  \
        if (!(x)) sembed_assert_fail(__FILE__, __LINE__, #x);                             \
    } while (0)
_Noreturn void sembed_assert_fail(const char *file, int line, const char *expr);

#endif
