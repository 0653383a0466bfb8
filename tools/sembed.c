// sembed: one binary, one subcommand per file in tools/.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sembed/common.h"
#include "tools/cli.h"

struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
};

#define CLI_ENTRY(name, help) {#name, cmd_##name, help},
static const struct command commands[] = {CLI_COMMANDS(CLI_ENTRY)};
#undef CLI_ENTRY

int cli_error(int status, const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "sembed %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return status;
}

static bool g_verbose;
static void log_to_stderr(enum sembed_log_level level, const char *msg, void *ud) {
    (void)ud;
    if (level >= SEMBED_LOG_WARN || (g_verbose && level >= SEMBED_LOG_INFO)) fprintf(stderr, "sembed: %s\n", msg);
}

void cli_install_logger(bool verbose) {
    g_verbose = verbose;
    sembed_log_set(log_to_stderr, NULL);
}

bool cli_stderr_is_tty(void) { return isatty(2) == 1; }

extern void cli_print_version(FILE *out);

static void usage(FILE *out) {
    fprintf(out, "usage: sembed <command> [options]   (sembed <command> --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-11s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\noptions:\n  -h, --help     this text\n  -V, --version  version, CPU features and the kernels in use\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version")) {
        cli_print_version(stdout);
        return CLI_OK;
    }
    cli_install_logger(false);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sembed: unknown command '%s' (try 'sembed --help')\n", cmd);
    return CLI_USAGE;
}
