#!/usr/bin/python3
"""sembed corpus benchmark: real sentences of mixed length embedded end to end, tokenization
included, by sembed (CLI and C API) and its peers at their best practice (tools/bench/README.md,
"Corpus mode").

    /usr/bin/python3 tools/bench/corpus.py                                # MiniLM-L6 20,000 + bert-base 4,000
    /usr/bin/python3 tools/bench/corpus.py --models minilm-l6 -n 2000 --reps 1   # a quick check
    /usr/bin/python3 tools/bench/corpus.py --sentences my.txt             # your own text, one per line

Sentences: the first N of the wiki text and STS-B train sentences (tools/datafile.py finds them), alternating, as
they come (or --sentences FILE). Models: the random twins of tools/bench/run.py (real shapes, real
bert-base-uncased vocabulary). Every configuration runs in its own process; each job is repeated
--reps times and the median is reported. Writes tools/bench/results/<date>_corpus[_tag].{json,md}.
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as harness  # noqa: E402  (build_sembed, prepare_model, run_worker, peer_env, machine_info)

ROOT = harness.ROOT
PY = harness.PY
DEFAULT_N = {"bert-tiny": 20000, "minilm-l6": 20000, "bert-base": 4000}
CONFIGS = {
    "sembed-int8-cli": dict(peer="sembed-cli", semb="q8.semb", compute="int8", dtype="int8"),
    "sembed-int8-api": dict(peer="sembed-api", semb="q8.semb", compute="int8", dtype="int8"),
    "ort-int8": dict(peer="ort", graph="model.int8.onnx", dtype="int8"),
    "torch-int8": dict(peer="torch", mode="int8", dtype="int8"),
    "sembed-fp32-cli": dict(peer="sembed-cli", semb="f32.semb", compute="f32", dtype="fp32"),
    "sembed-fp32-api": dict(peer="sembed-api", semb="f32.semb", compute="f32", dtype="fp32"),
    "ort-fp32": dict(peer="ort", graph="model.onnx", dtype="fp32"),
    "torch-fp32": dict(peer="torch", mode="fp32", dtype="fp32"),
}


def data_candidates():
    """Where the default sentences come from: tools/datafile.py's search ($SEMBED_DATA_DIR, the
    repository's data/, ../shared/data), each file wherever it is found."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    from datafile import data_file
    found = [data_file(rel, required=False) for rel in ("train/wiki1m_head.txt", "sts/STSBenchmark/sts-train.csv")]
    return [p for p in found if p]


def default_sentences(n):
    srcs = data_candidates()
    if not srcs:
        harness.die("corpus: no sentences: train/wiki1m_head.txt and sts/STSBenchmark/sts-train.csv are in none of "
                    "$SEMBED_DATA_DIR, data/, ../shared/data (data/README.md says where to get them); "
                    "or pass --sentences FILE (one sentence per line)", 1)
    lists = []
    for p in srcs:
        with open(p, encoding="utf-8", errors="replace") as f:
            if p.endswith(".csv"):
                out = []
                for line in f:
                    cols = line.rstrip("\n").split("\t")
                    if len(cols) >= 7:
                        out += [cols[5], cols[6]]
                lists.append(out)
            else:
                lists.append([ln.rstrip("\n") for ln in f if ln.strip()])
    sent = []
    i = 0
    while len(sent) < n and any(i < len(x) for x in lists):
        for x in lists:
            if i < len(x) and len(sent) < n:
                sent.append(x[i])
        i += 1
    return sent, srcs


