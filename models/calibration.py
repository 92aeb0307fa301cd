"""Calibration and abstention rules of one output head, stored in the package's ``config.json``.

A head answers honestly when its scores mean what they say and when it can say "none of my
classes". Four things make that possible, all fitted offline on validation data
(``avserve train calibrate``) and applied by the serving code in one place for every runtime:

* ``temperature``: logits are divided by it before the softmax (temperature scaling, Guo et al.
  2017), so that a score of 0.8 is right about 80% of the time;
* ``background``: the label of the outcome "no class here" when the head was trained with one;
  windows it wins weigh (almost) nothing in the video-level answer;
* ``min_confidence``: the smallest top known-class probability accepted as a recognition,
  chosen so that at most ``target_false_abstention`` of the validation clips are refused;
* ``audio_groups``: classes that only sound tells apart; without audio their scores are pooled,
  so a silent video never gets a sound-defined class with more than 1/len(group) confidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

BACKGROUND = "background"  # the conventional label of the "no class here" outcome


@dataclass(frozen=True)
class HeadCalibration:
    temperature: float = 1.0
    background: str | None = None
    min_confidence: float = 0.0
    audio_groups: tuple[tuple[str, ...], ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)  # ECE etc. as measured when fitted

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["audio_groups"] = [list(g) for g in self.audio_groups]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeadCalibration:
        unknown = set(d) - {
            "temperature",
            "background",
            "min_confidence",
            "audio_groups",
            "metrics",
        }
        if unknown:
            raise ValueError(f"unknown calibration keys {sorted(unknown)}")
        return cls(
            temperature=float(d.get("temperature", 1.0)),
            background=d.get("background"),
            min_confidence=float(d.get("min_confidence", 0.0)),
            audio_groups=tuple(tuple(str(x) for x in g) for g in d.get("audio_groups") or ()),
            metrics=dict(d.get("metrics") or {}),
        )

    def check_labels(self, labels: tuple[str, ...]) -> None:
        """Every label the rules name must be one of the head's labels."""
        named = [*([self.background] if self.background else []), *sum(self.audio_groups, ())]
        missing = [n for n in named if n not in labels]
        if missing:
            raise ValueError(f"calibration names labels the head does not have: {missing}")
