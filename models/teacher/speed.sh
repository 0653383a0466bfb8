#!/usr/bin/env bash
# models/teacher/speed.sh MODEL.semb [N]: embedding throughput of the teacher (USE lite, TF.js
# WASM, one thread) and of a sembed student (1 thread, int8 for q8 files) on the same N real
# sentences (STS-B dev, sentence1 column), one after the other. Prints wall and CPU seconds and
# sentences/s for each, and the ratio. The teacher's time excludes its model load (embed.js
# reports it); the student's includes sembed's load (milliseconds). On a shared machine compare
# CPU seconds, not wall.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SEMBED="${SEMBED:-$ROOT/build/sembed}"
M="$1"; N="${2:-1000}"
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
if [ -n "${DATA:-}" ]; then STS="$DATA/sts/STSBenchmark/sts-dev.csv"; else STS=$("$ROOT/tools/datafile.sh" sts/STSBenchmark/sts-dev.csv) || exit 1; fi
awk -F'\t' -v n="$N" 'NR <= n { print $6 }' "$STS" > "$W/s.txt"
n=$(wc -l < "$W/s.txt")
/usr/bin/time -f "%e %U %S" -o "$W/tt" node "$HERE/embed.js" --input "$W/s.txt" --out-dir "$W/t" --threads 1 --chunk 100000 >/dev/null 2>"$W/tlog"
tps=$(/usr/bin/python3 -c "import json,glob; m=json.load(open(glob.glob('$W/t/*.json')[0])); print('%.1f %.2f' % (m['sentences_per_second'], m['seconds']))")
/usr/bin/time -f "%e %U %S" -o "$W/st" "$SEMBED" embed -m "$M" -t 1 -f f32 < "$W/s.txt" > "$W/s.f32"
read -r tw tu tsy < "$W/tt"; read -r sw su ssy < "$W/st"
read -r tsps tsec <<< "$tps"
/usr/bin/python3 - "$n" "$tw" "$tu" "$tsy" "$tsps" "$tsec" "$sw" "$su" "$ssy" <<'PY'
import sys
n = int(sys.argv[1]); tw, tu, ts, tsps, tsec, sw, su, ss = map(float, sys.argv[2:])
print("sentences: %d (STS-B dev sentence1)" % n)
print("teacher (USE lite, TF.js WASM, 1 thread): embedding %.2f s wall = %.1f sentences/s; process total %.2f s wall, %.2f CPU-s (model load included)" % (tsec, tsps, tw, tu + ts))
print("student (sembed, 1 thread):               %.2f s wall = %.1f sentences/s; %.2f CPU-s (load included)" % (sw, n / sw, su + ss))
print("ratio student/teacher: %.1fx by wall (embedding only for the teacher), %.1fx by process CPU-s" % ((n / sw) / tsps, (tu + ts) / max(su + ss, 1e-3)))
PY
