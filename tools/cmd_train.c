// `sembed train`: placeholder until its issue lands.
#include "tools/cli.h"

int cmd_train(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(CLI_FAIL, "train", "not implemented yet");
}
