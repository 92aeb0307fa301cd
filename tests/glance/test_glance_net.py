"""GlanceNet modules: shapes at B=2, T=16, determinism, audio handling, input validation, cost."""

from __future__ import annotations

import json

import pytest
import torch

from models.configs import HeadSpec
from models.glance import GlanceConfig, GlanceNet, glance_cost
from models.glance.avtest import AVTeST
from models.glance.encoders import AudioEncoder, VisualEncoder
from models.glance.spatial import AESPA, PatchPolicy

B, T = 2, 16
HEADS = (HeadSpec("action", 7), HeadSpec("tags", 5, multi_label=True))


def _inputs(cfg: GlanceConfig, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    s = cfg.frame_size
    frames = torch.randint(0, 256, (B, T, s, s, 3), dtype=torch.uint8, generator=gen)
    audio = torch.randn(B, T, cfg.audio_samples, generator=gen) * 0.1
    return frames, audio


@pytest.fixture(scope="module")
def tiny() -> GlanceConfig:
    return GlanceConfig.tiny(heads=HEADS)


@pytest.fixture(scope="module")
def tiny_net(tiny: GlanceConfig) -> GlanceNet:
    torch.manual_seed(0)
    return GlanceNet(tiny).eval()


def test_every_module_has_the_documented_shapes(tiny: GlanceConfig) -> None:
    frames, audio = _inputs(tiny)
    d, s = tiny.d_model, tiny.map_size
    visual, audio_enc = VisualEncoder(tiny), AudioEncoder(tiny)
    vmap, vfeat = visual(frames)
    cv = visual.out_channels
    assert vmap.shape == (B, T, cv, s, s) and vfeat.shape == (B, T, cv)
    afeat = audio_enc(audio)
    assert afeat.shape == (B, T, audio_enc.out_channels)
    cls, vtok, atok = AVTeST(tiny, cv, audio_enc.out_channels)(
        vfeat, afeat, torch.ones(B, dtype=torch.bool)
    )
    assert cls.shape == (B, d) and vtok.shape == atok.shape == (B, T, d)
    enhanced, alpha = AESPA(tiny, cv)(vmap[:, 0], atok[:, 0])
    assert enhanced.shape == (B, d, s, s) and alpha.shape == (B, s * s)
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(B))
    uv = PatchPolicy(tiny).eval()(enhanced, vtok[:, 0])
    assert uv.shape == (B, 2)


def test_glance_net_outputs_and_locate_shapes(tiny_net: GlanceNet, tiny: GlanceConfig) -> None:
    frames, audio = _inputs(tiny)
    with torch.no_grad():
        out = tiny_net(frames, audio)
        idx = torch.tensor([[0, 15, 7, 3], [1, 2, 3, 4]])
        uv = tiny_net.locate(out, idx)
    c = tiny.total_classes
    assert out.saliency.shape == (B, T)
    assert out.logits.shape == (B, c)
    assert (
        out.snippet_logits.shape == out.visual_logits.shape == out.audio_logits.shape == (B, T, c)
    )
    assert out.visual_map.shape[:2] == (B, T) and out.visual_map.shape[3:] == (8, 8)
    assert out.visual_tokens.shape == out.audio_tokens.shape == (B, T, tiny.d_model)
    assert uv.shape == (B, 4, 2)
    assert bool(((uv >= 0) & (uv <= 1)).all())


def test_default_config_shapes_at_160px() -> None:
    cfg = GlanceConfig()
    net = GlanceNet(cfg).eval()
    frames, audio = _inputs(cfg)
    with torch.no_grad():
        out = net(frames, audio)
        uv = net.locate(out, torch.tensor([[1, 4, 9, 15], [0, 2, 3, 8]]))
    assert out.visual_map.shape == (B, T, 1280, 5, 5)
    assert out.logits.shape == (B, 400) and out.saliency.shape == (B, T)
    assert out.visual_tokens.shape == out.audio_tokens.shape == (B, T, 256)
    assert uv.shape == (B, 4, 2)


def test_eval_is_deterministic(tiny_net: GlanceNet, tiny: GlanceConfig) -> None:
    frames, audio = _inputs(tiny)
    idx = torch.tensor([[3], [9]])
    with torch.no_grad():
        a, b = tiny_net(frames, audio), tiny_net(frames, audio)
        uv_a, uv_b = tiny_net.locate(a, idx), tiny_net.locate(b, idx)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x, y)
    assert torch.equal(uv_a, uv_b)


