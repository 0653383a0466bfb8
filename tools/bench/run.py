#!/usr/bin/python3
"""sembed benchmark harness: sembed against ONNX Runtime and PyTorch on BERT-shaped encoders.

In one run it builds (or reuses) every peer's inputs from one random twin per shape, measures each
configuration in its own process, and prints a table; it writes the same as JSON and Markdown to
tools/bench/results/<date>.{json,md}. See tools/bench/README.md for the peers and the columns.

    /usr/bin/python3 tools/bench/run.py                       # everything (long: use a quiet machine)
    /usr/bin/python3 tools/bench/run.py --quick               # bert-tiny, 1x16 + 32x32, few reps
    /usr/bin/python3 tools/bench/run.py --models minilm-l6 --shapes 32x32 --configs ort-int8,sembed-int8
    /usr/bin/python3 tools/bench/run.py --check-noamx         # does the no-AMX shim take here?
    /usr/bin/python3 tools/bench/run.py --list

A peer that cannot run (not built, not implemented, crashed) is reported as n/a with its reason;
the run goes on. Exit status: 0 when the run completed (even with n/a cells), 2 on bad options,
1 when nothing could be measured at all.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PY = "/usr/bin/python3"  # Debian's interpreter: torch 1.13, numpy, onnx
OPENBLAS_OMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"  # dpkg -L libopenblas0-openmp
WARN_FLAGS = ["-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wstrict-prototypes", "-Wmissing-prototypes",
              "-Wpointer-arith", "-Wcast-qual"]

# Twin shapes (models/gen/twin.py SHAPES), all with the real 30,522-token vocabulary.
MODELS = {
    "bert-tiny": "L2 H128 A2 I512",
    "minilm-l6": "L6 H384 A12 I1536",
    "bert-base": "L12 H768 A12 I3072",
    "roberta-base": "L12 H768 A12 I3072, RoBERTa / XLM-R positions (offset 2, one token type)",
    "mpnet-base": "L12 H768 A12 I3072, MPNet (relative attention bias, no token types)",
}
SHAPES = ["1x16", "1x128", "32x32", "64x128"]

# name -> peer, what it runs, the sembed configuration it is compared with.
CONFIGS = {
    "torch-fp32": dict(peer="torch", mode="fp32", ref="sembed-fp32",
                       desc="PyTorch twin, fp32 (OpenBLAS OpenMP)"),
    "torch-int8": dict(peer="torch", mode="int8", ref="sembed-int8",
                       desc="PyTorch twin, quantize_dynamic int8 on nn.Linear"),
    "ort-fp32": dict(peer="ort", graph="model.onnx", ref="sembed-fp32", desc="ONNX Runtime, fp32 graph"),
    "ort-int8": dict(peer="ort", graph="model.int8.onnx", ref="sembed-int8",
                     desc="ONNX Runtime, dynamic int8 graph (MatMulInteger)"),
    "ort-int8-noamx": dict(peer="ort", graph="model.int8.onnx", noamx=True, ref="sembed-int8-avx512vnni",
                           desc="ONNX Runtime int8, AMX tile permission refused (noamx.so)"),
    "sembed-fp32": dict(peer="sembed", semb="f32.semb", compute="f32", desc="sembed, f32 weights, f32 compute"),
    "sembed-int8": dict(peer="sembed", semb="q8.semb", compute="int8", desc="sembed, q8 weights, int8, best ISA"),
    "sembed-int8-avx512vnni": dict(peer="sembed", semb="q8.semb", compute="int8", isa="avx512vnni",
                                   desc="sembed int8, SEMBED_ISA=avx512vnni"),
    "sembed-int8-avx2": dict(peer="sembed", semb="q8.semb", compute="int8", isa="avx2",
                             desc="sembed int8, SEMBED_ISA=avx2"),
}

# Goals from issue 5 (reported, never asserted).
TARGETS = [
    dict(id="int8-throughput", what="sembed-int8 sent/s >= 3x ort-int8", a="sembed-int8", b="ort-int8",
         metric="sps", goal=3.0, models=["minilm-l6", "bert-base"], shapes=["32x32", "64x128"]),
    dict(id="vnni-vs-ort-noamx", what="sembed-int8-avx512vnni sent/s >= 1.3x ort-int8-noamx",
         a="sembed-int8-avx512vnni", b="ort-int8-noamx", metric="sps", goal=1.3,
         models=["minilm-l6", "bert-base"], shapes=["32x32", "64x128"]),
    dict(id="int8-latency", what="sembed-int8 1x16 latency <= 0.5x ort-int8", a="sembed-int8", b="ort-int8",
         metric="lat", goal=0.5, models=None, shapes=["1x16"]),
    dict(id="fp32-throughput", what="sembed-fp32 sent/s >= 1.2x ort-fp32", a="sembed-fp32", b="ort-fp32",
         metric="sps", goal=1.2, models=None, shapes=None),
    dict(id="load", what="sembed-int8 model load <= 1 ms", a="sembed-int8", b=None, metric="load_abs", goal=1.0,
         models=None, shapes=None),
    dict(id="load", what="sembed-fp32 model load <= 1 ms", a="sembed-fp32", b=None, metric="load_abs", goal=1.0,
         models=None, shapes=None),
    dict(id="rss", what="sembed-int8 peak RSS <= 0.5x ort-int8", a="sembed-int8", b="ort-int8", metric="rss",
         goal=0.5, models=None, shapes=None),
    dict(id="rss", what="sembed-fp32 peak RSS <= 0.5x ort-fp32", a="sembed-fp32", b="ort-fp32", metric="rss",
         goal=0.5, models=None, shapes=None),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def die(msg, code=2):
    print(f"run.py: {msg}", file=sys.stderr)
    sys.exit(code)


def short(s, n=160):
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."


def file_hash(*paths):
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def sh(cmd, cwd=ROOT, env=None, timeout=None):
    """Run a helper command; (ok, combined output)."""
    try:
        p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=timeout)
        return p.returncode == 0, p.stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, str(e)


# ------------------------------------------------------------------------------------ environment

def peer_env(a, extra=None, drop_preload=True):
    """The environment every measured process gets: the machine's OpenBLAS tuning variables
    removed (they pick kernels for another CPU), SEMBED_ISA and LD_PRELOAD cleared unless the
    configuration sets them, OMP_NUM_THREADS = --threads."""
    env = dict(os.environ)
    for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "SEMBED_ISA", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        env.pop(k, None)
    if drop_preload:
        env.pop("LD_PRELOAD", None)
    env["OMP_NUM_THREADS"] = str(a.threads)
    if a.no_spin:
        env["OMP_WAIT_POLICY"] = "passive"
    env.update(extra or {})
    return env


def machine_info(a, sembed_cli):
    info = {"host": platform.node(), "kernel": platform.release(), "python": platform.python_version(),
            "nproc": os.cpu_count(), "loadavg_start": list(os.getloadavg())}
    try:
        with open("/proc/cpuinfo") as f:
            txt = f.read()
        for line in txt.splitlines():
            if line.startswith("model name") and "cpu" not in info:
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags") and "flags" not in info:
                fl = set(line.split(":", 1)[1].split())
                info["flags"] = sorted(f for f in fl if f.startswith(("avx512_vnni", "avx_vnni", "amx", "avx512f",
                                                                        "avx2", "avx512_bf16")))
    except OSError:
        pass
    ok, out = sh(["git", "rev-parse", "--short", "HEAD"])
    info["git"] = out.strip() if ok else None
    ok, out = sh(["git", "status", "--porcelain", "--untracked-files=no"])
    info["git_dirty"] = bool(out.strip()) if ok else None
    ok, out = sh(["node", "--version"])
    info["node"] = out.strip() if ok else None
    if sembed_cli:
        ok, out = sh([sembed_cli, "--version"], env=peer_env(a))
        info["sembed_version"] = out.strip() if ok else None
    info["openblas_preload"] = OPENBLAS_OMP if os.path.exists(OPENBLAS_OMP) else None
    return info


# ------------------------------------------------------------------------------------ building

def build_sembed(a, bindir):
    """Configure/build libsembed + CLI (Release) unless --no-build, then compile sembed_bench
    against the shared library. Returns (sembed_cli, sembed_bench, reason_if_unavailable)."""
    bdir = a.build_dir
    if not a.no_build:
        if not os.path.exists(os.path.join(bdir, "CMakeCache.txt")):
            log(f"[build] configuring {bdir} (Release)")
            ok, out = sh(["cmake", "-S", ROOT, "-B", bdir, "-DCMAKE_BUILD_TYPE=Release", "-DSEMBED_BUILD_TESTS=OFF"])
            if not ok:
                return None, None, "cmake configure failed: " + short(out.strip().splitlines()[-1] if out.strip() else out)
        # The library first: the benchmark needs only it; the CLI (convert, --version) may be
        # someone's work in progress, and a previous CLI binary is good enough for converting.
        for target in ("sembed", "sembed_cli"):
            log(f"[build] make -C {bdir} {target}")
            ok, out = sh(["make", "-C", bdir, f"-j{a.jobs}", target])
            if not ok:
                errs = [ln for ln in out.splitlines() if "error" in ln.lower()]
                msg = f"{target} build failed: " + short(errs[0] if errs else out.strip()[-300:])
                if target == "sembed":
                    return None, None, msg
                log(f"[build] {msg}" + ("; using the previous CLI binary" if os.path.exists(os.path.join(bdir, "sembed"))
                                        else "; no CLI: .semb files cannot be converted"))
    cli = os.path.join(bdir, "sembed")
    lib = os.path.join(bdir, "libsembed.so")
    if not os.path.exists(lib):
        return (cli if os.path.exists(cli) else None), None, f"{lib} missing (build it or drop --no-build)"
    exe = os.path.join(bindir, "sembed_bench")
    src = os.path.join(HERE, "sembed_bench.c")
    cmd = ["cc", "-O2", "-std=c11", *WARN_FLAGS, "-I", os.path.join(ROOT, "include"), src, "-o", exe,
           "-L", bdir, "-lsembed", f"-Wl,-rpath,{os.path.abspath(bdir)}", "-lm"]
    ok, out = sh(cmd)
    if not ok:
        return (cli if os.path.exists(cli) else None), None, "sembed_bench does not build/link: " + short(
            " ".join(ln for ln in out.splitlines() if "error" in ln or "undefined" in ln) or out)
    if out.strip():
        log(f"[build] sembed_bench warnings:\n{out}")
    return (cli if os.path.exists(cli) else None), exe, None


def build_noamx(bindir):
    so = os.path.join(bindir, "noamx.so")
    probe = os.path.join(bindir, "noamx_probe")
    ok1, out1 = sh(["cc", "-O2", "-std=gnu11", *WARN_FLAGS, "-shared", "-fPIC", "-o", so,
                    os.path.join(HERE, "noamx.c"), "-ldl"])
    ok2, out2 = sh(["cc", "-O2", "-std=gnu11", *WARN_FLAGS, "-o", probe, os.path.join(HERE, "noamx_probe.c"), "-ldl"])
    if not ok1:
        return None, None, "noamx.so does not build: " + short(out1)
    return so, (probe if ok2 else None), None


# ------------------------------------------------------------------------------------ model inputs

def prepare_model(a, name, need, cli):
    """One twin per shape in CACHE/models/<name>/: HF folder + model.onnx (make_onnx.py), model.int8.onnx
    (quantize_dynamic.py), f32.semb / q8.semb (sembed convert). Reused when the stamp matches.
    Returns {artifact: path or None} and {artifact: reason} for the missing ones."""
    d = os.path.join(a.cache, "models", name)
    os.makedirs(d, exist_ok=True)
    gen = os.path.join(ROOT, "models", "gen")
    stamp_path = os.path.join(d, "stamp.json")
    want = {"shape": name, "seed": a.model_seed,
            "generators": file_hash(os.path.join(gen, "twin.py"), os.path.join(gen, "make_onnx.py"))}
    try:
        with open(stamp_path) as f:
            have = json.load(f)
    except (OSError, ValueError):
        have = {}
    paths, why = {}, {}
    hf_ok = all(os.path.exists(os.path.join(d, f)) for f in ("config.json", "model.safetensors", "vocab.txt",
                                                             "model.onnx"))
    if a.rebuild or not hf_ok or {k: have.get(k) for k in want} != want:
        log(f"[inputs] {name}: make_onnx.py (random twin, seed {a.model_seed})")
        for f in ("model.int8.onnx", "f32.semb", "q8.semb"):
            if os.path.exists(os.path.join(d, f)):
                os.remove(os.path.join(d, f))
        ok, out = sh([PY, os.path.join(gen, "make_onnx.py"), "--shape", name, "--seed", str(a.model_seed),
                      "--out", d])
        if not ok:
            reason = "make_onnx.py failed: " + short(out.strip().splitlines()[-1] if out.strip() else out)
            return {k: None for k in need}, {k: reason for k in need}
        with open(stamp_path, "w") as f:
            json.dump(want, f)
    for k in ("hf", "model.onnx"):
        paths[k] = d if k == "hf" else os.path.join(d, k)

    if "model.int8.onnx" in need:
        p = os.path.join(d, "model.int8.onnx")
        qgen = os.path.join(gen, "quantize_dynamic.py")
        if not os.path.exists(p) or os.path.getmtime(p) < os.path.getmtime(qgen):
            log(f"[inputs] {name}: quantize_dynamic.py")
            ok, out = sh([PY, qgen, os.path.join(d, "model.onnx"), p])
            if not ok:
                why["model.int8.onnx"] = "quantize_dynamic.py failed: " + short(out.strip().splitlines()[-1])
                p = None
        paths["model.int8.onnx"] = p

    for semb, dtype in (("f32.semb", "f32"), ("q8.semb", "q8")):
        if semb not in need:
            continue
        p = os.path.join(d, semb)
        if not cli:
            paths[semb], why[semb] = None, "no sembed CLI to convert with"
            continue
        src = os.path.join(d, "model.safetensors")
        fresh = os.path.exists(p) and os.path.getmtime(p) >= max(os.path.getmtime(cli), os.path.getmtime(src))
        if a.rebuild or not fresh:
            log(f"[inputs] {name}: sembed convert --dtype {dtype}")
            # The weights file, not the folder: the folder also holds model.onnx.
            ok, out = sh([cli, "convert", src, "-o", p, "--dtype", dtype])
            if not ok:
                paths[semb], why[semb] = None, f"sembed convert --dtype {dtype} failed: " + short(out.strip())
                continue
        paths[semb] = p
    return paths, why


# ------------------------------------------------------------------------------------ measuring

def run_worker(cmd, env, timeout):
    """Run one measuring process; returns (result dict, stderr text, ru_maxrss MiB). The peak RSS
    comes from wait4 so every peer is measured the same way."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True)
        except OSError as e:
            return {"ok": False, "stage": "start", "error": f"{cmd[0]}: {e}"}, "", None
        t0 = time.monotonic()
        status, ru = None, None
        while True:
            pid, st, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                status, ru = st, usage
                break
            if time.monotonic() - t0 > timeout:
                os.killpg(p.pid, signal.SIGKILL)
                _, status, ru = os.wait4(p.pid, 0)
                p.returncode = -9
                out.seek(0)
                err.seek(0)
                return ({"ok": False, "stage": "timeout", "error": f"killed after {timeout:g} s (--timeout)"},
                        err.read().decode(errors="replace"), ru.ru_maxrss / 1024.0)
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    res = None
    for line in reversed(stdout.strip().splitlines()):
        try:
            res = json.loads(line)
            break
        except ValueError:
            continue
    if res is None:
        tail = [ln for ln in stderr.strip().splitlines() if ln.strip()][-1:] or [stdout.strip()[-200:]]
        res = {"ok": False, "stage": "crash", "error": f"exit {p.returncode}, no JSON: " + short(tail[0])}
    return res, stderr, ru.ru_maxrss / 1024.0


