"""Glance training losses: each term rewards what the design notes say it should."""

from __future__ import annotations

import math

import pytest
import torch

from models.configs import HeadSpec
from models.glance import GlanceConfig, GlanceNet, patch_center
from offline.glance.trainer import (
    GlanceBatch,
    GlanceLoss,
    GlanceTrainer,
    classification_loss,
    distillation_loss,
    mc_saliency_loss,
    saliency_distillation_loss,
    search_patch_targets,
)

HEADS = (HeadSpec("action", 4), HeadSpec("tags", 3, multi_label=True))


def test_saliency_kl_is_zero_at_the_teacher_and_pulls_towards_its_best_snippet() -> None:
    teacher = torch.log(torch.tensor([[0.1, 0.7, 0.2]]))
    assert saliency_distillation_loss(teacher.clone(), teacher).abs() < 1e-6
    s = torch.zeros(1, 3, requires_grad=True)
    loss = saliency_distillation_loss(s, teacher)
    assert loss > 0
    loss.backward()
    assert s.grad is not None and int(s.grad.argmin()) == 1  # descent raises snippet 1 most
    # A lower temperature sharpens the target: uniform scores then cost more.
    assert saliency_distillation_loss(s, teacher, tau=0.25) > loss


def test_classification_loss_handles_both_head_kinds_and_unknown_labels() -> None:
    logits = torch.tensor([[5.0, 0, 0, 0, 9, -9, 9], [0, 5.0, 0, 0, -9, 9, -9]])
    good = {"action": torch.tensor([0, 1]), "tags": torch.tensor([[1.0, 0, 1], [0, 1, 0]])}
    bad = {"action": torch.tensor([2, 3]), "tags": 1 - good["tags"]}
    assert classification_loss(logits, good, HEADS) < 0.05
    assert classification_loss(logits, bad, HEADS) > 5
    unknown = {"action": torch.tensor([-1, 1])}  # the first row has no label: it must not count
    only_second = classification_loss(logits[1:], {"action": torch.tensor([1])}, HEADS)
    torch.testing.assert_close(classification_loss(logits, unknown, HEADS), only_second)


def test_distillation_is_minimal_when_matching_the_teacher() -> None:
    gen = torch.Generator().manual_seed(0)
    teacher = torch.randn(3, 7, generator=gen) * 3
    at_teacher = distillation_loss(teacher.clone(), teacher, HEADS)
    elsewhere = distillation_loss(torch.randn(3, 7, generator=gen), teacher, HEADS)
    assert at_teacher < elsewhere
    single = distillation_loss(teacher[:, :4].clone(), teacher[:, :4], HEADS[:1])
    assert single.abs() < 1e-5  # KL part is exactly zero at the teacher


def test_mc_objective_rewards_saliency_on_the_informative_snippet() -> None:
    snippet_logits = torch.zeros(1, 4, 7)
    snippet_logits[0, 2, 1] = 8.0  # only snippet 2 knows the class is 1
    labels = {"action": torch.tensor([1])}
    on = mc_saliency_loss(torch.tensor([[0.0, 0, 5, 0]]), snippet_logits, labels, HEADS)
    off = mc_saliency_loss(torch.tensor([[5.0, 0, 0, 0]]), snippet_logits, labels, HEADS)
    assert on < off


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_patch_search_centres_the_box_on_the_discriminative_cell(temperature: float) -> None:
    torch.manual_seed(0)
    cfg = GlanceConfig.tiny(heads=(HeadSpec("c", 2),), rho=0.25)  # 8x8 map of 8 px cells
    net = GlanceNet(cfg).eval()
    with torch.no_grad():  # the proxy classifier reads channel 0: high means class 1
        net.patch_head.weight.zero_()
        net.patch_head.bias.zero_()
        net.patch_head.weight[1, 0] = 1.0
    maps = torch.zeros(3, net.visual.out_channels, 8, 8)
    cells = [(1, 6), (7, 0), (4, 3)]  # (column, row)
    for i, (col, row) in enumerate(cells):
        maps[i, 0, row, col] = 40.0  # a confident proxy: the evidence peak dominates
    uv = search_patch_targets(
        net, maps, {"c": torch.ones(3, dtype=torch.long)}, temperature=temperature
    )
    centres = patch_center(uv, 64, 64, cfg.rho)
    for (x, y), (col, row) in zip(centres.tolist(), cells, strict=True):
        # Cell j of a stride-8 trunk sees pixels around 8j + 0.5; patch centres reach [8, 56].
        want_x, want_y = min(max(8 * col + 0.5, 8.0), 56.0), min(max(8 * row + 0.5, 8.0), 56.0)
        assert abs(x - want_x) <= 4 and abs(y - want_y) <= 4


