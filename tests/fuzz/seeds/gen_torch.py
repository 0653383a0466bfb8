#!/usr/bin/env python3
"""Candidate seeds for fuzz_torch: every input of the pickle corpus (tests/fuzz/corpus/pickle/)
wrapped as the data.pkl of a torch.save zip (archive/data.pkl, stored, plus one small storage
archive/data/0), so the torch target starts from the opcode variety the pickle campaign found.
The candidates are not committed as they are: libFuzzer keeps those that add coverage,

    /usr/bin/python3 tests/fuzz/seeds/gen_torch.py /tmp/torch-candidates
    build-fuzz/tests/fuzz/fuzz_torch -merge=1 tests/fuzz/corpus/torch /tmp/torch-candidates

Standard library only; deterministic (fixed zip timestamps).
"""
import os
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def wrap(pkl):
    import io
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        for name, data in (("archive/data.pkl", pkl), ("archive/data/0", b"\0" * 64), ("archive/version", b"3\n")):
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(zi, data)
    return b.getvalue()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "torch-candidates"
    src = os.path.join(HERE, "..", "corpus", "pickle")
    os.makedirs(out, exist_ok=True)
    names = sorted(os.listdir(src))
    for n in names:
        with open(os.path.join(src, n), "rb") as f:
            data = f.read()
        with open(os.path.join(out, "pkl-" + n), "wb") as f:
            f.write(wrap(data))
    print("gen_torch: %d candidates in %s" % (len(names), out))


if __name__ == "__main__":
    main()
