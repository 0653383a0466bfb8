#!/usr/bin/env python3
"""Seeds for fuzz_semb (tests/fuzz/corpus/semb/seed-*): small .semb files (docs/format.md) with the
tokenizer.* keys, with and without the prebuilt index (tokenizer.index.*), and malformed indexes,
each aimed at a branch of formats/semb_tokindex.c that the campaign corpus did not reach.

Standard library only; XXH3-64 (header checksum, index slots) through ctypes from Debian's
libxxhash0. Deterministic: the same files on every run.
Usage: /usr/bin/python3 tests/fuzz/seeds/gen_semb.py [OUT_DIR]   (default tests/fuzz/corpus/semb)
"""
import ctypes
import ctypes.util
import os
import struct
import sys

_xxh = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
_xxh.XXH3_64bits.restype = ctypes.c_uint64
_xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def xxh3(b):
    return _xxh.XXH3_64bits(b, len(b))


T_U16, T_U32, T_BOOL, T_STR, T_ARR = 2, 4, 10, 11, 12


def s(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b + b"\0"


def kv_str(k, v):
    return s(k) + struct.pack("<I", T_STR) + s(v)


def kv_bool(k, v):
    return s(k) + struct.pack("<IB", T_BOOL, 1 if v else 0)


def kv_u32(k, v):
    return s(k) + struct.pack("<II", T_U32, v)


def kv_arr(k, elem, items):
    if elem == T_STR:
        body = b"".join(s(i) for i in items)
    elif elem == T_U16:
        body = struct.pack("<%dH" % len(items), *items)
    else:
        body = struct.pack("<%dI" % len(items), *items)
    return s(k) + struct.pack("<IIQ", T_ARR, elem, len(items)) + body


def semb(kvs):
    meta = b"".join(kvs)
    dir_end = 56 + len(meta)
    data_offset = (dir_end + 8 + 63) // 64 * 64
    head = b"SEMB" + struct.pack("<IIIQQQQQ", 1, 0x01020304, 0, len(kvs), 0, dir_end, data_offset, 0)
    body = head + meta
    body += struct.pack("<Q", xxh3(body))
    return body + b"\0" * (data_offset - len(body))


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "un", "##aff", "##able", "##ing",
         ",", "!", "caf", "##\u00e9", "\u6211", "a", "##a", "xyz", "##zy", "##plugh", "hello"]  # a duplicate


def tok_keys(vocab, prefix=None):
    k = [kv_str("tokenizer.model", "wordpiece"), kv_arr("tokenizer.vocab", T_STR, vocab),
         kv_bool("tokenizer.lowercase", True), kv_bool("tokenizer.strip_accents", True),
         kv_bool("tokenizer.handle_chinese_chars", True), kv_bool("tokenizer.clean_text", True),
         kv_str("tokenizer.unk_token", "[UNK]"), kv_str("tokenizer.cls_token", "[CLS]"),
         kv_str("tokenizer.sep_token", "[SEP]"), kv_str("tokenizer.pad_token", "[PAD]"),
         kv_str("tokenizer.mask_token", "[MASK]"), kv_u32("tokenizer.max_input_chars_per_word", 100)]
    if prefix is not None:
        k.append(kv_str("tokenizer.continuing_prefix", prefix))
    return k


def cap(n):
    if n == 0:
        return 0
    c = 16
    while c < 2 * n:
        c *= 2
    return c


def index(vocab, prefix="##", width=2):
    """The index as docs/format.md specifies it: offsets, both tables (linear probing on XXH3-64 of
    the key; a later duplicate key takes the earlier one's slot), longest keys."""
    enc = [v.encode() for v in vocab]
    offs, pos = [], 0
    for e in enc:
        offs.append(pos)
        pos += 9 + len(e)
    p = prefix.encode()
    cont_ids = [i for i, e in enumerate(enc) if p and e.startswith(p)]

    def table(ids, skip, c):
        t = [0] * c
        for i in ids:
            key = enc[i][skip:]
            h = xxh3(key) & (c - 1)
            while t[h] and enc[t[h] - 1][skip:] != key:
                h = (h + 1) & (c - 1)
            t[h] = i + 1
        return t

    all_t = table(range(len(enc)), 0, cap(len(enc)))
    cont_t = table(cont_ids, len(p), cap(len(cont_ids)))
    return {"offsets": offs, "all": all_t, "cont": cont_t, "all_max": max(len(e) for e in enc),
            "cont_max": max([len(enc[i]) - len(p) for i in cont_ids] or [0]), "width": width}


