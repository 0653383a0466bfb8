#!/usr/bin/env bash
# Install what is missing, build build/sembed, and run the main job: embed a few sentences with
# the shipped default model, print their similarity matrix, and evaluate on STS-B dev.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --runtime-only
# Release, no sanitizers, whatever an earlier configure of build/ cached.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSEMBED_BUILD_TESTS=OFF \
  -DSEMBED_SANITIZE_ADDRESS=OFF -DSEMBED_SANITIZE_UNDEFINED=OFF >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target sembed_cli
S=build/sembed
"$S" --version

# The default model: trained by sembed itself (models/sembed-mini/recipe.sh: from scratch, then
# distilled from Universal Sentence Encoder lite), int8.
MODEL=models/sembed-mini/sembed-mini.semb
[ -f "$MODEL" ] || { echo "quickstart: $MODEL is missing from this checkout (models/sembed-mini/recipe.sh rebuilds it)" >&2; exit 1; }
# What the file says about itself (`sembed inspect FILE` prints every key and tensor).
"$S" inspect "$MODEL" | grep -E '^(file|format):|general\.(name|file_type)|bert\.(hidden_size|num_layers)|pooling\.mode|quant\.calib|eval\.|train\.stages'
echo
# Each sentence, then a paraphrase that shares no content word with it, then a sentence on the
# first one's template that means something else: the paraphrase should score higher.
"$S" similarity -m "$MODEL" \
  "The stock market fell sharply today." "Share prices dropped steeply." "The snow fell heavily today." \
  "A man is playing the guitar." "Somebody strums an instrument." "A man is eating a sandwich." \
  "A dog is running through the grass." "A puppy sprints across a lawn." "A dog is sitting in the car."
echo
# STS-B dev ships in data/ (data/README.md); tools/datafile.sh says where it looked if it is gone.
STS=$(tools/datafile.sh sts/STSBenchmark/sts-dev.csv) || { echo "quickstart: no STS-B dev to evaluate on" >&2; exit 1; }
"$S" eval -m "$MODEL" --sts "$STS"
