#!/bin/sh
# Every ONNX variant of one random BERT twin, for tests/test_onnx.c and tests/fixtures/onnx/:
#   model.onnx (torch.onnx.export) + model.safetensors/config.json/vocab.txt (the oracle), and
#   as listed in $ONNX_VARIANTS (default "fused int8 ort"):
#   fused   fused.onnx: ORT contrib operators (models/gen/ort_fuse.py)
#   int8    int8.onnx + int8.expect.safetensors: symmetric int8 per tensor (quantize_dynamic.py)
#   int8pc  int8pc.onnx + int8pc.expect.safetensors: per-channel uint8 with zero point 128
#   u8asym  u8asym.onnx: asymmetric uint8 per tensor (zero point != 128: not exactly int8)
#   ort     ort.onnx: ONNX Runtime's own optimized graph (needs node + tools/node/node_modules)
#   tanh    tanh/{model,fused}.onnx: the same shape with the tanh GELU (FastGelu when fused)
#
#   sh models/gen/onnx_fixtures.sh OUT SHAPE VOCAB_SIZE [extra make_onnx.py args]
# VOCAB_SIZE 0 = the full bert-base-uncased vocabulary. Needs /usr/bin/python3 with torch and onnx.
# The committed fixture: ONNX_VARIANTS="fused int8 ort" sh models/gen/onnx_fixtures.sh \
#     tests/fixtures/onnx/micro micro 1000 --max-pos 64
set -eu
out=$1; shape=$2; vocab=$3; shift 3
variants=${ONNX_VARIANTS:-fused int8 ort}
here=$(cd "$(dirname "$0")" && pwd)
py=${SEMBED_PYTHON:-/usr/bin/python3}
has() { case " $variants " in *" $1 "*) return 0;; esac; return 1; }

"$py" "$here/make_onnx.py" --shape "$shape" --vocab-size "$vocab" --out "$out" "$@" 2>/dev/null
if has fused; then
    "$py" "$here/ort_fuse.py" "$out/model.safetensors" "$out/config.json" "$out/fused.onnx"
fi
if has int8; then
    "$py" "$here/quantize_dynamic.py" "$out/model.onnx" "$out/int8.onnx" \
        --oracle "$out/model.safetensors" --expect "$out/int8.expect.safetensors" 2>/dev/null
fi
if has int8pc; then
    "$py" "$here/quantize_dynamic.py" "$out/model.onnx" "$out/int8pc.onnx" --per-channel --weight-type uint8 \
        --symmetric --oracle "$out/model.safetensors" --expect "$out/int8pc.expect.safetensors" 2>/dev/null
fi
if has u8asym; then
    "$py" "$here/quantize_dynamic.py" "$out/model.onnx" "$out/u8asym.onnx" --weight-type uint8 2>/dev/null
fi
if has tanh; then
    "$py" "$here/make_onnx.py" --shape "$shape" --vocab-size "$vocab" --out "$out/tanh" --act gelu_tanh "$@" 2>/dev/null
    "$py" "$here/ort_fuse.py" "$out/tanh/model.safetensors" "$out/tanh/config.json" "$out/tanh/fused.onnx"
fi
nm="$here/../../tools/node/node_modules"
if has ort && command -v node >/dev/null 2>&1 && [ -d "$nm/onnxruntime-node" ]; then
    NODE_PATH="$nm" node "$here/ort_optimize.js" "$out/model.onnx" "$out/ort.onnx" extended >"$out/ort_ops.json" 2>/dev/null
fi
