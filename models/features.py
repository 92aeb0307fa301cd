"""Log-mel front end in plain torch ops (no torchaudio, no ``torch.stft``).

Matches the official AVSlowFast ``gen_logmel`` (librosa ``melspectrogram`` with ``center=False``,
periodic Hann, power 2, HTK mel scale with Slaney area normalisation, natural ``log(S + 1e-8)``).
The STFT is framing (``unfold``) followed by one matmul with a precomputed windowed DFT basis, so
the module is a handful of GPU-friendly ops that also export to ONNX (opset 17) and TorchScript.
"""

# No `from __future__ import annotations`: TorchScript must read the buffer annotations.
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class LogMelConfig:
    """Log-mel parameters; the defaults are the official AVSlowFast audio front end."""

    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 512  # <= n_fft; a shorter Hann window is centred in the frame (as librosa)
    hop_length: int = 256
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float | None = 8000.0  # None: Nyquist
    htk: bool = True
    log_offset: float = 1e-8
    mean: float = -7.03
    std: float = 4.66
    num_frames: int | None = 128  # nearest-index resampling of the time axis; None keeps all

    def __post_init__(self) -> None:
        if not 0 < self.win_length <= self.n_fft:
            raise ValueError(f"win_length must be in (0, n_fft], got {self.win_length}")
        if self.hop_length <= 0 or self.n_mels <= 0 or self.sample_rate <= 0:
            raise ValueError("sample_rate, hop_length and n_mels must be positive")
        if self.std <= 0:
            raise ValueError(f"std must be positive, got {self.std}")
        if self.num_frames is not None and self.num_frames <= 0:
            raise ValueError(f"num_frames must be positive or None, got {self.num_frames}")
        nyquist = self.sample_rate / 2
        if not 0 <= self.f_min < (self.f_max if self.f_max is not None else nyquist) <= nyquist:
            raise ValueError("need 0 <= f_min < f_max <= sample_rate / 2")

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1

    def frames_for(self, num_samples: int) -> int:
        """STFT frames (before any resampling) for a waveform of ``num_samples`` samples."""
        return 0 if num_samples < self.n_fft else 1 + (num_samples - self.n_fft) // self.hop_length

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LogMelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown LogMelConfig keys: {sorted(unknown)}")
        return cls(**d)


def _hz_to_mel(f: Tensor, htk: bool) -> Tensor:
    if htk:
        return 2595.0 * torch.log10(1.0 + f / 700.0)
    # Slaney: linear below 1 kHz, logarithmic above (librosa's default scale).
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(
        f >= min_log_hz,
        min_log_mel + torch.log(torch.clamp(f, min=min_log_hz) / min_log_hz) / logstep,
        f / f_sp,
    )


def _mel_to_hz(m: Tensor, htk: bool) -> Tensor:
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return torch.where(
        m >= min_log_mel, min_log_hz * torch.exp(logstep * (m - min_log_mel)), f_sp * m
    )


def mel_filterbank(cfg: LogMelConfig, dtype: torch.dtype = torch.float64) -> Tensor:
    """Triangular mel filters ``[n_mels, n_freqs]``, Slaney area norm (librosa ``filters.mel``)."""
    f_max = cfg.f_max if cfg.f_max is not None else cfg.sample_rate / 2
    fft_freqs = torch.linspace(0, cfg.sample_rate / 2, cfg.n_freqs, dtype=torch.float64)
    mel_lo = _hz_to_mel(torch.tensor(cfg.f_min, dtype=torch.float64), cfg.htk)
    mel_hi = _hz_to_mel(torch.tensor(f_max, dtype=torch.float64), cfg.htk)
    mels = torch.linspace(0, 1, cfg.n_mels + 2, dtype=torch.float64) * (mel_hi - mel_lo) + mel_lo
    mel_f = _mel_to_hz(mels, cfg.htk)
    fdiff = mel_f[1:] - mel_f[:-1]
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    enorm = 2.0 / (mel_f[2:] - mel_f[:-2])
    return (weights * enorm[:, None]).to(dtype)


def windowed_dft_basis(cfg: LogMelConfig, dtype: torch.dtype = torch.float64) -> Tensor:
    """``[n_fft, 2 * n_freqs]``: columns are Hann-windowed cos then -sin of the one-sided DFT."""
    window = torch.hann_window(cfg.win_length, periodic=True, dtype=torch.float64)
    left = (cfg.n_fft - cfg.win_length) // 2
    window = nn.functional.pad(window, (left, cfg.n_fft - cfg.win_length - left))
    n = torch.arange(cfg.n_fft, dtype=torch.float64)
    k = torch.arange(cfg.n_freqs, dtype=torch.float64)
    # (k * n) mod n_fft keeps the phase argument small so cos/sin stay exact to float64 rounding.
    phase = 2 * math.pi * torch.remainder(n[:, None] * k[None, :], cfg.n_fft) / cfg.n_fft
    return torch.cat([torch.cos(phase), -torch.sin(phase)], dim=1).mul(window[:, None]).to(dtype)


