"""ctypes declarations of libsembed's public C API (include/sembed/*.h) and its loading.

Every struct here mirrors one in include/sembed/; tests/test_abi.py compiles a C program against
the headers and checks each size and field offset, so a header change cannot silently corrupt
memory. ctypes releases the GIL around every foreign call (CDLL, not PyDLL).
"""
import ctypes as C
import ctypes.util
import os
import threading

_HERE = os.path.dirname(os.path.abspath(__file__))


def _find_library():
    env = os.environ.get("SEMBED_LIBRARY")
    if env:
        if not os.path.isfile(env):
            raise ImportError(f"SEMBED_LIBRARY={env!r} is not a file")
        return env
    bundled = os.path.join(_HERE, "libsembed.so")
    if os.path.isfile(bundled):
        return bundled
    found = ctypes.util.find_library("sembed")
    if found:
        return found
    raise ImportError("libsembed.so not found: the package was installed without its library. "
                      "Install with `pip install ./python` from the sembed repository, or point "
                      "SEMBED_LIBRARY at a built libsembed.so")


LIBRARY_PATH = _find_library()
lib = C.CDLL(LIBRARY_PATH)

c_char_pp = C.POINTER(C.c_char_p)
c_float_p = C.POINTER(C.c_float)


# ---------------------------------------------------------------- structs (include/sembed/*.h)
class ModelParams(C.Structure):  # struct sembed_model_params
    _fields_ = [("compute", C.c_int), ("verify_checksums", C.c_bool), ("pack_eagerly", C.c_bool)]


class ContextParams(C.Structure):  # struct sembed_context_params
    _fields_ = [("pooling", C.c_int), ("normalize", C.c_int), ("max_length", C.c_uint32),
                ("truncate", C.c_int), ("n_threads", C.c_int32), ("batch_size", C.c_uint32),
                ("batch_tokens", C.c_uint32)]


class Input(C.Structure):  # struct sembed_input
    _fields_ = [("a", C.c_void_p), ("a_len", C.c_size_t), ("b", C.c_void_p), ("b_len", C.c_size_t)]


class Ids(C.Structure):  # struct sembed_ids
    _fields_ = [("ids", C.POINTER(C.c_int32)), ("type_ids", C.POINTER(C.c_int32)), ("n", C.c_uint32)]


class EmbedStats(C.Structure):  # struct sembed_embed_stats
    _fields_ = [("n_inputs", C.c_uint64), ("n_truncated", C.c_uint64), ("n_tokens", C.c_uint64),
                ("n_passes", C.c_uint64)]


class Tensor(C.Structure):  # struct sembed_tensor
    _fields_ = [("name", C.c_char_p), ("dtype", C.c_int), ("n_dims", C.c_uint32), ("dims", C.c_int64 * 4),
                ("offset", C.c_uint64), ("nbytes", C.c_uint64), ("checksum", C.c_uint64), ("data", C.c_void_p)]


CONVERT_PROGRESS = C.CFUNCTYPE(None, C.c_uint64, C.c_uint64, C.c_void_p)


class ConvertParams(C.Structure):  # struct sembed_convert_params
    _fields_ = [("src", C.c_char_p), ("out", C.c_char_p), ("dtype", C.c_int), ("pooling", C.c_char_p),
                ("normalize", C.c_int), ("name", C.c_char_p), ("keep_mlm_head", C.c_bool),
                ("created", C.c_int64), ("progress", CONVERT_PROGRESS), ("progress_user_data", C.c_void_p)]


class TrainInit(C.Structure):  # struct sembed_train_init
    _fields_ = [("vocab_path", C.c_char_p), ("layers", C.c_uint32), ("hidden", C.c_uint32),
                ("heads", C.c_uint32), ("intermediate", C.c_uint32), ("max_position", C.c_uint32),
                ("type_vocab", C.c_uint32), ("lowercase", C.c_bool), ("hidden_dropout", C.c_float),
                ("attention_dropout", C.c_float)]


class TrainProgress(C.Structure):  # struct sembed_train_progress
    _fields_ = [("step", C.c_int64), ("total_steps", C.c_int64), ("epoch", C.c_int64), ("loss", C.c_double),
                ("cl_loss", C.c_double), ("mlm_loss", C.c_double), ("lr", C.c_float), ("grad_norm", C.c_double),
                ("examples_per_s", C.c_double), ("eta_s", C.c_double), ("evaluated", C.c_bool),
                ("dev", C.c_double), ("best_dev", C.c_double)]


