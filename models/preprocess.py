"""Clip preprocessing for AVSlowFast: uint8 frames + mono waveform → (slow, fast, audio log-mel).

Everything is torch ops on the input's device so the serving runtimes (eager, TorchScript, ONNX)
run preprocessing next to the network; the decode workers only ship uint8 pixels and float audio.
"""

# No `from __future__ import annotations`: TorchScript must read the buffer annotations.
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from models.features import LogMelConfig, LogMelSpectrogram

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class PreprocessConfig:
    """How one AVSlowFast clip is sampled and normalised (defaults: the official 4x16 recipe)."""

    num_frames: int = 32  # Fast frames
    sampling_rate: int = 2  # grid steps between Fast frames
    target_fps: float = 30.0
    alpha: int = 8  # Slow frames = num_frames // alpha
    crop_size: int = 224
    short_side: int = 256
    test_crop_size: int = 256
    mean: RGB = (0.45, 0.45, 0.45)
    std: RGB = (0.225, 0.225, 0.225)
    audio: LogMelConfig = field(default_factory=LogMelConfig)

    def __post_init__(self) -> None:
        if self.num_frames <= 0 or self.sampling_rate <= 0 or self.target_fps <= 0:
            raise ValueError("num_frames, sampling_rate and target_fps must be positive")
        if not 0 < self.alpha <= self.num_frames:
            raise ValueError(f"alpha must be in (0, num_frames], got {self.alpha}")
        if min(self.crop_size, self.short_side, self.test_crop_size) <= 0:
            raise ValueError("crop_size, short_side and test_crop_size must be positive")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need 3 values, std positive")

    @property
    def slow_frames(self) -> int:
        return self.num_frames // self.alpha

    @property
    def clip_seconds(self) -> float:
        return self.num_frames * self.sampling_rate / self.target_fps

    @property
    def audio_samples(self) -> int:
        """Waveform samples covering exactly the clip span."""
        return round(self.clip_seconds * self.audio.sample_rate)

    def slow_index(self) -> Tensor:
        """Official Slow subset of Fast frames: ``linspace(0, T_f - 1, T_f // alpha).long()``."""
        return torch.linspace(0, self.num_frames - 1, self.slow_frames).long()

    def clip_spec(self) -> dict[str, int | float]:
        """Sampling numbers named as ``service.media.types.ClipSpec`` fields: ``ClipSpec(**d)``."""
        return {
            "num_frames": self.num_frames,
            "sampling_rate": self.sampling_rate,
            "target_fps": self.target_fps,
            "crop_size": self.crop_size,
            "audio_sample_rate": self.audio.sample_rate,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (tuples become lists); ``from_dict(to_dict())`` round-trips."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PreprocessConfig":
        """Missing keys take defaults; unknown keys are refused (a config typo must not pass)."""
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown PreprocessConfig keys: {sorted(unknown)}")
        kw = dict(d)
        for key in ("mean", "std"):
            if key in kw:
                kw[key] = tuple(float(v) for v in kw[key])
        if "audio" in kw:
            kw["audio"] = LogMelConfig.from_dict(kw["audio"])
        return cls(**kw)


class ClipInputs(NamedTuple):
    """AVSlowFast inputs: slow ``[B,3,T_s,S,S]``, fast ``[B,3,T_f,S,S]``, audio ``[B,1,F,M]``."""

    slow: Tensor
    fast: Tensor
    audio: Tensor


class ClipPreprocessor(nn.Module):
    """``(frames uint8 [B,T_f,S,S,3], audio float [B,N]) -> ClipInputs(slow, fast, audio)``.

    Outputs are in the dtype of the ``scale`` buffer (``dtype`` at construction, or whatever a
    later ``.half()``/``.to(dtype)`` made it), so a half-precision serving model gets half inputs.
    The log-mel runs in float32 regardless and is cast at the end.
    """

    scale: torch.Tensor
    shift: torch.Tensor
    slow_index: torch.Tensor

    def __init__(
        self, cfg: PreprocessConfig = PreprocessConfig(), dtype: torch.dtype = torch.float32
    ):
        super().__init__()
        self.cfg = cfg
        self.num_frames = cfg.num_frames
        self.logmel = LogMelSpectrogram(cfg.audio, normalize=True, to_num_frames=True)
        mean = torch.tensor(cfg.mean, dtype=torch.float64).view(1, 3, 1, 1, 1)
        std = torch.tensor(cfg.std, dtype=torch.float64).view(1, 3, 1, 1, 1)
        # (x / 255 - mean) / std folded into one multiply-add.
        self.register_buffer("scale", (1.0 / (255.0 * std)).to(dtype), persistent=False)
        self.register_buffer("shift", (-mean / std).to(dtype), persistent=False)
        self.register_buffer("slow_index", cfg.slow_index(), persistent=False)

    def forward(self, frames: Tensor, audio: Tensor) -> ClipInputs:
        if frames.dim() != 5 or frames.size(4) != 3 or frames.size(1) != self.num_frames:
            raise ValueError(
                f"frames must be [B, {self.num_frames}, S, S, 3], got {list(frames.shape)}"
            )
        if audio.dim() != 2 or audio.size(0) != frames.size(0):
            raise ValueError(f"audio must be [B, N] with the frames' B, got {list(audio.shape)}")
        dtype = self.scale.dtype
        # Channels-first copy while still 1 byte per value, then one fused multiply-add.
        fast = frames.permute(0, 4, 1, 2, 3).contiguous().to(dtype) * self.scale + self.shift
        slow = fast.index_select(2, self.slow_index)
        logmel = self.logmel(audio).to(dtype).unsqueeze(1)
        return ClipInputs(slow, fast, logmel)
