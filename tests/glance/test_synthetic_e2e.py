"""Synthetic end-to-end: the glance learns *when* (saliency) and *where* (policy) from labels and
a heavy-model-like teacher only, never from the square's position.

One snippet in 16 carries a 1 kHz tone and a bright square whose colour is the class; the other
snippets hold dark noise and quiet noise. The teacher says (as a cached heavy model would) that
the class is evident in that snippet's window. After a brief CPU training, top-1 saliency must
pick that snippet and the located patch must be centred within one feature-map cell of the square.
"""

from __future__ import annotations

import math

import pytest
import torch

from models.configs import HeadSpec
from models.glance import GlanceConfig, GlanceNet, patch_center
from offline.glance.trainer import GlanceBatch, GlanceLossWeights, GlanceTrainer

COLOURS = torch.tensor([[230, 40, 40], [40, 230, 40], [40, 40, 230]], dtype=torch.uint8)
SQUARE = 12  # pixels, in 64 px frames (8 px feature-map cells)
STEPS, BATCH, EVAL = 200, 8, 128


def _videos(
    cfg: GlanceConfig, n: int, gen: torch.Generator
) -> tuple[GlanceBatch, torch.Tensor, torch.Tensor]:
    t, s, samples = cfg.num_snippets, cfg.frame_size, cfg.audio_samples
    frames = (torch.rand(n, t, s, s, 3, generator=gen) * 60).to(torch.uint8)
    audio = torch.randn(n, t, samples, generator=gen) * 0.02
    key = torch.randint(0, t, (n,), generator=gen)
    label = torch.randint(0, len(COLOURS), (n,), generator=gen)
    # Square centres anywhere a patch centre can reach (rho * s / 2 from the borders).
    lo, hi = cfg.rho * s / 2, s - cfg.rho * s / 2
    centre = lo + torch.rand(n, 2, generator=gen) * (hi - lo)
    tone = 0.5 * torch.sin(2 * math.pi * 1000 * torch.arange(samples) / 16000)
    for i in range(n):
        x0, y0 = (centre[i] - SQUARE / 2).round().long().clamp(0, s - SQUARE).tolist()
        frames[i, key[i], y0 : y0 + SQUARE, x0 : x0 + SQUARE] = COLOURS[label[i]]
        audio[i, key[i]] += tone
    # Teacher: log p_t(y) is high in the key snippet's window, chance elsewhere.
    teacher = torch.full((n, t), math.log(1 / 3))
    teacher[torch.arange(n), key] = math.log(0.95)
    batch = GlanceBatch(frames, audio, labels={"colour": label}, teacher_snippet_logp=teacher)
    return batch, key, centre


@pytest.mark.slow
def test_glance_learns_to_pick_the_tone_snippet_and_centre_the_patch_on_the_square() -> None:
    torch.manual_seed(0)
    cfg = GlanceConfig.tiny(heads=(HeadSpec("colour", 3),), rho=0.25)
    net = GlanceNet(cfg)
    trainer = GlanceTrainer(net, lr=3e-3, weights=GlanceLossWeights(saliency_tau=0.25))
    gen = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        trainer.step(_videos(cfg, BATCH, gen)[0])

    net.eval()
    batch, key, centre = _videos(cfg, EVAL, torch.Generator().manual_seed(12345))  # fresh videos
    with torch.no_grad():
        out = net(batch.frames, batch.audio)
        top = out.saliency.argmax(dim=1)
        uv = net.locate(out, top[:, None])[:, 0]
    hit_rate = (top == key).float().mean().item()
    cell = cfg.frame_size / cfg.map_size
    err = (patch_center(uv, cfg.frame_size, cfg.frame_size, cfg.rho) - centre).norm(dim=1) / cell
    hits = top == key
    within = (err[hits] <= 1.0).float().mean().item()
    # The criterion must be able to fail: a policy stuck at the centre scores far below it.
    centred = ((torch.full_like(centre, cfg.frame_size / 2) - centre).norm(dim=1) <= cell).float()
    print(
        f"hit rate {hit_rate:.3f}; centre error {err[hits].mean():.2f} cells "
        f"(median {err[hits].median():.2f}), within 1 cell {within:.3f}; "
        f"a centred policy: {centred.mean():.3f}"
    )
    assert centred.mean() < 0.5
    assert hit_rate > 0.9
    assert within > 0.9
