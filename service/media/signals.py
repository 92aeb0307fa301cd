"""What a decode noticed about the media besides the samples: digital silence, decode errors.

Silence is decided on the waveforms the models actually receive (the glance snippets or the
clip windows of one request), after mixing to mono and resampling. A peak below
``SILENCE_PEAK`` (-80 dBFS) is digital silence: far below any audible recording and below
16-bit dither (one LSB is -90 dBFS), so only tracks that carry no sound at all fall under it.
Silent waveforms are zeroed, which makes them the exact input the models get for a file with
no audio stream; ``audio_silent`` then tells the glance network to use its no-audio token.
"""

from __future__ import annotations

import numpy as np

SILENCE_PEAK = 1e-4  # linear amplitude; 20·log10(1e-4) = -80 dBFS


def is_silent(waveforms: np.ndarray) -> bool:
    """True when every sample of ``waveforms`` (float in [-1, 1]) is below ``SILENCE_PEAK``."""
    return waveforms.size == 0 or float(np.max(np.abs(waveforms))) < SILENCE_PEAK


def silence_to_zeros(waveforms: np.ndarray) -> tuple[np.ndarray, bool]:
    """(waveforms, silent); silent waveforms come back as exact zeros, like absent audio."""
    if is_silent(waveforms):
        return np.zeros_like(waveforms), True
    return waveforms, False
