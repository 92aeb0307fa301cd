"""Learning-rate schedule of the SlowFast recipe: linear warm-up, then half-period cosine.

As PySlowFast ``lr_policy``: the cosine runs over the whole training ``[0, epochs]``; during the
first ``warmup_epochs`` the rate rises linearly from ``warmup_start_lr`` to the value the cosine
has at the end of warm-up. Epochs are fractional (``epoch + step / steps_per_epoch``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class LRSchedule:
    base_lr: float
    epochs: float
    warmup_epochs: float = 0.0
    warmup_start_lr: float = 0.0
    end_lr: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.base_lr <= 0:
            raise ValueError("epochs and base_lr must be positive")
        if not 0 <= self.warmup_epochs <= self.epochs:
            raise ValueError("warmup_epochs must be in [0, epochs]")
        if self.warmup_start_lr < 0 or self.end_lr < 0:
            raise ValueError("learning rates must be >= 0")

    def cosine(self, epoch: float) -> float:
        e = min(max(epoch, 0.0), self.epochs)
        return self.end_lr + (self.base_lr - self.end_lr) * 0.5 * (
            1.0 + math.cos(math.pi * e / self.epochs)
        )

    def __call__(self, epoch: float) -> float:
        if epoch < self.warmup_epochs:
            target = self.cosine(self.warmup_epochs)
            frac = max(epoch, 0.0) / self.warmup_epochs
            return self.warmup_start_lr + (target - self.warmup_start_lr) * frac
        return self.cosine(epoch)