def worker_cmd(a, cfg, paths, b, t, tools):
    reps = ["--warmup", str(a.warmup), "--min-reps", str(a.min_reps), "--min-time", str(a.min_time),
            "--max-time", str(a.max_time), "--seed", str(a.seed)]
    peer = cfg["peer"]
    if peer == "torch":
        extra = {}
        if os.path.exists(OPENBLAS_OMP):
            extra["LD_PRELOAD"] = OPENBLAS_OMP
        cmd = [PY, os.path.join(HERE, "torch_bench.py"), paths["hf"], "--mode", cfg["mode"], "--batch", str(b),
               "--tokens", str(t), "--threads", str(a.threads), "--engine", a.torch_engine, *reps]
        return cmd, peer_env(a, extra)
    if peer == "ort":
        extra = {}
        if cfg.get("noamx"):
            extra = {"LD_PRELOAD": tools["noamx"], "NOAMX_LOG": "1"}
        cmd = ["node", os.path.join(HERE, "ort_bench.js"), paths[cfg["graph"]], os.path.join(paths["hf"], "vocab.txt"),
               "--batch", str(b), "--tokens", str(t), "--threads", str(a.threads), *reps]
        if a.no_spin:
            cmd.append("--no-spin")
        return cmd, peer_env(a, extra)
    extra = {"SEMBED_ISA": cfg["isa"]} if cfg.get("isa") else {}
    cmd = [tools["sembed_bench"], paths[cfg["semb"]], "--compute", cfg["compute"], "--batch", str(b),
           "--tokens", str(t), "--threads", str(a.threads), *reps]
    if a.no_verify:
        cmd.append("--no-verify")
    return cmd, peer_env(a, extra)


