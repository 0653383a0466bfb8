// ONNX Runtime peer for the corpus job (tools/bench/corpus.py): real sentences embedded end to
// end the way an ORT user does it at its best. HF tokenizers (npm, BertWordPiece from vocab.txt,
// truncation to --max-length) encodes the whole list with encodeBatch (Rust, parallel); inputs
// are sorted by length, cut into batches of --batch, each padded to its own longest input, and run
// through one InferenceSession (CPU EP, intraOpNumThreads = --threads, graph optimization 'all').
// Timed: tokenization + sorting + padding + every session.run, repeated --reps times (median).
// Prints one JSON object on stdout; with --dump-ids FILE also writes the ids (one line per input,
// input order) for the PyTorch peer, which has no HF tokenizer of its own here.
//
//   node tools/bench/corpus_ort.js MODEL.onnx VOCAB.txt SENTENCES.txt [--batch 32] [--threads 2]
//        [--reps 3] [--max-length 512] [--dump-ids FILE] [--no-spin]
'use strict';
const fs = require('fs');
const path = require('path');

function ms(t0, t1) { return Number(t1 - t0) / 1e6; }

function parseArgs(argv) {
  const o = { batch: 32, threads: 2, reps: 3, maxLength: 512, dumpIds: null, spin: true, pos: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--batch') o.batch = Number(argv[++i]);
    else if (a === '--threads') o.threads = Number(argv[++i]);
    else if (a === '--reps') o.reps = Number(argv[++i]);
    else if (a === '--max-length') o.maxLength = Number(argv[++i]);
    else if (a === '--dump-ids') o.dumpIds = argv[++i];
    else if (a === '--no-spin') o.spin = false;
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else o.pos.push(a);
  }
  if (o.pos.length !== 3) throw new Error('expected MODEL.onnx VOCAB.txt SENTENCES.txt');
  for (const k of ['batch', 'threads', 'reps', 'maxLength'])
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new Error(`--${k} needs a positive integer`);
  return o;
}

function readLines(p) {
  const t = fs.readFileSync(p, 'utf8').split('\n');
  if (t.length && t[t.length - 1] === '') t.pop();
  return t;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const nodeDir = path.join(__dirname, '..', 'node', 'node_modules');
  const ort = require(process.env.SEMBED_ORT_NODE || path.join(nodeDir, 'onnxruntime-node'));
  const tk = require(path.join(nodeDir, 'tokenizers'));

  const vocabList = readLines(o.pos[1]);
  const vocab = {};
  vocabList.forEach((t, i) => { vocab[t] = i; });
  const tok = new tk.Tokenizer(tk.WordPiece.init(vocab, { unkToken: '[UNK]', continuingSubwordPrefix: '##' }));
  tok.setNormalizer(tk.bertNormalizer({ cleanText: true, handleChineseChars: true, stripAccents: true, lowercase: true }));
  tok.setPreTokenizer(tk.bertPreTokenizer());
  tok.setPostProcessor(tk.bertProcessing(['[SEP]', vocab['[SEP]']], ['[CLS]', vocab['[CLS]']]));
  tok.setTruncation(o.maxLength, { strategy: 'LongestFirst' });
  const pad = vocab['[PAD]'] !== undefined ? vocab['[PAD]'] : 0;

  const opts = {
    executionProviders: ['cpu'], intraOpNumThreads: o.threads, interOpNumThreads: 1,
    executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3,
  };
  if (!o.spin) opts.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(o.pos[0], opts);
  const loadMs = ms(t0, process.hrtime.bigint());
  const sentences = readLines(o.pos[2]);
  if (!sentences.length) throw new Error('no sentences');

  let stats = null;
  const job = async () => {
    const a = process.hrtime.bigint();
    const encs = await tok.encodeBatch(sentences);
    const tTok = process.hrtime.bigint();
    const ids = encs.map((e) => e.getIds());
    const order = ids.map((_, i) => i).sort((p, q) => ids[p].length - ids[q].length);
    let real = 0, computed = 0;
    for (let s = 0; s < order.length; s += o.batch) {
      const idx = order.slice(s, s + o.batch);
      const T = ids[idx[idx.length - 1]].length;
      const B = idx.length;
      const x = new BigInt64Array(B * T).fill(BigInt(pad));
      const mask = new BigInt64Array(B * T);
      idx.forEach((r, b) => {
        const row = ids[r];
        for (let t = 0; t < row.length; t++) { x[b * T + t] = BigInt(row[t]); mask[b * T + t] = 1n; }
        real += row.length;
      });
      computed += B * T;
      const dims = [B, T];
      const all = { input_ids: new ort.Tensor('int64', x, dims), attention_mask: new ort.Tensor('int64', mask, dims),
                    token_type_ids: new ort.Tensor('int64', new BigInt64Array(B * T), dims) };
      const feeds = {};
      for (const name of session.inputNames) feeds[name] = all[name];
      await session.run(feeds);
    }
    const b = process.hrtime.bigint();
    stats = { tokens: real, computed_tokens: computed, pad_tokens: computed - real, tokenize_s: ms(a, tTok) / 1e3 };
    if (o.dumpIds && !fs.existsSync(o.dumpIds)) fs.writeFileSync(o.dumpIds, ids.map((r) => r.join(' ')).join('\n') + '\n');
    return ms(a, b) / 1e3;
  };
  const times = [];
  const tokTimes = [];
  for (let r = 0; r < o.reps; r++) { times.push(await job()); tokTimes.push(stats.tokenize_s); }
  times.sort((p, q) => p - q);
  tokTimes.sort((p, q) => p - q);
  const med = (v) => (v.length % 2 ? v[(v.length - 1) / 2] : 0.5 * (v[v.length / 2 - 1] + v[v.length / 2]));
  const sec = med(times);
  process.stdout.write(JSON.stringify(Object.assign({
    peer: 'ort', ok: true, ort: require(path.join(nodeDir, 'onnxruntime-node', 'package.json')).version,
    batch: o.batch, threads: o.threads, sentences: sentences.length, reps: o.reps, seconds: sec, seconds_min: times[0],
    tokenize_s: med(tokTimes), sent_per_s: sentences.length / sec, load_ms: loadMs,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024,
  }, stats, { tok_per_s: stats.tokens / sec, tokenize_s: med(tokTimes) })) + '\n');
  await session.release();
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ peer: 'ort', ok: false, stage: 'run', error: String(e && e.message || e) }) + '\n');
  process.exitCode = 1;
});
