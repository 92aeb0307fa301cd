"""Glance compute cost in multiply-adds, counted with FlopCounterMode (FLOPs / 2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from models.flops import count_gmacs
from models.glance.config import GlanceConfig
from models.glance.net import GlanceNet


@dataclass(frozen=True)
class GlanceCost:
    snippets: int
    selected: int
    forward_gmacs: float  # encoders + AV-TeST + heads over all T snippets
    locate_gmacs: float  # AESPA + policy over the K selected snippets
    params: int  # inference parameters

    @property
    def total_gmacs(self) -> float:
        return self.forward_gmacs + self.locate_gmacs

    @property
    def per_snippet_gmacs(self) -> float:
        return self.forward_gmacs / self.snippets

    @property
    def per_selected_gmacs(self) -> float:
        return self.locate_gmacs / self.selected if self.selected else 0.0


class _Locate(nn.Module):
    def __init__(self, net: GlanceNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, frames: Tensor, audio: Tensor, idx: Tensor) -> Tensor:
        with torch.no_grad():
            out = self.net(frames, audio)
        return self.net.locate(out, idx)


def glance_cost(cfg: GlanceConfig, k: int = 4, snippets: int | None = None) -> GlanceCost:
    """Cost of one video (batch 1): ``snippets`` (default ``cfg.num_snippets``), K patches."""
    t = snippets or cfg.num_snippets
    # Count on "meta" tensors (shapes only, no compute). Build on CPU and move: random init
    # directly on meta goes through slow reference kernels.
    net = GlanceNet(cfg).eval().to("meta")
    with torch.device("meta"):
        frames = torch.zeros(1, t, cfg.frame_size, cfg.frame_size, 3, dtype=torch.uint8)
        audio = torch.zeros(1, t, cfg.audio_samples)
        idx = torch.arange(min(k, t))[None]
    fwd = count_gmacs(net, (frames, audio))
    both = count_gmacs(_Locate(net), (frames, audio, idx))
    return GlanceCost(t, idx.shape[1], fwd, both - fwd, net.num_parameters(inference_only=True))


def glance_gmacs(cfg: GlanceConfig, k: int = 4) -> float:
    """GMACs per video at ``cfg.num_snippets`` snippets with K located patches."""
    return glance_cost(cfg, k).total_gmacs
