"""Glance training losses and a step helper (pure torch: no data loading, no service imports).

Losses follow docs/glance.md §6 (training):
- saliency distillation ``KL(softmax_t(teacher_logp / τ) ‖ softmax_t(s))`` from the heavy model's
  per-window log-probability of the video's class, or, without a teacher cache, the Uni-AdaFocus
  MC objective (classify the saliency-weighted mix of per-snippet logits);
- supervised CE of the glance head; per-snippet CE of the snippet head and of the visual-only /
  audio-only auxiliary heads, weighted by the teacher's saliency (where the label is evident);
  and/or KL to the heavy model's video-level prediction;
- the spatial patch proxy: crop the selected snippet's feature map (stop-gradient) at the
  policy's (u, v) and at a random (u, v) (what an empty crop looks like), pool, auxiliary
  linear, CE, plus a multiple-instance CE over a grid of candidate boxes (the label holds in
  some box). The notes crop the AESPA-enhanced map; ``_spatial_terms`` says why we do not.
  Bilinear crops are only locally differentiable in (u, v), so the policy is also regressed
  onto the target of a search over those candidates scored by the proxy (labels, never boxes).

Labels are per head: ``LongTensor [B]`` class indices (-1 = unknown) for single-label heads,
multi-hot ``float [B, C_h]`` for multi-label heads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.configs import HeadSpec
from models.glance import GlanceNet, GlanceOutput
from models.head import split_heads

Labels = Mapping[str, Tensor]


def saliency_distillation_loss(saliency: Tensor, teacher_logp: Tensor, tau: float = 1.0) -> Tensor:
    """``KL(softmax(teacher_logp / τ) ‖ softmax(saliency))`` over snippets, batch mean."""
    target = F.softmax(teacher_logp.float() / tau, dim=1)
    return F.kl_div(F.log_softmax(saliency.float(), dim=1), target, reduction="batchmean")


def classification_loss(logits: Tensor, labels: Labels, heads: Sequence[HeadSpec]) -> Tensor:
    """Sum over heads present in ``labels``: CE (single-label, -1 ignored) or BCE (multi-label).

    ``logits`` may carry extra leading dims before the batch (e.g. candidate boxes ``[G, B, C]``)
    as long as the labels broadcast; the result is a mean over the labelled rows.
    """
    total = logits.new_zeros(())
    for head, part in split_heads(logits.float(), heads).items():
        if head not in labels:
            continue
        spec = next(h for h in heads if h.name == head)
        target = labels[head].to(part.device)
        if spec.multi_label:
            total = total + F.binary_cross_entropy_with_logits(part, target.float().expand_as(part))
        elif bool((target >= 0).any()):
            t = target.long().expand(part.shape[:-1])
            total = total + F.cross_entropy(part.flatten(0, -2), t.flatten(), ignore_index=-1)
    return total


def per_sample_classification_loss(
    logits: Tensor, labels: Labels, heads: Sequence[HeadSpec]
) -> Tensor:
    """Like :func:`classification_loss` but unreduced over the last batch dim: ``[..., B]``."""
    total = logits.new_zeros(logits.shape[:-1], dtype=torch.float32)
    for head, part in split_heads(logits.float(), heads).items():
        if head not in labels:
            continue
        spec = next(h for h in heads if h.name == head)
        target = labels[head].to(part.device)
        if spec.multi_label:
            bce = F.binary_cross_entropy_with_logits(
                part, target.float().expand_as(part), reduction="none"
            )
            total = total + bce.mean(-1)
        else:
            t = target.long().expand(part.shape[:-1])
            ce = F.cross_entropy(
                part.flatten(0, -2), t.flatten().clamp(min=0), reduction="none"
            ).view(t.shape)
            total = total + ce * (t >= 0)
    return total


def distillation_loss(
    logits: Tensor, teacher_logits: Tensor, heads: Sequence[HeadSpec], tau: float = 1.0
) -> Tensor:
    """Match the heavy model's video-level prediction per head: softened KL (single-label heads,
    scaled by τ²) or BCE to the teacher's sigmoid (multi-label heads)."""
    total = logits.new_zeros((), dtype=torch.float32)
    teacher = split_heads(teacher_logits.float().detach(), heads)
    for spec, (name, part) in zip(heads, split_heads(logits.float(), heads).items(), strict=True):
        if spec.multi_label:
            total = total + F.binary_cross_entropy_with_logits(part, teacher[name].sigmoid())
        else:
            target = F.softmax(teacher[name] / tau, dim=-1)
            kl = F.kl_div(F.log_softmax(part / tau, dim=-1), target, reduction="batchmean")
            total = total + kl * tau * tau
    return total


