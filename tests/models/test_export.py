"""ServingModel exports: TorchScript and ONNX match eager, with a dynamic batch axis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models import HeadSpec, build_model, load_package, save_package
from models.export import export_package, export_torchscript, verify_export
from models.head import head_probabilities
from models.preprocess import ClipPreprocessor
from models.serving import ServingModel, default_preprocessing
from tests.models.helpers_avslowfast import randomize_bn

HEADS = (HeadSpec("action", 6), HeadSpec("tags", 4, multi_label=True))


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    # 32 px crops keep the many forwards cheap; export behaviour does not depend on size.
    model = randomize_bn(build_model("avslowfast_tiny", heads=HEADS, crop_size=32))
    return save_package(tmp_path_factory.mktemp("export") / "pkg", model, name="tiny", version="1")


def _max_prob_diff(eager: torch.Tensor, exported: torch.Tensor) -> float:
    p, q = head_probabilities(eager, HEADS), head_probabilities(exported, HEADS)
    return max(float((p[h] - q[h]).abs().max()) for h in p)


def _inputs(serving: ServingModel, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    return serving.example_inputs(batch, seed=10 + batch)


def test_torchscript_export_matches_eager_at_several_batch_sizes(package_dir: Path) -> None:
    target = export_package(package_dir, "torchscript")
    assert target.name == "model.ts"
    pkg = load_package(package_dir)
    assert pkg.export_path("torchscript") == target
    serving = pkg.serving_model()
    traced = torch.jit.load(str(target))
    for batch in (1, 3):
        frames, audio = _inputs(serving, batch)
        with torch.no_grad():
            eager, out = serving(frames, audio), traced(frames, audio)
        assert out.dtype == torch.float32 and out.shape == (batch, 10)
        assert _max_prob_diff(eager, out) <= 1e-4
    assert verify_export(package_dir, "torchscript") <= 1e-4


def test_exports_leave_out_training_only_parts(tmp_path: Path) -> None:
    model = randomize_bn(build_model("avslowfast_tiny", crop_size=32))
    assert model.sync is not None
    serving = ServingModel(ClipPreprocessor(default_preprocessing(model)), model).eval()
    path = export_torchscript(serving, tmp_path / "m.ts")
    keys = torch.jit.load(str(path)).state_dict().keys()
    assert keys and not any(".sync." in k or k.startswith("sync.") for k in keys)
    assert model.sync is not None  # the caller's model is untouched


@pytest.mark.slow
def test_onnx_export_runs_on_onnxruntime_with_a_dynamic_batch(package_dir: Path) -> None:
    import onnx
    import onnxruntime as ort

    target = export_package(package_dir, "onnx")
    graph = onnx.load(str(target))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert not any("sync" in init.name for init in graph.graph.initializer)
    config = json.loads((package_dir / "config.json").read_text())
    assert config["exports"]["onnx"]["file"] == "model.onnx"

    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["frames", "audio"]
    assert [o.name for o in session.get_outputs()] == ["logits"]
    assert session.get_inputs()[0].type == "tensor(uint8)"
    serving = load_package(package_dir).serving_model()
    for batch in (1, 3):
        frames, audio = _inputs(serving, batch)
        with torch.no_grad():
            eager = serving(frames, audio)
        (out,) = session.run(["logits"], {"frames": frames.numpy(), "audio": audio.numpy()})
        assert out.shape == (batch, 10) and out.dtype == np.float32
        assert _max_prob_diff(eager, torch.from_numpy(out)) <= 1e-4


def test_unknown_export_format_is_refused(package_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown export format"):
        export_package(package_dir, "tflite")  # type: ignore[arg-type]
