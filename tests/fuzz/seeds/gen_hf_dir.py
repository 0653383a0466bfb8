#!/usr/bin/env python3
"""Seeds for fuzz_hf_dir (tests/fuzz/corpus/hf_dir/seed-*): model folders as the target's archive
format ("=== NAME\\n" then the file's bytes; tests/fuzz/fuzz_hf_dir.c). Valid folders for each
architecture and tokenizer source `sembed convert` reads (BERT, DistilBERT, RoBERTa, MPNet, a
cross-encoder, sentence-transformers modules), then one defect each: JSON syntax, types, ranges,
UTF-8, unsupported components. Field names follow transformers' config classes and
sentence-transformers' module configs. Standard library only; deterministic.
Usage: /usr/bin/python3 tests/fuzz/seeds/gen_hf_dir.py [OUT_DIR]   (default tests/fuzz/corpus/hf_dir)
"""
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seedlib  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "un", "##aff", "##able", "a", "##b"]

BERT = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 12, "hidden_size": 8,
        "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 32,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1, "position_embedding_type": "absolute", "is_decoder": False}
DISTIL = {"architectures": ["DistilBertModel"], "model_type": "distilbert", "vocab_size": 12, "dim": 8, "n_layers": 1,
          "n_heads": 2, "hidden_dim": 16, "max_position_embeddings": 32, "activation": "gelu", "dropout": 0.1,
          "attention_dropout": 0.1}


def js(o):
    return json.dumps(o).encode()


def folder(files):
    # records joined by "\n": that newline belongs to the separator, not to the file before it
    return b"\n".join(b"=== " + name.encode() + b"\n" + (body if isinstance(body, bytes) else body.encode())
                      for name, body in files)


def vocab_txt(v=VOCAB, sep="\n"):
    return sep.join(v) + sep


def safetensors(tensors):
    """A safetensors file (8-byte header length, JSON header, data) of f32 tensors."""
    head, data = {}, b""
    for name, shape in tensors:
        n = 1
        for d in shape:
            n *= d
        head[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * n]}
        data += struct.pack("<%df" % n, *([0.5] * n))
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def with_(base, **kw):
    d = dict(base)
    for k, v in kw.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    return d


TOK_JSON = {"version": "1.0", "normalizer": {"type": "BertNormalizer", "lowercase": True, "handle_chinese_chars": True,
                                             "clean_text": True, "strip_accents": None},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "[CLS]"}}],
                               "cls": ["[CLS]", 2], "sep": ["[SEP]", 3]},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 100, "vocab": {t: i for i, t in enumerate(VOCAB)}}}
BPE_VOCAB = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 4, "h": 5, "e": 6, "he": 7, "\u0120": 8}


def bert_tensors(prefix="bert.", layers=1, H=8, I=16, V=12, P=32, T=2, pooler=True):
    """tensors.txt lines (NAME D0 [D1]) of a BERT checkpoint with the shapes BERT's config implies."""
    t = [(prefix + "embeddings.word_embeddings.weight", V, H), (prefix + "embeddings.position_embeddings.weight", P, H)]
    if T:
        t.append((prefix + "embeddings.token_type_embeddings.weight", T, H))
    t += [(prefix + "embeddings.LayerNorm.weight", H), (prefix + "embeddings.LayerNorm.bias", H)]
    for l in range(layers):
        e = prefix + "encoder.layer.%d." % l
        for lin, o, i in (("attention.self.query", H, H), ("attention.self.key", H, H), ("attention.self.value", H, H),
                          ("attention.output.dense", H, H), ("intermediate.dense", I, H), ("output.dense", H, I)):
            t += [(e + lin + ".weight", o, i), (e + lin + ".bias", o)]
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            t += [(e + ln + ".weight", H), (e + ln + ".bias", H)]
    if pooler:
        t += [(prefix + "pooler.dense.weight", H, H), (prefix + "pooler.dense.bias", H)]
    return t


def tensors_txt(t, extra=""):
    return "".join(" ".join(str(x) for x in row) + "\n" for row in t) + extra


def rename(t, pairs):
    out = []
    for row in t:
        n = row[0]
        for a, b in pairs:
            n = n.replace(a, b)
        out.append((n,) + tuple(row[1:]))
    return out


