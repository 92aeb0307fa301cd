"""The request both peer servers take: one pre-decoded clip as JSON (base64 of the raw arrays).

Frames and waveform are the serving graph's inputs (``ServingModel``: uint8 frames
[T, S, S, 3], float32 audio [N]); their shapes come from the model package, so the body
carries bytes only. JSON + base64 is LitServe's usual request style; avserve's side decodes
the very same body, so neither server gets a cheaper input format.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np

from service.runtime_spec import InputSpec


def load_spec(package_dir: Path) -> InputSpec:
    from models import load_package
    from service.runtimes import package_input_spec

    return package_input_spec(load_package(package_dir))


def encode(inputs: dict[str, np.ndarray]) -> dict[str, str]:
    return {
        n: base64.b64encode(np.ascontiguousarray(a).tobytes()).decode() for n, a in inputs.items()
    }


def decode(body: dict[str, Any], spec: InputSpec) -> dict[str, np.ndarray]:
    """One clip's inputs from a request body (shapes and dtypes from the spec)."""
    out = {}
    for t in spec.inputs:
        shape = tuple(d if d is not None else -1 for d in (t.example_shape or t.shape))
        out[t.name] = np.frombuffer(base64.b64decode(body[t.name]), dtype=t.dtype).reshape(shape)
    return out


def random_clips(spec: InputSpec, n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` distinct encoded clips: random frames and a waveform in [-1, 1]."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(n):
        x = spec.example(1)
        x = {k: v[0] for k, v in x.items()}
        x["frames"] = rng.integers(0, 256, x["frames"].shape, dtype=np.uint8)
        x["audio"] = rng.uniform(-1, 1, x["audio"].shape).astype(np.float32)
        clips.append(encode(x))
    return clips
