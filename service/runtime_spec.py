"""What a heavy-model runtime runs and promises, without torch: the runtime kinds, the input
spec of a serving graph and the ``Runtime`` protocol.

Kept apart from ``service.runtimes`` (the torch and ONNX Runtime implementations) so that
settings, the batcher and tests can name these types without importing torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from service.errors import AvserveError

RuntimeKind = Literal["eager", "torchscript", "onnx"]
RUNTIME_KINDS: tuple[RuntimeKind, ...] = ("eager", "torchscript", "onnx")


@dataclass(frozen=True)
class TensorSpec:
    """One model input without its batch dimension."""

    name: str
    shape: tuple[int | None, ...]  # None = any size (a dynamic axis)
    dtype: str  # numpy dtype name: "uint8", "float32"
    example_shape: tuple[int, ...] | None = None  # sizes for warm-up inputs (default: 1 per None)

    def zeros(self, batch_size: int) -> np.ndarray:
        dims = self.example_shape or tuple(d or 1 for d in self.shape)
        return np.zeros((batch_size, *dims), dtype=self.dtype)

    def accepts(self, shape: tuple[int, ...], dtype: np.dtype) -> bool:
        return (
            dtype == np.dtype(self.dtype)
            and len(shape) == len(self.shape)
            and all(
                want is None or want == got for want, got in zip(self.shape, shape, strict=True)
            )
        )


@dataclass(frozen=True)
class InputSpec:
    """The ordered inputs of a serving graph (positional order of ``forward``)."""

    inputs: tuple[TensorSpec, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    def example(self, batch_size: int) -> dict[str, np.ndarray]:
        return {t.name: t.zeros(batch_size) for t in self.inputs}

    def check(self, inputs: Mapping[str, np.ndarray], *, batched: bool = True) -> None:
        """Raise ``invalid_request`` unless ``inputs`` match the spec (names, shapes, dtypes)."""
        if set(inputs) != set(self.names):
            raise AvserveError(
                f"model inputs must be {sorted(self.names)}, got {sorted(inputs)}",
                code="invalid_request",
            )
        lead: int | None = None
        for t in self.inputs:
            arr = inputs[t.name]
            if batched and arr.ndim == 0:
                raise AvserveError(f"input {t.name!r} has no clip axis", code="invalid_request")
            shape = tuple(arr.shape[1:]) if batched else tuple(arr.shape)
            if not t.accepts(shape, arr.dtype):
                raise AvserveError(
                    f"input {t.name!r} must be {t.dtype}{list(t.shape)} per clip, "
                    f"got {arr.dtype}{list(shape)}",
                    code="invalid_request",
                )
            if batched:
                lead = arr.shape[0] if lead is None else lead
                if arr.shape[0] != lead:
                    raise AvserveError("inputs disagree on the clip count", code="invalid_request")


def frames_audio_spec(num_frames: int, crop_size: int, audio_samples: int) -> InputSpec:
    """The ServingModel contract: frames uint8 [T, S, S, 3] (any crop side S), audio float32 [N].

    The crop side is free: window policies use the training crop, dense views the test crop;
    ``crop_size`` only sizes the warm-up inputs.
    """
    return InputSpec(
        (
            TensorSpec(
                "frames",
                (num_frames, None, None, 3),
                "uint8",
                (num_frames, crop_size, crop_size, 3),
            ),
            TensorSpec("audio", (audio_samples,), "float32"),
        )
    )


@runtime_checkable
class Runtime(Protocol):
    """Runs one batch synchronously; called only from the owning device thread."""

    name: str
    device: str
    spec: InputSpec

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray: ...

    def warmup(self, batch_size: int) -> None: ...
