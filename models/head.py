"""Classification head and helpers for several heads laid out in one logits tensor."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from models.configs import HeadSpec


class MultiPathwayHead(nn.Module):
    """Global average pool per pathway, concat (Slow, Fast, Audio order), dropout, linear.

    Pooling is global (adaptive), so any crop size or clip length works. Returns logits
    ``[B, sum(num_classes)]``; no softmax (callers apply softmax or sigmoid per head).
    """

    def __init__(self, dims: Sequence[int], num_classes: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.proj = nn.Linear(sum(dims), num_classes)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        pooled = torch.cat([f.flatten(2).mean(dim=2) for f in features], dim=1)
        return self.proj(self.dropout(pooled))


def split_heads(logits: Tensor, heads: Sequence[HeadSpec]) -> dict[str, Tensor]:
    """``[B, sum(C_h)] -> {head: [B, C_h]}`` in head order."""
    sizes = [h.num_classes for h in heads]
    if logits.shape[-1] != sum(sizes):
        raise ValueError(f"logits have {logits.shape[-1]} classes, heads expect {sum(sizes)}")
    return {h.name: part for h, part in zip(heads, torch.split(logits, sizes, dim=-1), strict=True)}


def head_probabilities(logits: Tensor, heads: Sequence[HeadSpec]) -> dict[str, Tensor]:
    """Per-head scores: softmax for single-label heads, sigmoid for multi-label heads."""
    return {
        h.name: (part.sigmoid() if h.multi_label else part.softmax(dim=-1))
        for h, part in zip(heads, split_heads(logits, heads).values(), strict=True)
    }
