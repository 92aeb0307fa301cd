"""``config.json`` of a model package: the file names, and the strict parse into ``PackageConfig``.

Unknown or missing keys, wrong types, and label counts that do not match the heads raise
``PackageError``; ``models.package`` checks the weights against the architecture on load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from models.calibration import HeadCalibration
from models.configs import AVSlowFastConfig, HeadSpec
from models.preprocess import PreprocessConfig

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
