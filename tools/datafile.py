"""Where a data file is: the first that exists of $SEMBED_DATA_DIR/PATH, data/PATH in this
repository, ../shared/data/PATH beside it (data/README.md). The same rule as tools/datafile.sh
and tests/testutil.h's tu_data_file.

    sys.path.insert(0, os.path.join(ROOT, "tools")); from datafile import data_file
    vocab = data_file("vocab/bert-base-uncased/vocab.txt")          # raises DataFileMissing
    sts = data_file("sts/STSBenchmark/sts-dev.csv", required=False)  # None when missing
    /usr/bin/python3 tools/datafile.py vocab/bert-base-uncased/vocab.txt   # prints it, or exit 1
"""
import os
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


class DataFileMissing(FileNotFoundError):
    pass


def data_dirs():
    """The folders searched, in order."""
    dirs = []
    env = os.environ.get("SEMBED_DATA_DIR")
    if env:
        dirs.append(env)
    dirs.append(os.path.join(ROOT, "data"))
    dirs.append(os.path.normpath(os.path.join(ROOT, "..", "shared", "data")))
    return dirs


def data_file(rel, required=True):
    """Path of data file `rel`; None (required=False) or DataFileMissing when it is nowhere."""
    tried = []
    for d in data_dirs():
        p = os.path.join(d, rel)
        if os.path.isfile(p):
            return p
        tried.append(p)
    if not required:
        return None
    raise DataFileMissing(f"{rel} not found; looked at: {', '.join(tried)} (data/README.md says what lives where)")


def main(argv):
    if len(argv) != 2 or not argv[1] or argv[1].startswith("-"):
        print("usage: tools/datafile.py PATH   (relative to a data folder, e.g. vocab/bert-base-uncased/vocab.txt)",
              file=sys.stderr)
        return 2
    try:
        print(data_file(argv[1]))
    except DataFileMissing as e:
        print(f"datafile: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
