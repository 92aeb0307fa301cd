"""Model packages: a directory the service loads without unpickling anything.

Layout::

    config.json               format + version, name, version, architecture, preprocessing,
                              heads (with labels), optional glance section, exports present
    weights.safetensors       inference weights (no training-only ``sync.*`` tensors)
    train_extras.safetensors  optional: the training-only AV-sync weights
    glance.safetensors        optional: glance network weights
    model.onnx / model.ts     optional exports of the ServingModel (see ``models.export``)

``config.json`` is validated strictly: unknown or missing keys, wrong types, label counts that
do not match the heads, or weights that do not match the architecture raise ``PackageError``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from models.avslowfast import TRAINING_ONLY_PREFIX, AVSlowFast
from models.calibration import HeadCalibration
from models.configs import AVSlowFastConfig, HeadSpec
from models.glance import GlanceConfig, GlanceNet
from models.preprocess import ClipPreprocessor, PreprocessConfig
from models.serving import ServingModel, check_compatible, default_preprocessing

FORMAT = "avserve-model-package"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"
TRAIN_EXTRAS_FILE = "train_extras.safetensors"
GLANCE_FILE = "glance.safetensors"
EXPORT_FILES = {"onnx": "model.onnx", "torchscript": "model.ts"}

_REQUIRED = {
    "format",
    "format_version",
    "name",
    "version",
    "architecture",
    "preprocessing",
    "heads",
}
_OPTIONAL = {"weights", "train_extras", "glance", "exports", "metadata", "calibration"}


class PackageError(ValueError):
    """A model package is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class PackageConfig:
    """The parsed, validated ``config.json``."""

    name: str
    version: str
    architecture: AVSlowFastConfig  # heads included (from the "heads" section)
    preprocessing: PreprocessConfig
    labels: dict[str, tuple[str, ...]]
    # {"config": {...}, "weights": "glance.safetensors", "patch_rho": served patch (optional)}
    glance: dict[str, Any] | None = None
    exports: dict[str, dict[str, Any]] = field(default_factory=dict)
    train_extras: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, HeadCalibration] = field(default_factory=dict)  # by head name

    @property
    def heads(self) -> tuple[HeadSpec, ...]:
        return self.architecture.heads

    def head_calibration(self, head: str) -> HeadCalibration:
        """The head's calibration and abstention rules (identity when none was fitted)."""
        return self.calibration.get(head) or HeadCalibration()

    def to_dict(self) -> dict[str, Any]:
        arch = self.architecture.to_dict()
        arch.pop("heads")
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "version": self.version,
            "architecture": arch,
            "preprocessing": self.preprocessing.to_dict(),
            "heads": [h.to_dict() | {"labels": list(self.labels[h.name])} for h in self.heads],
            "weights": WEIGHTS_FILE,
            "train_extras": self.train_extras,
            "glance": self.glance,
            "exports": self.exports,
            "metadata": self.metadata,
            "calibration": {k: v.to_dict() for k, v in self.calibration.items()} or None,
        }

    @classmethod
    def from_dict(cls, d: Any) -> PackageConfig:
        try:
            return _parse(d)
        except PackageError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise PackageError(f"invalid {CONFIG_FILE}: {e}") from e


