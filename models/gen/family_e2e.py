#!/usr/bin/python3
"""End-to-end fixtures for the non-BERT families: a random-weight RoBERTa (byte-level BPE
tokenizer.json) or XLM-R (SentencePiece Unigram tokenizer.json) checkpoint in HuggingFace layout,
the HF tokenizer's ids for some texts and pairs (npm `tokenizers`, tests/tokenizer/hf_json_oracle.js),
and the PyTorch twin's mean-pooled last hidden state for each, so a test can check text -> ids ->
embedding through sembed against HF + PyTorch.

    /usr/bin/python3 models/gen/family_e2e.py --family roberta|xlmr --out DIR

DIR/model/      config.json (RobertaModel / XLMRobertaModel), model.safetensors ("roberta." names),
                tokenizer.json (tests/tokenizer/hf/roberta_bpe.json or unigram_bytefallback.json)
DIR/expected.json  {"inputs": [[a, b or null]...], "ids": [[...]...], "mean": [[...]...]}
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import make_fixtures as mf  # noqa: E402
import twin  # noqa: E402

TOKENIZERS = {"roberta": ("roberta_bpe.json", "RobertaModel", "roberta"),
              "xlmr": ("unigram_bytefallback.json", "XLMRobertaModel", "xlm-roberta"),
              # a folder with sentencepiece.bpe.model and no tokenizer.json (sembed converts the
              # .model); HF's ids come from the tokenizer.json that spm_to_json.py --xlmr made of it
              "xlmr_spm": ("xlmr_spm.json", "XLMRobertaModel", "xlm-roberta")}
SPM_MODEL = {"xlmr_spm": os.path.join("tests", "tokenizer", "spm", "test_model.model")}
SINGLES = ["Hello, world! This is a test.", "A man is playing a guitar.", "naïve café déjà vu — 東京 2024",
           "   leading and trailing spaces   ", "Don't stop believin'!", "ＦＵＬＬ　ｗｉｄｔｈ ①② ﬁne Ⅻ e\u0301"]
PAIRS = [("the quick brown fox", "jumps over the lazy dog"), ("How do I bake bread?", "Knead the dough, then bake it.")]


def oracle(tok_json, texts, pairs):
    with tempfile.TemporaryDirectory() as td:
        inp, out = os.path.join(td, "in.txt"), os.path.join(td, "out.txt")
        with open(inp, "w", encoding="utf-8") as f:
            f.write("".join((f"{t[0]}\t{t[1]}" if pairs else t) + "\n" for t in texts))
        cmd = ["node", os.path.join(ROOT, "tests", "tokenizer", "hf_json_oracle.js"), "--tokenizer", tok_json,
               "--input", inp, "--output", out] + (["--pairs"] if pairs else [])
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
        with open(out, encoding="utf-8") as f:
            return [[int(x) for x in line.split("\t")[0].split()] for line in f]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=sorted(TOKENIZERS), required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(1)
    tj_name, arch, model_type = TOKENIZERS[a.family]
    tj = os.path.join(ROOT, "tests", "tokenizer", "hf", tj_name)
    with open(tj, encoding="utf-8") as f:
        tok = json.load(f)
    vocab = tok["model"]["vocab"]
    V = len(vocab) + sum(1 for t in tok.get("added_tokens", []) if t["id"] >= len(vocab))
    pad_id = next((t["id"] for t in tok.get("added_tokens", []) if t["content"] == "<pad>"), 1)
    m = twin.random_model("bert-tiny", vocab_size=V, seed=a.seed, type_vocab_size=1, position_offset=pad_id + 1,
                          max_position_embeddings=512 + pad_id + 1, with_pooler=False)
    d = mf.mkdir(a.out, "model")
    cfg = m.config.hf_config()
    cfg.update({"architectures": [arch], "model_type": model_type, "pad_token_id": pad_id})
    mf.write_config(d, cfg)
    if a.family in SPM_MODEL:
        shutil.copy(os.path.join(ROOT, SPM_MODEL[a.family]), os.path.join(d, "sentencepiece.bpe.model"))
    else:
        shutil.copy(tj, os.path.join(d, "tokenizer.json"))
    mf.write_safetensors(os.path.join(d, "model.safetensors"), {"roberta." + k: v for k, v in m.state_dict().items()})
    ids = oracle(tj, SINGLES, False) + oracle(tj, PAIRS, True)
    mean = []
    with torch.no_grad():
        for x in ids:
            t = torch.tensor([x])
            last, _, _ = m(t, torch.zeros_like(t), torch.ones_like(t))
            mean.append(last[0].mean(0).tolist())
    with open(os.path.join(a.out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"inputs": [[s, None] for s in SINGLES] + [list(p) for p in PAIRS], "ids": ids, "mean": mean}, f,
                  ensure_ascii=False)


if __name__ == "__main__":
    main()
