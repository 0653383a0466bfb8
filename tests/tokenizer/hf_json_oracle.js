#!/usr/bin/env node
// The tokenizer.json oracle: HF tokenizers (npm `tokenizers`) loads a tokenizer.json and encodes
// one text per input line (or a TAB b with --pairs), with the post-processor's special tokens.
// Each line is decoded as UTF-8 with U+FFFD for ill-formed subsequences (TextDecoder).
//
//   node hf_json_oracle.js --tokenizer T.json --input lines.txt --output out.txt [--pairs] [--max-length N]
//
// Output per line: ids TAB type_ids TAB offsets (start,end per token, in code points) [TAB truncated 0|1].
'use strict';
process.env.TOKENIZERS_PARALLELISM = 'false';
const fs = require('fs');
const path = require('path');
const tk = require(path.resolve(__dirname, '../../tools/node/node_modules/tokenizers'));

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i].slice(2);
  if (k === 'pairs') args[k] = true;
  else args[k] = process.argv[++i];
}
const tok = tk.Tokenizer.fromFile(args.tokenizer);
const maxLen = args['max-length'] ? Number(args['max-length']) : 0;
if (maxLen) tok.setTruncation(maxLen, { strategy: 'LongestFirst' });
const buf = fs.readFileSync(args.input);
const dec = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
const texts = [];
let start = 0;
for (let i = 0; i <= buf.length; i++) {
  if (i === buf.length || buf[i] === 0x0a) {
    if (i === buf.length && start === i) break;
    texts.push(dec.decode(buf.subarray(start, i)));
    start = i + 1;
  }
}
// JS strings index UTF-16 units; HF's node offsets are in code points (Rust chars).
(async () => {
  const outLines = [];
  const t0 = Date.now();
  for (const s of texts) {
    let e;
    if (args.pairs) {
      const tab = s.indexOf('\t');
      e = await tok.encode(tab < 0 ? s : s.slice(0, tab), tab < 0 ? '' : s.slice(tab + 1));
    } else {
      e = await tok.encode(s);
    }
    const offs = e.getOffsets().map(([a, b]) => `${a},${b}`).join(' ');
    let line = `${e.getIds().join(' ')}\t${e.getTypeIds().join(' ')}\t${offs}`;
    if (maxLen) line += `\t${e.getOverflowing().length ? 1 : 0}`;
    outLines.push(line);
  }
  fs.writeFileSync(args.output, outLines.join('\n') + (outLines.length ? '\n' : ''));
  process.stderr.write(JSON.stringify({ lines: texts.length, seconds: (Date.now() - t0) / 1000 }) + '\n');
})();
