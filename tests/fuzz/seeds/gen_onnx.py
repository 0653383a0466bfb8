#!/usr/bin/env python3
"""Seeds for fuzz_onnx (tests/fuzz/corpus/onnx/seed-ext-*): the nano BERT of the corpus
(nano_model.onnx) with its initializers moved to external data (onnx/docs/ExternalData.md: keys
location, offset, length) inside the scratch model folder that tests/fuzz/fuzz_onnx.c sets up
(weights.bin 64 KiB, sub/w.bin 4 KiB, escape.bin a symlink out of the folder, dir.bin a folder),
then one defect each in location, offset or length; plus typed-field (int32_data) variants.
Needs the onnx package (Debian: python3-onnx, or the one installed for /usr/bin/python3).
Deterministic. Usage: /usr/bin/python3 tests/fuzz/seeds/gen_onnx.py [OUT_DIR]
"""
import copy
import os
import sys

import onnx
from onnx import TensorProto

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = os.path.join(HERE, "..", "corpus", "onnx", "nano_model.onnx")


def externalize(m, location="weights.bin", offsets=True, lengths=True, only=None, tweak=None):
    m = copy.deepcopy(m)
    off = 0
    for i, t in enumerate(m.graph.initializer):
        if only is not None and i not in only:
            continue
        n = len(t.raw_data)
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        kv = [("location", location)]
        if offsets:
            kv.append(("offset", str(off)))
        if lengths:
            kv.append(("length", str(n)))
        if tweak:
            kv = tweak(kv, n)
        del t.external_data[:]
        for k, v in kv:
            e = t.external_data.add()
            if k is not None:
                e.key = k
            if v is not None:
                e.value = v
        off += (n + 63) // 64 * 64
    return m


def seeds(base):
    s = {}
    s["ext-all"] = externalize(base)
    s["ext-location-only"] = externalize(base, offsets=False, lengths=False)
    s["ext-sub"] = externalize(base, location="sub/w.bin", offsets=False)
    s["ext-one"] = externalize(base, only={0})
    for name, loc in (("dotdot", "../outside.bin"), ("absolute", "/etc/hostname"), ("empty", ""),
                      ("double-slash", "sub//w.bin"), ("backslash", "sub\\w.bin"), ("escape", "escape.bin"),
                      ("missing", "missing.bin"), ("folder", "dir.bin"), ("long", "a/" * 520 + "w.bin"),
                      ("dot", "./weights.bin")):
        s["ext-loc-" + name] = externalize(base, location=loc)
    for name, tw in (("past-end", lambda kv, n: [kv[0], ("offset", str(65536 - n + 4)), kv[2]]),
                     ("far", lambda kv, n: [kv[0], ("offset", "18446744073709551615"), kv[2]]),
                     ("overflow", lambda kv, n: [kv[0], ("offset", "99999999999999999999"), kv[2]]),
                     ("not-decimal", lambda kv, n: [kv[0], ("offset", "0x10"), kv[2]]),
                     ("empty-offset", lambda kv, n: [kv[0], ("offset", ""), kv[2]]),
                     ("length", lambda kv, n: kv[:2] + [("length", str(n + 4))]),
                     ("no-location", lambda kv, n: kv[1:]),
                     ("keyless", lambda kv, n: [(None, "x"), ("checksum", None)] + kv)):
        s["ext-" + name] = externalize(base, tweak=tw)
    both = externalize(base)
    both.graph.initializer[0].raw_data = b"\0" * 4
    s["ext-and-raw"] = both
    typed = externalize(base, only={1})
    typed.graph.initializer[1].float_data.extend([0.0])
    s["ext-and-typed"] = typed
    # typed fields: INT8 / UINT8 / FLOAT16 one element per int32 (onnx.proto), in and out of range
    for name, dt, vals in (("int8", TensorProto.INT8, [-128, 127]), ("uint8", TensorProto.UINT8, [0, 255]),
                           ("f16", TensorProto.FLOAT16, [0, 65535]), ("int8-range", TensorProto.INT8, [128, 0]),
                           ("f16-range", TensorProto.FLOAT16, [-1, 0]), ("int64", TensorProto.INT64, None),
                           ("double", TensorProto.DOUBLE, None), ("count", TensorProto.FLOAT, [1.0])):
        m = copy.deepcopy(base)
        t = m.graph.initializer[0]
        t.ClearField("raw_data")
        del t.dims[:]
        t.dims.extend([2])
        t.data_type = dt
        if dt == TensorProto.INT64:
            t.int64_data.extend([1, 2])
        elif dt == TensorProto.DOUBLE:
            t.double_data.extend([1.0, 2.0])
        elif dt == TensorProto.FLOAT:
            t.float_data.extend(vals)
        else:
            t.int32_data.extend(vals)
        s["typed-" + name] = m
    # shapes so_tensor_info refuses, raw_data beside typed data, INT32 in its own field
    for name, dims, dt in (("dims9", [1] * 9, TensorProto.FLOAT), ("negative-dim", [-1, 8], TensorProto.FLOAT),
                           ("huge-dim", [1 << 41], TensorProto.FLOAT), ("numel", [1 << 30, 1 << 30], TensorProto.FLOAT),
                           ("bytes", [1 << 35], TensorProto.FLOAT), ("int32", [2], TensorProto.INT32),
                           ("raw-and-typed", [2], TensorProto.FLOAT)):
        m = copy.deepcopy(base)
        t = m.graph.initializer[0]
        t.ClearField("raw_data")
        del t.dims[:]
        t.dims.extend(dims)
        t.data_type = dt
        if dt == TensorProto.INT32:
            t.int32_data.extend([1, -2])
        if name == "raw-and-typed":
            t.raw_data = b"\0" * 8
            t.float_data.extend([1.0, 2.0])
        s["shape-" + name] = m
    return s


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "corpus", "onnx")
    os.makedirs(d, exist_ok=True)
    base = onnx.load(BASE, load_external_data=False)
    ss = seeds(base)
    for name, m in ss.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(m.SerializeToString())
    print("gen_onnx: %d seeds in %s" % (len(ss), d))


if __name__ == "__main__":
    main()
