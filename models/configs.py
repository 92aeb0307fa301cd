"""AVSlowFast architecture configs (frozen dataclasses) and the named-config registry.

Symbols follow the paper (Xiao et al. 2020, Table 1): α (``alpha``) is the Fast/Slow frame
ratio, β = 1/``beta_inv`` the Fast channel ratio, β_A = 1/``audio_beta_inv`` the Audio channel
ratio, α_A (``audio_alpha``, official ``AU_ALPHA``) the log-mel frames per Slow frame.

Fusion points are named after the stage they follow: ``pool1`` (stem + pool), ``res2``, ``res3``,
``res4``; the AV-sync loss may also use ``res5`` (training-only modules, never served).

How audio joins the visual pathways at the ``afs_fusion`` points is ``av_fusion`` (the paper's
Fig. 2 / Table 5a): ``a_fs`` (released default: audio summed into Slow ++ F->S), ``a_f_s``
(A->F->S: audio summed into Fast first, then F->S carries it into Slow) or ``nonlocal``
(audio-visual non-local block, ``models.fusion.AudioVisualNonLocal``). The variants of the
paper's ablations (Tables 5a and 6) are named configs (``*_a2f2s``, ``*_avnl``, ``*_late``,
``*_fuse_res4``, ``*_fuse_res234``) for the tiny and the R50 4x16 networks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

PATHWAYS: tuple[str, ...] = ("slow", "fast", "audio")
STAGES: tuple[str, ...] = ("res2", "res3", "res4", "res5")
FUSION_POINTS: tuple[str, ...] = ("pool1", "res2", "res3", "res4")
SYNC_POINTS: tuple[str, ...] = (*FUSION_POINTS, "res5")
AV_FUSIONS: tuple[str, ...] = ("a_fs", "a_f_s", "nonlocal")
# Pathway sets a model may have: full AVSlowFast, visual-only SlowFast, audio-only AudioNet.
_VALID_PATHWAYS = {("slow", "fast", "audio"), ("slow", "fast"), ("audio",)}
DEPTH_BLOCKS: dict[int, tuple[int, int, int, int]] = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


@dataclass(frozen=True)
class HeadSpec:
    """One output head; its logits are a contiguous slice of the model output, in head order."""

    name: str
    num_classes: int
    multi_label: bool = False  # sigmoid per class instead of softmax over the head

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _is_int(self.num_classes):
            raise TypeError(f"head needs a str name and an int num_classes, got {self!r}")
        if not isinstance(self.multi_label, bool):
            raise TypeError("multi_label must be a bool")
        if not self.name or self.num_classes <= 0:
            raise ValueError(f"head needs a name and num_classes > 0, got {self!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeadSpec:
        return cls(**_known(cls, d))


@dataclass(frozen=True)
class AVSlowFastConfig:
    """Everything that determines the network's shape (not its weights)."""

    name: str = "custom"
    pathways: tuple[str, ...] = PATHWAYS
    depth: int = 50
    blocks: tuple[int, int, int, int] = (3, 4, 6, 3)  # residual blocks in res2..res5
    width_per_group: int = 64  # Slow stem width; res_k inner width = width * 2^(k-2)
    # Slow / Fast
    slow_frames: int = 4  # T_s; the Fast pathway sees alpha * T_s frames
    alpha: int = 8
    beta_inv: int = 8
    fusion_conv_ratio: int = 2  # Fast->Slow lateral outputs ratio * C_fast channels
    fusion_kernel: int = 5  # temporal taps of the Fast->Slow lateral
    slow_temporal_kernels: tuple[int, ...] = (1, 1, 1, 3, 3)  # conv1, res2..res5
    fast_temporal_kernels: tuple[int, ...] = (5, 3, 3, 3, 3)
    fs_fusion: tuple[bool, ...] = (False, False, True, True)  # at FUSION_POINTS
    # Audio
    audio_beta_inv: int = 2
    audio_frames: int = 128  # log-mel time frames
    mel_bins: int = 80
    audio_alpha: int = 32  # log-mel frames per Slow frame (AU_ALPHA)
    audio_tf_stages: int = 2  # res2..res(1+n) use the time-frequency block
    audio_stride: int = 2  # time and frequency stride in the first block of res3..res5
    afs_fusion: tuple[bool, ...] = (False, False, True, True)  # at FUSION_POINTS
    afs_dim: int = 64  # inner width of the Audio->FastSlow conv pair
    afs_kernel: int = 5
    av_fusion: str = "a_fs"  # one of AV_FUSIONS: how audio joins at the afs_fusion points
    # Training-only parts
    drop_pathway: float = 0.8
    avs_stages: tuple[bool, ...] = (False, False, True, True, True)  # at SYNC_POINTS
    avs_proj_dim: int = 64
    avs_margin: float = 0.99
    avs_var_thresh: float = 0.01
    avs_dup_thresh: float = 0.99999
    # Head
    dropout: float = 0.5
    heads: tuple[HeadSpec, ...] = field(default_factory=lambda: (HeadSpec("kinetics", 400),))
    crop_size: int = 224  # nominal test crop (the head pools adaptively, any crop works)
    bn_eps: float = 1e-5
    bn_momentum: float = 0.1

    def __post_init__(self) -> None:
        # JSON round trips give lists; normalise so that equality and hashing work.
        for name in (
            "pathways",
            "blocks",
            "slow_temporal_kernels",
            "fast_temporal_kernels",
            "fs_fusion",
            "afs_fusion",
            "avs_stages",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        heads = tuple(h if isinstance(h, HeadSpec) else HeadSpec(**h) for h in self.heads)
        object.__setattr__(self, "heads", heads)
        self._check_types()
        self._validate()

    # ---- derived sizes -------------------------------------------------------------------
    @property
    def fast_frames(self) -> int:
        return self.slow_frames * self.alpha

    @property
    def has_audio(self) -> bool:
        return "audio" in self.pathways

    @property
    def has_visual(self) -> bool:
        return "slow" in self.pathways

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.pathways

    @property
    def total_classes(self) -> int:
        return sum(h.num_classes for h in self.heads)

    def stage_width(self, pathway: str, stage: str) -> int:
        """Output channels of ``stage`` ("conv1", "res2".."res5") of ``pathway``."""
        base = self.width_per_group if stage == "conv1" else self.width_per_group * 4
        if stage != "conv1":
            base *= 2 ** STAGES.index(stage)
        return base // self._ratio(pathway)

    def inner_width(self, pathway: str, stage: str) -> int:
        """Bottleneck inner width of ``stage`` of ``pathway`` (TF-block: per branch)."""
        return self.width_per_group * 2 ** STAGES.index(stage) // self._ratio(pathway)

    def lateral_width(self, point: str) -> int:
        """Channels the Fast->Slow lateral concatenates onto Slow after ``point``."""
        return self.fusion_conv_ratio * self.stage_width("fast", _point_stage(point))

    def slow_width_after(self, point: str) -> int:
        """Slow channels after the fusions at ``point`` (what the next stage takes in)."""
        width = self.stage_width("slow", _point_stage(point))
        if point in FUSION_POINTS and self.fs_fusion[FUSION_POINTS.index(point)]:
            width += self.lateral_width(point)
        return width

    def audio_time_reduction(self, point: str) -> int:
        """How much the Audio pathway has shrunk the time axis by ``point``."""
        strided = max(0, SYNC_POINTS.index(point) - 1)  # res3, res4, res5 stride
        return self.audio_stride**strided

    def afs_time_stride(self, point: str) -> int:
        """Time stride of the second A->FS conv: brings audio to the Slow frame count."""
        return self.audio_alpha // self.audio_time_reduction(point)

    def audio_fusion_stride(self, point: str) -> int:
        """Time stride of the last audio conv of the fusion at ``point``.

        It brings the audio time axis to the Slow frames (A->FS, non-local) or, for A->F->S,
        to the Fast frames (``audio_alpha / alpha`` log-mel frames per Fast frame).
        """
        if self.av_fusion == "a_f_s":
            return max(1, self.audio_alpha // self.alpha // self.audio_time_reduction(point))
        return self.afs_time_stride(point)

    def input_shapes(self, crop: int | None = None, batch: int = 1) -> dict[str, tuple[int, ...]]:
        s = crop or self.crop_size
        shapes = {
            "slow": (batch, 3, self.slow_frames, s, s),
            "fast": (batch, 3, self.fast_frames, s, s),
            "audio": (batch, 1, self.audio_frames, self.mel_bins),
        }
        return {p: shapes[p] for p in self.pathways}

    def _ratio(self, pathway: str) -> int:
        return {"slow": 1, "fast": self.beta_inv, "audio": self.audio_beta_inv}[pathway]

    # ---- validation / serialisation ------------------------------------------------------
    def _check_types(self) -> None:
        """Each field must have its default's type (configs also come from JSON files)."""
        for f in fields(self):
            if f.name == "heads":
                continue
            value, default = getattr(self, f.name), f.default
            if isinstance(default, tuple):
                ok = isinstance(value, tuple) and all(_same_kind(v, default[0]) for v in value)
            else:
                ok = _same_kind(value, default)
            if not ok:
                raise TypeError(f"config field {f.name} must be like {default!r}, got {value!r}")
            if isinstance(default, float):
                object.__setattr__(self, f.name, float(value))

    def _validate(self) -> None:
        if self.pathways not in _VALID_PATHWAYS:
            raise ValueError(f"pathways must be one of {sorted(_VALID_PATHWAYS)}")
        if len(self.blocks) != 4 or min(self.blocks) < 1:
            raise ValueError(f"blocks must be 4 positive counts, got {self.blocks}")
        for name, n in (("fs_fusion", 4), ("afs_fusion", 4), ("avs_stages", 5)):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} needs {n} flags")
        if len(self.slow_temporal_kernels) != 5 or len(self.fast_temporal_kernels) != 5:
            raise ValueError("temporal kernels are given for conv1 and res2..res5")
        if not self.heads or len({h.name for h in self.heads}) != len(self.heads):
            raise ValueError("need at least one head and unique head names")
        if not 0.0 <= self.drop_pathway <= 1.0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError("drop_pathway must be in [0, 1] and dropout in [0, 1)")
        if min(self.width_per_group, self.alpha, self.beta_inv, self.audio_beta_inv) < 1:
            raise ValueError("width, alpha and channel ratios must be positive")
        if self.width_per_group % max(self.beta_inv, self.audio_beta_inv) != 0:
            raise ValueError("width_per_group must be divisible by beta_inv and audio_beta_inv")
        if self.av_fusion not in AV_FUSIONS:
            raise ValueError(f"av_fusion must be one of {AV_FUSIONS}, got {self.av_fusion!r}")
        if not 0 <= self.audio_tf_stages <= 4:
            raise ValueError("audio_tf_stages must be in 0..4")
        if not self.has_visual and (
            any(self.fs_fusion) or any(self.afs_fusion) or any(self.avs_stages)
        ):
            raise ValueError("an audio-only model has no fusion or AV-sync")
        if not self.has_audio and (any(self.afs_fusion) or any(self.avs_stages)):
            raise ValueError("a visual-only model has no audio fusion or AV-sync")
        if self.has_audio and self.has_visual:
            self._validate_audio_fusion()

    def _validate_audio_fusion(self) -> None:
        if self.audio_frames != self.audio_alpha * self.slow_frames:
            raise ValueError(
                f"audio_frames ({self.audio_frames}) must be audio_alpha * slow_frames "
                f"({self.audio_alpha} * {self.slow_frames}) so fused audio matches Slow time"
            )
        if self.av_fusion != "a_fs" and any(self.avs_stages):
            raise ValueError(
                f"AV-sync heads read the A->FS conv outputs; av_fusion={self.av_fusion!r} "
                "needs avs_stages all false"
            )
        used = [p for p, on in zip(FUSION_POINTS, self.afs_fusion, strict=True) if on]
        for p, on in zip(SYNC_POINTS, self.avs_stages, strict=True):
            if on and p != "res5":
                i = FUSION_POINTS.index(p)
                if not (self.afs_fusion[i] and self.fs_fusion[i]):
                    raise ValueError(f"AV-sync at {p} needs F->S and A->FS fusion there")
            if on:
                used.append(p)
        for p in used:
            red = self.audio_time_reduction(p)
            t_audio = self.audio_frames // red
            k = self.afs_kernel
            into_fast = self.av_fusion == "a_f_s" and p != "res5"
            stride = self.audio_fusion_stride(p) if p != "res5" else self.afs_time_stride(p)
            t_out = (t_audio + 2 * (k // 2) - k) // max(1, stride) + 1
            per_frame = self.audio_alpha // self.alpha if into_fast else self.audio_alpha
            target = self.fast_frames if into_fast else self.slow_frames
            if self.audio_alpha % (self.alpha if into_fast else 1) or per_frame % red:
                t_out = -1
            if t_out != target:
                which = "Fast" if into_fast else "Slow"
                raise ValueError(f"audio time at {p} ({t_audio}) does not stride to {which} frames")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["heads"] = [h.to_dict() for h in self.heads]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AVSlowFastConfig:
        kw = _known(cls, d)
        kw["heads"] = tuple(HeadSpec.from_dict(h) for h in kw.get("heads", ()))
        return cls(**kw)

    def with_heads(self, heads: tuple[HeadSpec, ...]) -> AVSlowFastConfig:
        return replace(self, heads=tuple(heads))


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _same_kind(value: object, default: object) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return _is_int(value)
    if isinstance(default, float):
        return _is_int(value) or isinstance(value, float)
    return isinstance(value, type(default))


def _point_stage(point: str) -> str:
    return "conv1" if point == "pool1" else point


def _known(cls: type, d: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise TypeError(f"{cls.__name__} must be a JSON object, got {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return dict(d)
