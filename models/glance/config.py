"""Glance network configuration (frozen, JSON round-trip for the model package)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from models.configs import HeadSpec
from models.features import LogMelConfig
from models.mobilenet import MOBILENET_V2_SETTINGS, MobileNetConfig

RGB = tuple[float, float, float]


def _glance_logmel() -> LogMelConfig:
    # 64 mel, 25 ms window, 10 ms hop: the usual audio-tagging front end (1 s -> 98 frames).
    return LogMelConfig(n_fft=400, win_length=400, hop_length=160, n_mels=64, num_frames=None)


@dataclass(frozen=True)
class GlanceConfig:
    """AVGN-style glance (design notes: docs/glance.md §2).

    Encoders are MobileNetV2 trunks trained from scratch. AV-TeST is a pre-LN transformer over
    ``[CLS] + T visual + T audio`` tokens; AESPA and the patch policy only run on the K
    snippets the caller selected. ``rho`` is the patch side as a fraction of the frame's short
    side; (u, v) are top-left corner fractions, so every patch lies inside the frame.
    """

    num_snippets: int = 16
    frame_size: int = 160  # snippet frames are squashed (no crop) to frame_size squared
    frame_mean: RGB = (0.45, 0.45, 0.45)
    frame_std: RGB = (0.225, 0.225, 0.225)
    visual: MobileNetConfig = field(default_factory=MobileNetConfig)
    audio: MobileNetConfig = field(
        default_factory=lambda: MobileNetConfig(width_mult=0.5, in_channels=1)
    )
    audio_features: LogMelConfig = field(default_factory=_glance_logmel)
    audio_seconds: float = 1.0
    # AV-TeST
    d_model: int = 256
    num_layers: int = 2
    num_attention_heads: int = 4
    ffn_dim: int = 1024
    dropout: float = 0.1
    audio_token_dropout: float = 0.2  # per video in training: all its audio tokens replaced
    saliency_hidden: int = 256
    # AESPA + policy
    aespa_heads: int = 4
    policy_channels: int = 128
    policy_hidden: int = 256
    rho: float = 0.6
    detach_spatial: bool = True  # AESPA/policy train on stop-gradient inputs (AdaFocusV2)
    # Weight of the glance head's logits in the fused window scores (docs/glance.md §5: 0.3).
    fusion_beta: float = 0.3
    heads: tuple[HeadSpec, ...] = field(default_factory=lambda: (HeadSpec("kinetics", 400),))

    def __post_init__(self) -> None:
        if self.num_snippets <= 0 or self.d_model <= 0 or self.num_layers < 0:
            raise ValueError("num_snippets and d_model must be positive")
        if self.d_model % self.num_attention_heads or self.d_model % self.aespa_heads:
            raise ValueError("d_model must be divisible by the attention head counts")
        if not 0 < self.rho <= 1:
            raise ValueError(f"rho must be in (0, 1], got {self.rho}")
        if not 0 <= self.audio_token_dropout < 1 or not 0 <= self.dropout < 1:
            raise ValueError("dropout rates must be in [0, 1)")
        if self.audio.in_channels != 1:
            raise ValueError("the audio encoder reads a 1-channel log-mel")
        if self.frame_size % self.visual.stride:
            raise ValueError(
                f"frame_size must be a multiple of the trunk stride {self.visual.stride}"
            )
        if self.audio_samples < self.audio_features.n_fft:
            raise ValueError("audio_seconds is shorter than one STFT frame")
        if not self.heads:
            raise ValueError("at least one head is needed")
        if self.fusion_beta < 0:
            raise ValueError(f"fusion_beta must be >= 0, got {self.fusion_beta}")

    @property
    def map_size(self) -> int:
        """Side of the visual feature map (cells)."""
        return self.frame_size // self.visual.stride

    @property
    def audio_samples(self) -> int:
        return round(self.audio_seconds * self.audio_features.sample_rate)

    @property
    def total_classes(self) -> int:
        return sum(h.num_classes for h in self.heads)

    def with_heads(self, heads: tuple[HeadSpec, ...]) -> GlanceConfig:
        return replace(self, heads=heads)

    @classmethod
    def tiny(cls, **overrides: Any) -> GlanceConfig:
        """A ~80 MMAC-per-video glance for tests and synthetic data (64 px frames, 8x8 map)."""
        trunk = ((1, 8, 1, 1), (2, 16, 1, 2), (2, 24, 1, 2))  # stride 8
        kw: dict[str, Any] = {
            "frame_size": 64,
            "visual": MobileNetConfig(stem_channels=8, last_channels=32, settings=trunk),
            "audio": MobileNetConfig(
                in_channels=1, stem_channels=8, last_channels=32, settings=trunk
            ),
            "audio_seconds": 0.25,
            "d_model": 64,
            "num_layers": 1,
            "ffn_dim": 128,
            "saliency_hidden": 64,
            "policy_channels": 32,
            "policy_hidden": 64,
        }  # fmt: skip
        kw.update(overrides)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("visual", "audio"):
            d[key]["settings"] = [list(s) for s in d[key]["settings"]]
        d["frame_mean"], d["frame_std"] = list(self.frame_mean), list(self.frame_std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GlanceConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown GlanceConfig keys: {sorted(unknown)}")
        kw = dict(d)
        for key in ("visual", "audio"):
            if key in kw:
                sub = dict(kw[key])
                sub["settings"] = tuple(
                    tuple(int(v) for v in s) for s in sub.get("settings", MOBILENET_V2_SETTINGS)
                )
                kw[key] = MobileNetConfig(**sub)
        for key in ("frame_mean", "frame_std"):
            if key in kw:
                kw[key] = tuple(float(v) for v in kw[key])
        if "audio_features" in kw:
            kw["audio_features"] = LogMelConfig.from_dict(kw["audio_features"])
        if "heads" in kw:
            kw["heads"] = tuple(HeadSpec.from_dict(h) for h in kw["heads"])
        return cls(**kw)
