"""Runtimes: TorchScript and ONNX Runtime agree with eager PyTorch on a real (tiny) AVSlowFast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import models
from models.export import export_package
from models.package import ModelPackage, load_package, save_package
from service.errors import AvserveError
from service.runtimes import (
    EagerRuntime,
    OnnxRuntime,
    Runtime,
    build_runtime,
    export_file,
    package_input_spec,
    resolve_device,
)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> ModelPackage:
    torch.manual_seed(0)
    model = models.build_model("avslowfast_tiny")
    directory = save_package(
        tmp_path_factory.mktemp("pkg") / "tiny", model, name="tiny", version="1"
    )
    return load_package(directory)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export-cache")


def inputs_for(rt: Runtime, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rt.spec.example(batch)
    x["frames"] = rng.integers(0, 256, x["frames"].shape, dtype=np.uint8)
    x["audio"] = rng.uniform(-1, 1, x["audio"].shape).astype(np.float32)
    return x


def assert_parity(rt: Runtime, reference: Runtime, batches: tuple[int, ...] = (1, 3)) -> None:
    for b in batches:
        x = inputs_for(reference, b, seed=b)
        want, got = reference.run(x), rt.run(x)
        assert got.shape == want.shape == (b, 10)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_input_spec_follows_the_package_preprocessing(package: ModelPackage) -> None:
    pre = package.config.preprocessing
    spec = package_input_spec(package)
    assert spec.names == ("frames", "audio")
    frames, audio = spec.inputs
    # Any square crop side: window policies use the training crop, dense views the test crop.
    assert frames.shape == (pre.num_frames, None, None, 3)
    assert frames.zeros(2).shape == (2, pre.num_frames, pre.crop_size, pre.crop_size, 3)
    assert frames.dtype == "uint8"
    assert audio.shape == (pre.audio_samples,)
    assert audio.dtype == "float32"


def test_eager_runtime_runs_the_serving_model(package: ModelPackage) -> None:
    rt = build_runtime(package, "eager", "cpu")
    x = inputs_for(rt, 2, seed=0)
    with torch.no_grad():
        want = package.serving_model()(torch.from_numpy(x["frames"]), torch.from_numpy(x["audio"]))
    np.testing.assert_allclose(rt.run(x), want.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_torchscript_matches_eager(package: ModelPackage, cache_dir: Path) -> None:
    eager = build_runtime(package, "eager", "cpu")
    ts = build_runtime(package, "torchscript", "cpu", cache_dir=cache_dir)
    assert ts.name == "torchscript"
    assert_parity(ts, eager, batches=(1, 4))


@pytest.mark.slow
def test_onnx_runtime_matches_eager(package: ModelPackage, cache_dir: Path) -> None:
    eager = build_runtime(package, "eager", "cpu")
    ort_rt = build_runtime(package, "onnx", "cpu", cache_dir=cache_dir)
    assert isinstance(ort_rt, OnnxRuntime)
    assert ort_rt.providers[0] == "CPUExecutionProvider"
    assert_parity(ort_rt, eager, batches=(1, 4))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["torchscript", "onnx"])
def test_exports_match_eager_at_the_dense_test_crop_and_on_silent_audio(
    package: ModelPackage, cache_dir: Path, kind: str
) -> None:
    eager = build_runtime(package, "eager", "cpu")
    exported = build_runtime(package, kind, "cpu", cache_dir=cache_dir)  # type: ignore[arg-type]
    side = package.config.preprocessing.crop_size + 32  # a crop the export was not traced at
    rng = np.random.default_rng(7)
    x = {
        "frames": rng.integers(
            0, 256, (2, package.config.preprocessing.num_frames, side, side, 3), dtype=np.uint8
        ),
        "audio": np.zeros((2, package.config.preprocessing.audio_samples), np.float32),
    }
    got, want = exported.run(x), eager.run(x)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_exports_are_cached_by_weights(package: ModelPackage, cache_dir: Path) -> None:
    first = export_file(package, "torchscript", cache_dir)
    stamp = first.stat().st_mtime_ns
    second = export_file(package, "torchscript", cache_dir)
    assert second == first
    assert second.stat().st_mtime_ns == stamp


@pytest.mark.slow
def test_an_export_shipped_in_the_package_is_used(tmp_path: Path) -> None:
    torch.manual_seed(1)
    directory = save_package(
        tmp_path / "p", models.build_model("avslowfast_tiny"), name="p", version="2"
    )
    export_package(directory, "torchscript")
    pkg = load_package(directory)
    assert export_file(pkg, "torchscript", tmp_path / "cache") == directory / "model.ts"
    assert not (tmp_path / "cache").exists()


def test_fp16_is_a_cuda_only_switch(package: ModelPackage) -> None:
    rt = EagerRuntime(package.serving_model(), package_input_spec(package), "cpu", fp16=True)
    assert rt.fp16 is False
    ref = build_runtime(package, "eager", "cpu")
    assert_parity(rt, ref, batches=(2,))


def test_warmup_runs_a_dummy_batch(package: ModelPackage) -> None:
    build_runtime(package, "eager", "cpu").warmup(2)


def test_bad_device_names_are_refused() -> None:
    with pytest.raises(AvserveError):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_refused_for_torch_runtimes(package: ModelPackage) -> None:
    with pytest.raises(AvserveError):
        build_runtime(package, "eager", "cuda")
    assert resolve_device("auto") == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_stays_close_to_cpu_fp32(package: ModelPackage) -> None:
    cpu = build_runtime(package, "eager", "cpu")
    gpu = build_runtime(package, "eager", "cuda", fp16=True)
    x = inputs_for(cpu, 4, seed=3)
    np.testing.assert_allclose(gpu.run(x), cpu.run(x), rtol=5e-2, atol=5e-2)


def test_unknown_runtime_kind_is_refused(package: ModelPackage) -> None:
    with pytest.raises(AvserveError):
        build_runtime(package, "tensorrt", "cpu")  # type: ignore[arg-type]
