"""The paper's fusion variants as configs: A->F->S, AV non-local, fusion stages, late fusion."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import Tensor
from typer.testing import CliRunner

from models import AVSlowFast, build_model, get_config, list_configs, save_package
from models.blocks import Norm
from models.export import export_package, verify_export
from models.fusion import AudioVisualNonLocal
from tests.models.helpers_avslowfast import random_inputs, randomize_bn

CROP = 32
TINY_VARIANTS = [
    n for n in list_configs() if n.startswith("avslowfast_tiny_")
]  # a2f2s, avnl, late, fuse_res4, fuse_res234


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (see tests/conftest.py)."""


def tiny(name: str, seed: int = 0) -> AVSlowFast:
    torch.manual_seed(seed)
    return randomize_bn(build_model(name), seed)


def stage_inputs(model: AVSlowFast, inputs: list[Tensor], stage: str) -> dict[str, Tensor]:
    """What each pathway of ``stage`` receives (after the fusions before it)."""
    got: dict[str, Tensor] = {}
    hooks = [
        getattr(model, stage)[p].register_forward_pre_hook(
            lambda _m, args, p=p: got.__setitem__(p, args[0].detach().clone())
        )
        for p in model.input_names
    ]
    with torch.no_grad():
        model(*inputs)
    for h in hooks:
        h.remove()
    return got


def test_the_variants_are_named_configs_of_the_tiny_and_r50_networks() -> None:
    for base in ("avslowfast_tiny", "avslowfast_r50_4x16"):
        for suffix in ("a2f2s", "avnl", "late", "fuse_res4", "fuse_res234"):
            assert get_config(f"{base}_{suffix}").name == f"{base}_{suffix}"
    assert get_config("avslowfast_r50_4x16").av_fusion == "a_fs"  # the released default


def test_a_f_s_adds_audio_to_fast_before_the_fast_to_slow_lateral() -> None:
    model = tiny("avslowfast_tiny_a2f2s").eval()
    assert sorted(model.audio_to_fast) == ["res3", "res4"]
    assert not model.audio_to_fastslow and not model.av_nonlocal
    slow, fast, audio = random_inputs(model, batch=2, crop=CROP)
    a = stage_inputs(model, [slow, fast, audio], "res4")
    b = stage_inputs(model, [slow, fast, torch.randn_like(audio)], "res4")
    # Audio reaches Fast directly, and Slow only through the F->S lateral (its own channels
    # before the lateral's are untouched at this point).
    assert not torch.allclose(a["fast"], b["fast"])
    c_s = model.config.stage_width("slow", "res3")
    assert torch.equal(a["slow"][:, :c_s], b["slow"][:, :c_s])
    assert not torch.allclose(a["slow"][:, c_s:], b["slow"][:, c_s:])


def test_a_f_s_strides_audio_to_the_fast_frames_in_the_r50_config() -> None:
    with torch.device("meta"):
        model = AVSlowFast(get_config("avslowfast_r50_4x16_a2f2s"))
    # 64 audio frames after res3 -> 32 Fast frames; 32 after res4 -> 32.
    assert model.audio_to_fast["res3"].conv1.stride == (2,)
    assert model.audio_to_fast["res4"].conv1.stride == (1,)
    assert model.audio_to_fast["res3"].conv1.out_channels == 64  # Fast res3 width


def test_default_config_keeps_the_released_module_layout() -> None:
    with torch.device("meta"):
        model = AVSlowFast(get_config("avslowfast_r50_4x16"))
    assert not model.audio_to_fast and not model.av_nonlocal
    assert not any(k.startswith(("audio_to_fast.", "av_nonlocal.")) for k in model.state_dict())


def test_av_nonlocal_starts_as_identity_and_then_lets_audio_select_visual_positions() -> None:
    torch.manual_seed(0)
    block = AudioVisualNonLocal(16, 8, 8, 5, 4, Norm())
    visual, audio = torch.randn(2, 16, 4, 3, 3), torch.randn(2, 8, 16, 5)
    block.eval()
    torch.nn.init.zeros_(block.bn_out.weight)
    torch.nn.init.zeros_(block.bn_out.bias)
    assert torch.equal(block(visual, audio), visual)  # zero-init BN: identity, as Wang et al.
    randomize_bn(block)
    out1, out2 = block(visual, audio), block(visual, torch.randn_like(audio))
    assert out1.shape == visual.shape and not torch.allclose(out1, out2)
    # The added term is constant over H x W at each frame (one audio query per Slow frame).
    delta = out1 - visual
    assert torch.allclose(delta, delta[..., :1, :1].expand_as(delta), atol=1e-6)


