// `sembed analyze`: placeholder until its issue lands.
#include "tools/cli.h"

int cmd_analyze(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(CLI_FAIL, "analyze", "not implemented yet");
}
