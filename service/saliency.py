"""Training-free saliency from glance snippets: audio energy, audio onsets, visual change.

This is the ``heuristic`` policy's scorer, a sensible default for any heavy model that has no
trained glance. Each cue is robustly standardised across the video's snippets (median/MAD),
so a video that is loud everywhere does not favour any snippet, and cues that carry no
information (silent or missing audio, a static scene) contribute nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.media.types import GlanceSnippets

_EPS = 1e-8


@dataclass(frozen=True)
class HeuristicWeights:
    audio_energy: float = 1.0
    audio_onset: float = 1.0
    visual_change: float = 1.0


def robust_z(x: np.ndarray) -> np.ndarray:
    """(x - median) / (1.4826 MAD); all zeros when the cue does not vary across snippets."""
    x = np.asarray(x, dtype=np.float64)
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    spread = max(mad, 1e-3 * (np.abs(med) + 1.0), float(x.std()) * 0.25)
    if float(np.ptp(x)) < 1e-9:
        return np.zeros_like(x)
    z: np.ndarray = (x - med) / spread
    return z


def audio_energy_db(audio: np.ndarray) -> np.ndarray:
    """RMS level of each snippet's waveform in dBFS. audio: [T, N] -> [T]."""
    rms = np.sqrt(np.mean(np.square(audio, dtype=np.float64), axis=1) + _EPS)
    out: np.ndarray = 20.0 * np.log10(rms + _EPS)
    return out


def audio_onset_strength(audio: np.ndarray, frame: int = 512, hop: int = 256) -> np.ndarray:
    """Mean positive spectral flux of each snippet (how much new sound starts in it). [T, N] -> [T]."""
    t, n = audio.shape
    if n < frame * 2:
        return np.zeros(t)
    num = 1 + (n - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(num)[:, None]
    window = np.hanning(frame)
    frames = audio[:, idx] * window  # [T, F, frame]
    mag = np.log1p(np.abs(np.fft.rfft(frames, axis=-1)))
    flux = np.maximum(np.diff(mag, axis=1), 0.0).sum(axis=-1)  # [T, F-1]
    out: np.ndarray = flux.mean(axis=1)
    return out


def visual_change(frames: np.ndarray, size: int = 32) -> np.ndarray:
    """Mean absolute difference to the neighbouring snippet frames (grey, downsampled). [T,H,W,3] -> [T]."""
    t, h, w, _ = frames.shape
    ys = np.linspace(0, h - 1, size).astype(np.int64)
    xs = np.linspace(0, w - 1, size).astype(np.int64)
    grey = frames[:, ys][:, :, xs].astype(np.float32).mean(axis=-1) / 255.0  # [T, s, s]
    if t < 2:
        return np.zeros(t)
    diff = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))  # [T-1]: between t and t+1
    change = np.zeros(t)
    change[:-1] += diff
    change[1:] += diff
    change[1:-1] /= 2.0
    return change


def heuristic_saliency(
    snippets: GlanceSnippets, weights: HeuristicWeights = HeuristicWeights()
) -> np.ndarray:
    """Saliency score per snippet (higher = more likely to hold the event). Returns float64 [T]."""
    score = weights.visual_change * robust_z(visual_change(snippets.frames))
    if snippets.audio_usable and snippets.audio.size:
        score = score + weights.audio_energy * robust_z(audio_energy_db(snippets.audio))
        score = score + weights.audio_onset * robust_z(audio_onset_strength(snippets.audio))
    return score