def mc_saliency_loss(
    saliency: Tensor, snippet_logits: Tensor, labels: Labels, heads: Sequence[HeadSpec]
) -> Tensor:
    """Fallback without a teacher: classify ``Σ_t softmax(s)_t · h_t`` (Uni-AdaFocus MC)."""
    weights = F.softmax(saliency.float(), dim=1).unsqueeze(-1)
    return classification_loss((weights * snippet_logits.float()).sum(dim=1), labels, heads)


def candidate_uv(grid: int, device: torch.device | None = None) -> Tensor:
    """``[grid², 2]`` evenly spaced (u, v) in [0, 1]² (row-major over v then u)."""
    g = torch.linspace(0, 1, grid, device=device)
    v, u = torch.meshgrid(g, g, indexing="ij")
    return torch.stack([u.flatten(), v.flatten()], dim=1)


def candidate_patch_logits(
    net: GlanceNet, enhanced: Tensor, grid: int | None = None
) -> tuple[Tensor, Tensor]:
    """Proxy logits ``[G, N, C]`` of ``G = grid²`` candidate boxes on maps ``[N, d, h, w]``,
    with the candidates' (u, v) ``[G, 2]``. Half-cell steps by default, so the search's own
    quantisation stays well under a cell."""
    n = enhanced.shape[0]
    grid = grid or 2 * (net.cfg.map_size - net.proxy_size) + 1
    cands = candidate_uv(max(grid, 1), enhanced.device)
    g = cands.shape[0]
    maps = enhanced.unsqueeze(0).expand(g, *enhanced.shape).flatten(0, 1)
    logits = net.patch_logits(maps, cands.repeat_interleave(n, dim=0)).view(g, n, -1)
    return cands, logits


def patch_targets_from_logits(
    cands: Tensor, logits: Tensor, labels: Labels, heads: Sequence[HeadSpec], temperature: float
) -> Tensor:
    """Target (u, v) ``[N, 2]`` from candidate logits ``[G, N, C]`` (see
    :func:`search_patch_targets`)."""
    loss = per_sample_classification_loss(logits.detach(), labels, heads)  # [G, N]
    evidence = -torch.log(torch.expm1(loss.double().clamp(min=1e-12))).float()
    if temperature <= 0:
        return cands[evidence.argmax(dim=0)]
    return F.softmax(evidence / temperature, dim=0).t() @ cands