def sembed_isa(a, cli, isa):
    """The kernel path sembed actually runs with SEMBED_ISA=isa (None: the best), from `sembed --version`."""
    if not cli:
        return None, None
    ok, out = sh([cli, "--version"], env=peer_env(a, {"SEMBED_ISA": isa} if isa else {}))
    for line in out.splitlines():
        if line.startswith("kernels:") and "active" in line:
            best = line.split("best", 1)[1].split(",")[0].strip()
            active = line.split("active", 1)[1].split()[0].strip(",")
            return best, active
    return None, None


def unavailable(a, cfg, tools, paths, why):
    peer = cfg["peer"]
    if peer == "torch":
        if not os.path.exists(PY):
            return f"{PY} not found"
        return why.get("hf")
    if peer == "ort":
        if not shutil.which("node"):
            return "node not found"
        if not os.path.isdir(os.path.join(ROOT, "tools", "node", "node_modules", "onnxruntime-node")):
            return "tools/node/node_modules/onnxruntime-node missing (npm ci in tools/node)"
        if cfg.get("noamx") and not tools.get("noamx"):
            return tools.get("noamx_why") or "noamx.so unavailable"
        if not paths.get(cfg["graph"]):
            return why.get(cfg["graph"]) or f"{cfg['graph']} missing"
        return None
    if not tools.get("sembed_bench"):
        return tools.get("sembed_why") or "sembed_bench unavailable"
    if not paths.get(cfg["semb"]):
        return why.get(cfg["semb"]) or f"{cfg['semb']} missing"
    return None


