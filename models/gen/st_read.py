"""Read a safetensors file into numpy arrays (format: 8-byte little-endian header length, a JSON
header of name -> {dtype, shape, data_offsets}, then the data; https://github.com/huggingface/safetensors).
The one reader the Python generators and benchmark scripts share."""
import json
import struct

import numpy as np

_FLOAT = {"F32": "<f4", "F16": "<f2", "F64": "<f8"}
_INT = {"I8": "i1", "U8": "u1", "I16": "<i2", "I32": "<i4", "I64": "<i8"}


def read_safetensors(path, floats_as_f32=True):
    """{name: array}. Float tensors (F32, F16, BF16, F64) come back as float32 when floats_as_f32,
    else in their own type (BF16 as float32 always: numpy has none); integer tensors keep theirs."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = v["dtype"]
        if dt == "BF16":
            arr = (np.frombuffer(data[a:b], dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        elif dt in _FLOAT:
            arr = np.frombuffer(data[a:b], dtype=_FLOAT[dt])
            if floats_as_f32:
                arr = arr.astype(np.float32)
        elif dt in _INT:
            arr = np.frombuffer(data[a:b], dtype=_INT[dt])
        else:
            raise ValueError(f"{path}: tensor {k} has dtype {dt}, which this reader does not know")
        out[k] = arr.reshape(v["shape"])
    return out
