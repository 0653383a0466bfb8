"""PyTorch peer for the corpus job (tools/bench/corpus.py): the BertModel twin (fp32, or
quantize_dynamic int8) on real sentences the way sentence-transformers runs them: inputs sorted by
length, batches of --batch, each padded to its longest input, attention mask for the padding.

There is no HF tokenizer in Debian's Python here, so the ids come from the ORT peer's run of HF
tokenizers (corpus_ort.js --dump-ids, one line of ids per input); the harness adds that peer's
measured tokenization time (--tokenize-s) to this peer's job time and says so.

    /usr/bin/python3 tools/bench/corpus_torch.py MODEL_DIR IDS.txt --mode fp32|int8 [--batch 32]
        [--threads 2] [--reps 3] [--tokenize-s S]
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "models", "gen"))
sys.path.insert(0, HERE)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("ids")
    ap.add_argument("--mode", choices=["fp32", "int8"], default="fp32")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokenize-s", type=float, default=0.0)
    a = ap.parse_args()
    base = {"peer": "torch", "mode": a.mode}
    stage = "import"
    try:
        import torch
        from torch_bench import load_model, peak_rss_mib
        torch.set_num_threads(a.threads)
        torch.set_num_interop_threads(1)
        stage = "load"
        t0 = time.perf_counter()
        model, engine, _ = load_model(a.model_dir, a.mode)
        load_ms = 1e3 * (time.perf_counter() - t0)
        stage = "inputs"
        with open(a.ids) as f:
            rows = [[int(x) for x in line.split()] for line in f]
        if not rows:
            raise ValueError("no inputs")
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        stage = "run"
        times, real, computed = [], 0, 0
        with torch.inference_mode():
            for _ in range(a.reps):
                real = computed = 0
                t0 = time.perf_counter()
                for s in range(0, len(order), a.batch):
                    idx = order[s:s + a.batch]
                    T = len(rows[idx[-1]])
                    ids = torch.zeros((len(idx), T), dtype=torch.long)
                    mask = torch.zeros((len(idx), T), dtype=torch.long)
                    for b, r in enumerate(idx):
                        ids[b, :len(rows[r])] = torch.tensor(rows[r])
                        mask[b, :len(rows[r])] = 1
                        real += len(rows[r])
                    computed += len(idx) * T
                    model(ids, torch.zeros_like(ids), mask)
                times.append(time.perf_counter() - t0 + a.tokenize_s)
    except Exception as e:  # the harness marks the cell n/a
        print(json.dumps(dict(base, ok=False, stage=stage, error=f"{type(e).__name__}: {e}")), flush=True)
        sys.exit(1)
    sec = statistics.median(times)
    print(json.dumps(dict(base, ok=True, torch=torch.__version__, engine=engine, batch=a.batch,
                          threads=torch.get_num_threads(), sentences=len(rows), reps=a.reps, seconds=sec,
                          seconds_min=min(times), tokenize_s=a.tokenize_s, tokens=real, computed_tokens=computed,
                          pad_tokens=computed - real, sent_per_s=len(rows) / sec, tok_per_s=real / sec,
                          load_ms=load_ms, peak_rss_mib=peak_rss_mib())), flush=True)


if __name__ == "__main__":
    main()
