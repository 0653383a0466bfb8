"""A small, independent writer for .semb files (docs/format.md, version 1), in Python.

Used to build test fixtures without the C converter (models/gen/golden.py), and to craft hostile
files for reader tests: build() returns the bytes so a test can corrupt them before writing.
Checksums are XXH3-64 seed 0 from the system libxxhash (ctypes), the same library the C code uses.

    w = SembWriter()
    w.add("general.architecture", "bert")              # type inferred: str, bool, int (u32), float (f32)
    w.add("bert.layer_norm_eps", 1e-12, "f32")          # or explicit
    w.add("tokenizer.vocab", ["[PAD]", "a"], "arr_str")
    w.add_tensor("embeddings.word_embeddings.weight", np_array, "f16")
    w.write("model.semb")                               # temp file + rename
"""
import ctypes
import ctypes.util
import os
import struct
import tempfile

import numpy as np

_xxh = ctypes.CDLL(ctypes.util.find_library("xxhash") or "libxxhash.so.0")
_xxh.XXH3_64bits.restype = ctypes.c_uint64
_xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def xxh3_64(b):
    return _xxh.XXH3_64bits(bytes(b), len(b))


TYPES = {"u8": 0, "i8": 1, "u16": 2, "i16": 3, "u32": 4, "i32": 5, "u64": 6, "i64": 7,
         "f32": 8, "f64": 9, "bool": 10, "str": 11, "arr": 12}
_FMT = {"u8": "<B", "i8": "<b", "u16": "<H", "i16": "<h", "u32": "<I", "i32": "<i", "u64": "<Q",
        "i64": "<q", "f32": "<f", "f64": "<d", "bool": "<B"}
DTYPES = {"f32": 0, "f16": 1, "bf16": 2, "i32": 3, "i8": 4, "q8_row": 5}


def _string(s):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack("<Q", len(b)) + b + b"\0"


def _align64(x):
    return (x + 63) // 64 * 64


def f32_to_bf16_bits(a):
    """Round-to-nearest-even float32 -> bfloat16 bit patterns (uint16)."""
    x = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    r = (x + 0x7FFF + ((x >> 16) & 1)) >> 16
    return r.astype(np.uint16)


def bf16_bits_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def quantize_q8_row(a):
    """Per-row symmetric int8: scale = max|row| / 127 (1 for all-zero rows). Returns (q, scale)."""
    a = np.asarray(a, dtype=np.float32)
    rows = a.reshape(-1, a.shape[-1])
    amax = np.abs(rows).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(rows / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def encode_tensor(a, dtype):
    """Bytes of array a stored as dtype, and the float32 values a reader will see."""
    a = np.asarray(a)
    if dtype == "f32":
        v = np.ascontiguousarray(a, dtype=np.float32)
        return v.tobytes(), v
    if dtype == "f16":
        v = np.ascontiguousarray(a, dtype=np.float16)
        return v.tobytes(), v.astype(np.float32)
    if dtype == "bf16":
        bits = f32_to_bf16_bits(a)
        return bits.tobytes(), bf16_bits_to_f32(bits).reshape(a.shape)
    if dtype == "i32":
        v = np.ascontiguousarray(a, dtype=np.int32)
        return v.tobytes(), v
    if dtype == "i8":
        v = np.ascontiguousarray(a, dtype=np.int8)
        return v.tobytes(), v
    if dtype == "q8_row":
        q, scale = quantize_q8_row(a)
        qb = q.tobytes()
        data = qb + b"\0" * (_align64(len(qb)) - len(qb)) + scale.astype("<f4").tobytes()
        return data, (q.astype(np.float32) * scale[:, None]).reshape(a.shape)
    raise ValueError(dtype)


class SembWriter:
    def __init__(self):
        self.kv = []       # (key, type, value, elem_type)
        self.tensors = []  # (name, dtype, dims, bytes)

    def add(self, key, value, typ=None):
        if typ is None:
            if isinstance(value, bool):
                typ = "bool"
            elif isinstance(value, int):
                typ = "u32"
            elif isinstance(value, float):
                typ = "f32"
            elif isinstance(value, str):
                typ = "str"
            else:
                raise TypeError(f"give a type for {key}")
        self.kv.append((key, typ, value))

    def add_tensor(self, name, a, dtype="f32"):
        """Store a (numpy/torch) array; returns the float32 values as a reader decodes them."""
        if hasattr(a, "detach"):
            a = a.detach().cpu().numpy()
        data, decoded = encode_tensor(a, dtype)
        dims = list(np.asarray(a).shape) or [1]
        self.tensors.append((name, dtype, dims, data))
        return decoded

    def _kv_bytes(self, key, typ, value):
        out = _string(key)
        if typ == "str":
            return out + struct.pack("<I", TYPES["str"]) + _string(value)
        if typ == "arr_str":
            out += struct.pack("<IIQ", TYPES["arr"], TYPES["str"], len(value))
            return out + b"".join(_string(s) for s in value)
        if typ.startswith("arr_"):
            et = typ[4:]
            out += struct.pack("<IIQ", TYPES["arr"], TYPES[et], len(value))
            return out + b"".join(struct.pack(_FMT[et], v) for v in value)
        return out + struct.pack("<I", TYPES[typ]) + struct.pack(_FMT[typ], value)

    def _layout(self):
        kv = b"".join(self._kv_bytes(*e) for e in self.kv)
        offsets, off = [], 0
        for (_, _, _, data) in self.tensors:
            offsets.append(off)
            off = _align64(off + len(data))
        data_size = off
        tdir = b""
        for (name, dtype, dims, data), o in zip(self.tensors, offsets):
            tdir += _string(name) + struct.pack("<II", DTYPES[dtype], len(dims))
            tdir += b"".join(struct.pack("<Q", d) for d in dims)
            tdir += struct.pack("<QQQ", o, len(data), xxh3_64(data))
        dir_end = 56 + len(kv) + len(tdir)
        data_offset = _align64(dir_end + 8)
        head = b"SEMB" + struct.pack("<III", 1, 0x01020304, 0)
        head += struct.pack("<QQQQQ", len(self.kv), len(self.tensors), dir_end, data_offset, data_size)
        head += kv + tdir
        assert len(head) == dir_end
        head += struct.pack("<Q", xxh3_64(head))
        return head + b"\0" * (data_offset - len(head)), offsets, data_size

    def _chunks(self):
        head, offsets, data_size = self._layout()
        yield head
        pos = 0
        for (_, _, _, data), o in zip(self.tensors, offsets):
            yield b"\0" * (o - pos)
            yield data
            pos = o + len(data)
        yield b"\0" * (data_size - pos)

    def build(self):
        """The whole file as bytes (for tests that corrupt it)."""
        return b"".join(self._chunks())

    def write(self, path):
        """Write to a temp file in the same folder, fsync, rename."""
        d = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
        try:
            with os.fdopen(fd, "wb") as f:
                for c in self._chunks():
                    f.write(c)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def write_atomic(path, data):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=d)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
