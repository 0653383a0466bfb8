#!/usr/bin/python3
"""Checkpoint fixtures for `sembed convert`: one BERT twin (models/gen/twin.py, random weights,
real shapes) written in every input format the converter reads, plus the expected tensors.

Run with Debian's /usr/bin/python3 (python3-torch):
    /usr/bin/python3 models/gen/make_fixtures.py --out DIR [--shape bert-tiny|minilm-l6|bert-base]
        [--vocab small|real] [--max-pos N] [--only safetensors,sharded,bin,...] [--committed]

DIR/
  expected/params.bin + params.json   canonical f32 tensors (names of docs/format.md), raw little-endian
  expected/distil.bin + distil.json   the DistilBERT variant's tensors under BERT names
  expected/st.bin + st.json           the sentence-transformers Dense layer (pooling.dense.0.*)
  safetensors/   model.safetensors (F32, written by write_safetensors below) + config + tokenizer files
  sharded/       model-0000{1,2}-of-00002.safetensors + model.safetensors.index.json
  bin/           pytorch_model.bin via torch.save (zip format), "bert." prefixes, MLM + NSP heads,
                 tied decoder, position_ids buffer, one non-contiguous tensor; vocab.txt + tokenizer_config.json only
  bin_deflate/   the same archive re-zipped with deflate
  f16/, bf16/    model.safetensors in F16 / BF16 (expected: expected/params rounded, see f16.json)
  st/            sentence-transformers folder: modules.json, 1_Pooling (mean), 2_Dense (Tanh), 2_Normalize,
                 sentence_bert_config.json
  distil/        DistilBERT names and config (model.safetensors)
  legacy/        pytorch_model.bin in the pre-1.6 (non-zip) format
  hostile/       malicious pickles and archives (each must be refused)
--committed writes the small fixture committed in tests/fixtures/bert-tiny (F16 weights to stay
small; vocabulary cut down from the real one, every special token kept).
"""
import argparse
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twin  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from datafile import data_file  # noqa: E402  (data/README.md: $SEMBED_DATA_DIR, data/, ../shared/data)

REAL_VOCAB = data_file("vocab/bert-base-uncased/vocab.txt", required=False) or "data/vocab/bert-base-uncased/vocab.txt"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def load_vocab(kind):
    path = os.environ.get("SEMBED_VOCAB", REAL_VOCAB)
    with open(path, encoding="utf-8") as f:
        real = [line.rstrip("\n") for line in f]
    if kind == "real":
        return real
    # ~1000 tokens: the specials, a few [unused], every single character and ##character, then the
    # most frequent whole words (ids 1996.. in bert-base-uncased are ordered by frequency).
    keep = SPECIALS + real[1:4] + real[999:1996] + real[1996:2040]
    seen, out = set(), []
    for t in keep:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


# ------------------------------------------------------------------------------ writers

def write_safetensors(path, tensors, metadata=None):
    """safetensors spec: u64 LE header length, JSON header, then the tensors' bytes back to back."""
    def raw(t):
        t = t.contiguous()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().tobytes()
        return t.numpy().tobytes()
    dt = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = raw(t)
        header[name] = {"dtype": dt[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_expected(out_dir, stem, params):
    os.makedirs(out_dir, exist_ok=True)
    index, off = {}, 0
    with open(os.path.join(out_dir, stem + ".bin"), "wb") as f:
        for name, t in params.items():
            b = t.detach().to(torch.float32).contiguous().numpy().tobytes()
            index[name] = {"shape": list(t.shape), "offset": off}
            f.write(b)
            off += len(b)
    with open(os.path.join(out_dir, stem + ".json"), "w") as f:
        json.dump(index, f, indent=0)


def tokenizer_json(vocab, lowercase=True, strip_accents=None, chinese=True):
    ids = {t: i for i, t in enumerate(vocab)}
    specials = [t for t in SPECIALS if t in ids]
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": ids[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for t in specials],
        "normalizer": {"type": "BertNormalizer", "clean_text": True, "handle_chinese_chars": chinese,
                       "strip_accents": strip_accents, "lowercase": lowercase},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                           "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                                    {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                                    {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
                           "special_tokens": {t: {"id": t, "ids": [ids[t]], "tokens": [t]} for t in ("[CLS]", "[SEP]")}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": True},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": ids},
    }


