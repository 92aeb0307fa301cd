"""Architecture: stage shapes, TF-block, fusion widths, heads, input validation."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import Tensor, nn

from models import AVSlowFast, HeadSpec, build_model, get_config, list_configs, split_heads
from models.blocks import Bottleneck, Norm, TFBlock
from models.head import head_probabilities
from tests.models.helpers_avslowfast import random_inputs, randomize_bn

STAGES = ("conv1", "res2", "res3", "res4", "res5")


def stage_shapes(model: AVSlowFast, crop: int) -> dict[tuple[str, str], tuple[int, ...]]:
    """Output shape of every (stage, pathway), from forward hooks on a meta-device run."""
    shapes: dict[tuple[str, str], tuple[int, ...]] = {}
    handles = []
    for stage in STAGES:
        for pathway, module in getattr(model, stage).items():
            key = (stage, pathway)

            def hook(_m: nn.Module, _i: object, out: Tensor, key: tuple[str, str] = key) -> None:
                shapes[key] = tuple(out.shape)

            handles.append(module.register_forward_hook(hook))
    with torch.device("meta"):
        inputs = [torch.empty(s) for s in model.config.input_shapes(crop, 2).values()]
    model(*inputs)
    for h in handles:
        h.remove()
    return shapes


def meta_model(name: str, **overrides: object) -> AVSlowFast:
    with torch.device("meta"):
        return build_model(name, **overrides).eval()


def test_r50_4x16_stage_shapes_follow_table_1() -> None:
    # Rows of the paper's Table 1 / the reference notes at crop 224 (B = 2 here).
    s = stage_shapes(meta_model("avslowfast_r50_4x16"), 224)
    assert s["conv1", "slow"] == (2, 64, 4, 56, 56)
    assert s["conv1", "fast"] == (2, 8, 32, 56, 56)
    assert s["conv1", "audio"] == (2, 32, 128, 80)  # no pool1 on audio
    assert s["res2", "slow"] == (2, 256, 4, 56, 56)
    assert s["res2", "fast"] == (2, 32, 32, 56, 56)
    assert s["res2", "audio"] == (2, 128, 128, 80)
    assert s["res3", "slow"] == (2, 512, 4, 28, 28)
    assert s["res3", "fast"] == (2, 64, 32, 28, 28)
    assert s["res3", "audio"] == (2, 256, 64, 40)
    assert s["res4", "slow"] == (2, 1024, 4, 14, 14)
    assert s["res4", "fast"] == (2, 128, 32, 14, 14)
    assert s["res4", "audio"] == (2, 512, 32, 20)
    assert s["res5", "slow"] == (2, 2048, 4, 7, 7)
    assert s["res5", "fast"] == (2, 256, 32, 7, 7)
    assert s["res5", "audio"] == (2, 1024, 16, 10)


@pytest.mark.parametrize("name", list_configs())
def test_every_named_config_has_consistent_stage_shapes(name: str) -> None:
    model = meta_model(name)
    c = model.config
    crop = c.crop_size
    shapes = stage_shapes(model, crop)
    for k, stage in enumerate(STAGES):
        widths = c.width_per_group * (1 if k == 0 else 4 * 2 ** (k - 1))
        spatial = crop // 4 // (2 ** max(0, k - 1))
        if c.has_visual:
            assert shapes[stage, "slow"] == (2, widths, c.slow_frames, spatial, spatial)
            assert shapes[stage, "fast"] == (
                2, widths // c.beta_inv, c.slow_frames * c.alpha, spatial, spatial
            )  # fmt: skip
        if c.has_audio:
            reduce = c.audio_stride ** max(0, k - 1)
            assert shapes[stage, "audio"] == (
                2, widths // c.audio_beta_inv, c.audio_frames // reduce, c.mel_bins // reduce
            )  # fmt: skip
    inputs = [torch.empty(s, device="meta") for s in c.input_shapes(crop, 2).values()]
    assert model(*inputs).shape == (2, c.total_classes)
    assert model.input_names == c.pathways


def test_slow_stage_inputs_include_the_fast_to_slow_channels() -> None:
    av = meta_model("avslowfast_r50_4x16")
    # Released AVSlowFast: F->S only after res3 and res4 (+64 and +128 channels).
    assert [getattr(av, s)["slow"][0].conv_a.in_channels for s in STAGES[1:]] == [
        64,
        256,
        640,
        1280,
    ]
    sf = meta_model("slowfast_r50_4x16")
    # SlowFast: F->S after pool1, res2, res3, res4.
    assert [getattr(sf, s)["slow"][0].conv_a.in_channels for s in STAGES[1:]] == [
        80,
        320,
        640,
        1280,
    ]
    assert sorted(sf.fast_to_slow) == ["pool1", "res2", "res3", "res4"]
    # A->FS outputs match the concatenated Slow tensor it is added to.
    assert av.audio_to_fastslow["res3"].conv1.out_channels == 640
    assert av.audio_to_fastslow["res4"].conv1.out_channels == 1280
    assert av.audio_to_fastslow["res3"].conv0.out_channels == 64
    assert av.audio_to_fastslow["res3"].conv1.stride == (16,)
    assert av.audio_to_fastslow["res4"].conv1.stride == (8,)


def test_fusion_stages_are_configurable() -> None:
    model = meta_model("avslowfast_r50_4x16", fs_fusion=(True,) * 4, afs_fusion=(True,) * 4)
    assert sorted(model.audio_to_fastslow) == ["pool1", "res2", "res3", "res4"]
    # Audio time stride to reach 4 Slow frames: 128/4 after pool1 and res2, then 16, 8.
    strides = [
        model.audio_to_fastslow[p].conv1.stride[0] for p in ("pool1", "res2", "res3", "res4")
    ]
    assert strides == [32, 32, 16, 8]
    shapes = stage_shapes(model, 224)
    assert shapes["res5", "slow"] == (2, 2048, 4, 7, 7)


def test_audio_res2_res3_use_time_frequency_blocks_read_from_the_block_input() -> None:
    model = meta_model("avslowfast_r50_4x16")
    for stage in ("res2", "res3"):
        for i, block in enumerate(getattr(model, stage)["audio"]):
            assert isinstance(block, TFBlock)
            block_in = 32 if (stage, i) == ("res2", 0) else None
            # Both 3-tap convs read the block input directly (no 1x1 reduction first).
            assert block.conv_t.in_channels == block.conv_f.in_channels
            if block_in is not None:
                assert block.conv_t.in_channels == block_in
            assert block.conv_t.kernel_size == (3, 1)  # time
            assert block.conv_f.kernel_size == (1, 3)  # frequency
            # Concatenated (not summed) before the 1x1 output conv.
            assert block.conv_out.in_channels == 2 * block.conv_t.out_channels
    assert model.res2["audio"][0].conv_t.out_channels == 32
    assert model.res2["audio"][0].conv_out.out_channels == 128
    first3 = model.res3["audio"][0]
    assert first3.conv_t.stride == (2, 2) and first3.conv_f.stride == (2, 2)
    for stage in ("res4", "res5"):
        first = getattr(model, stage)["audio"][0]
        assert isinstance(first, Bottleneck)
        assert first.conv_b.kernel_size == (3, 3) and first.conv_b.stride == (2, 2)


def test_time_frequency_block_sees_time_and_frequency_separately() -> None:
    # One impulse: the time branch spreads it along time only, the frequency branch along
    # frequency only, so the block's receptive field is a plus sign, not a 3x3 square.
    torch.manual_seed(0)
    block = TFBlock(4, 8, 4, stride=1, norm=Norm()).eval()
    randomize_bn(block)
    x = torch.zeros(1, 4, 9, 9)
    base = block(x)
    x[0, :, 4, 4] = 5.0
    changed = (block(x) - base).abs().sum(dim=(0, 1)) > 1e-6
    assert changed[3:6, 4].all() and changed[4, 3:6].all()
    assert not changed[3, 3] and not changed[5, 5] and not changed[3, 5]


def test_tiny_config_is_a_full_avslowfast_and_fast_on_cpu() -> None:
    c = get_config("avslowfast_tiny")
    assert c.pathways == ("slow", "fast", "audio")
    assert any(c.fs_fusion) and any(c.afs_fusion) and any(c.avs_stages)
    model = randomize_bn(build_model("avslowfast_tiny")).eval()
    with torch.no_grad():
        out = model(*random_inputs(model, batch=2))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


def test_heads_are_laid_out_contiguously_and_split_in_order() -> None:
    heads = (HeadSpec("action", 5), HeadSpec("sound", 3, multi_label=True))
    model = randomize_bn(build_model("avslowfast_tiny", heads=heads)).eval()
    with torch.no_grad():
        logits = model(*random_inputs(model, batch=2))
    assert logits.shape == (2, 8)
    parts = split_heads(logits, heads)
    assert list(parts) == ["action", "sound"]
    assert torch.equal(parts["action"], logits[:, :5]) and torch.equal(
        parts["sound"], logits[:, 5:]
    )
    probs = head_probabilities(logits, heads)
    torch.testing.assert_close(probs["action"].sum(-1), torch.ones(2))
    torch.testing.assert_close(probs["sound"], torch.sigmoid(logits[:, 5:]))
    with pytest.raises(ValueError, match="classes"):
        split_heads(logits[:, :7], heads)


def test_build_model_applies_overrides_and_num_classes() -> None:
    model = meta_model("avslowfast_r50_4x16", num_classes=7, width_per_group=16)
    assert model.config.width_per_group == 16
    assert model.head.proj.out_features == 7
    assert model.head.proj.in_features == 512 + 64 + 256  # Slow, Fast, Audio at width 16
    with pytest.raises(KeyError, match="unknown model config"):
        build_model("resnet_nope")


def test_visual_only_and_audio_only_models_take_only_their_inputs() -> None:
    sf = meta_model("slowfast_r50_4x16")
    assert sf.input_names == ("slow", "fast")
    assert sf.head.proj.in_features == 2048 + 256
    audio = meta_model("audionet_r50")
    assert audio.input_names == ("audio",)
    assert audio.head.proj.in_features == 1024
    out = audio(torch.empty(3, 1, 128, 80, device="meta"))
    assert out.shape == (3, 400)


def test_any_crop_size_works_because_the_head_pools_globally() -> None:
    model = meta_model("avslowfast_r50_4x16")
    for crop in (160, 256, 320):
        inputs = [torch.empty(s, device="meta") for s in model.config.input_shapes(crop).values()]
        assert model(*inputs).shape == (1, 400)


def test_bad_inputs_raise_value_errors() -> None:
    model = build_model("avslowfast_tiny").eval()
    slow, fast, audio = random_inputs(model)
    with pytest.raises(ValueError, match="expected inputs"):
        model(slow, fast)
    with pytest.raises(ValueError, match="audio"):
        model(slow, fast, audio[:, :, :100])
    with pytest.raises(ValueError, match="alpha"):
        model(slow, fast[:, :, :16], audio)
    with pytest.raises(ValueError, match="log-mel"):
        model(slow, fast, audio[:, 0])


def test_inconsistent_configs_are_refused() -> None:
    c = get_config("avslowfast_r50_4x16")
    with pytest.raises(ValueError, match="audio_frames"):
        replace(c, audio_frames=100)
    with pytest.raises(ValueError, match="AV-sync"):
        replace(c, avs_stages=(False, True, False, False, False))
    with pytest.raises(ValueError, match="audio-only"):
        replace(get_config("audionet_r50"), fs_fusion=(True, False, False, False))
    with pytest.raises(TypeError, match="width_per_group"):
        replace(c, width_per_group=64.0)
    with pytest.raises(ValueError, match="unique"):
        replace(c, heads=(HeadSpec("a", 2), HeadSpec("a", 3)))


def test_config_round_trips_through_a_dict() -> None:
    for name in list_configs():
        c = get_config(name)
        assert type(c).from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="unknown"):
        type(c).from_dict(c.to_dict() | {"widht": 3})
