#!/usr/bin/python3
"""The teacher's own STS scores, measured the way `sembed eval` measures a sembed model.

usage: /usr/bin/python3 models/teacher/teacher_sts.py --data DATA_DIR --work DIR [--json OUT.json]

Writes DIR/sts_sentences.txt (every distinct sentence of STS-B dev and the STS12 sets), embeds it
with models/teacher/embed.js (cached by chunk in DIR/teacher like any teacher run), then prints the
Spearman correlation x100 of cosine similarity against the gold scores for STS-B dev, each STS12
set and STS12 "all" (SentEval's: the concatenation of the five sets). Used to tell what a student
that follows the teacher can reach on each set; no model is trained on these sentences.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
STS12 = ["MSRpar", "MSRvid", "SMTeuroparl", "surprise.OnWN", "surprise.SMTnews"]


def rank(x):
    # average ranks for ties, as scipy.stats.rankdata
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    xs = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return r


def spearman(a, b):
    ra, rb = rank(np.asarray(a, float)), rank(np.asarray(b, float))
    return float(np.corrcoef(ra, rb)[0, 1])


def read_sets(data):
    sets = {}
    rows = []
    with open(os.path.join(data, "sts", "STSBenchmark", "sts-dev.csv"), encoding="utf-8") as f:
        for line in f:
            fl = line.rstrip("\r\n").split("\t")
            if len(fl) >= 7:
                rows.append((fl[5], fl[6], float(fl[4])))
    sets["STS-B dev"] = rows
    d12 = os.path.join(data, "sts", "STS12-en-test")
    for n in STS12:
        rows = []
        with open(os.path.join(d12, "STS.input.%s.txt" % n), encoding="utf-8") as fi, \
                open(os.path.join(d12, "STS.gs.%s.txt" % n), encoding="utf-8") as fg:
            for li, lg in zip(fi, fg):
                a = li.rstrip("\r\n").split("\t")
                if lg.strip() == "" or len(a) < 2:
                    continue
                rows.append((a[0], a[1], float(lg)))
        sets["STS12 " + n] = rows
    return sets


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--json")
    a = ap.parse_args()
    sets = read_sets(a.data)
    # The teacher reads one sentence a line: tabs and newlines inside a sentence become spaces.
    clean = lambda s: " ".join(s.split()) or "."
    sents = sorted({clean(s) for rows in sets.values() for r in rows for s in r[:2]})
    os.makedirs(a.work, exist_ok=True)
    txt = os.path.join(a.work, "sts_sentences.txt")
    with open(txt, "w", encoding="utf-8") as f:
        f.write("".join(s + "\n" for s in sents))
    npy = subprocess.run(["node", os.path.join(HERE, "embed.js"), "--input", txt, "--out-dir", os.path.join(a.work, "teacher")],
                         check=True, stdout=subprocess.PIPE, text=True).stdout.strip().splitlines()[-1]
    vec = np.load(npy)
    vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
    idx = {s: i for i, s in enumerate(sents)}
    out, all_cos, all_gold = {}, [], []
    for name, rows in sets.items():
        cos = [float(vec[idx[clean(x)]] @ vec[idx[clean(y)]]) for x, y, _ in rows]
        gold = [g for _, _, g in rows]
        out[name] = round(100 * spearman(cos, gold), 2)
        if name.startswith("STS12"):
            all_cos += cos
            all_gold += gold
    out["STS12 all"] = round(100 * spearman(all_cos, all_gold), 2)
    for k, v in out.items():
        print("%-24s %6.2f" % (k, v))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"teacher": "USE lite (models/teacher)", "spearman_x100": out, "sentences": len(sents)}, f, indent=1)


if __name__ == "__main__":
    main()
