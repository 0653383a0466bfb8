#!/usr/bin/env node
// The tokenizer oracle: HuggingFace tokenizers (npm `tokenizers`, the Rust library) configured as
// BertWordPiece (BertNormalizer + BertPreTokenizer + WordPiece + BertProcessing) from a vocab.txt
// and the same flags sembed reads from a .semb file. Reads one text per line (bytes; each line is
// decoded as UTF-8 with U+FFFD for ill-formed subsequences, like Python's errors='replace'), writes
// one line of ids per input line.
//
//   node oracle.js --vocab vocab.txt --input corpus.txt --output ids.txt
//        [--lowercase 0|1] [--strip-accents 0|1 (default: follow lowercase, HF's None)]
//        [--clean-text 0|1] [--chinese 0|1] [--pre-lowercase 0|1] [--max-chars N]
//        [--specials] [--pairs (a TAB b per line)] [--max-length N (truncation: longest_first)]
//
// Output per line: ids separated by spaces; with --specials also TAB type_ids TAB truncated(0|1).
// Prints {"lines":N,"seconds":S,"lines_per_s":R} on stderr (single thread: TOKENIZERS_PARALLELISM=false).
'use strict';
process.env.TOKENIZERS_PARALLELISM = 'false';
const fs = require('fs');
const path = require('path');
function loadTokenizers() {
  const here = path.resolve(__dirname, '../../tools/node/node_modules/tokenizers');
  try { return require(here); } catch (e) { return require('tokenizers'); }
}
const tk = loadTokenizers();

const args = { lowercase: '1', 'clean-text': '1', chinese: '1', 'pre-lowercase': '0', 'max-chars': '100' };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (!a.startsWith('--')) throw new Error('bad argument ' + a);
  const k = a.slice(2);
  if (k === 'specials' || k === 'pairs') args[k] = true;
  else args[k] = process.argv[++i];
}
const lowercase = args.lowercase === '1';
const stripAccents = args['strip-accents'] === undefined ? lowercase : args['strip-accents'] === '1';

// vocab.txt: token i is line i (without the '\n'); a later duplicate wins, as in HF.
const vocabText = fs.readFileSync(args.vocab, 'utf8');
const lines = vocabText.split('\n');
if (lines.length && lines[lines.length - 1] === '') lines.pop();
const vocab = {};
lines.forEach((t, i) => { vocab[t] = i; });

function makeTokenizer(truncate) {
  const model = tk.WordPiece.init(vocab, { unkToken: '[UNK]', continuingSubwordPrefix: '##',
                                            maxInputCharsPerWord: Number(args['max-chars']) });
  const tok = new tk.Tokenizer(model);
  tok.setNormalizer(tk.bertNormalizer({ cleanText: args['clean-text'] === '1',
    handleChineseChars: args.chinese === '1', stripAccents, lowercase }));
  tok.setPreTokenizer(tk.bertPreTokenizer());
  tok.setPostProcessor(tk.bertProcessing(['[SEP]', vocab['[SEP]']], ['[CLS]', vocab['[CLS]']]));
  if (truncate && args['max-length'])
    tok.setTruncation(Number(args['max-length']), { strategy: 'LongestFirst' });
  return tok;
}

// Split the input into lines of bytes, decode each separately (TextDecoder: maximal subparts).
const buf = fs.readFileSync(args.input);
const dec = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const texts = [];
let start = 0;
for (let i = 0; i <= buf.length; i++) {
  if (i === buf.length || buf[i] === 0x0a) {
    if (i === buf.length && start === i) break;
    let s = dec.decode(buf.subarray(start, i));
    if (args['pre-lowercase'] === '1') s = s.toLowerCase();
    texts.push(s);
    start = i + 1;
  }
}
const inputs = args.pairs ? texts.map((s) => {
  const tab = s.indexOf('\t');
  return tab < 0 ? [s, ''] : [s.slice(0, tab), s.slice(tab + 1)];
}) : texts;

(async () => {
  const tok = makeTokenizer(true);
  const opts = { addSpecialTokens: !!args.specials };
  // encodeBatch takes single sequences only in this binding; pairs go one by one.
  const run = async (t) => {
    if (!args.pairs) return t.encodeBatch(inputs, opts);
    const r = [];
    for (const [a, b] of inputs) r.push(await t.encode(a, b, opts));
    return r;
  };
  const t0 = process.hrtime.bigint();
  const encs = await run(tok);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  let full = null;
  if (args.specials && args['max-length']) full = await run(makeTokenizer(false));
  const out = [];
  for (let i = 0; i < encs.length; i++) {
    let line = encs[i].getIds().join(' ');
    if (args.specials) {
      const cut = full && full[i].getIds().length > encs[i].getIds().length ? 1 : 0;
      line += '\t' + encs[i].getTypeIds().join(' ') + '\t' + cut;
    }
    out.push(line);
  }
  fs.writeFileSync(args.output, out.join('\n') + (out.length ? '\n' : ''));
  process.stderr.write(JSON.stringify({ lines: encs.length, seconds: secs, lines_per_s: encs.length / secs }) + '\n');
})().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });
