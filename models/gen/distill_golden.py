"""Golden states for sembed's distillation losses (tests/test_train_distill.c).

Same small random BERT, batch layout, float64 autograd, AdamW schedule and file format as
train_golden.py (imported from there). The student's pooled vectors z (rows [0, B) of the batch)
are compared with teacher rows t [B, D]:
  MSE         mean over B x D of (z W^T + b - t)^2; W, b = pooling.dense.0 (the projection),
              as sentence-transformers' MSELoss on a model ending in a Dense module
  relational  (1/B) sum_i KL(softmax_{j != i}(cos(t_i, t_j)/tau) || softmax_{j != i}(cos(z_i, z_j)/tau)),
              tau = 0.05, the diagonal excluded (F.kl_div(..., reduction="batchmean"))
Cases:
  distill_mse_mean   MSE through a 32 -> 24 projection, mean pooling
  distill_rel_cls    relational alone (no projection), cls + MLP
  distill_combo      MSE (weight 1) + relational (0.5) + InfoNCE on dropout-free unsup views (0.3)
                     + MLM (0.1), mean pooling
  distill_sim_mean   similarity MSE (weight 2): mean over ordered pairs i != j of
                     (cos(z_i, z_j) - cos(t_i, t_j))^2, + relational (0.5), mean pooling

Usage: /usr/bin/python3 models/gen/distill_golden.py OUT_DIR   (writes OUT_DIR/<case>.bin)
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_golden as tg  # noqa: E402
import twin  # noqa: E402

B = 5
D = 24
REL_TEMP = 0.05


def rel_loss(z, t, temp):
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    cs = F.cosine_similarity(z[:, None, :], z[None, :, :], dim=-1) / temp
    ct = F.cosine_similarity(t[:, None, :], t[None, :, :], dim=-1) / temp
    cs = cs.masked_fill(eye, float("-inf"))
    ct = ct.masked_fill(eye, float("-inf"))
    ls = F.log_softmax(cs, dim=-1)
    pt = F.softmax(ct, dim=-1)
    # the diagonal holds pt = 0 and ls = -inf: leave it out of the sum
    ls = ls.masked_fill(eye, 0.0)
    lt = torch.log(pt.masked_fill(eye, 1.0))
    return (pt * (lt - ls)).sum() / n


def sim_loss(z, t):
    n = z.shape[0]
    off = ~torch.eye(n, dtype=torch.bool)
    cs = F.cosine_similarity(z[:, None, :], z[None, :, :], dim=-1)
    ct = F.cosine_similarity(t[:, None, :], t[None, :, :], dim=-1)
    return ((cs - ct)[off] ** 2).mean()


def run_case(name, out_dir, pool, mlp, mse_w, rel_w, cl_w, mlm_w, seed, lens=None, sim_w=0.0):
    # lens: the anchors' token counts (default: the 5 of the unit-test cases; B = len(lens))
    lens = list(lens or [8, 5, 3, 6, 7])
    B = len(lens)
    gen = torch.Generator().manual_seed(seed)
    model = twin.random_model(tg.CFG, vocab_size=tg.VOCAB, seed=seed, with_pooler=True, std=0.1)
    c = model.config
    H = c.hidden_size
    proj = nn.Linear(H, D) if mse_w > 0 else None
    head = tg.MLMHead(c) if mlm_w > 0 else None
    torch.manual_seed(seed + 7)
    with torch.no_grad():
        if proj is not None:
            proj.weight.normal_(0, 0.2)
            proj.bias.normal_(0, 0.05)
        if head is not None:
            head.dense.weight.normal_(0, 0.05)
            head.dense.bias.normal_(0, 0.02)
            head.LayerNorm.weight.copy_(1 + 0.1 * torch.randn(H))
            head.LayerNorm.bias.normal_(0, 0.02)
            head.bias.normal_(0, 0.02)
    teacher = torch.randn(B, D, generator=gen)
    teacher = teacher / teacher.norm(dim=1, keepdim=True)  # like USE: unit rows
    model.double()
    for mod in (proj, head):
        if mod is not None:
            mod.double()
    teacher = teacher.double()
    model.train()

    base_ids, _, _ = tg.make_batch(gen, B, lens)
    if cl_w > 0:
        ids = torch.cat([base_ids, base_ids], 0)
        lens = lens * 2
    else:
        ids = base_ids
    mask = (torch.arange(tg.T)[None, :] < torch.tensor(lens)[:, None]).long()
    types = torch.zeros_like(ids)
    if head is not None:
        mids, rows, labels = tg.make_mlm(gen, ids, mask)

    def loss_fn():
        z = tg.pooled(model, ids, types, mask, pool, mlp)
        total = 0.0
        if cl_w > 0:
            total = total + cl_w * tg.infonce(z, B, False, tg.TEMP, 0.0)
        za = z[:B]
        if mse_w > 0:
            total = total + mse_w * F.mse_loss(proj(za), teacher)
        if rel_w > 0:
            total = total + rel_w * rel_loss(za, teacher, REL_TEMP)
        if sim_w > 0:
            total = total + sim_w * sim_loss(za, teacher)
        if head is not None:
            last, _, _ = model(mids, types, mask)
            logits = head(last.reshape(-1, H)[rows], model.embeddings.word_embeddings.weight)
            total = total + mlm_w * F.cross_entropy(logits, labels)
        return total

    params = tg.named_params(model, head)
    if proj is not None:
        params["pooling.dense.0.weight"] = proj.weight
        params["pooling.dense.0.bias"] = proj.bias
    records = [("param." + n, p.detach().float()) for n, p in params.items()]
    loss = loss_fn()
    loss.backward()
    for n, p in params.items():
        if p.grad is not None:
            records.append(("grad." + n, p.grad.detach().float()))
    records.append(("loss", torch.tensor([float(loss)])))

    for p in params.values():
        p.grad = None
    decay = [p for n, p in params.items() if not (n.endswith("bias") or "LayerNorm.weight" in n)]
    no_decay = [p for n, p in params.items() if n.endswith("bias") or "LayerNorm.weight" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": tg.OPT["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=tg.OPT["lr"], betas=tg.OPT["betas"], eps=tg.OPT["eps"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: tg.lr_lambda(s, tg.OPT["warmup"], tg.STEPS))
    losses = []
    for _ in range(tg.STEPS):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in params.values() if p.grad is not None], tg.OPT["clip"])
        opt.step()
        sched.step()
        losses.append(float(loss))
    records.append(("losses", torch.tensor(losses)))

    pool_id = {"cls": 0, "cls_before_pooler": 1, "mean": 2}[pool]
    records.append(("config", torch.tensor([tg.VOCAB, H, c.num_layers, c.num_heads, c.intermediate_size,
                                            c.max_position_embeddings, c.type_vocab_size], dtype=torch.int32)))
    records.append(("dcase", torch.tensor([pool_id, int(mlp), B, D if proj is not None else 0, int(cl_w > 0),
                                           int(head is not None), tg.STEPS, tg.OPT["warmup"]], dtype=torch.int32)))
    records.append(("hparams", torch.tensor([c.layer_norm_eps, tg.TEMP, mse_w, rel_w, REL_TEMP, cl_w, mlm_w,
                                             tg.OPT["lr"], tg.OPT["weight_decay"], tg.OPT["clip"], tg.OPT["eps"], sim_w])))
    records.append(("teacher", teacher.float()))
    records.append(("ids", ids.int()))
    records.append(("types", types.int()))
    records.append(("lens", torch.tensor(lens, dtype=torch.int32)))
    if head is not None:
        records.append(("mlm_ids", mids.int()))
        records.append(("mlm_rows", rows.int()))
        records.append(("mlm_labels", labels.int()))
    tg.write(os.path.join(out_dir, name + ".bin"), records)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    run_case("distill_mse_mean", out, "mean", False, 1.0, 0.0, 0.0, 0.0, seed=11)
    run_case("distill_rel_cls", out, "cls", True, 0.0, 1.0, 0.0, 0.0, seed=12)
    run_case("distill_combo", out, "mean", False, 1.0, 0.5, 0.3, 0.1, seed=13)
    run_case("distill_sim_mean", out, "mean", False, 0.0, 0.5, 0.0, 0.0, seed=14, sim_w=2.0)


if __name__ == "__main__":
    main()
