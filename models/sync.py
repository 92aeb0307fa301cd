"""Training-only parts of AVSlowFast: DropPathway and the hierarchical AV-sync (AVS) loss.

Nothing here runs in ``AVSlowFast.forward`` in eval mode, and every parameter lives under the
model's ``sync`` submodule, so inference weights, exports and FLOP counts exclude them. The
training forward with the AVS loss (``forward_with_sync``) lives here too, so the served
forward stays a straight line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.blocks import Norm
from models.configs import FUSION_POINTS, STAGES, SYNC_POINTS, AVSlowFastConfig
from models.fusion import AudioToFastSlow, FastToSlow

if TYPE_CHECKING:
    from models.avslowfast import AVSlowFast

# At one sync point: (visual features before audio is added, A→FS output of the aligned
# audio, A→FS output of the misaligned audio).
SyncRecord = tuple[Tensor, Tensor, Tensor]


class DropPathway(nn.Module):
    """Drops all Audio->FastSlow additions for a whole training step with probability ``p``.

    One Bernoulli draw per forward (for the whole batch); never in eval mode. When dropped,
    F->S still runs and the Audio pathway still feeds the head; nothing is rescaled.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def sample(self) -> bool:
        if not self.training or self.p <= 0.0:
            return False
        return bool(torch.rand(()) < self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def sync_pair_mask(
    audio_pos: Tensor, audio_neg: Tensor, var_thresh: float, dup_thresh: float
) -> Tensor:
    """Which (aligned, misaligned) log-mel pairs may train AVS: ``bool [B]``.

    A pair is dropped when either spectrogram is near-constant (variance <= ``var_thresh``,
    e.g. silence) or the two are near-duplicates (cosine >= ``dup_thresh``).
    """
    pos = audio_pos.detach().flatten(1).float()
    neg = audio_neg.detach().flatten(1).float()
    loud = (pos.var(dim=1) > var_thresh) & (neg.var(dim=1) > var_thresh)
    distinct = F.cosine_similarity(pos, neg, dim=1) < dup_thresh
    return loud & distinct


def contrastive_loss(ref: Tensor, pos: Tensor, neg: Tensor, mask: Tensor, margin: float) -> Tensor:
    """Hadsell-style contrastive loss over valid pairs (embeddings ``[B, D]``, mask ``[B]``).

    ``(Σ ||r - p||² + Σ max(0, margin - ||r - n||)²) / (2 · N_valid)``; 0 when nothing is valid.
    """
    m = mask.to(ref.dtype)
    pos_term = ((ref - pos).pow(2).sum(dim=1) * m).sum()
    neg_dist = (ref - neg).norm(dim=1)
    neg_term = ((margin - neg_dist).clamp(min=0).pow(2) * m).sum()
    return (pos_term + neg_term) / (2 * m.sum()).clamp(min=1.0)


class AVSyncHead(nn.Module):
    """Projects visual (ref) and audio (query) features to a shared L2 space at one stage.

    ref: Slow(+F->S) features before audio is added ``[B, C, T, H, W]``; query: the A->FS conv
    stack output ``[B, C, T_s, 1, 1]``. Both are averaged, projected to ``proj_dim``,
    L2-normalised and halved (so squared distances lie in [0, 1]).
    """

    def __init__(self, ref_dim: int, query_dim: int, proj_dim: int) -> None:
        super().__init__()
        self.ref_fc = nn.Linear(ref_dim, proj_dim)
        self.query_fc = nn.Linear(query_dim, proj_dim)

    @staticmethod
    def _embed(fc: nn.Module, x: Tensor) -> Tensor:
        return 0.5 * F.normalize(fc(x.mean(dim=(2, 3, 4))), p=2.0, dim=1)

    def forward(self, ref: Tensor, pos: Tensor, neg: Tensor, mask: Tensor, margin: float) -> Tensor:
        r = self._embed(self.ref_fc, ref)
        return contrastive_loss(
            r, self._embed(self.query_fc, pos), self._embed(self.query_fc, neg), mask, margin
        )


def sync_points(config: AVSlowFastConfig, dropped: bool) -> tuple[str, ...]:
    """AVS stages this step: those up to the earliest stage where audio was actually fused.

    Once audio is added, later visual features have "seen" it and sync becomes trivial. With
    the released flags: res3 only when audio is fused, res3/res4/res5 when DropPathway fired.
    """
    fused = [i for i, on in enumerate(config.afs_fusion) if on and not dropped]
    earliest = fused[0] if fused else len(FUSION_POINTS)
    return tuple(
        p
        for i, (p, on) in enumerate(zip(SYNC_POINTS, config.avs_stages, strict=True))
        if on and i <= earliest
    )


class SyncModules(nn.Module):
    """All training-only parameters: AVS projections, plus the res5 laterals used only by AVS."""

    def __init__(self, config: AVSlowFastConfig, norm: Norm) -> None:
        super().__init__()
        self.heads = nn.ModuleDict()
        self.fs_res5: FastToSlow | None = None
        self.afs_res5: AudioToFastSlow | None = None
        for point, on in zip(SYNC_POINTS, config.avs_stages, strict=True):
            if not on:
                continue
            stage = "conv1" if point == "pool1" else point
            width = config.stage_width("slow", stage) + config.lateral_width(point)
            self.heads[point] = AVSyncHead(width, width, config.avs_proj_dim)
        if config.avs_stages[-1]:
            self.fs_res5 = FastToSlow(
                config.stage_width("fast", "res5"),
                config.fusion_conv_ratio,
                config.fusion_kernel,
                config.alpha,
                norm,
            )
            self.afs_res5 = AudioToFastSlow(
                config.stage_width("audio", "res5"),
                config.afs_dim,
                config.stage_width("slow", "res5") + config.lateral_width("res5"),
                config.afs_kernel,
                config.afs_time_stride("res5"),
                norm,
            )


def forward_with_sync(
    model: AVSlowFast, x: dict[str, Tensor], audio_negative: Tensor, *, dropped: bool
) -> tuple[Tensor, dict[str, Tensor]]:
    """``model``'s training forward plus the AVS loss of each sync point this step.

    ``x`` holds the named inputs; ``audio_negative`` is a misaligned log-mel per clip (row i
    pairs with clip i). Aligned and misaligned audio run through the Audio pathway as one batch
    ``cat([pos, neg])`` and are split back by halves, so row i always meets row i. Only the
    aligned half is fused into the visual pathways (unless DropPathway ``dropped`` it) and
    reaches the head. Returns the logits and the loss per sync point.
    """
    sync = model.sync
    if sync is None:
        raise ValueError("this model has no AV-sync parts; call without audio_negative")
    if audio_negative.shape != x["audio"].shape:
        raise ValueError(
            f"audio_negative {tuple(audio_negative.shape)} must match audio "
            f"{tuple(x['audio'].shape)}"
        )
    c = model.config
    points = sync_points(c, dropped)
    mask = sync_pair_mask(x["audio"], audio_negative, c.avs_var_thresh, c.avs_dup_thresh)
    n = audio_negative.shape[0]
    x = {**x, "audio": torch.cat([x["audio"], audio_negative], dim=0)}
    records: dict[str, SyncRecord] = {}
    for stage, point in zip(("conv1", *STAGES), (*FUSION_POINTS, None), strict=True):
        x = model.stage(stage, x)
        if point is None:
            break
        x = model.fuse(point, x, add_audio=False)  # F→S only: audio is handled below
        if point in model.audio_to_fastslow and (not dropped or point in points):
            query = model.audio_to_fastslow[point](x["audio"])
            if point in points:
                records[point] = (x["slow"], query[:n], query[n:])
            if not dropped:
                x["slow"] = x["slow"] + query[:n]
    if "res5" in points:
        assert sync.fs_res5 is not None and sync.afs_res5 is not None
        ref = sync.fs_res5(x["slow"], x["fast"])
        query = sync.afs_res5(x["audio"])
        records["res5"] = (ref, query[:n], query[n:])
    x["audio"] = x["audio"][:n]
    logits = model.head([x[p] for p in model.input_names])
    losses = {p: sync.heads[p](*records[p], mask, c.avs_margin) for p in points}
    return logits, losses