def test_proxy_loss_reaches_uv_and_the_policy() -> None:
    torch.manual_seed(0)
    cfg = GlanceConfig.tiny(heads=HEADS)
    net = GlanceNet(cfg).train()
    gen = torch.Generator().manual_seed(1)
    frames = torch.randint(0, 256, (2, 16, 64, 64, 3), dtype=torch.uint8, generator=gen)
    audio = torch.randn(2, 16, cfg.audio_samples, generator=gen) * 0.1
    out = net(frames, audio)
    sp = net.spatial(out, torch.tensor([[3, 5], [0, 15]]))
    uv = sp.uv.detach().flatten(0, 1).requires_grad_(True)
    labels = {"action": torch.tensor([1, 1, 2, 2])}
    maps = sp.visual_map.flatten(0, 1)
    proxy = classification_loss(net.patch_logits(maps, uv), labels, HEADS)
    proxy.backward(retain_graph=True)
    assert uv.grad is not None and torch.isfinite(uv.grad).all() and uv.grad.abs().sum() > 0
    net.zero_grad()
    loss = classification_loss(net.patch_logits(maps, sp.uv.flatten(0, 1)), labels, HEADS)
    loss.backward()
    grads = [p.grad for p in net.policy.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    # Spatial training is stop-gradient by default: the encoders get nothing from it.
    assert all(p.grad is None for p in net.visual.parameters())


def test_trainer_lowers_the_loss_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    cfg = GlanceConfig.tiny(heads=HEADS, dropout=0.0, audio_token_dropout=0.0)
    net = GlanceNet(cfg)
    gen = torch.Generator().manual_seed(2)
    batch = GlanceBatch(
        frames=torch.randint(0, 256, (2, 16, 64, 64, 3), dtype=torch.uint8, generator=gen),
        audio=torch.randn(2, 16, cfg.audio_samples, generator=gen) * 0.1,
        labels={"action": torch.tensor([0, 3]), "tags": torch.tensor([[1.0, 0, 0], [0, 1, 1]])},
        teacher_snippet_logp=torch.log_softmax(torch.randn(2, 16, generator=gen), dim=1),
        teacher_logits=torch.randn(2, 7, generator=gen),
    )
    trainer = GlanceTrainer(net, lr=3e-3)
    first = trainer.step(batch)
    assert {"glance_ce", "aux_ce", "distill", "saliency", "patch", "policy_search"} <= set(first)
    assert all(math.isfinite(v) for v in first.values())
    for _ in range(5):
        last = trainer.step(batch)
    assert last["total"] < first["total"]


def test_a_batch_with_nothing_to_learn_from_is_refused() -> None:
    cfg = GlanceConfig.tiny(heads=HEADS)
    frames = torch.zeros(1, 16, 64, 64, 3, dtype=torch.uint8)
    with pytest.raises(ValueError, match="nothing to learn"):
        GlanceLoss(GlanceNet(cfg))(GlanceBatch(frames, torch.zeros(1, 16, cfg.audio_samples)))


def test_a_flip_map_shorter_than_the_head_keeps_the_extra_outcomes_in_place() -> None:
    """Long-video sets list 10 classes; a head with a background outcome has 11."""
    import numpy as np

    from models.configs import HeadSpec
    from models.glance import GlanceConfig, GlanceNet
    from offline.glance.data import GlanceSet
    from offline.glance.distill import GlanceTrainConfig, train_glance

    heads = (HeadSpec("h", 3),)
    net = GlanceNet(GlanceConfig.tiny(heads=heads, num_snippets=4))
    n, t = 4, 4
    size, samples = net.cfg.frame_size, net.cfg.audio_samples
    data = GlanceSet(
        frames=np.zeros((n, t, size, size, 3), np.uint8),
        audio=np.zeros((n, t, samples), np.float32),
        audio_present=np.ones(n, bool),
        labels=np.array([0, 1, 0, 1]),
        teacher_logp=np.zeros((n, t), np.float32),
        teacher_logits=np.log(np.full((n, 3), 1 / 3, np.float32)),
        files=[f"v{i}.mp4" for i in range(n)],
    )
    cfg = GlanceTrainConfig(epochs=1, batch_size=4)
    log = train_glance(net, data, cfg, flip_map=np.array([1, 0]))
    assert log and np.isfinite(log[-1]["loss_total"])
