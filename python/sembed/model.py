"""sembed.Model: a loaded .semb sentence encoder with the sentence-transformers calling style."""
import ctypes as C
import logging
import os
import threading

import numpy as np

from . import _lib
from ._lib import lib, check, clear_messages
from ._progress import bar

_POOLINGS = ("cls", "cls_before_pooler", "mean", "max", "first_last_avg")
_PRECISIONS = ("float32", "int8", "uint8", "binary", "ubinary")
_OUTPUT_VALUES = ("sentence_embedding", "token_embeddings", None)

# struct sembed_input as a numpy record, so a whole batch of inputs is built without a Python loop.
_INPUT_DTYPE = np.dtype([("a", np.uintp), ("a_len", np.uintp), ("b", np.uintp), ("b_len", np.uintp)])
assert _INPUT_DTYPE.itemsize == C.sizeof(_lib.Input)


def _fspath(path, what):
    if isinstance(path, (str, bytes, os.PathLike)):
        p = os.fsdecode(os.fspath(path))
        return p
    raise TypeError(f"{what} must be a str or os.PathLike path, not {type(path).__name__}")


def _utf8(texts, what):
    """Encode a list of str as UTF-8 (lone surrogates pass through and become U+FFFD in the
    tokenizer, as invalid UTF-8 does). TypeError names the first non-str element."""
    try:
        return [t.encode("utf-8", "surrogatepass") for t in texts]
    except AttributeError:
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"{what}[{i}] must be str, not {type(t).__name__}") from None
        raise


def _as_text_list(sentences, what="sentences"):
    """(list of str, was_single)."""
    if isinstance(sentences, str):
        return [sentences], True
    if isinstance(sentences, (bytes, bytearray)):
        raise TypeError(f"{what} must be str or a sequence of str, not bytes (decode it first)")
    if isinstance(sentences, np.ndarray):
        sentences = sentences.tolist()
    try:
        items = list(sentences)
    except TypeError:
        raise TypeError(f"{what} must be str or a sequence of str, not {type(sentences).__name__}") from None
    return items, False


def _pack(encoded):
    """One buffer holding every text, and (address array, length array) into it."""
    n = len(encoded)
    buf = np.frombuffer(b"".join(encoded) + b"\0", dtype=np.uint8)
    lens = np.fromiter(map(len, encoded), dtype=np.uintp, count=n)
    offs = np.zeros(n, dtype=np.uintp)
    if n > 1:
        np.cumsum(lens[:-1], out=offs[1:])
    return buf, offs + np.uintp(buf.ctypes.data), lens


def _quantize(emb, precision):
    # As sentence-transformers' quantize_embeddings: binary = sign bits packed 8 per byte
    # (ubinary as uint8, binary shifted by -128 into int8); int8/uint8 = 256 buckets between each
    # dimension's min and max over the embeddings given (no calibration set).
    if precision == "float32":
        return emb
    if precision in ("binary", "ubinary"):
        packed = np.packbits(emb > 0, axis=-1)
        return packed if precision == "ubinary" else (packed.astype(np.int16) - 128).astype(np.int8)
    flat = emb.reshape(-1, emb.shape[-1])
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    steps = np.where(hi > lo, (hi - lo) / 255.0, 1.0)
    q = (emb - lo) / steps
    if precision == "uint8":
        return np.clip(q, 0, 255).astype(np.uint8)
    return np.clip(q - 128, -128, 127).astype(np.int8)


