// `sembed bench`: placeholder until its issue lands.
#include "tools/cli.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_error(CLI_FAIL, "bench", "not implemented yet");
}
