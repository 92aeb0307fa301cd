"""AESPA (audio-enhanced spatial patch attention) and the patch policy; top-K snippets only."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from models.glance.config import GlanceConfig


class AESPA(nn.Module):
    """Visual map ``[N, Cv, h, w]`` + audio token ``[N, d]`` → enhanced map ``[N, d, h, w]``.

    The audio token queries the map's cells (multi-head cross-attention); the head-averaged
    attention α over the h·w cells gates the map, ``V ⊙ (1 + γ·hw·α)`` (hw·α has mean 1), and a
    FiLM of the audio token modulates the channels.
    """

    def __init__(self, cfg: GlanceConfig, visual_dim: int) -> None:
        super().__init__()
        d, s = cfg.d_model, cfg.map_size
        self.heads = cfg.aespa_heads
        self.proj = nn.Conv2d(visual_dim, d, 1)
        self.pos = nn.Parameter(torch.zeros(1, d, s, s))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.query = nn.Linear(d, d)
        self.key = nn.Linear(d, d)
        self.gamma = nn.Parameter(torch.ones(()))
        self.film = nn.Linear(d, 2 * d)
        nn.init.zeros_(self.film.weight)  # starts as the identity modulation
        nn.init.zeros_(self.film.bias)

    def forward(self, vmap: Tensor, audio_token: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (enhanced map ``[N, d, h, w]``, attention ``[N, h*w]``)."""
        v = self.proj(vmap) + self.pos
        n, d, h, w = v.shape
        cells = v.flatten(2).transpose(1, 2)  # [N, hw, d]
        q = self.query(audio_token).view(n, self.heads, 1, -1)
        k = self.key(cells).view(n, h * w, self.heads, -1).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)).squeeze(2) / math.sqrt(d // self.heads)
        alpha = scores.softmax(dim=-1).mean(dim=1)  # [N, hw]
        gate = 1 + self.gamma * (h * w) * alpha.view(n, 1, h, w)
        scale, shift = self.film(audio_token).chunk(2, dim=1)
        enhanced = v * gate * (1 + scale[:, :, None, None]) + shift[:, :, None, None]
        return enhanced, alpha


class PatchPolicy(nn.Module):
    """[enhanced map ‖ visual token] → conv3×3 → BN → ReLU → FC (LN, GELU) → FC 2 → sigmoid.

    Output ``uv [N, 2]`` = (u, v), the patch's top-left corner as fractions of the free range
    along x and y. The last layer starts at zero, i.e. the policy starts at the centred patch.
    """

    def __init__(self, cfg: GlanceConfig) -> None:
        super().__init__()
        d, s = cfg.d_model, cfg.map_size
        self.conv = nn.Sequential(
            nn.Conv2d(2 * d, cfg.policy_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(cfg.policy_channels),
            nn.ReLU(inplace=True),
        )
        last = nn.Linear(cfg.policy_hidden, 2)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cfg.policy_channels * s * s, cfg.policy_hidden),
            # LayerNorm keeps about half the hidden units active: with a plain ReLU one large
            # early update (targets are noisy then) could silence them all for good.
            nn.LayerNorm(cfg.policy_hidden),
            nn.GELU(),
            last,
        )

    def forward(self, enhanced: Tensor, visual_token: Tensor) -> Tensor:
        tok = visual_token[:, :, None, None].expand(-1, -1, *enhanced.shape[2:])
        out: Tensor = self.fc(self.conv(torch.cat([enhanced, tok], dim=1))).sigmoid()
        return out
