// Save the graph ONNX Runtime builds after its graph optimizations (fused operators such as
// EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu/FastGelu) to a file, and
// report which fused operators appear.
//
//   NODE_PATH=tools/node/node_modules node models/gen/ort_optimize.js IN.onnx OUT.onnx [extended|all]
//
// Prints one JSON line on stdout: {"level":..., "ops":{"OpType":count,...}, "fused":[...]}.
// The session option optimizedModelFilePath makes ORT serialize the optimized graph; 'extended'
// applies the transformer fusions without hardware-specific layout changes ('all' adds those).
'use strict';
const path = require('path');
const fs = require('fs');

function loadOrt() {
  try { return require('onnxruntime-node'); } catch (e) {
    return require(path.join(__dirname, '../../tools/node/node_modules/onnxruntime-node'));
  }
}

// Minimal protobuf walk of the saved model: ModelProto.graph (7) -> GraphProto.node (1) ->
// NodeProto.op_type (4) / domain (7). Enough to count operator types without another package.
function readVarint(buf, pos) {
  let v = 0n, shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    v |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) return [v, pos];
    shift += 7n;
  }
}

function fields(buf, cb) {
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Number(key >> 3n), wt = Number(key & 7n);
    if (wt === 0) { [, pos] = readVarint(buf, pos); }
    else if (wt === 1) pos += 8;
    else if (wt === 5) pos += 4;
    else if (wt === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      const n = Number(len);
      cb(field, buf.subarray(pos, pos + n));
      pos += n;
    } else throw new Error('unsupported wire type ' + wt);
  }
}

function opCounts(file) {
  const ops = {};
  fields(fs.readFileSync(file), (f, graph) => {
    if (f !== 7) return;
    fields(graph, (g, node) => {
      if (g !== 1) return;
      let op = '', domain = '';
      fields(node, (n, v) => {
        if (n === 4) op = v.toString('utf8');
        if (n === 7) domain = v.toString('utf8');
      });
      const k = domain && domain !== 'ai.onnx' ? `${domain}.${op}` : op;
      ops[k] = (ops[k] || 0) + 1;
    });
  });
  return ops;
}

async function main() {
  const [input, output, level = 'extended'] = process.argv.slice(2);
  if (!input || !output) {
    console.error('usage: node ort_optimize.js IN.onnx OUT.onnx [basic|extended|all]');
    process.exit(2);
  }
  const ort = loadOrt();
  const session = await ort.InferenceSession.create(input, {
    graphOptimizationLevel: level,
    optimizedModelFilePath: path.resolve(output),
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
  });
  if (session.release) await session.release();
  const ops = opCounts(output);
  const fusedNames = ['EmbedLayerNormalization', 'Attention', 'MultiHeadAttention', 'SkipLayerNormalization',
    'LayerNormalization', 'SimplifiedLayerNormalization', 'BiasGelu', 'FastGelu', 'Gelu', 'FusedMatMul',
    'MatMulIntegerToFloat', 'DynamicQuantizeMatMul', 'QAttention', 'Gemm'];
  const fused = Object.keys(ops).filter((k) => fusedNames.includes(k.split('.').pop()));
  console.log(JSON.stringify({ level, ops, fused }));
}

main().catch((e) => { console.error('ort_optimize: ' + (e && e.message ? e.message : e)); process.exit(1); });
