"""Cross-encoders from Python: Model.predict and Model.rank (sentence-transformers' CrossEncoder
API) on the PyTorch twin's fixtures (models/gen/rerank_fixture.py), against the twin's scores and
`sembed rerank`."""
import json
import math
import os
import subprocess

import pytest

import sembed
from conftest import REPO, run_cli


@pytest.fixture(scope="module")
def ce(tmp_path_factory):
    try:
        import torch  # noqa: F401
    except ImportError:
        pytest.skip("torch is not available: the cross-encoder fixture cannot be made")
    d = tmp_path_factory.mktemp("ce")
    subprocess.run(["/usr/bin/python3", os.path.join(REPO, "models", "gen", "rerank_fixture.py"), "--out", str(d)],
                   check=True, stdout=subprocess.DEVNULL)
    out = {}
    for name in ("ce-bert", "ce-bert3"):
        out[name] = sembed.convert(str(d / name), str(d / f"{name}.semb"), dtype="f32")
    with open(d / "expected.json", encoding="utf-8") as f:
        out["expected"] = json.load(f)
    return out


def test_predict_matches_the_twin(ce):
    exp = ce["expected"]
    q, docs = exp["query"], exp["docs"]
    with sembed.Model(ce["ce-bert"]) as m:
        assert m.num_labels == 1
        s = m.predict([(q, d) for d in docs])
        assert s.shape == (len(docs),)
        for i, row in enumerate(exp["models"]["ce-bert"]["logits"]):
            want = 1 / (1 + math.exp(-row[0]))  # one label: CrossEncoder's default Sigmoid
            assert abs(float(s[i]) - want) <= 1e-4, f"doc {i}: {s[i]} vs the twin's {want}"
        assert float(m.predict((q, docs[0]))) == float(s[0])
    with sembed.Model(ce["ce-bert3"]) as m:
        assert m.num_labels == 3
        s = m.predict([(q, d) for d in docs])
        assert s.shape == (len(docs), 3)
        for i, row in enumerate(exp["models"]["ce-bert3"]["logits"]):
            for k in range(3):
                assert abs(float(s[i, k]) - row[k]) <= 1e-4  # an NLI head: raw logits


def test_rank_order_and_cli(ce, cli):
    exp = ce["expected"]
    q, docs = exp["query"], exp["docs"]
    with sembed.Model(ce["ce-bert"]) as m:
        r = m.rank(q, docs, return_documents=True)
        assert sorted(x["corpus_id"] for x in r) == list(range(len(docs)))
        assert all(r[i]["score"] >= r[i + 1]["score"] for i in range(len(r) - 1))
        assert all(x["text"] == docs[x["corpus_id"]] for x in r)
        twin = [row[0] for row in exp["models"]["ce-bert"]["logits"]]
        assert [x["corpus_id"] for x in r] == sorted(range(len(docs)), key=lambda i: -twin[i])
        top = m.rank(q, docs, top_k=2)
        assert [x["corpus_id"] for x in top] == [x["corpus_id"] for x in r[:2]] and "text" not in top[0]
        assert m.rank(q, []) == []
        out = run_cli(cli, ["rerank", "-m", ce["ce-bert"], "--json", q] + docs).decode()
        cj = [json.loads(line) for line in out.splitlines() if line.strip()]  # one object per line
        by_index = {x["index"]: x["score"] for x in cj}
        for x in r:
            assert abs(by_index[x["corpus_id"]] - x["score"]) <= 1e-6, "Model.rank and `sembed rerank` disagree"


def test_cross_encoder_errors(ce, tmp_path):
    with sembed.Model(ce["ce-bert3"]) as m:
        with pytest.raises(ValueError, match="one label"):
            m.rank("q", ["a"])
    with sembed.Model(ce["ce-bert"]) as m:
        with pytest.raises(TypeError):
            m.rank(1, ["a"])
        with pytest.raises(ValueError, match="top_k"):
            m.rank("q", ["a"], top_k=0)
    mini = os.path.join(REPO, "models", "sembed-mini", "sembed-mini.semb")
    with sembed.Model(mini) as m:
        assert m.num_labels == 0
        with pytest.raises(ValueError, match="not a cross-encoder"):
            m.predict([("a", "b")])
