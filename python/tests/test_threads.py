"""Python threads embedding at once (each on its own library context) give what one thread gives;
closing while other threads embed neither crashes nor frees memory in use."""
import threading

import numpy as np
import pytest

import sembed


def test_threads_give_the_same_result(mini, sentences):
    ref = mini.encode(sentences)
    n_threads = 6
    results, errors = [None] * n_threads, []

    def work(i):
        try:
            # different batch sizes and slices on each thread, several rounds
            outs = []
            for r in range(3):
                outs.append(mini.encode(sentences, batch_size=8 + 8 * i))
            results[i] = outs
        except BaseException as e:
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, f"a thread failed: {errors[0]!r}"
    for i, outs in enumerate(results):
        for r, o in enumerate(outs):
            same = o.view(np.uint32) == ref.view(np.uint32)
            assert same.all(), f"thread {i} round {r}: {int((~same).sum())} floats differ from one thread's result"
    assert mini.stats()["n_inputs"] >= n_threads * 3 * len(sentences)


def test_close_while_threads_embed(mini_path, sentences):
    m = sembed.Model(mini_path)
    started = threading.Barrier(5)
    outcome = []

    def work():
        started.wait()
        try:
            for _ in range(20):
                m.encode(sentences[:64])
            outcome.append("done")
        except ValueError as e:
            assert "closed" in str(e)
            outcome.append("closed")
        except BaseException as e:  # anything else is a failure
            outcome.append(repr(e))

    ts = [threading.Thread(target=work) for _ in range(4)]
    for t in ts:
        t.start()
    started.wait()
    m.close()  # waits for calls in flight, then frees
    for t in ts:
        t.join()
    assert len(outcome) == 4 and all(o in ("done", "closed") for o in outcome), outcome


def test_library_calls_release_the_gil():
    # ctypes.CDLL (unlike PyDLL) drops the GIL around each foreign call.
    import ctypes
    from sembed import _lib
    assert isinstance(_lib.lib, ctypes.CDLL) and not isinstance(_lib.lib, ctypes.PyDLL)


def test_gil_is_released_while_the_library_embeds(mini, sentences):
    # With a huge switch interval a thread only gives up the GIL when it blocks or calls out with
    # the GIL released. The main thread polls a flag set around the library call: it can only see
    # the flag set if the embedding thread released the GIL for the call. (No timing is asserted.)
    import sys
    import time
    from sembed import _lib
    real = _lib.lib.sembed_embed_inputs
    state = {"inside": False, "seen": 0}

    def wrapped(*args):
        state["inside"] = True
        try:
            return real(*args)
        finally:
            state["inside"] = False

    old = sys.getswitchinterval()
    _lib.lib.sembed_embed_inputs = wrapped
    sys.setswitchinterval(100.0)
    try:
        t = threading.Thread(target=lambda: mini.encode(sentences * 2))
        t.start()
        while t.is_alive():
            if state["inside"]:
                state["seen"] += 1
            time.sleep(0.001)
        t.join()
    finally:
        sys.setswitchinterval(old)
        _lib.lib.sembed_embed_inputs = real
    assert state["seen"] > 0, "the main thread never ran while the library was embedding: the GIL was held"
