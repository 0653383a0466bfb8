#!/usr/bin/env bash
# Fuzzing campaign: run each libFuzzer target on all cores for N minutes from its committed corpus,
# then merge the result into a minimized corpus back in tests/fuzz/corpus/<name>/, so that CI's
# short run (tools/check.sh) starts from deep coverage. Crashing inputs become regression seeds
# tests/fuzz/corpus/<name>/regress-<kind>-<sha1>, which tests/test_fuzz_regress.c replays under the
# Criterion suite (ASan+UBSan in tools/check.sh).
#
# Usage: tools/fuzz.sh [--minutes N] [--jobs J] [--max-len BYTES] [--no-build] [TARGET...]
#   TARGET: onnx, pickle, ... or fuzz_onnx, ...; default every tests/fuzz/fuzz_*.c.
#   --minutes N   fuzzing time per target (default 30); --jobs J parallel workers (default nproc).
#   NICE=10 (default) runs the fuzzers at that nice level; FUZZ_BUILD=build-fuzz the build folder.
# Prints per target: executions, minutes, crashes, corpus files/bytes before and after, and keeps
# the logs in $FUZZ_BUILD/campaign/<name>/. Exit status 1 when any target found a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=30
JOBS=$(nproc 2>/dev/null || echo 2)
MAX_LEN=""
BUILD=1
TARGETS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --max-len) MAX_LEN=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) TARGETS+=("fuzz_${1#fuzz_}"); shift ;;
  esac
done
if [ ${#TARGETS[@]} -eq 0 ]; then
  for src in tests/fuzz/fuzz_*.c; do TARGETS+=("$(basename "$src" .c)"); done
fi
for t in "${TARGETS[@]}"; do
  [ -f "tests/fuzz/$t.c" ] || { echo "fuzz.sh: no target tests/fuzz/$t.c" >&2; exit 2; }
done
FB=${FUZZ_BUILD:-build-fuzz}
NICE=${NICE:-10}
SECS=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 }')

if [ "$BUILD" = 1 ]; then
  CC=clang cmake -S . -B "$FB" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEMBED_BUILD_FUZZ=ON -DSEMBED_BUILD_TESTS=OFF \
    -DSEMBED_SANITIZE_ADDRESS=ON -DSEMBED_SANITIZE_UNDEFINED=ON >/dev/null
  nice -n "$NICE" cmake --build "$FB" -j"$JOBS" --target "${TARGETS[@]}"
fi

# files and bytes of a folder, as "N files, B bytes"
size_of() { local n b
  n=$(find "$1" -type f | wc -l); b=$(find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  echo "$n files, $b bytes"; }

found=0
summary=()
for t in "${TARGETS[@]}"; do
  name=${t#fuzz_}
  bin="$FB/tests/fuzz/$t"
  dir="$FB/campaign/$name"
  seeds="tests/fuzz/corpus/$name"
  rm -rf "$dir" && mkdir -p "$dir/corpus" "$dir/crashes" "$dir/min" "$seeds"
  cp -r "$seeds/." "$dir/corpus/"
  before=$(size_of "$seeds")
  echo "fuzz: $t for $MINUTES min on $JOBS workers (nice $NICE), corpus $before"
  # -fork: workers restart after a crash (-ignore_crashes) so one finding does not end the
  # campaign; every crashing input lands in crashes/.
  args=(-fork="$JOBS" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -max_total_time="$SECS"
        -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$dir/crashes/" -print_final_stats=1)
  [ -n "$MAX_LEN" ] && args+=(-max_len="$MAX_LEN")
  t0=$(date +%s)
  nice -n "$NICE" "$bin" "${args[@]}" "$dir/corpus" >"$dir/fuzz.log" 2>&1 || true
  t1=$(date +%s)
  # fork mode's status lines: "#<execs>: cov: .. ft: .. corp: .. exec/s: .. oom/timeout/crash: a/b/c time: .."
  execs=$(grep -E '^#[0-9]+: cov:' "$dir/fuzz.log" | tail -1 | sed -E 's/^#([0-9]+):.*/\1/')
  cov=$(grep -E '^#[0-9]+: cov:' "$dir/fuzz.log" | tail -1 | sed -E 's/.* cov: ([0-9]+) ft: ([0-9]+).*/cov \1 ft \2/')
  raw=$(size_of "$dir/corpus")

  # Minimize: the hand-written seeds and regression seeds are the initial corpus (always kept);
  # campaign inputs are added only where they reach new coverage features.
  find "$seeds" -maxdepth 1 -type f -regextype posix-extended ! -regex '.*/[0-9a-f]{40}' -exec cp {} "$dir/min/" \;
  nice -n "$NICE" "$bin" -merge=1 -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$dir/crashes/" ${MAX_LEN:+-max_len=$MAX_LEN} \
    "$dir/min" "$dir/corpus" >"$dir/merge.log" 2>&1 || { echo "fuzz: $t merge failed (see $dir/merge.log)"; tail -20 "$dir/merge.log"; found=1; continue; }
  rm -rf "$seeds" && mkdir -p "$seeds" && cp "$dir/min/." -r "$seeds/"

  ncrash=0
  for c in "$dir"/crashes/*; do
    [ -f "$c" ] || continue
    kind=$(basename "$c" | sed -E 's/-.*//')
    sha=$(sha1sum "$c" | cut -c1-16)
    cp "$c" "$seeds/regress-$kind-$sha"
    echo "fuzz: $t: $kind input saved as $seeds/regress-$kind-$sha (replayed by test_fuzz_regress)"
    ncrash=$((ncrash + 1))
  done
  [ "$ncrash" = 0 ] || found=1
  after=$(size_of "$seeds")
  line="$t: ${execs:-?} executions in $(( (t1 - t0 + 30) / 60 )) min ($((t1 - t0)) s, $JOBS workers), $cov, findings $ncrash; corpus before $before, campaign $raw, minimized $after"
  echo "fuzz: $line"
  summary+=("$line")
done
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
exit "$found"