# ------------------------------------------------------------------------------------ reporting

def fmt(v, kind):
    if v is None:
        return "n/a"
    if kind == "ms":
        return f"{v:.3f}" if v < 10 else (f"{v:.2f}" if v < 100 else f"{v:.1f}")
    if kind == "sps":
        return f"{v:.1f}" if v < 1000 else f"{v:.0f}"
    if kind == "mib":
        return f"{v:.1f}"
    if kind == "x":
        return f"{v:.2f}x"
    return str(v)


def ratios(rows):
    """Each peer row's latency, load time and peak RSS divided by its sembed reference's (same
    model and shape): speed > 1 means sembed is that many times faster; load/RSS > 1 means sembed
    loads faster / uses less memory."""
    by = {(r["model"], r["shape"], r["config"]): r for r in rows}
    for r in rows:
        ref = CONFIGS[r["config"]].get("ref")
        s = by.get((r["model"], r["shape"], ref)) if ref else None
        r["ref"] = ref
        ok = r["ok"] and s is not None and s["ok"]
        r["speed_vs_sembed"] = r["lat_ms"] / s["lat_ms"] if ok else None
        r["load_vs_sembed"] = r["load_ms"] / s["load_ms"] if ok and s["load_ms"] else None
        r["rss_vs_sembed"] = r["peak_rss_mib"] / s["peak_rss_mib"] if ok and s["peak_rss_mib"] else None


