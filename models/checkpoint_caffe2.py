"""Import PySlowFast's Caffe2-era SlowFast checkpoints (``SLOWFAST_8x8_R50.pkl`` and friends).

The files are pickles of ``{"blobs": {name: numpy array}, ...}``. Pickle runs whatever callables
a file names, so these are read with an allow-list unpickler: plain containers, numbers,
strings and numpy arrays (numpy's own reconstruct path) load, and any other global, such as
``os.system``, is refused with ``UnsafeCheckpointError`` before it is called.

Blob names follow the Caffe2 video models (``t_`` prefix: Fast pathway)::

    conv1_w, res_conv1_bn_{s,b,rm,riv}           -> s1.pathway0_stem.{conv,bn}
    res3_0_branch2a_w, res3_0_branch2a_bn_s     -> s3.pathway0_res0.branch2.{a,a_bn}
    res3_0_branch1_w, res3_0_branch1_bn_rm      -> s3.pathway0_res0.branch1{,_bn}
    t_pool1_subsample_{w,bn_*}                  -> s1_fuse.{conv_f2s,bn}
    t_res3_3_branch2c_bn_subsample_{w,bn_*}     -> s3_fuse.{conv_f2s,bn}   (after res3)
    pred_{w,b}                                  -> head.projection

(``s`` BN scale, ``b`` bias, ``rm`` running mean, ``riv`` running variance), then onto ours by
the PySlowFast rules of ``models.checkpoint``. ``*_momentum`` blobs are SGD state and skipped.
"""

from __future__ import annotations

import io
import pickle
import re
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from models.checkpoint import CheckpointError, ImportResult, official_to_ours
from models.checkpoint_fit import import_zoo_state


class UnsafeCheckpointError(CheckpointError):
    """The pickle names a callable outside the allow-list; nothing in it was executed."""

    code = "unsafe_checkpoint"


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, "latin1").
    if encoding not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """numpy's array/dtype/scalar rebuilders under both module names (``numpy.core`` in pickles
    written by numpy 1, ``numpy._core`` by numpy 2)."""
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy < 2
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]

    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for mod in ("numpy.core", "numpy._core"):
        allowed[(f"{mod}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{mod}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{mod}.numeric", "_frombuffer")] = getattr(numeric, "_frombuffer")  # noqa: B009
    return allowed


