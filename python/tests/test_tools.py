"""inspect, convert, eval_sts, train: the same results as the CLI's subcommands."""
import json
import os

import numpy as np
import pytest

import sembed
from conftest import run_cli, cli_embed, TINY_SRC, STSB_DEV, STS12_DIR, REPO


def test_inspect_matches_cli_json(cli, mini_path):
    info = sembed.inspect(mini_path)
    cj = json.loads(run_cli(cli, ["inspect", mini_path, "--json"]))
    names = [t["name"] for t in info["tensors"]]
    cli_tensors = cj.get("tensors", [])
    assert names == [t["name"] for t in cli_tensors], "tensor names differ from `sembed inspect --json`"
    assert info["size"] == os.path.getsize(mini_path) and info["verified"] is None
    md = info["metadata"]
    assert md["bert.hidden_size"] == 192 and md["pooling.mode"] == "mean"
    assert sembed.inspect(mini_path, verify=True)["verified"] is True


def test_convert_matches_cli(cli, tiny_paths, tmp_path, sentences):
    out = str(tmp_path / "cli-q8.semb")
    run_cli(cli, ["convert", TINY_SRC, "-o", out, "--dtype", "q8"])
    with sembed.Model(tiny_paths["q8"]) as a, sembed.Model(out) as b:
        assert np.array_equal(a.encode(sentences[:20]), b.encode(sentences[:20]))
        assert a.metadata["general.file_type"] == b.metadata["general.file_type"]
    seen = []
    sembed.convert(TINY_SRC, str(tmp_path / "p.semb"), dtype="f32", progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == seen[-1][1], f"progress should end at total, got {seen[-1:]}"


@pytest.fixture(scope="module")
def sts_dev150(tmp_path_factory):
    """The first 150 pairs of STS-B dev (vendored in data/)."""
    if not os.path.isfile(STSB_DEV):
        pytest.skip("STS-B dev not found (data/sts/STSBenchmark/sts-dev.csv)")
    d = tmp_path_factory.mktemp("stsb")
    with open(STSB_DEV, encoding="utf-8") as f:
        (d / "sts-dev-150.csv").write_text("".join(f.readlines()[:150]), encoding="utf-8")
    return str(d / "sts-dev-150.csv")


@pytest.fixture(scope="module")
def sts12_small(tmp_path_factory):
    """A two-set STS12-style folder of 100 pairs each (STS12 is not vendored: where the shared data is)."""
    if not STS12_DIR:
        pytest.skip("STS12 not found (sts/STS12-en-test under $SEMBED_DATA_DIR, data/ or ../shared/data): "
                    "it is not vendored")
    folder = tmp_path_factory.mktemp("sts12") / "STS12-small"
    folder.mkdir()
    for name in ("MSRvid", "surprise.SMTnews"):
        for kind in ("input", "gs"):
            with open(os.path.join(STS12_DIR, f"STS.{kind}.{name}.txt"), encoding="utf-8") as f:
                (folder / f"STS.{kind}.{name}.txt").write_text("".join(f.readlines()[:100]), encoding="utf-8")
    return str(folder)


def _eval_matches_cli(cli, mini, mini_path, path):
    r = sembed.eval_sts(mini, path)
    cj = json.loads(run_cli(cli, ["eval", "-m", mini_path, "--sts", path, "--json", "-"]))
    t = cj["tasks"][0]
    assert r["name"] == t["name"] and r["format"] == t["format"] and len(r["sets"]) == len(t["sets"])
    for got, exp in zip(r["sets"] + [r["all"], r["mean"], r["wmean"]],
                        t["sets"] + [t["all"], t["mean"], t["wmean"]]):
        assert got["n"] == exp["n"], f"{path}: pairs expected {exp['n']}, got {got['n']}"
        # json-c prints doubles with 17 significant digits: they round-trip exactly
        for k in ("spearman", "pearson"):
            assert got[k] == exp[k], f"{path} {got['name']} {k}: expected {exp[k]!r}, got {got[k]!r}"


def test_eval_sts_matches_cli_stsb(cli, mini, mini_path, sts_dev150):
    _eval_matches_cli(cli, mini, mini_path, sts_dev150)


def test_eval_sts_matches_cli_sts12(cli, mini, mini_path, sts12_small):
    _eval_matches_cli(cli, mini, mini_path, sts12_small)


def test_eval_sts_list_and_path_model(mini_path, sts12_small):
    r = sembed.eval_sts(mini_path, [sts12_small], max_seq_length=32)
    assert isinstance(r, list) and r[0]["format"] == "sts-folder" and len(r[0]["sets"]) == 2
    assert r[0]["all"]["n"] == sum(s["n"] for s in r[0]["sets"])


def test_train_matches_cli(cli, tiny_paths, tmp_path, sentences):
    data = tmp_path / "data.txt"
    data.write_text("\n".join(sentences[:64]) + "\n")
    out_py, out_cli = str(tmp_path / "py.semb"), str(tmp_path / "cli.semb")
    steps = []
    r = sembed.train(str(data), out_py, model=tiny_paths["f32"], batch=16, steps=3, max_length=16,
                     threads=1, progress=steps.append)
    assert r["steps"] == 3 and r["rows"] == 64 and r["best_dev"] is None
    assert [s["step"] for s in steps] == [1, 2, 3] and np.isfinite(steps[-1]["loss"])
    run_cli(cli, ["train", "-m", tiny_paths["f32"], "--data", str(data), "-o", out_cli, "--batch", "16",
                  "--steps", "3", "--max-length", "16", "--threads", "1"])
    a, b = cli_embed(cli, out_py, sentences[:10]), cli_embed(cli, out_cli, sentences[:10])
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), "sembed.train and `sembed train` differ"


def test_train_from_init_dict(tmp_path, sentences):
    data = tmp_path / "d.txt"
    data.write_text("\n".join(sentences[:32]) + "\n")
    out = str(tmp_path / "fresh.semb")
    init = {"layers": 1, "hidden": 32, "heads": 2, "intermediate": 64, "max_position": 64,
            "vocab": os.path.join(TINY_SRC, "vocab.txt")}
    r = sembed.train(str(data), out, init=init, objective="mlm", batch=8, steps=2, max_length=16)
    assert r["steps"] == 2 and os.path.isfile(out)
    with sembed.Model(out) as m:
        assert m.dimension == 32
    with pytest.raises(ValueError):
        sembed.train(str(data), out, init={"layers": 1})
    with pytest.raises(ValueError):
        sembed.train(str(data), out)


def test_adapter_langchain_llamaindex(mini, sentences):
    e = sembed.Embeddings(mini)
    docs = e.embed_documents(sentences[:3])
    q = e.embed_query(sentences[0])
    assert isinstance(docs, list) and len(docs) == 3 and all(isinstance(x, float) for x in docs[0])
    assert isinstance(q, list) and len(q) == mini.dimension
    assert q == docs[0]
    assert e.get_text_embedding_batch(sentences[:3]) == docs
    assert e.get_query_embedding(sentences[0]) == q and e._get_text_embedding(sentences[1]) == docs[1]
    import asyncio
    assert asyncio.run(e.aembed_query(sentences[0])) == q
    with pytest.raises(TypeError):
        e.embed_documents("one string")
    with pytest.raises(TypeError):
        e.embed_query(["a list"])
    p = sembed.Embeddings(mini, query_prompt="query: ")
    assert p.embed_query("x") == mini.encode("query: x").tolist()