def targets(rows, models, shapes):
    by = {(r["model"], r["shape"], r["config"]): r for r in rows}
    out = []
    for t in TARGETS:
        for m in models:
            if t["models"] and m not in t["models"]:
                continue
            for s in shapes:
                if t["shapes"] and s not in t["shapes"]:
                    continue
                ra = by.get((m, s, t["a"]))
                rb = by.get((m, s, t["b"])) if t["b"] else None
                if ra is None or (t["b"] and rb is None):
                    continue  # not both configurations requested
                v = None
                if ra["ok"] and (t["b"] is None or rb["ok"]):
                    if t["metric"] == "sps":
                        v = ra["sent_per_s"] / rb["sent_per_s"]
                    elif t["metric"] == "lat":
                        v = ra["lat_ms"] / rb["lat_ms"]
                    elif t["metric"] == "rss":
                        v = ra["peak_rss_mib"] / rb["peak_rss_mib"]
                    elif t["metric"] == "load_abs":
                        v = ra["load_ms"]
                met = None if v is None else (v >= t["goal"] if t["metric"] == "sps" else v <= t["goal"])
                out.append(dict(id=t["id"], what=t["what"], model=m, shape=s, value=v, goal=t["goal"], met=met,
                                unit="ms" if t["metric"] == "load_abs" else "x"))
                if t["id"] == "load":
                    break  # load time does not depend on the shape: one line per model
    return out


COLS = [("config", "config"), ("ms/batch", "lat_ms"), ("sent/s", "sent_per_s"), ("load ms", "load_ms"),
        ("peak RSS MiB", "peak_rss_mib"), ("sembed speedup", "speed_vs_sembed"), ("load/sembed", "load_vs_sembed"),
        ("RSS/sembed", "rss_vs_sembed"), ("note", "note")]


def cell(r, key):
    if key == "config":
        return r["config"]
    if key == "note":
        return r.get("note") or ""
    if not r["ok"] and key in ("lat_ms", "sent_per_s", "load_ms", "peak_rss_mib"):
        return "n/a"
    v = r.get(key)
    kind = {"lat_ms": "ms", "load_ms": "ms", "sent_per_s": "sps", "peak_rss_mib": "mib"}.get(key, "x")
    if v is None and key.endswith("_vs_sembed"):
        return ""
    return fmt(v, kind)


def text_table(rows, models, shapes):
    lines = []
    for m in models:
        for s in shapes:
            rs = [r for r in rows if r["model"] == m and r["shape"] == s]
            if not rs:
                continue
            lines.append(f"\n{m} ({MODELS[m]}), batch x tokens {s}:")
            table = [[h for h, _ in COLS]] + [[cell(r, k) for _, k in COLS] for r in rs]
            w = [max(len(row[i]) for row in table) for i in range(len(COLS) - 1)]
            for row in table:
                lines.append("  " + "  ".join(c.rjust(w[i]) if i else c.ljust(w[i])
                                              for i, c in enumerate(row[:-1])) + ("  " + row[-1] if row[-1] else ""))
    return "\n".join(lines)


def md_escape(s):
    return str(s).replace("|", "\\|")


