#!/usr/bin/env node
// Builds the tokenizer parity corpus at test time from the data files (data/README.md: the
// vendored data/ and, where it exists, the larger ../shared/data) plus the committed hard cases
// and generated lines that sweep Unicode.
//
//   node corpus.js DATA_DIRS HARD_CASES OUT_DIR
//
// DATA_DIRS: folders separated by ':', searched in order for each source file; a source found in
// none of them is left out with a line on stderr (the corpus is then smaller, never wrong).
// Writes OUT_DIR/corpus.txt (one text per line, raw bytes: ill-formed UTF-8 from the sources is
// kept as is) and OUT_DIR/pairs.tsv (text TAB text from the paired data sets). Prints counts.
'use strict';
const fs = require('fs');
const path = require('path');
const [dataDirs, hardFile, outDir] = process.argv.slice(2);
if (!outDir) { process.stderr.write('usage: node corpus.js DATA_DIRS HARD_CASES OUT_DIR\n'); process.exit(2); }
const dirs = dataDirs.split(':').filter((d) => d !== '');

const NL = 0x0a, TAB = 0x09;
const singles = [];  // Buffers, no '\n'
const pairs = [];    // [Buffer, Buffer], no '\n' or '\t'
const counts = {};
const seen = new Set();

function splitLines(buf) {
  const out = [];
  let s = 0;
  for (let i = 0; i <= buf.length; i++) {
    if (i === buf.length || buf[i] === NL) {
      if (i > s || i < buf.length) out.push(buf.subarray(s, i));
      s = i + 1;
    }
  }
  if (out.length && out[out.length - 1].length === 0) out.pop();
  return out;
}
function splitTab(buf) {
  const out = [];
  let s = 0;
  for (let i = 0; i <= buf.length; i++) if (i === buf.length || buf[i] === TAB) { out.push(buf.subarray(s, i)); s = i + 1; }
  return out;
}
function noTab(b) { return Buffer.from(b.map((c) => (c === TAB ? 0x20 : c))); }
function add(name, b) {
  counts[name] = (counts[name] || 0) + 1;
  const key = b.toString('latin1');
  if (seen.has(key)) return;
  seen.add(key);
  singles.push(b);
}
function addPair(name, a, b) { add(name, a); add(name, b); pairs.push([noTab(a), noTab(b)]); }
// The first of dirs holding rel; null (and a line on stderr) when none does.
function locate(rel) {
  for (const d of dirs) if (fs.existsSync(path.join(d, rel))) return path.join(d, rel);
  process.stderr.write(`corpus.js: ${rel} not found in ${dirs.join(', ')}: left out\n`);
  return null;
}
function read(rel) { const p = locate(rel); return p ? fs.readFileSync(p) : Buffer.alloc(0); }

// Plain sentence files.
for (const f of ['train/wiki1m_head.txt', 'train/sentence_polarity/rt-polarity.pos',
  'train/sentence_polarity/rt-polarity.neg', 'train/subjectivity/plot.tok.gt9.5000',
  'train/subjectivity/quote.tok.gt9.5000'])
  for (const l of splitLines(read(f))) add(path.basename(f), l);

// STS-B (SentEval's lowercased copy and the original-cased raw/): sentences are fields 5 and 6.
for (const f of ['sts/STSBenchmark/sts-train.csv', 'sts/STSBenchmark/sts-dev.csv',
  'sts/STSBenchmark/raw/sts-train.csv', 'sts/STSBenchmark/raw/sts-dev.csv'])
  for (const l of splitLines(read(f))) { const t = splitTab(l); if (t.length >= 7) addPair('stsb', t[5], t[6]); }

// STS12: sentence1 TAB sentence2.
for (const s of ['MSRpar', 'MSRvid', 'SMTeuroparl', 'surprise.OnWN', 'surprise.SMTnews'])
  for (const l of splitLines(read(`sts/STS12-en-test/STS.input.${s}.txt`))) {
    const t = splitTab(l);
    if (t.length >= 2) addPair('sts12', t[0], t[1]);
  }

// SICK: pair_ID, sentence_A, sentence_B, ...; MSR paraphrase: Quality, id, id, string, string.
for (const f of ['train/sick/SICK_train.txt', 'train/sick/SICK_trial.txt'])
  splitLines(read(f)).slice(1).forEach((l) => { const t = splitTab(l); if (t.length >= 3) addPair('sick', t[1], t[2]); });
for (const f of ['train/msr-para/msr-para-train.tsv', 'train/msr-para/msr-para-val.tsv'])
  splitLines(read(f)).slice(1).forEach((l) => { const t = splitTab(l); if (t.length >= 5) addPair('msr', t[3], t[4]); });

