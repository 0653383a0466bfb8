"""encode / encode_pairs: bit-identical to `sembed embed`, and the shapes and dtypes of every form."""
import numpy as np
import pytest

import sembed
from conftest import cli_embed


def assert_bitwise(got, exp, what):
    assert got.shape == exp.shape, f"{what}: shape expected {exp.shape}, got {got.shape}"
    same = got.view(np.uint32) == exp.view(np.uint32)
    if not same.all():
        bad = np.argwhere(~same)[0]
        diff = np.abs(got.astype(np.float64) - exp).max()
        pytest.fail(f"{what}: {int((~same).sum())} floats differ; first at {tuple(bad)}: expected "
                    f"{exp[tuple(bad)]!r}, got {got[tuple(bad)]!r}; max abs diff {diff:g}")


def test_bit_identical_to_cli_mini(cli, mini, mini_path, sentences):
    assert_bitwise(mini.encode(sentences), cli_embed(cli, mini_path, sentences), "sembed-mini int8")


@pytest.mark.parametrize("dtype", ["f32", "q8"])
def test_bit_identical_to_cli_tiny(cli, tiny_paths, sentences, dtype):
    with sembed.Model(tiny_paths[dtype]) as m:
        got = m.encode(sentences)
    assert_bitwise(got, cli_embed(cli, tiny_paths[dtype], sentences), f"bert-tiny {dtype}")


def test_bit_identical_normalized_and_f32_compute(cli, mini_path, sentences):
    with sembed.Model(mini_path, compute="f32") as m:
        got = m.encode(sentences[:50], normalize_embeddings=True)
        assert m.compute == "f32"
    exp = cli_embed(cli, mini_path, sentences[:50], ["--compute", "f32", "--normalize"])
    assert_bitwise(got, exp, "sembed-mini f32 normalized")
    norms = np.linalg.norm(got, axis=1)
    assert np.allclose(norms, 1, atol=1e-5), f"norms expected 1, got {norms.min()}..{norms.max()}"


def test_bit_identical_pooling_and_max_length(cli, mini_path, sentences):
    with sembed.Model(mini_path, pooling="cls", max_seq_length=16) as m:
        got = m.encode(sentences[:40])
        assert m.pooling == "cls" and m.max_seq_length == 16
    exp = cli_embed(cli, mini_path, sentences[:40], ["--pooling", "cls", "--max-length", "16"])
    assert_bitwise(got, exp, "cls pooling, 16 tokens")


def test_pairs_bit_identical_to_cli(cli, mini, mini_path, sentences):
    a, b = sentences[0:40:2], sentences[1:40:2]
    got = mini.encode_pairs(list(zip(a, b)))
    data = "".join(f"{x}\t{y}\n" for x, y in zip(a, b)).encode()
    from conftest import run_cli
    import io
    exp = np.load(io.BytesIO(run_cli(cli, ["embed", "-m", mini_path, "--pairs", "-f", "npy"], stdin=data)))
    assert_bitwise(got, exp, "pairs")
    assert_bitwise(mini.encode_pairs(a, b), exp, "pairs as two lists")
    assert_bitwise(mini.encode_pairs(a[3], b[3]), exp[3], "one pair")


def test_shapes_and_dtypes_of_every_input_form(mini, sentences):
    d = mini.dimension
    ref = mini.encode(sentences[:5])
    assert ref.shape == (5, d) and ref.dtype == np.float32 and ref.flags["C_CONTIGUOUS"]
    assert ref.flags["OWNDATA"] and ref.base is None, "the result should be the array the library wrote into"
    one = mini.encode(sentences[0])
    assert one.shape == (d,) and one.dtype == np.float32
    assert_bitwise(one, ref[0], "single str vs row 0")
    forms = {"tuple": tuple(sentences[:5]), "generator": (s for s in sentences[:5]),
             "numpy str array": np.array(sentences[:5]), "numpy object array": np.array(sentences[:5], dtype=object)}
    for name, form in forms.items():
        assert_bitwise(mini.encode(form), ref, name)
    lst = mini.encode(sentences[:5], convert_to_numpy=False)
    assert isinstance(lst, list) and len(lst) == 5 and all(r.shape == (d,) for r in lst)
    empty = mini.encode([])
    assert empty.shape == (0, d) and empty.dtype == np.float32
    assert mini.encode([""]).shape == (1, d)