def markdown(meta, rows, tgts, models, shapes):
    L = [f"# sembed benchmark, {meta['date']}", ""]
    mi = meta["machine"]
    L.append(f"Machine: {mi.get('cpu', '?')}, {mi.get('nproc')} CPUs, flags {' '.join(mi.get('flags', []))}; "
             f"load average at start {', '.join(f'{x:.2f}' for x in mi['loadavg_start'])}, at end "
             f"{', '.join(f'{x:.2f}' for x in meta['loadavg_end'])}.  ")
    L.append(f"sembed: {' / '.join((mi.get('sembed_version') or 'n/a').splitlines())}; git {mi.get('git')}"
             f"{' (dirty)' if mi.get('git_dirty') else ''}.  ")
    o = meta["options"]
    L.append(f"Threads {o['threads']}; warm-up {o['warmup']}, then at least {o['min_reps']} timed calls and "
             f"{o['min_time']} s (at most {o['max_time']} s once 3 are timed); median reported. "
             f"Spinning {'off (OMP_WAIT_POLICY=passive, ORT allow_spinning=0)' if o['no_spin'] else 'peer defaults'}.")
    if meta.get("warnings"):
        L += [""] + [f"**Warning:** {w}" for w in meta["warnings"]]
    L += ["", "Columns: median ms per batch; sentences/s = batch / median; load = model load "
          "(ORT: session creation; torch: weights + module (+ quantize_dynamic); sembed: sembed_model_load); "
          "peak RSS of the measuring process (wait4); *sembed speedup* = this row's ms / its sembed reference's ms "
          "(> 1: sembed faster); load/sembed and RSS/sembed likewise (> 1: sembed better). "
          "References: fp32 peers vs sembed-fp32, int8 peers vs sembed-int8, ort-int8-noamx vs sembed-int8-avx512vnni.", ""]
    for m in models:
        rs_m = [r for r in rows if r["model"] == m]
        if not rs_m:
            continue
        L += [f"## {m} ({MODELS[m]}, vocab 30522)", "",
              "| shape | " + " | ".join(h for h, _ in COLS) + " |",
              "|---|" + "|".join("---" if k in ("config", "note") else "---:" for _, k in COLS) + "|"]
        for s in shapes:
            for r in (r for r in rs_m if r["shape"] == s):
                L.append(f"| {s} | " + " | ".join(md_escape(cell(r, k)) for _, k in COLS) + " |")
        L.append("")
    if tgts:
        L += ["## Issue 5 targets (goals, not assertions)", "", "| target | model | shape | measured | goal | met |",
              "|---|---|---|---:|---:|---|"]
        for t in tgts:
            v = "n/a" if t["value"] is None else (f"{t['value']:.3f} ms" if t["unit"] == "ms" else f"{t['value']:.2f}x")
            g = f"{t['goal']} ms" if t["unit"] == "ms" else f"{t['goal']}x"
            met = "n/a" if t["met"] is None else ("yes" if t["met"] else "no")
            L.append(f"| {md_escape(t['what'])} | {t['model']} | {t['shape']} | {v} | {g} | {met} |")
        L.append("")
    na = [r for r in rows if not r["ok"]]
    if na:
        L += ["## Not measured", ""]
        seen = set()
        for r in na:
            key = (r["config"], r.get("error"))
            if key in seen:
                continue
            seen.add(key)
            L.append(f"- {r['config']} ({r['model']} {r['shape']}{' and others' if sum(1 for x in na if (x['config'], x.get('error')) == key) > 1 else ''}): "
                     f"{md_escape(r.get('stage', ''))}: {md_escape(r.get('error', ''))}")
        L.append("")
    return "\n".join(L)


# ------------------------------------------------------------------------------------ noamx check

def check_noamx(a, tools):
    so, probe = tools.get("noamx"), tools.get("noamx_probe")
    if not so or not probe:
        die(tools.get("noamx_why") or "noamx_probe did not build", 1)
    env = peer_env(a)
    ok, plain = sh([probe], env=env)
    ok2, shim = sh([probe], env=dict(env, LD_PRELOAD=so, NOAMX_LOG="1"))
    print("probe without shim:", plain.strip())
    print("probe with noamx.so:", shim.strip())
    if shutil.which("strace"):
        d = os.path.join(a.cache, "models", "bert-tiny")
        g = os.path.join(d, "model.int8.onnx")
        if os.path.exists(g):
            trace = os.path.join(a.cache, "ort_arch_prctl.strace")
            sh(["strace", "-f", "-e", "trace=arch_prctl", "-o", trace, "node", os.path.join(HERE, "ort_bench.js"), g,
                os.path.join(d, "vocab.txt"), "--batch", "1", "--tokens", "16", "--warmup", "1", "--min-reps", "2",
                "--min-time", "0"], env=env)
            calls = [ln.split(None, 1)[1] for ln in open(trace) if "arch_prctl(" in ln and "SET_FS" not in ln]
            print(f"ORT int8 (bert-tiny) arch_prctl calls besides ARCH_SET_FS: {len(calls)}")
            for c in calls[:5]:
                print("   ", c.strip())
            if not calls:
                print("    ORT never asks for AMX here (no AMX on this CPU/OS?): ort-int8-noamx equals ort-int8.")
        else:
            print("(run a benchmark on bert-tiny first to strace ORT)")
    else:
        print("strace not installed: cannot show which arch_prctl calls ORT makes (apt-get install strace)")


