// `sembed export`: placeholder until its issue lands.
#include "tools/cli.h"

int cmd_export(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(CLI_FAIL, "export", "not implemented yet");
}
