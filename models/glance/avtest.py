"""AV-TeST: a pre-LN transformer over [CLS] + T visual + T audio snippet tokens.

Outputs per-snippet saliency logits (from each snippet's visual+audio token pair), glance-level
class logits (from CLS) and the contextualised tokens that AESPA and the policy use.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.glance.config import GlanceConfig


class SelfAttentionBlock(nn.Module):
    """Pre-LN transformer block. Written with ``scaled_dot_product_attention`` (no fused
    ``nn.TransformerEncoderLayer`` fast path) so FLOP counting and export see plain ops."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(
            nn.Linear(d, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, d)
        )
        self.drop = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ffn(self.norm2(x)))


class TimeEmbedding(nn.Module):
    """Fourier features of the relative snippet position (t + 0.5) / T, so any T works."""

    freqs: Tensor

    def __init__(self, d: int, num_freqs: int = 16) -> None:
        super().__init__()
        self.register_buffer(
            "freqs", math.pi * torch.arange(1, num_freqs + 1, dtype=torch.float32), persistent=False
        )
        self.proj = nn.Linear(2 * num_freqs, d)

    def forward(self, t: int, dtype: torch.dtype) -> Tensor:
        pos = (torch.arange(t, device=self.freqs.device, dtype=self.freqs.dtype) + 0.5) / t
        ang = pos[:, None] * self.freqs[None, :]
        return self.proj(torch.cat([ang.sin(), ang.cos()], dim=1).to(dtype))  # [T, d]


class AVTeST(nn.Module):
    def __init__(self, cfg: GlanceConfig, visual_dim: int, audio_dim: int) -> None:
        super().__init__()
        d = cfg.d_model
        self.v_proj = nn.Linear(visual_dim, d)
        self.a_proj = nn.Linear(audio_dim, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.modality = nn.Parameter(torch.zeros(2, d))  # visual, audio
        self.missing_audio = nn.Parameter(torch.zeros(d))  # stands in for absent/dropped audio
        self.time = TimeEmbedding(d)
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(d, cfg.num_attention_heads, cfg.ffn_dim, cfg.dropout)
            for _ in range(cfg.num_layers)
        )
        self.norm = nn.LayerNorm(d)
        for p in (self.cls, self.modality, self.missing_audio):
            nn.init.trunc_normal_(p, std=0.02)

    def forward(
        self, visual: Tensor, audio: Tensor, audio_keep: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """visual ``[B,T,Cv]``, audio ``[B,T,Ca]``, audio_keep bool ``[B]`` →
        (cls ``[B,d]``, visual tokens ``[B,T,d]``, audio tokens ``[B,T,d]``)."""
        b, t = visual.shape[:2]
        time = self.time(t, visual.dtype)
        v = self.v_proj(visual) + self.modality[0] + time
        a = self.a_proj(audio)
        a = torch.where(audio_keep.view(b, 1, 1), a, self.missing_audio.to(a.dtype))
        a = a + self.modality[1] + time
        x = torch.cat([self.cls.expand(b, 1, -1).to(v.dtype), v, a], dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return x[:, 0], x[:, 1 : 1 + t], x[:, 1 + t :]
