/*
 * convert/internal.h: what convert.c (orchestration, weight loading, writing), hf.c (HuggingFace /
 * sentence-transformers configuration and tokenizer files, tensor naming) and quantize.c share.
 */
#ifndef SEMBED_CONVERT_INTERNAL_H
#define SEMBED_CONVERT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "convert/source.h"

#define SC_MAX_DENSE 8
#define SC_FN "sembed_convert" /* function name used in logged errors */

/* Architecture and hyper-parameters (bert.* keys). */
struct sc_hparams {
    char source_arch[64];  /* architectures[0] or model_type, e.g. "BertModel" */
    bool distil;           /* DistilBERT naming */
    bool roberta;          /* RoBERTa / XLM-RoBERTa / CamemBERT naming ("roberta." prefix) */
    bool mpnet;            /* MPNet naming ("mpnet." prefix, attention.attn.q/k/v/o) */
    uint32_t rel_buckets, rel_max_distance; /* MPNet's shared relative attention bias (0: none) */
    uint32_t position_offset; /* first position id: pad_token_id + 1 for RoBERTa, 0 for BERT */
    uint32_t num_labels;   /* *ForSequenceClassification: scores per input (0: an encoder) */
    char cls_activation[12]; /* sigmoid | identity | softmax */
    bool from_config;      /* config.json was found */
    uint32_t vocab_size, hidden_size, num_layers, num_heads, intermediate_size, max_position_embeddings,
        type_vocab_size;
    float layer_norm_eps;
    char hidden_act[16];   /* gelu, gelu_tanh, relu */
    float hidden_dropout, attention_dropout;
};

/* Tokenizer (tokenizer.* keys). */
struct sc_tok {
    char **vocab;          /* id -> token (heap) */
    size_t n_vocab;
    bool lowercase, strip_accents, handle_chinese_chars, clean_text;
    int pre_lowercase;     /* -1 unknown (key not written), 0/1 from sentence_bert_config.json */
    char *unk, *cls, *sep, *pad, *mask; /* heap; mask may be NULL */
    char *prefix;          /* continuing-subword prefix */
    uint32_t max_chars;    /* max_input_chars_per_word */
    uint64_t model_max_length; /* 0 = unknown */
    char *hf_json;         /* heap: a tokenizer.json that is not BERT's pipeline, stored whole (hf_json) */
};

/* Pooling pipeline (pooling.* keys); Dense tensors are in the source as pooling.dense.N.*. */
struct sc_pool {
    char mode[24];         /* "" = not declared */
    int normalize;         /* -1 = not declared */
    uint32_t n_dense;
    char dense_act[SC_MAX_DENSE][16];
    uint64_t st_max_seq_length; /* sentence_bert_config.json max_seq_length, 0 = absent */
};

/* A read-only file mapping created by the converter (released at the end; its pages are
 * dropped from the resident set once the tensors in it are written). */
struct sc_map {
    void *p;
    size_t n;
};

/* Conversion state shared by the helpers. */
struct sc_ctx {
    struct sc_source src;
    struct sc_map *maps;
    size_t n_maps, cap_maps;
    char **files;          /* provenance: path relative to the source root */
    char **hashes;         /* xxh3-128 hex per file */
    size_t n_files, cap_files;
    const char *root;      /* folder the user named (or the folder of the file) */
    struct sc_hparams hp;
    struct sc_tok tok;
    struct sc_pool pool;
};

/* convert.c */
/* mmap path read-only (kept in ctx); records it for provenance. */
int sc_map_file(struct sc_ctx *c, const char *path, const void **data, size_t *len);
/* Release everything a context holds (mappings, provenance, source, tokenizer); c stays reusable
 * after a memset. */
void sc_ctx_free(struct sc_ctx *c);
/* Record a file read for provenance (hashes it). */
int sc_note_file(struct sc_ctx *c, const char *path);
/* Load a weight file of any supported container (sniffed) into dst with its raw names. */
int sc_load_weights(struct sc_ctx *c, const char *path, struct sc_source *dst);
/* A torch.save zip (<name>/data.pkl + <name>/data/<key>) from memory into dst: the zip, unpickler
 * and view-bounds path of sc_load_weights without a file (tests/fuzz/fuzz_torch.c). */
int sc_torch_load_memory(const void *buf, size_t len, struct sc_source *dst);

/* hf.c */
int sc_hf_config(struct sc_ctx *c, const char *model_dir, bool required);
int sc_hf_tokenizer(struct sc_ctx *c, const char *model_dir);
/* sentence-transformers files in root; sets *model_dir (heap) to the Transformer module's folder. */
int sc_hf_st_modules(struct sc_ctx *c, const char *root, char **model_dir);
/* Rename raw checkpoint names to canonical ones and drop heads; keep_mlm keeps cls.predictions.*. */
int sc_hf_canonicalize(struct sc_ctx *c, bool keep_mlm);
/* Check that every tensor the architecture needs is present with the shape the config implies,
 * and that nothing unknown remains. */
int sc_hf_validate(struct sc_ctx *c, bool keep_mlm, bool *has_pooler, bool *has_mlm);
void sc_tok_free(struct sc_tok *t);
/* path join into a heap string */
char *sc_path(const char *dir, const char *name);
bool sc_is_file(const char *path);
bool sc_is_dir(const char *path);

/* spm.c */
/* A SentencePiece .model (serialized ModelProto, untrusted) -> the tokenizer.json text HF's converter
 * builds from it (xlmr: XLMRobertaConverter's fairseq ids and template); *out is heap, checked by
 * parsing it. `what` names the file in errors. */
int sc_spm_to_hf_json(const void *buf, size_t len, bool xlmr, const char *what, char **out);

/* quantize.c */
/* scale = max|row| / 127 (0 for an all-zero row); SEMBED_EINVAL if a value is not finite. */
int sc_q8_row_scale(const float *row, size_t n, float *scale);
/* q[i] = round_half_even(row[i] / scale) clamped to [-127, 127]; |row[i] - q[i]*scale| <= scale/2. */
void sc_q8_row_quantize(const float *row, size_t n, float scale, int8_t *q);

#endif
