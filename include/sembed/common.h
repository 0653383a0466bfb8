/*
 * sembed/common.h: status codes, logging and version, shared by every sembed header.
 *
 * Contract: every fallible call returns int: 0 (SEMBED_OK) on success, a negative SEMBED_E*
 * code on failure. sembed_strerror() turns a code into a short static English phrase. Details
 * (file, offset, tensor name, expected vs found) go to the log callback, prefixed with the
 * function name, e.g. "sembed_file_open: tensor 'x' offset 96 is past the end of the data (64)".
 *
 *     static void on_log(enum sembed_log_level lvl, const char *msg, void *ud) {
 *         fprintf(stderr, "%s\n", msg);
 *     }
 *     sembed_log_set(on_log, NULL);
 */
#ifndef SEMBED_COMMON_H
#define SEMBED_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SEMBED_BUILDING_LIBRARY)
#define SEMBED_API __attribute__((visibility("default")))
#else
#define SEMBED_API
#endif

/* X-macro list: (name, value, message). One list generates the enum and sembed_strerror(). */
#define SEMBED_ERRORS(X)                                                                  \
    X(SEMBED_OK, 0, "success")                                                            \
    X(SEMBED_ENOMEM, -1, "out of memory")                                                 \
    X(SEMBED_EIO, -2, "input/output error")                                               \
    X(SEMBED_EINVAL, -3, "invalid argument")                                              \
    X(SEMBED_ENOTFOUND, -4, "not found")                                                  \
    X(SEMBED_ETYPE, -5, "wrong type")                                                     \
    X(SEMBED_EMAGIC, -6, "not a sembed model file (bad magic)")                           \
    X(SEMBED_EVERSION, -7, "unsupported format version")                                  \
    X(SEMBED_EBYTEORDER, -8, "unsupported byte order")                                    \
    X(SEMBED_ETRUNCATED, -9, "file is truncated")                                         \
    X(SEMBED_ECHECKSUM, -10, "checksum mismatch")                                         \
    X(SEMBED_EBOUNDS, -11, "offset or size out of bounds")                                \
    X(SEMBED_EALIGN, -12, "misaligned tensor data")                                       \
    X(SEMBED_EOVERLAP, -13, "overlapping tensor data")                                    \
    X(SEMBED_EDUPLICATE, -14, "duplicate name")                                           \
    X(SEMBED_EDTYPE, -15, "unknown or unsupported data type")                             \
    X(SEMBED_EDIMS, -16, "invalid tensor shape")                                          \
    X(SEMBED_EUTF8, -17, "invalid UTF-8")                                                 \
    X(SEMBED_ECORRUPT, -18, "corrupt or malformed data")                                  \
    X(SEMBED_EUNSUPPORTED, -19, "unsupported feature")                                    \
    X(SEMBED_EUNSAFE, -20, "refused unsafe content")                                      \
    X(SEMBED_EPARSE, -21, "parse error")                                                  \
    X(SEMBED_ETOOLONG, -22, "input too long")                                             \
    X(SEMBED_ESTATE, -23, "call out of order")                                            \
    X(SEMBED_EARCH, -24, "unsupported model architecture")                                \
    X(SEMBED_EMISSING, -25, "required item missing")

enum sembed_status {
#define SEMBED_X_ENUM(name, value, msg) name = value,
    SEMBED_ERRORS(SEMBED_X_ENUM)
#undef SEMBED_X_ENUM
};

/* Static message for a status code; "unknown error" for codes not in the list. Never NULL. */
SEMBED_API const char *sembed_strerror(int status);

enum sembed_log_level { SEMBED_LOG_DEBUG = 0, SEMBED_LOG_INFO = 1, SEMBED_LOG_WARN = 2, SEMBED_LOG_ERROR = 3 };

typedef void (*sembed_log_fn)(enum sembed_log_level level, const char *msg, void *user_data);

/* Process-wide log sink (like llama_log_set). NULL restores the default, which prints WARN and
 * ERROR to stderr. Set it once, before other threads call into sembed. */
SEMBED_API void sembed_log_set(sembed_log_fn fn, void *user_data);

/* Library version, e.g. "0.1.0". */
SEMBED_API const char *sembed_version(void);

#ifdef __cplusplus
}
#endif
#endif /* SEMBED_COMMON_H */
