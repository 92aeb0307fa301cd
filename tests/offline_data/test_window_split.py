"""Window clips: class clips cut the way the glance shows a long video's event."""

from __future__ import annotations

from pathlib import Path

from offline.data.avsynth import sample_spec
from offline.data.avsynth.generate import GenerateConfig, generate, read_manifest
from offline.data.avsynth.scene import WINDOW


def test_the_event_covers_part_of_the_clip_and_the_stage_sits_in_the_centre_square() -> None:
    for seed in range(200):
        spec = sample_spec(seed, "window")
        length = spec.event_end_s - spec.event_start_s
        assert 0.6 * spec.duration_s - 1e-3 <= length <= spec.duration_s + 1e-3
        assert spec.event_start_s >= 0.0 and spec.event_end_s <= spec.duration_s
        short = min(spec.width, spec.height)
        x, y, w, h = spec.stage
        assert w == h == round(WINDOW.stage_frac * short)
        x0, y0 = (spec.width - short) // 2, (spec.height - short) // 2
        assert x0 <= x and x + w <= x0 + short and y0 <= y and y + h <= y0 + short


def test_window_clips_join_a_short_set_with_their_class_labels(tmp_path: Path) -> None:
    generate(GenerateConfig(out=tmp_path, split="short", subset="val", count=1, windows=3, seed=5))
    records = read_manifest(tmp_path)
    windows = [r for r in records if r["split"] == "window"]
    assert len(windows) == 3 and all(r["file"].startswith("window-val-") for r in windows)
    assert all(0 <= r["label"] < 10 and r["event_end_s"] > r["event_start_s"] for r in windows)
    assert all((tmp_path / r["file"]).stat().st_size > 1000 for r in records)