def _parse(d: Any) -> PackageConfig:
    if not isinstance(d, dict):
        raise PackageError(f"{CONFIG_FILE} must hold a JSON object")
    missing, unknown = _REQUIRED - set(d), set(d) - _REQUIRED - _OPTIONAL
    if missing or unknown:
        raise PackageError(
            f"{CONFIG_FILE}: missing keys {sorted(missing)}, unknown {sorted(unknown)}"
        )
    if d["format"] != FORMAT:
        raise PackageError(f"not an avserve model package (format {d['format']!r})")
    if d["format_version"] != FORMAT_VERSION:
        raise PackageError(f"unsupported package format_version {d['format_version']!r}")
    for key in ("name", "version"):
        if not isinstance(d[key], str) or not d[key]:
            raise PackageError(f"{key} must be a non-empty string")
    if d.get("weights", WEIGHTS_FILE) != WEIGHTS_FILE:
        raise PackageError(f"weights must be {WEIGHTS_FILE}")
    if not isinstance(d["heads"], list) or not d["heads"]:
        raise PackageError("heads must be a non-empty list")
    heads, labels = [], {}
    for h in d["heads"]:
        if not isinstance(h, dict) or "labels" not in h:
            raise PackageError("every head needs name, num_classes and labels")
        spec = HeadSpec.from_dict({k: v for k, v in h.items() if k != "labels"})
        names = h["labels"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise PackageError(f"labels of head {spec.name!r} must be a list of strings")
        if len(names) != spec.num_classes:
            raise PackageError(
                f"head {spec.name!r} has {spec.num_classes} classes but {len(names)} labels"
            )
        heads.append(spec)
        labels[spec.name] = tuple(names)
    arch = d["architecture"]
    if not isinstance(arch, dict) or "heads" in arch:
        raise PackageError("architecture must be an object without heads (see the heads section)")
    architecture = AVSlowFastConfig.from_dict(arch | {"heads": [h.to_dict() for h in heads]})
    preprocessing = PreprocessConfig.from_dict(_obj(d["preprocessing"], "preprocessing"))
    glance = d.get("glance")
    if glance is not None:
        glance = _obj(glance, "glance")
        keys = set(glance)
        if not {"config", "weights"} <= keys <= {"config", "weights", "patch_rho"} or (
            glance["weights"] != GLANCE_FILE
        ):
            raise PackageError(f"glance must be {{config, weights: {GLANCE_FILE!r}, patch_rho?}}")
        _obj(glance["config"], "glance.config")
        rho = glance.get("patch_rho")
        if rho is not None and not (isinstance(rho, int | float) and 0 < rho <= 1):
            raise PackageError(f"glance.patch_rho must be in (0, 1], got {rho!r}")
    exports = _obj(d.get("exports") or {}, "exports")
    for kind, entry in exports.items():
        if (
            kind not in EXPORT_FILES
            or _obj(entry, f"exports.{kind}").get("file") != EXPORT_FILES[kind]
        ):
            raise PackageError(f"unknown export entry {kind!r}: {entry!r}")
    extras = d.get("train_extras")
    if extras not in (None, TRAIN_EXTRAS_FILE):
        raise PackageError(f"train_extras must be null or {TRAIN_EXTRAS_FILE!r}")
    calibration = {}
    for head, entry in _obj(d.get("calibration") or {}, "calibration").items():
        if head not in labels:
            raise PackageError(f"calibration for unknown head {head!r}")
        calibration[head] = HeadCalibration.from_dict(_obj(entry, f"calibration.{head}"))
        calibration[head].check_labels(labels[head])
    return PackageConfig(
        name=d["name"],
        version=d["version"],
        architecture=architecture,
        preprocessing=preprocessing,
        labels=labels,
        glance=glance,
        exports=exports,
        train_extras=extras,
        metadata=_obj(d.get("metadata") or {}, "metadata"),
        calibration=calibration,
    )


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PackageError(f"{what} must be a JSON object")
    return value


@dataclass
class ModelPackage:
    """A loaded package: the network in eval mode plus everything needed to serve it."""

    path: Path
    config: PackageConfig
    model: AVSlowFast

    @property
    def heads(self) -> tuple[HeadSpec, ...]:
        return self.config.heads

    @property
    def labels(self) -> dict[str, tuple[str, ...]]:
        return self.config.labels

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def version(self) -> str:
        return self.config.version

    def preprocessor(self, dtype: torch.dtype = torch.float32) -> ClipPreprocessor:
        return ClipPreprocessor(self.config.preprocessing, dtype=dtype)

    def serving_model(self) -> ServingModel:
        return ServingModel(self.preprocessor(), self.model).eval()

    def export_path(self, kind: str) -> Path | None:
        """``model.onnx`` / ``model.ts`` when config.json lists it and the file exists."""
        if kind not in self.config.exports:
            return None
        p = self.path / EXPORT_FILES[kind]
        return p if p.is_file() else None

    def glance_patch_rho(self) -> float | None:
        """The served patch side / short side chosen on validation videos (None: the glance
        network's own ``rho``, the one its patch policy trained with)."""
        rho = (self.config.glance or {}).get("patch_rho")
        return None if rho is None else float(rho)

    def glance_model(self) -> GlanceNet | None:
        """The glance network, when the package has one."""
        if self.config.glance is None:
            return None
        net = GlanceNet(GlanceConfig.from_dict(self.config.glance["config"]))
        _load_strict(net, self.path / GLANCE_FILE)
        return net.eval()


def save_package(
    directory: str | Path,
    model: AVSlowFast,
    *,
    name: str,
    version: str,
    labels: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    heads: Sequence[HeadSpec] | None = None,
    preprocessing: PreprocessConfig | None = None,
    glance: nn.Module | None = None,
    extra_metadata: Mapping[str, Any] | None = None,
    include_training_parts: bool = False,
) -> Path:
    """Write ``model`` as a package into ``directory`` (created; stale exports are removed).

    ``labels``: a list (single head) or ``{head: [labels]}``; default ``class_<i>``.
    ``heads``: rename heads / set multi_label; class counts must match the model's.
    ``glance``: a ``models.glance.GlanceNet`` (its ``cfg.to_dict()`` and weights are stored).
    """
    arch = model.config
    if heads is not None:
        if [h.num_classes for h in heads] != [h.num_classes for h in arch.heads]:
            raise PackageError("heads must keep the model's class counts per head")
        arch = arch.with_heads(tuple(heads))
    label_map = _label_map(arch.heads, labels)
    preprocessing = preprocessing or default_preprocessing(arch)
    try:
        check_compatible(preprocessing, model)
    except ValueError as e:
        raise PackageError(str(e)) from e

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for fname in (*EXPORT_FILES.values(), TRAIN_EXTRAS_FILE, GLANCE_FILE):
        (out / fname).unlink(missing_ok=True)  # they would not match the new weights
    _save_tensors(model.inference_state_dict(), out / WEIGHTS_FILE)
    extras = None
    if include_training_parts and model.sync is not None:
        state = model.state_dict()
        _save_tensors(
            {k: v for k, v in state.items() if k.startswith(TRAINING_ONLY_PREFIX)},
            out / TRAIN_EXTRAS_FILE,
        )
        extras = TRAIN_EXTRAS_FILE
    glance_section = None
    if glance is not None:
        _save_tensors(glance.state_dict(), out / GLANCE_FILE)
        glance_config: Any = getattr(glance, "cfg", None) or getattr(glance, "config", None)
        if glance_config is None or not hasattr(glance_config, "to_dict"):
            raise PackageError("glance must be a GlanceNet (its .cfg has to_dict())")
        glance_section = {"config": glance_config.to_dict(), "weights": GLANCE_FILE}
    config = PackageConfig(
        name=name,
        version=version,
        architecture=arch,
        preprocessing=preprocessing,
        labels=label_map,
        glance=glance_section,
        train_extras=extras,
        metadata=dict(extra_metadata or {}),
    )
    write_config(out, config)
    return out


def write_config(directory: Path, config: PackageConfig) -> None:
    """Atomically (re)write ``config.json`` (a reader never sees a half-written file)."""
    tmp = directory / f".{CONFIG_FILE}.tmp"
    tmp.write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    os.replace(tmp, directory / CONFIG_FILE)


def read_config(directory: str | Path) -> PackageConfig:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise PackageError(f"{directory}: no {CONFIG_FILE} (not a model package)")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PackageError(f"{path}: not valid JSON ({e})") from e
    return PackageConfig.from_dict(raw)


def load_package(
    directory: str | Path, *, device: str | torch.device = "cpu", training_parts: bool = False
) -> ModelPackage:
    """Load and validate a package; the model comes back in eval mode on ``device``."""
    path = Path(directory)
    config = read_config(path)
    try:
        check_compatible(
            config.preprocessing, AVSlowFast(config.architecture, training_parts=False)
        )
    except ValueError as e:
        raise PackageError(f"{path}: {e}") from e
    with_sync = training_parts and config.train_extras is not None
    model = AVSlowFast(config.architecture, training_parts=with_sync)
    state = _read_tensors(path / WEIGHTS_FILE)
    if with_sync:
        state |= _read_tensors(path / TRAIN_EXTRAS_FILE)
    _check_state(model, state, path)
    model.load_state_dict(state)
    return ModelPackage(path=path, config=config, model=model.to(device).eval())


def _label_map(
    heads: Sequence[HeadSpec], labels: Mapping[str, Sequence[str]] | Sequence[str] | None
) -> dict[str, tuple[str, ...]]:
    if labels is None:
        return {h.name: tuple(f"class_{i}" for i in range(h.num_classes)) for h in heads}
    if not isinstance(labels, Mapping):
        if len(heads) != 1:
            raise PackageError("a plain label list needs a single-head model; pass {head: labels}")
        labels = {heads[0].name: labels}
    if set(labels) != {h.name for h in heads}:
        raise PackageError(
            f"labels given for {sorted(labels)}, heads are {[h.name for h in heads]}"
        )
    out = {h.name: tuple(str(x) for x in labels[h.name]) for h in heads}
    for h in heads:
        if len(out[h.name]) != h.num_classes:
            raise PackageError(
                f"head {h.name!r}: {h.num_classes} classes, {len(out[h.name])} labels"
            )
    return out


def _save_tensors(state: Mapping[str, Tensor], path: Path) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(path))


def _read_tensors(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise PackageError(f"{path.parent}: missing {path.name}")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as e:
        raise PackageError(f"{path}: unreadable safetensors ({e})") from e


def _check_state(module: nn.Module, state: Mapping[str, Tensor], path: Path) -> None:
    expected = module.state_dict()
    missing, unknown = set(expected) - set(state), set(state) - set(expected)
    bad = [k for k in set(expected) & set(state) if expected[k].shape != state[k].shape]
    if missing or unknown or bad:
        raise PackageError(
            f"{path}: weights do not match the architecture (missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unknown)[:3]}, wrong shape {sorted(bad)[:3]})"
        )


def _load_strict(module: nn.Module, file: Path) -> None:
    state = _read_tensors(file)
    _check_state(module, state, file.parent)
    module.load_state_dict(state)