class Model:
    """A .semb sentence encoder, loaded once (read-only mmap) and shareable across threads.

    ``Model(path, threads=None, compute="auto")``

    - ``threads``: OpenMP threads inside each call (None: all cores, or OMP_NUM_THREADS).
    - ``compute``: "auto" (int8 for files converted with ``--dtype q8``, else f32), "f32", "int8".
    - ``pooling`` / ``normalize`` / ``max_seq_length``: override what the file says.
    - ``verify``: recompute every tensor checksum at load.

    Each calling thread gets its own library context (made on first use and reused), so
    ``encode`` may run from many Python threads at once; the GIL is released while the library
    computes. ``close()`` (or ``with Model(...) as m:``) frees the model; using it afterwards
    raises ValueError.
    """

    def __init__(self, path, threads=None, compute="auto", *, pooling=None, normalize=None,
                 max_seq_length=None, verify=False):
        self.path = _fspath(path, "path")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 0):
            raise TypeError(f"threads must be None or an int >= 0, got {threads!r}")
        if not isinstance(compute, str):
            raise TypeError(f"compute must be a str ('auto', 'f32', 'int8'), not {type(compute).__name__}")
        if pooling is not None and pooling not in _POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(_POOLINGS)}, got {pooling!r}")
        if normalize is not None and not isinstance(normalize, bool):
            raise TypeError(f"normalize must be None or a bool, got {normalize!r}")
        self._handle = None
        self._lock = threading.Condition()
        self._pools = {}          # context key -> list of free context handles
        self._all_ctx = []
        self._active = 0
        self._closed = False
        self._threads = threads or 0
        cval = C.c_int()
        if lib.sembed_compute_parse(compute.encode(), C.byref(cval)) != 0:
            raise ValueError(f"compute must be 'auto', 'f32' or 'int8', got {compute!r}")
        if not os.path.exists(self.path):
            raise FileNotFoundError(2, f"no such model file: '{self.path}'", self.path)
        params = lib.sembed_model_default_params()
        params.compute = cval.value
        params.verify_checksums = bool(verify)
        handle = C.c_void_p()
        clear_messages()
        check(lib.sembed_model_load(os.fsencode(self.path), C.byref(params), C.byref(handle)),
              f"cannot load '{self.path}'")
        self._handle = handle
        self._dim = int(lib.sembed_model_dim(handle))  # constant for the model's life
        self._num_labels = int(lib.sembed_model_num_labels(handle))  # > 0: a cross-encoder
        self._pooling = 0
        if pooling is not None:
            pv = C.c_int()
            lib.sembed_pooling_parse(pooling.encode(), C.byref(pv))
            self._pooling = pv.value
        self._normalize = normalize
        self._max_len = 0
        self._metadata = None
        if max_seq_length is not None:
            self.max_seq_length = max_seq_length
        # One context up front: settings errors surface here, not at the first encode.
        ctx = self._acquire(None, 0)
        self._release(ctx)

    # ------------------------------------------------------------ lifetime
    def close(self):
        """Free the model and its contexts. Waits for calls in flight on other threads; later calls
        raise ValueError. Idempotent."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            if self._closed:
                return
            self._closed = True
            while self._active:
                lock.wait()
            for ctx, _ in self._all_ctx:
                lib.sembed_context_free(ctx)
            self._all_ctx.clear()
            self._pools.clear()
            if self._handle:
                lib.sembed_model_free(self._handle)
                self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        if self._closed:
            return f"sembed.Model({self.path!r}, closed)"
        return (f"sembed.Model({self.path!r}, dimension={self.dimension}, pooling={self.pooling!r}, "
                f"normalize={self.normalize}, compute={self.compute!r}, kernel={self.kernel!r})")

    def _model(self):
        if self._closed or not self._handle:
            raise ValueError("this sembed.Model is closed")
        return self._handle

    # ------------------------------------------------------------ contexts
    def _acquire(self, normalize, batch_size):
        """A free context for (normalize override, batch size), created on demand."""
        key = (self._normalize if normalize is None else normalize, batch_size, self._max_len)
        with self._lock:
            if self._closed:
                raise ValueError("this sembed.Model is closed")
            pool = self._pools.setdefault(key, [])
            self._active += 1
            if pool:
                return pool.pop(), key
        try:
            cp = lib.sembed_context_default_params()
            cp.pooling = self._pooling
            nv = key[0]
            cp.normalize = 0 if nv is None else (1 if nv else 2)
            cp.max_length = self._max_len
            cp.n_threads = self._threads
            cp.batch_size = batch_size
            ctx = C.c_void_p()
            clear_messages()
            check(lib.sembed_context_create(self._handle, C.byref(cp), C.byref(ctx)), "cannot create a context")
        except BaseException:
            self._release(None)
            raise
        with self._lock:
            self._all_ctx.append((ctx, key))
        return ctx, key

    def _release(self, ctx_key):
        with self._lock:
            if ctx_key is not None:
                self._pools.setdefault(ctx_key[1], []).append(ctx_key[0])
            self._active -= 1
            if self._active == 0:
                self._lock.notify_all()

    # ------------------------------------------------------------ properties
    @property
    def dimension(self):
        """Floats per embedding (sentence-transformers: get_sentence_embedding_dimension())."""
        self._model()
        return self._dim

    def get_sentence_embedding_dimension(self):
        """Same as ``dimension`` (the sentence-transformers name)."""
        return self.dimension

    @property
    def hidden_size(self):
        """Floats per token state (the width of ``output_value="token_embeddings"``)."""
        return int(lib.sembed_model_hidden_size(self._model()))

    @property
    def num_layers(self):
        return int(lib.sembed_model_num_layers(self._model()))

    @property
    def max_seq_length(self):
        """Tokens per input including [CLS]/[SEP]; longer inputs are truncated. Settable (at most
        the model's maximum)."""
        return self._max_len or int(lib.sembed_model_max_length(self._model()))

    @max_seq_length.setter
    def max_seq_length(self, value):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"max_seq_length must be an int, got {value!r}")
        top = int(lib.sembed_model_max_length(self._model()))
        if not 2 <= value <= top:
            raise ValueError(f"max_seq_length must be in [2, {top}] (the model's maximum), got {value}")
        self._max_len = value

    @property
    def pooling(self):
        """How token states become one vector: cls, cls_before_pooler, mean, max, first_last_avg."""
        p = self._pooling or lib.sembed_model_pooling(self._model())
        return lib.sembed_pooling_name(p).decode()

    @property
    def normalize(self):
        """Whether embeddings are L2-normalized (the file's pooling.normalize unless overridden)."""
        if self._normalize is not None:
            self._model()
            return self._normalize
        return bool(lib.sembed_model_normalize(self._model()))

    @property
    def compute(self):
        """Arithmetic of the Linear layers in effect: "f32" or "int8"."""
        return lib.sembed_compute_name(lib.sembed_model_compute(self._model())).decode()

    @property
    def kernel(self):
        """The SIMD kernel path in use (ref, avx2, avx512, avxvnni, avx512vnni, amx)."""
        return kernel_path()

    @property
    def metadata(self):
        """The file's metadata keys as a dict (arrays as lists; tokenizer.vocab included)."""
        if self._metadata is None:
            from .files import _read_metadata
            self._metadata = _read_metadata(lib.sembed_model_file(self._model()))
        return self._metadata

    # ------------------------------------------------------------ encode
    def _embed(self, a_enc, b_enc, batch_size, normalize, show_progress_bar):
        n = len(a_enc)
        self._model()
        out = np.empty((n, self._dim), dtype=np.float32)
        if n == 0:
            return out
        inputs = np.zeros(n, dtype=_INPUT_DTYPE)
        abuf, inputs["a"], inputs["a_len"] = _pack(a_enc)
        bbuf = None
        if b_enc is not None:
            bbuf, inputs["b"], inputs["b_len"] = _pack(b_enc)
        if show_progress_bar is None:
            show_progress_bar = logging.getLogger("sembed").getEffectiveLevel() <= logging.INFO and n > batch_size
        chunk = n if not show_progress_bar else max(batch_size * 4, 128)
        ctx_key = self._acquire(normalize, batch_size)
        pbar = bar(n, "Batches" if b_enc is None else "Pairs") if show_progress_bar else None
        try:
            ctx = ctx_key[0]
            row = out.strides[0]
            for start in range(0, n, chunk):
                cnt = min(chunk, n - start)
                clear_messages()
                rc = lib.sembed_embed_inputs(ctx, inputs.ctypes.data + start * _INPUT_DTYPE.itemsize, cnt,
                                             out.ctypes.data + start * row)
                check(rc, "embedding failed")
                if pbar is not None:
                    pbar.update(cnt)
        finally:
            if pbar is not None:
                pbar.close()
            self._release(ctx_key)
        del abuf, bbuf  # the buffers lived until the last call returned
        return out

    @staticmethod
    def _check_args(batch_size, normalize_embeddings, precision, output_value, convert_to_numpy, convert_to_tensor,
                    device):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or not 1 <= batch_size <= 65536:
            raise TypeError(f"batch_size must be an int in [1, 65536], got {batch_size!r}")
        if normalize_embeddings is not None and not isinstance(normalize_embeddings, bool):
            raise TypeError(f"normalize_embeddings must be None or a bool, got {normalize_embeddings!r}")
        if precision not in _PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(_PRECISIONS)}, got {precision!r}")
        if output_value not in _OUTPUT_VALUES:
            raise ValueError(f"output_value must be 'sentence_embedding', 'token_embeddings' or None, "
                             f"got {output_value!r}")
        if device not in (None, "cpu"):
            raise ValueError(f"sembed runs on the CPU only, got device={device!r}")
        if convert_to_tensor:
            try:
                import torch  # noqa: F401
            except ImportError:
                raise ValueError("convert_to_tensor=True needs torch, which is not installed") from None

    def encode(self, sentences, batch_size=32, normalize_embeddings=None, show_progress_bar=None,
               convert_to_numpy=True, precision="float32", output_value="sentence_embedding",
               convert_to_tensor=False, device=None, prompt=None):
        """Embed one sentence or a list of sentences.

        Args:
            sentences: a str (returns a 1-d array of ``dimension`` floats) or a sequence of str
                (returns an (n, dimension) float32 C-contiguous array, written by the library in
                place: no per-row copies).
            batch_size: inputs embedded together per forward pass (results do not depend on it).
            normalize_embeddings: True L2-normalizes; None or False keep what the model does
                (its file's pooling.normalize, as a sentence-transformers Normalize module would).
            show_progress_bar: None shows one when the "sembed" logger is at INFO or DEBUG and the
                list is longer than batch_size (as sentence-transformers decides); tqdm when
                installed, else a plain bar on stderr.
            convert_to_numpy: True (default) returns one numpy array; False a list of 1-d arrays.
            precision: "float32", or "int8", "uint8", "binary", "ubinary" quantized as
                sentence-transformers' quantize_embeddings does.
            output_value: "sentence_embedding"; "token_embeddings" returns, per sentence, the last
                layer's (n_tokens, hidden_size) states; None returns per sentence a dict with both
                and the input ids.
            convert_to_tensor: return a torch tensor sharing the array's memory (needs torch).
            device: None or "cpu".
            prompt: text prepended to every sentence (sentence-transformers' prompt argument).

        Raises:
            TypeError: sentences is not str or a sequence of str; wrong argument types.
            ValueError: bad argument values, or the model is closed.
            SembedError: the library failed (its message says why).
        """
        self._check_args(batch_size, normalize_embeddings, precision, output_value, convert_to_numpy,
                         convert_to_tensor, device)
        texts, single = _as_text_list(sentences)
        if prompt is not None:
            if not isinstance(prompt, str):
                raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
            texts = [prompt + t if isinstance(t, str) else t for t in texts]
        enc = _utf8(texts, "sentences")
        if output_value != "sentence_embedding":
            return self._token_outputs(enc, single, output_value, normalize_embeddings, batch_size)
        emb = self._embed(enc, None, batch_size, True if normalize_embeddings else None, show_progress_bar)
        return self._finish(emb, single, precision, convert_to_numpy, convert_to_tensor)

    def _finish(self, emb, single, precision, convert_to_numpy, convert_to_tensor):
        emb = _quantize(emb, precision)
        if single:
            emb = emb[0]
        if convert_to_tensor:
            import torch
            return torch.from_numpy(emb)
        if not convert_to_numpy and not single:
            return list(emb)
        return emb

    def encode_pairs(self, pairs, b=None, batch_size=32, normalize_embeddings=None, show_progress_bar=None,
                     convert_to_numpy=True, precision="float32", convert_to_tensor=False):
        """Embed text pairs as one input each: [CLS] a [SEP] b [SEP], token types 0 then 1 (what
        ``sembed embed --pairs`` does). Call as ``encode_pairs([(a1, b1), (a2, b2)])``,
        ``encode_pairs(list_a, list_b)`` or ``encode_pairs("a", "b")`` (1-d result).
        Over-long pairs lose tokens from the longer side first (HF's longest_first)."""
        self._check_args(batch_size, normalize_embeddings, precision, "sentence_embedding", convert_to_numpy,
                         convert_to_tensor, None)
        if b is None:
            if isinstance(pairs, (str, bytes)):
                raise TypeError("encode_pairs needs pairs: a sequence of (a, b), or two sequences a and b")
            items, _ = _as_text_list(pairs, "pairs")
            a_list, b_list = [], []
            for i, p in enumerate(items):
                if not isinstance(p, (tuple, list)) or len(p) != 2:
                    raise TypeError(f"pairs[{i}] must be a (str, str) pair, got {p!r:.80}")
                a_list.append(p[0])
                b_list.append(p[1])
            single = False
        else:
            a_list, single_a = _as_text_list(pairs, "a")
            b_list, single_b = _as_text_list(b, "b")
            if single_a != single_b or len(a_list) != len(b_list):
                raise ValueError(f"a and b must both be str or sequences of the same length "
                                 f"({len(a_list)} vs {len(b_list)})")
            single = single_a
        emb = self._embed(_utf8(a_list, "a"), _utf8(b_list, "b"), batch_size,
                          True if normalize_embeddings else None, show_progress_bar)
        return self._finish(emb, single, precision, convert_to_numpy, convert_to_tensor)

    @property
    def num_labels(self):
        """Scores per pair of a cross-encoder (a sequence-classification head); 0 for an embedding model."""
        return self._num_labels

    def predict(self, sentences, batch_size=32, show_progress_bar=None, convert_to_numpy=True):
        """Cross-encoder scores of (a, b) pairs, as sentence-transformers' ``CrossEncoder.predict``:
        shape (n,) for one label, (n, num_labels) otherwise, with the checkpoint's activation
        (sigmoid for one-label rerankers). The same numbers as ``sembed rerank`` and the server's
        /rerank. A bare (a, b) pair gives a scalar (or one row)."""
        if not self._num_labels:
            raise ValueError(f"'{self.path}' is an embedding model, not a cross-encoder: use encode()")
        single = isinstance(sentences, tuple) and len(sentences) == 2 and all(isinstance(x, str) for x in sentences)
        pairs = [sentences] if single else sentences
        scores = self.encode_pairs(pairs, batch_size=batch_size, show_progress_bar=show_progress_bar)
        if self._num_labels == 1:
            scores = scores[:, 0]
        if single:
            scores = scores[0]
        if not convert_to_numpy:
            return scores.tolist()
        return scores

    def rank(self, query, documents, top_k=None, return_documents=False, batch_size=32, show_progress_bar=None):
        """Documents ordered by a one-label cross-encoder's score for ``query``, best first, as
        sentence-transformers' ``CrossEncoder.rank``: a list of ``{"corpus_id", "score"}`` (plus
        ``"text"`` with return_documents), at most top_k of them. Ties keep the documents' order."""
        if self._num_labels != 1:
            raise ValueError(f"rank needs a cross-encoder with one label; '{self.path}' has "
                             f"{self._num_labels or 'no'} label(s)")
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        docs, _ = _as_text_list(documents, "documents")
        if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
            raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
        if not docs:
            return []
        scores = self.predict([(query, d) for d in docs], batch_size=batch_size, show_progress_bar=show_progress_bar)
        order = sorted(range(len(docs)), key=lambda i: -float(scores[i]))
        out = []
        for i in order[:top_k]:
            r = {"corpus_id": i, "score": float(scores[i])}
            if return_documents:
                r["text"] = docs[i]
            out.append(r)
        return out

    def _token_outputs(self, enc, single, output_value, normalize_embeddings, batch_size):
        tok = self._tokenize_encoded(enc)
        sent = self._embed(enc, None, batch_size, True if normalize_embeddings else None, False)
        hidden = self.hidden_size
        results = []
        ctx_key = self._acquire(None, batch_size)
        try:
            for i, ids in enumerate(tok["input_ids"]):
                ids_arr = np.ascontiguousarray(ids, dtype=np.int32)
                types = np.ascontiguousarray(tok["token_type_ids"][i], dtype=np.int32)
                states = np.empty((len(ids_arr), hidden), dtype=np.float32)
                spec = _lib.Ids(ids_arr.ctypes.data_as(C.POINTER(C.c_int32)),
                                types.ctypes.data_as(C.POINTER(C.c_int32)), len(ids_arr))
                clear_messages()
                check(lib.sembed_encode_ids(ctx_key[0], C.byref(spec), states.ctypes.data, None),
                      f"token states of sentence {i} failed")
                if output_value == "token_embeddings":
                    results.append(states)
                else:
                    results.append({"sentence_embedding": sent[i], "token_embeddings": states,
                                    "input_ids": ids_arr})
        finally:
            self._release(ctx_key)
        return results[0] if single else results

    # ------------------------------------------------------------ similarity, tokenize
    def similarity(self, a, b):
        """Cosine similarity matrix (len(a), len(b)) as float32, sentence-transformers'
        ``model.similarity``. a and b are embeddings (1-d or 2-d arrays) or texts (encoded first).
        A zero vector has similarity 0 to everything."""
        def prep(x, what):
            if isinstance(x, str) or (isinstance(x, (list, tuple)) and x and all(isinstance(t, str) for t in x)):
                x = self.encode(x)
            try:
                x = np.asarray(x, dtype=np.float32)
            except (TypeError, ValueError):
                raise TypeError(f"{what} must be embeddings (a float array) or texts") from None
            if x.ndim == 1:
                x = x[None, :]
            if x.ndim != 2:
                raise ValueError(f"{what} must be 1-d or 2-d, got shape {x.shape}")
            return x
        x, y = prep(a, "a"), prep(b, "b")
        if x.shape[1] != y.shape[1]:
            raise ValueError(f"a and b have different dimensions ({x.shape[1]} vs {y.shape[1]})")
        return cos_sim(x, y)

    def _tokenize_encoded(self, enc):
        tokz = lib.sembed_model_tokenizer(self._model())
        cap = self.max_seq_length
        ids = np.empty(cap, dtype=np.int32)
        types = np.empty(cap, dtype=np.int32)
        n = C.c_uint32()
        cut = C.c_bool()
        out = {"input_ids": [], "token_type_ids": [], "tokens": [], "truncated": []}
        for i, t in enumerate(enc):
            clear_messages()
            check(lib.sembed_tokenizer_encode_input(tokz, t, len(t), None, 0, cap, 0, ids.ctypes.data,
                                                    types.ctypes.data, C.byref(n), C.byref(cut)),
                  f"cannot tokenize text {i}")
            k = n.value
            row = ids[:k].tolist()
            out["input_ids"].append(row)
            out["token_type_ids"].append(types[:k].tolist())
            out["tokens"].append([lib.sembed_tokenizer_token(tokz, j).decode("utf-8", "replace") for j in row])
            out["truncated"].append(bool(cut.value))
        return out

    def tokenize(self, texts):
        """Token ids as the model sees them ([CLS] ... [SEP], truncated to max_seq_length), with
        token types, the token strings and whether each text was cut. A str gives flat lists; a
        sequence gives lists of lists."""
        items, single = _as_text_list(texts, "texts")
        res = self._tokenize_encoded(_utf8(items, "texts"))
        if single:
            return {k: v[0] for k, v in res.items()}
        return res

    def stats(self):
        """Counters over every context of this model: inputs, truncated inputs, tokens, passes."""
        tot = {"n_inputs": 0, "n_truncated": 0, "n_tokens": 0, "n_passes": 0}
        with self._lock:
            self._model()
            for ctx, _ in self._all_ctx:
                s = _lib.EmbedStats()
                lib.sembed_context_stats(ctx, C.byref(s))
                for k in tot:
                    tot[k] += getattr(s, k)
        return tot


def cos_sim(a, b):
    """Cosine similarity matrix of the rows of a (n, d) and b (m, d), float32 (zero rows give 0)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    an = np.linalg.norm(a, axis=1, keepdims=True)
    bn = np.linalg.norm(b, axis=1, keepdims=True)
    a = np.divide(a, an, out=np.zeros_like(a), where=an > 0)
    b = np.divide(b, bn, out=np.zeros_like(b), where=bn > 0)
    return a @ b.T


def kernel_path():
    """The SIMD kernel path this process uses (SEMBED_ISA caps it)."""
    return lib.sembed_kernel_isa().decode()
