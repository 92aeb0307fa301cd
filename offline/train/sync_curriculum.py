"""The AV-sync (AVS) training curriculum: which losses train when, and which negatives AVS sees.

Two schedules, both functions of the fractional epoch:

- **Loss phases.** For the first ``avs_sync_only_epochs`` epochs only the AV-sync loss trains;
  then the classification loss joins (weight 1) and AVS keeps ``avs_weight``. The paper trains
  AVS as an auxiliary loss from the start (``avs_sync_only_epochs = 0``); the sync-first phase
  is the option issue 16 asked for, in the spirit of the paper's self-supervised pre-training.
- **Negatives** (the paper, §3.5 and A.8, after Korbar et al.): first only *easy* negatives
  (audio of another clip), then, from ``avs_hard_from`` of the training (paper: 50%), a mix with
  a share ``avs_hard_share`` of *hard* ones (paper: 1/4), the same clip's audio shifted by at
  least 0.5 s (what the data side ships as ``audio_negative``). Easy negatives are taken from
  the batch itself (clip i gets the aligned audio of clip i - 1), so the data side is unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from offline.train.recipe import TrainConfig


def loss_weights(cfg: TrainConfig, epoch: float) -> tuple[float, float]:
    """``(classification weight, AV-sync weight)`` at fractional ``epoch``."""
    if cfg.avs_weight <= 0:
        return 1.0, 0.0
    if epoch < cfg.avs_sync_only_epochs:
        return 0.0, cfg.avs_weight
    return 1.0, cfg.avs_weight


def hard_share(cfg: TrainConfig, epoch: float) -> float:
    """Share of hard (same clip, shifted) negatives at fractional ``epoch``."""
    return cfg.avs_hard_share if epoch >= cfg.avs_hard_from * cfg.epochs else 0.0


def mix_negatives(
    audio: Tensor, hard: Tensor, share: float, generator: torch.Generator | None = None
) -> Tensor:
    """Per clip, the hard negative with probability ``share``, else another clip's audio.

    ``audio`` / ``hard``: ``[B, ...]`` aligned and shifted audio. A batch of one clip has no
    other clip, so it keeps its hard negative.
    """
    if audio.shape[0] < 2 or share >= 1.0:
        return hard
    easy = audio.roll(1, dims=0)
    if share <= 0.0:
        return easy
    pick = torch.rand(audio.shape[0], generator=generator) < share
    pick = pick.to(audio.device).view(-1, *([1] * (audio.dim() - 1)))
    return torch.where(pick, hard, easy)