def index_keys(ix, drop=(), types=None):
    types = types or {}
    el = T_U16 if ix["width"] == 2 else T_U32
    k = {"tokenizer.index.offsets": kv_arr("tokenizer.index.offsets", types.get("offsets", T_U32), ix["offsets"]),
         "tokenizer.index.all": kv_arr("tokenizer.index.all", types.get("all", el), ix["all"]),
         "tokenizer.index.cont": kv_arr("tokenizer.index.cont", types.get("cont", el), ix["cont"]),
         "tokenizer.index.all_max_len": (kv_u32("tokenizer.index.all_max_len", ix["all_max"])
                                         if "all_max" not in types else kv_str("tokenizer.index.all_max_len", "x")),
         "tokenizer.index.cont_max_len": kv_u32("tokenizer.index.cont_max_len", ix["cont_max"])}
    return [v for key, v in k.items() if key.rsplit(".", 1)[1] not in drop]


def seeds():
    v = VOCAB
    out = {}
    out["plain"] = semb(tok_keys(v))  # no index: the runtime builds the tables
    out["plain-prefix-empty"] = semb(tok_keys(v, ""))
    out["plain-prefix-custom"] = semb(tok_keys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "ab", "@@b", "@@c"], "@@"))
    ix = index(v)
    out["index-u16"] = semb(tok_keys(v) + index_keys(ix))
    ix32 = index(v, width=4)
    out["index-u32"] = semb(tok_keys(v) + index_keys(ix32))
    ixe = index(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "ab"], "")
    out["index-prefix-empty"] = semb(tok_keys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "ab"], "") + index_keys(ixe))
    # malformed indexes, one defect each
    out["index-incomplete"] = semb(tok_keys(v) + index_keys(ix, drop=("cont_max_len",)))
    out["index-offsets-u16"] = semb(tok_keys(v) + index_keys(ix, types={"offsets": T_U16}))
    out["index-max-not-u32"] = semb(tok_keys(v) + index_keys(ix, types={"all_max": T_STR}))
    out["index-no-vocab"] = semb([k for k in tok_keys(v) if b"tokenizer.vocab" not in k[:40]] + index_keys(ix))
    out["index-vocab-u32"] = semb([kv_arr("tokenizer.vocab", T_U32, [1, 2, 3])] + index_keys(ix))
    out["index-vocab-empty"] = semb([kv_arr("tokenizer.vocab", T_STR, [])] + index_keys(ix))
    bad = dict(ix, offsets=ix["offsets"][:-1])
    out["index-offsets-count"] = semb(tok_keys(v) + index_keys(bad))
    bad = dict(ix, all=ix["all"][:48])
    out["index-all-not-pow2"] = semb(tok_keys(v) + index_keys(bad))
    bad = dict(ix, all=ix["all"][:16])
    out["index-all-too-small"] = semb(tok_keys(v) + index_keys(bad))
    bad = dict(ix, cont=ix["cont"] + [0] * 8)
    out["index-cont-not-pow2"] = semb(tok_keys(v) + index_keys(bad))
    bad = dict(ix, cont=ix["cont"] * 8)
    out["index-cont-too-big"] = semb(tok_keys(v) + index_keys(bad))
    for name, f in (("first", lambda o: [3] + o[1:]), ("middle", lambda o: o[:5] + [o[5] + 1] + o[6:]),
                    ("last-short", lambda o: o[:-1] + [o[-1] + 1]), ("past-end", lambda o: o[:-1] + [1 << 20])):
        out["index-offsets-" + name] = semb(tok_keys(v) + index_keys(dict(ix, offsets=f(list(ix["offsets"])))))
    out["index-max-wrong"] = semb(tok_keys(v) + index_keys(dict(ix, all_max=ix["all_max"] + 1)))
    out["index-cont-cap-low"] = semb(tok_keys(v) + index_keys(dict(ix, cont=[])))
    out["index-cont-when-none"] = semb(tok_keys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "ab"]) +
                                       index_keys(dict(index(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "ab"]), cont=[0] * 16)))
    for name, val in (("above-vocab", 999), ("wrong-token", 1), ("empty", 0)):
        a = list(ix["all"])
        k = next(i for i, x in enumerate(a) if x) if name == "empty" else next(i for i, x in enumerate(a) if not x)
        a[k] = val
        out["index-slot-" + name] = semb(tok_keys(v) + index_keys(dict(ix, all=a)))
    c = list(ix["cont"])
    c[next(i for i, x in enumerate(c) if x)] = 3
    out["index-cont-slot-wrong"] = semb(tok_keys(v) + index_keys(dict(ix, cont=c)))
    return out


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "corpus", "semb")
    os.makedirs(d, exist_ok=True)
    for name, b in seeds().items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(b)
    print("gen_semb: %d seeds in %s" % (len(seeds()), d))


if __name__ == "__main__":
    main()
