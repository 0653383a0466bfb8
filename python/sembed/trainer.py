"""sembed.train and sembed.eval_sts: the trainer and STS evaluation through the public C API."""
import ctypes as C
import math
import os

from . import _lib
from ._lib import lib, check, clear_messages
from .model import Model, _fspath

_OBJECTIVES = {"unsup": 0, "sup": 1, "mlm": 2, "distill": 3}
_POOLERS = {"cls": 0, "cls_before_pooler": 1, "mean": 2}


def _nan_none(x):
    return None if math.isnan(x) else x


def _score(s):
    return {"name": s.name.decode(), "path": s.path.decode(), "n": s.n, "unscored": s.n_unscored,
            "malformed": s.n_malformed, "spearman": _nan_none(s.spearman), "pearson": _nan_none(s.pearson)}


def eval_sts(model, sts, *, strict=False, batch_size=32, **model_kwargs):
    """STS evaluation as ``sembed eval -m MODEL --sts PATH`` (SentEval / SimCSE protocol): the
    cosine of each pair's two embeddings ranked against the gold score, Spearman and Pearson x100.

    model: a sembed.Model, or a path (extra keyword arguments go to sembed.Model, e.g. pooling,
    compute, threads, max_seq_length). sts: one path (STS-B csv, STS12-16 folder or one
    STS.input.*.txt, SICK file) or a list of them. Returns per task ``{"name", "format", "sets":
    [{"name", "path", "n", "unscored", "malformed", "spearman", "pearson"}], "all", "mean",
    "wmean"}`` (a list of those for a list of paths); undefined correlations are None."""
    own = not isinstance(model, Model)
    m = Model(model, **model_kwargs) if own else model
    if not own and model_kwargs:
        raise TypeError("keyword arguments other than strict/batch_size need a model path, not a Model")
    try:
        single = isinstance(sts, (str, os.PathLike))
        paths = [sts] if single else list(sts)
        results = []
        for p in paths:
            path = _fspath(p, "sts")
            if not os.path.exists(path):
                raise FileNotFoundError(2, f"no such evaluation set: '{path}'", path)
            ctx_key = m._acquire(None, batch_size)
            ev = C.c_void_p()
            try:
                clear_messages()
                check(lib.sembed_eval_sts(ctx_key[0], os.fsencode(path), bool(strict), C.byref(ev)),
                      f"cannot evaluate '{path}'")
            finally:
                m._release(ctx_key)
            try:
                sets = []
                for i in range(lib.sembed_eval_n_sets(ev)):
                    s = _lib.EvalScore()
                    check(lib.sembed_eval_set(ev, i, C.byref(s)), "eval set")
                    sets.append(_score(s))
                a, me, w = _lib.EvalScore(), _lib.EvalScore(), _lib.EvalScore()
                lib.sembed_eval_aggregate(ev, C.byref(a), C.byref(me), C.byref(w))
                results.append({"name": lib.sembed_eval_name(ev).decode(),
                                "format": lib.sembed_eval_format(ev).decode(), "sets": sets,
                                "all": _score(a), "mean": _score(me), "wmean": _score(w)})
            finally:
                lib.sembed_eval_free(ev)
        return results[0] if single else results
    finally:
        if own:
            m.close()


