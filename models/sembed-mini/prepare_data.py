#!/usr/bin/python3
"""Build the training text of sembed-mini from ../shared/data (and WordNet), honestly.

usage: /usr/bin/python3 models/sembed-mini/prepare_data.py --data DATA_DIR --out OUT_DIR
           [--wordnet /usr/share/wordnet] [--seed 1]

Outputs (UTF-8, one record per line, no header; tabs and newlines inside text become spaces):
  mlm.txt      MLM pretraining text: every sentence below, plus the WordNet glosses and the
               sentences of the supervised sources (their text only, no labels), deduplicated.
  unsup.txt    unsupervised SimCSE text: wiki1m_head + sentence_polarity + subjectivity + WordNet
               example sentences, deduplicated.
  sup.tsv      supervised SimCSE rows, shuffled: sent0 TAB sent1 TAB hard_neg. Positives and hard negatives:
                 SICK train: ENTAILMENT pairs (A, B); hard negative: a CONTRADICTION sentence for
                   the same premise A when SICK has one.
                 MSR paraphrase train: Quality 1 pairs.
                 RTE 1-3: entailing (text, hypothesis) pairs.
                 WordNet: an example sentence and the same sentence with the synset's lemma
                   replaced by a synonym from the synset; hard negative: replaced by an antonym
                   (WordNet '!' pointer) when the lemma has one. At most --wordnet-max rows.
               Rows without a natural hard negative get a random sentence of unsup.txt (seeded),
               which acts as one more in-batch negative.
  sup_pairs.tsv  the same positives without the third column.
  manifest.json  counts per source, what was dropped and why, sha256 of every input and output.
  SHA256SUMS     sha256sum-format hashes of the outputs.

Never used: STS-B (train, dev, test), any STS12-16 set, SICK trial/test, MSR paraphrase val/test
(STS data are evaluation data; sembed-mini's checkpoints are selected on STS-B dev only).
Decontamination: any sentence whose normalised form (lowercase, alphanumeric tokens) appears in
any file under DATA_DIR/sts/ is dropped from every output, with every row that contains it; the
counts are in the manifest. (SICK and STS12 MSRvid share video captions, for example.)
"""
import argparse
import hashlib
import json
import os
import random
import re
import sys
import xml.etree.ElementTree as ET

TOKEN = re.compile(r"[0-9a-z]+")


def norm(s):
    return " ".join(TOKEN.findall(s.lower()))


def clean(s):
    return " ".join(s.replace("\t", " ").replace("\r", " ").replace("\n", " ").split())


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_lines(path, encoding="utf-8"):
    with open(path, encoding=encoding, errors="replace") as f:
        return [clean(line.lstrip("\ufeff")) for line in f]


# ---------------------------------------------------------------- evaluation sentences (to exclude)