def nearest_frame_index(num_in: int, num_out: int, device: torch.device | None = None) -> Tensor:
    """Official clip matching: ``np.linspace(0, num_in - 1, num_out).astype(int)``, reproduced
    bit-for-bit (float64 ``i * step``, then the last index set to exactly ``num_in - 1``)."""
    if num_out == 1:
        return torch.zeros(1, dtype=torch.long, device=device)
    step = (num_in - 1) / (num_out - 1)
    idx = (torch.arange(num_out - 1, dtype=torch.float64, device=device) * step).long()
    last = torch.full((1,), num_in - 1, dtype=torch.long, device=device)
    return torch.cat([idx, last])


class LogMelSpectrogram(nn.Module):
    """Waveform ``[B, N]`` → log-mel ``[B, frames, n_mels]`` (time-major).

    The ``normalize`` flag applies ``(x - mean) / std``, the ``to_num_frames`` flag the official
    nearest-index resampling to ``cfg.num_frames``; both steps are also callable on their own.
    Computation runs in the dtype of the DFT basis, which never drops below float32 (see
    ``_apply``): half precision would wreck the power of quiet bands, so callers cast the result.
    """

    dft_basis: torch.Tensor
    mel_basis: torch.Tensor

    def __init__(
        self,
        cfg: LogMelConfig = LogMelConfig(),
        *,
        normalize: bool = False,
        to_num_frames: bool = False,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.apply_normalize = normalize
        self.apply_to_num_frames = to_num_frames and cfg.num_frames is not None
        self.n_fft = cfg.n_fft
        self.hop_length = cfg.hop_length
        self.n_freqs = cfg.n_freqs
        self.log_offset = cfg.log_offset
        self.mean = cfg.mean
        self.std = cfg.std
        self.num_frames = cfg.num_frames if cfg.num_frames is not None else 0
        # Derived constants, not weights: keep them out of the state dict.
        self.register_buffer("dft_basis", windowed_dft_basis(cfg, torch.float32), persistent=False)
        self.register_buffer(
            "mel_basis", mel_filterbank(cfg, torch.float32).t().contiguous(), persistent=False
        )

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> "LogMelSpectrogram":
        super()._apply(fn, recurse)
        # The bases are derived constants: rebuild them from the config in the new dtype rather
        # than casting (a float64 module must not carry float32-rounded bases), and never go below
        # float32 (.half() of a parent model would wreck the power of quiet bands).
        dtype, device = self.dft_basis.dtype, self.dft_basis.device
        if dtype in (torch.float16, torch.bfloat16):
            dtype = torch.float32
        self.dft_basis = windowed_dft_basis(self.cfg, dtype).to(device)
        self.mel_basis = mel_filterbank(self.cfg, dtype).t().contiguous().to(device)
        return self

    def power_mel(self, waveform: Tensor) -> Tensor:
        """Mel power spectrogram ``[B, frames, n_mels]`` (before the log)."""
        if waveform.dim() != 2:
            raise ValueError(f"waveform must be [B, N], got {list(waveform.shape)}")
        if waveform.size(1) < self.n_fft:
            raise ValueError(f"waveform has {waveform.size(1)} samples, need >= {self.n_fft}")
        x = waveform.to(self.dft_basis.dtype)
        frames = x.unfold(1, self.n_fft, self.hop_length)  # [B, F, n_fft]
        spec = torch.matmul(frames, self.dft_basis)  # [B, F, 2 * n_freqs]: re | im
        real, imag = spec[..., : self.n_freqs], spec[..., self.n_freqs :]
        return torch.matmul(real * real + imag * imag, self.mel_basis)

    def normalize(self, logmel: Tensor) -> Tensor:
        return (logmel - self.mean) / self.std

    def to_num_frames(self, logmel: Tensor) -> Tensor:
        """Nearest-index resampling of the time axis (dim 1) to ``cfg.num_frames``."""
        if self.num_frames <= 0:
            return logmel
        idx = nearest_frame_index(logmel.size(1), self.num_frames, logmel.device)
        return logmel.index_select(1, idx)

    def forward(self, waveform: Tensor) -> Tensor:
        # log(S + eps) written as log1p(S / eps) + log(eps): the ONNX exporter's rewriter treats
        # "+ 1e-8" as adding zero and drops it (log(0) = -inf on silent audio, NaN downstream).
        power = self.power_mel(waveform)
        logmel = torch.log1p(power * (1.0 / self.log_offset)) + math.log(self.log_offset)
        if self.apply_to_num_frames:
            logmel = self.to_num_frames(logmel)
        if self.apply_normalize:
            logmel = self.normalize(logmel)
        return logmel
