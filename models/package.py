"""Model packages: a directory the service loads without unpickling anything.

Layout::

    config.json               format + version, name, version, architecture, preprocessing,
                              heads (with labels), optional glance section, exports present
    weights.safetensors       inference weights (no training-only ``sync.*`` tensors)
    train_extras.safetensors  optional: the training-only AV-sync weights
    glance.safetensors        optional: glance network weights
    model.onnx / model.ts     optional exports of the ServingModel (see ``models.export``)

``config.json`` is validated strictly (``models.package_config``): unknown or missing keys,
wrong types, label counts that do not match the heads, or weights that do not match the
architecture raise ``PackageError``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from models.avslowfast import TRAINING_ONLY_PREFIX, AVSlowFast
from models.configs import HeadSpec
from models.glance import GlanceConfig, GlanceNet
from models.package_config import (
    CONFIG_FILE,
    EXPORT_FILES,
    GLANCE_FILE,
    TRAIN_EXTRAS_FILE,
    WEIGHTS_FILE,
    PackageConfig,
    PackageError,
)
from models.preprocess import ClipPreprocessor, PreprocessConfig
from models.serving import ServingModel, check_compatible, default_preprocessing


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
