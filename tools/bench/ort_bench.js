// ONNX Runtime peer for tools/bench/run.py: onnxruntime-node (tools/node/node_modules) running an
// fp32 ONNX graph (models/gen/make_onnx.py) or its dynamically int8-quantized twin
// (models/gen/quantize_dynamic.py), timed on batches of B inputs of exactly T tokens.
//
// One configuration per process (peak RSS is this configuration's). Prints one JSON object on
// stdout (fields: tools/bench/README.md); exit 1 with {"ok": false, "stage", "error"} on failure.
//
//   node tools/bench/ort_bench.js MODEL.onnx VOCAB.txt --batch 32 --tokens 32 [--threads 2]
//        [--warmup 2] [--min-reps 10] [--min-time 2] [--max-time 30] [--seed 1] [--no-spin]
//
// Session: CPU EP, intraOpNumThreads = --threads, interOpNumThreads 1, sequential,
// graphOptimizationLevel 'all'. load_ms is InferenceSession.create (parse, optimize, prepack);
// loading the native binding is reported apart (import_ms). Inputs are token ids drawn exactly as
// sembed_bench.c draws them (MINSTD), created once; the timed call is session.run.
'use strict';
const T_START = process.hrtime.bigint();
const fs = require('fs');
const path = require('path');

function ms(t0, t1) { return Number(t1 - t0) / 1e6; }

function parseArgs(argv) {
  const o = { batch: 1, tokens: 16, threads: 2, warmup: 2, minReps: 10, minTime: 2, maxTime: 30, seed: 1,
              spin: true, pos: [] };
  const num = { '--batch': 'batch', '--tokens': 'tokens', '--threads': 'threads', '--warmup': 'warmup',
                '--min-reps': 'minReps', '--min-time': 'minTime', '--max-time': 'maxTime', '--seed': 'seed' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a in num) {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v)) throw new Error(`${a} needs a number`);
      o[num[a]] = v;
    } else if (a === '--no-spin') {
      o.spin = false;
    } else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: node ort_bench.js MODEL.onnx VOCAB.txt --batch B --tokens T [--threads N] ' +
        '[--warmup N] [--min-reps N] [--min-time S] [--max-time S] [--seed N] [--no-spin]\n');
      process.exit(0);
    } else if (a.startsWith('-')) {
      throw new Error(`unknown option ${a}`);
    } else {
      o.pos.push(a);
    }
  }
  if (o.pos.length !== 2) throw new Error('expected MODEL.onnx and VOCAB.txt');
  if (o.batch < 1 || o.tokens < 2 || o.threads < 1 || o.minReps < 1) throw new Error('need batch >= 1, tokens >= 2, threads >= 1, reps >= 1');
  return o;
}

// [CLS], tokens-2 ids from MINSTD (48271 x mod 2^31-1; products < 2^47 stay exact in doubles)
// above the first 1000 entries, [SEP]: the same ids as sembed_bench.c and torch_bench.py.
function minstdIds(batch, tokens, vocab, cls, sep, seed) {
  const lo = vocab > 2000 ? 1000 : 0;
  const ids = new BigInt64Array(batch * tokens);
  let x = seed + 1;
  for (let b = 0; b < batch; b++) {
    ids[b * tokens] = BigInt(cls);
    for (let t = 1; t < tokens - 1; t++) {
      x = (x * 48271) % 2147483647;
      ids[b * tokens + t] = BigInt(lo + (x % (vocab - lo)));
    }
    ids[b * tokens + tokens - 1] = BigInt(sep);
  }
  return ids;
}

function rssMiB() { return process.memoryUsage().rss / 1048576; }

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`ort_bench: ${e.message}\n`);
    process.exit(2);
  }
  const base = { peer: 'ort', model: o.pos[0], batch: o.batch, tokens: o.tokens };
  let stage = 'import';
  try {
    const ortPath = process.env.SEMBED_ORT_NODE ||
      path.join(__dirname, '..', 'node', 'node_modules', 'onnxruntime-node');
    const ort = require(ortPath);
    const tImport = process.hrtime.bigint();
    const rssStart = rssMiB();

    stage = 'load';
    const opts = {
      executionProviders: ['cpu'], intraOpNumThreads: o.threads, interOpNumThreads: 1,
      executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3,
    };
    if (!o.spin) opts.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
    const t0 = process.hrtime.bigint();
    const session = await ort.InferenceSession.create(o.pos[0], opts);
    const t1 = process.hrtime.bigint();
    const rssLoaded = rssMiB();

    stage = 'inputs';
    const vocab = fs.readFileSync(o.pos[1], 'utf8').split('\n');
    if (vocab.length && vocab[vocab.length - 1] === '') vocab.pop();
    const cls = vocab.indexOf('[CLS]'), sep = vocab.indexOf('[SEP]');
    if (cls < 0 || sep < 0) throw new Error(`${o.pos[1]}: no [CLS] or [SEP]`);
    const dims = [o.batch, o.tokens];
    const n = o.batch * o.tokens;
    const all = {
      input_ids: new ort.Tensor('int64', minstdIds(o.batch, o.tokens, vocab.length, cls, sep, o.seed), dims),
      token_type_ids: new ort.Tensor('int64', new BigInt64Array(n), dims),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), dims),
    };
    const feeds = {};
    for (const name of session.inputNames) {
      if (!(name in all)) throw new Error(`unexpected graph input ${name}`);
      feeds[name] = all[name];
    }

    stage = 'run';
    for (let i = 0; i < Math.max(o.warmup, 1); i++) {
      const out = await session.run(feeds);
      if (i === 0) {
        const y = out[session.outputNames[0]].data;
        for (let j = 0; j < y.length; j++) if (!Number.isFinite(y[j])) throw new Error('non-finite value in the output');
      }
    }
    const lat = [];
    const start = process.hrtime.bigint();
    let el = 0;
    for (;;) {
      const a = process.hrtime.bigint();
      await session.run(feeds);
      const b = process.hrtime.bigint();
      lat.push(ms(a, b));
      el = ms(start, b) / 1e3;
      if ((lat.length >= o.minReps && el >= o.minTime) || (el >= o.maxTime && lat.length >= 3)) break;
    }
    const sum = lat.reduce((s, v) => s + v, 0);
    lat.sort((p, q) => p - q);
    const k = lat.length;
    const med = k % 2 ? lat[(k - 1) / 2] : 0.5 * (lat[k / 2 - 1] + lat[k / 2]);
    const res = Object.assign(base, {
      ok: true, ort: require(path.join(ortPath, 'package.json')).version, threads: o.threads, spin: o.spin,
      import_ms: ms(T_START, tImport), load_ms: ms(t0, t1), reps: k, time_s: el, lat_ms: med, lat_min_ms: lat[0],
      lat_mean_ms: sum / k, lat_p90_ms: lat[Math.round((k - 1) * 0.9)], sent_per_s: o.batch / (med / 1e3),
      rss_start_mib: rssStart, rss_loaded_mib: rssLoaded, peak_rss_mib: process.resourceUsage().maxRSS / 1024,
    });
    process.stdout.write(JSON.stringify(res) + '\n');
    await session.release();
  } catch (e) {
    process.stdout.write(JSON.stringify(Object.assign(base, { ok: false, stage, error: String(e && e.message || e) })) + '\n');
    process.exitCode = 1;
  }
}

main();
