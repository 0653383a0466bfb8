#!/bin/sh
# Regenerates the committed HF outputs tests/tokenizer/hf/*.golden from the tokenizer.json files
# and golden.txt / golden_pairs.txt (run after make_hf_json.js or a change to the inputs).
set -e
here=$(cd "$(dirname "$0")" && pwd)
for j in "$here"/hf/*.json; do
  n=$(basename "$j" .json)
  node "$here/hf_json_oracle.js" --tokenizer "$j" --input "$here/hf/golden.txt" --output "$here/hf/$n.golden"
  node "$here/hf_json_oracle.js" --tokenizer "$j" --input "$here/hf/golden_pairs.txt" --output "$here/hf/$n.pairs24.golden" \
    --pairs --max-length 24
done
