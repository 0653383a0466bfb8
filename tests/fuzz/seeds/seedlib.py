"""Shared by the seed generators: write a {name: bytes} dict as tests/fuzz/corpus/TARGET/seed-NAME
(or into the folder given as the first argument)."""
import os
import sys


def write_seeds(target, seeds, argv=None):
    argv = sys.argv if argv is None else argv
    d = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, b in seeds.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(b)
    print("gen_%s: %d seeds in %s" % (target, len(seeds), d))