TRAIN_PROGRESS = C.CFUNCTYPE(None, C.POINTER(TrainProgress), C.c_void_p)


class TrainParams(C.Structure):  # struct sembed_train_params
    _fields_ = [("model_path", C.c_char_p), ("init", C.POINTER(TrainInit)), ("data_path", C.c_char_p),
                ("out_path", C.c_char_p), ("objective", C.c_int), ("pooler", C.c_int),
                ("mlp_only_train", C.c_bool), ("batch", C.c_uint32), ("max_length", C.c_uint32),
                ("lr", C.c_float), ("epochs", C.c_uint32), ("steps", C.c_int64), ("stop_after", C.c_int64),
                ("temp", C.c_float), ("hard_neg_weight", C.c_float), ("mlm_weight", C.c_float),
                ("mlm_prob", C.c_float), ("warmup", C.c_float), ("weight_decay", C.c_float),
                ("clip", C.c_float), ("hidden_dropout", C.c_float), ("attention_dropout", C.c_float),
                ("seed", C.c_uint64), ("n_threads", C.c_int), ("eval_sts", C.c_char_p),
                ("eval_every", C.c_int64), ("keep_last", C.c_bool), ("checkpoint_dir", C.c_char_p),
                ("checkpoint_every", C.c_int64), ("resume", C.c_bool), ("log_csv", C.c_char_p),
                ("strict", C.c_bool), ("progress", TRAIN_PROGRESS), ("progress_user", C.c_void_p),
                ("teacher_path", C.c_char_p), ("mse_weight", C.c_float), ("rel_weight", C.c_float),
                ("rel_temp", C.c_float), ("cl_weight", C.c_float), ("comm", C.c_void_p),
                ("sim_weight", C.c_float), ("shuffle_group", C.c_uint32)]


class TrainResult(C.Structure):  # struct sembed_train_result
    _fields_ = [("steps", C.c_int64), ("final_loss", C.c_double), ("first_dev", C.c_double),
                ("best_dev", C.c_double), ("best_step", C.c_int64), ("data_xxh3", C.c_uint64),
                ("n_rows", C.c_uint64), ("n_skipped", C.c_uint64), ("seconds", C.c_double)]


class EvalScore(C.Structure):  # struct sembed_eval_score
    _fields_ = [("name", C.c_char_p), ("path", C.c_char_p), ("n", C.c_uint64), ("n_unscored", C.c_uint64),
                ("n_malformed", C.c_uint64), ("spearman", C.c_double), ("pearson", C.c_double)]


# C struct name for each mirror (tests/test_abi.py).
STRUCTS = {
    "sembed_model_params": ModelParams, "sembed_context_params": ContextParams, "sembed_input": Input,
    "sembed_ids": Ids, "sembed_embed_stats": EmbedStats, "sembed_tensor": Tensor,
    "sembed_convert_params": ConvertParams, "sembed_train_init": TrainInit,
    "sembed_train_progress": TrainProgress, "sembed_train_params": TrainParams,
    "sembed_train_result": TrainResult, "sembed_eval_score": EvalScore,
}

