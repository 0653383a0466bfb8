"""Golden data for the encoder runtime: a random-weight BERT of a real shape with the real vocabulary,
written as a .semb model, plus the PyTorch twin's outputs on real sentences, written as a second
.semb file (tensors + x.golden.* metadata) that tests read with sembed's own reader.

    /usr/bin/python3 models/gen/golden.py --shape bert-tiny --out-dir build/golden --name tiny \
        --vocab data/vocab/bert-base-uncased/vocab.txt \
        --sts data/sts/STSBenchmark/sts-dev.csv --singles 6 --pairs 4

Writes <out-dir>/<name>.semb and <out-dir>/<name>.golden.semb. If both exist and were made with the
same arguments (<name>.args), nothing is recomputed (bert-base takes a while and 440 MB).

Golden file contents, for input i (singles first, then pairs, all run as ONE padded batch of mixed
lengths with the attention mask, as HF does):
  in.<i>.ids, in.<i>.types       i32 [len]        [CLS] a [SEP] (b [SEP]), truncated to max_length
  out.<i>.hidden.<l>             f32 [len, H]     hidden_states[l], l = 0 (embeddings) .. num_layers
  out.<i>.emb.<mode>             f32 [dim]        pool(mode) -> stored Dense layers, NOT normalized
  x.golden.text.<i>.a / .b       strings          the text (b only for pairs)
  x.golden.n_inputs, x.golden.num_layers, x.golden.hidden_size, x.golden.dim, x.golden.max_length
Ids come from a minimal BERT tokenizer that is exact for the ASCII sentences used here (lowercase,
whitespace + ASCII punctuation split, greedy longest-match WordPiece); sentences with any other
character are skipped so the C tokenizer can be checked against the same ids.
"""
import argparse
import csv
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twin  # noqa: E402
from semb_writer import SembWriter  # noqa: E402

MODES = ["cls", "cls_before_pooler", "mean", "max", "first_last_avg"]
DENSE_ACTS = {"tanh": torch.tanh, "identity": lambda x: x, "relu": torch.relu,
              "gelu": torch.nn.functional.gelu}


def is_punct_ascii(c):
    o = ord(c)
    return 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126


def basic_tokens(text):
    out = []
    for w in text.lower().split():
        cur = ""
        for c in w:
            if is_punct_ascii(c):
                if cur:
                    out.append(cur)
                    cur = ""
                out.append(c)
            else:
                cur += c
        if cur:
            out.append(cur)
    return out


def wordpiece(word, vocab, unk):
    if len(word) > 100:
        return [unk]
    ids, start = [], 0
    while start < len(word):
        end, cur = len(word), None
        while start < end:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in vocab:
                cur = vocab[sub]
                break
            end -= 1
        if cur is None:
            return [unk]
        ids.append(cur)
        start = end
    return ids


def encode(text, vocab):
    ids = []
    for w in basic_tokens(text):
        ids += wordpiece(w, vocab, vocab["[UNK]"])
    return ids


def model_input(a, b, vocab, max_len):
    """[CLS] a [SEP] (b [SEP]) with HF longest_first truncation (ties cut b)."""
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    if b is None:
        a = a[: max_len - 2]
        return [cls] + a + [sep], [0] * (len(a) + 2)
    a, b = list(a), list(b)
    while len(a) + len(b) + 3 > max_len:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return [cls] + a + [sep] + b + [sep], [0] * (len(a) + 2) + [1] * (len(b) + 1)


