#!/usr/bin/python3
"""The test side's SentencePiece .model -> tokenizer.json, written apart from sembed's C converter
so that HF tokenizers (the oracle) can run what a .model means:

    /usr/bin/python3 spm_to_json.py MODEL.model OUT.json [--xlmr]

The protobuf wire format is read by hand (no sentencepiece package here); field numbers from
sentencepiece's src/sentencepiece_model.proto. The pipeline is the one HF transformers'
convert_slow_tokenizer builds (facts from its source): normalizer Sequence[Precompiled(charsmap),
Replace(" {2,}", " ")], pre-tokenizer Sequence[WhitespaceSplit, Metaspace("\u2581", prepend_scheme
always when add_dummy_prefix, split)], Unigram(pieces, scores, unk_id) (the shape of xlm-roberta-base's
tokenizer.json). --xlmr applies XLMRobertaConverter's
vocabulary: <s> <pad> </s> <unk> as ids 0-3, the model's pieces from the 4th on at their id + 1,
<mask> last (lstrip), and the template <s> $A </s> (</s> </s> $B </s>).
"""
import base64
import json
import sys


def varint(b, i):
    x = s = 0
    while True:
        c = b[i]
        i += 1
        x |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return x, i


def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = varint(b, i)
        elif w == 1:
            v, i = b[i:i + 8], i + 8
        elif w == 5:
            v, i = b[i:i + 4], i + 4
        elif w == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        else:
            raise ValueError('wire type %d' % w)
        yield f, w, v


def parse(path):
    import struct
    b = open(path, 'rb').read()
    pieces, trainer, norm = [], {}, {}
    for f, w, v in fields(b):
        if f == 1:
            p = {'piece': '', 'score': 0.0, 'type': 1}
            for g, _, x in fields(v):
                if g == 1: p['piece'] = x.decode('utf-8')
                elif g == 2: p['score'] = struct.unpack('<f', x)[0]
                elif g == 3: p['type'] = x
            pieces.append(p)
        elif f == 2:
            for g, _, x in fields(v):
                trainer[g] = x
        elif f == 3:
            for g, _, x in fields(v):
                norm[g] = x
    return pieces, trainer, norm


def main():
    src, out = sys.argv[1], sys.argv[2]
    xlmr = '--xlmr' in sys.argv
    pieces, trainer, norm = parse(src)
    if trainer.get(3, 1) != 1:
        raise SystemExit('only Unigram models here')
    charsmap = norm.get(2, b'')
    dummy = bool(norm.get(3, 1))
    if xlmr:
        vocab = [['<s>', 0.0], ['<pad>', 0.0], ['</s>', 0.0], ['<unk>', 0.0]]
        vocab += [[p['piece'], p['score']] for p in pieces[3:]]
        vocab += [['<mask>', 0.0]]
        unk = 3
        specials = [(i, vocab[i][0], False) for i in range(4)] + [(len(vocab) - 1, '<mask>', True)]
    else:
        vocab = [[p['piece'], p['score']] for p in pieces]
        unk = trainer.get(40, 0)
        specials = [(i, p['piece'], False) for i, p in enumerate(pieces) if p['type'] in (2, 3)]
    norms = [{'type': 'Replace', 'pattern': {'Regex': ' {2,}'}, 'content': ' '}]
    if charsmap:
        norms.insert(0, {'type': 'Precompiled', 'precompiled_charsmap': base64.b64encode(charsmap).decode()})
    tj = {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': [{'id': i, 'content': s, 'single_word': False, 'lstrip': ls, 'rstrip': False,
                          'normalized': False, 'special': True} for i, s, ls in specials],
        'normalizer': {'type': 'Sequence', 'normalizers': norms},
        'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
            {'type': 'WhitespaceSplit'},
            {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'always' if dummy else 'never', 'split': True}]},
        'post_processor': None, 'decoder': None,
        'model': {'type': 'Unigram', 'unk_id': unk, 'vocab': vocab, 'byte_fallback': bool(trainer.get(35, 0))},
    }
    if xlmr:
        s, e = {'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'SpecialToken': {'id': '</s>', 'type_id': 0}}
        a, b = {'Sequence': {'id': 'A', 'type_id': 0}}, {'Sequence': {'id': 'B', 'type_id': 0}}
        tj['post_processor'] = {'type': 'TemplateProcessing', 'single': [s, a, e], 'pair': [s, a, e, e, b, e],
                                'special_tokens': {'<s>': {'id': '<s>', 'ids': [0], 'tokens': ['<s>']},
                                                   '</s>': {'id': '</s>', 'ids': [2], 'tokens': ['</s>']}}}
    json.dump(tj, open(out, 'w'), ensure_ascii=False)


if __name__ == '__main__':
    main()
