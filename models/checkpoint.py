"""Import official PySlowFast / PyAVSlowFast checkpoints (``.pyth``) into ``AVSlowFast``.

Checkpoints are read with ``torch.load(weights_only=True)``: plain tensors, numbers and strings
only, never pickled code. The architecture comes from the embedded ``cfg`` YAML (read with
``yaml.safe_load``) or, when there is none, from an explicit named config.

Official key names map onto ours rule by rule (``s3.pathway2_res0.branch2.t`` ->
``res3.audio.0.conv_t``); 5-D audio weights ``O x I x 1 x kT x kF`` lose their dummy dim.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from models.avslowfast import AVSlowFast
from models.configs import DEPTH_BLOCKS, AVSlowFastConfig, HeadSpec
from models.features import LogMelConfig
from models.named_configs import get_config
from models.preprocess import PreprocessConfig


class CheckpointError(ValueError):
    """The file is not a checkpoint we can read, or describes an architecture we do not build."""


@dataclass
class ImportReport:
    """What a checkpoint import did, in our key names (``unexpected`` in official names)."""

    loaded: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)  # ours, absent from the checkpoint: kept at init
    unexpected: list[str] = field(default_factory=list)  # checkpoint keys with no place in ours
    mismatched: list[str] = field(default_factory=list)  # same place, other shape: kept at init

    @property
    def complete(self) -> bool:
        return not (self.new or self.unexpected or self.mismatched)

    def summary(self) -> str:
        return (
            f"loaded {len(self.loaded)}, new {len(self.new)}, "
            f"unexpected {len(self.unexpected)}, shape-mismatched {len(self.mismatched)}"
        )


@dataclass
class ImportResult:
    model: AVSlowFast
    report: ImportReport
    source_cfg: dict[str, Any] | None  # the checkpoint's parsed cfg YAML, when it had one
    preprocessing: PreprocessConfig | None  # the test-time recipe of that cfg


_PATHWAY = {"0": "slow", "1": "fast", "2": "audio"}
_POINT = {"1": "pool1", "2": "res2", "3": "res3", "4": "res4"}
_BRANCH2 = {
    "a": "conv_a", "a_bn": "bn_a", "b": "conv_b", "b_bn": "bn_b", "c": "conv_c", "c_bn": "bn_c",
    "t": "conv_t", "t_bn": "bn_t", "f": "conv_f", "f_bn": "bn_f", "out": "conv_out", "out_bn": "bn_out",
}  # fmt: skip


def _squeeze_dummy_time(t: Tensor) -> Tensor:
    """Official audio convs are 3-D over (1, T, F): drop the dummy dim of 5-D weights."""
    return t.squeeze(2) if t.dim() == 5 else t


def _a2fs_weight(t: Tensor) -> Tensor:
    """``O x I x 1 x k x 1`` -> ``O x I x k`` (our A->FS convs are 1-D over time)."""
    return t.reshape(t.shape[0], t.shape[1], -1) if t.dim() == 5 else t


def _fuse_target(point_digit: str) -> str:
    return "sync.fs_res5" if point_digit == "5" else f"fast_to_slow.{_POINT[point_digit]}"


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str]], str], Callable[[Tensor], Tensor] | None]
_RULES: list[_Rule] = [
    (
        re.compile(r"^s1\.pathway([01])_stem\.(conv|bn)\.(.+)$"),
        lambda m: f"conv1.{_PATHWAY[m[1]]}.{m[2]}.{m[3]}",
        None,
    ),
    (
        re.compile(r"^s1\.pathway2_stem\.(conv_t|conv_f|bn)\.(.+)$"),
        lambda m: f"conv1.audio.{m[1]}.{m[2]}",
        _squeeze_dummy_time,
    ),
    *(
        (
            re.compile(rf"^s([2-5])\.pathway({p})_res(\d+)\.branch1(_bn)?\.(.+)$"),
            lambda m: f"res{m[1]}.{_PATHWAY[m[2]]}.{m[3]}.shortcut.{1 if m[4] else 0}.{m[5]}",
            convert,
        )
        for p, convert in (("[01]", None), ("2", _squeeze_dummy_time))
    ),
    *(
        (
            re.compile(rf"^s([2-5])\.pathway({p})_res(\d+)\.branch2\.([a-z_]+)\.(.+)$"),
            lambda m: f"res{m[1]}.{_PATHWAY[m[2]]}.{m[3]}.{_BRANCH2.get(m[4], '?' + m[4])}.{m[5]}",
            convert,
        )
        for p, convert in (("[01]", None), ("2", _squeeze_dummy_time))
    ),
    (
        re.compile(r"^s([1-5])_fuse\.conv_f2s\.(.+)$"),
        lambda m: f"{_fuse_target(m[1])}.conv.{m[2]}",
        None,
    ),
    (
        # AVSlowFast names the lateral's BN ``bn_f2s``; SlowFast's FuseFastToSlow names it ``bn``.
        re.compile(r"^s([1-5])_fuse\.(?:bn_f2s|bn)\.(.+)$"),
        lambda m: f"{_fuse_target(m[1])}.bn.{m[2]}",
        None,
    ),
    (
        re.compile(r"^s([1-5])_fuse\.(conv|bn)_a2fs_(\d)\.(.+)$"),
        lambda m: (
            f"{'sync.afs_res5' if m[1] == '5' else 'audio_to_fastslow.' + _POINT[m[1]]}"
            f".{m[2]}{m[3]}.{m[4]}"
        ),
        _a2fs_weight,
    ),
    (
        re.compile(r"^s([1-5])_fuse\.avs\.(ref_fc|query_fc)\.(.+)$"),
        lambda m: f"sync.heads.{'res5' if m[1] == '5' else _POINT[m[1]]}.{m[2]}.{m[3]}",
        None,
    ),
    (re.compile(r"^head\.projection\.(.+)$"), lambda m: f"head.proj.{m[1]}", None),
]


def official_to_ours(key: str, value: Tensor) -> tuple[str, Tensor] | None:
    """Map one official state-dict entry to our name and layout (None: no rule matches)."""
    for pattern, name, convert in _RULES:
        m = pattern.match(key)
        if m:
            return name(m), (convert(value) if convert else value)
    return None


KeyMapper = Callable[[str, Tensor], tuple[str, Tensor] | None]


def load_pyslowfast_state(
    model: AVSlowFast, state: Mapping[str, Tensor], mapper: KeyMapper = official_to_ours
) -> ImportReport:
    """Copy every entry that fits into ``model``; report the rest (never raises on fit).

    ``mapper`` names an entry in our layout (default: the PySlowFast names; the PyTorchVideo
    and Caffe2 importers pass their own).
    """
    ours = model.state_dict()
    report = ImportReport()
    updates: dict[str, Tensor] = {}
    for key, value in state.items():
        mapped = mapper(key, value)
        if mapped is None or mapped[0] not in ours:
            report.unexpected.append(key)
            continue
        name, tensor = mapped
        if tuple(tensor.shape) != tuple(ours[name].shape):
            report.mismatched.append(name)
            continue
        updates[name] = tensor.to(ours[name].dtype)
    model.load_state_dict(updates, strict=False)
    report.loaded = sorted(updates)
    report.new = sorted(set(ours) - set(updates) - set(report.mismatched))
    return report


def read_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """Load ``(model_state, cfg)`` from an official checkpoint without unpickling code."""
    try:
        obj = torch.load(Path(path), weights_only=True, map_location="cpu")
    except FileNotFoundError:
        raise
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, zip errors, ...
        raise CheckpointError(f"{path}: not a weights-only torch checkpoint ({e})") from e
    state = obj.get("model_state", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: no 'model_state' dict of tensors")
    # Checkpoints saved from DistributedDataParallel carry a "module." prefix.
    state = {k.removeprefix("module."): v for k, v in state.items()}
    cfg = None
    raw_cfg = obj.get("cfg") if isinstance(obj, dict) else None
    if raw_cfg is not None:
        try:
            cfg = yaml.safe_load(raw_cfg) if isinstance(raw_cfg, str) else None
        except yaml.YAMLError as e:
            raise CheckpointError(f"{path}: unreadable cfg YAML ({e})") from e
        if not isinstance(cfg, dict):
            raise CheckpointError(f"{path}: cfg is not a YAML mapping")
    return state, cfg


def config_from_pyslowfast_cfg(cfg: Mapping[str, Any], name: str = "imported") -> AVSlowFastConfig:
    """Translate a PySlowFast cfg (parsed YAML) into our config; refuse what we do not build."""
    try:
        return _config_from_cfg(cfg, name)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"unsupported or malformed checkpoint cfg: {e}") from e


def _config_from_cfg(cfg: Mapping[str, Any], name: str) -> AVSlowFastConfig:
    model, sf, rn, data = cfg["MODEL"], cfg.get("SLOWFAST", {}), cfg["RESNET"], cfg["DATA"]
    arch = model["ARCH"]
    if arch not in ("slowfast", "avslowfast"):
        raise ValueError(f"MODEL.ARCH {arch!r} (only slowfast and avslowfast are supported)")
    depth = int(rn["DEPTH"])
    blocks = DEPTH_BLOCKS[depth]
    if rn.get("NUM_GROUPS", 1) != 1 or rn.get("STRIDE_1X1", False):
        raise ValueError("grouped convs / stride on the 1x1 conv are not supported")
    if rn.get("TRANS_FUNC", "bottleneck_transform") != "bottleneck_transform":
        raise ValueError(f"RESNET.TRANS_FUNC {rn['TRANS_FUNC']!r}")
    if cfg.get("DETECTION", {}).get("ENABLE", False):
        raise ValueError("detection heads are not supported")
    temp = rn.get("NUM_BLOCK_TEMP_KERNEL")
    if temp and any(min(row) < n for row, n in zip(temp, blocks, strict=True)):
        raise ValueError("NUM_BLOCK_TEMP_KERNEL below the block count is not supported")
    if any(any(row) for row in cfg.get("NONLOCAL", {}).get("LOCATION", [])):
        raise ValueError("non-local blocks are not supported")
    av = arch == "avslowfast"
    alpha = int(sf.get("ALPHA", 8))
    kw: dict[str, Any] = {
        "name": name,
        "depth": depth,
        "blocks": blocks,
        "width_per_group": int(rn["WIDTH_PER_GROUP"]),
        "slow_frames": int(data["NUM_FRAMES"]) // alpha,
        "alpha": alpha,
        "beta_inv": int(sf.get("BETA_INV", 8)),
        "fusion_conv_ratio": int(sf.get("FUSION_CONV_CHANNEL_RATIO", 2)),
        "fusion_kernel": int(sf.get("FUSION_KERNEL_SZ", 5)),
        "dropout": float(model.get("DROPOUT_RATE", 0.5)),
        "crop_size": int(data.get("TEST_CROP_SIZE", 256)),
        "heads": (
            HeadSpec(
                str(cfg.get("TRAIN", {}).get("DATASET", "classes")).lower() or "classes",
                int(model["NUM_CLASSES"]),
                multi_label=model.get("HEAD_ACT") == "sigmoid" or bool(data.get("MULTI_LABEL")),
            ),
        ),
    }
    if not av:
        # The official SlowFast class always has F->S after pool1 and res2..res4.
        kw |= {
            "pathways": ("slow", "fast"),
            "fs_fusion": (True,) * 4,
            "afs_fusion": (False,) * 4,
            "avs_stages": (False,) * 5,
            "drop_pathway": 0.0,
        }
        return AVSlowFastConfig(**kw)
    if rn.get("AUDIO_TRANS_FUNC", "tf_bottleneck_transform_v1") != "tf_bottleneck_transform_v1":
        raise ValueError(f"RESNET.AUDIO_TRANS_FUNC {rn['AUDIO_TRANS_FUNC']!r} (only v1)")
    if sf.get("AU_FUSION_CONV_CHANNEL_MODE", "ByDim") != "ByDim":
        raise ValueError("AU_FUSION_CONV_CHANNEL_MODE must be ByDim")
    if int(sf.get("AU_FUSION_CONV_NUM", 2)) != 2:
        raise ValueError("AU_FUSION_CONV_NUM must be 2")
    kw |= {
        "fs_fusion": tuple(bool(v) for v in sf["FS_FUSION"]),
        "afs_fusion": tuple(bool(v) for v in sf["AFS_FUSION"]),
        "avs_stages": tuple(bool(v) for v in sf.get("AVS_FLAG", (False,) * 5)),
        "audio_beta_inv": int(sf.get("AU_BETA_INV", 2)),
        "audio_frames": int(data.get("AUDIO_FRAME_NUM", 128)),
        "mel_bins": int(data.get("AUDIO_MEL_NUM", 80)),
        "audio_alpha": int(sf.get("AU_ALPHA", 32)),
        "audio_tf_stages": int(rn.get("AUDIO_TRANS_NUM", 2)),
        "audio_stride": 2 if sf.get("AU_REDUCE_TF_DIM", True) else 1,
        "afs_dim": int(sf.get("AU_FUSION_CONV_CHANNEL_DIM", 64)),
        "afs_kernel": int(sf.get("AU_FUSION_KERNEL_SZ", 5)),
        "drop_pathway": float(sf.get("DROPPATHWAY_RATE", 0.8)),
        "avs_proj_dim": int(sf.get("AVS_PROJ_DIM", 64)),
        "avs_var_thresh": float(sf.get("AVS_VAR_THRESH", 0.01)),
        "avs_dup_thresh": float(sf.get("AVS_DUPLICATE_THRESH", 0.99999)),
    }
    return AVSlowFastConfig(**kw)


def import_pyslowfast(
    path: str | Path, *, arch: str | None = None, model: AVSlowFast | None = None
) -> ImportResult:
    """Build (or fill) an ``AVSlowFast`` from an official checkpoint.

    - ``model`` given: load what fits into it (e.g. a SlowFast checkpoint into an AVSlowFast:
      the visual pathways are initialised, the report lists the audio/fusion keys as ``new``).
    - ``arch`` given: that named config; its stem width and class count follow the weights.
    - otherwise the checkpoint's own ``cfg`` decides; without one this is an error.
    """
    state, cfg = read_checkpoint(path)
    if model is None:
        if arch is not None:
            config = _fit_named_config(get_config(arch), state)
        elif cfg is not None:
            config = config_from_pyslowfast_cfg(cfg, name=Path(path).stem)
        else:
            raise CheckpointError(f"{path}: no cfg in the checkpoint; pass an explicit arch")
        model = AVSlowFast(config)
    report = load_pyslowfast_state(model, state)
    prep = preprocessing_from_pyslowfast_cfg(cfg, model.config) if cfg is not None else None
    return ImportResult(model=model, report=report, source_cfg=cfg, preprocessing=prep)


def _fit_named_config(config: AVSlowFastConfig, state: Mapping[str, Tensor]) -> AVSlowFastConfig:
    """Take the width and class count from the weights (a named config fixes everything else)."""
    updates: dict[str, Any] = {}
    stem = state.get("s1.pathway0_stem.conv.weight")
    if stem is None:
        stem = state.get("s1.pathway2_stem.conv_t.weight")
        if stem is not None:
            updates["width_per_group"] = int(stem.shape[0]) * config.audio_beta_inv
    else:
        updates["width_per_group"] = int(stem.shape[0])
    proj = state.get("head.projection.weight")
    if proj is not None and int(proj.shape[0]) != config.total_classes:
        first = config.heads[0]
        updates["heads"] = (HeadSpec(first.name, int(proj.shape[0]), first.multi_label),)
    return replace(config, **updates) if updates else config


def preprocessing_from_pyslowfast_cfg(
    cfg: Mapping[str, Any], arch: AVSlowFastConfig
) -> PreprocessConfig:
    """The cfg's test-time recipe: frames, sampling, crop (short side = test crop, as the
    official Kinetics test loader does), RGB mean/std and, for audio models, the log-mel."""
    try:
        data = cfg["DATA"]
        crop = int(data.get("TEST_CROP_SIZE", arch.crop_size))
        audio = LogMelConfig(n_mels=arch.mel_bins, num_frames=arch.audio_frames)
        if arch.has_audio:
            sr = int(data.get("AUDIO_SAMPLE_RATE", 16000))
            audio = LogMelConfig(
                sample_rate=sr,
                n_fft=int(data.get("AUDIO_WIN_SZ", 32)) * sr // 1000,
                win_length=int(data.get("AUDIO_WIN_SZ", 32)) * sr // 1000,
                hop_length=int(data.get("AUDIO_STEP_SZ", 16)) * sr // 1000,
                n_mels=arch.mel_bins,
                mean=float(data.get("LOGMEL_MEAN", 0.0)),
                std=float(data.get("LOGMEL_STD", 1.0)),
                num_frames=arch.audio_frames,
            )
        return PreprocessConfig(
            num_frames=int(data["NUM_FRAMES"]),
            sampling_rate=int(data.get("SAMPLING_RATE", 2)),
            target_fps=float(data.get("TARGET_FPS", 30)),
            alpha=arch.alpha,
            crop_size=crop,
            short_side=crop,
            test_crop_size=crop,
            mean=tuple(float(v) for v in data.get("MEAN", (0.45,) * 3)),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data.get("STD", (0.225,) * 3)),  # type: ignore[arg-type]
            audio=audio,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"unusable DATA section in checkpoint cfg: {e}") from e
