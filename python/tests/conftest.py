"""Shared fixtures: the repository, the CLI built from the same sources, models and real sentences.

The CLI is found as $SEMBED_CLI, else <repo>/build-python/sembed, else <repo>/build/sembed. Without
one, the comparisons with `sembed embed` are skipped locally and fail under CI (CI=true)."""
import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import sembed

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MINI = os.path.join(REPO, "models", "sembed-mini", "sembed-mini.semb")
TINY_SRC = os.path.join(REPO, "tests", "fixtures", "bert-tiny")
sys.path.insert(0, os.path.join(REPO, "tools"))
from datafile import data_file  # noqa: E402  (the repository's one lookup rule: SEMBED_DATA_DIR, data/, ../shared/data)

# STS-B dev is vendored in data/; STS12 is found only where the shared data is (None otherwise).
STSB_DEV = data_file("sts/STSBenchmark/sts-dev.csv", required=False) or ""
_STS12_INPUT = data_file("sts/STS12-en-test/STS.input.MSRvid.txt", required=False)
STS12_DIR = os.path.dirname(_STS12_INPUT) if _STS12_INPUT else None


def _find_cli():
    env = os.environ.get("SEMBED_CLI")
    if env:
        return env
    for d in ("build-python", "build"):
        p = os.path.join(REPO, d, "sembed")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


@pytest.fixture(scope="session")
def cli():
    p = _find_cli()
    if p is None:
        if os.environ.get("CI"):
            pytest.fail("no sembed CLI (set SEMBED_CLI or build build-python/sembed)")
        pytest.skip("no sembed CLI built")
    return p


def run_cli(cli, args, stdin=None):
    r = subprocess.run([cli] + args, input=stdin, capture_output=True)
    assert r.returncode == 0, f"sembed {' '.join(args)} failed ({r.returncode}): {r.stderr.decode()[-2000:]}"
    return r.stdout


def cli_embed(cli, model, texts, extra=()):
    """`sembed embed -m MODEL -f npy` over texts on stdin (one per line) -> (n, dim) float32."""
    data = "".join(t + "\n" for t in texts).encode()
    out = run_cli(cli, ["embed", "-m", model, "-f", "npy"] + list(extra), stdin=data)
    return np.load(io.BytesIO(out))


@pytest.fixture(scope="session")
def mini_path():
    assert os.path.isfile(MINI), f"the default model is missing: {MINI}"
    return MINI


@pytest.fixture(scope="session")
def mini(mini_path):
    m = sembed.Model(mini_path)
    yield m
    m.close()


@pytest.fixture(scope="session")
def tiny_paths(tmp_path_factory):
    """The bert-tiny sentence-transformers fixture converted with sembed.convert: f32 and q8."""
    d = tmp_path_factory.mktemp("tiny")
    out = {}
    for dt in ("f32", "q8"):
        out[dt] = sembed.convert(TINY_SRC, str(d / f"tiny-{dt}.semb"), dtype=dt)
    return out


def _real_sentences():
    sents = []
    if os.path.isfile(STSB_DEV):
        with open(STSB_DEV, encoding="utf-8") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 7:
                    sents += [parts[5], parts[6]]
    if not sents:  # fallback when no STS-B dev file is found (it is vendored in data/)
        sents = [f"sentence number {i} is about {w}." for i, w in
                 enumerate(["cats", "dogs", "the stock market", "a man playing a guitar", "rain"] * 40)]
    return sents


SENTENCES = _real_sentences()


@pytest.fixture(scope="session")
def sentences():
    return SENTENCES[:300]


@pytest.fixture(scope="session")
def copy_file(tmp_path_factory):
    def make(src, name):
        d = tmp_path_factory.mktemp("copy")
        p = d / name
        shutil.copyfile(src, p)
        return str(p)
    return make