def eval_sentences(data):
    """Normalised sentences of every STS file under data/sts (STS-B all layouts, STS12 sets)."""
    out = set()
    root = os.path.join(data, "sts")
    files = []
    for dirpath, _, names in os.walk(root):
        for n in sorted(names):
            p = os.path.join(dirpath, n)
            if n.endswith(".csv"):  # STS-B: genre file year id score s1 s2 [...]
                with open(p, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        fl = line.rstrip("\r\n").split("\t")
                        if len(fl) >= 7:
                            out.add(norm(fl[5]))
                            out.add(norm(fl[6]))
                files.append(p)
            elif n.startswith("STS.input."):
                with open(p, encoding="utf-8", errors="replace") as f:
                    for line in f:
                        for s in line.rstrip("\r\n").split("\t")[:2]:
                            out.add(norm(s))
                files.append(p)
    out.discard("")
    return out, files


# ---------------------------------------------------------------- sources

def sick_train(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline()
        assert header.startswith("pair_ID"), path
        for line in f:
            fl = line.rstrip("\r\n").split("\t")
            if len(fl) >= 5:
                rows.append((clean(fl[1]), clean(fl[2]), fl[4].strip()))
    contra = {}
    for a, b, lab in rows:
        if lab == "CONTRADICTION":  # contradiction is symmetric: either side may be the premise
            contra.setdefault(a, []).append(b)
            contra.setdefault(b, []).append(a)
    out = []
    for a, b, lab in rows:
        if lab == "ENTAILMENT":
            negs = contra.get(a, [])
            out.append((a, b, negs[0] if negs else None))
    return out, [s for r in rows for s in r[:2]]


def msr_train(path):
    out, text = [], []
    with open(path, encoding="utf-8-sig") as f:
        f.readline()  # Quality #1 ID #2 ID #1 String #2 String
        for line in f:
            fl = line.rstrip("\r\n").split("\t")
            if len(fl) < 5:
                continue
            a, b = clean(fl[3]), clean(fl[4])
            text += [a, b]
            if fl[0].strip() == "1":
                out.append((a, b, None))
    return out, text


def rte(dirpath):
    out, text = [], []
    for n in sorted(os.listdir(dirpath)):
        if not n.endswith(".xml"):
            continue
        root = ET.parse(os.path.join(dirpath, n)).getroot()
        for pair in root.iter("pair"):
            t, h = pair.find("t"), pair.find("h")
            if t is None or h is None or t.text is None or h.text is None:
                continue
            t, h = clean(t.text), clean(h.text)
            text += [t, h]
            label = (pair.get("value") or pair.get("entailment") or "").upper()
            if label in ("TRUE", "YES"):
                out.append((t, h, None))
    return out, text


def wordnet(wndir):
    """Glosses, example sentences, and synonym/antonym substitution rows from data.{noun,verb,adj,adv}."""
    synsets = {}  # (pos, offset) -> (lemmas, gloss defs, examples, antonym pointers)
    for pos in ("noun", "verb", "adj", "adv"):
        path = os.path.join(wndir, "data." + pos)
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  "):
                    continue  # licence header
                head, _, gloss = line.partition(" | ")
                fl = head.split()
                offset, ss_type, w_cnt = fl[0], fl[2], int(fl[3], 16)
                lemmas = [re.sub(r"\(.*\)$", "", fl[4 + 2 * i]).replace("_", " ") for i in range(w_cnt)]
                k = 4 + 2 * w_cnt
                p_cnt = int(fl[k])
                ants = []
                for j in range(p_cnt):
                    sym, tgt, tpos, st = fl[k + 1 + 4 * j: k + 5 + 4 * j]
                    if sym == "!":
                        ants.append((int(st[:2], 16), tgt, tpos, int(st[2:], 16)))
                parts = [p.strip() for p in gloss.strip().split(";")]
                defs = [p for p in parts if p and not p.startswith('"')]
                exs = []
                for p in parts:
                    m = re.match(r'^"([^"]+)"', p)
                    if m:
                        exs.append(clean(m.group(1)))
                synsets[(ss_type if ss_type != "s" else "a", offset)] = (lemmas, defs, exs, ants)
    glosses, examples, rows = [], [], []
    for (pos, off), (lemmas, defs, exs, ants) in synsets.items():
        glosses += [clean(d) for d in defs]
        examples += exs
        for ex in exs:
            low = ex.lower()
            for wi, lem in enumerate(lemmas):
                m = re.search(r"\b" + re.escape(lem.lower()) + r"\b", low)
                if not m:
                    continue
                syn = [l for l in lemmas if l.lower() != lem.lower()]
                ant = None
                for src, tgt, tpos, dst in ants:
                    if src in (0, wi + 1):
                        tl = synsets.get(("a" if tpos == "s" else tpos, tgt))
                        if tl:
                            ant = tl[0][dst - 1] if dst >= 1 and dst <= len(tl[0]) else tl[0][0]
                            break
                if not syn and ant is None:
                    break
                a, b = m.span()
                if syn:
                    pos_s = ex[:a] + syn[(len(ex) + wi) % len(syn)] + ex[b:]
                    neg_s = ex[:a] + ant + ex[b:] if ant else None
                    rows.append((ex, pos_s, neg_s))
                break
    return glosses, examples, rows


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--data", default=os.environ.get("SEMBED_DATA_DIR", os.path.join(here, "../../../shared/data")))
    ap.add_argument("--out", required=True)
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wordnet-max", type=int, default=8000,
                    help="cap on WordNet substitution rows (all with an antonym hard negative first), so the near-"
                         "identical substitution pairs do not swamp the human-written pairs (default 8000)")
    args = ap.parse_args()
    data, out = os.path.abspath(args.data), args.out
    if not os.path.exists(os.path.join(data, "train", "wiki1m_head.txt")):
        sys.exit("prepare_data: %s/train/wiki1m_head.txt not found: the training text is not in the repository; "
                 "models/sembed-mini/recipe.sh's header says what to get and where (--data or SEMBED_DATA_DIR)" % data)
    os.makedirs(out, exist_ok=True)
    rng = random.Random(args.seed)
    if not os.path.exists(os.path.join(args.wordnet, "data.noun")):
        sys.exit("prepare_data: %s/data.noun not found: apt-get install wordnet-base" % args.wordnet)

    banned, eval_files = eval_sentences(data)
    tr = os.path.join(data, "train")
    inputs = {
        "wiki1m_head": [os.path.join(tr, "wiki1m_head.txt")],
        "sentence_polarity": [os.path.join(tr, "sentence_polarity", n) for n in ("rt-polarity.pos", "rt-polarity.neg")],
        "subjectivity": [os.path.join(tr, "subjectivity", n) for n in ("plot.tok.gt9.5000", "quote.tok.gt9.5000")],
        "sick_train": [os.path.join(tr, "sick", "SICK_train.txt")],
        "msr_para_train": [os.path.join(tr, "msr-para", "msr-para-train.tsv")],
        "rte": sorted(os.path.join(tr, "rte", n) for n in os.listdir(os.path.join(tr, "rte")) if n.endswith(".xml")),
        "wordnet": [os.path.join(args.wordnet, "data." + p) for p in ("noun", "verb", "adj", "adv")],
    }
    stats = {"dropped_as_eval_overlap": {}, "unsup": {}, "sup": {}, "mlm": {}}

    def ok(s, min_words=3):
        return len(s.split()) >= min_words and norm(s) not in banned

    # unsupervised text
    unsup_sources = [("wiki1m_head", read_lines(inputs["wiki1m_head"][0]))]
    unsup_sources.append(("sentence_polarity", sum((read_lines(p) for p in inputs["sentence_polarity"]), [])))
    unsup_sources.append(("subjectivity", sum((read_lines(p) for p in inputs["subjectivity"]), [])))
    glosses, wn_examples, wn_rows = wordnet(args.wordnet)
    unsup_sources.append(("wordnet_examples", wn_examples))
    seen, unsup = set(), []
    for name, sents in unsup_sources:
        kept = dropped = 0
        for s in sents:
            if not s:
                continue
            if norm(s) in banned:
                dropped += 1
                continue
            if len(s.split()) < 3 or norm(s) in seen:
                continue
            seen.add(norm(s))
            unsup.append(s)
            kept += 1
        stats["unsup"][name] = kept
        stats["dropped_as_eval_overlap"]["unsup/" + name] = dropped

    # supervised rows
    sick_rows, sick_text = sick_train(inputs["sick_train"][0])
    msr_rows, msr_text = msr_train(inputs["msr_para_train"][0])
    rte_rows, rte_text = rte(os.path.join(tr, "rte"))
    with_ant = [r for r in wn_rows if r[2]]
    without = [r for r in wn_rows if not r[2]]
    rng.shuffle(without)
    wn_sup = (with_ant + without)[:args.wordnet_max]
    stats["wordnet_substitution_rows_available"] = len(wn_rows)
    sup, pairs, seen_rows = [], [], set()
    for name, rows in (("sick_train_entailment", sick_rows), ("msr_para_train", msr_rows), ("rte_entailment", rte_rows),
                       ("wordnet_synonym_substitution", wn_sup)):
        kept = dropped = with_neg = 0
        for a, b, neg in rows:
            if not a or not b or norm(a) == norm(b):
                continue
            if norm(a) in banned or norm(b) in banned or (neg and norm(neg) in banned):
                dropped += 1
                continue
            key = (norm(a), norm(b))
            if key in seen_rows:
                continue
            seen_rows.add(key)
            if neg:
                with_neg += 1
            else:
                neg = unsup[rng.randrange(len(unsup))]
            sup.append((a, b, neg))
            kept += 1
        stats["sup"][name] = {"rows": kept, "natural_hard_negatives": with_neg}
        stats["dropped_as_eval_overlap"]["sup/" + name] = dropped
    rng.shuffle(sup)

    # MLM text: unsup + glosses + the supervised sources' sentences (text only)
    mlm, seen_m = list(unsup), set(norm(s) for s in unsup)
    for name, sents in (("wordnet_glosses", glosses), ("sick_train_text", sick_text), ("msr_para_train_text", msr_text),
                        ("rte_text", rte_text), ("wordnet_substitutions", [r[1] for r in wn_rows])):
        kept = 0
        for s in sents:
            n = norm(s)
            if len(s.split()) < 2 or n in seen_m or n in banned:
                continue
            seen_m.add(n)
            mlm.append(s)
            kept += 1
        stats["mlm"][name] = kept
    stats["mlm"]["from_unsup"] = len(unsup)
    rng.shuffle(mlm)

    outputs = {}

    def write(name, lines):
        p = os.path.join(out, name)
        tmp = p + ".tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            for line in lines:
                f.write(line + "\n")
        os.replace(tmp, p)
        outputs[name] = {"lines": len(lines), "sha256": sha256_file(p)}

    write("mlm.txt", mlm)
    write("unsup.txt", unsup)
    write("sup.tsv", ["\t".join(r) for r in sup])
    write("sup_pairs.tsv", ["\t".join(r[:2]) for r in sup])
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        for name in sorted(outputs):
            f.write("%s  %s\n" % (outputs[name]["sha256"], name))
    manifest = {
        "generator": "models/sembed-mini/prepare_data.py",
        "seed": args.seed,
        "outputs": outputs,
        "stats": stats,
        "excluded_eval_sentences": len(banned),
        "eval_files_checked": [os.path.relpath(p, data) for p in eval_files],
        "inputs": {k: {os.path.relpath(p, data) if p.startswith(data) else p: sha256_file(p) for p in v}
                   for k, v in inputs.items()},
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    for name in sorted(outputs):
        print("%-14s %8d lines  sha256 %s" % (name, outputs[name]["lines"], outputs[name]["sha256"]))
    print(json.dumps(stats, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