def read_sentences(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(line) >= 7 and line[5].isascii() and line[6].isascii() and line[5] and line[6]:
                rows.append((line[5], line[6]))
    return rows


def pick_inputs(rows, n_singles, n_pairs, n_long, vocab, max_len, n_types=2):
    """Mixed lengths: walk the file with a stride so short and long sentences both appear."""
    texts = []
    step = max(1, len(rows) // max(1, n_singles + n_pairs + 1))
    for k in range(n_singles):
        texts.append((rows[(k * step) % len(rows)][0], None))
    for k in range(n_pairs):
        a, b = rows[(k * step + step // 2) % len(rows)]
        texts.append((a, b))
    for k in range(n_long):
        # longer than max_length on purpose: exercises truncation (single, then pair)
        para = " ".join(r[0] for r in rows[k * 40:(k + 1) * 40])
        texts.append((para, None) if k % 2 == 0 else (para, " ".join(r[1] for r in rows[k * 40:k * 40 + 3])))
    ins = []
    for a, b in texts:
        ids, tt = model_input(encode(a, vocab), None if b is None else encode(b, vocab), vocab, max_len)
        if n_types < 2:  # one token type (RoBERTa-style): every token is type 0
            tt = [0] * len(tt)
        ins.append((a, b, ids, tt))
    return ins


def mutate(w, spec):
    """Break a model on purpose (see --mutate)."""
    op, _, arg = spec.partition("=")
    if op == "drop_tensor":
        w.tensors = [t for t in w.tensors if t[0] != arg]
    elif op == "drop_key":
        w.kv = [e for e in w.kv if e[0] != arg]
    elif op == "set":
        key, typ, val = arg.split(":", 2)
        conv = {"u32": int, "f32": float, "str": str, "bool": lambda v: v == "true"}[typ]
        w.kv = [e for e in w.kv if e[0] != key]
        w.add(key, conv(val), typ)
    elif op in ("transpose", "dtype"):
        name, _, dt = arg.partition(":")
        for k, (n, d, dims, data) in enumerate(w.tensors):
            if n != name:
                continue
            if op == "transpose":
                w.tensors[k] = (n, d, list(reversed(dims)), data)
            else:  # same bytes reinterpreted as another dtype of the same size (e.g. f32 -> i32)
                w.tensors[k] = (n, dt, dims, data)
    else:
        raise ValueError(spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="bert-tiny", choices=list(twin.SHAPES))
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--sts", required=True, help="STS-B csv (tab-separated) for real sentences")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="f32", choices=["f32", "f16", "bf16", "q8_row"],
                    help="dtype of the Linear weights")
    ap.add_argument("--emb-dtype", default="f32", choices=["f32", "f16", "bf16"],
                    help="dtype of the embedding tables")
    ap.add_argument("--act", default="gelu", choices=["gelu", "gelu_tanh", "relu"])
    ap.add_argument("--type-vocab", type=int, default=2)
    ap.add_argument("--rel-buckets", type=int, default=0, help="MPNet relative attention bias buckets (32)")
    ap.add_argument("--position-offset", type=int, default=0,
                    help="RoBERTa-style first position id (padding_idx + 1, 2 for RoBERTa); adds that many positions")
    ap.add_argument("--no-pooler", action="store_true")
    ap.add_argument("--dense", default="", help="Dense layers after pooling, e.g. '256:tanh,128:identity'")
    ap.add_argument("--pooling", default="mean", choices=MODES)
    ap.add_argument("--normalize", action="store_true")
    ap.add_argument("--singles", type=int, default=6)
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--long", type=int, default=0, help="inputs longer than --max-length")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--mutate", action="append", default=[],
                    help="hostile-file tests: drop_tensor=NAME | drop_key=KEY | set=KEY:TYPE:VALUE | "
                         "transpose=NAME | dtype=NAME:DTYPE (applied to the model file only)")
    ap.add_argument("--model-only", action="store_true", help="write the model, no golden outputs")
    args = ap.parse_args()

    os.makedirs(args.out_dir, exist_ok=True)
    model_path = os.path.join(args.out_dir, args.name + ".semb")
    gold_path = os.path.join(args.out_dir, args.name + ".golden.semb")
    stamp_path = os.path.join(args.out_dir, args.name + ".args")
    stamp = json.dumps({k: v for k, v in sorted(vars(args).items()) if k not in ("out_dir", "vocab", "sts")})
    if os.path.exists(model_path) and (args.model_only or os.path.exists(gold_path)) and os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if f.read() == stamp:
                return 0

    with open(args.vocab, encoding="utf-8") as f:
        vocab_list = [line.rstrip("\n") for line in f]
    vocab = {t: i for i, t in enumerate(vocab_list)}

    torch.set_num_threads(1)
    m = twin.random_model(args.shape, vocab_size=len(vocab_list), seed=args.seed,
                          with_pooler=not args.no_pooler, hidden_act=args.act,
                          type_vocab_size=args.type_vocab, position_offset=args.position_offset,
                          relative_attention_num_buckets=args.rel_buckets,
                          max_position_embeddings=512 + args.position_offset)
    c = m.config
    dense = []
    in_dim = c.hidden_size
    g = torch.Generator().manual_seed(args.seed + 1)
    for spec in filter(None, args.dense.split(",")):
        out_dim, act = spec.split(":")
        lin = torch.nn.Linear(in_dim, int(out_dim))
        with torch.no_grad():
            lin.weight.copy_(torch.randn(int(out_dim), in_dim, generator=g) / in_dim ** 0.5)
            lin.bias.copy_(0.02 * torch.randn(int(out_dim), generator=g))
        dense.append((lin, act))
        in_dim = int(out_dim)

    w = SembWriter()
    w.add("general.architecture", "bert")
    w.add("general.name", f"golden-{args.name}")
    w.add("general.source.format", "safetensors")
    w.add("general.file_type", args.dtype if args.dtype != "q8_row" else "q8")
    for key, val in [("vocab_size", c.vocab_size), ("hidden_size", c.hidden_size),
                     ("num_layers", c.num_layers), ("num_heads", c.num_heads),
                     ("intermediate_size", c.intermediate_size),
                     ("max_position_embeddings", c.max_position_embeddings),
                     ("type_vocab_size", c.type_vocab_size)]:
        w.add("bert." + key, val, "u32")
    if args.position_offset:
        w.add("bert.position_offset", args.position_offset, "u32")
    if args.rel_buckets:
        w.add("bert.relative_attention_buckets", args.rel_buckets, "u32")
        w.add("bert.relative_attention_max_distance", 128, "u32")
    w.add("bert.layer_norm_eps", c.layer_norm_eps, "f32")
    w.add("bert.hidden_act", args.act)
    w.add("bert.has_pooler", not args.no_pooler)
    w.add("bert.has_mlm_head", False)
    w.add("tokenizer.model", "wordpiece")
    w.add("tokenizer.vocab", vocab_list, "arr_str")
    for key in ["lowercase", "strip_accents", "handle_chinese_chars", "clean_text"]:
        w.add("tokenizer." + key, True)
    for key, tok in [("unk", "[UNK]"), ("cls", "[CLS]"), ("sep", "[SEP]"), ("pad", "[PAD]"), ("mask", "[MASK]")]:
        w.add(f"tokenizer.{key}_token", tok)
    w.add("tokenizer.continuing_prefix", "##")
    w.add("tokenizer.max_input_chars_per_word", 100, "u32")
    w.add("tokenizer.model_max_length", min(512, c.max_position_embeddings - c.position_offset), "u32")
    w.add("pooling.mode", args.pooling)
    w.add("pooling.normalize", bool(args.normalize))
    if dense:
        w.add("pooling.dense_count", len(dense), "u32")
        for k, (_, act) in enumerate(dense):
            w.add(f"pooling.dense.{k}.activation", act)

    # Store every parameter; copy back what a reader decodes so the twin computes with exactly it.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith("relative_attention_bias.weight"):
                dt = "f32"
            elif name.endswith("_embeddings.weight"):
                dt = args.emb_dtype
            elif p.dim() == 2:
                dt = args.dtype
            else:
                dt = "f32"
            p.copy_(torch.from_numpy(np.array(w.add_tensor(name, p, dt), dtype=np.float32)))
        for k, (lin, _) in enumerate(dense):
            lin.weight.copy_(torch.from_numpy(np.array(
                w.add_tensor(f"pooling.dense.{k}.weight", lin.weight, args.dtype), dtype=np.float32)))
            w.add_tensor(f"pooling.dense.{k}.bias", lin.bias, "f32")
    for mut in args.mutate:
        mutate(w, mut)
    w.write(model_path)
    if args.model_only:
        with open(stamp_path, "w") as f:
            f.write(stamp)
        return 0

    rows = read_sentences(args.sts)
    ins = pick_inputs(rows, args.singles, args.pairs, args.long, vocab, args.max_length, c.type_vocab_size)
    B, T = len(ins), max(len(x[2]) for x in ins)
    ids = torch.zeros(B, T, dtype=torch.long)
    tt = torch.zeros(B, T, dtype=torch.long)
    mask = torch.zeros(B, T, dtype=torch.long)
    for i, (_, _, x, t) in enumerate(ins):
        ids[i, :len(x)] = torch.tensor(x)
        tt[i, :len(x)] = torch.tensor(t)
        mask[i, :len(x)] = 1
    with torch.no_grad():
        last, hs, pooled = m(ids, tt, mask)
        embs = {}
        for mode in MODES:
            e = twin.pool(last, hs, pooled, mask, mode)
            for lin, act in dense:
                e = DENSE_ACTS[act](lin(e))
            embs[mode] = e

    gw = SembWriter()
    gw.add("x.golden.n_inputs", B, "u32")
    gw.add("x.golden.num_layers", c.num_layers, "u32")
    gw.add("x.golden.hidden_size", c.hidden_size, "u32")
    gw.add("x.golden.dim", in_dim, "u32")
    gw.add("x.golden.max_length", args.max_length, "u32")
    for i, (a, b, x, t) in enumerate(ins):
        gw.add(f"x.golden.text.{i}.a", a)
        if b is not None:
            gw.add(f"x.golden.text.{i}.b", b)
        n = len(x)
        gw.add_tensor(f"in.{i}.ids", np.array(x, dtype=np.int32), "i32")
        gw.add_tensor(f"in.{i}.types", np.array(t, dtype=np.int32), "i32")
        for l, h in enumerate(hs):
            gw.add_tensor(f"out.{i}.hidden.{l}", h[i, :n], "f32")
        for mode in MODES:
            gw.add_tensor(f"out.{i}.emb.{mode}", embs[mode][i], "f32")
    gw.write(gold_path)
    with open(stamp_path, "w") as f:
        f.write(stamp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
