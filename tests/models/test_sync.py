"""Training-only parts: DropPathway, AV-sync pairing, masks and loss, parameter separation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models import AVSlowFast, build_model, get_config
from models.sync import sync_pair_mask, sync_points
from tests.models.helpers_avslowfast import random_inputs, randomize_bn

CROP = 32  # the tiny model at 32 px keeps these many forwards cheap (res5 is 1x1)


@contextmanager
def capture(modules: dict[str, nn.Module]) -> Iterator[dict[str, list[Tensor]]]:
    """Record every output of the given modules while the context is open."""
    seen: dict[str, list[Tensor]] = {k: [] for k in modules}
    handles = [
        m.register_forward_hook(lambda _m, _i, out, k=k: seen[k].append(out.detach().clone()))
        for k, m in modules.items()
    ]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def tiny(seed: int = 0, **overrides: object) -> AVSlowFast:
    torch.manual_seed(seed)
    return randomize_bn(build_model("avslowfast_tiny", **overrides), seed)  # type: ignore[arg-type]


def head_features(model: AVSlowFast, inputs: list[Tensor]) -> list[Tensor]:
    """The pooled per-pathway features the head concatenates (Slow, Fast, Audio)."""
    got: list[Tensor] = []
    h = model.head.register_forward_pre_hook(
        lambda _m, args: got.extend(f.flatten(2).mean(2) for f in args[0])
    )
    with torch.no_grad():
        model(*inputs)
    h.remove()
    return got


def test_drop_pathway_skips_all_audio_fusion_but_audio_still_feeds_the_head() -> None:
    model = tiny(drop_pathway=1.0).eval()
    model.drop_pathway.train()  # dropping on, BN deterministic
    slow, fast, audio = random_inputs(model, batch=2, crop=CROP)
    other_audio = torch.randn_like(audio)
    s1, f1, a1 = head_features(model, [slow, fast, audio])
    s2, f2, a2 = head_features(model, [slow, fast, other_audio])
    # No A->FS addition anywhere: the visual features do not depend on the audio at all.
    assert torch.equal(s1, s2) and torch.equal(f1, f2)
    # ... but the audio pathway still runs and reaches the head.
    assert not torch.allclose(a1, a2)
    # F->S still runs when audio is dropped: the Slow features depend on the Fast input.
    s3, _, _ = head_features(model, [slow, torch.randn_like(fast), audio])
    assert not torch.allclose(s1, s3)


def test_eval_mode_never_drops_the_audio_pathway() -> None:
    model = tiny(drop_pathway=1.0).eval()
    slow, fast, audio = random_inputs(model, batch=2, crop=CROP)
    s1, _, _ = head_features(model, [slow, fast, audio])
    s2, _, _ = head_features(model, [slow, fast, torch.randn_like(audio)])
    assert not torch.allclose(s1, s2)


def test_drop_pathway_draws_once_per_step_for_the_whole_batch() -> None:
    model = tiny(drop_pathway=0.8).eval()
    model.drop_pathway.train()  # training-mode dropping, cheap eval-mode BN
    inputs = random_inputs(model, batch=2, crop=CROP)
    torch.manual_seed(123)
    fused_per_step = []
    with capture(dict(model.audio_to_fastslow.items())) as seen, torch.no_grad():
        for _ in range(16):
            before = sum(len(v) for v in seen.values())
            model(*inputs)
            fused_per_step.append(sum(len(v) for v in seen.values()) - before)
    # All fusion points fire together (2 of them) or none does: one draw per forward.
    assert set(fused_per_step) <= {0, 2}
    dropped = fused_per_step.count(0) / len(fused_per_step)
    assert 0.6 <= dropped <= 0.97  # p = 0.8, seeded


def test_no_rescaling_when_audio_is_kept_in_training() -> None:
    # p = 0: training forward equals eval forward once BN uses running stats in both.
    model = tiny(drop_pathway=0.0).eval()
    inputs = random_inputs(model, batch=2, crop=CROP)
    with torch.no_grad():
        ref = model(*inputs)
        model.drop_pathway.train()
        model.head.dropout.eval()
        assert torch.equal(model(*inputs), ref)


def test_sync_points_stop_at_the_earliest_audio_fusion() -> None:
    c = get_config("avslowfast_r50_4x16")
    assert sync_points(c, dropped=False) == ("res3",)
    assert sync_points(c, dropped=True) == ("res3", "res4", "res5")
    late = replace(
        c, afs_fusion=(False, False, False, True), avs_stages=(False, False, False, True, True)
    )
    assert sync_points(late, dropped=False) == ("res4",)
    assert sync_points(late, dropped=True) == ("res4", "res5")


def test_pair_mask_drops_silent_and_duplicate_pairs() -> None:
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(4, 1, 128, 80, generator=g)
    neg = torch.randn(4, 1, 128, 80, generator=g)
    neg[1] = pos[1]  # duplicate
    neg[2] = 0.05  # (near-)silent: variance 0
    pos[3] = pos[3] * 0.05  # variance 0.0025 <= 0.01
    assert sync_pair_mask(pos, neg, 0.01, 0.99999).tolist() == [True, False, False, False]


def _reference_avs_loss(
    model: AVSlowFast, refs: dict[str, Tensor], queries: dict[str, Tensor], negs: dict[str, Tensor],
    valid: Tensor,
) -> dict[str, Tensor]:  # fmt: skip
    """The loss of the notes, written out: pairs (ref_i, pos_i, neg_i) for valid i only."""
    assert model.sync is not None
    out = {}
    for point, ref in refs.items():
        head = model.sync.heads[point]

        def emb(fc: nn.Linear, x: Tensor) -> Tensor:
            return 0.5 * F.normalize(fc(x.mean(dim=(2, 3, 4))), dim=1)

        r, p, n = (
            emb(head.ref_fc, ref),
            emb(head.query_fc, queries[point]),
            emb(head.query_fc, negs[point]),
        )
        total = torch.zeros(())
        for i in torch.nonzero(valid).flatten().tolist():
            total = total + (r[i] - p[i]).pow(2).sum()
            total = total + torch.clamp(0.99 - (r[i] - n[i]).norm(), min=0).pow(2)
        out[point] = total / (2 * int(valid.sum()))
    return out


def _stage_features(
    model: AVSlowFast, slow: Tensor, fast: Tensor, audio: Tensor
) -> dict[str, Tensor]:
    """Final per-stage pathway outputs of an eval forward (audio pathway does not see video)."""
    mods = {
        f"{s}.{p}": getattr(model, s)[p]
        for s in ("res3", "res4", "res5")
        for p in ("slow", "fast", "audio")
    }
    with capture(mods) as seen, torch.no_grad():
        model(slow, fast, audio)
    return {k: v[0] for k, v in seen.items()}


@pytest.mark.parametrize("dropped", [False, True])
def test_avs_pairs_each_clip_with_its_own_positive_and_negative(dropped: bool) -> None:
    model = tiny(seed=1, drop_pathway=1.0 if dropped else 0.0).eval()
    model.drop_pathway.train()  # BN in eval so batch composition cannot blur the comparison
    slow, fast, pos = random_inputs(model, batch=3, seed=3, crop=CROP)
    neg = torch.randn(pos.shape, generator=torch.Generator().manual_seed(9))
    neg[1] = pos[1]  # a duplicate pair must be masked out
    with torch.no_grad():
        out = model.forward_train(slow, fast, pos, audio_negative=neg)
        plain = model(slow, fast, pos)
    # Logits use the aligned audio of each clip (the official interleave+chunk would feed
    # clip 1 the negative of clip 0 here).
    torch.testing.assert_close(out.logits, plain, rtol=0, atol=1e-6)
    assert out.dropped_audio is dropped
    points = ("res3", "res4", "res5") if dropped else ("res3",)
    assert tuple(out.avs_losses) == points

    # Reference: run positives and negatives separately, then pair row i with row i.
    assert (
        model.sync is not None
        and model.sync.fs_res5 is not None
        and model.sync.afs_res5 is not None
    )
    with torch.no_grad():
        fp, fn = _stage_features(model, slow, fast, pos), _stage_features(model, slow, fast, neg)
        refs, queries, negs = {}, {}, {}
        for point in points:
            if point == "res5":
                refs[point] = model.sync.fs_res5(fp["res5.slow"], fp["res5.fast"])
                queries[point] = model.sync.afs_res5(fp["res5.audio"])
                negs[point] = model.sync.afs_res5(fn["res5.audio"])
            else:
                # The Slow block input of the next stage is ref (+ audio when not dropped).
                refs[point] = model.fast_to_slow[point](fp[f"{point}.slow"], fp[f"{point}.fast"])
                queries[point] = model.audio_to_fastslow[point](fp[f"{point}.audio"])
                negs[point] = model.audio_to_fastslow[point](fn[f"{point}.audio"])
        expected = _reference_avs_loss(
            model, refs, queries, negs, torch.tensor([True, False, True])
        )
    for point in points:
        torch.testing.assert_close(out.avs_losses[point], expected[point], rtol=1e-5, atol=1e-6)
    assert out.avs_loss is not None
    torch.testing.assert_close(out.avs_loss, sum(expected.values()), rtol=1e-5, atol=1e-6)


def test_avs_loss_prefers_aligned_audio_over_the_negative() -> None:
    # The loss is lower when the query that is called "positive" is the embedding closest to
    # the reference; swapping positive and negative must change it.
    model = tiny(seed=2, drop_pathway=0.0).eval()
    slow, fast, pos = random_inputs(model, batch=2, seed=5, crop=CROP)
    neg = torch.randn_like(pos)
    with torch.no_grad():
        a = model.forward_train(slow, fast, pos, audio_negative=neg).avs_loss
        b = model.forward_train(slow, fast, neg, audio_negative=pos).avs_loss
    assert a is not None and b is not None and not torch.isclose(a, b)


def test_avs_loss_backpropagates_into_the_sync_heads_and_the_audio_pathway() -> None:
    model = tiny(seed=4, drop_pathway=0.0).train()
    slow, fast, pos = random_inputs(model, batch=4, seed=6, crop=CROP)
    out = model.forward_train(slow, fast, pos, audio_negative=torch.randn_like(pos))
    assert out.avs_loss is not None
    (out.logits.sum() + out.avs_loss).backward()
    assert model.sync is not None
    assert model.sync.heads["res3"].ref_fc.weight.grad is not None
    assert model.conv1["audio"].conv_t.weight.grad is not None


def test_forward_train_without_negatives_returns_no_avs_loss() -> None:
    model = tiny().train()
    out = model.forward_train(*random_inputs(model, batch=2, crop=CROP))
    assert out.avs_loss is None and out.logits.shape == (2, 10)
    visual = build_model("slowfast_r50_4x16", width_per_group=8, crop_size=32)
    slow, fast = random_inputs(visual, batch=1, crop=32)
    with pytest.raises(ValueError, match="no AV-sync"):
        visual.forward_train(slow, fast, audio_negative=torch.randn(1, 1, 128, 80))


def test_training_only_parameters_are_separable() -> None:
    with torch.device("meta"):
        model = build_model("avslowfast_r50_4x16")
    sync_params = sum(p.numel() for n, p in model.named_parameters() if n.startswith("sync."))
    assert sync_params > 0
    assert model.num_parameters() - model.num_parameters(inference_only=True) == sync_params
    assert not any(k.startswith("sync.") for k in model.inference_state_dict())
    # The released s5_fuse module and the AVS projections: 2.38M parameters at R50 width 64.
    assert sync_params == pytest.approx(2.38e6, rel=0.01)
    # Inference never touches them.
    light = build_model("avslowfast_tiny", training_parts=False)
    assert light.sync is None
    full = tiny()
    light.load_state_dict(full.inference_state_dict())
    inputs = random_inputs(full, batch=1, crop=CROP)
    with torch.no_grad():
        assert torch.equal(light.eval()(*inputs), full.eval()(*inputs))
