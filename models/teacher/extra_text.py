#!/usr/bin/python3
"""More distillation text beyond prepare_data.py's mlm.txt, from Debian packages and the shared data.

usage: /usr/bin/python3 models/teacher/extra_text.py --data DATA_DIR --exclude mlm.txt --out extra.txt
           [--seed 1] [--gcide-max 100000] [--variants 1]

Distillation only needs sentences (the teacher labels them), and more varied sentences teach the
student more of the teacher's geometry. Sources, each cleaned and decontaminated exactly as
prepare_data.py does (any sentence whose normalised form is in any file under DATA_DIR/sts is
dropped; so is any sentence already in --exclude):
  fortunes      Debian package `fortunes` (/usr/share/games/fortunes, the non-offensive set):
                quotations and sayings, split into sentences
  gcide         Debian package `dict-gcide` (GNU Collaborative International Dictionary of
                English, /usr/share/dictd/gcide.dict.dz): definition sentences, markup removed,
                a seeded sample of --gcide-max
  variants      for every natural sentence of the shared training text (wiki1m_head, sentence
                polarity, subjectivity, SICK train, MSR paraphrase train, RTE), --variants
                edited copies: a contiguous crop (55-90% of the words) or 1-3 words deleted.
                The teacher scores near-duplicates, so the student learns how much each edit
                moves a sentence, which is what STS asks of it.
Output: one sentence a line, deduplicated, in a seeded shuffle; counts per source on stderr and
in OUT.json; OUT.pairs.tsv lists each kept variant after its source (tab-separated).
"""
import argparse
import gzip
import hashlib
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sembed-mini"))
import prepare_data as pd  # noqa: E402  (norm, clean, read_lines, eval_sentences, sick_train, msr_train, rte)

SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def words_ok(s, lo, hi):
    n = len(s.split())
    if n < lo or n > hi:
        return False
    letters = sum(c.isalpha() for c in s)
    return letters >= 0.6 * len(s)


def fortunes(root):
    out = []
    if not os.path.isdir(root):
        return None
    for n in sorted(os.listdir(root)):
        p = os.path.join(root, n)
        if "." in n or not os.path.isfile(p):
            continue  # .dat indexes, .u8 links
        with open(p, encoding="utf-8", errors="replace") as f:
            recs = f.read().split("\n%\n")
        for r in recs:
            lines = [l.strip() for l in r.split("\n")]
            lines = [l for l in lines if l and not l.startswith("--") and not l.startswith("-- ")]
            text = pd.clean(" ".join(lines))
            if not text or "|" in text or "  " in r[:40] and r.count("\n") > 6:
                continue  # tables and ascii art
            for s in SENT_SPLIT.split(text):
                s = s.strip(' "')
                if words_ok(s, 4, 50):
                    out.append(s)
    return out


def gcide(path):
    if not os.path.exists(path):
        return None
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        text = f.read()
    out = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if lines and "\\" in lines[0]:
            lines = lines[1:]  # "Headword \He*ad"word\, n. [etymology]" line
        body = pd.clean(" ".join(l.strip() for l in lines))
        body = re.sub(r"\[[^\]]*\]", " ", body)          # [1913 Webster], [R.], [Obs.]
        body = re.sub(r"--[A-Z][\w.' ]*", " ", body)       # --Shak. citations
        body = re.sub(r"\{[^}]*\}|\\[^\\]*\\", " ", body)  # {phrases}, \pronunciations\
        body = re.sub(r"^\s*\d+\.\s*", "", body)
        body = re.sub(r"\((?:[A-Z][a-z]*\.?\s*)+\)", " ", body)  # (Anat.), (Zool.)
        body = pd.clean(body)
        for s in SENT_SPLIT.split(body):
            s = re.sub(r"^\d+\.\s*", "", s).strip(" ;,")
            if words_ok(s, 5, 40) and not s.startswith(("Syn.", "See ", "Cf.")):
                out.append(s)
    return out


