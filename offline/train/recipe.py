"""The optimisation recipe (the paper's / PySlowFast's): a frozen config and the optimiser.

Synchronous SGD with momentum 0.9 and weight decay 1e-4 (none on BatchNorm parameters and
biases, as PySlowFast's ``BN.WEIGHT_DECAY = 0``), linear warm-up then half-period cosine.
Dropout 0.5 before the classifier and DropPathway 0.8 belong to the model config, not here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from offline.train.schedule import LRSchedule


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 16  # used by the data side; the Trainer takes batches as they come
    base_lr: float = 0.05
    warmup_epochs: float = 1.0
    warmup_start_lr: float = 0.005
    end_lr: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    bn_weight_decay: float = 0.0
    avs_weight: float = 0.0  # AV-sync loss weight (the paper uses 1.0); needs audio_negative
    # AV-sync curriculum (offline/train/sync_curriculum.py): AVS alone for the first epochs,
    # then hard negatives (same clip, shifted) join easy ones from this share of the training.
    avs_sync_only_epochs: float = 0.0
    avs_hard_from: float = 0.5  # paper: after 50% of the epochs
    avs_hard_share: float = 0.25  # paper (A.8): 1/4 hard, 3/4 easy
    label_smoothing: float = 0.0
    grad_clip_norm: float | None = None
    seed: int = 0
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", ...: the same code path
    amp: bool = False  # float16 autocast + GradScaler; CUDA only
    log_every: int = 10  # steps between JSON log lines
    eval_every: int = 1  # epochs between evaluations (0: never)
    checkpoint_every_steps: int = 0  # also checkpoint mid-epoch (0: only at epoch ends)
    steps_per_epoch: int | None = None  # needed when the batch source has no len()

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.batch_size <= 0 or self.base_lr <= 0:
            raise ValueError("epochs, batch_size and base_lr must be positive")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError("warmup_epochs must be in [0, epochs]")
        if not 0 <= self.momentum < 1 or self.weight_decay < 0 or self.avs_weight < 0:
            raise ValueError("momentum must be in [0, 1), weight_decay and avs_weight >= 0")
        if not 0 <= self.avs_sync_only_epochs < self.epochs:
            raise ValueError("avs_sync_only_epochs must be in [0, epochs)")
        if self.avs_sync_only_epochs > 0 and self.avs_weight <= 0:
            raise ValueError("avs_sync_only_epochs needs avs_weight > 0")
        if not (0 <= self.avs_hard_from <= 1 and 0 <= self.avs_hard_share <= 1):
            raise ValueError("avs_hard_from and avs_hard_share must be in [0, 1]")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError("label_smoothing must be in [0, 1)")
        if self.log_every <= 0 or self.eval_every < 0 or self.checkpoint_every_steps < 0:
            raise ValueError("log_every must be > 0, eval_every and checkpoint_every_steps >= 0")
        if self.steps_per_epoch is not None and self.steps_per_epoch <= 0:
            raise ValueError("steps_per_epoch must be positive")

    def schedule(self) -> LRSchedule:
        return LRSchedule(
            base_lr=self.base_lr,
            epochs=float(self.epochs),
            warmup_epochs=self.warmup_epochs,
            warmup_start_lr=self.warmup_start_lr,
            end_lr=self.end_lr,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig keys: {sorted(unknown)}")
        return cls(**d)


def _no_decay(module_name: str, param_name: str, module: nn.Module) -> bool:
    norm_types = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
    return isinstance(module, norm_types) or param_name == "bias"


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.SGD:
    """SGD with two parameter groups: weights (``weight_decay``) and BN/bias (``bn_weight_decay``)."""
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for mname, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            if p.requires_grad:
                (no_decay if _no_decay(mname, pname, module) else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": cfg.bn_weight_decay},
    ]
    return torch.optim.SGD(
        [g for g in groups if g["params"]],
        lr=cfg.warmup_start_lr if cfg.warmup_epochs > 0 else cfg.base_lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov and cfg.momentum > 0,
    )