def test_training_mode_is_stochastic_where_dropout_applies(tiny: GlanceConfig) -> None:
    torch.manual_seed(0)
    net = GlanceNet(GlanceConfig.tiny(heads=HEADS, audio_token_dropout=0.5)).train()
    frames, audio = _inputs(tiny)
    outs = [net(frames, audio).saliency for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_videos_without_audio_ignore_the_waveform(tiny_net: GlanceNet, tiny: GlanceConfig) -> None:
    frames, audio = _inputs(tiny)
    absent = torch.zeros(B, dtype=torch.bool)
    with torch.no_grad():
        silent = tiny_net(frames, audio, absent)
        other = tiny_net(frames, torch.randn_like(audio), absent)
        heard = tiny_net(frames, audio)
    torch.testing.assert_close(silent.saliency, other.saliency)
    torch.testing.assert_close(silent.logits, other.logits)
    assert not torch.allclose(silent.saliency, heard.saliency)


def test_frames_are_normalised_inside_the_model(tiny_net: GlanceNet, tiny: GlanceConfig) -> None:
    frames, audio = _inputs(tiny)
    with torch.no_grad():
        dark = tiny_net(torch.zeros_like(frames), audio).saliency
        bright = tiny_net(torch.full_like(frames, 255), audio).saliency
    assert torch.isfinite(dark).all() and torch.isfinite(bright).all()
    assert not torch.allclose(dark, bright)


def test_malformed_inputs_are_refused(tiny_net: GlanceNet, tiny: GlanceConfig) -> None:
    frames, audio = _inputs(tiny)
    with pytest.raises(ValueError, match="uint8"):
        tiny_net(frames.float(), audio)
    with pytest.raises(ValueError, match="frames"):
        tiny_net(frames[:, :, :32, :32].contiguous(), audio)
    with pytest.raises(ValueError, match="audio"):
        tiny_net(frames, audio[:, :8])
    with pytest.raises(ValueError, match="short"):
        tiny_net(frames, audio[..., :100])
    with torch.no_grad():
        out = tiny_net(frames, audio)
    with pytest.raises(ValueError, match="indices"):
        tiny_net.locate(out, torch.tensor([[16], [0]]))
    with pytest.raises(ValueError, match="idx"):
        tiny_net.locate(out, torch.tensor([0, 1]))


def test_config_round_trips_through_json() -> None:
    for cfg in (GlanceConfig(), GlanceConfig.tiny(heads=HEADS, rho=0.3)):
        assert GlanceConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown"):
        GlanceConfig.from_dict({"snippets": 16})
    with pytest.raises(ValueError):
        GlanceConfig(rho=0.0)
    with pytest.raises(ValueError):
        GlanceConfig(frame_size=150)  # not a multiple of the trunk stride


def test_default_glance_fits_the_budget_at_16_snippets() -> None:
    cost = glance_cost(GlanceConfig(), k=4)
    assert cost.snippets == 16 and cost.selected == 4
    assert cost.total_gmacs < 3.5
    # The expensive part scales with T, the spatial part only with K.
    assert cost.per_selected_gmacs < cost.per_snippet_gmacs
    assert cost.forward_gmacs > 0.1 * 16  # a MobileNetV2-1.0 at 160 px is ~0.15 GMAC a frame


def test_half_precision_glance_stays_close_to_float32(
    tiny_net: GlanceNet, tiny: GlanceConfig
) -> None:
    # The same code runs fp16 on CUDA; CPU half kernels exercise the dtype plumbing here.
    frames, audio = _inputs(tiny)
    half = GlanceNet(tiny).eval()
    half.load_state_dict(tiny_net.state_dict())
    half = half.half()
    assert half.audio.logmel.dft_basis.dtype == torch.float32  # front end stays float32
    idx = torch.tensor([[2], [7]])
    with torch.no_grad():
        ref, out = tiny_net(frames, audio), half(frames, audio)
        uv = half.locate(out, idx)
    assert out.saliency.dtype == torch.float16 and uv.dtype == torch.float16
    torch.testing.assert_close(out.saliency.float(), ref.saliency, atol=0.02, rtol=0.01)
    torch.testing.assert_close(out.logits.float(), ref.logits, atol=0.02, rtol=0.01)
    torch.testing.assert_close(uv.float(), tiny_net.locate(ref, idx), atol=0.01, rtol=0)
