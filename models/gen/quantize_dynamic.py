"""Dynamic int8 quantization of an fp32 ONNX graph, written with the `onnx` package only (ONNX
Runtime's Python quantizer is not installable here). It rewrites every MatMul whose second input is
a 2-D float initializer into the pattern ORT's dynamic quantizer (QOperator format) produces:

    x_q, x_scale, x_zp = DynamicQuantizeLinear(x)          # one per activation, shared
    y_i32 = MatMulInteger(x_q, W_q, x_zp, W_zp)             # W_q int8 (or uint8) [in, out]
    y     = Mul(Cast(y_i32, to=FLOAT), Mul(x_scale, W_scale))  # keeps the MatMul's output name
    (the original bias Add, if any, stays as it was)

Weights: symmetric int8 per tensor (default) or per output channel (--per-channel):
scale = max|W| / 127, q = clip(round(W / scale), -127, 127), zero point 0. --weight-type uint8
gives asymmetric uint8 (scale = (max(W,0) - min(W,0)) / 255, zero point = round(-min/scale)), or
with --symmetric uint8 with zero point 128. The graph runs in onnxruntime(-node); sembed imports it
keeping the int8 weights.

--expect FILE writes what an importer must recover, in safetensors: for every quantized weight whose
transpose equals a tensor of --oracle (the twin's model.safetensors), `NAME` as I8 [out, in] =
(W_q - W_zp)^T (when that fits int8) and `NAME.scale` as F32 [out].

    /usr/bin/python3 models/gen/quantize_dynamic.py IN.onnx OUT.onnx [--per-channel]
        [--weight-type int8|uint8] [--symmetric] [--oracle model.safetensors --expect q.safetensors]
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_read import read_safetensors  # noqa: E402


# read_safetensors: models/gen/st_read.py (also imported from here by ort_fuse.py)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        dt = {np.dtype("float32"): "F32", np.dtype("int8"): "I8"}[a.dtype]
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def quantize_weight(w, per_channel, wtype, symmetric):
    """w: float32 [in, out] -> (q, scale, zero_point); scale/zp are scalars or [out] arrays."""
    axis = 0 if per_channel else None
    if wtype == "int8" or symmetric:
        amax = np.abs(w).max(axis=axis)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(w / scale), -127, 127)
        if wtype == "int8":
            return q.astype(np.int8), scale, np.zeros_like(scale, dtype=np.int8)
        return (q + 128).astype(np.uint8), scale, np.full_like(scale, 128, dtype=np.uint8)
    lo = np.minimum(w.min(axis=axis), 0.0)
    hi = np.maximum(w.max(axis=axis), 0.0)
    scale = np.where(hi > lo, (hi - lo) / 255.0, 1.0).astype(np.float32)
    zp = np.clip(np.round(-lo / scale), 0, 255)
    q = np.clip(np.round(w / scale) + zp, 0, 255).astype(np.uint8)
    return q, scale, zp.astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--per-channel", action="store_true")
    ap.add_argument("--weight-type", default="int8", choices=["int8", "uint8"])
    ap.add_argument("--symmetric", action="store_true", help="uint8 with zero point 128")
    ap.add_argument("--oracle", help="the twin's model.safetensors, to name the weights in --expect")
    ap.add_argument("--expect", help="write the expected int8 weights and scales here")
    a = ap.parse_args()

    model = onnx.load(a.input)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    oracle = read_safetensors(a.oracle) if a.oracle else {}
    expect = {}
    dq = {}          # activation -> (q, scale, zp) names
    new_nodes, new_inits, drop = [], [], set()
    users = {}
    for n in g.node:
        for i in n.input:
            users[i] = users.get(i, 0) + 1

    for n in g.node:
        if n.op_type != "MatMul" or n.domain not in ("", "ai.onnx") or n.input[1] not in inits:
            new_nodes.append(n)
            continue
        wt = inits[n.input[1]]
        w = numpy_helper.to_array(wt)
        if w.ndim != 2 or w.dtype != np.float32:
            new_nodes.append(n)
            continue
        x = n.input[0]
        if x not in dq:
            base = x.replace("/", "_").strip("_")
            names = (base + "_quantized", base + "_scale", base + "_zero_point")
            new_nodes.append(helper.make_node("DynamicQuantizeLinear", [x], list(names), name=base + "_QuantizeLinear"))
            dq[x] = names
        xq, xs, xz = dq[x]
        q, scale, zp = quantize_weight(w, a.per_channel, a.weight_type, a.symmetric)
        wn = n.input[1]
        new_inits += [numpy_helper.from_array(q, wn + "_quantized"),
                      numpy_helper.from_array(np.asarray(scale, np.float32), wn + "_scale"),
                      numpy_helper.from_array(np.asarray(zp), wn + "_zero_point")]
        users[wn] -= 1
        if users[wn] == 0:
            drop.add(wn)
        out = n.output[0]
        nm = (n.name or out).replace("/", "_").strip("_")
        new_nodes += [
            helper.make_node("MatMulInteger", [xq, wn + "_quantized", xz, wn + "_zero_point"], [out + "_i32"], name=nm + "_quant"),
            helper.make_node("Cast", [out + "_i32"], [out + "_f32"], to=TensorProto.FLOAT, name=nm + "_cast"),
            helper.make_node("Mul", [xs, wn + "_scale"], [out + "_scales"], name=nm + "_scales_mul"),
            helper.make_node("Mul", [out + "_f32", out + "_scales"], [out], name=nm + "_output_scale_mul"),
        ]
        for k, v in oracle.items():
            if v.ndim == 2 and v.shape == w.T.shape and np.array_equal(v.view(np.uint32), np.ascontiguousarray(w.T).view(np.uint32)):
                d = q.astype(np.int32) - zp.astype(np.int32)
                if d.min() >= -128 and d.max() <= 127:
                    expect[k] = np.ascontiguousarray(d.T.astype(np.int8))
                expect[k + ".scale"] = np.broadcast_to(np.asarray(scale, np.float32), (w.shape[1],)).copy()
                break

    kept = [t for t in g.initializer if t.name not in drop]
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    del g.node[:]
    g.node.extend(new_nodes)
    onnx.checker.check_model(model)
    onnx.save(model, a.output)
    if a.expect:
        write_safetensors(a.expect, expect)
    n_q = sum(1 for n in new_nodes if n.op_type == "MatMulInteger")
    print(f"quantized {n_q} MatMul(s) -> {a.output}; {len(expect) // 2} named in --expect", file=sys.stderr)


if __name__ == "__main__":
    main()
