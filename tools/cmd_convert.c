// `sembed convert`: placeholder until its issue lands.
#include "tools/cli.h"

int cmd_convert(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(CLI_FAIL, "convert", "not implemented yet");
}
