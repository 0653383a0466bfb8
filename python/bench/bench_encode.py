#!/usr/bin/env python3
"""encode of N real sentences (default 10,000) through Python (sembed.Model.encode), the C API
(capi_bench.c: sembed_embed_texts, same library file) and the CLI (`sembed embed -f f32`), on
sembed-mini (the shipped int8 model) and a MiniLM-L6-shaped int8 model (random weights, real
shape: models/gen/make_onnx.py --shape minilm-l6, converted with sembed.convert dtype q8); plus,
with --ort, ONNX Runtime (onnxruntime-node, tools/bench/ort_bench.js, the harness's Python-free
peer) on the int8 ONNX twin of the MiniLM-L6 model at the batch shape the sentences pad to.

Python and the C API are timed warm (model loaded, weights packed) and in alternating rounds, so
both see the same machine load; the overhead is (Python - C) / C on the minimum and on the median
of the rounds. The CLI's time is a whole process (load, packing, reading stdin, writing floats),
with the same process on 1 sentence subtracted as "embed only".

    /usr/bin/python3 python/bench/bench_encode.py [--n 10000] [--threads 2] [--rounds 3] [--ort]
Timing is wall clock: on a shared machine, read the ratios, not the absolute numbers.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DATA = os.path.abspath(os.path.join(REPO, "..", "shared", "data"))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def real_sentences(n):
    """n real English sentences: wiki1m_head, then STS-B, then SICK; a synthetic fallback."""
    out = []
    for rel, col in (("train/wiki1m_head.txt", None), ("sts/STSBenchmark/sts-train.csv", (5, 6)),
                     ("train/sick/SICK_train.txt", (1, 2))):
        p = os.path.join(DATA, rel)
        if not os.path.isfile(p):
            continue
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                texts = [parts[0]] if col is None else [parts[c] for c in col if c < len(parts)]
                out += [t.strip() for t in texts if t.strip()]
                if len(out) >= n:
                    return out[:n], "../shared/data"
    words = "the a man woman dog cat plays eats runs guitar onion street market quickly slowly red".split()
    while len(out) < n:
        i = len(out)
        out.append(" ".join(words[(i * k) % len(words)] for k in range(3, 3 + 8 + i % 20)))
    return out, "synthetic fallback"


def build_capi(work, include):
    import sembed
    libdir = os.path.join(work, "lib")
    os.makedirs(libdir, exist_ok=True)
    link = os.path.join(libdir, "libsembed.so.0")  # the SONAME the loader looks for
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.realpath(sembed.LIBRARY_PATH), link)
    exe = os.path.join(work, "capi_bench")
    cc = shutil.which("cc") or shutil.which("gcc")
    subprocess.run([cc, "-O2", "-std=c11", "-I", include, os.path.join(HERE, "capi_bench.c"),
                    os.path.realpath(sembed.LIBRARY_PATH), "-o", exe], check=True)
    return exe, libdir


def minilm_model(work):
    d = os.path.join(work, "minilm-l6")
    q8 = os.path.join(d, "q8.semb")
    if not os.path.isfile(os.path.join(d, "model.safetensors")):
        log("[inputs] models/gen/make_onnx.py --shape minilm-l6 (needs Debian's python3-torch)")
        subprocess.run(["/usr/bin/python3", os.path.join(REPO, "models", "gen", "make_onnx.py"), "--shape",
                        "minilm-l6", "--seed", "0", "--out", d], check=True, stdout=subprocess.DEVNULL)
    if not os.path.isfile(q8):
        import sembed
        sembed.convert(os.path.join(d, "model.safetensors"), q8, dtype="q8")
    return q8, d


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cli-rounds", type=int, default=None, help="CLI rounds (default: --rounds)")
    ap.add_argument("--models", default="sembed-mini,minilm-l6")
    ap.add_argument("--cli", default=None, help="sembed CLI (default: build-python/sembed, build/sembed)")
    ap.add_argument("--work", default=os.path.join(REPO, "build-python", "bench"))
    ap.add_argument("--ort", action="store_true", help="also run onnxruntime-node on the MiniLM-L6 int8 ONNX twin")
    ap.add_argument("--no-spin", action="store_true",
                    help="OMP_WAIT_POLICY=passive for every peer (plausible numbers on a loaded machine)")
    ap.add_argument("--json", default=None, help="write the results here too")
    a = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(a.threads)  # before libgomp is loaded with the library
    if a.no_spin:
        os.environ["OMP_WAIT_POLICY"] = "passive"
    try:
        import sembed
    except ImportError:  # dev mode: the package folder of this checkout (SEMBED_LIBRARY names the library)
        sys.path.insert(0, os.path.join(REPO, "python"))
        import sembed
    os.makedirs(a.work, exist_ok=True)
    sents, source = real_sentences(a.n)
    sfile = os.path.join(a.work, f"sentences-{a.n}.txt")
    with open(sfile, "w", encoding="utf-8") as f:
        f.writelines(s.replace("\n", " ") + "\n" for s in sents)
    one = os.path.join(a.work, "one-sentence.txt")
    with open(one, "w") as f:
        f.write(sents[0] + "\n")
    capi, libdir = build_capi(a.work, os.path.join(REPO, "include"))
    cli = a.cli or next((p for p in (os.path.join(REPO, d, "sembed") for d in ("build-python", "build"))
                         if os.path.isfile(p)), None)
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), LD_LIBRARY_PATH=libdir)
    results = {"n": a.n, "source": source, "no_spin": a.no_spin, "threads": a.threads, "batch": a.batch, "rounds": a.rounds,
               "library": sembed.LIBRARY_PATH, "kernel": sembed.kernel_path(), "loadavg": os.getloadavg(),
               "models": {}}
    log(f"{a.n} sentences ({source}), {a.threads} threads, batch {a.batch}, kernel {sembed.kernel_path()}, "
        f"load average {os.getloadavg()[0]:.1f}")
    for name in a.models.split(","):
        if name == "sembed-mini":
            path, hf = os.path.join(REPO, "models", "sembed-mini", "sembed-mini.semb"), None
        elif name == "minilm-l6":
            path, hf = minilm_model(a.work)
        else:
            sys.exit(f"unknown model {name}")
        m = sembed.Model(path, threads=a.threads)
        m.encode(sents[:64], batch_size=a.batch)  # warm: contexts, packed weights
        py_t, c_t, cli_t, py_cpu, c_cpu = [], [], [], [], []
        for r in range(a.rounds):
            cr = subprocess.run([capi, path, sfile, str(a.threads), str(a.batch), "1"], env=env, check=True,
                                capture_output=True, text=True)
            cj = json.loads(cr.stdout)
            c_t.append(cj["times_s"][0])
            c_cpu.append(cj["cpu_s"][0])
            t0, p0 = time.perf_counter(), time.process_time()
            emb = m.encode(sents, batch_size=a.batch)
            py_cpu.append(time.process_time() - p0)
            py_t.append(time.perf_counter() - t0)
            log(f"[{name}] round {r + 1}: C API {c_t[-1]:.3f} s ({c_cpu[-1]:.3f} s CPU), "
                f"Python {py_t[-1]:.3f} s ({py_cpu[-1]:.3f} s CPU)")
        if cli:
            for r in range(a.rounds if a.cli_rounds is None else a.cli_rounds):
                cmd = [cli, "embed", "-m", path, "-t", str(a.threads), "-b", str(a.batch), "-f", "f32"]
                with open(sfile, "rb") as fin:
                    t0 = time.perf_counter()
                    subprocess.run(cmd, stdin=fin, stdout=subprocess.DEVNULL, check=True, env=env)
                    full = time.perf_counter() - t0
                with open(one, "rb") as fin:
                    t0 = time.perf_counter()
                    subprocess.run(cmd, stdin=fin, stdout=subprocess.DEVNULL, check=True, env=env)
                    base = time.perf_counter() - t0
                cli_t.append((full, base))
                log(f"[{name}] CLI round {r + 1}: {full:.3f} s whole process, {base:.3f} s on 1 sentence")
        # Inside one process: time spent in encode outside the library call (the binding's own work:
        # argument checks, UTF-8, packing, the output array, the context pool), on the same input.
        inner = []
        real = sembed._lib.lib.sembed_embed_inputs

        def timed(*args):
            t = time.perf_counter()
            try:
                return real(*args)
            finally:
                inner.append(time.perf_counter() - t)
        sembed._lib.lib.sembed_embed_inputs = timed
        try:
            t0 = time.perf_counter()
            m.encode(sents, batch_size=a.batch)
            outer = time.perf_counter() - t0
        finally:
            sembed._lib.lib.sembed_embed_inputs = real
        lib_s = sum(inner)
        log(f"[{name}] encode {outer:.3f} s, of which the library call {lib_s:.3f} s: binding "
            f"{1e3 * (outer - lib_s):.1f} ms = {100 * (outer - lib_s) / lib_s:.2f}%")
        res = {"path": path, "dim": m.dimension, "encode_s": outer, "library_call_s": lib_s,
               "binding_ms": 1e3 * (outer - lib_s), "binding_pct": 100 * (outer - lib_s) / lib_s, "compute": m.compute, "capi_s": c_t, "python_s": py_t,
               "capi_cpu_s": c_cpu, "python_cpu_s": py_cpu,
               "cli_s": [x[0] for x in cli_t], "cli_one_sentence_s": [x[1] for x in cli_t]}
        for k, f in (("min", min), ("median", statistics.median)):
            res[f"overhead_pct_{k}"] = 100.0 * (f(py_t) - f(c_t)) / f(c_t)
            res[f"overhead_cpu_pct_{k}"] = 100.0 * (f(py_cpu) - f(c_cpu)) / f(c_cpu)
        res["sent_per_s"] = {"capi": a.n / min(c_t), "python": a.n / min(py_t)}
        if cli_t:
            res["sent_per_s"]["cli_whole_process"] = a.n / min(x[0] for x in cli_t)
            res["sent_per_s"]["cli_embed_only"] = a.n / max(min(x[0] - x[1] for x in cli_t), 1e-9)
        if a.ort and name == "minilm-l6":
            res["ort"] = run_ort(a, m, sents, hf, env)
        m.close()
        results["models"][name] = res
        assert emb.shape == (a.n, res["dim"])
    results["loadavg_end"] = os.getloadavg()
    print_table(results)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


def run_ort(a, m, sents, hf, env):
    onnx = os.path.join(hf, "model.int8.onnx")
    node = shutil.which("node")
    if not node or not os.path.isdir(os.path.join(REPO, "tools", "node", "node_modules", "onnxruntime-node")):
        return {"error": "node or onnxruntime-node missing"}
    if not os.path.isfile(onnx):
        subprocess.run(["/usr/bin/python3", os.path.join(REPO, "models", "gen", "quantize_dynamic.py"),
                        os.path.join(hf, "model.onnx"), onnx], check=True, stdout=subprocess.DEVNULL)
    # ORT takes padded (batch, tokens) tensors: a batch of real sentences pads to its longest one.
    # Two fixed shapes are timed: the mean padded length of batches in input order, and of batches
    # of length-sorted sentences (what sentence-transformers' encode does before batching).
    lens = [len(ids) for ids in m.tokenize(sents)["input_ids"]]
    out = {"mean_real_tokens": sum(lens) / len(lens)}
    for tag, order in (("input_order", lens), ("length_sorted", sorted(lens))):
        padded = [max(order[i:i + a.batch]) for i in range(0, len(order), a.batch)]
        t = int(round(sum(padded) / len(padded)))
        r = subprocess.run([node, os.path.join(REPO, "tools", "bench", "ort_bench.js"), onnx,
                            os.path.join(hf, "vocab.txt"), "--batch", str(a.batch), "--tokens", str(t), "--threads",
                            str(a.threads), "--min-reps", "10", "--min-time", "5"] + (["--no-spin"] if a.no_spin else []),
                           env=env, capture_output=True, text=True)
        try:
            j = json.loads(r.stdout.strip().splitlines()[-1])
            out[tag] = {"tokens": t, "sent_per_s": j["sent_per_s"], "raw": j}
        except (ValueError, IndexError, KeyError):
            out[tag] = {"tokens": t, "error": (r.stderr or r.stdout)[-300:]}
        log(f"[{name_of(m)}] ORT int8 batch {a.batch} x {t} tokens ({tag}): {out[tag].get('sent_per_s')}")
    return out


def name_of(m):
    return os.path.basename(m.path)


def print_table(r):
    print(f"\nencode of {r['n']} sentences ({r['source']}), {r['threads']} threads, batch {r['batch']}, "
          f"kernel {r['kernel']}, load average {r['loadavg'][0]:.1f} -> {r['loadavg_end'][0]:.1f}")
    print(f"{'model':<12} {'C API sent/s':>13} {'Python sent/s':>14} {'overhead min':>13} {'overhead med':>13} "
          f"{'CPU overhead':>13} {'CLI sent/s':>11} {'CLI embed-only':>15}")
    for name, m in r["models"].items():
        s = m["sent_per_s"]
        print(f"{name:<12} {s['capi']:>13.0f} {s['python']:>14.0f} {m['overhead_pct_min']:>12.2f}% "
              f"{m['overhead_pct_median']:>12.2f}% {m['overhead_cpu_pct_min']:>12.2f}% "
              f"{s.get('cli_whole_process', float('nan')):>11.0f} "
              f"{s.get('cli_embed_only', float('nan')):>15.0f}")
        print(f"  {name}: inside Python's encode, time outside the library call: {m['binding_ms']:.1f} ms of "
              f"{m['encode_s']:.2f} s ({m['binding_pct']:.2f}%)")
        if "ort" in m:
            o = m["ort"]
            if "error" in o:
                print(f"  ORT: {o['error']}")
                continue
            for tag in ("input_order", "length_sorted"):
                x = o[tag]
                if "error" in x:
                    print(f"  ONNX Runtime ({tag}): {x['error']}")
                else:
                    print(f"  ONNX Runtime (node) int8, batch {r['batch']} x {x['tokens']} tokens ({tag} batches; real "
                          f"mean {o['mean_real_tokens']:.1f}): {x['sent_per_s']:.0f} sent/s")


if __name__ == "__main__":
    main()
