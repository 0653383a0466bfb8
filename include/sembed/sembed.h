/*
 * sembed/sembed.h: the whole public API in one include.
 *
 *     #include <sembed/sembed.h>
 *     struct sembed_model *m;  sembed_model_load("model.semb", NULL, &m);
 *     struct sembed_context *ctx;  sembed_context_create(m, NULL, &ctx);
 *     float v[384];  sembed_embed_texts(ctx, (const char *[]){"hello world"}, 1, v);
 *
 * common.h   status codes, logging, version
 * semb.h     the .semb file: open, metadata, tensors, writer
 * tokenizer.h  BERT WordPiece tokenizer
 * model.h    load a model, contexts, embed text / pairs / token ids
 * convert.h, train.h (when present in this build): importers and the trainer
 */
#ifndef SEMBED_SEMBED_H
#define SEMBED_SEMBED_H

#include "sembed/common.h"
#include "sembed/semb.h"
#include "sembed/tokenizer.h"
#include "sembed/model.h"

#include "sembed/convert.h"
#include "sembed/info.h"
#include "sembed/eval.h"
#include "sembed/train.h"

#endif /* SEMBED_SEMBED_H */
