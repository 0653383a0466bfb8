#!/usr/bin/env python3
"""Per-call cost of the binding, the measurement behind "ctypes" in docs/python.md:

  - dispatch: one foreign call that does no work (sembed_embed_inputs with n = 0), through ctypes
    and through cffi's ABI mode (Debian python3-cffi), on the same library;
  - encode of 1 sentence, timed inside the process: the whole call and the library call within it
    (median of 1,000), so the binding's own work is their difference;
  - preparing 10,000 sentences (UTF-8 encoding, packing, the sembed_input array) without embedding.

    /usr/bin/python3 python/bench/bench_overhead.py [MODEL.semb]
"""
import ctypes as C
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
try:
    import sembed
except ImportError:
    sys.path.insert(0, os.path.join(REPO, "python"))
    import sembed
import numpy as np
from sembed import _lib
from sembed.model import _pack, _INPUT_DTYPE


def per_call(fn, n, repeats=5):
    # The minimum over repeats: on a shared machine, the repeat least disturbed by other work.
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "models", "sembed-mini", "sembed-mini.semb")
    m = sembed.Model(path, threads=1)
    ctx_key = m._acquire(None, 32)
    ctx = ctx_key[0]
    out = np.empty((1, m.dimension), np.float32)
    inp = np.zeros(1, _INPUT_DTYPE)
    f = _lib.lib.sembed_embed_inputs
    t_ctypes = per_call(lambda: f(ctx, inp.ctypes.data, 0, out.ctypes.data), 20000)
    res = {"ctypes_noop_us": t_ctypes * 1e6}
    try:
        import cffi
        ffi = cffi.FFI()
        ffi.cdef("int sembed_embed_inputs(void *ctx, const void *in, size_t n, float *out);")
        cl = ffi.dlopen(sembed.LIBRARY_PATH)
        g = cl.sembed_embed_inputs
        pc, pi, po = ffi.cast("void *", ctx.value), ffi.cast("void *", inp.ctypes.data), ffi.cast("float *", out.ctypes.data)
        res["cffi_noop_us"] = per_call(lambda: g(pc, pi, 0, po), 20000) * 1e6
    except ImportError:
        res["cffi_noop_us"] = None
    s = "A man is playing a guitar."
    m._release(ctx_key)
    # encode of 1 sentence, timed inside the process: the whole call, and the library call within
    # it (a timing wrapper around the ctypes function); the difference is the binding's own work.
    real = _lib.lib.sembed_embed_inputs
    inner = []

    def timed(*args):
        t = time.perf_counter()
        try:
            return real(*args)
        finally:
            inner.append(time.perf_counter() - t)
    _lib.lib.sembed_embed_inputs = timed
    outer = []
    try:
        m.encode(s)
        inner.clear()
        for _ in range(1000):
            t = time.perf_counter()
            m.encode(s)
            outer.append(time.perf_counter() - t)
    finally:
        _lib.lib.sembed_embed_inputs = real
    diff = sorted(o - i for o, i in zip(outer, inner))
    lib_med = sorted(inner)[len(inner) // 2]
    res.update(encode1_library_us=lib_med * 1e6, encode1_python_us=sorted(outer)[len(outer) // 2] * 1e6,
               encode1_outside_call_us=diff[len(diff) // 2] * 1e6)
    sents = [f"sentence {i}: a man is playing a guitar on the street near the market." for i in range(10000)]

    def prep():
        e = [t.encode("utf-8", "surrogatepass") for t in sents]
        x = np.zeros(len(e), _INPUT_DTYPE)
        b, x["a"], x["a_len"] = _pack(e)
        return b, x
    res["prepare_10k_ms"] = per_call(prep, 4) * 1e3
    for k, v in res.items():
        print(f"{k:24s} {v:.3f}" if v is not None else f"{k:24s} n/a")
    m.close()


if __name__ == "__main__":
    main()
