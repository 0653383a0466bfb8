#!/usr/bin/env node
// Dumps, for every Unicode code point, how HuggingFace tokenizers' BertNormalizer and
// BertPreTokenizer treat it, so test_tokenizer can check sembed's character classes against HF
// over the whole code space (and print the compat table when utf8proc and HF disagree).
//
//   node hf_classes.js OUT
//
// Lines:  R lo hi FLAGS   a run of code points with the same flags: o = dropped by clean_text,
//                         w = whitespace (mapped to ' ' by clean_text), p = isolated as
//                         punctuation, m = dropped by strip_accents; '-' = none (hex lo, hi)
//         L cp x y ...    lowercase (Rust char::to_lowercase) when it is not cp itself
//         S cp x y ...    strip_accents (NFD, drop Mn) when it is not cp itself (may be empty)
'use strict';
const fs = require('fs');
const path = require('path');
let tk;
try { tk = require(path.resolve(__dirname, '../../tools/node/node_modules/tokenizers')); } catch (e) { tk = require('tokenizers'); }

const clean = tk.bertNormalizer({ cleanText: true, handleChineseChars: false, stripAccents: false, lowercase: false });
const strip = tk.bertNormalizer({ cleanText: false, handleChineseChars: false, stripAccents: true, lowercase: false });
const lower = tk.bertNormalizer({ cleanText: false, handleChineseChars: false, stripAccents: false, lowercase: true });
const pre = tk.bertPreTokenizer();
const SEP = '0';
const out = [];
const hex = (c) => c.toString(16);
const cps = (s) => [...s].map((c) => c.codePointAt(0));

let runLo = 0, runFlags = null;
const CHUNK = 2048;
for (let lo = 0; lo <= 0x10ffff; lo += CHUNK) {
  const list = [];
  for (let c = lo; c < Math.min(lo + CHUNK, 0x110000); c++) {
    if ((c >= 0xd800 && c <= 0xdfff) || c === 0x30) continue; // surrogates; the separator '0'
    list.push(c);
  }
  if (!list.length) continue;
  const s = SEP + list.map((c) => String.fromCodePoint(c)).join(SEP) + SEP;
  // Segments between separators: the separator is not changed by these normalizers.
  const seg = (norm) => { const r = norm.normalizeString(s).split(SEP); return r.slice(1, r.length - 1); };
  const sc = seg(clean), ss = seg(strip), sl = seg(lower);
  if (sc.length !== list.length || ss.length !== list.length || sl.length !== list.length)
    throw new Error('segment count mismatch near ' + hex(lo));
  const punct = new Set();
  for (const [piece] of pre.preTokenizeString(s)) {
    const p = cps(piece);
    if (p.length === 1 && p[0] !== 0x30) punct.add(p[0]);
  }
  list.forEach((c, i) => {
    const ch = String.fromCodePoint(c);
    let f = '';
    if (sc[i] === '') f += 'o';
    else if (sc[i] === ' ' && c !== 0x20) f += 'w';
    if (punct.has(c)) f += 'p';
    if (ss[i] === '') f += 'm';
    if (!f) f = '-';
    if (sl[i] !== ch) out.push('L ' + hex(c) + ' ' + cps(sl[i]).map(hex).join(' '));
    if (ss[i] !== ch) out.push(('S ' + hex(c) + ' ' + cps(ss[i]).map(hex).join(' ')).trimEnd());
    if (f !== runFlags) {
      if (runFlags !== null) out.push(`R ${hex(runLo)} ${hex(c - 1)} ${runFlags}`);
      runLo = c; runFlags = f;
    }
  });
}
out.push(`R ${hex(runLo)} 10ffff ${runFlags}`);
fs.writeFileSync(process.argv[2], out.join('\n') + '\n');
