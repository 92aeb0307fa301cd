"""Audio of an AVSynth clip: the class sound events over ambience and distracting sounds.

Class sounds (SOUND stream; timing from the trajectory where it is impact-driven):

* ``thud``   low decaying sine (60-110 Hz, falling pitch) plus a low-passed noise knock, at
  every bounce impact;
* ``chime``  inharmonic bell partials (f0 1.3-2.4 kHz, ratios 1, 2.76, 5.4) at every impact;
* ``chirp_up`` / ``chirp_down`` log sweeps between ~0.5 and ~2.4 kHz, 0.2-0.35 s, every
  0.4-0.7 s (the same draws for both directions);
* ``buzz``   a band-limited sawtooth (90-160 Hz) with tremolo, continuous;
* ``whoosh`` band-passed noise with a slow swell, continuous (independent of the motion, so
  the drift pair sounds the same);
* ``clicks`` a train of woodblock-like ticks (2.5-4 kHz resonance) at 6-12 Hz.

Ambience (AMBIENCE stream, class independent): a noise floor, sometimes mains hum, and
distracting sounds (steady pure-tone beeps, white-noise bursts) that are never a class sound:
quiet in short clips, loud-ish in long videos so that audio energy alone does not find the event.
"""

from __future__ import annotations

import numpy as np

from offline.data.avsynth.classes import CLASSES
from offline.data.avsynth.scene import AMBIENCE, SOUND, SPLITS, SynthSpec, Trajectory, rng

CLASS_PEAK = 0.5  # nominal peak of the class sound before the final gain


def _env_decay(n: int, sr: int, tau: float) -> np.ndarray:
    return np.exp(-np.arange(n) / (tau * sr)).astype(np.float32)


def _add(out: np.ndarray, start: int, sig: np.ndarray) -> None:
    if start >= len(out) or start + len(sig) <= 0:
        return
    a, b = max(start, 0), min(start + len(sig), len(out))
    out[a:b] += sig[a - start : b - start]


def _bandpass_noise(r: np.random.Generator, n: int, sr: int, lo: float, hi: float) -> np.ndarray:
    spec = np.fft.rfft(r.standard_normal(n).astype(np.float32))
    f = np.fft.rfftfreq(n, 1 / sr)
    spec[(f < lo) | (f > hi)] = 0
    x = np.fft.irfft(spec, n).astype(np.float32)
    return x / (np.abs(x).max() + 1e-9)