def time_cli(a, cli, semb, compute, sentences_path, reps, env):
    """sembed embed as a user runs it: the whole process (load + tokenize + embed + write f32)."""
    times, maxrss = [], 0.0
    with tempfile.TemporaryDirectory() as td:
        out = os.path.join(td, "out.f32")
        cmd = [cli, "embed", "-m", semb, "--compute", compute, "-t", str(a.threads), "-b", str(a.batch),
               "-f", "f32", "-o", out]
        for _ in range(reps):
            with open(sentences_path, "rb") as fin:
                t0 = time.perf_counter()
                p = subprocess.Popen(cmd, stdin=fin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
                _, status, ru = os.wait4(p.pid, 0)
                dt = time.perf_counter() - t0
                err = p.stderr.read().decode(errors="replace")
                p.stderr.close()
            if os.waitstatus_to_exitcode(status) != 0:
                return {"ok": False, "stage": "run", "error": err.strip()[-300:]}
            times.append(dt)
            maxrss = max(maxrss, ru.ru_maxrss / 1024.0)
    sec = statistics.median(times)
    return {"ok": True, "seconds": sec, "seconds_min": min(times), "reps": reps, "peak_rss_mib": maxrss,
            "cmd": " ".join(cmd) + " < " + os.path.basename(sentences_path)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="minilm-l6,bert-base")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("-n", "--sentences-count", type=int, default=0,
                    help="sentences per model (default: 20,000; bert-base 4,000)")
    ap.add_argument("--sentences", help="a text file, one sentence per line, instead of the shared data")
    ap.add_argument("--batch", type=int, default=32, help="inputs per call / per padded batch (default 32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-spin", action="store_true")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"))
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--cache", default=os.path.join(ROOT, "out", "bench"))
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--model-seed", type=int, default=0)
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--tag", default="")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--timeout", type=float, default=3600.0)
    a = ap.parse_args()
    a.models = [m for m in a.models.split(",") if m]
    a.configs = [c for c in a.configs.split(",") if c]
    for m in a.models:
        if m not in harness.MODELS:
            harness.die(f"corpus: unknown model {m} (one of {', '.join(harness.MODELS)})")
    for c in a.configs:
        if c not in CONFIGS:
            harness.die(f"corpus: unknown configuration {c} (one of {', '.join(CONFIGS)})")
    a.cache = os.path.abspath(a.cache)
    bindir = os.path.join(a.cache, "bin")
    os.makedirs(bindir, exist_ok=True)

    # Build libsembed + CLI (run.py's way) and the C API worker against the shared library.
    cli, _, why = harness.build_sembed(a, bindir)
    api = os.path.join(bindir, "corpus_sembed")
    ok, out = harness.sh(["cc", "-O2", "-std=c11", *harness.WARN_FLAGS, "-I", os.path.join(ROOT, "include"),
                          os.path.join(HERE, "corpus_sembed.c"), "-o", api, "-L", a.build_dir, "-lsembed",
                          f"-Wl,-rpath,{os.path.abspath(a.build_dir)}", "-lm"])
    if not ok:
        harness.log("[build] corpus_sembed does not build: " + harness.short(out))
        api = None

    warnings = []
    if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
        warnings.append(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs at start: "
                        "other work is running, numbers are not meaningful")
    a.no_verify = False
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": harness.machine_info(a, cli),
            "options": {k: getattr(a, k) for k in ("models", "configs", "batch", "threads", "reps", "no_spin",
                                                  "model_seed", "sentences")}}
    rows = []
    work = tempfile.mkdtemp(prefix="sembed-corpus-")
    for m in a.models:
        n = a.sentences_count or DEFAULT_N.get(m, 20000)
        if a.sentences:
            with open(a.sentences, encoding="utf-8", errors="replace") as f:
                sent = [ln.rstrip("\n") for ln in f][:n]
            srcs = [a.sentences]
        else:
            sent, srcs = default_sentences(n)
        meta.setdefault("sources", srcs)
        spath = os.path.join(work, f"{m}.txt")
        with open(spath, "w", encoding="utf-8") as f:
            f.write("\n".join(s.replace("\n", " ") for s in sent) + "\n")
        need = {CONFIGS[c].get("graph") for c in a.configs} | {CONFIGS[c].get("semb") for c in a.configs}
        paths, whyp = harness.prepare_model(a, m, need - {None}, cli)
        vocab = os.path.join(paths["hf"], "vocab.txt")
        ids_path = os.path.join(work, f"{m}.ids")
        tokenize_s = None
        # ORT first: its HF-tokenizer ids feed the PyTorch peer.
        order = sorted(a.configs, key=lambda c: 0 if CONFIGS[c]["peer"] == "ort" else 1)
        for c in order:
            cfg = CONFIGS[c]
            row = {"model": m, "config": c, "peer": cfg["peer"], "dtype": cfg["dtype"], "sentences": len(sent),
                   "ok": False}
            env = harness.peer_env(a)
            art = cfg.get("semb") or cfg.get("graph")
            if art and not paths.get(art):
                row.update(error=whyp.get(art, "missing"))
                rows.append(row)
                harness.log(f"[{m}] {c}: n/a ({row['error']})")
                continue
            if cfg["peer"] == "sembed-cli":
                if not cli:
                    row["error"] = why or "no CLI"
                    rows.append(row)
                    continue
                res = time_cli(a, cli, paths[art], cfg["compute"], spath, a.reps, env)
            elif cfg["peer"] == "sembed-api":
                if not api:
                    row["error"] = "corpus_sembed not built"
                    rows.append(row)
                    continue
                cmd = [api, paths[art], spath, "--compute", cfg["compute"], "--batch", str(a.batch),
                       "--threads", str(a.threads), "--reps", str(a.reps)]
                res, _, maxrss = harness.run_worker(cmd, env, a.timeout)
                res["peak_rss_mib"] = maxrss
            elif cfg["peer"] == "ort":
                cmd = ["node", os.path.join(HERE, "corpus_ort.js"), paths[art], vocab, spath, "--batch", str(a.batch),
                       "--threads", str(a.threads), "--reps", str(a.reps), "--dump-ids", ids_path]
                if a.no_spin:
                    cmd.append("--no-spin")
                res, _, maxrss = harness.run_worker(cmd, env, a.timeout)
                res["peak_rss_mib"] = maxrss
                if res.get("ok"):
                    tokenize_s = res.get("tokenize_s")
            else:
                if not os.path.exists(ids_path):
                    row["error"] = "needs the ids of an ORT configuration in the same run"
                    rows.append(row)
                    continue
                cmd = [PY, os.path.join(HERE, "corpus_torch.py"), paths["hf"], ids_path, "--mode", cfg["mode"],
                       "--batch", str(a.batch), "--threads", str(a.threads), "--reps", str(a.reps),
                       "--tokenize-s", str(tokenize_s or 0.0)]
                tenv = dict(env)
                if os.path.exists(harness.OPENBLAS_OMP):
                    tenv["LD_PRELOAD"] = harness.OPENBLAS_OMP
                res, _, maxrss = harness.run_worker(cmd, tenv, a.timeout)
                res["peak_rss_mib"] = maxrss
            row.update({k: v for k, v in res.items() if k not in ("peer", "model", "sentences")})
            if row.get("ok") and "sent_per_s" not in row:
                row["sent_per_s"] = len(sent) / row["seconds"]
            rows.append(row)
            if row.get("ok"):
                harness.log(f"[{m}] {c}: {row['seconds']:.2f} s, {row['sent_per_s']:.0f} sent/s")
            else:
                harness.log(f"[{m}] {c}: n/a ({harness.short(str(row.get('error')), 160)})")
        # Token counts: the API run's (no padding) for sembed rows, ORT's HF count for the others.
        base_tokens = next((r.get("tokens") for r in rows if r["model"] == m and r.get("ok") and r.get("tokens")), None)
        for r in rows:
            if r["model"] == m and r.get("ok"):
                r.setdefault("tokens", base_tokens)
                r.setdefault("computed_tokens", r.get("tokens"))
                r.setdefault("pad_tokens", 0)
                if r.get("tokens"):
                    r["tok_per_s"] = r["tokens"] / r["seconds"]
                if r.get("computed_tokens"):
                    r["pad_frac"] = r["pad_tokens"] / r["computed_tokens"]

    # Ratios: each sembed row against the peers of its dtype, same model.
    for r in rows:
        if not r.get("ok") or not r["peer"].startswith("sembed"):
            continue
        for peer in ("ort", "torch"):
            o = next((x for x in rows if x["model"] == r["model"] and x["peer"] == peer and x["dtype"] == r["dtype"]
                      and x.get("ok")), None)
            if o:
                r[f"vs_{peer}"] = r["sent_per_s"] / o["sent_per_s"]
    meta["loadavg_end"] = list(os.getloadavg())
    if meta["loadavg_end"][0] > 0.5 * (os.cpu_count() or 1) and not warnings:
        warnings.append(f"load average {meta['loadavg_end'][0]:.2f} at the end: other work ran meanwhile")
    meta["warnings"] = warnings

    def f(v, fmt):
        return "n/a" if v is None else format(v, fmt)
    lines = [f"corpus benchmark, {meta['machine'].get('cpu', '?')}, {a.threads} threads, batch {a.batch}, "
             f"median of {a.reps}; sources: {', '.join(os.path.relpath(s, ROOT) for s in meta.get('sources', []))}", "",
             "| model | config | sentences | seconds | sent/s | tokens/s | padding | peak RSS MiB | vs ORT | vs PyTorch |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if not r.get("ok"):
            lines.append(f"| {r['model']} | {r['config']} | {r['sentences']} | n/a: {harness.short(str(r.get('error')), 80)} "
                         "| | | | | | |")
            continue
        lines.append(f"| {r['model']} | {r['config']} | {r['sentences']} | {r['seconds']:.2f} | {r['sent_per_s']:.0f} | "
                     f"{f(r.get('tok_per_s'), '.0f')} | {f(r.get('pad_frac'), '.1%')} | {f(r.get('peak_rss_mib'), '.0f')} | "
                     f"{f(r.get('vs_ort'), '.2f')}{'x' if r.get('vs_ort') else ''} | "
                     f"{f(r.get('vs_torch'), '.2f')}{'x' if r.get('vs_torch') else ''} |")
    notes = ["sembed-cli: the whole `sembed embed` process (load, tokenize, embed, write float32) per job. "
             "sembed-api: tokenization + embedding through sembed_embed_texts, model loaded once. "
             "ort: HF tokenizers encodeBatch + sort by length + pad per batch + session.run. "
             "torch: same padded batches; its tokenization time is the ORT peer's HF tokenizers time, added."]
    text = "\n".join(lines + [""] + notes + [f"warning: {w}" for w in warnings])
    print(text)
    if not a.no_write:
        os.makedirs(a.results, exist_ok=True)
        stem = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S") + "_corpus" + (f"_{a.tag}" if a.tag else "")
        with open(os.path.join(a.results, stem + ".json"), "w") as fh:
            json.dump({"meta": meta, "results": rows}, fh, indent=1)
        with open(os.path.join(a.results, stem + ".md"), "w") as fh:
            fh.write(text + "\n")
        print(f"\nwrote {os.path.relpath(os.path.join(a.results, stem + '.md'))}")
    return 0 if any(r.get("ok") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