# ------------------------------------------------------------------------------------ main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="bert-tiny,minilm-l6,bert-base", help="comma list of: " + ", ".join(MODELS))
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma list of BATCHxTOKENS (default: %(default)s)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma list (see --list); default: all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls before timing (default 2)")
    ap.add_argument("--min-reps", type=int, default=10, help="timed calls at least (default 10) ...")
    ap.add_argument("--min-time", type=float, default=2.0, help="... and at least this many seconds (default 2)")
    ap.add_argument("--max-time", type=float, default=30.0,
                    help="stop timing after this many seconds once 3 calls are timed (default 30)")
    ap.add_argument("--timeout", type=float, default=900.0, help="kill a measuring process after this (s)")
    ap.add_argument("--quick", action="store_true",
                    help="bert-tiny, shapes 1x16,32x32, warm-up 1, 3 reps, 0.2 s (checks the harness, not speed)")
    ap.add_argument("--no-spin", action="store_true",
                    help="OMP_WAIT_POLICY=passive and ORT allow_spinning=0 (for loaded machines; not the peers' default)")
    ap.add_argument("--no-verify", action="store_true", help="sembed: skip checksum verification at load")
    ap.add_argument("--torch-engine", default="auto",
                    help="PyTorch int8 engine: auto = first of fbgemm, x86, onednn, qnnpack built in (default)")
    ap.add_argument("--seed", type=int, default=1, help="token id seed")
    ap.add_argument("--model-seed", type=int, default=0, help="twin weight seed")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-bench"),
                    help="sembed build (Release) to use or create (default: build-bench)")
    ap.add_argument("--no-build", action="store_true", help="use --build-dir as it is")
    ap.add_argument("--jobs", type=int, default=2, help="make -j (default 2)")
    ap.add_argument("--cache", default=os.path.join(ROOT, "out", "bench"), help="models and binaries (default out/bench)")
    ap.add_argument("--rebuild", action="store_true", help="regenerate models and .semb files")
    ap.add_argument("--results", default=os.path.join(HERE, "results"), help="where JSON/Markdown go")
    ap.add_argument("--tag", default="", help="suffix for the result file names")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument("--list", action="store_true", help="list configurations and exit")
    ap.add_argument("--check-noamx", action="store_true", help="show whether the no-AMX shim takes, then exit")
    a = ap.parse_args()
    if a.quick:
        explicit = set(x.split("=")[0] for x in sys.argv[1:])
        if "--models" not in explicit:
            a.models = "bert-tiny"
        if "--shapes" not in explicit:
            a.shapes = "1x16,32x32"
        a.warmup, a.min_reps, a.min_time = min(a.warmup, 1), min(a.min_reps, 3), min(a.min_time, 0.2)
    a.models = [m for m in a.models.split(",") if m]
    a.configs = [c for c in a.configs.split(",") if c]
    a.shapes = [s for s in a.shapes.split(",") if s]
    for m in a.models:
        if m not in MODELS:
            die(f"unknown model {m!r} (one of {', '.join(MODELS)})")
    for c in a.configs:
        if c not in CONFIGS:
            die(f"unknown config {c!r} (see --list)")
    for s in a.shapes:
        try:
            b, t = (int(x) for x in s.lower().split("x"))
            if b < 1 or t < 2 or t > 512:
                raise ValueError
        except ValueError:
            die(f"bad shape {s!r}: BATCHxTOKENS with batch >= 1 and 2 <= tokens <= 512")
    if a.threads < 1 or a.min_reps < 1 or a.warmup < 0:
        die("--threads and --min-reps must be >= 1, --warmup >= 0")
    a.build_dir = os.path.abspath(a.build_dir)
    a.cache = os.path.abspath(a.cache)
    return a


def ensure_ort_peer():
    """The ONNX Runtime peer is npm's onnxruntime-node (it carries libonnxruntime): install the
    locked tools/node packages when a fresh clone does not have them yet, as tools/install-deps.sh
    does. A failure leaves the ORT rows n/a with the reason."""
    node_dir = os.path.join(ROOT, "tools", "node")
    if os.path.isdir(os.path.join(node_dir, "node_modules", "onnxruntime-node")) or not shutil.which("npm"):
        return
    log("[setup] npm ci in tools/node (the ONNX Runtime peer, onnxruntime-node)")
    env = dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip")
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=node_dir, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        log(f"[setup] npm ci failed (exit {r.returncode}): {r.stdout.strip()[-400:]}")