def tensor_seeds():
    """The tensor-name stage (fuzz_hf_dir's tensors.txt): each architecture's names, then one defect each."""
    s = {}
    bt = bert_tensors()
    mlm = [("cls.predictions.transform.dense.weight", 8, 8), ("cls.predictions.transform.dense.bias", 8),
           ("cls.predictions.transform.LayerNorm.weight", 8), ("cls.predictions.transform.LayerNorm.bias", 8),
           ("cls.predictions.bias", 12), ("cls.predictions.decoder.weight", 12, 8), ("cls.seq_relationship.weight", 2, 8),
           ("bert.embeddings.position_ids", 1, 32)]
    cfg = [("config.json", js(BERT))]
    s["t-bert"] = folder(cfg + [("tensors.txt", tensors_txt(bt))])
    s["t-bert-f16-q8"] = folder(cfg + [("tensors.txt", tensors_txt([r + (("f16",) if len(r) == 3 and "word" in r[0] else
                                                                         ("q8",) if len(r) == 3 else ()) for r in bt]))])
    s["t-bert-mlm-kept"] = folder(cfg + [("tensors.txt", tensors_txt(bt + mlm, "!keep_mlm\n"))])
    s["t-bert-mlm-dropped"] = folder(cfg + [("tensors.txt", tensors_txt(bt + mlm))])
    s["t-bert-keep-mlm-missing"] = folder(cfg + [("tensors.txt", tensors_txt(bt, "!keep_mlm\n"))])
    s["t-bert-no-prefix-no-pooler"] = folder(cfg + [("tensors.txt", tensors_txt(bert_tensors(prefix="", pooler=False)))])
    s["t-bert-missing"] = folder(cfg + [("tensors.txt", tensors_txt(bt[:-5]))])
    s["t-bert-shape"] = folder(cfg + [("tensors.txt", tensors_txt([(bt[0][0], 13, 8)] + bt[1:]))])
    s["t-bert-dtype"] = folder(cfg + [("tensors.txt", tensors_txt([bt[0] + ("i32",)] + bt[1:]))])
    s["t-bert-unexpected"] = folder(cfg + [("tensors.txt", tensors_txt(bt + [("bert.encoder.layer.1.output.dense.weight", 8, 16)]))])
    s["t-bert-duplicate"] = folder(cfg + [("tensors.txt", tensors_txt(bt + [("bert.embeddings.LayerNorm.weight", 8)]))])
    s["t-bert-dup-canonical"] = folder(cfg + [("tensors.txt", tensors_txt(bt + [("embeddings.LayerNorm.bias", 8)]))])
    ce = with_(BERT, architectures=["BertForSequenceClassification"], num_labels=1)
    s["t-bert-classifier"] = folder([("config.json", js(ce)), ("tensors.txt", tensors_txt(
        bt + [("classifier.weight", 1, 8), ("classifier.bias", 1)]))])
    s["t-bert-classifier-no-pooler"] = folder([("config.json", js(ce)), ("tensors.txt", tensors_txt(
        bert_tensors(pooler=False) + [("classifier.weight", 1, 8), ("classifier.bias", 1)]))])
    distil = rename(bert_tensors(prefix="distilbert.", T=0, pooler=False),
                    [("encoder.layer.", "transformer.layer."), ("attention.self.query", "attention.q_lin"),
                     ("attention.self.key", "attention.k_lin"), ("attention.self.value", "attention.v_lin"),
                     ("attention.output.dense", "attention.out_lin"), ("attention.output.LayerNorm", "sa_layer_norm"),
                     ("intermediate.dense", "ffn.lin1"), ("output.dense", "ffn.lin2"), ("output.LayerNorm", "output_layer_norm")])
    dmlm = [("vocab_transform.weight", 8, 8), ("vocab_transform.bias", 8), ("vocab_layer_norm.weight", 8),
            ("vocab_layer_norm.bias", 8), ("vocab_projector.weight", 12, 8), ("vocab_projector.bias", 12),
            ("pre_classifier.weight", 8, 8), ("transformer.layer.0.unknown.weight", 8, 8)]
    s["t-distil"] = folder([("config.json", js(DISTIL)), ("tensors.txt", tensors_txt(distil))])
    s["t-distil-mlm"] = folder([("config.json", js(DISTIL)), ("tensors.txt", tensors_txt(distil + dmlm[:6], "!keep_mlm\n"))])
    s["t-distil-unknown"] = folder([("config.json", js(DISTIL)), ("tensors.txt", tensors_txt(distil + dmlm[6:]))])
    rob_cfg = with_(BERT, model_type="roberta", architectures=["RobertaForSequenceClassification"], type_vocab_size=1,
                    pad_token_id=1, num_labels=1, max_position_embeddings=34)
    rob = rename(bert_tensors(prefix="roberta.", T=1, P=34, pooler=False), [])
    s["t-roberta-classifier"] = folder([("config.json", js(rob_cfg)), ("tensors.txt", tensors_txt(
        rob + [("classifier.dense.weight", 8, 8), ("classifier.dense.bias", 8), ("classifier.out_proj.weight", 1, 8),
               ("classifier.out_proj.bias", 1), ("lm_head.dense.weight", 8, 8)]))])
    mp_cfg = with_(BERT, model_type="mpnet", architectures=["MPNetForMaskedLM"], relative_attention_num_buckets=32,
                   pad_token_id=1, type_vocab_size=0)
    mp = rename(bert_tensors(prefix="mpnet.", T=0, pooler=True),
                [("attention.self.query", "attention.attn.q"), ("attention.self.key", "attention.attn.k"),
                 ("attention.self.value", "attention.attn.v"), ("attention.output.dense", "attention.attn.o"),
                 ("attention.output.LayerNorm", "attention.LayerNorm")])
    s["t-mpnet"] = folder([("config.json", js(mp_cfg)), ("tensors.txt", tensors_txt(
        mp + [("mpnet.encoder.relative_attention_bias.weight", 32, 2), ("lm_head.dense.weight", 8, 8),
              ("mpnet.embeddings.position_ids", 1, 32)]))])
    s["t-mpnet-no-bias"] = folder([("config.json", js(mp_cfg)), ("tensors.txt", tensors_txt(mp))])
    st = with_(BERT)
    s["t-st-dense"] = folder([("config.json", js(st)), ("modules.json", js([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}])),
        ("1_Pooling/config.json", js({"word_embedding_dimension": 8, "pooling_mode_mean_tokens": True})),
        ("2_Dense/config.json", js({"in_features": 8, "out_features": 4, "bias": True,
                                    "activation_function": "torch.nn.modules.activation.Tanh"})),
        ("tensors.txt", tensors_txt(bt + [("pooling.dense.0.weight", 4, 8), ("pooling.dense.0.bias", 4)]))])
    return s