def _fade(sig: np.ndarray, sr: int, ms: float = 8.0) -> np.ndarray:
    k = min(int(sr * ms / 1000), len(sig) // 2)
    if k > 0:
        ramp = np.linspace(0, 1, k, dtype=np.float32)
        sig[:k] *= ramp
        sig[-k:] *= ramp[::-1]
    return sig


def class_sound(spec: SynthSpec, traj: Trajectory) -> np.ndarray:
    """The class sound over the event window, as float32 [event samples] at ``spec.sample_rate``."""
    sr = spec.sample_rate
    dur = spec.event_end_s - spec.event_start_s
    n = round(dur * sr)
    out = np.zeros(n, dtype=np.float32)
    r = rng(spec.seed, spec.split, SOUND)
    kind = CLASSES[spec.label].sound
    t_ = np.arange(n, dtype=np.float32) / sr
    if kind in ("thud", "chime"):
        # Both draw the same numbers: only the timbre differs within the pair.
        f_lo, f_hi, tau, knock = r.uniform(0, 1, size=4)
        for t in traj.event_times:
            m = int(0.6 * sr)
            tt = np.arange(m, dtype=np.float32) / sr
            if kind == "thud":
                f0 = 60 + 50 * f_lo
                phase = 2 * np.pi * f0 * (tt - 0.5 * tt**2 / 0.6)  # pitch falls as it rings
                sig = np.sin(phase) * _env_decay(m, sr, 0.1 + 0.08 * tau)
                k = _bandpass_noise(r, m, sr, 20, 600) * _env_decay(m, sr, 0.012)
                sig = sig + (0.4 + 0.3 * knock) * k
            else:
                f0 = 1300 + 1100 * f_hi
                sig = sum(
                    a
                    * np.sin(2 * np.pi * f0 * ratio * tt)
                    * _env_decay(m, sr, d * (0.25 + 0.15 * tau))
                    for a, ratio, d in ((1.0, 1.0, 1.0), (0.5, 2.76, 0.6), (0.25, 5.4, 0.4))
                )
            _add(out, round(t * sr), _fade(np.asarray(sig, dtype=np.float32), sr, 2.0))
    elif kind in ("chirp_up", "chirp_down"):
        t = float(r.uniform(0.0, 0.3))
        while t < dur:
            length = float(r.uniform(0.2, 0.35))
            f_a, f_b = float(r.uniform(400, 700)), float(r.uniform(1800, 3000))
            if kind == "chirp_down":
                f_a, f_b = f_b, f_a
            m = int(length * sr)
            tt = np.arange(m, dtype=np.float32) / sr
            k = np.log(f_b / f_a) / length
            sig = np.sin(2 * np.pi * f_a * (np.exp(k * tt) - 1) / k) * np.hanning(m)
            _add(out, int(t * sr), sig.astype(np.float32))
            t += length + float(r.uniform(0.15, 0.4))
    elif kind == "buzz":
        f0 = float(r.uniform(90, 160))
        trem_f, trem_ph = float(r.uniform(4, 8)), float(r.uniform(0, 6.3))
        saw = sum(np.sin(2 * np.pi * k * f0 * t_) / k for k in range(1, 13) if k * f0 < sr / 2)
        out += np.asarray(saw, dtype=np.float32) * (
            1 - 0.3 * (1 + np.sin(2 * np.pi * trem_f * t_ + trem_ph)) / 2
        )
    elif kind == "whoosh":
        centre = float(r.uniform(600, 1500))
        noise = _bandpass_noise(r, n, sr, centre * 0.6, centre * 1.6)
        swell_f, swell_ph = float(r.uniform(0.5, 1.5)), float(r.uniform(0, 6.3))
        out += noise * (0.55 + 0.45 * np.sin(2 * np.pi * swell_f * t_ + swell_ph))
    elif kind == "clicks":
        rate = float(r.uniform(6, 12))
        m = int(0.02 * sr)
        tt = np.arange(m, dtype=np.float32) / sr
        ring = float(r.uniform(2500, 4000))
        t = float(r.uniform(0, 1 / rate))
        while t < dur:
            # a woodblock-like tick: a damped resonance plus a broadband transient
            click = np.sin(2 * np.pi * ring * tt) + 0.5 * r.standard_normal(m).astype(np.float32)
            _add(out, int(t * sr), (click * _env_decay(m, sr, 0.004)).astype(np.float32))
            t += (1 / rate) * float(r.uniform(0.9, 1.1))
    else:  # pragma: no cover - classes.py and this table must agree
        raise ValueError(kind)
    peak = float(np.abs(out).max())
    return out * (CLASS_PEAK / peak) if peak > 0 else out


def ambience(spec: SynthSpec) -> tuple[np.ndarray, float, float]:
    """(noise floor + hum + distracting sounds [N], stereo pan, output gain)."""
    cfg = SPLITS[spec.split]
    sr, n = spec.sample_rate, spec.num_samples
    r = rng(spec.seed, spec.split, AMBIENCE)
    out = r.standard_normal(n).astype(np.float32) * float(10 ** (r.uniform(-56, -46) / 20))
    t_ = np.arange(n, dtype=np.float32) / sr
    if r.uniform() < 0.5:
        mains = float(r.choice([50.0, 60.0]))
        hum = sum(np.sin(2 * np.pi * mains * k * t_) / k for k in (1, 2, 3))
        out += float(10 ** (r.uniform(-48, -36) / 20)) * np.asarray(hum, dtype=np.float32)
    rate = float(r.uniform(*cfg.distract_sound_rate_hz))
    for _ in range(int(r.poisson(rate * spec.duration_s))):
        start = int(r.uniform(0, spec.duration_s) * sr)
        level = CLASS_PEAK * float(10 ** (r.uniform(*cfg.distract_sound_db) / 20))
        m = int(r.uniform(0.05, 0.25) * sr)
        if r.uniform() < 0.5:  # steady beep
            tt = np.arange(m, dtype=np.float32) / sr
            sig = np.sin(2 * np.pi * float(r.uniform(300, 3000)) * tt).astype(np.float32)
        else:  # broadband noise burst
            sig = r.standard_normal(m).astype(np.float32) * 0.5
        _add(out, start, level * _fade(sig, sr))
    pan = float(r.uniform(-0.5, 0.5)) if spec.channels == 2 else 0.0
    gain = float(r.uniform(0.35, 0.6))
    return out, pan, gain


def render_audio(spec: SynthSpec, traj: Trajectory) -> tuple[np.ndarray, np.ndarray]:
    """(mono float32 [N], channels float32 [C, N]); the mono track is the mean of the channels."""
    amb, pan, gain = ambience(spec)
    mix = amb.copy()
    _add(mix, round(spec.event_start_s * spec.sample_rate), class_sound(spec, traj))
    peak = float(np.abs(mix).max())
    mono = (mix * (gain / max(peak, 1e-6))).astype(np.float32)
    if spec.channels == 1:
        return mono, mono[None, :]
    return mono, np.stack([mono * (1 + pan), mono * (1 - pan)]).astype(np.float32)
