#!/usr/bin/python3
"""Arrange teacher-labelled text as pairs of related sentences for `sembed train --shuffle-group 2`.

usage: /usr/bin/python3 models/teacher/arrange.py --data DATA_DIR --text A.txt A.npy [--text B.txt B.npy ...]
           [--pairs PAIRS.tsv ...] --out ALL.txt [--seed 1] [--wordnet /usr/share/wordnet]

Every --text file comes with the teacher's .npy for it (row i = line i). The output ALL.txt and
ALL.npy (the teacher rows gathered to match, float32) hold groups of two consecutive lines:
  1. related pairs whose two sentences both have a teacher vector: each --pairs file's rows
     (extra_text.py's source / edited copy), then the pairs of the shared training sets
     (prepare_data.py's readers: SICK train A/B of every label, MSR paraphrase train pairs of both
     qualities, RTE text / hypothesis) and WordNet example / synonym-substituted example;
  2. every other line, once, paired with a random other line.
Pairs are shuffled (seeded). With --shuffle-group 2 each pair lands in one batch, so the in-batch
losses see the teacher's similarity of near neighbours, not only of unrelated sentences. The
data are the --text files' own sentences: nothing from STS-B dev/test or STS12 (prepare_data.py and
extra_text.py drop them) is added here.
"""
import argparse
import hashlib
import json
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sembed-mini"))
import prepare_data as pd  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--text", nargs=2, action="append", required=True, metavar=("TXT", "NPY"))
    ap.add_argument("--pairs", action="append", default=[])
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    ap.add_argument("--no-pairs", action="store_true", help="random pairs only (plain shuffling, the same rows)")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    texts, mats = [], []
    for txt, npy in a.text:
        with open(txt, encoding="utf-8") as f:
            lines = f.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        m = np.load(npy, mmap_mode="r")
        if m.shape[0] != len(lines):
            sys.exit("arrange: %s has %d lines but %s %d rows" % (txt, len(lines), npy, m.shape[0]))
        texts.append(lines)
        mats.append(m)
    where = {}
    for fi, lines in enumerate(texts):
        for li, s in enumerate(lines):
            where.setdefault(s, (fi, li))
    banned, _ = pd.eval_sentences(a.data)

    pairs, stats = [], {}

    def add(name, rows):
        if a.no_pairs:
            return
        n = 0
        for x, y in rows:
            if x in where and y in where and x != y and pd.norm(x) not in banned and pd.norm(y) not in banned:
                pairs.append((x, y))
                n += 1
        stats[name] = n
        print("arrange: %s %d pairs" % (name, n), file=sys.stderr)

    for p in a.pairs:
        with open(p, encoding="utf-8") as f:
            add(os.path.basename(p), [tuple(l.rstrip("\n").split("\t")[:2]) for l in f if "\t" in l])
    tr = os.path.join(a.data, "train")
    sick = []
    with open(os.path.join(tr, "sick", "SICK_train.txt"), encoding="utf-8") as f:
        f.readline()
        for line in f:
            fl = line.rstrip("\r\n").split("\t")
            if len(fl) >= 3:
                sick.append((pd.clean(fl[1]), pd.clean(fl[2])))
    add("sick_train", sick)
    _, msr_text = pd.msr_train(os.path.join(tr, "msr-para", "msr-para-train.tsv"))
    add("msr_para_train", list(zip(msr_text[0::2], msr_text[1::2])))
    _, rte_text = pd.rte(os.path.join(tr, "rte"))
    add("rte", list(zip(rte_text[0::2], rte_text[1::2])))
    _, _, wn_rows = pd.wordnet(a.wordnet)
    add("wordnet_substitution", [(r[0], r[1]) for r in wn_rows])

    used = set(s for p in pairs for s in p)
    rest = [s for lines in texts for s in lines if s not in used]
    rest = list(dict.fromkeys(rest))
    rng.shuffle(rest)
    if len(rest) % 2:
        rest.pop()
    stats["random_pairs"] = len(rest) // 2
    pairs += list(zip(rest[0::2], rest[1::2]))
    rng.shuffle(pairs)
    order = [s for p in pairs for s in p]
    D = mats[0].shape[1]
    out = np.empty((len(order), D), dtype="<f4")
    for i, s in enumerate(order):
        fi, li = where[s]
        out[i] = mats[fi][li]
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("".join(s + "\n" for s in order))
    os.replace(tmp, a.out)
    npy = os.path.splitext(a.out)[0] + ".npy"
    with open(npy + ".tmp", "wb") as f:
        np.save(f, out)
    os.replace(npy + ".tmp", npy)
    stats["lines"] = len(order)
    stats["sha256"] = hashlib.sha256(open(a.out, "rb").read()).hexdigest()
    with open(a.out + ".json", "w") as f:
        json.dump(stats, f, indent=1, sort_keys=True)
    # The teacher's identity travels with the .npy (sembed train copies X.json of X.npy into the
    # student): the first input's, plus where the rows came from.
    ident = {}
    try:
        ident = json.load(open(os.path.splitext(a.text[0][1])[0] + ".json"))
    except (OSError, ValueError):
        pass
    ident["arranged"] = {"script": "models/teacher/arrange.py", "inputs": [
        {"text_sha256": hashlib.sha256(open(t, "rb").read()).hexdigest(), "rows": len(x)} for (t, _), x in zip(a.text, texts)],
        "groups_of_2": stats}
    with open(os.path.splitext(npy)[0] + ".json.tmp", "w") as f:
        json.dump(ident, f, sort_keys=True)
    os.replace(os.path.splitext(npy)[0] + ".json.tmp", os.path.splitext(npy)[0] + ".json")
    print("arrange: %d lines (%d groups of 2) -> %s, %s" % (len(order), len(pairs), a.out, npy), file=sys.stderr)


if __name__ == "__main__":
    main()
