"""The Trainer on real (tiny) AVSlowFast-family models: learning, logs, checkpoints, resume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models import PreprocessConfig, build_model
from models.preprocess import ClipPreprocessor
from offline.train import TrainConfig, Trainer

CROP = 32
TINY = {"blocks": (1, 1, 1, 1), "width_per_group": 8}
PRE = PreprocessConfig(crop_size=CROP, short_side=CROP, test_crop_size=CROP)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (see tests/conftest.py)."""


class Batches:
    """A fixed list of learnable batches: the class sets frame brightness and a tone's pitch."""

    def __init__(self, n: int, batch: int = 4, seed: int = 0, negatives: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        self.items = []
        t = torch.arange(PRE.audio_samples) / 16000
        for _ in range(n):
            y = torch.randint(0, 3, (batch,), generator=g)
            frames = torch.randint(0, 60, (batch, 32, CROP, CROP, 3), generator=g)
            frames = (frames + 90 * y.view(-1, 1, 1, 1, 1)).to(torch.uint8)
            audio = 0.3 * torch.sin(2 * torch.pi * (300 + 900 * y.view(-1, 1)) * t)
            b = {"frames": frames, "audio": audio.float(), "label": y}
            if negatives:
                b["audio_negative"] = audio.flip(0).float()
            self.items.append(b)
        self.epochs_seen: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs_seen.append(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return iter(self.items)


def _trainer(model_name: str, run: Path, **cfg: object) -> Trainer:
    torch.manual_seed(0)
    kw = dict(TINY, beta_inv=4) if model_name != "audionet_r50" else dict(TINY)
    if model_name == "avslowfast_tiny":
        kw = {}
    model = build_model(model_name, num_classes=3, **kw)
    base = {"epochs": 2, "base_lr": 0.05, "warmup_epochs": 0.5, "warmup_start_lr": 0.005}
    return Trainer(
        model, ClipPreprocessor(PRE), TrainConfig(**{**base, **cfg}), run, progress=False
    )  # type: ignore[arg-type]


@pytest.mark.slow
def test_av_model_learns_a_learnable_task_and_logs_it(tmp_path: Path) -> None:
    tr = _trainer("avslowfast_tiny", tmp_path, epochs=3, log_every=2)
    data = Batches(4)
    before = tr.evaluate(data)
    state = tr.fit(data, val=Batches(1, seed=1))
    after = tr.evaluate(data)
    assert state.epoch == 3 and state.step == 12
    assert after["loss"] < before["loss"]
    assert data.epochs_seen == [0, 1, 2]
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    train = [r for r in log if r["event"] == "train"]
    assert len(train) == 6 and all(r["loss"] == r["loss"] for r in train)  # finite, not NaN
    assert {r["epoch"] for r in log if r["event"] == "eval"} == {1, 2, 3}
    lrs = [r["lr"] for r in train]
    assert lrs[0] < max(lrs) and lrs[-1] < max(lrs)  # warm-up, then cosine decay


@pytest.mark.parametrize("name", ["slowfast_r50_4x16", "audionet_r50"])
def test_visual_only_and_audio_only_configs_train_with_the_same_loop(
    tmp_path: Path, name: str
) -> None:
    tr = _trainer(name, tmp_path, epochs=1)
    state = tr.fit(Batches(2))
    assert state.step == 2
    weights = load_file(str(tmp_path / "checkpoints" / "last.safetensors"))
    assert weights.keys() == tr.model.state_dict().keys()


def test_av_sync_loss_is_added_when_negatives_are_given(tmp_path: Path) -> None:
    tr = _trainer("avslowfast_tiny", tmp_path, epochs=1, avs_weight=1.0, log_every=1)
    tr.fit(Batches(3, negatives=True))
    log = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert any(r["avs"] > 0 for r in log if r["event"] == "train")


class Crash(RuntimeError):
    pass


class CrashingBatches(Batches):
    """Raises when batch ``at`` of epoch ``epoch`` is requested (a killed run)."""

    def __init__(self, epoch: int, at: int) -> None:
        super().__init__(3)
        self.crash = (epoch, at)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for i, b in enumerate(self.items):
            if (self.epochs_seen[-1], i) == self.crash:
                raise Crash
            yield b


@pytest.mark.slow
def test_a_killed_run_resumes_mid_epoch_to_the_same_weights(tmp_path: Path) -> None:
    cfg = {"epochs": 2, "checkpoint_every_steps": 2}
    straight = _trainer("avslowfast_tiny", tmp_path / "a", **cfg)
    straight.fit(Batches(3))

    crashed = _trainer("avslowfast_tiny", tmp_path / "b", **cfg)
    with pytest.raises(Crash):
        crashed.fit(CrashingBatches(epoch=1, at=2))
    resumed = _trainer("avslowfast_tiny", tmp_path / "b", **cfg)
    assert resumed.resume()
    assert (resumed.state.epoch, resumed.state.step, resumed.state.step_in_epoch) == (1, 4, 1)
    resumed.fit(Batches(3))
    assert resumed.state.step == straight.state.step == 6
    for (k, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=k)


def test_checkpoint_state_loads_without_unpickling_code(tmp_path: Path) -> None:
    tr = _trainer("audionet_r50", tmp_path, epochs=1)
    tr.fit(Batches(1))
    extra = torch.load(tmp_path / "checkpoints" / "last.state.pt", weights_only=True)
    assert {"optimizer", "scaler", "torch_rng"} <= extra.keys()
    meta = json.loads((tmp_path / "checkpoints" / "last.json").read_text())
    assert meta["state"]["epoch"] == 1 and meta["model_config"]["name"] == "audionet_r50"
    assert meta["train_config"]["momentum"] == 0.9 and meta["train_config"]["weight_decay"] == 1e-4


def test_non_finite_loss_stops_training(tmp_path: Path) -> None:
    tr = _trainer("audionet_r50", tmp_path, epochs=1)
    bad = Batches(1)
    bad.items[0]["audio"][:] = float("nan")
    with pytest.raises(FloatingPointError):
        tr.fit(bad)


def test_optimiser_exempts_batchnorm_and_biases_from_weight_decay(tmp_path: Path) -> None:
    tr = _trainer("avslowfast_tiny", tmp_path)
    decay, no_decay = tr.optimizer.param_groups
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert decay["momentum"] == 0.9 and decay["nesterov"]
    n_params = sum(1 for p in tr.model.parameters() if p.requires_grad)
    assert len(decay["params"]) + len(no_decay["params"]) == n_params
    assert all(p.dim() > 1 for p in decay["params"])
    assert all(p.dim() == 1 for p in no_decay["params"])


def test_amp_is_refused_on_cpu(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        _trainer("audionet_r50", tmp_path, amp=True)
