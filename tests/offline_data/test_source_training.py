"""User sources through the clip cache, the batches and the training loop; the CLI's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from models import build_model
from models.configs import HeadSpec
from models.package import default_preprocessing
from models.preprocess import ClipPreprocessor
from offline.data.cache import CacheConfig
from offline.data.dataset import ClipBatches, SamplingConfig
from offline.data.export import write_class_folders
from offline.data.source_cache import build_source_cache
from offline.data.sources import DataError, open_source
from offline.train import TrainConfig, Trainer
from service.cli import app

CFG = CacheConfig(side=40)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (see tests/conftest.py)."""


@pytest.fixture(scope="module")
def multi_list(tiny_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """JSONL over the tiny set: every clip its class, every other clip also ``extra``."""
    out = tmp_path_factory.mktemp("ml") / "list.jsonl"
    rows = [json.loads(x) for x in (tiny_set / "manifest.jsonl").read_text().splitlines()]
    out.write_text(
        "\n".join(
            json.dumps({"path": r["file"], "labels": [r["class_name"], *(["extra"] * (i % 2))]})
            for i, r in enumerate(rows)
        )
    )
    return out


def test_a_multi_label_source_caches_multi_hot_targets_and_batches_them(
    multi_list: Path, tiny_set: Path, tmp_path: Path
) -> None:
    from offline.data.sources import SourceSpec

    src = open_source(SourceSpec(multi_list, videos_dir=tiny_set))
    cache, kept = build_source_cache(src, tmp_path / "c", CFG)
    assert kept.multi_label and cache.multi_hot is not None
    assert cache.multi_hot.shape == (len(src.samples), len(src.classes))
    extra = src.classes.index("extra")
    assert cache.multi_hot[:, extra].tolist() == [i % 2 for i in range(len(src.samples))]
    assert (cache.multi_hot.sum(1) == 1 + cache.multi_hot[:, extra]).all()
    batch = next(iter(ClipBatches(cache, SamplingConfig(crop_size=32), batch_size=3, prefetch=0)))
    assert batch["label"].dtype == torch.float32 and batch["label"].shape == (3, len(src.classes))
    stamp = (tmp_path / "c" / "cache.json").stat().st_mtime_ns
    build_source_cache(src, tmp_path / "c", CFG)  # unchanged source: reused, not re-decoded
    assert (tmp_path / "c" / "cache.json").stat().st_mtime_ns == stamp


def test_multi_label_training_uses_a_sigmoid_head_and_bce(
    multi_list: Path, tiny_set: Path, tmp_path: Path
) -> None:
    from offline.data.sources import SourceSpec

    src = open_source(SourceSpec(multi_list, videos_dir=tiny_set))
    cache, _ = build_source_cache(src, tmp_path / "c", CFG)
    torch.manual_seed(0)
    model = build_model("avslowfast_tiny", heads=[HeadSpec("h", len(src.classes), True)])
    pre = default_preprocessing(model)
    sampling = SamplingConfig(num_frames=pre.num_frames, crop_size=32)
    batches = ClipBatches(cache, sampling, batch_size=4, train=False, prefetch=0)
    trainer = Trainer(
        model, ClipPreprocessor(pre), TrainConfig(epochs=1, batch_size=4), tmp_path / "run",
        progress=False,
    )  # fmt: skip
    batch = next(iter(batches))
    with torch.no_grad():
        model.eval()
        logits = model(*trainer.model_inputs(batch)).float()
    expected = F.binary_cross_entropy_with_logits(logits, batch["label"], reduction="none")
    metrics = trainer.evaluate([batch])
    assert metrics["loss"] == pytest.approx(float(expected.sum(1).mean()), rel=1e-4)
    hits = batch["label"].gather(1, logits.argmax(1)[:, None])[:, 0] > 0
    assert metrics["top1"] == pytest.approx(float(hits.float().mean()))
    step = trainer.train_step(batch, 0.0)
    assert np.isfinite(step["loss"]) and 0.0 <= step["acc"] <= 1.0


def test_unreadable_files_stop_the_cache_build_unless_skipped(
    tiny_set: Path, tmp_path: Path
) -> None:
    root = write_class_folders(tiny_set, tmp_path / "v")
    bad = next(root.iterdir()) / "broken.mp4"
    bad.write_bytes(b"not a video")
    src = open_source(root)
    with pytest.raises(DataError) as err:
        build_source_cache(src, tmp_path / "c", CFG)
    assert err.value.code == "unsupported_container" and "broken.mp4" in err.value.message
    cache, kept = build_source_cache(src, tmp_path / "c", CFG, allow_errors=True)
    assert len(cache) == len(kept.samples) == len(src.samples) - 1
    assert [p.code for p in kept.errors] == ["unsupported_container"]
    meta = json.loads((tmp_path / "c" / "cache.json").read_text())
    assert [p["where"] for p in meta["left_out"]] == [str(bad)]


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_training_refuses_unlabeled_folders_and_empty_classes(
    tiny_set: Path, tmp_path: Path
) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.mp4").write_bytes(b"x")
    code, out = _invoke("train", "avslowfast", "--data", str(flat), "--out", str(tmp_path / "r"))
    assert code == 2 and "needs labelled data" in out
    root = write_class_folders(tiny_set, tmp_path / "v")
    (root / "zebra").mkdir()
    code, out = _invoke("train", "avslowfast", "--data", str(root), "--out", str(tmp_path / "r"))
    assert code == 2 and "zebra" in out and "data check" in out


def test_data_check_exit_status_and_json_report(tiny_set: Path, tmp_path: Path) -> None:
    root = write_class_folders(tiny_set, tmp_path / "v")
    code, out = _invoke("data", "check", str(root), "--json")
    report = json.loads(out)
    assert code == 0 and report["errors"] == 0 and report["usable"] == len(report["classes"])
    assert report["imbalance"] == 1.0
    (root / "ball_thud" / "broken.mp4").write_bytes(b"junk")
    code, out = _invoke("data", "check", str(root), "--json")
    assert code == 1
    assert [p["code"] for p in json.loads(out)["problems"]] == ["unsupported_container"]
    code, _ = _invoke("data", "check", str(tmp_path / "missing"))
    assert code == 2


def test_flip_pairs_swap_the_named_classes_and_refuse_unknown_ones() -> None:
    from offline.data.training_sources import flip_map_of

    classes = ("left", "right", "still")
    assert flip_map_of(classes, "left:right") == [1, 0, 2]
    assert flip_map_of(classes, "") == [0, 1, 2]
    for bad in ("left:up", "left-right"):
        with pytest.raises(DataError) as err:
            flip_map_of(classes, bad)
        assert err.value.code == "unknown_label"
