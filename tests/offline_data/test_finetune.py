"""Fine-tuning controls: frozen stages stay put (weights and batch-norm statistics)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from models import build_model
from models.package import default_preprocessing
from models.preprocess import ClipPreprocessor
from offline.train import TrainConfig, Trainer
from offline.train.freeze import freeze, stages_until, trainable_fraction
from service.errors import AvserveError


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (see tests/conftest.py)."""


def test_freeze_until_names_the_stages_and_their_fusions() -> None:
    assert stages_until("res3") == [
        "conv1", "res2", "res3",
        "fast_to_slow.conv1", "fast_to_slow.res2", "fast_to_slow.res3",
        "audio_to_fastslow.conv1", "audio_to_fastslow.res2", "audio_to_fastslow.res3",
    ]  # fmt: skip
    with pytest.raises(AvserveError):
        stages_until("res9")


def test_unknown_stage_names_are_refused() -> None:
    model = build_model("avslowfast_tiny", num_classes=3)
    with pytest.raises(AvserveError) as err:
        freeze(model, ["res7"])
    assert "res7" in err.value.message


def test_a_training_step_leaves_frozen_stages_and_their_statistics_unchanged(
    tmp_path: object,
) -> None:
    torch.manual_seed(0)
    model = build_model("avslowfast_tiny", num_classes=3)
    frozen = freeze(model, stages_until("res3"))
    assert "res3" in frozen and "fast_to_slow.res3" in frozen and "res4" not in frozen
    assert 0.0 < trainable_fraction(model) < 1.0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pre = default_preprocessing(model)
    pre = replace(pre, crop_size=32, short_side=32, test_crop_size=32)
    trainer = Trainer(
        model, ClipPreprocessor(pre), TrainConfig(epochs=1, batch_size=2), tmp_path,  # type: ignore[arg-type]
        progress=False,
    )  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    batch = {
        "frames": torch.randint(0, 255, (2, pre.num_frames, 32, 32, 3), dtype=torch.uint8, generator=gen),
        "audio": torch.randn(2, 32000, generator=gen),
        "label": torch.tensor([0, 2]),
    }  # fmt: skip
    trainer.train_step(batch, 0.5)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed, "the unfrozen stages must train"
    assert not {k for k in changed if k.split(".")[0] in ("conv1", "res2", "res3")}
    assert any(k.startswith("res4.") and "running_mean" in k for k in changed)
    assert any(k.startswith("head.") for k in changed)