def variant(s, rng):
    w = s.split()
    if len(w) < 5:
        return None
    if rng.random() < 0.5:
        k = max(3, int(round(len(w) * rng.uniform(0.55, 0.9))))
        a = rng.randrange(0, len(w) - k + 1)
        v = w[a:a + k]
    else:
        v = list(w)
        for _ in range(rng.randint(1, min(3, len(w) - 3))):
            del v[rng.randrange(len(v))]
    return " ".join(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--exclude", required=True, help="text already embedded (mlm.txt / distill.txt)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--gcide-max", type=int, default=100000)
    ap.add_argument("--variants", type=int, default=1)
    ap.add_argument("--fortunes-dir", default="/usr/share/games/fortunes")
    ap.add_argument("--gcide", default="/usr/share/dictd/gcide.dict.dz")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    banned, _ = pd.eval_sentences(a.data)
    seen = set(pd.norm(l) for l in pd.read_lines(a.exclude))
    stats, out = {"dropped_as_eval_overlap": {}}, []

    def add(name, sents):
        kept = dropped = 0
        for s in sents:
            k = pd.norm(s)
            if not k:
                continue
            if k in banned:
                dropped += 1
                continue
            if k in seen:
                continue
            seen.add(k)
            out.append(s)
            kept += 1
        stats[name] = kept
        stats["dropped_as_eval_overlap"][name] = dropped
        print("extra_text: %s %d (%d dropped as STS overlap)" % (name, kept, dropped), file=sys.stderr)

    f = fortunes(a.fortunes_dir)
    if f is None:
        sys.exit("extra_text: %s not found: apt-get install fortunes" % a.fortunes_dir)
    add("fortunes", f)
    g = gcide(a.gcide)
    if g is None:
        sys.exit("extra_text: %s not found: apt-get install dict-gcide" % a.gcide)
    rng.shuffle(g)
    add("gcide", g[:a.gcide_max])

    tr = os.path.join(a.data, "train")
    natural = pd.read_lines(os.path.join(tr, "wiki1m_head.txt"))
    for n in ("rt-polarity.pos", "rt-polarity.neg"):
        natural += pd.read_lines(os.path.join(tr, "sentence_polarity", n))
    for n in ("plot.tok.gt9.5000", "quote.tok.gt9.5000"):
        natural += pd.read_lines(os.path.join(tr, "subjectivity", n))
    natural += pd.sick_train(os.path.join(tr, "sick", "SICK_train.txt"))[1]
    natural += pd.msr_train(os.path.join(tr, "msr-para", "msr-para-train.tsv"))[1]
    natural += pd.rte(os.path.join(tr, "rte"))[1]
    src = sorted(set(s for s in natural if s and pd.norm(s) not in banned))
    vs, pairs = [], []
    for s in src:
        for _ in range(a.variants):
            v = variant(s, rng)
            if v:
                vs.append(v)
                pairs.append((s, v))
    add("variants", vs)

    rng.shuffle(out)
    tmp = a.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fo:
        fo.write("".join(s + "\n" for s in out))
    os.replace(tmp, a.out)
    # (source, variant) pairs whose variant was kept: arrange.py puts them side by side
    kept = set(out)
    with open(a.out + ".pairs.tsv.tmp", "w", encoding="utf-8") as fo:
        fo.write("".join("%s\t%s\n" % (s, v) for s, v in pairs if v in kept))
    os.replace(a.out + ".pairs.tsv.tmp", a.out + ".pairs.tsv")
    stats["lines"] = len(out)
    stats["sha256"] = hashlib.sha256(open(a.out, "rb").read()).hexdigest()
    with open(a.out + ".json", "w") as fo:
        json.dump(stats, fo, indent=1, sort_keys=True)
    print("extra_text: %d lines -> %s" % (len(out), a.out), file=sys.stderr)


if __name__ == "__main__":
    main()
