"""Round-trip check of `sembed export`: load the exported folder with the PyTorch twin (twin.py) the
way sentence-transformers would (config.json + model.safetensors, modules.json, 1_Pooling, N_Dense,
Normalize), embed the given token ids and compare with the embeddings sembed computed.

Input file (little-endian): u32 n, u32 t, u32 dim, i32 ids[n*t], i32 lens[n], f32 expected[n*dim].
Prints the max abs diff; exit 0 if <= 1e-4 (status 1 otherwise, 2 on a malformed folder).

Usage: /usr/bin/python3 models/gen/export_check.py EXPORT_DIR CASE.bin
"""
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twin  # noqa: E402

DT = {"F32": np.float32, "F16": np.float16, "I32": np.int32}


def load_safetensors(path):
    """safetensors by its spec: u64 header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in hdr.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        arr = np.frombuffer(raw[base + b:base + end], dtype=DT[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float32).copy())
    return out


def main():
    d, case = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(d, "config.json")))
    act = {"gelu": "gelu", "gelu_new": "gelu_tanh", "relu": "relu"}[cfg["hidden_act"]]
    c = twin.Config(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], num_layers=cfg["num_hidden_layers"],
                    num_heads=cfg["num_attention_heads"], intermediate_size=cfg["intermediate_size"],
                    max_position_embeddings=cfg["max_position_embeddings"], type_vocab_size=cfg["type_vocab_size"],
                    layer_norm_eps=cfg["layer_norm_eps"], hidden_act=act)
    sd = load_safetensors(os.path.join(d, "model.safetensors"))
    model = twin.BertModel(c, with_pooler="pooler.dense.weight" in sd)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        print("state dict mismatch: missing %s unexpected %s" % (missing, unexpected))
        sys.exit(2)
    model.eval()
    vocab = open(os.path.join(d, "vocab.txt"), encoding="utf-8").read().split("\n")[:-1]
    if len(vocab) != cfg["vocab_size"]:
        print("vocab.txt has %d tokens, config %d" % (len(vocab), cfg["vocab_size"]))
        sys.exit(2)

    raw = open(case, "rb").read()
    n, t, dim = struct.unpack("<III", raw[:12])
    o = 12
    ids = np.frombuffer(raw[o:o + 4 * n * t], dtype="<i4").reshape(n, t); o += 4 * n * t
    lens = np.frombuffer(raw[o:o + 4 * n], dtype="<i4"); o += 4 * n
    exp = np.frombuffer(raw[o:o + 4 * n * dim], dtype="<f4").reshape(n, dim)
    ids = torch.from_numpy(ids.astype(np.int64))
    mask = (torch.arange(t)[None, :] < torch.from_numpy(lens.astype(np.int64))[:, None]).long()

    with torch.no_grad():
        last, hs, _ = model(ids, torch.zeros_like(ids), mask)
        x = None
        for mod in json.load(open(os.path.join(d, "modules.json"))):
            kind = mod["type"].rsplit(".", 1)[-1]
            path = os.path.join(d, mod["path"])
            if kind == "Transformer":
                continue
            if kind == "Pooling":
                pc = json.load(open(os.path.join(path, "config.json")))
                m = mask.unsqueeze(-1).float()
                if pc["pooling_mode_cls_token"]:
                    x = last[:, 0]
                elif pc["pooling_mode_mean_tokens"]:
                    x = (last * m).sum(1) / m.sum(1)
                elif pc["pooling_mode_max_tokens"]:
                    x = last.masked_fill(m == 0, -1e9).max(1).values
                else:
                    print("unsupported pooling config", pc)
                    sys.exit(2)
            elif kind == "Dense":
                dc = json.load(open(os.path.join(path, "config.json")))
                w = load_safetensors(os.path.join(path, "model.safetensors"))
                x = x @ w["linear.weight"].t() + (w["linear.bias"] if dc["bias"] else 0)
                a = dc["activation_function"].rsplit(".", 1)[-1]
                x = {"Tanh": torch.tanh, "ReLU": torch.relu, "GELU": torch.nn.functional.gelu,
                     "Identity": lambda v: v}[a](x)
            elif kind == "Normalize":
                x = torch.nn.functional.normalize(x, dim=-1)
            else:
                print("unknown module", kind)
                sys.exit(2)
    diff = float((x - torch.from_numpy(exp.copy())).abs().max())
    print("export round trip: %d sentences, dim %d, max abs diff %.3g" % (n, dim, diff))
    sys.exit(0 if diff <= 1e-4 else 1)


if __name__ == "__main__":
    main()
