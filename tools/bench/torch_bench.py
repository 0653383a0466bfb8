"""PyTorch peer for tools/bench/run.py: the BertModel twin (models/gen/twin.py) in fp32 or with
torch.quantization.quantize_dynamic (int8 weights per tensor, dynamic int8 activations) on every
nn.Linear, timed on batches of B inputs of exactly T tokens.

One configuration per process (peak RSS is this configuration's). Prints one JSON object on stdout
(fields: tools/bench/README.md); exit 1 with {"ok": false, "stage", "error"} when something fails.

    /usr/bin/python3 tools/bench/torch_bench.py MODEL_DIR --mode fp32|int8 --batch 32 --tokens 32

MODEL_DIR is an HF folder written by models/gen/make_onnx.py (config.json, model.safetensors,
vocab.txt). Load time = reading the safetensors + building the module + (int8) quantize_dynamic;
`import torch` is reported apart (import_ms). Inputs are token ids drawn exactly as sembed_bench.c
draws them (MINSTD), so every peer embeds the same batch.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

T_START = time.perf_counter()


def rss_mib():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return -1.0


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def emit(obj, code=0):
    print(json.dumps(obj), flush=True)
    sys.exit(code)


def minstd_ids(batch, tokens, vocab, cls, sep, seed):
    """[CLS], tokens-2 ids from MINSTD (48271 x mod 2^31-1) above the first 1000 entries, [SEP]."""
    lo = 1000 if vocab > 2000 else 0
    x = seed + 1
    rows = []
    for _ in range(batch):
        row = [cls]
        for _ in range(tokens - 2):
            x = x * 48271 % 2147483647
            row.append(lo + x % (vocab - lo))
        rows.append(row + [sep])
    return rows


def blas_libs():
    """Which BLAS/OpenMP libraries the process mapped (to show the LD_PRELOAD took)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if any(k in p for k in ("blas", "lapack", "gomp", "omp.so")):
                    libs.add(p)
    except OSError:
        pass
    return sorted(libs)


def load_model(model_dir, mode, engine_name="auto"):
    """The twin from an HF folder (config.json + model.safetensors), fp32 or quantize_dynamic int8.
    Returns (model in eval mode, quantized engine or None, twin.Config). Shared with corpus_torch.py."""
    import numpy as np
    import torch
    import twin
    from st_read import read_safetensors
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    act = {"gelu": "gelu", "gelu_new": "gelu_tanh", "relu": "relu"}[cfg.get("hidden_act", "gelu")]
    c = twin.Config(vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
                    num_layers=cfg["num_hidden_layers"], num_heads=cfg["num_attention_heads"],
                    intermediate_size=cfg["intermediate_size"],
                    max_position_embeddings=cfg["max_position_embeddings"],
                    type_vocab_size=cfg.get("type_vocab_size", 2),
                    layer_norm_eps=cfg.get("layer_norm_eps", 1e-12), hidden_act=act)
    st = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    model = twin.BertModel(c, with_pooler=any(k.startswith("pooler.") for k in st))
    sd = {k: torch.from_numpy(v.copy()) for k, v in st.items() if v.dtype == np.float32}
    del st
    missing, unexpected = model.load_state_dict(sd, strict=False)
    del sd
    if missing or unexpected:
        raise ValueError(f"state dict mismatch: missing {missing[:3]}, unexpected {unexpected[:3]}")
    model.eval()
    engine = None
    if mode == "int8":
        engines = torch.backends.quantized.supported_engines
        engine = engine_name if engine_name != "auto" else next((e for e in ("fbgemm", "x86", "onednn", "qnnpack") if e in engines), engines[0])
        if engine not in engines:
            raise ValueError(f"quantized engine {engine} not in {engines}")
        torch.backends.quantized.engine = engine
        model = torch.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    return model, engine, c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--mode", choices=["fp32", "int8"], default="fp32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--min-reps", type=int, default=10)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--max-time", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--engine", default="auto",
                    help="int8 quantized engine: auto (fbgemm, x86, onednn, qnnpack: the first built in), or one of those")
    a = ap.parse_args()
    base = {"peer": "torch", "mode": a.mode, "batch": a.batch, "tokens": a.tokens}
    if a.batch < 1 or a.tokens < 2 or a.threads < 1 or a.min_reps < 1:
        print("torch_bench: need batch >= 1, tokens >= 2, threads >= 1, reps >= 1", file=sys.stderr)
        sys.exit(2)

    stage = "import"
    try:
        import numpy as np
        import torch
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../models/gen"))
        import twin
        from st_read import read_safetensors
        import_ms = 1e3 * (time.perf_counter() - T_START)
        torch.set_num_threads(a.threads)
        torch.set_num_interop_threads(1)
        rss_start = rss_mib()

        stage = "load"
        t0 = time.perf_counter()
        model, engine, c = load_model(a.model_dir, a.mode, a.engine)
        load_ms = 1e3 * (time.perf_counter() - t0)
        rss_loaded = rss_mib()

        stage = "inputs"
        with open(os.path.join(a.model_dir, "vocab.txt"), encoding="utf-8") as f:
            vocab = [line.rstrip("\n") for line in f]
        if a.tokens > c.max_position_embeddings:
            raise ValueError(f"{a.tokens} tokens exceed max_position_embeddings {c.max_position_embeddings}")
        rows = minstd_ids(a.batch, a.tokens, len(vocab), vocab.index("[CLS]"), vocab.index("[SEP]"), a.seed)
        ids = torch.tensor(rows, dtype=torch.long)
        tt = torch.zeros_like(ids)
        mask = torch.ones_like(ids)

        stage = "run"
        with torch.inference_mode():
            for i in range(max(a.warmup, 1)):
                last, _, pooled = model(ids, tt, mask)
                if i == 0 and not bool(torch.isfinite(last).all()):
                    raise ValueError("non-finite value in the output")
            lat = []
            start = time.perf_counter()
            while True:
                t0 = time.perf_counter()
                model(ids, tt, mask)
                t1 = time.perf_counter()
                lat.append(t1 - t0)
                el = t1 - start
                if (len(lat) >= a.min_reps and el >= a.min_time) or (el >= a.max_time and len(lat) >= 3):
                    break
    except Exception as e:  # report any failure as JSON, the harness marks the cell n/a
        emit(dict(base, ok=False, stage=stage, error=f"{type(e).__name__}: {e}"), 1)

    lat.sort()
    med = statistics.median(lat)
    emit(dict(base, ok=True, torch=torch.__version__, engine=engine, threads=torch.get_num_threads(),
              blas=blas_libs(), import_ms=round(import_ms, 3), load_ms=round(load_ms, 4),
              reps=len(lat), time_s=round(el, 3), lat_ms=1e3 * med, lat_min_ms=1e3 * lat[0],
              lat_mean_ms=1e3 * statistics.fmean(lat), lat_p90_ms=1e3 * lat[round((len(lat) - 1) * 0.9)],
              sent_per_s=a.batch / med, rss_start_mib=round(rss_start, 2), rss_loaded_mib=round(rss_loaded, 2),
              peak_rss_mib=round(peak_rss_mib(), 2)))


if __name__ == "__main__":
    main()