# ---------------------------------------------------------------- functions
_vp = C.c_void_p
_FUNCS = {
    # common.h
    "sembed_strerror": (C.c_char_p, [C.c_int]),
    "sembed_version": (C.c_char_p, []),
    "sembed_log_set": (None, [_vp, _vp]),
    # info.h
    "sembed_kernel_isa": (C.c_char_p, []),
    "sembed_kernel_isa_best": (C.c_char_p, []),
    # semb.h
    "sembed_file_open": (C.c_int, [C.c_char_p, C.POINTER(_vp)]),
    "sembed_file_free": (None, [_vp]),
    "sembed_file_version": (C.c_uint32, [_vp]),
    "sembed_file_size": (C.c_uint64, [_vp]),
    "sembed_file_n_kv": (C.c_int64, [_vp]),
    "sembed_file_kv_key": (C.c_char_p, [_vp, C.c_int64]),
    "sembed_file_kv_type": (C.c_int, [_vp, C.c_int64]),
    "sembed_file_kv_array_info": (C.c_int, [_vp, C.c_int64, C.POINTER(C.c_int), C.POINTER(C.c_uint64)]),
    "sembed_file_kv_arr_bytes": (C.c_int, [_vp, C.c_int64, C.POINTER(_vp), C.POINTER(C.c_uint64)]),
    "sembed_file_kv_data": (_vp, [_vp, C.c_int64]),
    "sembed_file_get_str": (C.c_int, [_vp, C.c_char_p, C.POINTER(_vp), C.POINTER(C.c_uint64)]),
    "sembed_file_find_kv": (C.c_int64, [_vp, C.c_char_p]),
    "sembed_file_n_tensors": (C.c_int64, [_vp]),
    "sembed_file_tensor": (C.c_int, [_vp, C.c_int64, C.POINTER(Tensor)]),
    "sembed_file_verify": (C.c_int, [_vp, C.POINTER(C.c_int64)]),
    "sembed_type_name": (C.c_char_p, [C.c_int]),
    "sembed_dtype_name": (C.c_char_p, [C.c_int]),
    "sembed_dtype_from_name": (C.c_int, [C.c_char_p]),
    # model.h
    "sembed_model_default_params": (ModelParams, []),
    "sembed_model_load": (C.c_int, [C.c_char_p, C.POINTER(ModelParams), C.POINTER(_vp)]),
    "sembed_model_free": (None, [_vp]),
    "sembed_model_dim": (C.c_uint32, [_vp]),
    "sembed_model_hidden_size": (C.c_uint32, [_vp]),
    "sembed_model_num_layers": (C.c_uint32, [_vp]),
    "sembed_model_max_length": (C.c_uint32, [_vp]),
    "sembed_model_pooling": (C.c_int, [_vp]),
    "sembed_model_normalize": (C.c_bool, [_vp]),
    "sembed_model_num_labels": (C.c_uint32, [_vp]),
    "sembed_model_compute": (C.c_int, [_vp]),
    "sembed_model_tokenizer": (_vp, [_vp]),
    "sembed_model_file": (_vp, [_vp]),
    "sembed_pooling_name": (C.c_char_p, [C.c_int]),
    "sembed_pooling_parse": (C.c_int, [C.c_char_p, C.POINTER(C.c_int)]),
    "sembed_compute_name": (C.c_char_p, [C.c_int]),
    "sembed_compute_parse": (C.c_int, [C.c_char_p, C.POINTER(C.c_int)]),
    "sembed_context_default_params": (ContextParams, []),
    "sembed_context_create": (C.c_int, [_vp, C.POINTER(ContextParams), C.POINTER(_vp)]),
    "sembed_context_free": (None, [_vp]),
    "sembed_context_pooling": (C.c_int, [_vp]),
    "sembed_context_normalize": (C.c_bool, [_vp]),
    "sembed_context_max_length": (C.c_uint32, [_vp]),
    "sembed_context_stats": (None, [_vp, C.POINTER(EmbedStats)]),
    "sembed_context_stats_reset": (None, [_vp]),
    "sembed_embed_inputs": (C.c_int, [_vp, _vp, C.c_size_t, _vp]),
    "sembed_embed_texts": (C.c_int, [_vp, _vp, C.c_size_t, _vp]),
    "sembed_encode_ids": (C.c_int, [_vp, C.POINTER(Ids), _vp, _vp]),
    # tokenizer.h
    "sembed_tokenizer_vocab_size": (C.c_size_t, [_vp]),
    "sembed_tokenizer_token": (C.c_char_p, [_vp, C.c_int32]),
    "sembed_tokenizer_id": (C.c_int32, [_vp, C.c_char_p]),
    "sembed_tokenizer_encode_input": (C.c_int, [_vp, C.c_char_p, C.c_size_t, C.c_char_p, C.c_size_t, C.c_uint32,
                                                C.c_int, _vp, _vp, C.POINTER(C.c_uint32), C.POINTER(C.c_bool)]),
    # convert.h
    "sembed_convert_default_params": (ConvertParams, []),
    "sembed_convert": (C.c_int, [C.POINTER(ConvertParams)]),
    # train.h
    "sembed_train_init_default": (TrainInit, []),
    "sembed_train_init_from_json": (C.c_int, [C.c_char_p, C.POINTER(TrainInit)]),
    "sembed_train_init_free": (None, [C.POINTER(TrainInit)]),
    "sembed_train_default_params": (TrainParams, []),
    "sembed_train": (C.c_int, [C.POINTER(TrainParams), C.POINTER(TrainResult)]),
    "sembed_export_hf": (C.c_int, [C.c_char_p, C.c_char_p]),
    # eval.h
    "sembed_eval_sts": (C.c_int, [_vp, C.c_char_p, C.c_bool, C.POINTER(_vp)]),
    "sembed_eval_free": (None, [_vp]),
    "sembed_eval_name": (C.c_char_p, [_vp]),
    "sembed_eval_format": (C.c_char_p, [_vp]),
    "sembed_eval_n_sets": (C.c_size_t, [_vp]),
    "sembed_eval_set": (C.c_int, [_vp, C.c_size_t, C.POINTER(EvalScore)]),
    "sembed_eval_aggregate": (None, [_vp, C.POINTER(EvalScore), C.POINTER(EvalScore), C.POINTER(EvalScore)]),
}
for _name, (_res, _args) in _FUNCS.items():
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

