#!/usr/bin/env node
// Makes the tokenizer.json files of tests/tokenizer/hf/ with HF tokenizers (npm `tokenizers`):
// each model is TRAINED by HF's own trainer (Tokenizer.train with the model's default trainer) on the
// first lines of the shared training text, then put into the pipeline it is meant to test
// (normalizers, pre-tokenizers, added tokens, post-processor) as tokenizer.json and re-read and
// saved by HF (Tokenizer.fromString + save), so every file is one HF itself accepts and writes.
//
//   node make_hf_json.js ../../../shared/data/train/wiki1m_head.txt OUTDIR
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const tk = require(path.resolve(__dirname, '../../tools/node/node_modules/tokenizers'));

const src = process.argv[2], out = process.argv[3];
const lines = fs.readFileSync(src, 'utf8').split('\n');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hfjson-'));
function corpus(n) { const f = path.join(tmp, `c${n}.txt`); fs.writeFileSync(f, lines.slice(0, n).join('\n')); return f; }

function train(model, setup, n) {
  const t = new tk.Tokenizer(model);
  setup(t);
  t.train([corpus(n)]);
  const f = path.join(tmp, 'm.json');
  t.save(f);
  return JSON.parse(fs.readFileSync(f, 'utf8')).model;
}

function added(id, content, o = {}) {
  return { id, content, single_word: !!o.single_word, lstrip: !!o.lstrip, rstrip: !!o.rstrip,
           normalized: !!o.normalized, special: o.special !== false };
}

function write(name, j) {
  const t = tk.Tokenizer.fromString(JSON.stringify(j)); // HF must accept it
  t.save(path.join(out, name));
  console.log(name, t.getVocabSize(true), fs.statSync(path.join(out, name)).size, 'bytes');
}

const base = { version: '1.0', truncation: null, padding: null, decoder: null };

// 1. RoBERTa-like: byte-level BPE, <mask> with lstrip, RobertaProcessing with trim_offsets.
{
  const m = train(tk.BPE.empty(), (t) => t.setPreTokenizer(tk.byteLevelPreTokenizer(false, true)), 400);
  // specials first (ids 0..4) as RoBERTa has them: shift the trained ids
  const sp = ['<s>', '<pad>', '</s>', '<unk>', '<mask>'];
  const vocab = {};
  sp.forEach((s, i) => { vocab[s] = i; });
  for (const [k, v] of Object.entries(m.vocab)) vocab[k] = v + sp.length;
  m.vocab = vocab;
  write('roberta_bpe.json', { ...base,
    added_tokens: sp.map((s, i) => added(i, s, { lstrip: s === '<mask>' })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true, add_prefix_space: false },
    model: m });
  // 2. GPT-2-like: the same merges with add_prefix_space and the ByteLevel post-processor.
  write('gpt2_bpe_prefix.json', { ...base,
    added_tokens: [added(2, '</s>')],
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: m });
}

// 3. XLM-R-like: Unigram over Metaspace pieces, NFKC + Replace, template <s> A </s> </s> B </s>.
{
  const m = train(tk.Unigram.empty(), (t) => t.setPreTokenizer(tk.metaspacePreTokenizer()), 400);
  const sp = [['<s>', 0], ['<pad>', 0], ['</s>', 0], ['<unk>', 0]];
  m.vocab = sp.concat(m.vocab.filter(([p]) => !sp.some(([s]) => s === p)));
  m.unk_id = 3;
  m.byte_fallback = false;
  const j = { ...base,
    added_tokens: sp.map(([s], i) => added(i, s)).concat([added(m.vocab.length, '<mask>', { lstrip: true })]),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFKC' },
      { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }] },
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true },
    post_processor: { type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } },
             { SpecialToken: { id: '</s>', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] }, '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } } },
    model: m };
  write('xlmr_unigram.json', j);
  // 4. The same pieces with byte fallback (<0x00>..<0xFF> pieces) and the "first" prepend scheme.
  const bytes = [];
  for (let b = 0; b < 256; b++) bytes.push(['<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>', 0]);
  const m2 = { ...m, vocab: m.vocab.concat(bytes), byte_fallback: true };
  write('unigram_bytefallback.json', { ...j, model: m2,
    added_tokens: sp.map(([s], i) => added(i, s)),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Strip', strip_left: true, strip_right: true }, { type: 'NFKD' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'WhitespaceSplit' },
      { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: true }] } });
}

// 5. WordLevel: NFD + Lowercase + StripAccents, Whitespace + Digits, a BERT-style template.
{
  const m = train(tk.WordLevel.empty(), (t) => {
    t.setNormalizer(tk.sequenceNormalizer([tk.nfdNormalizer(), tk.lowercase(), tk.stripAccentsNormalizer()]));
    t.setPreTokenizer(tk.sequencePreTokenizer([tk.whitespacePreTokenizer(), tk.digitsPreTokenizer(true)]));
  }, 400);
  const sp = ['[UNK]', '[CLS]', '[SEP]', '[PAD]'];
  const words = Object.entries(m.vocab).sort((a, b) => a[1] - b[1]).slice(0, 3000).map(([w]) => w);
  const vocab = {};
  sp.concat(words).forEach((w, i) => { vocab[w] = i; });
  write('wordlevel.json', { ...base,
    added_tokens: sp.map((s, i) => added(i, s)),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'Lowercase' }, { type: 'StripAccents' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, { type: 'Digits', individual_digits: true }] },
    post_processor: { type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
             { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [1], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [2], tokens: ['[SEP]'] } } },
    model: { type: 'WordLevel', vocab, unk_token: '[UNK]' } });
}

// 6. WordPiece: BertNormalizer + BertPreTokenizer + BertProcessing (BERT's own pipeline).
// 7. WordPiece with Lowercase + Prepend + Split(regex) + Punctuation(contiguous) pieces.
{
  const m = train(tk.WordPiece.empty(), (t) => {
    t.setNormalizer(tk.bertNormalizer({ lowercase: true }));
    t.setPreTokenizer(tk.bertPreTokenizer());
  }, 400);
  const sp = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
  const vocab = {};
  sp.forEach((s, i) => { vocab[s] = i; });
  for (const [k, v] of Object.entries(m.vocab)) if (!(k in vocab)) vocab[k] = v + sp.length;
  m.vocab = vocab;
  m.unk_token = '[UNK]';
  write('bert_wordpiece.json', { ...base,
    added_tokens: sp.map((s, i) => added(i, s)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] },
    model: m });
  write('wordpiece_split.json', { ...base,
    added_tokens: sp.map((s, i) => added(i, s)).concat([added(2 + 0, '[CLS]')]).slice(0, 5),
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Lowercase' }, { type: 'Replace', pattern: { String: "''" }, content: '"' }] },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [
      { type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Removed', invert: false },
      { type: 'Punctuation', behavior: 'Contiguous' },
      { type: 'Split', pattern: { Regex: '[0-9]+' }, behavior: 'MergedWithPrevious', invert: false }] },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] },
    model: m });
}
fs.rmSync(tmp, { recursive: true, force: true });
