"""Probe every sample of a source with the media layer; the ``avserve data check`` report.

Probing opens each file with ``service.media.probe`` (the same limits and typed error codes as
serving: ``unsupported_container``, ``no_video_stream``, ``undecodable``, ``empty_file``,
``too_long``, ...), so a file that would be refused at training or serving time is named here,
before any training starts.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from offline.data.sources.types import MISSING_FILE, Problem, Sample, Source
from service.errors import AvserveError
from service.media import MediaPolicy, probe
from service.media.types import MediaInfo

WINDOW_PAST_END = "window_past_end"  # a list window beyond the file's end (warning: clamped)


@dataclass(frozen=True)
class Probed:
    sample: Sample
    info: MediaInfo | None
    problem: Problem | None  # an error when info is None, else an optional warning


def _probe_one(sample: Sample, policy: MediaPolicy) -> Probed:
    where = str(sample.path)
    try:
        info = probe(sample.path, policy)
    except AvserveError as err:
        return Probed(sample, None, Problem(err.code, where, err.message))
    except OSError as err:
        return Probed(sample, None, Problem(MISSING_FILE, where, str(err)))
    if sample.start_s is not None and sample.start_s >= info.duration_s:
        msg = f"window starts at {sample.start_s:g} s, the file lasts {info.duration_s:.2f} s"
        return Probed(sample, None, Problem(WINDOW_PAST_END, where, msg))
    if sample.end_s is not None and sample.end_s > info.duration_s + 0.5:
        msg = f"window ends at {sample.end_s:g} s, the file lasts {info.duration_s:.2f} s (clamped)"
        return Probed(sample, info, Problem(WINDOW_PAST_END, where, msg, "warning"))
    return Probed(sample, info, None)


def probe_samples(
    source: Source,
    *,
    workers: int = 1,
    policy: MediaPolicy | None = None,
    on_progress: Callable[[], None] | None = None,
) -> list[Probed]:
    """Probe every sample (threads: PyAV releases the GIL while demuxing)."""
    pol = policy or MediaPolicy()
    out: list[Probed] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for item in pool.map(lambda s: _probe_one(s, pol), source.samples):
            out.append(item)
            if on_progress is not None:
                on_progress()
    return out


def usable(source: Source, probed: list[Probed]) -> Source:
    """The source without unreadable samples, their problems added to its report."""
    bad = [p for p in probed if p.info is None]
    notes = [p.problem for p in probed if p.problem is not None]
    return source.without([p.sample.path for p in bad], notes)


def seconds_of(p: Probed) -> float:
    """Seconds of the sample's window (its whole file when the row gives no window)."""
    assert p.info is not None
    start = p.sample.start_s or 0.0
    end = min(p.sample.end_s or p.info.duration_s, p.info.duration_s)
    return max(0.0, end - start)


def check_report(source: Source, probed: list[Probed]) -> dict[str, Any]:
    """JSON-ready summary: counts, durations, imbalance, every problem."""
    ok = [p for p in probed if p.info is not None]
    checked = usable(source, probed)
    counts = checked.class_counts()
    secs: dict[str, float] = dict.fromkeys(source.classes, 0.0)
    for p in ok:
        for i in p.sample.labels:
            secs[source.classes[i]] += seconds_of(p)
    durations = sorted(seconds_of(p) for p in ok)
    present = [c for c in counts.values() if c > 0]
    problems = checked.problems
    return {
        "source": str(source.location),
        "kind": source.kind,
        "multi_label": source.multi_label,
        "samples": len(source.samples),
        "usable": len(ok),
        "unlabeled": sum(1 for p in ok if not p.sample.labels),
        "with_audio": sum(1 for p in ok if p.info is not None and p.info.has_audio),
        "classes": {c: {"count": counts[c], "seconds": round(secs[c], 2)} for c in source.classes},
        "duration_s": {
            "min": round(durations[0], 3),
            "median": round(statistics.median(durations), 3),
            "max": round(durations[-1], 3),
            "total": round(sum(durations), 2),
        }
        if durations
        else None,
        # largest / smallest class; an empty class counts as infinitely imbalanced (None)
        "imbalance": round(max(present) / min(present), 2)
        if present and len(present) == len(counts)
        else None,
        "errors": sum(1 for p in problems if p.severity == "error"),
        "warnings": sum(1 for p in problems if p.severity == "warning"),
        "problems": [p.to_dict() for p in problems],
    }
