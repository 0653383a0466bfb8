#!/usr/bin/env python3
"""Seeds for fuzz_npy (tests/fuzz/corpus/npy/seed-*): .npy files (NumPy's format: magic \\x93NUMPY,
version, little-endian header length, a Python-literal dict with descr, fortran_order, shape, then
the data), with one defect each in the version, header length, dict syntax, keys, dtype, shape or
data length. Standard library only; deterministic.
Usage: /usr/bin/python3 tests/fuzz/seeds/gen_npy.py [OUT_DIR]   (default tests/fuzz/corpus/npy)
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import seedlib  # noqa: E402


def npy(header, data=b"", major=1, minor=0, hlen=None):
    h = header.encode() if isinstance(header, str) else header
    pre = 10 if major == 1 else 12
    pad = (-(pre + len(h) + 1)) % 64
    h = h + b" " * pad + b"\n"
    n = len(h) if hlen is None else hlen
    size = struct.pack("<H", n) if major == 1 else struct.pack("<I", n)
    return b"\x93NUMPY" + bytes([major, minor]) + size + h + data


F = struct.pack("<6f", *range(6))


def seeds():
    good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    s = {
        "good": npy(good, F),
        "version-4": npy(good, F, major=4),
        "version-1.1": npy(good, F, minor=1),
        "header-long": npy(good, F, hlen=60000),
        "header-huge-v2": npy(good, F, major=2, hlen=1 << 30),
        "header-cut": npy(good, F)[:40],
        "fortran-yes": npy("{'descr': '<f4', 'fortran_order': Yes, 'shape': (2, 3), }", F),
        "extra-key": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", F),
        "no-close": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3) ", F),
        "no-shape": npy("{'descr': '<f4', 'fortran_order': False}", F),
        "no-descr": npy("{'fortran_order': False, 'shape': (2, 3)}", F),
        "no-fortran": npy("{'descr': '<f4', 'shape': (2, 3)}", F),
        "dtype-unknown": npy("{'descr': '<x4', 'fortran_order': False, 'shape': (2, 3), }", F),
        "dtype-object": npy("{'descr': '|O', 'fortran_order': False, 'shape': (2, 3), }", F),
        "dtype-size": npy("{'descr': '<f9', 'fortran_order': False, 'shape': (2, 3), }", F),
        "shape-sep": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2; 3), }", F),
        "shape-overflow": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16), }", F),
        "data-short": npy(good, F[:-4]),
        "data-long": npy(good, F + b"\0\0\0\0"),
        "three-d": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", F),
        "one-d": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", F),
        "big-endian": npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", F),
    }
    return s


def main():
    seedlib.write_seeds("npy", seeds())


if __name__ == "__main__":
    main()
