"""Model packages: round trip, strict validation, no unpickling."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models import (
    HeadSpec,
    PackageError,
    PreprocessConfig,
    build_model,
    load_package,
    save_package,
)
from tests.models.helpers_avslowfast import random_inputs, randomize_bn


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    heads = (HeadSpec("action", 3), HeadSpec("sound", 2, multi_label=True))
    model = randomize_bn(build_model("avslowfast_tiny", heads=heads))
    out = tmp_path_factory.mktemp("pkg") / "tiny"
    save_package(
        out,
        model,
        name="tiny",
        version="1.2",
        labels={"action": ["run", "jump", "swim"], "sound": ["speech", "music"]},
        extra_metadata={"trained_on": "nothing"},
    )
    torch.save(model.state_dict(), out.parent / "reference.pt")
    return out


def _reference(package_dir: Path) -> torch.nn.Module:
    heads = (HeadSpec("action", 3), HeadSpec("sound", 2, multi_label=True))
    model = build_model("avslowfast_tiny", heads=heads)
    model.load_state_dict(torch.load(package_dir.parent / "reference.pt", weights_only=True))
    return model.eval()


def _copy(package_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(package_dir, dst)
    return dst


def _edit_config(pkg: Path, **changes: object) -> None:
    cfg = json.loads((pkg / "config.json").read_text())
    cfg.update(changes)
    (pkg / "config.json").write_text(json.dumps(cfg))


def test_saved_package_loads_back_with_identical_logits(package_dir: Path) -> None:
    pkg = load_package(package_dir)
    assert not pkg.model.training
    assert (pkg.name, pkg.version) == ("tiny", "1.2")
    assert [h.name for h in pkg.heads] == ["action", "sound"] and pkg.heads[1].multi_label
    assert pkg.labels == {"action": ("run", "jump", "swim"), "sound": ("speech", "music")}
    assert pkg.config.metadata == {"trained_on": "nothing"}
    assert pkg.glance_model() is None
    inputs = random_inputs(pkg.model, batch=2)
    with torch.no_grad():
        assert torch.equal(pkg.model(*inputs), _reference(package_dir)(*inputs))


def test_package_holds_only_inference_weights_by_default(package_dir: Path) -> None:
    weights = load_file(str(package_dir / "weights.safetensors"))
    assert weights and not any(k.startswith("sync.") for k in weights)
    assert not (package_dir / "train_extras.safetensors").exists()
    assert load_package(package_dir).model.sync is None


def test_training_parts_can_travel_in_a_separate_file(tmp_path: Path) -> None:
    model = randomize_bn(build_model("avslowfast_tiny"))
    save_package(tmp_path / "p", model, name="t", version="1", include_training_parts=True)
    extras = load_file(str(tmp_path / "p" / "train_extras.safetensors"))
    assert extras and all(k.startswith("sync.") for k in extras)
    pkg = load_package(tmp_path / "p", training_parts=True)
    assert pkg.model.sync is not None
    assert torch.equal(
        pkg.model.sync.heads["res3"].ref_fc.weight, model.sync.heads["res3"].ref_fc.weight
    )  # type: ignore[union-attr]


def test_package_serving_model_runs_uint8_frames_and_waveforms(package_dir: Path) -> None:
    serving = load_package(package_dir).serving_model()
    prep = serving.preprocessor.cfg
    assert prep.crop_size == 64 and prep.num_frames == 32
    frames, audio = serving.example_inputs(2)
    assert frames.dtype == torch.uint8 and frames.shape == (2, 32, 64, 64, 3)
    with torch.no_grad():
        assert serving(frames, audio).shape == (2, 5)


def test_loading_never_unpickles(package_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("a package load must not unpickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    assert load_package(package_dir).model is not None


def test_labels_must_match_the_heads(tmp_path: Path) -> None:
    model = build_model("avslowfast_tiny", num_classes=3)
    with pytest.raises(PackageError, match="labels"):
        save_package(tmp_path / "a", model, name="t", version="1", labels=["x", "y"])
    with pytest.raises(PackageError, match="labels given"):
        save_package(
            tmp_path / "b", model, name="t", version="1", labels={"other": ["a", "b", "c"]}
        )
    with pytest.raises(PackageError, match="class counts"):
        save_package(tmp_path / "c", model, name="t", version="1", heads=[HeadSpec("x", 4)])
    save_package(
        tmp_path / "d",
        model,
        name="t",
        version="1",
        labels=["a", "b", "c"],
        heads=[HeadSpec("mood", 3)],
    )
    assert load_package(tmp_path / "d").labels == {"mood": ("a", "b", "c")}


def test_preprocessing_that_does_not_fit_the_model_is_refused(tmp_path: Path) -> None:
    model = build_model("avslowfast_tiny")
    with pytest.raises(PackageError, match="frames"):
        save_package(
            tmp_path / "p",
            model,
            name="t",
            version="1",
            preprocessing=PreprocessConfig(num_frames=16),
        )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format": "something-else"}, "not an avserve model package"),
        ({"format_version": 99}, "format_version"),
        ({"surprise": 1}, "unknown"),
        ({"name": ""}, "name"),
        ({"heads": [{"name": "action", "num_classes": 3, "multi_label": False}]}, "labels"),
        (
            {
                "heads": [
                    {"name": "action", "num_classes": 3, "multi_label": False, "labels": ["a"]}
                ]
            },
            "labels",
        ),
        ({"preprocessing": {"num_frames": 32, "bogus": 1}}, "bogus"),
        ({"glance": {"config": {}, "weights": "../../etc/passwd"}}, "glance"),
        ({"glance": {"config": {}, "weights": "glance.safetensors", "patch_rho": 1.5}}, "rho"),
        ({"glance": {"config": {}, "weights": "glance.safetensors", "extra": 1}}, "glance"),
        ({"exports": {"onnx": {"file": "other.onnx"}}}, "export"),
    ],
)
def test_malformed_config_json_raises_package_error(
    package_dir: Path, tmp_path: Path, change: dict[str, object], match: str
) -> None:
    pkg = _copy(package_dir, tmp_path)
    _edit_config(pkg, **change)
    with pytest.raises(PackageError, match=match):
        load_package(pkg)


def test_architecture_errors_raise_package_error(package_dir: Path, tmp_path: Path) -> None:
    pkg = _copy(package_dir, tmp_path)
    arch = json.loads((pkg / "config.json").read_text())["architecture"]
    _edit_config(pkg, architecture=arch | {"width_per_group": "8"})
    with pytest.raises(PackageError, match="width_per_group"):
        load_package(pkg)
    # A valid architecture that does not match the stored weights.
    _edit_config(pkg, architecture=arch | {"width_per_group": 16})
    with pytest.raises(PackageError, match="do not match"):
        load_package(pkg)


def test_missing_or_corrupt_files_raise_package_error(package_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r"config\.json"):
        load_package(tmp_path)
    pkg = _copy(package_dir, tmp_path)
    (pkg / "config.json").write_text("{not json")
    with pytest.raises(PackageError, match="JSON"):
        load_package(pkg)
    pkg2 = tmp_path / "two"
    shutil.copytree(package_dir, pkg2)
    data = (pkg2 / "weights.safetensors").read_bytes()
    (pkg2 / "weights.safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(PackageError, match="safetensors"):
        load_package(pkg2)
    (pkg2 / "weights.safetensors").unlink()
    with pytest.raises(PackageError, match="missing weights"):
        load_package(pkg2)


def test_saving_again_removes_stale_exports(package_dir: Path, tmp_path: Path) -> None:
    pkg = _copy(package_dir, tmp_path)
    (pkg / "model.onnx").write_bytes(b"old graph")
    save_package(pkg, build_model("avslowfast_tiny"), name="t", version="2")
    assert not (pkg / "model.onnx").exists()
    assert load_package(pkg).config.exports == {}


def test_glance_network_travels_with_the_package(tmp_path: Path) -> None:
    from models.glance import GlanceConfig, GlanceNet

    torch.manual_seed(3)
    glance = GlanceNet(GlanceConfig.tiny())
    save_package(
        tmp_path / "g", build_model("avslowfast_tiny"), name="g", version="1", glance=glance
    )
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    assert config["glance"]["weights"] == "glance.safetensors"
    loaded = load_package(tmp_path / "g").glance_model()
    assert isinstance(loaded, GlanceNet) and not loaded.training
    assert loaded.cfg == glance.cfg
    for (k, a), (k2, b) in zip(
        glance.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b)


def test_the_served_glance_patch_is_stored_and_checked(tmp_path: Path) -> None:
    from models.glance import GlanceConfig, GlanceNet
    from models.package_edit import set_glance_patch_rho

    glance = GlanceNet(GlanceConfig.tiny())
    pkg = tmp_path / "g"
    save_package(pkg, build_model("avslowfast_tiny"), name="g", version="1", glance=glance)
    assert load_package(pkg).glance_patch_rho() is None  # the network's own rho serves
    set_glance_patch_rho(pkg, 1.0)
    loaded = load_package(pkg)
    assert loaded.glance_patch_rho() == 1.0
    assert loaded.glance_model() is not None  # the network itself is unchanged
    with pytest.raises(PackageError, match="rho"):
        set_glance_patch_rho(pkg, 0.0)
    save_package(tmp_path / "n", build_model("avslowfast_tiny"), name="n", version="1")
    with pytest.raises(PackageError, match="no glance"):
        set_glance_patch_rho(tmp_path / "n", 0.8)