def write_tokenizer(d, vocab, fast=True, lowercase=True, strip_accents=None, chinese=True, max_len=512):
    with open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in vocab))
    if fast:
        with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer_json(vocab, lowercase, strip_accents, chinese), f, ensure_ascii=False)
    cfg = {"do_lower_case": lowercase, "strip_accents": strip_accents, "tokenize_chinese_chars": chinese,
           "model_max_length": max_len, "tokenizer_class": "BertTokenizer",
           "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(d, "special_tokens_map.json"), "w") as f:
        json.dump({"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                   "mask_token": {"content": "[MASK]", "lstrip": False, "normalized": False, "rstrip": False,
                                  "single_word": False}}, f, indent=2)


def write_config(d, cfg):
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def mkdir(*parts):
    p = os.path.join(*parts)
    os.makedirs(p, exist_ok=True)
    return p


# ------------------------------------------------------------------------------ variants

def mlm_head(m, seed):
    g = torch.Generator().manual_seed(seed + 7)
    H, V = m.config.hidden_size, m.config.vocab_size
    return {
        "cls.predictions.transform.dense.weight": 0.02 * torch.randn(H, H, generator=g),
        "cls.predictions.transform.dense.bias": 0.02 * torch.randn(H, generator=g),
        "cls.predictions.transform.LayerNorm.weight": 1.0 + 0.1 * torch.randn(H, generator=g),
        "cls.predictions.transform.LayerNorm.bias": 0.02 * torch.randn(H, generator=g),
        "cls.predictions.bias": 0.02 * torch.randn(V, generator=g),
    }


DISTIL_LAYER = [("attention.self.query.", "attention.q_lin."), ("attention.self.key.", "attention.k_lin."),
                ("attention.self.value.", "attention.v_lin."), ("attention.output.dense.", "attention.out_lin."),
                ("attention.output.LayerNorm.", "sa_layer_norm."), ("intermediate.dense.", "ffn.lin1."),
                ("output.dense.", "ffn.lin2."), ("output.LayerNorm.", "output_layer_norm.")]


def distil_name(n):
    if n.startswith("encoder.layer."):
        rest = n[len("encoder.layer."):]
        layer, rest = rest.split(".", 1)
        for a, b in DISTIL_LAYER:
            if rest.startswith(a):
                return "distilbert.transformer.layer.%s.%s%s" % (layer, b, rest[len(a):])
        raise KeyError(n)
    return "distilbert." + n


