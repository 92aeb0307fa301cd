"""Export a ``ServingModel`` (preprocessing + network) to ONNX or TorchScript.

Both graphs take ``frames`` uint8 ``[B, T_f, S, S, 3]`` and ``audio`` float32 ``[B, N]`` and
return ``logits`` float32 ``[B, C]``, with a dynamic batch axis. Training-only parts are
stripped first, so neither file carries AV-sync weights.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import torch

from models.head import head_probabilities
from models.package import EXPORT_FILES, ModelPackage, load_package, write_config
from models.serving import ServingModel

ExportFormat = Literal["onnx", "torchscript"]
ONNX_OPSET = 18  # the dynamo exporter's native opset: no lossy down-conversion step


def _inference_copy(serving: ServingModel) -> ServingModel:
    model = copy.deepcopy(serving)
    model.model.strip_training_parts()
    return model.eval()


def export_onnx(
    serving: ServingModel, path: str | Path, *, opset: int = ONNX_OPSET, batch: int = 2
) -> Path:
    """Write ``serving`` as ONNX (``torch.onnx.export``, dynamo exporter).

    Batch and crop side are dynamic axes: window policies run at the training crop, the dense
    protocol at the (larger) test crop, through the same graph (the head pools adaptively).
    """
    path = Path(path)
    model = _inference_copy(serving)
    example = model.example_inputs(batch)
    b = torch.export.Dim("batch", min=1, max=4096)
    side = torch.export.Dim("side", min=32, max=1024)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter chatter (renamed axes, deprecations)
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=list(ServingModel.input_names),
            output_names=list(ServingModel.output_names),
            opset_version=opset,
            dynamic_shapes={"frames": {0: b, 2: side, 3: side}, "audio": {0: b}},
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    return path


def export_torchscript(serving: ServingModel, path: str | Path, *, batch: int = 2) -> Path:
    """Write ``serving`` as a traced TorchScript archive (loadable without our Python code)."""
    path = Path(path)
    model = _inference_copy(serving)
    example = model.example_inputs(batch)
    with torch.no_grad(), warnings.catch_warnings():
        # Input checks turn into constants under tracing; the batch axis stays dynamic.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
    traced.save(str(path))
    return path


def export_package(directory: str | Path, fmt: ExportFormat) -> Path:
    """Export a package's ServingModel into the package and list it in ``config.json``."""
    if fmt not in EXPORT_FILES:
        raise ValueError(f"unknown export format {fmt!r} (onnx, torchscript)")
    pkg = load_package(directory)
    target = pkg.path / EXPORT_FILES[fmt]
    serving = pkg.serving_model()
    if fmt == "onnx":
        export_onnx(serving, target)
        entry = {"file": target.name, "opset": ONNX_OPSET}
    else:
        export_torchscript(serving, target)
        entry = {"file": target.name, "torch": torch.__version__.split("+")[0]}
    exports = dict(pkg.config.exports) | {fmt: entry}
    write_config(pkg.path, replace(pkg.config, exports=exports))
    return target


def run_export(
    pkg: ModelPackage, fmt: ExportFormat, inputs: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Run a package's exported graph (ONNX Runtime on CPU, or TorchScript) on ``inputs``."""
    path = pkg.export_path(fmt)
    if path is None:
        raise FileNotFoundError(f"{pkg.path}: no {fmt} export")
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {n: t.numpy() for n, t in zip(ServingModel.input_names, inputs, strict=True)}
        return torch.from_numpy(session.run(["logits"], feed)[0])
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        out: torch.Tensor = module(*inputs)
    return out


def verify_export(
    directory: str | Path, fmt: ExportFormat, batch_sizes: Sequence[int] = (1, 3)
) -> float:
    """Max |probability difference| between the export and the eager model over batch sizes."""
    pkg = load_package(directory)
    serving = pkg.serving_model()
    worst = 0.0
    for batch in batch_sizes:
        inputs = serving.example_inputs(batch, seed=batch)
        with torch.no_grad():
            eager = serving(*inputs)
        exported = run_export(pkg, fmt, inputs)
        for head, p in head_probabilities(eager, pkg.heads).items():
            q = head_probabilities(exported, pkg.heads)[head]
            worst = max(worst, float((p - q).abs().max()))
    return worst
