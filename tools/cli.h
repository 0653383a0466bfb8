// tools/cli.h: what every `sembed` subcommand shares (internal to the CLI).
#ifndef SEMBED_CLI_H
#define SEMBED_CLI_H

#include <stdbool.h>
#include <stdio.h>

// Exit statuses: 0 ok; 1 runtime failure (bad file, I/O); 2 usage error (wrong flags).
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

// Each subcommand: int cmd_NAME(int argc, char **argv), argv[0] is the subcommand name.
#define CLI_COMMANDS(X)                                                                     \
    X(convert, "import a HuggingFace / sentence-transformers / ONNX checkpoint into .semb")   \
    X(inspect, "show the header, metadata and tensors of a .semb file; --verify checksums")  \
    X(tokenize, "tokenize text with a model's tokenizer")                                    \
    X(embed, "embed sentences (stdin or arguments) into vectors")                           \
    X(similarity, "cosine similarity matrix of sentences")                                   \
    X(train, "fine-tune with SimCSE (unsup / sup) or MLM")                                   \
    X(export, "write a HuggingFace / sentence-transformers folder from a .semb")             \
    X(eval, "STS evaluation: Spearman / Pearson against gold scores")                        \
    X(analyze, "alignment, uniformity, singular spectrum; SVG plots")                        \
    X(bench, "measure embedding speed of a model")                                            \
    X(serve, "HTTP embedding server (OpenAI and text-embeddings-inference APIs), batched")    \
    X(rerank, "score query-document pairs with a cross-encoder")

#define CLI_DECLARE(name, help) int cmd_##name(int argc, char **argv);
CLI_COMMANDS(CLI_DECLARE)
#undef CLI_DECLARE

// Print "sembed <cmd>: <message> [<first library error detail>]" as one line on stderr; returns
// status, so `return cli_error(...)` reads well.
int cli_error(int status, const char *cmd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
// Route library log messages to stderr ("sembed: ..."): warnings print at once, errors are held
// for the next cli_error line; verbose prints errors and INFO as they come.
void cli_install_logger(bool verbose);
// True when stderr is a terminal (progress output is shown only then).
bool cli_stderr_is_tty(void);

#endif