def main():
    a = parse_args()
    if a.list:
        for k, v in CONFIGS.items():
            print(f"{k:24s} {v['desc']}" + (f"  (compared with {v['ref']})" if v.get("ref") else ""))
        return 0
    bindir = os.path.join(a.cache, "bin")
    os.makedirs(bindir, exist_ok=True)
    tools = {}
    peers = {CONFIGS[c]["peer"] for c in a.configs}
    need_noamx = a.check_noamx or any(CONFIGS[c].get("noamx") for c in a.configs)
    if need_noamx:
        tools["noamx"], tools["noamx_probe"], tools["noamx_why"] = build_noamx(bindir)
    if a.check_noamx:
        check_noamx(a, tools)
        return 0
    if "ort" in peers:
        ensure_ort_peer()
    cli = None
    if "sembed" in peers:
        cli, tools["sembed_bench"], tools["sembed_why"] = build_sembed(a, bindir)
        if tools["sembed_why"]:
            log(f"[build] sembed unavailable: {tools['sembed_why']}")
    else:
        c = os.path.join(a.build_dir, "sembed")
        cli = c if os.path.exists(c) else None

    warnings = []
    load = os.getloadavg()[0]
    if load > 0.5 * (os.cpu_count() or 1):
        warnings.append(f"load average {load:.2f} on {os.cpu_count()} CPUs at start: other work is running, "
                        "numbers are not meaningful")
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": machine_info(a, cli),
            "options": {k: getattr(a, k) for k in ("models", "shapes", "configs", "threads", "warmup", "min_reps",
                                                  "min_time", "max_time", "no_spin", "no_verify", "seed",
                                                  "model_seed", "build_dir")},
            "configs": {c: CONFIGS[c] for c in a.configs}}
    isa_seen = {}
    for c in a.configs:
        cfg = CONFIGS[c]
        if cfg["peer"] == "sembed":
            isa_seen[c] = sembed_isa(a, cli, cfg.get("isa"))

    rows = []
    for m in a.models:
        need = set()
        for c in a.configs:
            cfg = CONFIGS[c]
            need |= {cfg.get("graph"), cfg.get("semb")} - {None}
        paths, why = prepare_model(a, m, need, cli)
        for s in a.shapes:
            b, t = (int(x) for x in s.lower().split("x"))
            for c in a.configs:
                cfg = CONFIGS[c]
                row = {"model": m, "shape": s, "batch": b, "tokens": t, "config": c, "peer": cfg["peer"], "ok": False}
                reason = unavailable(a, cfg, tools, paths, why)
                if reason:
                    row.update(stage="setup", error=reason, note="n/a: " + short(reason, 60))
                    rows.append(row)
                    log(f"[{m} {s}] {c}: n/a ({short(reason, 100)})")
                    continue
                cmd, env = worker_cmd(a, cfg, paths, b, t, tools)
                row["cmd"] = " ".join(shlex.quote(x) for x in cmd)
                row["env"] = {k: env[k] for k in ("LD_PRELOAD", "SEMBED_ISA", "OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                  "NOAMX_LOG") if k in env}
                res, stderr, maxrss = run_worker(cmd, env, a.timeout)
                row.update({k: v for k, v in res.items() if k not in ("batch", "tokens", "peer", "model")})
                row["ok"] = bool(res.get("ok"))
                row["peak_rss_mib"] = maxrss if row["ok"] else None
                row["peak_rss_self_mib"] = res.get("peak_rss_mib")
                notes = []
                if cfg["peer"] == "sembed" and row["ok"] and isa_seen.get(c):
                    best, active = isa_seen[c]
                    row["isa"] = active
                    if cfg.get("isa") and active and active != cfg["isa"]:
                        notes.append(f"ran {active}: {cfg['isa']} unsupported here")
                    elif active:
                        notes.append(f"isa {active}")
                if cfg["peer"] == "sembed" and row["ok"] and res.get("load_noverify_ms") is not None:
                    notes.append(f"load {res['load_noverify_ms']:.2f} ms without checksum verification")
                if cfg.get("noamx"):
                    row["noamx_refused"] = stderr.count("noamx: refused")
                    if row["ok"] and row["noamx_refused"] == 0:
                        notes.append("ORT never asked for AMX: same as ort-int8")
                if cfg["peer"] == "torch" and row["ok"]:
                    if res.get("engine"):
                        notes.append(f"engine {res['engine']}")
                    if not any("openblas" in p for p in res.get("blas", [])):
                        notes.append("no OpenBLAS mapped")
                if not row["ok"]:
                    row.setdefault("error", "failed")
                    if res.get("unsupported"):
                        notes.insert(0, f"n/a: not supported yet ({row.get('stage')}: SEMBED_EUNSUPPORTED)")
                    else:
                        notes.insert(0, f"n/a: {row.get('stage')}: " + short(row.get("error"), 60))
                row["note"] = "; ".join(notes)
                if stderr.strip() and not row["ok"]:
                    row["stderr_tail"] = stderr.strip()[-1500:]
                rows.append(row)
                if row["ok"]:
                    log(f"[{m} {s}] {c}: {row['lat_ms']:.3f} ms/batch, {row['sent_per_s']:.1f} sent/s, "
                        f"load {row['load_ms']:.1f} ms, RSS {row['peak_rss_mib']:.0f} MiB ({row['reps']} reps)")
                else:
                    log(f"[{m} {s}] {c}: n/a ({row.get('stage')}: {short(row.get('error'), 120)})")

    ratios(rows)
    tgts = targets(rows, a.models, a.shapes)
    meta["loadavg_end"] = list(os.getloadavg())
    if meta["loadavg_end"][0] > 0.5 * (os.cpu_count() or 1) and not warnings:
        warnings.append(f"load average {meta['loadavg_end'][0]:.2f} at the end: other work ran meanwhile")
    meta["warnings"] = warnings
    print(text_table(rows, a.models, a.shapes))
    for w in warnings:
        print(f"\nwarning: {w}")
    if tgts:
        print("\nissue 5 targets:")
        for t in tgts:
            v = "n/a" if t["value"] is None else (f"{t['value']:.3f} ms" if t["unit"] == "ms" else f"{t['value']:.2f}x")
            met = "n/a" if t["met"] is None else ("met" if t["met"] else "not met")
            print(f"  {t['what']:58s} {t['model']:10s} {t['shape']:7s} {v:>10s}  {met}")
    if not a.no_write:
        os.makedirs(a.results, exist_ok=True)
        stem = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S") + (f"_{a.tag}" if a.tag else "")
        jp, mp = os.path.join(a.results, stem + ".json"), os.path.join(a.results, stem + ".md")
        with open(jp, "w") as f:
            json.dump({"meta": meta, "results": rows, "targets": tgts}, f, indent=1)
        with open(mp, "w") as f:
            f.write(markdown(meta, rows, tgts, a.models, a.shapes) + "\n")
        print(f"\nwrote {os.path.relpath(jp)} and {os.path.relpath(mp)}")
    return 0 if any(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
