// ONNX Runtime side of tools/bench/int8_accuracy.py: embed given token ids with one BERT graph and
// write the pooled sentence embeddings as raw little-endian float32, n x dim.
//
//   NODE_PATH=tools/node/node_modules node tools/bench/int8_accuracy_ort.js \
//       MODEL.onnx IDS.txt POOLING OUT.f32 [THREADS]
//
// IDS.txt: one input per line, its token ids space-separated, [CLS]/[SEP] included (the output of
// `sembed tokenize --ids`). Token types 0, attention mask all ones.
// POOLING: mean | cls (the graph's pooler_output) | cls_before_pooler | max, as sembed's poolers
// (models/gen/twin.py pool()).
// Every input runs alone (batch 1, no padding): DynamicQuantizeLinear takes one scale for the whole
// activation tensor, i.e. for the whole batch, so one sentence per call is ORT int8's most
// favourable case and keeps each sentence's result independent of the others.
// Session: CPU EP, intraOpNumThreads THREADS (default 1), sequential, graphOptimizationLevel 'all',
// no spinning (the machine may be busy; timing is not measured here).
'use strict';
const fs = require('fs');
const path = require('path');

function loadOrt() {
  try { return require('onnxruntime-node'); } catch (e) {
    return require(path.join(__dirname, '../node/node_modules/onnxruntime-node'));
  }
}

function pool(mode, out, T) {
  if (mode === 'cls') {
    if (!out.pooler_output) throw new Error('pooling cls needs the graph output pooler_output (model without pooler?)');
    return Float32Array.from(out.pooler_output.data);
  }
  const h = out.last_hidden_state;
  if (!h) throw new Error('graph has no output last_hidden_state');
  const H = h.dims[2], d = h.data;
  if (h.dims[0] !== 1 || h.dims[1] !== T) throw new Error(`unexpected last_hidden_state dims ${h.dims}`);
  const e = new Float64Array(H);
  if (mode === 'cls_before_pooler') {
    for (let c = 0; c < H; c++) e[c] = d[c];
  } else if (mode === 'mean') {
    for (let t = 0; t < T; t++) for (let c = 0; c < H; c++) e[c] += d[t * H + c];
    for (let c = 0; c < H; c++) e[c] /= T;
  } else if (mode === 'max') {
    e.fill(-Infinity);
    for (let t = 0; t < T; t++) for (let c = 0; c < H; c++) e[c] = Math.max(e[c], d[t * H + c]);
  } else {
    throw new Error(`pooling '${mode}' is not supported here (mean, cls, cls_before_pooler, max)`);
  }
  return Float32Array.from(e);
}

async function main() {
  const [model, idsPath, mode, outPath, threadsS = '1'] = process.argv.slice(2);
  if (!outPath) {
    console.error('usage: node int8_accuracy_ort.js MODEL.onnx IDS.txt POOLING OUT.f32 [THREADS]');
    process.exit(2);
  }
  const ort = loadOrt();
  const lines = fs.readFileSync(idsPath, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const opts = {
    executionProviders: ['cpu'], intraOpNumThreads: Number(threadsS), interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
  const session = await ort.InferenceSession.create(model, opts);
  const chunks = [];
  let dim = -1;
  for (const line of lines) {
    const ids = line.trim().split(/\s+/).map((s) => BigInt(s));
    const T = ids.length;
    const all = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids), [1, T]),
      token_type_ids: new ort.Tensor('int64', new BigInt64Array(T), [1, T]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(T).fill(1n), [1, T]),
    };
    const feeds = {};  // the exporter drops inputs the graph does not use (token types of type_vocab_size 0)
    for (const k of session.inputNames) {
      if (!all[k]) throw new Error(`graph input '${k}' is not one of input_ids, token_type_ids, attention_mask`);
      feeds[k] = all[k];
    }
    const e = pool(mode, await session.run(feeds), T);
    if (dim < 0) dim = e.length;
    for (const v of e) if (!Number.isFinite(v)) throw new Error(`non-finite embedding for input ${chunks.length}`);
    chunks.push(Buffer.from(e.buffer));
  }
  fs.writeFileSync(outPath, Buffer.concat(chunks));
  console.error(`int8_accuracy_ort: ${path.basename(model)}: ${lines.length} inputs, dim ${dim}, pooling ${mode}`);
}

main().catch((e) => { console.error('int8_accuracy_ort: ' + (e && e.message ? e.message : e)); process.exit(1); });
