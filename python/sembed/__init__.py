"""sembed: BERT-family sentence embeddings on the CPU, from one mmapped .semb file.

    import sembed
    m = sembed.Model("models/sembed-mini/sembed-mini.semb")
    emb = m.encode(["A man is playing a guitar.", "A woman is slicing an onion."])  # (2, dim) float32
    m.similarity(emb, emb)                                                         # cosine matrix

Also: sembed.convert (checkpoints -> .semb), sembed.inspect (file -> dict), sembed.train (SimCSE /
MLM), sembed.eval_sts (STS Spearman), sembed.Embeddings (LangChain / LlamaIndex adapter).
Library failures raise sembed.SembedError carrying the library's message. docs/python.md.
"""
from ._lib import SembedError, LIBRARY_PATH, lib as _clib
from .model import Model, cos_sim, kernel_path
from .files import inspect, convert
from .trainer import train, eval_sts
from .adapters import Embeddings

__version__ = _clib.sembed_version().decode()
__all__ = ["Model", "SembedError", "Embeddings", "convert", "inspect", "train", "eval_sts", "cos_sim",
           "kernel_path", "LIBRARY_PATH", "__version__"]
