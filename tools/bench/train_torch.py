"""PyTorch peer for tools/bench/train_bench.sh: unsupervised SimCSE training steps of the BertModel
twin (models/gen/twin.py) with the settings `sembed train --objective unsup` uses by default.

Settings: each batch of B sentences is encoded twice in one forward (2B rows, padded to the batch's
longest sentence, attention mask on padding), hidden and attention dropout, [CLS] through the
pooler dense + tanh (SimCSE's MLP), InfoNCE over in-batch negatives on cosine / temp, AdamW
(torch.optim.AdamW, weight decay 0, lr constant), gradient-norm clipping 1.0 (HF Trainer's
default, as sembed). Weights N(0, 0.02), fp32, torch.set_num_threads(threads).

Input: a file of token ids, one sentence per line, space-separated, [CLS]/[SEP] included (what
`sembed tokenize --ids --max-length 32` prints), so both peers train on the same tokens.
Prints one JSON object: sentences_per_s over the timed steps (after --warmup untimed steps, wall
clock), cpu_s_per_step (process CPU time over the timed steps), peak_rss_mib (whole process,
including `import torch`), the loss of every step, and the BLAS/OpenMP libraries mapped.

    /usr/bin/python3 tools/bench/train_torch.py --shape minilm-l6 --ids ids.txt --steps 8 --warmup 2
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "gen"))
import twin  # noqa: E402


def blas_libs():
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if any(k in p for k in ("blas", "gomp", "omp.so")):
                    libs.add(p)
    except OSError:
        pass
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", default="minilm-l6", choices=sorted(twin.SHAPES))
    ap.add_argument("--ids", required=True)
    ap.add_argument("--vocab-size", type=int, default=30522)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=8, help="timed steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--temp", type=float, default=0.05)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    with open(a.ids) as f:
        sents = [[int(t) for t in line.split()] for line in f if line.strip()]
    need = (a.steps + a.warmup) * a.batch
    if len(sents) < need:
        print(json.dumps({"ok": False, "error": f"{a.ids}: {len(sents)} sentences, need {need}"}))
        return 1
    c = twin.Config(vocab_size=a.vocab_size, hidden_dropout=a.dropout, attention_dropout=a.dropout,
                    **twin.SHAPES[a.shape])
    model = twin.BertModel(c, with_pooler=True)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("LayerNorm.weight"):
                p.fill_(1.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, 0.02)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    losses, t_wall, t_cpu = [], None, None
    for s in range(a.warmup + a.steps):
        if s == a.warmup:
            t_wall, t_cpu = time.perf_counter(), time.process_time()
        batch = sents[s * a.batch:(s + 1) * a.batch]
        T = max(len(x) for x in batch)
        ids = torch.zeros(2 * a.batch, T, dtype=torch.long)
        mask = torch.zeros(2 * a.batch, T, dtype=torch.long)
        for i, x in enumerate(batch):
            for v in (0, a.batch):
                ids[v + i, :len(x)] = torch.tensor(x)
                mask[v + i, :len(x)] = 1
        _, _, pooled = model(ids, None, mask)
        z1, z2 = pooled[:a.batch], pooled[a.batch:]
        sim = F.cosine_similarity(z1.unsqueeze(1), z2.unsqueeze(0), dim=-1) / a.temp
        loss = F.cross_entropy(sim, torch.arange(a.batch))
        opt.zero_grad(set_to_none=False)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss))
    wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu
    print(json.dumps({"ok": True, "shape": a.shape, "batch": a.batch, "steps": a.steps, "threads": a.threads,
                      "sentences_per_s": a.steps * a.batch / wall, "s_per_step": wall / a.steps,
                      "cpu_s_per_step": cpu / a.steps,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                      "losses": losses, "torch": torch.__version__, "libs": blas_libs()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
