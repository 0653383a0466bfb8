"""Golden data for tests/test_metrics.c: singular values and symmetric eigenvalues from numpy.

usage: /usr/bin/python3 tests/gen_spectrum.py OUTDIR

Writes, for each case NAME:
  NAME.f32        the matrix, float32 little-endian, row-major
  NAME.txt        "rows cols" on the first line, then one expected value per line (%.17g)
Cases:
  tall            60 x 24 random matrix with a shared offset (anisotropic, like raw embeddings):
                  numpy.linalg.svd singular values
  tall_centered   the same matrix with column means removed first
  wide            10 x 32 (n < d: the Gram is taken the other way round)
  sym             40 x 40 symmetric matrix: numpy.linalg.eigvalsh, sorted descending
The expected values are computed in float64 from the float32 matrix the C side reads.
"""
import os
import sys

import numpy as np


def write(outdir, name, a, values):
    a = np.ascontiguousarray(a, dtype="<f4")
    a.tofile(os.path.join(outdir, name + ".f32"))
    with open(os.path.join(outdir, name + ".txt"), "w") as f:
        f.write("%d %d\n" % a.shape)
        for v in values:
            f.write("%.17g\n" % v)


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(20240607)

    tall = (rng.standard_normal((60, 24)) + 3.0 * rng.standard_normal(24)).astype(np.float32)
    t64 = tall.astype(np.float64)
    write(outdir, "tall", tall, np.linalg.svd(t64, compute_uv=False))
    write(outdir, "tall_centered", tall, np.linalg.svd(t64 - t64.mean(axis=0), compute_uv=False))

    wide = rng.standard_normal((10, 32)).astype(np.float32)
    write(outdir, "wide", wide, np.linalg.svd(wide.astype(np.float64), compute_uv=False))

    b = rng.standard_normal((40, 40))
    sym = ((b + b.T) / 2).astype(np.float32)
    w = np.linalg.eigvalsh(sym.astype(np.float64))[::-1]
    write(outdir, "sym", sym, w)


if __name__ == "__main__":
    main()