def train(data, out, model=None, *, init=None, objective="unsup", pooler="cls", mlp_only_train=False,
          batch=64, max_length=32, lr=3e-5, epochs=1, steps=0, stop_after=0, temp=0.05, hard_neg_weight=0.0,
          mlm_weight=0.0, mlm_prob=0.15, warmup=0.0, weight_decay=0.0, clip=1.0, dropout=None,
          attention_dropout=None, seed=42, threads=None, eval_sts=None, eval_every=125, keep="best",
          checkpoint=None, checkpoint_every=0, resume=False, log=None, strict=False, progress=None,
          teacher=None, mse_weight=1.0, rel_weight=0.0, rel_temp=0.05, cl_weight=0.0, sim_weight=0.0, shuffle_group=0):
    """Train with SimCSE (unsup / sup), MLM or distillation, as ``sembed train`` (same options,
    same defaults; docs/train.md). objective="distill" needs ``teacher``: a float32 .npy with one row
    per line of ``data`` (mse_weight, rel_weight, rel_temp, cl_weight, sim_weight as --mse-weight etc.; shuffle_group as
    --shuffle-group). Starts from ``model`` (a .semb path) or, with ``init``, from a fresh random
    encoder: a JSON file path or a dict {"layers", "hidden", "heads", "intermediate",
    "max_position", "type_vocab", "vocab": "vocab.txt", "lowercase"}. Writes ``out`` atomically.

    progress: optional callable(dict) called after each step with step, total_steps, epoch, loss,
    cl_loss, mlm_loss, lr, grad_norm, examples_per_s, eta_s, evaluated, dev, best_dev.
    Returns {"steps", "final_loss", "first_dev", "best_dev", "best_step", "data_xxh3", "rows",
    "skipped", "seconds"} (dev scores None without eval_sts). Bit-reproducible for a given seed."""
    if (model is None) == (init is None):
        raise ValueError("give exactly one of model (a .semb path) and init (a fresh encoder)")
    if objective not in _OBJECTIVES:
        raise ValueError(f"objective must be unsup, sup, mlm or distill, got {objective!r}")
    if pooler not in _POOLERS:
        raise ValueError(f"pooler must be cls, cls_before_pooler or mean, got {pooler!r}")
    if keep not in ("best", "last"):
        raise ValueError(f"keep must be 'best' or 'last', got {keep!r}")
    data_p, out_p = _fspath(data, "data"), _fspath(out, "out")
    if not os.path.exists(data_p):
        raise FileNotFoundError(2, f"no such data file: '{data_p}'", data_p)
    keep_alive = []

    def b(x, what):
        if x is None:
            return None
        v = os.fsencode(_fspath(x, what))
        keep_alive.append(v)
        return v

    p = lib.sembed_train_default_params()
    ini = None
    if init is not None:
        ini = _lib.TrainInit()
        if isinstance(init, dict):
            ini = lib.sembed_train_init_default()
            known = {"layers", "hidden", "heads", "intermediate", "max_position", "type_vocab", "vocab", "lowercase"}
            bad = set(init) - known
            if bad:
                raise ValueError(f"unknown init keys: {', '.join(sorted(bad))} (known: {', '.join(sorted(known))})")
            if "vocab" not in init:
                raise ValueError("init needs a 'vocab' path (one WordPiece token per line)")
            for k, v in init.items():
                if k == "vocab":
                    ini.vocab_path = b(v, "init['vocab']")
                elif k == "lowercase":
                    ini.lowercase = bool(v)
                else:
                    if not isinstance(v, int) or v <= 0:
                        raise ValueError(f"init['{k}'] must be a positive int, got {v!r}")
                    setattr(ini, k, v)
        else:
            clear_messages()
            check(lib.sembed_train_init_from_json(b(init, "init"), C.byref(ini)), f"cannot read init {init!r}")
        p.init = C.pointer(ini)
    else:
        mp = _fspath(model, "model")
        if not os.path.exists(mp):
            raise FileNotFoundError(2, f"no such model file: '{mp}'", mp)
        p.model_path = b(mp, "model")
    p.data_path, p.out_path = b(data_p, "data"), b(out_p, "out")
    p.objective, p.pooler, p.mlp_only_train = _OBJECTIVES[objective], _POOLERS[pooler], bool(mlp_only_train)
    p.batch, p.max_length, p.lr, p.epochs, p.steps, p.stop_after = batch, max_length, lr, epochs, steps, stop_after
    p.temp, p.hard_neg_weight, p.mlm_weight, p.mlm_prob = temp, hard_neg_weight, mlm_weight, mlm_prob
    p.warmup, p.weight_decay, p.clip = warmup, weight_decay, clip
    p.hidden_dropout = -1.0 if dropout is None else dropout
    p.attention_dropout = -1.0 if attention_dropout is None else attention_dropout
    p.seed, p.n_threads = seed, threads or 0
    p.eval_sts = b(eval_sts, "eval_sts")
    p.eval_every, p.keep_last = eval_every, keep == "last"
    p.checkpoint_dir, p.checkpoint_every, p.resume = b(checkpoint, "checkpoint"), checkpoint_every, bool(resume)
    p.log_csv, p.strict = b(log, "log"), bool(strict)
    p.teacher_path = b(teacher, "teacher")
    p.mse_weight, p.rel_weight, p.rel_temp, p.cl_weight = mse_weight, rel_weight, rel_temp, cl_weight
    p.sim_weight, p.shuffle_group = sim_weight, shuffle_group
    errors = []
    if progress is not None:
        def cb(pp, _ud):
            try:
                s = pp.contents
                progress({k: (_nan_none(getattr(s, k)) if isinstance(getattr(s, k), float) else getattr(s, k))
                          for k, _ in _lib.TrainProgress._fields_})
            except BaseException as e:  # reported after the run; never crosses into C
                if not errors:
                    errors.append(e)
        p.progress = _lib.TRAIN_PROGRESS(cb)
    r = _lib.TrainResult()
    try:
        clear_messages()
        check(lib.sembed_train(C.byref(p), C.byref(r)), "training failed")
    finally:
        if ini is not None and not isinstance(init, dict):
            lib.sembed_train_init_free(C.byref(ini))
    if errors:
        raise errors[0]
    return {"steps": r.steps, "final_loss": r.final_loss, "first_dev": _nan_none(r.first_dev),
            "best_dev": _nan_none(r.best_dev), "best_step": r.best_step, "data_xxh3": f"{r.data_xxh3:016x}",
            "rows": r.n_rows, "skipped": r.n_skipped, "seconds": r.seconds}