// RTE: <t>text</t> and <h>hypothesis</h>, XML entities resolved.
function unxml(s) {
  return s.replace(/&(lt|gt|amp|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/g, (m, e) => {
    if (e === 'lt') return '<'; if (e === 'gt') return '>'; if (e === 'amp') return '&';
    if (e === 'quot') return '"'; if (e === 'apos') return "'";
    return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}
const rteDir = dirs.map((d) => path.join(d, 'train/rte')).find((d) => fs.existsSync(d));
if (!rteDir) process.stderr.write(`corpus.js: train/rte not found in ${dirs.join(', ')}: left out\n`);
for (const f of rteDir ? fs.readdirSync(rteDir).filter((n) => n.endsWith('.xml')).sort() : []) {
  const x = read(path.join('train/rte', f)).toString('utf8');
  const re = /<t>([\s\S]*?)<\/t>\s*<h>([\s\S]*?)<\/h>/g;
  let m;
  while ((m = re.exec(x))) {
    const a = Buffer.from(unxml(m[1]).replace(/\n/g, ' '), 'utf8');
    const b = Buffer.from(unxml(m[2]).replace(/\n/g, ' '), 'utf8');
    addPair('rte', a, b);
  }
}

// Hard cases: one per line, '#' starts a comment line; escapes \xHH (a raw byte, may be
// ill-formed UTF-8), \u{H..} (a code point), \t, \r, \\.
function unescape(line) {
  const bytes = [];
  const src = Buffer.from(line, 'utf8');
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c !== 0x5c || i + 1 >= src.length) { bytes.push(c); continue; }
    const n = String.fromCharCode(src[i + 1]);
    if (n === 'x') { bytes.push(parseInt(src.subarray(i + 2, i + 4).toString('latin1'), 16)); i += 3; }
    else if (n === 'u') {
      const end = src.indexOf(0x7d, i);
      const cp = parseInt(src.subarray(i + 3, end).toString('latin1'), 16);
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) bytes.push(b);
      i = end;
    } else if (n === 't') { bytes.push(TAB); i++; }
    else if (n === 'r') { bytes.push(0x0d); i++; }
    else if (n === '\\') { bytes.push(0x5c); i++; }
    else bytes.push(c);
  }
  return Buffer.from(bytes);
}
for (const l of fs.readFileSync(hardFile, 'utf8').split('\n')) {
  if (l === '' || l.startsWith('#')) continue;
  const b = unescape(l);
  const tab = b.indexOf(TAB);
  add('hard', b);
  if (tab >= 0) pairs.push([b.subarray(0, tab), noTab(b.subarray(tab + 1))]);
}

// Generated: every code point of planes 0-3 and 14 (surrogates excluded) alone and between
// letters ("X aXb AXB"), 32 per line; then deterministic pseudo-random combining-mark stacks and
// byte noise (ill-formed UTF-8).
const enc = (s) => Buffer.from(s, 'utf8');
for (const plane of [0, 1, 2, 3, 14]) {
  let parts = [];
  for (let cp = plane * 0x10000; cp < (plane + 1) * 0x10000; cp++) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    if (cp === 0x0a) continue;
    const x = String.fromCodePoint(cp);
    parts.push(`${x} a${x}b A${x}B`);
    if (parts.length === 32) { add('sweep', enc(parts.join(' '))); parts = []; }
  }
  if (parts.length) add('sweep', enc(parts.join(' ')));
}
let seed = 12345;
const rnd = (n) => { seed = (seed * 1103515245 + 12345) >>> 0; return (seed >>> 8) % n; };
const marks = [];
for (const [lo, hi] of [[0x300, 0x36f], [0x483, 0x489], [0x591, 0x5c7], [0x610, 0x61a], [0x64b, 0x65f],
  [0x93c, 0x94d], [0xe31, 0xe4e], [0x1ab0, 0x1ace], [0x1dc0, 0x1dff], [0x20d0, 0x20f0], [0x302a, 0x302f],
  [0xfe20, 0xfe2f], [0x1d165, 0x1d169], [0x1d16d, 0x1d172], [0x1e8d0, 0x1e8d6]])
  for (let c = lo; c <= hi; c++) marks.push(c);
const bases = 'aeiouAEIOUnNcCsSzZ\u00e9\u0391\u03b1\u0410\u05d0\u0627\u0915\u0e01\u3042\u4e00 ';
for (let i = 0; i < 2000; i++) {
  let s = '';
  const words = 1 + rnd(6);
  for (let w = 0; w < words; w++) {
    const len = 1 + rnd(4);
    for (let k = 0; k < len; k++) {
      s += bases[rnd(bases.length)];
      const m = rnd(5);
      for (let j = 0; j < m; j++) s += String.fromCodePoint(marks[rnd(marks.length)]);
    }
    s += ' ';
  }
  add('marks', enc(s));
}
for (let i = 0; i < 2000; i++) {
  const n = 1 + rnd(40);
  const b = [];
  for (let k = 0; k < n; k++) {
    const r = rnd(4);
    let v = r === 0 ? 0x61 + rnd(26) : r === 1 ? 0x80 + rnd(0x80) : r === 2 ? 0xc0 + rnd(0x40) : rnd(256);
    if (v === NL) v = 0x20;
    b.push(v);
  }
  add('bytes', Buffer.from(b));
}

fs.mkdirSync(outDir, { recursive: true });
const join = (arr) => Buffer.concat(arr.flatMap((b) => [b, Buffer.from([NL])]));
fs.writeFileSync(path.join(outDir, 'corpus.txt'), join(singles));
fs.writeFileSync(path.join(outDir, 'pairs.tsv'), join(pairs.map(([a, b]) => Buffer.concat([a, Buffer.from([TAB]), b]))));
process.stdout.write(JSON.stringify({ singles: singles.length, pairs: pairs.length, by_source: counts }) + '\n');
