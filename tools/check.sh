#!/usr/bin/env bash
# Build sembed with fatal warnings and ASan+UBSan, run the whole Criterion suite through ctest,
# then run every libFuzzer target over its seed corpus for a short while. Non-zero on any failure.
# Usage: tools/check.sh        (FUZZ_SECONDS=20 by default per target)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

cmake -S . -B build-check -DCMAKE_BUILD_TYPE=Debug -DSEMBED_FATAL_WARNINGS=ON \
  -DSEMBED_SANITIZE_ADDRESS=ON -DSEMBED_SANITIZE_UNDEFINED=ON >/dev/null
cmake --build build-check -j"$JOBS"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
(cd build-check && ctest --output-on-failure -j"$JOBS" --timeout 1800)

# Fuzzing: clang + libFuzzer, each target over a copy of its seed corpus.
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEMBED_BUILD_FUZZ=ON -DSEMBED_BUILD_TESTS=OFF \
  -DSEMBED_SANITIZE_ADDRESS=ON -DSEMBED_SANITIZE_UNDEFINED=ON >/dev/null
cmake --build build-fuzz -j"$JOBS" --target $(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//' | tr '\n' ' ')
fail=0
for src in tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c)
  corpus=build-fuzz/corpus-${name#fuzz_}
  rm -rf "$corpus" && mkdir -p "$corpus"
  if [ -d "tests/fuzz/corpus/${name#fuzz_}" ]; then cp -r "tests/fuzz/corpus/${name#fuzz_}/." "$corpus/"; fi
  echo "fuzz: $name for ${FUZZ_SECONDS}s"
  if ! "build-fuzz/tests/fuzz/$name" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="build-fuzz/crash-$name-" "$corpus" 2>"build-fuzz/$name.log"; then
    echo "fuzz: $name FAILED (see build-fuzz/$name.log)"; tail -40 "build-fuzz/$name.log"; fail=1
  else
    grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "build-fuzz/$name.log" | tail -1 || true
  fi
done
[ "$fail" = 0 ] || { echo "fuzzing found crashes"; exit 1; }

# Further suites (server, Python package, MPI, packaging, thread sanitizer): one script each in
# tools/check.d/, run in name order from the repository root; each exits non-zero on failure.
for step in tools/check.d/*.sh; do
  [ -e "$step" ] || continue
  echo "check: $step"
  bash "$step" || { echo "check: $step FAILED"; exit 1; }
done
echo "check: all tests and fuzz targets passed"