def seeds():
    s = tensor_seeds()
    # valid folders
    s["bert-vocab"] = folder([("config.json", js(BERT)), ("vocab.txt", vocab_txt())])
    s["bert-tokconfig"] = folder([("config.json", js(BERT)), ("vocab.txt", vocab_txt()),
                                  ("tokenizer_config.json", js({"tokenizer_class": "BertTokenizer", "do_lower_case": False,
                                                                "strip_accents": True, "tokenize_chinese_chars": False,
                                                                "model_max_length": 512, "unk_token": "[UNK]",
                                                                "cls_token": {"content": "[CLS]", "lstrip": False}})),
                                  ("special_tokens_map.json", js({"sep_token": "[SEP]", "pad_token": "[PAD]",
                                                                  "mask_token": {"content": "[MASK]"}}))])
    s["bert-tokjson"] = folder([("config.json", js(BERT)), ("tokenizer.json", js(TOK_JSON)), ("vocab.txt", vocab_txt())])
    s["bert-tokjson-vocab-differs"] = folder([("config.json", js(BERT)), ("tokenizer.json", js(TOK_JSON)),
                                              ("vocab.txt", vocab_txt(VOCAB[:-1]))])
    s["bert-bom-crlf"] = folder([("config.json", b"\xef\xbb\xbf" + js(BERT)), ("vocab.txt", vocab_txt(sep="\r\n"))])
    s["bert-doubles"] = folder([("config.json", js(with_(BERT, hidden_size=8.0, max_position_embeddings=1e30)))])
    s["bert-arch-only"] = folder([("config.json", js(with_(BERT, model_type=None, architectures=["BertForMaskedLM"])))])
    s["distilbert"] = folder([("config.json", js(DISTIL)), ("vocab.txt", vocab_txt())])
    s["roberta-legacy-bpe"] = folder([("config.json", js(with_(BERT, model_type="roberta", architectures=["RobertaModel"],
                                                                type_vocab_size=1, pad_token_id=1))),
                                      ("vocab.json", js(BPE_VOCAB)), ("merges.txt", "#version: 0.2\nh e\r\n\n")])
    s["mpnet"] = folder([("config.json", js(with_(BERT, model_type="mpnet", architectures=["MPNetModel"],
                                                  relative_attention_num_buckets=32, pad_token_id=1)))])
    s["cross-encoder"] = folder([("config.json", js(with_(BERT, architectures=["BertForSequenceClassification"],
                                                          id2label={"0": "LABEL_0"},
                                                          sbert_ce_default_activation_function="torch.nn.modules.activation.Sigmoid"))),
                                 ("vocab.txt", vocab_txt())])
    s["cross-encoder-st4"] = folder([("config.json", js(with_(BERT, architectures=["XLMRobertaForSequenceClassification"],
                                                              model_type="xlm-roberta", num_labels=3,
                                                              sentence_transformers={"activation_fn": "torch.nn.Softmax"})))])
    s["tokjson-other"] = folder([("config.json", js(BERT)),
                                 ("tokenizer.json", js({"model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "a": 1},
                                                                  "unk_token": "[UNK]"}})),
                                 ("tokenizer_config.json", js({"model_max_length": 128}))])
    st = [("modules.json", js([{"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
                               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                               {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
                               {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"}])),
          ("0_Transformer/config.json", js(BERT)), ("0_Transformer/vocab.txt", vocab_txt()),
          ("1_Pooling/config.json", js({"word_embedding_dimension": 8, "pooling_mode_cls_token": False,
                                         "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False})),
          ("2_Dense/config.json", js({"in_features": 8, "out_features": 4, "bias": True,
                                       "activation_function": "torch.nn.modules.activation.Tanh"})),
          ("2_Dense/model.safetensors", safetensors([("linear.weight", [4, 8]), ("linear.bias", [4])])),
          ("sentence_bert_config.json", js({"max_seq_length": 128, "do_lower_case": True}))]
    s["st-modules"] = folder(st)
    s["st-dense-nobias"] = folder(st[:4] + [("2_Dense/config.json", js({"in_features": 8, "out_features": 4, "bias": False,
                                                                          "activation_function": "torch.nn.modules.linear.Identity"})),
                                            ("2_Dense/model.safetensors", safetensors([("linear.weight", [4, 8])]))])
    s["st-dense-bad"] = folder(st[:4] + [("2_Dense/config.json", js({"in_features": 8, "out_features": 4,
                                                                       "activation_function": "torch.nn.Softsign"}))])
    s["st-dense-shape"] = folder(st[:4] + [("2_Dense/config.json", js({"in_features": 8, "out_features": 4})),
                                           ("2_Dense/model.safetensors", safetensors([("linear.weight", [8, 4]), ("x", [1])]))])
    s["lone-pooling"] = folder([("config.json", js(BERT)), ("vocab.txt", vocab_txt()),
                                ("1_Pooling/config.json", js({"pooling_mode": "cls"}))])
    for name, pool in (("two-modes", {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True}),
                       ("weighted", {"pooling_mode_weightedmean_tokens": True}),
                       ("old-max", {"pooling_mode": "max"}), ("old-bad", {"pooling_mode": "lasttoken"}),
                       ("dim", {"pooling_mode_mean_tokens": True, "word_embedding_dimension": 7})):
        s["pool-" + name] = folder(st[:3] + [("1_Pooling/config.json", js(pool))])
    for name, mods in (("escape", [{"path": "../x", "type": "Transformer"}]), ("no-type", [{"path": "0_Transformer"}]),
                       ("order", [{"path": "1_Pooling", "type": "Pooling"}]), ("no-pool", [{"path": "", "type": "Transformer"}]),
                       ("not-array", {"a": 1})):
        s["modules-" + name] = folder([("modules.json", js(mods)), ("config.json", js(BERT))])
    # one defect each
    for name, cfg in (("arch", with_(BERT, model_type="gpt2", architectures=["GPT2Model"])),
                      ("decoder", with_(BERT, is_decoder=True)), ("relpos", with_(BERT, position_embedding_type="relative_key")),
                      ("act", with_(BERT, hidden_act="swish")), ("act-new", with_(BERT, hidden_act="gelu_new")),
                      ("act-relu", with_(BERT, hidden_act="relu")),
                      ("missing", with_(BERT, hidden_size=None)), ("string-int", with_(BERT, hidden_size="8")),
                      ("negative", with_(BERT, num_hidden_layers=-1)), ("huge", with_(BERT, vocab_size=1 << 40)),
                      ("heads", with_(BERT, num_attention_heads=3)), ("eps-type", with_(BERT, layer_norm_eps="small")),
                      ("bool-type", with_(BERT, is_decoder=1)), ("fraction", with_(BERT, intermediate_size=16.5)),
                      ("distil-cls", with_(DISTIL, architectures=["DistilBertForSequenceClassification"])),
                      ("labels", with_(BERT, architectures=["BertForSequenceClassification"], num_labels=0)),
                      ("ce-act", with_(BERT, architectures=["BertForSequenceClassification"],
                                       sbert_ce_default_activation_function="torch.nn.Tanh")),
                      ("mpnet-buckets", with_(BERT, model_type="mpnet", relative_attention_num_buckets=7)),
                      ("roberta-pad", with_(BERT, model_type="roberta", pad_token_id=-5)),
                      ("distil-missing", with_(DISTIL, n_heads=None))):
        s["config-" + name] = folder([("config.json", js(cfg)), ("vocab.txt", vocab_txt())])
    for name, body in (("syntax", b'{"hidden_size": 8,'), ("trailing", js(BERT) + b" }"), ("array", b"[1, 2]"),
                       ("utf8", b'{"model_type": "\xff\xfe"}'), ("deep", b"[" * 100 + b"]" * 100), ("empty", b""),
                       ("nul", b'{"a": 1}\x00')):
        s["json-" + name] = folder([("config.json", body), ("vocab.txt", vocab_txt())])
    for name, files in (("vocab-utf8", [("vocab.txt", b"[PAD]\n\xc3\x28\n")]), ("vocab-nul", [("vocab.txt", b"[PAD]\n\x00\n")]),
                        ("vocab-empty", [("vocab.txt", b"")]), ("vocab-no-unk", [("vocab.txt", "[CLS]\n[SEP]\n[PAD]")]),
                        ("tokclass", [("vocab.txt", vocab_txt()), ("tokenizer_config.json", js({"tokenizer_class": "GPT2Tokenizer"}))]),
                        ("tokconfig-type", [("vocab.txt", vocab_txt()), ("tokenizer_config.json", js({"do_lower_case": "yes"}))]),
                        ("special-missing", [("vocab.txt", vocab_txt()), ("special_tokens_map.json", js({"unk_token": "<unk>"}))]),
                        ("tokjson-ids", [("tokenizer.json", js(dict(TOK_JSON, model=dict(TOK_JSON["model"], vocab={"a": 0, "b": 5}))))]),
                        ("tokjson-idtype", [("tokenizer.json", js(dict(TOK_JSON, model=dict(TOK_JSON["model"], vocab={"a": "0"}))))]),
                        ("tokjson-norm", [("tokenizer.json", js(dict(TOK_JSON, normalizer={"type": "BertNormalizer", "lowercase": False}))),
                                          ("vocab.txt", vocab_txt())]),
                        ("tokjson-nul", [("tokenizer.json", js({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}) + b"\x00")]),
                        ("bpe-not-object", [("vocab.json", b"[]"), ("merges.txt", "a b\n")]),
                        ("bpe-bad-merge", [("vocab.json", js(BPE_VOCAB)), ("merges.txt", "x y\n")])):
        s["tok-" + name] = folder([("config.json", js(BERT))] + files)
    return s


def main():
    seedlib.write_seeds("hf_dir", seeds())


if __name__ == "__main__":
    main()
