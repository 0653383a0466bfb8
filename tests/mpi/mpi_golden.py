"""Golden states for the data-parallel gradient test (tests/mpi/test_mpi_grad.c).

Reuses models/gen/train_golden.py (PyTorch float64 autograd of the same small BERT and batch of
4 rows) for the contrastive cases the MPI trainer supports: unsup (cls + MLP, mean) and sup with
hard negatives (weight 0.5) without the auxiliary MLM loss.

Usage: /usr/bin/python3 tests/mpi/mpi_golden.py OUT_DIR
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "gen"))
import torch  # noqa: E402
import train_golden as tg  # noqa: E402

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.set_num_threads(1)
tg.run_case("unsup_cls", out, "unsup", "cls", True, False, 0.0, 0.0, seed=1)
tg.run_case("unsup_mean", out, "unsup", "mean", False, False, 0.0, 0.0, seed=3)
tg.run_case("sup_hn_nomlm", out, "sup", "cls", True, True, 0.5, 0.0, seed=4)
