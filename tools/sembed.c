// sembed: one binary, one subcommand per file in tools/.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sembed/common.h"
#include "tools/cli.h"
#include "tools/mpi_comm.h"

struct command {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
};

#define CLI_ENTRY(name, help) {#name, cmd_##name, help},
static const struct command commands[] = {CLI_COMMANDS(CLI_ENTRY)};
#undef CLI_ENTRY

// Library errors are held, not printed, so that a failing command prints one line: the CLI's
// reason followed by the first library detail. Warnings (and INFO with -v) print as they come.
static char g_detail[512];
static bool g_verbose;

int cli_error(int status, const char *cmd, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_detail[0] && !strstr(msg, g_detail)) fprintf(stderr, "sembed %s: %s [%s]\n", cmd, msg, g_detail);
    else fprintf(stderr, "sembed %s: %s\n", cmd, msg);
    g_detail[0] = 0;
    return status;
}

static void log_to_stderr(enum sembed_log_level level, const char *msg, void *ud) {
    (void)ud;
    if (level >= SEMBED_LOG_ERROR && !g_verbose) {
        if (!g_detail[0]) snprintf(g_detail, sizeof g_detail, "%s", msg);
        return;
    }
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
        if (!strcmp(cmd, commands[i].name)) {
            // MPI only under mpirun (tools/mpi_comm.h): a plain run never initialises it
            if (cli_mpi_init(&argc, &argv)) return CLI_FAIL;
            int rc = commands[i].fn(argc - 1, argv + 1);
            if (g_detail[0]) fprintf(stderr, "sembed: %s\n", g_detail); // an error nobody reported: never swallow it
            if (rc != CLI_OK) cli_mpi_abort(rc); // the other ranks may be waiting in a collective
            cli_mpi_finalize();
            return rc;
        }
    fprintf(stderr, "sembed: unknown command '%s' (try 'sembed --help')\n", cmd);
    return CLI_USAGE;
}
