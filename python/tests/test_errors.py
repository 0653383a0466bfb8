"""Every error is a Python exception naming the problem; nothing crashes the interpreter."""
import os

import numpy as np
import pytest

import sembed


def test_missing_file_names_it(tmp_path):
    p = str(tmp_path / "nope.semb")
    with pytest.raises(FileNotFoundError) as e:
        sembed.Model(p)
    assert "nope.semb" in str(e.value)
    with pytest.raises(FileNotFoundError):
        sembed.inspect(p)


def test_not_a_model_file(tmp_path):
    p = tmp_path / "text.semb"
    p.write_bytes(b"this is not a model file at all, just some text" * 10)
    with pytest.raises(sembed.SembedError) as e:
        sembed.Model(str(p))
    assert e.value.code == "SEMBED_EMAGIC", f"expected SEMBED_EMAGIC, got {e.value.code}: {e.value}"
    assert "text.semb" in str(e.value) and "magic" in str(e.value)


def test_truncated_model_file(mini_path, tmp_path):
    data = open(mini_path, "rb").read()
    p = tmp_path / "cut.semb"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(sembed.SembedError) as e:
        sembed.Model(str(p))
    assert "cut.semb" in str(e.value)
    assert e.value.code in ("SEMBED_ETRUNCATED", "SEMBED_EBOUNDS"), str(e.value)


def test_corrupt_tensor_found_by_verify(mini_path, tmp_path):
    data = bytearray(open(mini_path, "rb").read())
    data[-1000] ^= 0xFF  # a byte in the last tensor's data
    p = tmp_path / "flip.semb"
    p.write_bytes(bytes(data))
    with pytest.raises(sembed.SembedError) as e:
        sembed.inspect(str(p), verify=True)
    assert e.value.code == "SEMBED_ECHECKSUM", str(e.value)
    assert e.value.details, "the library's message naming the tensor is missing"
    with pytest.raises(sembed.SembedError):
        sembed.Model(str(p), verify=True)


def test_corrupt_header_checksum(mini_path, tmp_path):
    data = bytearray(open(mini_path, "rb").read())
    data[100] ^= 0x01  # inside the metadata directory, covered by the header checksum
    p = tmp_path / "hdr.semb"
    p.write_bytes(bytes(data))
    with pytest.raises(sembed.SembedError) as e:
        sembed.Model(str(p))
    assert "hdr.semb" in str(e.value)


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["ok", 3], [b"bytes"], {"a": 1}.keys().__class__])
def test_wrong_sentence_types_raise_type_error(mini, bad):
    with pytest.raises(TypeError):
        mini.encode(bad)


def test_wrong_argument_types_and_values(mini, mini_path):
    with pytest.raises(TypeError):
        sembed.Model(123)
    with pytest.raises(TypeError):
        sembed.Model(mini_path, threads="4")
    with pytest.raises(ValueError):
        sembed.Model(mini_path, compute="fp64")
    with pytest.raises(ValueError):
        sembed.Model(mini_path, pooling="median")
    with pytest.raises(TypeError):
        mini.encode("x", batch_size=0)
    with pytest.raises(ValueError):
        mini.encode("x", precision="float16")
    with pytest.raises(ValueError):
        mini.encode("x", output_value="logits")
    with pytest.raises(ValueError):
        mini.encode("x", device="cuda")
    with pytest.raises(TypeError):
        mini.encode_pairs(["a", "b"])
    with pytest.raises(ValueError):
        mini.encode_pairs(["a"], ["b", "c"])
    with pytest.raises(ValueError):
        mini.similarity(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        mini.max_seq_length = 100000
    with pytest.raises(ValueError):
        sembed.convert(mini_path, "x.semb", dtype="q4")


def test_error_text_of_pairs_index(mini):
    with pytest.raises(TypeError) as e:
        mini.encode(["fine", "fine", 7])
    assert "sentences[2]" in str(e.value)


def test_use_after_close_raises(mini_path):
    m = sembed.Model(mini_path)
    m.encode("warm")
    m.close()
    m.close()  # idempotent
    for call in (lambda: m.encode("x"), lambda: m.dimension, lambda: m.tokenize("x"),
                 lambda: m.encode_pairs("a", "b"), lambda: m.metadata, lambda: m.stats()):
        with pytest.raises(ValueError, match="closed"):
            call()
    assert "closed" in repr(m)


def test_context_manager_closes(mini_path):
    with sembed.Model(mini_path) as m:
        assert m.encode("x").shape == (192,)
    with pytest.raises(ValueError):
        m.encode("x")


def test_convert_errors_name_the_source(tmp_path):
    src = tmp_path / "empty-folder"
    src.mkdir()
    out = tmp_path / "o.semb"
    with pytest.raises(sembed.SembedError) as e:
        sembed.convert(str(src), str(out))
    assert "empty-folder" in str(e.value)
    assert not out.exists(), "a failed conversion left a file behind"
    with pytest.raises(FileNotFoundError):
        sembed.convert(str(tmp_path / "absent"), str(out))


def test_eval_errors(mini, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("just one line without tabs\n")
    with pytest.raises(sembed.SembedError) as e:
        sembed.eval_sts(mini, str(bad))
    assert "bad.csv" in str(e.value)
    with pytest.raises(FileNotFoundError):
        sembed.eval_sts(mini, str(tmp_path / "absent.csv"))
