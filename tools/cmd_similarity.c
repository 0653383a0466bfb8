// `sembed similarity`: placeholder until its issue lands.
#include "tools/cli.h"

int cmd_similarity(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(CLI_FAIL, "similarity", "not implemented yet");
}
