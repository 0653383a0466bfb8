// `sembed eval`: placeholder until its issue lands.
#include "tools/cli.h"

int cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(CLI_FAIL, "eval", "not implemented yet");
}