# ---------------------------------------------------------------- errors and the log callback
ERROR_NAMES = {0: "SEMBED_OK", -1: "SEMBED_ENOMEM", -2: "SEMBED_EIO", -3: "SEMBED_EINVAL", -4: "SEMBED_ENOTFOUND",
               -5: "SEMBED_ETYPE", -6: "SEMBED_EMAGIC", -7: "SEMBED_EVERSION", -8: "SEMBED_EBYTEORDER",
               -9: "SEMBED_ETRUNCATED", -10: "SEMBED_ECHECKSUM", -11: "SEMBED_EBOUNDS", -12: "SEMBED_EALIGN",
               -13: "SEMBED_EOVERLAP", -14: "SEMBED_EDUPLICATE", -15: "SEMBED_EDTYPE", -16: "SEMBED_EDIMS",
               -17: "SEMBED_EUTF8", -18: "SEMBED_ECORRUPT", -19: "SEMBED_EUNSUPPORTED", -20: "SEMBED_EUNSAFE",
               -21: "SEMBED_EPARSE", -22: "SEMBED_ETOOLONG", -23: "SEMBED_ESTATE", -24: "SEMBED_EARCH",
               -25: "SEMBED_EMISSING"}


class SembedError(RuntimeError):
    """A libsembed call failed. ``status`` is the negative SEMBED_E* code, ``code`` its name,
    ``details`` the messages the library logged during the call (file, offset, tensor, line)."""

    def __init__(self, status, what, details=()):
        self.status = status
        self.code = ERROR_NAMES.get(status, str(status))
        self.details = list(details)
        reason = lib.sembed_strerror(status).decode()
        msg = f"{what}: {reason}"
        if self.details:
            msg += " (" + "; ".join(self.details) + ")"
        super().__init__(msg)


_tls = threading.local()
_MAX_MESSAGES = 16
LOG_LEVEL_NAMES = {0: "debug", 1: "info", 2: "warning", 3: "error"}


def _messages():
    m = getattr(_tls, "msgs", None)
    if m is None:
        m = _tls.msgs = []
    return m


def _on_log(level, msg, _ud):
    # Runs on whichever thread logged (ctypes takes the GIL). Warnings and errors are kept per
    # thread for the exception of the failing call; warnings also go to logging.
    try:
        if level < 2:
            return
        text = msg.decode("utf-8", "replace") if msg else ""
        m = _messages()
        m.append(text)
        if len(m) > _MAX_MESSAGES:
            del m[0]
        if level == 2:
            import logging
            logging.getLogger("sembed").warning("%s", text)
    except BaseException:  # never let an exception cross into C
        pass


_LOG_FN = C.CFUNCTYPE(None, C.c_int, C.c_char_p, C.c_void_p)(_on_log)
lib.sembed_log_set(C.cast(_LOG_FN, C.c_void_p), None)


def _unhook():
    try:
        lib.sembed_log_set(None, None)
    except Exception:
        pass


import atexit  # noqa: E402

atexit.register(_unhook)


def clear_messages():
    """Forget this thread's logged messages (before a call whose failure we may report)."""
    m = getattr(_tls, "msgs", None)
    if m:
        m.clear()


def check(status, what):
    """Raise SembedError for a negative status, with the messages logged since clear_messages()."""
    if status != 0:
        details = list(_messages())
        clear_messages()
        raise SembedError(status, what, details)
