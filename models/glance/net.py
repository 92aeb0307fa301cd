"""GlanceNet: score every snippet cheaply, then locate a patch in the selected ones."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from models.glance.avtest import AVTeST
from models.glance.config import GlanceConfig
from models.glance.encoders import AudioEncoder, VisualEncoder
from models.glance.geometry import crop_patches, feature_map_offset
from models.glance.spatial import AESPA, PatchPolicy


class GlanceOutput(NamedTuple):
    saliency: Tensor  # [B, T] logits; softmax over T ranks the snippets
    logits: Tensor  # [B, C] glance-level class logits (from CLS), heads laid out as the heavy model
    snippet_logits: Tensor  # [B, T, C] per-snippet class logits (MC objective, diagnostics)
    visual_logits: Tensor  # [B, T, C] auxiliary visual-only head per snippet (training signal)
    audio_logits: Tensor  # [B, T, C] auxiliary audio-only head per snippet (training signal)
    visual_map: Tensor  # [B, T, Cv, h, w] encoder maps, what AESPA reads
    visual_tokens: Tensor  # [B, T, d] AV-TeST outputs at the visual positions
    audio_tokens: Tensor  # [B, T, d] AV-TeST outputs at the audio positions


class SpatialOutput(NamedTuple):
    uv: Tensor  # [B, K, 2] patch corner fractions in [0, 1]
    visual_map: Tensor  # [B, K, Cv, h, w] the selected snippets' encoder maps
    enhanced: Tensor  # [B, K, d, h, w] AESPA-enhanced maps (the patch proxy crops these)
    attention: Tensor  # [B, K, h*w] AESPA audio-to-cell attention


class GlanceNet(nn.Module):
    """``forward(frames uint8 [B,T,S,S,3], audio float32 [B,T,N]) -> GlanceOutput``;
    ``locate(output, idx [B,K]) -> uv [B,K,2]`` for the selected snippets only.

    ``audio_present`` (bool ``[B]``) replaces the audio tokens of silent-less videos (no audio
    stream) by a learned "missing audio" token, the same token audio-token dropout trains.
    """

    def __init__(self, cfg: GlanceConfig = GlanceConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        c, d = cfg.total_classes, cfg.d_model
        self.visual = VisualEncoder(cfg)
        self.audio = AudioEncoder(cfg)
        cv, ca = self.visual.out_channels, self.audio.out_channels
        self.avtest = AVTeST(cfg, cv, ca)
        self.saliency_head = nn.Sequential(
            nn.Linear(2 * d, cfg.saliency_hidden), nn.GELU(), nn.Linear(cfg.saliency_hidden, 1)
        )
        self.snippet_head = nn.Linear(2 * d, c)
        self.glance_head = nn.Linear(d, c)
        self.visual_aux_head = nn.Linear(cv, c)
        self.audio_aux_head = nn.Linear(ca, c)
        self.aespa = AESPA(cfg, cv)
        self.policy = PatchPolicy(cfg)
        self.patch_head = nn.Linear(cv, c)  # training-only: classifies proxy crops of the maps
        self.proxy_size = max(1, math.ceil(cfg.rho * cfg.map_size))
        self.map_offset = feature_map_offset(cfg.visual.stride)

    def _check(self, frames: Tensor, audio: Tensor) -> None:
        s = self.cfg.frame_size
        if frames.dim() != 5 or frames.shape[2:] != (s, s, 3) or frames.dtype != torch.uint8:
            raise ValueError(f"frames must be uint8 [B, T, {s}, {s}, 3], got "
                             f"{frames.dtype} {list(frames.shape)}")  # fmt: skip
        if audio.dim() != 3 or audio.shape[:2] != frames.shape[:2]:
            raise ValueError(f"audio must be [B, T, N] matching frames, got {list(audio.shape)}")
        if audio.shape[2] < self.cfg.audio_features.n_fft:
            raise ValueError(f"audio snippets have {audio.shape[2]} samples, too short")

    def forward(
        self, frames: Tensor, audio: Tensor, audio_present: Tensor | None = None
    ) -> GlanceOutput:
        self._check(frames, audio)
        b = frames.shape[0]
        vmap, vfeat = self.visual(frames)
        afeat = self.audio(audio).to(vfeat.dtype)
        keep = torch.ones(b, dtype=torch.bool, device=frames.device)
        if audio_present is not None:
            keep = keep & audio_present.to(device=frames.device, dtype=torch.bool).view(b)
        if self.training and self.cfg.audio_token_dropout > 0:
            keep = keep & (torch.rand(b, device=frames.device) >= self.cfg.audio_token_dropout)
        cls, vtok, atok = self.avtest(vfeat, afeat, keep)
        pair = torch.cat([vtok, atok], dim=-1)
        return GlanceOutput(
            saliency=self.saliency_head(pair).squeeze(-1),
            logits=self.glance_head(cls),
            snippet_logits=self.snippet_head(pair),
            visual_logits=self.visual_aux_head(vfeat),
            audio_logits=self.audio_aux_head(afeat),
            visual_map=vmap,
            visual_tokens=vtok,
            audio_tokens=atok,
        )

    def spatial(self, out: GlanceOutput, idx: Tensor) -> SpatialOutput:
        """AESPA + policy on the snippets ``idx [B, K]`` (training needs the enhanced maps)."""
        b = out.saliency.shape[0]
        if idx.dim() != 2 or idx.shape[0] != b:
            raise ValueError(f"idx must be [B, K] with B={b}, got {list(idx.shape)}")
        t = out.saliency.shape[1]
        # (meta tensors, used for FLOP counting, have no values to check)
        if idx.numel() and not idx.is_meta and (int(idx.min()) < 0 or int(idx.max()) >= t):
            raise ValueError(f"snippet indices must be in [0, {t})")
        k = idx.shape[1]
        rows = torch.arange(b, device=idx.device)[:, None]
        vmap, vtok, atok = (
            out.visual_map[rows, idx],
            out.visual_tokens[rows, idx],
            out.audio_tokens[rows, idx],
        )
        if self.cfg.detach_spatial:
            vmap, vtok, atok = vmap.detach(), vtok.detach(), atok.detach()
        enhanced, attn = self.aespa(vmap.flatten(0, 1), atok.flatten(0, 1))
        uv = self.policy(enhanced, vtok.flatten(0, 1))
        return SpatialOutput(
            uv=uv.view(b, k, 2),
            visual_map=vmap,
            enhanced=enhanced.view(b, k, *enhanced.shape[1:]),
            attention=attn.view(b, k, -1),
        )

    def locate(self, out: GlanceOutput, idx: Tensor) -> Tensor:
        """Patch corner fractions ``uv [B, K, 2]`` in [0, 1] for the selected snippets."""
        return self.spatial(out, idx).uv

    def patch_logits(self, maps: Tensor, uv: Tensor) -> Tensor:
        """Patch proxy (training only): crop encoder maps ``[N, Cv, h, w]`` at ``uv [N, 2]``
        (side rho of the map, cells aligned with pixels), average-pool, classify → ``[N, C]``.
        Differentiable in ``uv``."""
        crops = crop_patches(maps, uv, self.cfg.rho, self.proxy_size, self.map_offset)
        return self.patch_head(crops.mean(dim=(2, 3)))

    def num_parameters(self, inference_only: bool = False) -> int:
        skip = ("patch_head.",) if inference_only else ()
        return sum(p.numel() for n, p in self.named_parameters() if not n.startswith(skip))
