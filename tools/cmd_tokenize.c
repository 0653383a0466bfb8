// `sembed tokenize`: placeholder until its issue lands.
#include "tools/cli.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(CLI_FAIL, "tokenize", "not implemented yet");
}
