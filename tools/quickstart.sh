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
  # Until the default model ships: convert the small random-weight test fixture, so the whole
  # path (convert -> .semb -> embed) runs. Its similarities are meaningless (random weights).
  echo "quickstart: no default model in this checkout yet; using the random-weight bert-tiny test fixture" >&2
  MODEL=build/bert-tiny-fixture.semb
  "$S" convert tests/fixtures/bert-tiny -o "$MODEL"
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
