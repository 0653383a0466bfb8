"""Golden states for sembed's trainer (tests/test_train_grad.c), in the style of llm.c's test_gpt2.

For a small random BERT (the twin in twin.py, HF parameter names) and a fixed batch, computes in
float64 with PyTorch autograd: the loss, every parameter gradient, and the losses of 10 AdamW
steps (torch.optim.AdamW, no decay for biases/LayerNorm, HF linear warmup+decay, grad-norm clip).
Dropout is 0 here; dropout is tested separately in C (structure, statistics, finite differences).

Cases (loss definitions follow SimCSE, Gao et al. 2021, and HF BertForMaskedLM):
  unsup_cls   InfoNCE over in-batch negatives, cls pooler + MLP (pooler.dense + tanh), temp 0.05
  unsup_cbp   same with cls_before_pooler (no MLP)
  unsup_mean  same with mean pooling
  sup_hn      supervised: anchor, positive, hard negative (hard-negative weight 0.5 in logit
              space), cls + MLP, plus the MLM auxiliary loss (weight 0.1) with given masks
  mlm         MLM alone (mask positions and replacement ids given)

File format (little-endian): b"STGOLD1\\0", u32 n_records, then per record
u16 name_len, name, u8 dtype (0 f32, 1 i32), u8 n_dims, u32 dims[n_dims], data.

Usage: /usr/bin/python3 models/gen/train_golden.py OUT_DIR   (writes OUT_DIR/<case>.bin)
"""
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twin  # noqa: E402

CFG = dict(num_layers=2, hidden_size=32, num_heads=4, intermediate_size=64, max_position_embeddings=16,
           hidden_dropout=0.0, attention_dropout=0.0)
VOCAB = 64
T = 8
B = 4
STEPS = 10
OPT = dict(lr=1e-3, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8, warmup=2, clip=1.0)
TEMP = 0.05


class MLMHead(nn.Module):
    """cls.predictions of HF BertForMaskedLM: transform (dense, act, LayerNorm), tied decoder, bias."""

    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.act = twin.act_fn(c.hidden_act)

    def forward(self, h, word):
        return self.LayerNorm(self.act(self.dense(h))) @ word.t() + self.bias


def named_params(model, head):
    out = dict(model.named_parameters())
    if head is not None:
        out["cls.predictions.transform.dense.weight"] = head.dense.weight
        out["cls.predictions.transform.dense.bias"] = head.dense.bias
        out["cls.predictions.transform.LayerNorm.weight"] = head.LayerNorm.weight
        out["cls.predictions.transform.LayerNorm.bias"] = head.LayerNorm.bias
        out["cls.predictions.bias"] = head.bias
    return out


def make_batch(gen, n, lens):
    ids = torch.zeros(n, T, dtype=torch.long)
    for i in range(n):
        ids[i, 0] = 2  # a fixed "[CLS]"-like id
        ids[i, 1:lens[i]] = torch.randint(4, VOCAB, (lens[i] - 1,), generator=gen)
    mask = (torch.arange(T)[None, :] < torch.tensor(lens)[:, None]).long()
    types = torch.zeros(n, T, dtype=torch.long)
    return ids, types, mask


def make_mlm(gen, ids, mask):
    """Mask ~25% of the non-[CLS] valid positions (at least one per row), 80/10/10 replacement."""
    mids = ids.clone()
    rows, labels = [], []
    n = ids.shape[0]
    for i in range(n):
        L = int(mask[i].sum())
        cand = list(range(1, L))
        pick = [p for p in cand if torch.rand(1, generator=gen).item() < 0.25] or [cand[0]]
        for p in pick:
            r = torch.rand(1, generator=gen).item()
            if r < 0.8:
                mids[i, p] = 3  # "[MASK]"
            elif r < 0.9:
                mids[i, p] = int(torch.randint(0, VOCAB, (1,), generator=gen))
            rows.append(i * T + p)
            labels.append(int(ids[i, p]))
    return mids, torch.tensor(rows), torch.tensor(labels)


def infonce(z, b, hard_neg, temp, hnw):
    z1, z2 = z[:b], z[b:2 * b]
    cos = F.cosine_similarity(z1[:, None, :], z2[None, :, :], dim=-1) / temp
    if hard_neg:
        z3 = z[2 * b:3 * b]
        c13 = F.cosine_similarity(z1[:, None, :], z3[None, :, :], dim=-1) / temp
        w = torch.zeros(b, 2 * b, dtype=cos.dtype)
        w[torch.arange(b), b + torch.arange(b)] = hnw
        cos = torch.cat([cos, c13], 1) + w
    return F.cross_entropy(cos, torch.arange(b))


def pooled(model, ids, types, mask, mode, mlp):
    last, hs, _ = model(ids, types, mask)
    if mode == "mean":
        z = twin.pool(last, hs, None, mask, "mean")
    else:
        z = last[:, 0]
    if mlp:
        z = torch.tanh(model.pooler.dense(z))
    return z


