"""Golden states for the data-parallel gradient test (tests/mpi/test_mpi_grad.c).

Reuses models/gen/train_golden.py (PyTorch float64 autograd of the same small BERT and batch of
4 rows) for the contrastive cases: unsup (cls + MLP, mean) and sup with hard negatives (weight 0.5);
and models/gen/distill_golden.py's distillation cases with a global batch of 8 anchors (a multiple
of 2 and 4 ranks): MSE through a projection, relational alone (cls + MLP), and MSE + relational +
InfoNCE + auxiliary MLM (the masks given, rows split by sequence across ranks).

Usage: /usr/bin/python3 tests/mpi/mpi_golden.py OUT_DIR
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "gen"))
import torch  # noqa: E402
import train_golden as tg  # noqa: E402
import distill_golden as dg  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.set_num_threads(1)
tg.run_case("unsup_cls", out, "unsup", "cls", True, False, 0.0, 0.0, seed=1)
tg.run_case("unsup_mean", out, "unsup", "mean", False, False, 0.0, 0.0, seed=3)
tg.run_case("sup_hn_nomlm", out, "sup", "cls", True, True, 0.5, 0.0, seed=4)
LENS8 = [8, 5, 3, 6, 7, 4, 8, 2]
dg.run_case("dist_mse_mean", out, "mean", False, 1.0, 0.0, 0.0, 0.0, seed=21, lens=LENS8)
dg.run_case("dist_rel_cls", out, "cls", True, 0.0, 1.0, 0.0, 0.0, seed=22, lens=LENS8)
dg.run_case("dist_combo", out, "mean", False, 1.0, 0.5, 0.3, 0.1, seed=23, lens=LENS8)
dg.run_case("dist_sim_mean", out, "mean", False, 0.0, 0.5, 0.0, 0.0, seed=24, lens=LENS8, sim_w=2.0)