class _BlobUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals; any other reference raises before anything runs."""

    def __init__(self, file: io.BufferedIOBase) -> None:
        super().__init__(file, encoding="latin1")  # Python 2 pickles: str payloads are bytes
        self._allowed = _numpy_globals() | {
            ("collections", "OrderedDict"): OrderedDict,
            ("_codecs", "encode"): _latin1_encode,
            ("builtins", "set"): set,
            ("builtins", "frozenset"): frozenset,
            ("builtins", "bytearray"): bytearray,
        }

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # Python 2 pickles
        found = self._allowed.get((module, name))
        if found is None:
            raise UnsafeCheckpointError(
                f"refused to load {module}.{name}: a Caffe2 checkpoint holds only arrays, "
                "numbers, strings and containers"
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeCheckpointError("refused a persistent reference in the pickle")


def read_caffe2_blobs(path: str | Path) -> dict[str, Tensor]:
    """The numeric blobs of a Caffe2 ``.pkl`` as float32 tensors (keys as stored)."""
    try:
        with open(path, "rb") as f:
            obj = _BlobUnpickler(f).load()
    except (FileNotFoundError, UnsafeCheckpointError):
        raise
    except Exception as e:  # UnpicklingError, EOFError, ValueError from numpy, ...
        raise CheckpointError(f"{path}: not a Caffe2 blob pickle ({e})") from e
    blobs = obj.get("blobs", obj) if isinstance(obj, dict) else None
    if not isinstance(blobs, dict):
        raise CheckpointError(f"{path}: no 'blobs' dict")
    out: dict[str, Tensor] = {}
    for key, value in blobs.items():
        name = key.decode("latin1") if isinstance(key, bytes) else key
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            continue  # iteration counters, learning rates: not weights
        if value.dtype.kind not in "fiub":
            raise CheckpointError(f"{path}: blob {name!r} has non-numeric dtype {value.dtype}")
        out[name] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    if not out:
        raise CheckpointError(f"{path}: the blobs dict holds no arrays")
    return out


_BN = {"s": "weight", "b": "bias", "rm": "running_mean", "riv": "running_var"}
_BN_SUFFIX = r"_bn_(s|b|rm|riv)"
_C2Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str]]


def _pathway(prefix: str | None) -> str:
    return "pathway1" if prefix else "pathway0"


_C2_RULES: list[_C2Rule] = [
    (re.compile(r"^(t_)?conv1_w$"), lambda m: f"s1.{_pathway(m[1])}_stem.conv.weight"),
    (
        re.compile(rf"^(t_)?res_conv1{_BN_SUFFIX}$"),
        lambda m: f"s1.{_pathway(m[1])}_stem.bn.{_BN[m[2]]}",
    ),
    (re.compile(r"^t_pool1_subsample_w$"), lambda m: "s1_fuse.conv_f2s.weight"),
    (re.compile(rf"^t_pool1_subsample{_BN_SUFFIX}$"), lambda m: f"s1_fuse.bn.{_BN[m[1]]}"),
    (
        re.compile(r"^t_res([2-5])_\d+_branch2c_bn_subsample_w$"),
        lambda m: f"s{m[1]}_fuse.conv_f2s.weight",
    ),
    (
        re.compile(rf"^t_res([2-5])_\d+_branch2c_bn_subsample{_BN_SUFFIX}$"),
        lambda m: f"s{m[1]}_fuse.bn.{_BN[m[2]]}",
    ),
    (
        re.compile(r"^(t_)?res([2-5])_(\d+)_branch1_w$"),
        lambda m: f"s{m[2]}.{_pathway(m[1])}_res{m[3]}.branch1.weight",
    ),
    (
        re.compile(rf"^(t_)?res([2-5])_(\d+)_branch1{_BN_SUFFIX}$"),
        lambda m: f"s{m[2]}.{_pathway(m[1])}_res{m[3]}.branch1_bn.{_BN[m[4]]}",
    ),
    (
        re.compile(r"^(t_)?res([2-5])_(\d+)_branch2([abc])_w$"),
        lambda m: f"s{m[2]}.{_pathway(m[1])}_res{m[3]}.branch2.{m[4]}.weight",
    ),
    (
        re.compile(rf"^(t_)?res([2-5])_(\d+)_branch2([abc]){_BN_SUFFIX}$"),
        lambda m: f"s{m[2]}.{_pathway(m[1])}_res{m[3]}.branch2.{m[4]}_bn.{_BN[m[5]]}",
    ),
    (re.compile(r"^pred_w$"), lambda m: "head.projection.weight"),
    (re.compile(r"^pred_b$"), lambda m: "head.projection.bias"),
]


def caffe2_to_pyslowfast(name: str) -> str | None:
    """A Caffe2 blob name in PySlowFast's PyTorch naming (None: not a weight we know)."""
    for pattern, rename in _C2_RULES:
        m = pattern.match(name)
        if m:
            return rename(m)
    return None


def caffe2_to_ours(name: str, value: Tensor) -> tuple[str, Tensor] | None:
    official = caffe2_to_pyslowfast(name)
    if official is None:
        return None
    if official == "head.projection.weight" and value.dim() > 2:
        value = value.reshape(value.shape[0], -1)  # an FC stored as a 1x1x1 conv
    return official_to_ours(official, value)


def import_caffe2(path: str | Path, *, arch: str | None = None) -> ImportResult:
    """Build an ``AVSlowFast`` (visual pathways only) from a Caffe2 SlowFast ``.pkl``.

    Shapes come from the blobs; ``arch`` (default: ``slowfast_r50_8x8`` for a 7-tap lateral,
    ``slowfast_r50_4x16`` for a 5-tap one, as in the PySlowFast zoo) sets alpha and frames.
    """
    blobs = read_caffe2_blobs(path)
    weights = {k: v for k, v in blobs.items() if not k.endswith("_momentum")}
    return import_zoo_state(weights, caffe2_to_ours, arch=arch)
