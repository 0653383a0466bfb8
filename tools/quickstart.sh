#!/usr/bin/env bash
# Install what is missing, build build/sembed, and run the main job: embed a few sentences with
# the shipped default model, print their similarity matrix, and evaluate on STS-B dev.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --runtime-only
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSEMBED_BUILD_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target sembed_cli
S=build/sembed
"$S" --version

MODEL=""
for m in models/sembed-mini/sembed-mini.semb models/sembed-mini/sembed-mini-q8.semb; do
  [ -f "$m" ] && MODEL=$m && break
done
if [ -z "$MODEL" ]; then
  echo "quickstart: the default model (models/sembed-mini) is not in this checkout yet;" >&2
  echo "quickstart: showing a model file from the test fixtures instead." >&2
  for f in tests/fixtures/tiny/*.semb tests/fuzz/corpus/semb/small.semb; do
    [ -f "$f" ] && { "$S" inspect --verify "$f"; exit 0; }
  done
  exit 1
fi
"$S" inspect "$MODEL" | head -40
echo
"$S" similarity -m "$MODEL" \
  "A man is playing a guitar." "A person plays an acoustic guitar." \
  "A woman is slicing an onion." "Someone is cutting vegetables." \
  "The stock market fell sharply today."
echo
STS=../shared/data/sts/STSBenchmark/sts-dev.csv
if [ -f "$STS" ]; then "$S" eval -m "$MODEL" --sts "$STS"; fi
