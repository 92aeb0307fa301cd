"""Glance training data: per-video snippets plus the heavy model's targets, cached on disk.

For every video of a generated set this decodes the glance snippets with the very decoder the
``glance`` policy uses at inference (``service.media.read_snippets`` with the glance's
``SnippetSpec``), so training and serving see identical inputs. The teacher is the heavy
model: for each snippet it classifies the clip window the pipeline would run for that snippet
(``window_start`` of the snippet centre), at ``crops`` spatial crops across the frame (the
dense protocol's left/centre/right), and keeps the best crop's log-probability of the video's
class. That is the saliency target of docs/glance.md §6 (an event off the frame centre still
scores high), learned from the heavy model, never from the generator's event times.

Each video is one ``.npz`` in the cache directory, keyed by everything that changes its
content (snippet spec, heavy weights, clip geometry, crops), so re-runs only decode new files.
Videos are encoded by ``workers`` threads with one torch thread each: decoding is a single
thread (PyAV releases the GIL), so one video decodes while another's windows are classified.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models import ModelPackage
from models.calibration import BACKGROUND
from service.media import MediaPolicy, probe, read_clips, read_snippets
from service.media.geometry import spatial_crops
from service.media.types import ClipSpec, ClipWindow, SnippetSpec
from service.selection import window_start

CACHE_VERSION = 1
_MAX_WINDOWS = 60  # read_clips refuses more than 64 windows per call


@dataclass(frozen=True)
class TeacherConfig:
    crops: int = 3  # spatial crops per window; the best one is the target
    batch_size: int = 24  # heavy clips per forward pass


@dataclass
class GlanceSet:
    """In-memory glance training data for N videos with T snippets each."""

    frames: np.ndarray  # uint8 [N, T, S, S, 3]
    audio: np.ndarray  # float32 [N, T, A]
    audio_present: np.ndarray  # bool [N]
    labels: np.ndarray  # int64 [N]
    teacher_logp: np.ndarray  # float32 [N, T]: best-crop heavy log p(y) per snippet window
    teacher_logits: np.ndarray  # float32 [N, C]: log of the mean best-crop heavy softmax
    files: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def concat(self, other: GlanceSet) -> GlanceSet:
        if other.frames.shape[1:] != self.frames.shape[1:]:
            raise ValueError("glance sets with different snippet shapes")
        arrays = ("frames", "audio", "audio_present", "labels", "teacher_logp", "teacher_logits")
        joined = {f: np.concatenate([getattr(self, f), getattr(other, f)]) for f in arrays}
        return GlanceSet(**joined, files=self.files + other.files)


def snippet_spec_of(glance_cfg: Any) -> SnippetSpec:
    """The snippet spec the ``glance`` policy decodes for this glance config."""
    return SnippetSpec(
        num_snippets=glance_cfg.num_snippets,
        frame_size=glance_cfg.frame_size,
        audio_seconds=glance_cfg.audio_seconds,
        audio_sample_rate=glance_cfg.audio_features.sample_rate,
    )


def cache_key(package: ModelPackage, spec: SnippetSpec, teacher: TeacherConfig) -> str:
    weights = package.path / "weights.safetensors"
    stat = weights.stat()
    doc = {
        "v": CACHE_VERSION,
        "spec": [spec.num_snippets, spec.frame_size, spec.audio_seconds, spec.audio_sample_rate],
        "spec_tolerance": spec.frame_tolerance,
        "weights": [str(weights.resolve()), stat.st_size, stat.st_mtime_ns],
        "pre": package.config.preprocessing.to_dict(),
        "crops": teacher.crops,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:12]


class Teacher:
    """The heavy model scoring every snippet window of a video (eager, on CPU by default)."""

    def __init__(self, package: ModelPackage, cfg: TeacherConfig = TeacherConfig()) -> None:
        pre = package.config.preprocessing
        self.cfg = cfg
        self.model = package.serving_model().eval()
        self.clip = ClipSpec(**pre.clip_spec())  # type: ignore[arg-type]
        self.short_side = pre.short_side
        self.policy = MediaPolicy()
        labels = package.labels[package.heads[0].name]
        self.background = labels.index(BACKGROUND) if BACKGROUND in labels else None

    def windows(self, info: Any, times_s: Sequence[float]) -> list[ClipWindow]:
        """Snippet-major windows: every crop of the clip centred at each snippet time."""
        boxes = spatial_crops(info, self.short_side, self.clip.crop_size, self.cfg.crops)
        clip_s, dur = self.clip.duration_s, info.duration_s
        return [ClipWindow(window_start(float(t), clip_s, dur), b) for t in times_s for b in boxes]

    def logits(self, path: Path, info: Any, windows: Sequence[ClipWindow]) -> np.ndarray:
        # Snippets of a short video clamp to the same windows: classify each distinct one once.
        unique = list(dict.fromkeys(windows))
        index = {w: i for i, w in enumerate(unique)}
        rows = [index[w] for w in windows]
        return self._logits(path, info, unique)[rows]

    def _logits(self, path: Path, info: Any, windows: Sequence[ClipWindow]) -> np.ndarray:
        parts = []
        for i in range(0, len(windows), _MAX_WINDOWS):
            batch = read_clips(path, info, windows[i : i + _MAX_WINDOWS], self.clip, self.policy)
            for j in range(0, len(batch.frames), self.cfg.batch_size):
                frames = torch.from_numpy(batch.frames[j : j + self.cfg.batch_size])
                audio = torch.from_numpy(batch.audio[j : j + self.cfg.batch_size])
                with torch.inference_mode():
                    parts.append(self.model(frames, audio).float().numpy())
        return np.concatenate(parts, axis=0)


def encode_video(path: Path, label: int, spec: SnippetSpec, teacher: Teacher) -> dict[str, Any]:
    """Snippets and teacher targets of one video (the content of its cache file)."""
    info = probe(path, teacher.policy)
    snippets = read_snippets(path, info, spec, teacher.policy)
    logits = teacher.logits(path, info, teacher.windows(info, snippets.times_s.tolist()))
    logp = torch.log_softmax(torch.from_numpy(logits), dim=-1).view(
        spec.num_snippets, -1, logits.shape[-1]
    )
    target = label
    bg = teacher.background
    if target < 0:  # unlabeled video: the heavy model's own video-level prediction stands in
        per_window = logp.max(dim=1).values  # [T, C], the most confident crop per window
        video_logp = torch.logsumexp(per_window, dim=0)
        if bg is not None:  # the answer is the best class, not "nothing here"
            video_logp[bg] = -torch.inf
        target = int(video_logp.argmax())
    best = logp[:, :, target].argmax(dim=1)  # best crop per snippet window
    chosen = logp[torch.arange(spec.num_snippets), best]  # [T, C]
    if bg is None:
        video = torch.logsumexp(chosen, dim=0) - np.log(spec.num_snippets)  # log mean softmax
    else:  # as the server fuses: windows weighted by their evidence (1 - p_background)^2
        weight = (1 - chosen[:, bg].exp()).clamp_min(1e-6) ** 2
        video = torch.logsumexp(chosen + (weight / weight.sum()).log()[:, None], dim=0)
    return {
        "frames": snippets.frames,
        "audio": snippets.audio.astype(np.float32),
        "audio_present": np.bool_(snippets.audio_present),
        "label": np.int64(label),
        "teacher_logp": chosen[:, target].numpy().astype(np.float32),
        "teacher_logits": video.numpy().astype(np.float32),
    }


def video_records(
    data_dir: Path, labels: Sequence[str] | None = None, videos_dir: Path | None = None
) -> list[dict[str, Any]]:
    """The videos of a set and their labels as indices into the heavy model's ``labels``.

    A generated AVSynth set: its manifest (AVSynth indices). Any other source (class folders,
    CSV / JSONL lists, a plain folder; ``offline.data.sources``): labels are matched to
    ``labels`` by name; a label the heavy model does not have, a multi-label row and an
    unlabeled video get -1 (the heavy model's own prediction is then the target). Files are
    used whole (list windows are a training-clip notion).
    """
    from offline.data.avsynth.generate import read_manifest
    from offline.data.sources import SourceSpec, open_source

    if (data_dir / "manifest.jsonl").is_file():
        return read_manifest(data_dir)
    src = open_source(SourceSpec(data_dir, videos_dir=videos_dir))
    src.require_clean()
    index = {name: i for i, name in enumerate(labels or ())}
    records = []
    for s in dict((s.path, s) for s in src.samples).values():  # each file once
        name = src.classes[s.labels[0]] if len(s.labels) == 1 else None
        label = index.get(name, -1) if name else -1
        records.append({"file": str(s.path.resolve()), "label": label, "name": s.key})
    return records


def build_glance_set(
    data_dir: Path,
    package: ModelPackage,
    spec: SnippetSpec,
    cache_dir: Path,
    teacher_cfg: TeacherConfig = TeacherConfig(),
    *,
    limit: int | None = None,
    on_progress: Callable[[str], None] | None = None,
    videos_dir: Path | None = None,
    workers: int = 1,
) -> GlanceSet:
    """Decode (or load from ``cache_dir``) every video of ``data_dir`` (see ``video_records``).

    ``workers`` threads encode the videos missing from the cache, each on one torch thread.
    """
    head = package.heads[0].name
    records = video_records(data_dir, package.labels.get(head), videos_dir)[:limit]
    where = cache_dir / cache_key(package, spec, teacher_cfg)
    where.mkdir(parents=True, exist_ok=True)
    targets = [where / (_cache_stem(rec) + ".npz") for rec in records]
    missing = [(rec, t) for rec, t in zip(records, targets, strict=True) if not t.is_file()]
    encoded = {t for _, t in missing}
    if missing:
        teacher = Teacher(package, teacher_cfg)

        def encode(job: tuple[dict[str, Any], Path]) -> None:
            rec, target = job
            item = encode_video(data_dir / rec["file"], int(rec["label"]), spec, teacher)
            tmp = target.with_name(f".{target.stem}.tmp.npz")
            np.savez(tmp, **item)
            tmp.replace(target)
            if on_progress is not None:
                on_progress(rec["file"])

        _run_on_threads(encode, missing, workers)
    items = []
    for rec, target in zip(records, targets, strict=True):
        with np.load(target) as z:
            items.append({k: z[k] for k in z.files})
        if on_progress is not None and target not in encoded:  # encoded ones were reported
            on_progress(rec["file"])
    if not items:
        raise ValueError(f"{data_dir}: the manifest lists no videos")
    return GlanceSet(
        frames=np.stack([i["frames"] for i in items]),
        audio=np.stack([i["audio"] for i in items]),
        audio_present=np.array([bool(i["audio_present"]) for i in items]),
        labels=np.array([int(i["label"]) for i in items], dtype=np.int64),
        teacher_logp=np.stack([i["teacher_logp"] for i in items]),
        teacher_logits=np.stack([i["teacher_logits"] for i in items]),
        files=[r["file"] for r in records],
    )


def _cache_stem(rec: dict[str, Any]) -> str:
    return Path(rec.get("name", rec["file"])).with_suffix("").as_posix().replace("/", "__")


def _run_on_threads(fn: Callable[[Any], None], jobs: Sequence[Any], workers: int) -> None:
    """``fn`` over ``jobs``; with ``workers > 1`` on that many threads of one torch thread each.

    Each thread keeps its own OpenMP team size, so the threads together use ``workers`` cores
    instead of ``workers`` times the caller's team (oversubscription slows them all).
    """
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            fn(job)
        return

    inherited = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix="glance-teacher",
            initializer=torch.set_num_threads,
            initargs=(1,),
        ) as pool:
            for future in [pool.submit(fn, job) for job in jobs]:
                future.result()  # the first failure stops the build with its own error
    finally:
        # torch keeps the last value as the default of threads started later: restore it
        torch.set_num_threads(inherited)