def lr_lambda(step, warmup, total):
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def run_case(name, out_dir, objective, pool, mlp, hard_neg, hnw, mlm_weight, seed):
    gen = torch.Generator().manual_seed(seed)
    # std 0.1 (not BERT's 0.02): sentences get distinct embeddings, so the contrastive loss is away
    # from its collapsed point log(B) and the gradients are not a cancellation of near-equal terms
    model = twin.random_model(CFG, vocab_size=VOCAB, seed=seed, with_pooler=True, std=0.1)
    c = model.config
    use_mlm = objective == "mlm" or mlm_weight > 0
    head = MLMHead(c) if use_mlm else None
    if head is not None:
        torch.manual_seed(seed + 1)
        with torch.no_grad():
            head.dense.weight.normal_(0, 0.05)
            head.dense.bias.normal_(0, 0.02)
            head.LayerNorm.weight.copy_(1 + 0.1 * torch.randn(c.hidden_size))
            head.LayerNorm.bias.normal_(0, 0.02)
            head.bias.normal_(0, 0.02)
    model.double()
    if head is not None:
        head.double()
    model.train()  # dropout is 0: train mode only matters for its bookkeeping

    k = 0 if objective == "mlm" else (3 if hard_neg else 2)
    records = []
    if objective == "mlm":
        lens = [8, 6, 4, 7]
        ids, types, mask = make_batch(gen, 4, lens)
    else:
        lens = [8, 5, 3, 6]
        base_ids, _, _ = make_batch(gen, B, lens)
        if objective == "unsup":
            all_lens = lens * 2
            ids = torch.cat([base_ids, base_ids], 0)
        else:
            lens2 = [6, 8, 4, 5]
            lens3 = [7, 3, 8, 6]
            ids2, _, _ = make_batch(gen, B, lens2)
            ids3, _, _ = make_batch(gen, B, lens3)
            all_lens = lens + lens2 + lens3
            ids = torch.zeros(3 * B, T, dtype=torch.long)
            ids[:B], ids[B:2 * B], ids[2 * B:] = base_ids, ids2, ids3
        lens = all_lens
        mask = (torch.arange(T)[None, :] < torch.tensor(lens)[:, None]).long()
        types = torch.zeros_like(ids)
    if use_mlm:
        mids, rows, labels = make_mlm(gen, ids, mask)

    def loss_fn():
        total = 0.0
        if objective != "mlm":
            z = pooled(model, ids, types, mask, pool, mlp)
            total = infonce(z, B, hard_neg, TEMP, hnw)
        if use_mlm:
            last, _, _ = model(mids, types, mask)
            logits = head(last.reshape(-1, c.hidden_size)[rows], model.embeddings.word_embeddings.weight)
            lm = F.cross_entropy(logits, labels)
            total = lm if objective == "mlm" else total + mlm_weight * lm
        return total

    params = named_params(model, head)
    # snapshot initial parameters (as float32: the values the C side starts from)
    for n, p in params.items():
        records.append(("param." + n, p.detach().float()))
    loss = loss_fn()
    loss.backward()
    for n, p in params.items():
        if p.grad is not None:
            records.append(("grad." + n, p.grad.detach().float()))
    records.append(("loss", torch.tensor([float(loss)])))

    # 10 AdamW steps on the same batch (torch skips parameters whose grad is None)
    for p in params.values():
        p.grad = None
    decay = [p for n, p in params.items() if not (n.endswith("bias") or "LayerNorm.weight" in n)]
    no_decay = [p for n, p in params.items() if n.endswith("bias") or "LayerNorm.weight" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": OPT["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=OPT["lr"], betas=OPT["betas"], eps=OPT["eps"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_lambda(s, OPT["warmup"], STEPS))
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in params.values() if p.grad is not None], OPT["clip"])
        opt.step()
        sched.step()
        losses.append(float(loss))
    records.append(("losses", torch.tensor(losses)))

    pool_id = {"cls": 0, "cls_before_pooler": 1, "mean": 2}[pool]
    obj_id = {"unsup": 0, "sup": 1, "mlm": 2}[objective]
    records.append(("config", torch.tensor([VOCAB, c.hidden_size, c.num_layers, c.num_heads, c.intermediate_size,
                                            c.max_position_embeddings, c.type_vocab_size], dtype=torch.int32)))
    records.append(("case", torch.tensor([obj_id, pool_id, int(mlp), B, int(hard_neg), int(use_mlm), STEPS,
                                          OPT["warmup"]], dtype=torch.int32)))
    records.append(("hparams", torch.tensor([c.layer_norm_eps, TEMP, hnw, mlm_weight, OPT["lr"], OPT["weight_decay"],
                                             OPT["clip"], OPT["eps"]])))
    records.append(("ids", ids.int()))
    records.append(("types", types.int()))
    records.append(("lens", torch.tensor(lens, dtype=torch.int32)))
    if use_mlm:
        records.append(("mlm_ids", mids.int()))
        records.append(("mlm_rows", rows.int()))
        records.append(("mlm_labels", labels.int()))
    write(os.path.join(out_dir, name + ".bin"), records)


def write(path, records):
    with open(path + ".tmp", "wb") as f:
        f.write(b"STGOLD1\0")
        f.write(struct.pack("<I", len(records)))
        for name, t in records:
            t = t.contiguous()
            nb = name.encode()
            is_int = t.dtype in (torch.int32, torch.int64)
            f.write(struct.pack("<H", len(nb)) + nb)
            f.write(struct.pack("<BB", 1 if is_int else 0, t.dim()))
            f.write(struct.pack("<%dI" % t.dim(), *t.shape))
            arr = t.to(torch.int32) if is_int else t.to(torch.float32)
            f.write(arr.numpy().astype("<i4" if is_int else "<f4").tobytes())
    os.replace(path + ".tmp", path)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    run_case("unsup_cls", out, "unsup", "cls", True, False, 0.0, 0.0, seed=1)
    run_case("unsup_cbp", out, "unsup", "cls_before_pooler", False, False, 0.0, 0.0, seed=2)
    run_case("unsup_mean", out, "unsup", "mean", False, False, 0.0, 0.0, seed=3)
    run_case("sup_hn", out, "sup", "cls", True, True, 0.5, 0.1, seed=4)
    run_case("mlm", out, "mlm", "cls", False, False, 0.0, 0.0, seed=5)


if __name__ == "__main__":
    main()