@torch.no_grad()
def search_patch_targets(
    net: GlanceNet,
    enhanced: Tensor,
    labels: Labels,
    grid: int | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """Target (u, v) ``[N, 2]`` per map ``[N, d, h, w]`` from ``grid²`` candidate boxes scored
    by the patch proxy on the labels.

    The score is the evidence ``-log(expm1(loss))`` (the log-odds of the right class for a
    softmax head), not the loss itself: once the proxy is confident the loss of every box that
    holds the object is ~0, and the arg-min among them is arbitrary (often off-centre), while the
    evidence keeps growing with how much of the object the box holds. The target is the
    ``softmax(evidence / temperature)`` mean of the candidates (``temperature=0``: the arg-max).
    """
    cands, logits = candidate_patch_logits(net, enhanced, grid)
    return patch_targets_from_logits(cands, logits, labels, net.cfg.heads, temperature)


def patch_mil_loss(logits: Tensor, labels: Labels, heads: Sequence[HeadSpec]) -> Tensor:
    """Multiple-instance CE over candidate boxes ``[G, N, C]``: the label must hold in *some*
    box (smooth max over boxes), never in every box, so empty crops are not forced to a class."""
    pooled = torch.logsumexp(logits, dim=0) - math.log(logits.shape[0])
    return classification_loss(pooled, labels, heads)


@dataclass(frozen=True)
class GlanceLossWeights:
    """Weights of each term; a term also needs its inputs in the batch to count."""

    glance_ce: float = 1.0  # CE(g) on labels
    aux_ce: float = 0.5  # visual-only and audio-only heads per snippet, weighted as snippet_ce
    snippet_ce: float = 1.0  # per-snippet CE, weighted by the teacher's saliency when given
    distill: float = 1.0  # KL(g ‖ heavy video-level prediction)
    saliency: float = 1.0  # KL_sal to the heavy model's per-window log p_t(y)
    mc: float = 1.0  # MC fallback, used only when no teacher saliency is given
    patch: float = 0.5  # proxy CE at the policy's and at a random (u, v)
    policy_search: float = 5.0  # regress (u, v) onto the searched box (uv errors are small)
    search_temperature: float = 1.0  # softness of the search target (0: arg-max box)
    saliency_tau: float = 1.0
    distill_tau: float = 1.0


@dataclass
class GlanceBatch:
    """One training batch; every field but frames/audio is optional."""

    frames: Tensor  # uint8 [B, T, S, S, 3]
    audio: Tensor  # float32 [B, T, N]
    labels: dict[str, Tensor] = field(default_factory=dict)
    audio_present: Tensor | None = None  # bool [B]
    teacher_snippet_logp: Tensor | None = None  # [B, T] heavy log p_t(y) per snippet window
    teacher_logits: Tensor | None = None  # [B, C] heavy video-level logits
    selected: Tensor | None = None  # [B, K] snippets to train the spatial part on


class GlanceLoss(nn.Module):
    """All glance losses for one batch → ``{"total": ..., term: ...}`` (terms detached)."""

    def __init__(
        self, net: GlanceNet, weights: GlanceLossWeights = GlanceLossWeights(), k: int = 1
    ):
        super().__init__()
        self.net = net
        self.weights = weights
        self.k = k

    def _selected(self, batch: GlanceBatch, out: GlanceOutput) -> Tensor:
        if batch.selected is not None:
            return batch.selected.to(out.saliency.device)
        ranking = (
            batch.teacher_snippet_logp if batch.teacher_snippet_logp is not None else out.saliency
        )
        k = min(self.k, ranking.shape[1])
        return ranking.detach().to(out.saliency.device).topk(k, dim=1).indices

    def forward(self, batch: GlanceBatch) -> dict[str, Tensor]:
        net, w, heads = self.net, self.weights, self.net.cfg.heads
        out = net(batch.frames, batch.audio, batch.audio_present)
        terms: dict[str, Tensor] = {}
        labels = batch.labels
        if labels and w.glance_ce:
            terms["glance_ce"] = w.glance_ce * classification_loss(out.logits, labels, heads)
        if labels and w.aux_ce:
            aux = self._snippet_ce(batch, out.visual_logits, labels)
            terms["aux_ce"] = w.aux_ce * (aux + self._snippet_ce(batch, out.audio_logits, labels))
        if labels and w.snippet_ce:
            terms["snippet_ce"] = w.snippet_ce * self._snippet_ce(batch, out.snippet_logits, labels)
        if batch.teacher_logits is not None and w.distill:
            terms["distill"] = w.distill * distillation_loss(
                out.logits, batch.teacher_logits, heads, w.distill_tau
            )
        if batch.teacher_snippet_logp is not None and w.saliency:
            terms["saliency"] = w.saliency * saliency_distillation_loss(
                out.saliency, batch.teacher_snippet_logp, w.saliency_tau
            )
        elif labels and w.mc:
            terms["mc"] = w.mc * mc_saliency_loss(out.saliency, out.snippet_logits, labels, heads)
        if labels and (w.patch or w.policy_search):
            terms.update(self._spatial_terms(batch, out, labels))
        if not terms:
            raise ValueError("the batch has nothing to learn from (no labels and no teacher)")
        total = torch.stack(list(terms.values())).sum()
        return {"total": total, **{k: v.detach() for k, v in terms.items()}}

    def _snippet_ce(self, batch: GlanceBatch, logits: Tensor, labels: Labels) -> Tensor:
        """CE of per-snippet logits ``[B, T, C]``, weighted by where the teacher sees the class
        (uniform without one): the label need not hold in every snippet, but it does where the
        heavy model is sure."""
        per = per_sample_classification_loss(logits.transpose(0, 1), labels, self.net.cfg.heads)
        b, t = logits.shape[:2]
        if batch.teacher_snippet_logp is not None:
            r = F.softmax(batch.teacher_snippet_logp.float() / self.weights.saliency_tau, dim=1)
        else:
            r = torch.full((b, t), 1.0 / t)
        return (r.t().to(per.device) * per).sum(dim=0).mean()  # per is [T, B]

    def _spatial_terms(
        self, batch: GlanceBatch, out: GlanceOutput, labels: Labels
    ) -> dict[str, Tensor]:
        net, w = self.net, self.weights
        idx = self._selected(batch, out)
        sp = net.spatial(out, idx)
        k = idx.shape[1]
        # The proxy crops the encoder maps of the selected snippets (stop-gradient), not the
        # AESPA output: AESPA's audio gate and FiLM mix video-level evidence into every cell, so
        # crops anywhere classify and the search loses its peak (on the synthetic test, 47-88%
        # of patches within a cell over 4 seeds, against 100% from the encoder maps). AESPA
        # learns through the policy, whose input it is.
        maps = sp.visual_map.flatten(0, 1).detach()
        uv = sp.uv.flatten(0, 1)
        rep = {h: t.to(uv.device).repeat_interleave(k, dim=0) for h, t in labels.items()}
        terms: dict[str, Tensor] = {}
        cands, logits = candidate_patch_logits(net, maps)
        if w.patch:
            proxy = classification_loss(net.patch_logits(maps, uv), rep, net.cfg.heads)
            rand = classification_loss(
                net.patch_logits(maps, torch.rand_like(uv)), rep, net.cfg.heads
            )
            mil = patch_mil_loss(logits, rep, net.cfg.heads)
            terms["patch"] = w.patch * (proxy + rand + mil) / 3
        if w.policy_search:
            target = patch_targets_from_logits(
                cands, logits, rep, net.cfg.heads, self.weights.search_temperature
            )
            terms["policy_search"] = w.policy_search * F.smooth_l1_loss(uv, target, beta=0.1)
        return terms


def param_groups(
    net: GlanceNet, lr: float, multipliers: Mapping[str, float] | None = None
) -> list[dict[str, object]]:
    """Optimizer groups ``encoders``, ``avtest``, ``heads``, ``spatial`` with LR multipliers
    (AdaFocusV2 fine-tuning used policy 0.1, glance 0.5, classifier 5; from scratch: all 1)."""
    mult = dict(multipliers or {})
    groups: dict[str, list[nn.Parameter]] = {
        "encoders": [],
        "avtest": [],
        "heads": [],
        "spatial": [],
    }
    for name, p in net.named_parameters():
        top = name.split(".", 1)[0]
        key = {"visual": "encoders", "audio": "encoders", "avtest": "avtest", "aespa": "spatial",
               "policy": "spatial", "patch_head": "spatial"}.get(top, "heads")  # fmt: skip
        groups[key].append(p)
    return [
        {"params": ps, "lr": lr * mult.get(k, 1.0), "name": k} for k, ps in groups.items() if ps
    ]


class GlanceTrainer:
    """Owns the loss and an AdamW optimizer; ``step(batch)`` runs one update."""

    def __init__(
        self,
        net: GlanceNet,
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        weights: GlanceLossWeights = GlanceLossWeights(),
        k: int = 1,
        lr_multipliers: Mapping[str, float] | None = None,
        grad_clip: float | None = 5.0,
        total_steps: int | None = None,
    ) -> None:
        self.net = net
        self.loss = GlanceLoss(net, weights, k)
        self.optimizer = torch.optim.AdamW(
            param_groups(net, lr, lr_multipliers), lr=lr, weight_decay=weight_decay
        )
        self.grad_clip = grad_clip
        # Cosine decay to zero over total_steps when given (a constant LR otherwise).
        self.scheduler = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, total_steps)
            if total_steps
            else None
        )

    def step(self, batch: GlanceBatch) -> dict[str, float]:
        self.net.train()
        losses = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        if self.grad_clip:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        return {k: float(v.detach()) for k, v in losses.items()}
