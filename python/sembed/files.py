"""sembed.inspect, sembed.convert: the .semb file and checkpoint import."""
import ctypes as C
import os
import struct

import numpy as np

from ._lib import lib, check, clear_messages, SembedError, CONVERT_PROGRESS, Tensor
from .model import _fspath

# enum sembed_type -> (struct format, size) for scalars; numpy dtype for arrays.
_SCALAR = {0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4), 6: ("<Q", 8),
           7: ("<q", 8), 8: ("<f", 4), 9: ("<d", 8), 10: ("<?", 1)}
_NP = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<u8", 7: "<i8", 8: "<f4", 9: "<f8", 10: "?"}
_STRING, _ARRAY = 11, 12


def _str_array(raw, count):
    # Strings in an array are stored back to back as u64 n | n bytes | 0x00 (docs/format.md).
    out, p = [], 0
    for _ in range(count):
        (n,) = struct.unpack_from("<Q", raw, p)
        out.append(raw[p + 8:p + 8 + n].decode("utf-8", "replace"))
        p += 8 + n + 1
    return out


def _read_metadata(f):
    md = {}
    for i in range(lib.sembed_file_n_kv(f)):
        key = lib.sembed_file_kv_key(f, i).decode()
        t = lib.sembed_file_kv_type(f, i)
        if t == _STRING:
            p, n = C.c_void_p(), C.c_uint64()
            check(lib.sembed_file_get_str(f, key.encode(), C.byref(p), C.byref(n)), f"metadata '{key}'")
            md[key] = C.string_at(p, n.value).decode("utf-8", "replace")
        elif t == _ARRAY:
            elem, count = C.c_int(), C.c_uint64()
            check(lib.sembed_file_kv_array_info(f, i, C.byref(elem), C.byref(count)), f"metadata '{key}'")
            p, nb = C.c_void_p(), C.c_uint64()
            check(lib.sembed_file_kv_arr_bytes(f, i, C.byref(p), C.byref(nb)), f"metadata '{key}'")
            raw = C.string_at(p, nb.value) if nb.value else b""
            if elem.value == _STRING:
                md[key] = _str_array(raw, count.value)
            elif elem.value in _NP:
                md[key] = np.frombuffer(raw, dtype=_NP[elem.value], count=count.value).tolist()
            else:
                md[key] = raw
        elif t in _SCALAR:
            fmt, size = _SCALAR[t]
            (md[key],) = struct.unpack(fmt, C.string_at(lib.sembed_file_kv_data(f, i), size))
        else:
            md[key] = None
    return md


def _tensors(f):
    out = []
    t = Tensor()
    for i in range(lib.sembed_file_n_tensors(f)):
        check(lib.sembed_file_tensor(f, i, C.byref(t)), f"tensor {i}")
        out.append({"name": t.name.decode(), "dtype": lib.sembed_dtype_name(t.dtype).decode(),
                    "shape": tuple(t.dims[:t.n_dims]), "offset": t.offset, "nbytes": t.nbytes,
                    "checksum": f"{t.checksum:016x}"})
    return out


def inspect(path, verify=False):
    """Read a .semb file's structure: ``{"path", "version", "size", "metadata": {key: value},
    "tensors": [{"name", "dtype", "shape", "offset", "nbytes", "checksum"}], "verified"}``.

    The file is validated (magic, version, checksums of the header and directory, every offset)
    but tensor bytes are read only with ``verify=True``, which recomputes every tensor checksum
    and raises SembedError naming the first bad tensor. ``verified`` is None without verify."""
    p = _fspath(path, "path")
    if not os.path.exists(p):
        raise FileNotFoundError(2, f"no such model file: '{p}'", p)
    f = C.c_void_p()
    clear_messages()
    check(lib.sembed_file_open(os.fsencode(p), C.byref(f)), f"cannot open '{p}'")
    try:
        info = {"path": p, "version": lib.sembed_file_version(f), "size": lib.sembed_file_size(f),
                "metadata": _read_metadata(f), "tensors": _tensors(f), "verified": None}
        if verify:
            bad = C.c_int64(-1)
            clear_messages()
            check(lib.sembed_file_verify(f, C.byref(bad)), f"'{p}' failed verification")
            info["verified"] = True
        return info
    finally:
        lib.sembed_file_free(f)


_DTYPES = {"f32": "f32", "float32": "f32", "f16": "f16", "float16": "f16", "bf16": "bf16", "q8": "q8_row",
           "q8_row": "q8_row", "int8": "q8_row"}


def convert(src, dst, dtype="q8", pooling=None, normalize=None, name=None, keep_mlm_head=False,
            progress=None):
    """Convert a checkpoint (HuggingFace / sentence-transformers folder or file, or an ONNX graph)
    into one .semb file, as ``sembed convert SRC -o DST --dtype DTYPE``.

    dtype: "q8" (int8 Linear weights with per-row scales; default), "f32", "f16", "bf16".
    pooling: None (what the source declares) or cls, cls_before_pooler, mean, max, first_last_avg.
    normalize: None (the source's), True or False. name: general.name (None: from the source).
    progress: optional callable(done_bytes, total_bytes).
    The output is written atomically: on failure dst is untouched. Returns dst."""
    s, d = _fspath(src, "src"), _fspath(dst, "dst")
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of q8, f32, f16, bf16, got {dtype!r}")
    if not os.path.exists(s):
        raise FileNotFoundError(2, f"no such checkpoint: '{s}'", s)
    if normalize is not None and not isinstance(normalize, bool):
        raise TypeError(f"normalize must be None or a bool, got {normalize!r}")
    if pooling is not None and not isinstance(pooling, str):
        raise TypeError(f"pooling must be None or a str, got {type(pooling).__name__}")
    p = lib.sembed_convert_default_params()
    p.src, p.out = os.fsencode(s), os.fsencode(d)
    p.dtype = lib.sembed_dtype_from_name(_DTYPES[dtype].encode())
    p.pooling = pooling.encode() if pooling else None
    p.normalize = -1 if normalize is None else int(normalize)
    p.name = name.encode() if name else None
    p.keep_mlm_head = bool(keep_mlm_head)
    errors = []
    if progress is not None:
        def cb(done, total, _ud):
            try:
                progress(done, total)
            except BaseException as e:  # reported after the call; never crosses into C
                errors.append(e)
        p.progress = CONVERT_PROGRESS(cb)
    clear_messages()
    check(lib.sembed_convert(C.byref(p)), f"cannot convert '{s}'")
    if errors:
        raise errors[0]
    return d


__all__ = ["inspect", "convert", "SembedError"]
