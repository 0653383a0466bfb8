// `sembed embed`: placeholder until its issue lands.
#include "tools/cli.h"

int cmd_embed(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(CLI_FAIL, "embed", "not implemented yet");
}
