"""Heavy-model runtimes behind one interface: eager PyTorch, TorchScript, ONNX Runtime.

Every runtime executes a ``models.ServingModel`` graph: inputs ``frames`` uint8
[B, T, S, S, 3] and ``audio`` float32 [B, N] (numpy), output ``logits`` float32 [B, C].
A runtime is used from one thread only, the process's model thread (``service.executor``),
so none of them locks.

CPU and CUDA share one code path: the device is an argument. On CUDA the torch runtimes copy
inputs through pinned host memory with non-blocking transfers and may run under fp16
autocast; ONNX Runtime picks the CUDA execution provider when it is installed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from models.package import ModelPackage
from service.errors import AvserveError
from service.runtime_spec import InputSpec, Runtime, RuntimeKind, frames_audio_spec

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when available else cpu; validates explicit choices."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AvserveError(f"device {device!r} requested but CUDA is not available")
    if device != "cpu" and not device.startswith("cuda"):
        raise AvserveError(f"unknown device {device!r} (cpu, cuda, cuda:N or auto)")
    return device


class _TorchRuntime:
    """Shared torch execution: host->device copies, optional fp16 autocast, logits back as fp32."""

    name = "torch"

    def __init__(self, module: torch.nn.Module, spec: InputSpec, device: str, fp16: bool) -> None:
        self.spec = spec
        self.device = resolve_device(device)
        self._torch_device = torch.device(self.device)
        self._cuda = self._torch_device.type == "cuda"
        # fp16 only makes sense (and is only numerically vetted) on CUDA; on CPU it is ignored.
        self.fp16 = fp16 and self._cuda
        self._module = module
        self._pinned: dict[str, torch.Tensor] = {}  # reusable page-locked staging, per input

    def _to_device(self, name: str, arr: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(arr))
        if not self._cuda:
            return t
        # Page-locked staging makes the host->device copy asynchronous (non_blocking). The
        # buffer is reused: run() ends with a blocking device->host copy of the logits, so the
        # previous upload has finished before the next batch overwrites it.
        buf = self._pinned.get(name)
        if buf is None or buf.numel() < t.numel() or buf.dtype != t.dtype:
            buf = torch.empty(t.numel(), dtype=t.dtype).pin_memory()
            self._pinned[name] = buf
        staged = buf[: t.numel()].view(t.shape)
        staged.copy_(t)
        return staged.to(self._torch_device, non_blocking=True)

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        args = [self._to_device(n, inputs[n]) for n in self.spec.names]
        with (
            torch.inference_mode(),
            torch.autocast(
                device_type=self._torch_device.type, dtype=torch.float16, enabled=self.fp16
            ),
        ):
            out = self._module(*args)
        logits: np.ndarray = out.float().cpu().numpy()
        return logits

    def warmup(self, batch_size: int) -> None:
        self.run(self.spec.example(batch_size))
        if self._cuda:
            torch.cuda.synchronize(self._torch_device)


class EagerRuntime(_TorchRuntime):
    """The ``nn.Module`` itself (reference for parity)."""

    name = "eager"

    def __init__(
        self, module: torch.nn.Module, spec: InputSpec, device: str = "cpu", fp16: bool = False
    ) -> None:
        super().__init__(module, spec, device, fp16)
        module.eval().to(self._torch_device)


class TorchScriptRuntime(_TorchRuntime):
    """A ``model.ts`` archive loaded with ``torch.jit.load`` (no Python model code needed)."""

    name = "torchscript"

    def __init__(
        self, path: Path, spec: InputSpec, device: str = "cpu", fp16: bool = False
    ) -> None:
        dev = resolve_device(device)
        try:
            module = torch.jit.load(str(path), map_location=dev)
        except (RuntimeError, ValueError, OSError) as e:
            raise AvserveError(f"cannot load TorchScript model {path.name}: {e}") from e
        module.eval()
        super().__init__(module, spec, dev, fp16)
        self.path = path

    def warmup(self, batch_size: int) -> None:
        # The profiling executor records shapes on the first runs and optimises after that:
        # pay those slow passes here, not on the first requests.
        for _ in range(3):
            super().warmup(batch_size)


class OnnxRuntime:
    """A ``model.onnx`` graph on ONNX Runtime: CUDA EP when asked for and installed, else CPU EP."""

    name = "onnx"

    def __init__(
        self, path: Path, spec: InputSpec, device: str = "cpu", *, intra_op_threads: int = 0
    ) -> None:
        import onnxruntime as ort

        self.spec = spec
        self.path = path
        want_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        available = ort.get_available_providers()
        providers: list[str | tuple[str, dict[str, Any]]] = []
        if want_cuda and "CUDAExecutionProvider" in available:
            dev_id = int(device.split(":")[1]) if ":" in device else 0
            providers.append(("CUDAExecutionProvider", {"device_id": dev_id}))
        elif want_cuda:
            log.warning(
                "onnxruntime has no CUDAExecutionProvider here; running %s on CPU", path.name
            )
        providers.append("CPUExecutionProvider")
        opts = ort.SessionOptions()
        # One team of intra-op threads, the caller (the model thread) being one of them, sized
        # like torch's; idle workers sleep instead of spinning, so between batches the cores go
        # to the glance net's OpenMP team and to the decode processes (service.executor).
        opts.intra_op_num_threads = intra_op_threads or torch.get_num_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as e:  # ORT raises its own exception types (not importable portably)
            raise AvserveError(f"cannot load ONNX model {path.name}: {e}") from e
        used = self._session.get_providers()
        self.device = device if used[0] == "CUDAExecutionProvider" else "cpu"
        self.providers: Sequence[str] = used
        graph_inputs = {i.name for i in self._session.get_inputs()}
        missing = set(spec.names) - graph_inputs
        if missing:
            raise AvserveError(f"ONNX model {path.name} lacks inputs {sorted(missing)}")
        self._output = self._session.get_outputs()[0].name

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        feed = {n: np.ascontiguousarray(inputs[n]) for n in self.spec.names}
        out = self._session.run([self._output], feed)[0]
        logits: np.ndarray = np.asarray(out, dtype=np.float32)
        return logits

    def warmup(self, batch_size: int) -> None:
        self.run(self.spec.example(batch_size))


def package_input_spec(package: ModelPackage) -> InputSpec:
    """The serving inputs of a ``models.ModelPackage`` (from its preprocessing config)."""
    pre = package.config.preprocessing
    return frames_audio_spec(pre.num_frames, pre.crop_size, pre.audio_samples)


def _weights_digest(package: ModelPackage) -> str:
    h = hashlib.sha256()
    with open(Path(package.path) / "weights.safetensors", "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def export_file(
    package: ModelPackage, kind: Literal["onnx", "torchscript"], cache_dir: Path | None
) -> Path:
    """The package's own export when it ships one, else one exported into ``cache_dir``.

    Cached exports are keyed by name, version and a digest of the weights, so a changed package
    never reuses a stale graph. Exporting a full-size model takes a while (startup probe budget).
    """
    shipped = package.export_path(kind)
    if shipped is not None:
        return Path(shipped)
    from models import export as model_export

    root = cache_dir if cache_dir is not None else Path(tempfile.gettempdir()) / "avserve-exports"
    target_dir = root / f"{package.name}-{package.version}-{_weights_digest(package)}"
    target = target_dir / ("model.onnx" if kind == "onnx" else "model.ts")
    if target.is_file():
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    # Write under a temporary name and rename: concurrent replicas never read half a file.
    partial = target.with_name(f".{os.getpid()}.{target.name}")
    log.info("exporting %s %s to %s", package.name, kind, target)
    if kind == "onnx":
        model_export.export_onnx(package.serving_model(), partial)
    else:
        model_export.export_torchscript(package.serving_model(), partial)
    os.replace(partial, target)
    return target


def build_runtime(
    package: ModelPackage,
    kind: RuntimeKind,
    device: str = "cpu",
    *,
    fp16: bool = False,
    threads: int = 0,
    cache_dir: Path | None = None,
) -> Runtime:
    """The configured runtime for a ``models.ModelPackage`` on ``device``."""
    spec = package_input_spec(package)
    if kind == "eager":
        return EagerRuntime(package.serving_model(), spec, device, fp16=fp16)
    if kind == "torchscript":
        return TorchScriptRuntime(export_file(package, kind, cache_dir), spec, device, fp16=fp16)
    if kind == "onnx":
        return OnnxRuntime(
            export_file(package, kind, cache_dir), spec, device, intra_op_threads=threads
        )
    raise AvserveError(f"unknown runtime {kind!r} (eager, torchscript, onnx)")
