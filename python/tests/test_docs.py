"""help() reads well and the type stubs cover the public API."""
import os
import pydoc
import re

import sembed


def test_help_of_encode_documents_every_argument():
    text = pydoc.render_doc(sembed.Model.encode, renderer=pydoc.plaintext)
    for arg in ("sentences", "batch_size", "normalize_embeddings", "show_progress_bar", "convert_to_numpy",
                "precision", "output_value", "Raises"):
        assert arg in text, f"help(sembed.Model.encode) does not mention {arg}"
    for obj in (sembed.Model, sembed.convert, sembed.inspect, sembed.train, sembed.eval_sts, sembed.Embeddings,
                sembed.Model.encode_pairs, sembed.Model.similarity, sembed.Model.tokenize):
        assert obj.__doc__ and len(obj.__doc__.strip()) > 40, f"{obj.__name__} has no real docstring"


def test_stubs_cover_all_public_names():
    stub = os.path.join(os.path.dirname(sembed.__file__), "__init__.pyi")
    assert os.path.isfile(stub), f"no type stubs at {stub}"
    text = open(stub).read()
    for name in sembed.__all__:
        assert re.search(rf"^(class|def) {name}\b|^{name}:", text, re.M), f"{name} missing from __init__.pyi"
