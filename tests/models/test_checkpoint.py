"""Official PySlowFast/PyAVSlowFast checkpoints: parity with the authors' outputs, partial loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import CheckpointError, build_model, import_pyslowfast
from tests.models.helpers_avslowfast import fixture_io


@pytest.mark.parametrize("name", ["pyslowfast_avslowfast", "pyslowfast_slowfast"])
def test_official_checkpoint_reproduces_official_outputs(fixtures_dir: Path, name: str) -> None:
    ckpt, inputs, logits, probs = fixture_io(fixtures_dir, name)
    result = import_pyslowfast(ckpt)
    assert result.report.complete, result.report.summary()
    model = result.model.eval()
    with torch.no_grad():
        ours = model(*inputs)
    assert (ours - logits).abs().max() <= 1e-4
    assert (ours.softmax(-1) - probs).abs().max() <= 1e-5


def test_cfg_decides_the_architecture(fixtures_dir: Path) -> None:
    av = import_pyslowfast(fixtures_dir / "pyslowfast_avslowfast" / "checkpoint.pyth").model.config
    assert av.pathways == ("slow", "fast", "audio")
    assert (av.width_per_group, av.alpha, av.beta_inv, av.audio_beta_inv) == (16, 8, 8, 2)
    assert av.fs_fusion == (False, False, True, True) and av.afs_fusion == (
        False,
        False,
        True,
        True,
    )
    assert av.total_classes == 10 and av.crop_size == 128
    sf = import_pyslowfast(fixtures_dir / "pyslowfast_slowfast" / "checkpoint.pyth").model.config
    assert sf.pathways == ("slow", "fast") and sf.fs_fusion == (True,) * 4


def test_preprocessing_recipe_comes_from_the_cfg(fixtures_dir: Path) -> None:
    result = import_pyslowfast(fixtures_dir / "pyslowfast_avslowfast" / "checkpoint.pyth")
    prep = result.preprocessing
    assert prep is not None
    assert (prep.num_frames, prep.sampling_rate, prep.target_fps) == (32, 2, 30.0)
    assert prep.crop_size == 128 and prep.mean == (0.45,) * 3 and prep.std == (0.225,) * 3
    assert (prep.audio.mean, prep.audio.std, prep.audio.n_mels) == (-7.03, 4.66, 80)
    assert (prep.audio.n_fft, prep.audio.hop_length) == (512, 256)


def test_explicit_arch_replaces_a_missing_cfg(fixtures_dir: Path, tmp_path: Path) -> None:
    ckpt, inputs, logits, _ = fixture_io(fixtures_dir, "pyslowfast_avslowfast")
    state = torch.load(ckpt, weights_only=True, map_location="cpu")["model_state"]
    bare = tmp_path / "bare.pyth"
    torch.save({"model_state": state, "epoch": 3}, bare)
    with pytest.raises(CheckpointError, match="arch"):
        import_pyslowfast(bare)
    result = import_pyslowfast(bare, arch="avslowfast_r50_4x16")
    assert result.report.complete
    # Width and class count follow the weights; everything else is the named config.
    assert result.model.config.width_per_group == 16 and result.model.config.total_classes == 10
    with torch.no_grad():
        assert (result.model.eval()(*inputs) - logits).abs().max() <= 1e-4


def test_slowfast_checkpoint_initialises_the_visual_part_of_an_avslowfast(
    fixtures_dir: Path,
) -> None:
    ckpt = fixtures_dir / "pyslowfast_slowfast" / "checkpoint.pyth"
    model = build_model("avslowfast_r50_4x16", num_classes=10, width_per_group=16, crop_size=128)
    report = import_pyslowfast(ckpt, model=model).report
    official = torch.load(ckpt, weights_only=True, map_location="cpu")["model_state"]
    # Visual weights were copied.
    assert "conv1.fast.conv.weight" in report.loaded
    assert torch.equal(model.conv1.fast.conv.weight, official["s1.pathway1_stem.conv.weight"])
    assert torch.equal(
        model.res4["fast"][2].conv_a.weight, official["s4.pathway1_res2.branch2.a.weight"]
    )
    assert "fast_to_slow.res3.conv.weight" in report.loaded
    # The audio pathway, the A->FS fusion and the AV-sync parts are new.
    assert "conv1.audio.conv_t.weight" in report.new
    assert any(k.startswith("res5.audio.") for k in report.new)
    assert any(k.startswith("audio_to_fastslow.res4.") for k in report.new)
    assert any(k.startswith("sync.") for k in report.new)
    assert not any(k.startswith(("conv1.slow", "res2.fast")) for k in report.new)
    # SlowFast has laterals after pool1/res2 that AVSlowFast lacks, so those are unexpected and
    # the Slow blocks right after them have another input width.
    assert (
        "s1_fuse.conv_f2s.weight" in report.unexpected and "s2_fuse.bn.weight" in report.unexpected
    )
    assert "res2.slow.0.conv_a.weight" in report.mismatched
    assert "res3.slow.0.shortcut.0.weight" in report.mismatched
    assert not report.complete
    assert set(report.loaded).isdisjoint(report.new)


class _Payload:
    def __reduce__(self) -> tuple[object, ...]:
        return (print, ("pwned",))


def test_checkpoints_with_pickled_code_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    evil = tmp_path / "evil.pyth"
    torch.save({"model_state": {}, "cfg": _Payload()}, evil)
    with pytest.raises(CheckpointError, match="weights-only"):
        import_pyslowfast(evil)
    assert "pwned" not in capsys.readouterr().out  # the payload never ran
    junk = tmp_path / "junk.pyth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        import_pyslowfast(junk)


def test_unsupported_architectures_are_refused(fixtures_dir: Path, tmp_path: Path) -> None:
    ckpt = torch.load(
        fixtures_dir / "pyslowfast_slowfast" / "checkpoint.pyth",
        weights_only=True,
        map_location="cpu",
    )
    odd = tmp_path / "i3d.pyth"
    torch.save(ckpt | {"cfg": ckpt["cfg"].replace("ARCH: slowfast", "ARCH: i3d")}, odd)
    with pytest.raises(CheckpointError, match="ARCH"):
        import_pyslowfast(odd)