@pytest.mark.parametrize("name", TINY_VARIANTS)
def test_dropped_audio_pathway_leaves_visual_features_independent_of_audio(name: str) -> None:
    model = tiny(name).eval()
    slow, fast, audio = random_inputs(model, batch=2, crop=CROP)
    a = stage_inputs(model, [slow, fast, audio], "res5")
    model.drop_pathway.p = 1.0
    model.drop_pathway.train()
    b = stage_inputs(model, [slow, fast, audio], "res5")
    c = stage_inputs(model, [slow, fast, torch.randn_like(audio)], "res5")
    assert torch.equal(b["slow"], c["slow"]) and torch.equal(b["fast"], c["fast"])
    late = not any(model.config.afs_fusion)
    assert torch.equal(a["slow"], b["slow"]) == late  # audio mattered unless fusion is late


def test_fusion_stage_variants_fuse_where_the_paper_says() -> None:
    assert sorted(build_model("avslowfast_tiny_fuse_res4").audio_to_fastslow) == ["res4"]
    assert sorted(build_model("avslowfast_tiny_fuse_res234").audio_to_fastslow) == [
        "res2", "res3", "res4"
    ]  # fmt: skip
    assert not build_model("avslowfast_tiny_late").audio_to_fastslow


def test_variants_reject_settings_they_cannot_honour() -> None:
    c = get_config("avslowfast_tiny")
    with pytest.raises(ValueError, match="av_fusion"):
        replace(c, av_fusion="concat")
    with pytest.raises(ValueError, match="AV-sync heads"):
        replace(c, av_fusion="nonlocal")  # avs_stages still on
    with pytest.raises(ValueError, match="Fast frames"):
        replace(get_config("avslowfast_tiny_a2f2s"), afs_fusion=(False, False, False, True),
                audio_alpha=16, audio_frames=64)  # fmt: skip


@pytest.mark.parametrize("name", ["avslowfast_tiny", *TINY_VARIANTS])
def test_every_variant_trains_a_few_steps(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.drop_pathway.p = 0.0  # every step fuses audio, so the fusion weights must move
    inputs = random_inputs(model, batch=4, crop=CROP)
    labels = torch.tensor([0, 1, 2, 3])
    fusion = [
        p
        for m in (model.audio_to_fastslow, model.audio_to_fast, model.av_nonlocal)
        for p in m.parameters()
    ]
    before = [p.detach().clone() for p in fusion]
    losses = []
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(model(*inputs), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]
    assert all(not torch.equal(b, p) for b, p in zip(before, fusion, strict=True))


def _package(name: str, root: Path) -> Path:
    torch.manual_seed(0)
    model = randomize_bn(build_model(name, crop_size=CROP))
    return save_package(root / name, model, name=name, version="1")


@pytest.mark.parametrize("name", TINY_VARIANTS)
def test_every_variant_exports_to_torchscript_matching_eager(name: str, tmp_path: Path) -> None:
    pkg = _package(name, tmp_path)
    export_package(pkg, "torchscript")
    assert verify_export(pkg, "torchscript") <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", TINY_VARIANTS)
def test_every_variant_exports_to_onnx_matching_eager(name: str, tmp_path: Path) -> None:
    pkg = _package(name, tmp_path)
    export_package(pkg, "onnx")
    assert verify_export(pkg, "onnx") <= 1e-4


def test_model_info_reports_params_and_gmacs_of_a_variant() -> None:
    from service.cli import app

    out = CliRunner().invoke(app, ["model", "info", "--arch", "avslowfast_tiny_avnl", "--crop",
                                   "64", "--json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    info = json.loads(out.output)
    base = json.loads(
        CliRunner()
        .invoke(app, ["model", "info", "--arch", "avslowfast_tiny", "--crop", "64", "--json"])
        .output
    )
    # The non-local block adds query/key/value/out convs and its attention matmuls.
    assert info["params_inference"] > base["params_inference"]
    assert info["gmacs"] > base["gmacs"]
