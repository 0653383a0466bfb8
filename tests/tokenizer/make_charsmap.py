#!/usr/bin/python3
"""Writes a hand-made SentencePiece charsmap (the Precompiled normalizer's blob) that exercises
what a real one rarely shows: deletions at the start and in the middle, expansions to 3 and 5
characters, contractions of a grapheme, a byte-prefix key (every Greek letter of the CE lead byte
maps through the one-byte key), a short key that shadows a longer one ("e" before "e\u0301": HF
takes the first match), and an emoji inside a ZWJ/skin-tone cluster of 6 bytes or more.

    /usr/bin/python3 make_charsmap.py BASE.json OUT.json

BASE.json's model and pipeline are kept; its Precompiled charsmap is replaced by this one.
Blob layout (sentencepiece src/normalizer.cc; darts-clone's unit encoding): uint32 LE trie size,
the double array, the NUL-terminated replacement strings. The array is built here by a simple
first-fit placement, one 256-unit block per node.
"""
import base64
import json
import struct
import sys

MAP = {
    'e': 'x',
    'e\u0301': 'Y',            # never used by HF: "e" is met first
    '\u00e9': 'e\u0301',       # expansion by one
    '\ufb01': 'fi',
    '\u216b': 'XII',
    '\U0001F600': 'smile',
    '\U0001F44D': '+1',
    '\u200b': '',              # deleted
    '\u00ad': '',
    '\u3000': ' ',
    'a\u0308': '\u00e4',       # a grapheme contracted
    'o\u0308\u0304': 'O',      # 5 bytes, three characters into one
    'q': 'qq',
}
BYTE_KEYS = {b'\xce': 'g'}     # a leaf on a lead byte: every CE xx character becomes "g"


def build(entries):
    table, value = bytearray(), {}
    for k, v in entries:
        value[k] = len(table)
        table += v.encode() + b'\0'
    trie = {}
    for k, _ in entries:
        node = trie
        for c in k:
            node = node.setdefault(c, {})
        node[None] = value[k]
    units = [0] * 256
    used = set([0])

    def place(node, pos):
        labels = [c for c in node if c is not None]
        need = ([0] if None in node else []) + labels
        base = 256
        while any((base ^ c) in used for c in need) or (base ^ pos) >= (1 << 21):
            base += 256
        while len(units) < base + 256:
            units.extend([0] * 256)
        for c in need:
            used.add(base ^ c)
        off = base ^ pos
        units[pos] |= (off << 10) | ((1 << 8) if None in node else 0)
        if None in node:
            units[base] = 0x80000000 | node[None]
        for c in labels:
            units[base ^ c] = c
        for c in labels:
            place(node[c], base ^ c)

    place(trie, 0)
    blob = struct.pack('<I', 4 * len(units)) + b''.join(struct.pack('<I', u) for u in units) + bytes(table)
    return blob


def main():
    entries = [(k.encode(), v) for k, v in MAP.items()] + list(BYTE_KEYS.items())
    blob = build(entries)
    tj = json.load(open(sys.argv[1]))
    norms = tj['normalizer']['normalizers']
    for n in norms:
        if n['type'] == 'Precompiled':
            n['precompiled_charsmap'] = base64.b64encode(blob).decode()
    json.dump(tj, open(sys.argv[2], 'w'), ensure_ascii=False)


if __name__ == '__main__':
    main()
