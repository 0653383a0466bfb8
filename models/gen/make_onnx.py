"""Export the PyTorch BertModel twin (models/gen/twin.py) to ONNX with torch.onnx.export, and write
the matching HuggingFace folder next to it so that importers can be compared tensor by tensor:

    OUT/model.onnx          torch.onnx.export, dynamic batch/sequence axes, opset 14 (or --opset)
    OUT/model.safetensors   the twin's state dict, HF names (no "bert." prefix), F32, written directly
    OUT/config.json         HF BertModel config
    OUT/vocab.txt           the real bert-base-uncased vocabulary, or a cut-down one (--vocab-size)
    OUT/tokenizer_config.json

Run with Debian's interpreter (torch 1.13 + onnx):
    /usr/bin/python3 models/gen/make_onnx.py --shape bert-tiny --vocab-size 1000 --out /tmp/x
Shapes: bert-tiny (L2 H128 A2 I512), minilm-l6, bert-base, or micro (L2 H32 A2 I128, the committed
fixture: all variants of it fit in well under 1 MB). Weights are random (seeded), see twin.py.
"""
import argparse
import types
import json
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twin  # noqa: E402

# Other families on BERT shapes (the bert-base-uncased vocabulary stands in for theirs: the body is
# what is measured): RoBERTa / XLM-R positions (offset 2, one token type), MPNet (+ relative bias).
FAMILIES = {"roberta-base": ("bert-base", dict(type_vocab_size=1, position_offset=2)),
            "mpnet-base": ("bert-base", dict(type_vocab_size=0, position_offset=2, relative_attention_num_buckets=32,
                                             layer_norm_eps=1e-5))}
EXTRA_SHAPES = {"micro": dict(num_layers=2, hidden_size=32, num_heads=2, intermediate_size=128),
                "nano": dict(num_layers=1, hidden_size=8, num_heads=2, intermediate_size=16)}  # fuzz seeds
# The same families on the micro shape (test fixtures for the ONNX importer).
FAMILIES.update({"roberta-micro": (EXTRA_SHAPES["micro"], dict(type_vocab_size=1, position_offset=2)),
                 "mpnet-micro": (EXTRA_SHAPES["micro"], dict(type_vocab_size=0, position_offset=2,
                                                             relative_attention_num_buckets=32, layer_norm_eps=1e-5)),
                 "roberta-nano": (EXTRA_SHAPES["nano"], dict(type_vocab_size=1, position_offset=2)),  # fuzz seeds
                 "mpnet-nano": (EXTRA_SHAPES["nano"], dict(type_vocab_size=0, position_offset=2,
                                                           relative_attention_num_buckets=32, layer_norm_eps=1e-5))})
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from datafile import data_file  # noqa: E402  (data/README.md: $SEMBED_DATA_DIR, data/, ../shared/data)

DEFAULT_VOCAB = data_file("vocab/bert-base-uncased/vocab.txt", required=False) or "data/vocab/bert-base-uncased/vocab.txt"


def hf_position_forward(self, ids, tt):
    """transformers' create_position_ids_from_input_ids (RoBERTa, XLM-R): cumsum(mask) * mask + pad."""
    pad = self.position_offset - 1
    mask = ids.ne(pad).int()
    pos = (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + pad
    x = self.word_embeddings(ids) + self.position_embeddings(pos)
    if hasattr(self, "token_type_embeddings"):
        x = x + self.token_type_embeddings(tt)
    return self.dropout(self.LayerNorm(x))


def load_vocab(path, size):
    """The real vocabulary, or a cut-down one of `size` tokens: the special tokens, then single
    characters and their ## forms, then whole words in vocabulary order (the common ones first)."""
    with open(path, encoding="utf-8") as f:
        full = [line.rstrip("\n") for line in f]
    if not size or size >= len(full):
        return full
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [t for t in full if len(t) == 1 and t.isascii()]
    sub = ["##" + c for c in chars if "##" + c in set(full)]
    words = [t for t in full[1996:] if not t.startswith("##") and len(t) > 1]
    out, seen = [], set()
    for t in specials + chars + sub + words:
        if t not in seen:
            out.append(t)
            seen.add(t)
        if len(out) == size:
            break
    return out


def write_safetensors(path, tensors):
    """safetensors: u64 header length, JSON header {name: {dtype, shape, data_offsets}}, data."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class Wrapper(torch.nn.Module):
    """ONNX outputs: last hidden state, and the pooler output when the model has a pooler."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, token_type_ids, attention_mask):
        last, _, pooled = self.m(input_ids, token_type_ids, attention_mask)
        return (last, pooled) if pooled is not None else (last,)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="bert-tiny")
    ap.add_argument("--vocab", default=DEFAULT_VOCAB, help="vocab.txt to use (default: bert-base-uncased)")
    ap.add_argument("--vocab-size", type=int, default=0, help="cut the vocabulary down to N tokens")
    ap.add_argument("--max-pos", type=int, default=512)
    ap.add_argument("--act", default="gelu", choices=["gelu", "gelu_tanh", "relu"])
    ap.add_argument("--eps", type=float, default=1e-12)
    ap.add_argument("--no-pooler", action="store_true")
    ap.add_argument("--opset", type=int, default=14)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--external", action="store_true", help="store initializers in model.onnx.data")
    ap.add_argument("--hf-positions", action="store_true",
                    help="position ids as HF's RoBERTa computes them (cumsum of the non-pad mask + padding_idx) "
                         "instead of arange + offset: the same numbers for unpadded input, another graph")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    vocab = load_vocab(a.vocab, a.vocab_size)
    shape, fam = FAMILIES.get(a.shape, (EXTRA_SHAPES.get(a.shape, a.shape), {}))
    fam = dict(fam)
    kw = dict(max_position_embeddings=a.max_pos + fam.get("position_offset", 0), hidden_act=a.act,
              layer_norm_eps=fam.pop("layer_norm_eps", a.eps), **fam)
    m = twin.random_model(shape, vocab_size=len(vocab), seed=a.seed, with_pooler=not a.no_pooler, **kw)
    if a.hf_positions:
        m.embeddings.forward = types.MethodType(hf_position_forward, m.embeddings)
    os.makedirs(a.out, exist_ok=True)

    sd = {k: v for k, v in m.state_dict().items()}
    write_safetensors(os.path.join(a.out, "model.safetensors"), sd)
    cfg = m.config.hf_config()
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(a.out, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "model_max_length": a.max_pos, "tokenizer_class": "BertTokenizer"}, f)

    B, T = 2, 7
    g = torch.Generator().manual_seed(a.seed)
    ids = torch.randint(0, len(vocab), (B, T), generator=g)
    tt = torch.zeros_like(ids)
    mask = torch.ones_like(ids)
    outs = ["last_hidden_state"] + ([] if a.no_pooler else ["pooler_output"])
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "token_type_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"}, "last_hidden_state": {0: "batch", 1: "sequence"}}
    if not a.no_pooler:
        axes["pooler_output"] = {0: "batch"}
    path = os.path.join(a.out, "model.onnx")
    with torch.no_grad():
        torch.onnx.export(Wrapper(m), (ids, tt, mask), path, opset_version=a.opset,
                          input_names=["input_ids", "token_type_ids", "attention_mask"],
                          output_names=outs, dynamic_axes=axes, do_constant_folding=True)
    if a.external:
        import onnx
        model = onnx.load(path)
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="model.onnx.data", size_threshold=0)
    print(f"wrote {a.out}: {a.shape} vocab {len(vocab)} opset {a.opset}", file=sys.stderr)


if __name__ == "__main__":
    main()