def test_batch_size_and_progress_do_not_change_results(mini, sentences, capsys):
    ref = mini.encode(sentences)
    for bs in (1, 7, 64):
        assert_bitwise(mini.encode(sentences, batch_size=bs), ref, f"batch_size {bs}")
    got = mini.encode(sentences, batch_size=8, show_progress_bar=True)
    assert_bitwise(got, ref, "with a progress bar")
    err = capsys.readouterr().err
    assert str(len(sentences)) in err, f"progress bar expected on stderr, got {err[-200:]!r}"


def test_precisions(mini, sentences):
    emb = mini.encode(sentences[:20])
    ub = mini.encode(sentences[:20], precision="ubinary")
    assert ub.dtype == np.uint8 and ub.shape == (20, (mini.dimension + 7) // 8)
    assert np.array_equal(ub, np.packbits(emb > 0, axis=1))
    b = mini.encode(sentences[:20], precision="binary")
    assert b.dtype == np.int8 and np.array_equal(b.astype(np.int16) + 128, ub)
    for p, dt in (("int8", np.int8), ("uint8", np.uint8)):
        q = mini.encode(sentences[:20], precision=p)
        assert q.dtype == dt and q.shape == emb.shape


def test_token_embeddings(mini, sentences):
    tok = mini.encode(sentences[:3], output_value="token_embeddings")
    ids = mini.tokenize(sentences[:3])["input_ids"]
    assert [t.shape for t in tok] == [(len(i), mini.hidden_size) for i in ids]
    if mini.pooling == "mean" and not mini.normalize and mini.dimension == mini.hidden_size:
        # mean pooling of the token states is the sentence embedding (up to summation order)
        mean = tok[0].mean(axis=0)
        assert np.allclose(mean, mini.encode(sentences[0]), atol=1e-4)
    full = mini.encode(sentences[0], output_value=None)
    assert set(full) == {"sentence_embedding", "token_embeddings", "input_ids"}


def test_odd_text_is_not_an_error(mini):
    texts = ["nul\0inside", "lone surrogate \ud800 here", "é" * 3000, "\u4e2d\u6587", "   "]
    out = mini.encode(texts)
    assert out.shape == (5, mini.dimension) and np.isfinite(out).all()
    assert mini.tokenize("é " * 3000)["truncated"] is True


def test_prompt_and_similarity(mini, sentences):
    a = mini.encode("query: " + sentences[0])
    assert_bitwise(mini.encode(sentences[0], prompt="query: "), a, "prompt")
    emb = mini.encode(sentences[:4])
    sim = mini.similarity(emb, emb)
    assert sim.shape == (4, 4) and sim.dtype == np.float32
    assert np.allclose(np.diag(sim), 1, atol=1e-5)
    n = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    assert np.allclose(sim, n @ n.T, atol=1e-6)
    assert mini.similarity(sentences[0], sentences[:4]).shape == (1, 4)
    z = mini.similarity(np.zeros(mini.dimension), emb)
    assert np.array_equal(z, np.zeros((1, 4), np.float32))


def test_tokenize_matches_cli(cli, mini_path, mini):
    from conftest import run_cli
    out = run_cli(cli, ["tokenize", "-m", mini_path, "--ids", "Hello, world!"]).decode().split()
    got = mini.tokenize("Hello, world!")
    assert [str(i) for i in got["input_ids"]] == out, f"expected {out}, got {got['input_ids']}"
    assert got["tokens"][0] == "[CLS]" and got["tokens"][-1] == "[SEP]"
    many = mini.tokenize(["a b", "c"])
    assert len(many["input_ids"]) == 2


def test_properties(mini):
    assert mini.dimension == mini.get_sentence_embedding_dimension() == 192
    assert mini.max_seq_length > 2 and mini.pooling in ("cls", "cls_before_pooler", "mean", "max", "first_last_avg")
    assert isinstance(mini.normalize, bool) and mini.compute in ("int8", "f32")
    assert mini.kernel == sembed.kernel_path() and mini.kernel in ("ref", "avx2", "avx512", "avxvnni", "avx512vnni", "amx")
    md = mini.metadata
    assert md["general.architecture"] == "bert" and len(md["tokenizer.vocab"]) == md["bert.vocab_size"]
    assert "sembed.Model(" in repr(mini)
