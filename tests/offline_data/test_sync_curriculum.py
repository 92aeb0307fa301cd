"""The AV-sync curriculum: sync loss first, then CE joins; easy negatives, then hard ones mix in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from models import PreprocessConfig, build_model
from models.preprocess import ClipPreprocessor
from offline.train import TrainConfig, Trainer
from offline.train.sync_curriculum import hard_share, loss_weights, mix_negatives

CROP = 32
PRE = PreprocessConfig(crop_size=CROP, short_side=CROP, test_crop_size=CROP)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (see tests/conftest.py)."""


def test_sync_loss_trains_alone_first_then_classification_joins() -> None:
    cfg = TrainConfig(epochs=4, avs_weight=0.5, avs_sync_only_epochs=1.5)
    assert loss_weights(cfg, 0.0) == (0.0, 0.5)
    assert loss_weights(cfg, 1.49) == (0.0, 0.5)
    assert loss_weights(cfg, 1.5) == (1.0, 0.5)
    assert loss_weights(cfg, 3.9) == (1.0, 0.5)


def test_without_av_sync_only_classification_trains() -> None:
    assert loss_weights(TrainConfig(epochs=4), 0.0) == (1.0, 0.0)


def test_hard_negatives_join_after_half_the_epochs_at_a_quarter_share() -> None:
    cfg = TrainConfig(epochs=10, avs_weight=1.0)  # the paper's curriculum is the default
    assert [hard_share(cfg, e) for e in (0.0, 4.99, 5.0, 9.5)] == [0.0, 0.0, 0.25, 0.25]
    always_hard = TrainConfig(epochs=10, avs_weight=1.0, avs_hard_from=0.0, avs_hard_share=1.0)
    assert hard_share(always_hard, 0.0) == 1.0


def test_curriculum_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="avs_weight"):
        TrainConfig(epochs=4, avs_sync_only_epochs=1.0)
    with pytest.raises(ValueError, match="avs_sync_only_epochs"):
        TrainConfig(epochs=4, avs_weight=1.0, avs_sync_only_epochs=4.0)
    with pytest.raises(ValueError, match="avs_hard"):
        TrainConfig(avs_hard_share=1.5)


def test_easy_negatives_are_another_clips_audio_and_hard_ones_the_shifted_same_clip() -> None:
    audio = torch.arange(4.0)[:, None].expand(4, 6)
    hard = -audio
    easy = mix_negatives(audio, hard, 0.0)
    assert easy[:, 0].tolist() == [3.0, 0.0, 1.0, 2.0]  # clip i gets clip i-1's aligned audio
    assert torch.equal(mix_negatives(audio, hard, 1.0), hard)
    assert torch.equal(mix_negatives(audio[:1], hard[:1], 0.0), hard[:1])  # no other clip
    g = torch.Generator().manual_seed(0)
    mixed = mix_negatives(torch.randn(4000, 3), torch.full((4000, 3), 9.0), 0.25, g)
    share = (mixed[:, 0] == 9.0).float().mean().item()
    assert 0.22 < share < 0.28


class Batches:
    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        t = torch.arange(PRE.audio_samples) / 16000
        self.items = []
        for _ in range(n):
            y = torch.randint(0, 3, (4,), generator=g)
            frames = torch.randint(0, 255, (4, 32, CROP, CROP, 3), generator=g).to(torch.uint8)
            audio = (0.3 * torch.sin(2 * torch.pi * (300 + 900 * y.view(-1, 1)) * t)).float()
            self.items.append(
                {"frames": frames, "audio": audio, "label": y, "audio_negative": audio.flip(1)}
            )

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return iter(self.items)


def test_head_learns_nothing_in_the_sync_only_phase_and_then_learns(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("avslowfast_tiny", num_classes=3)
    cfg = TrainConfig(
        epochs=2, base_lr=0.05, warmup_epochs=0.0, avs_weight=1.0, avs_sync_only_epochs=1.0
    )
    tr = Trainer(model, ClipPreprocessor(PRE), cfg, tmp_path, progress=False)
    data = Batches(1)
    assert model.sync is not None
    sync_fc = model.sync.heads["res3"].ref_fc
    assert isinstance(sync_fc, torch.nn.Linear)
    head = model.head.proj.weight.detach().clone()
    sync = sync_fc.weight.detach().clone()
    m = tr.train_step(data.items[0], 0.5)
    assert m["avs"] > 0
    assert torch.equal(model.head.proj.weight, head)  # CE has not joined yet
    assert not torch.equal(sync_fc.weight, sync)
    tr.train_step(data.items[0], 1.0)
    assert not torch.equal(model.head.proj.weight, head)
