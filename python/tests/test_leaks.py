"""Reference counts and memory stay flat over many calls (tracemalloc for Python objects, RSS for
everything including the library's allocations)."""
import gc
import sys
import tracemalloc

import numpy as np

import sembed


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_calls(m, sentences, k):
    for _ in range(k):
        m.encode(sentences)
        m.encode(sentences[0])
        m.encode_pairs(sentences[0], sentences[1])
        m.tokenize(sentences[:2])
        m.similarity(sentences[0], sentences[1])


def test_tracemalloc_and_rss_stable(mini, sentences):
    batch = sentences[:32]
    run_calls(mini, batch, 20)  # warm: contexts, caches, packed weights
    gc.collect()
    tracemalloc.start()
    snap0 = tracemalloc.take_snapshot()
    rss0 = rss_kib()
    run_calls(mini, batch, 200)
    gc.collect()
    snap1 = tracemalloc.take_snapshot()
    rss1 = rss_kib()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in snap1.compare_to(snap0, "filename"))
    # 200 rounds x 5 calls: a leak of one object per call would be > 50 KiB
    assert grown < 64 * 1024, f"Python memory grew by {grown} bytes over 1000 calls"
    assert rss1 - rss0 < 8 * 1024, f"RSS grew by {rss1 - rss0} KiB over 1000 calls"


def test_refcounts_of_inputs_unchanged(mini, sentences):
    batch = list(sentences[:16])
    before = [sys.getrefcount(s) for s in batch]
    for _ in range(50):
        mini.encode(batch)
    after = [sys.getrefcount(s) for s in batch]
    assert before == after, "encode kept references to its input strings"
    out = mini.encode(batch)
    assert sys.getrefcount(out) == 2, "the result array has extra references"


def test_models_opened_and_closed_do_not_leak(mini_path):
    for _ in range(5):
        with sembed.Model(mini_path) as m:
            m.encode("warm")
    gc.collect()
    r0 = rss_kib()
    for _ in range(30):
        with sembed.Model(mini_path) as m:
            m.encode(["a", "b"])
    gc.collect()
    r1 = rss_kib()
    assert r1 - r0 < 16 * 1024, f"RSS grew by {r1 - r0} KiB over 30 load/close cycles"