def hf_cfg_with(m, **extra):
    c = m.config.hf_config()
    c.update(extra)
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--shape", default="bert-tiny", choices=sorted(twin.SHAPES))
    ap.add_argument("--vocab", default="small", choices=["small", "real"])
    ap.add_argument("--max-pos", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="comma list of variants (default: all)")
    ap.add_argument("--committed", action="store_true", help="write the small committed fixture (F16) only")
    a = ap.parse_args()
    vocab = load_vocab(a.vocab)
    only = set(a.only.split(",")) if a.only else None
    want = lambda v: only is None or v in only  # noqa: E731
    out = mkdir(a.out)
    m = twin.random_model(a.shape, vocab_size=len(vocab), seed=a.seed, max_position_embeddings=a.max_pos)
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}

    if a.committed:
        # F16 weights keep the committed file near 1 MB; the expected tensors are the F16 values.
        d = mkdir(out, "bert-tiny")
        write_safetensors(os.path.join(d, "model.safetensors"), {k: v.half() for k, v in sd.items()},
                          {"format": "pt", "note": "sembed fixture: twin.py bert-tiny, seed %d" % a.seed})
        write_config(d, hf_cfg_with(m, torch_dtype="float16"))
        write_tokenizer(d, vocab, max_len=a.max_pos)
        with open(os.path.join(d, "modules.json"), "w") as f:
            json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                       {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                       {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}], f, indent=2)
        p = mkdir(d, "1_Pooling")
        with open(os.path.join(p, "config.json"), "w") as f:
            json.dump({"word_embedding_dimension": m.config.hidden_size, "pooling_mode_cls_token": True,
                       "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
                       "pooling_mode_mean_sqrt_len_tokens": False}, f, indent=2)
        with open(os.path.join(d, "sentence_bert_config.json"), "w") as f:
            json.dump({"max_seq_length": 64, "do_lower_case": False}, f)
        # Small containers for the parser tests and fuzz seeds: a torch.save zip of a tiny state
        # dict, its data.pkl, and the malicious pickles.
        pk = mkdir(out, "pickle")
        tiny = {"a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
                "a.bias": torch.tensor([0.5, -1.5], dtype=torch.float16),
                "b": torch.arange(12, dtype=torch.float32).reshape(3, 4).t()}  # non-contiguous
        torch.save(tiny, os.path.join(pk, "tiny.bin"))
        with zipfile.ZipFile(os.path.join(pk, "tiny.bin")) as z:
            pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
            with open(os.path.join(pk, "tiny_data.pkl"), "wb") as f:
                f.write(z.read(pkl))
        torch.save(tiny, os.path.join(pk, "tiny_legacy.bin"), _use_new_zipfile_serialization=False)
        write_hostile(pk, None, None, None, pickles_only=True)
        return

    write_expected(mkdir(out, "expected"), "params", {**sd, **mlm_head(m, a.seed)})

    def base_folder(name, fast=True, **tok):
        d = mkdir(out, name)
        write_config(d, m.config.hf_config())
        write_tokenizer(d, vocab, fast=fast, max_len=a.max_pos, **tok)
        return d

    if want("safetensors"):
        d = base_folder("safetensors")
        write_safetensors(os.path.join(d, "model.safetensors"), sd, {"format": "pt"})

    if want("sharded"):
        d = base_folder("sharded")
        names = list(sd)
        half = len(names) // 2
        shards = [names[:half], names[half:]]
        wm = {}
        for i, part in enumerate(shards):
            fn = "model-%05d-of-%05d.safetensors" % (i + 1, len(shards))
            write_safetensors(os.path.join(d, fn), {k: sd[k] for k in part}, {"format": "pt"})
            wm.update({k: fn for k in part})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": sum(v.numel() * 4 for v in sd.values())}, "weight_map": wm}, f, indent=2)

    if want("bin") or want("bin_deflate"):
        d = base_folder("bin", fast=False)
        cfg = m.config.hf_config()
        cfg["architectures"] = ["BertForPreTraining"]
        write_config(d, cfg)
        full = {}
        for k, v in sd.items():
            full["bert." + k] = v.clone()
        q = "bert.encoder.layer.0.attention.self.query.weight"
        full[q] = full[q].t().contiguous().t()  # a non-contiguous view: strides (1, H)
        assert not full[q].is_contiguous()
        full["bert.embeddings.position_ids"] = torch.arange(a.max_pos).unsqueeze(0)
        head = mlm_head(m, a.seed)
        full.update(head)
        full["cls.predictions.decoder.weight"] = full["bert.embeddings.word_embeddings.weight"]  # tied: shared storage
        full["cls.predictions.decoder.bias"] = full["cls.predictions.bias"]
        full["cls.seq_relationship.weight"] = 0.02 * torch.randn(2, m.config.hidden_size)
        full["cls.seq_relationship.bias"] = torch.zeros(2)
        path = os.path.join(d, "pytorch_model.bin")
        torch.save(full, path)
        if want("bin_deflate"):
            d2 = mkdir(out, "bin_deflate")
            for fn in os.listdir(d):
                if fn != "pytorch_model.bin":
                    with open(os.path.join(d, fn), "rb") as src, open(os.path.join(d2, fn), "wb") as dst:
                        dst.write(src.read())
            with zipfile.ZipFile(path) as zin, zipfile.ZipFile(os.path.join(d2, "pytorch_model.bin"), "w", zipfile.ZIP_DEFLATED) as zout:
                for info in zin.infolist():
                    zout.writestr(info.filename, zin.read(info.filename))

    for kind, dt in (("f16", torch.float16), ("bf16", torch.bfloat16)):
        if want(kind):
            d = base_folder(kind)
            write_safetensors(os.path.join(d, "model.safetensors"), {k: v.to(dt) for k, v in sd.items()})

    if want("st"):
        d = base_folder("st", lowercase=False, strip_accents=None, chinese=False)
        write_safetensors(os.path.join(d, "model.safetensors"), sd)
        with open(os.path.join(d, "modules.json"), "w") as f:
            json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                       {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                       {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
                       {"idx": 3, "name": "3", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}], f, indent=2)
        with open(os.path.join(mkdir(d, "1_Pooling"), "config.json"), "w") as f:
            json.dump({"word_embedding_dimension": m.config.hidden_size, "pooling_mode_cls_token": False,
                       "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                       "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
                       "pooling_mode_lasttoken": False, "include_prompt": True}, f, indent=2)
        dd = mkdir(d, "2_Dense")
        out_f = 64
        g = torch.Generator().manual_seed(a.seed + 11)
        dense = {"linear.weight": 0.05 * torch.randn(out_f, m.config.hidden_size, generator=g),
                 "linear.bias": 0.02 * torch.randn(out_f, generator=g)}
        with open(os.path.join(dd, "config.json"), "w") as f:
            json.dump({"in_features": m.config.hidden_size, "out_features": out_f, "bias": True,
                       "activation_function": "torch.nn.modules.activation.Tanh"}, f)
        torch.save(dense, os.path.join(dd, "pytorch_model.bin"))
        mkdir(d, "2_Normalize")
        with open(os.path.join(d, "sentence_bert_config.json"), "w") as f:
            json.dump({"max_seq_length": 128, "do_lower_case": True}, f)
        write_expected(mkdir(out, "expected"), "st", {"pooling.dense.0.weight": dense["linear.weight"],
                                                      "pooling.dense.0.bias": dense["linear.bias"]})

    if want("distil"):
        dm = twin.random_model(a.shape, vocab_size=len(vocab), seed=a.seed + 1, with_pooler=False,
                               type_vocab_size=0, max_position_embeddings=a.max_pos)
        dsd = {k: v.detach().clone() for k, v in dm.state_dict().items()}
        d = mkdir(out, "distil")
        c = dm.config
        write_config(d, {"architectures": ["DistilBertModel"], "model_type": "distilbert", "vocab_size": c.vocab_size,
                         "dim": c.hidden_size, "n_layers": c.num_layers, "n_heads": c.num_heads,
                         "hidden_dim": c.intermediate_size, "max_position_embeddings": c.max_position_embeddings,
                         "activation": "gelu", "dropout": 0.1, "attention_dropout": 0.1, "sinusoidal_pos_embds": False})
        write_tokenizer(d, vocab, max_len=a.max_pos)
        write_safetensors(os.path.join(d, "model.safetensors"), {distil_name(k): v for k, v in dsd.items()})
        write_expected(mkdir(out, "expected"), "distil", dsd)

    if want("roberta"):
        # RobertaForMaskedLM layout: "roberta." prefix, positions past padding_idx 1, one token type,
        # an lm_head the converter drops.
        rm = twin.random_model(a.shape, vocab_size=len(vocab), seed=a.seed + 2, type_vocab_size=1,
                               position_offset=2, max_position_embeddings=a.max_pos + 2)
        rsd = {k: v.detach().clone() for k, v in rm.state_dict().items()}
        d = mkdir(out, "roberta")
        cfg = rm.config.hf_config()
        cfg["architectures"] = ["RobertaForMaskedLM"]
        write_config(d, cfg)
        write_tokenizer(d, vocab, max_len=a.max_pos)
        full = {"roberta." + k: v for k, v in rsd.items()}
        H = rm.config.hidden_size
        full["roberta.embeddings.position_ids"] = torch.arange(a.max_pos + 2).unsqueeze(0)
        full["lm_head.dense.weight"] = 0.02 * torch.randn(H, H)
        full["lm_head.dense.bias"] = torch.zeros(H)
        full["lm_head.layer_norm.weight"] = torch.ones(H)
        full["lm_head.layer_norm.bias"] = torch.zeros(H)
        full["lm_head.bias"] = torch.zeros(len(vocab))
        write_safetensors(os.path.join(d, "model.safetensors"), full)
        write_expected(mkdir(out, "expected"), "roberta", rsd)

    if want("mpnet"):
        # MPNetForMaskedLM layout: "mpnet." prefix, attention.attn.{q,k,v,o}, attention.LayerNorm, the
        # shared encoder.relative_attention_bias, no token types, an lm_head the converter drops.
        pm = twin.random_model(a.shape, vocab_size=len(vocab), seed=a.seed + 3, type_vocab_size=0,
                               position_offset=2, max_position_embeddings=a.max_pos + 2,
                               relative_attention_num_buckets=32, layer_norm_eps=1e-5)
        psd = {k: v.detach().clone() for k, v in pm.state_dict().items()}
        ren = [(".attention.self.query.", ".attention.attn.q."), (".attention.self.key.", ".attention.attn.k."),
               (".attention.self.value.", ".attention.attn.v."), (".attention.output.dense.", ".attention.attn.o."),
               (".attention.output.LayerNorm.", ".attention.LayerNorm.")]

        def mpnet_name(k):
            for x, y in ren:
                k = k.replace(x, y)
            return "mpnet." + k
        d = mkdir(out, "mpnet")
        cfg = pm.config.hf_config()
        cfg["architectures"] = ["MPNetForMaskedLM"]
        write_config(d, cfg)
        write_tokenizer(d, vocab, max_len=a.max_pos)
        full = {mpnet_name(k): v for k, v in psd.items()}
        H = pm.config.hidden_size
        full["lm_head.dense.weight"] = 0.02 * torch.randn(H, H)
        full["lm_head.dense.bias"] = torch.zeros(H)
        full["lm_head.layer_norm.weight"] = torch.ones(H)
        full["lm_head.layer_norm.bias"] = torch.zeros(H)
        full["lm_head.bias"] = torch.zeros(len(vocab))
        write_safetensors(os.path.join(d, "model.safetensors"), full)
        write_expected(mkdir(out, "expected"), "mpnet", psd)

    if want("legacy"):
        d = base_folder("legacy", fast=False)
        torch.save({k: sd[k] for k in list(sd)[:3]}, os.path.join(d, "pytorch_model.bin"), _use_new_zipfile_serialization=False)

    if want("hostile"):
        write_hostile(mkdir(out, "hostile"), m, vocab, a.max_pos)


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def write_hostile(d, m, vocab, max_pos, pickles_only=False):
    """Pickles that would run code if loaded with pickle.load. sembed must refuse each, naming the global."""
    import os as _os
    import subprocess
    payloads = {
        "os_system.pkl": pickle.dumps({"x": Evil(_os.system, "touch /tmp/sembed-pwned")}, protocol=2),
        "eval.pkl": pickle.dumps({"x": Evil(eval, "__import__('os').system('touch /tmp/sembed-pwned')")}, protocol=4),
        "subprocess.pkl": pickle.dumps(Evil(subprocess.Popen, ["touch", "/tmp/sembed-pwned"]), protocol=3),
    }
    for fn, b in payloads.items():
        with open(os.path.join(d, fn), "wb") as f:
            f.write(b)
    if pickles_only:
        return
    # A torch-style zip whose data.pkl is malicious: the real attack path.
    for name, b in payloads.items():
        folder = mkdir(d, "zip_" + name.split(".")[0])
        write_config(folder, m.config.hf_config())
        write_tokenizer(folder, vocab, fast=False, max_len=max_pos)
        with zipfile.ZipFile(os.path.join(folder, "pytorch_model.bin"), "w", zipfile.ZIP_STORED) as z:
            z.writestr("archive/data.pkl", b)
            z.writestr("archive/version", "3\n")


if __name__ == "__main__":
    main()
