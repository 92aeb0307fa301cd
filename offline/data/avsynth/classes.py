"""AVSynth class definitions: what each class looks like, how it moves and how it sounds.

A class is the combination of three independent factors, each drawn from a named sampler:

* ``look``  — shape + colour of the class object (render.py draws it),
* ``motion`` — the trajectory family (render.py: position / angle / scale over time),
* ``sound``  — the sound-event family (sound.py), timed by the motion's impact/event times.

Classes are grouped in pairs that share two factors and differ in the third, so that each
modality's contribution can be measured:

==========================  =====================  ==========================================
pair                        differs only in        what a model needs
==========================  =====================  ==========================================
ball_thud / ball_chime      sound                  audio (visual-only is at chance in the pair)
spinner_rise / spinner_fall sound                  audio
slide_left / slide_right    motion direction       temporal order (Fast pathway); a horizontal
                                                   flip turns one into the other (``mirror``)
drift_slow / drift_fast     motion speed           temporal information across frames
ring_clicks / diamond_clicks appearance            the Slow pathway (shape + colour)
==========================  =====================  ==========================================

Because the visual rendering of a clip only reads the ``look`` and ``motion`` factors (and the
audio only the ``sound`` factor and the motion's event times), two classes that share a factor
draw it from the very same sampler with the very same random stream: given one seed, the two
classes of an audio-only pair render identical frames (tests/offline_data check this).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

Shape = Literal["circle", "cross", "square", "hexagon", "ring", "diamond"]
Motion = Literal[
    "bounce", "spin", "slide_left", "slide_right", "drift_slow", "drift_fast", "wander"
]
Sound = Literal["thud", "chime", "chirp_up", "chirp_down", "buzz", "whoosh", "clicks"]


@dataclass(frozen=True)
class Look:
    """Appearance of a class object: a flat-coloured anti-aliased shape (RGB 0-255)."""

    shape: Shape
    colour: tuple[int, int, int]


@dataclass(frozen=True)
class ClassDef:
    index: int
    name: str
    look: Look
    motion: Motion
    sound: Sound
    pair: str  # the pair this class belongs to (see the module docstring)
    differs_in: Literal["sound", "motion", "appearance"]
    mirror: str | None  # class a horizontal flip turns this one into (None: flip-invariant)
    description: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["look"] = {"shape": self.look.shape, "colour": list(self.look.colour)}
        return d


ORANGE_BALL = Look("circle", (255, 140, 0))
GREEN_CROSS = Look("cross", (40, 200, 60))
BLUE_SQUARE = Look("square", (30, 90, 255))
YELLOW_HEXAGON = Look("hexagon", (250, 225, 30))
CYAN_RING = Look("ring", (0, 220, 230))
MAGENTA_DIAMOND = Look("diamond", (230, 30, 200))

CLASSES: tuple[ClassDef, ...] = (
    ClassDef(
        0, "ball_thud", ORANGE_BALL, "bounce", "thud", "ball", "sound", None,
        "An orange ball bounces; every floor impact makes a low thud (60-110 Hz, fast decay).",
    ),
    ClassDef(
        1, "ball_chime", ORANGE_BALL, "bounce", "chime", "ball", "sound", None,
        "The same orange bouncing ball; every impact rings a high chime (1.3-2.4 kHz partials).",
    ),
    ClassDef(
        2, "spinner_rise", GREEN_CROSS, "spin", "chirp_up", "spinner", "sound", None,
        "A green cross spins while drifting; rising frequency chirps are heard.",
    ),
    ClassDef(
        3, "spinner_fall", GREEN_CROSS, "spin", "chirp_down", "spinner", "sound", None,
        "The same spinning green cross; falling frequency chirps are heard.",
    ),
    ClassDef(
        4, "slide_left", BLUE_SQUARE, "slide_left", "buzz", "slide", "motion", "slide_right",
        "A blue square slides right-to-left across its stage again and again (fading out at the exit, back in at the entry) with an engine buzz.",
    ),
    ClassDef(
        5, "slide_right", BLUE_SQUARE, "slide_right", "buzz", "slide", "motion", "slide_left",
        "The same blue square with the same buzz, sliding left-to-right pass after pass.",
    ),
    ClassDef(
        6, "drift_slow", YELLOW_HEXAGON, "drift_slow", "whoosh", "drift", "motion", None,
        "A yellow hexagon drifts slowly (0.08-0.14 stage widths/s) through its stage in a random direction over a soft whoosh.",
    ),
    ClassDef(
        7, "drift_fast", YELLOW_HEXAGON, "drift_fast", "whoosh", "drift", "motion", None,
        "The same hexagon and whoosh, drifting fast (0.45-0.7 stage widths/s), pass after pass.",
    ),
    ClassDef(
        8, "ring_clicks", CYAN_RING, "wander", "clicks", "clicks", "appearance", None,
        "A cyan ring wanders smoothly while a click train plays.",
    ),
    ClassDef(
        9, "diamond_clicks", MAGENTA_DIAMOND, "wander", "clicks", "clicks", "appearance", None,
        "A magenta diamond with the same wandering motion and the same click train.",
    ),
)  # fmt: skip

NUM_CLASSES = len(CLASSES)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
_BY_NAME = {c.name: c for c in CLASSES}


def class_by_name(name: str) -> ClassDef:
    return _BY_NAME[name]


def mirror_index(index: int) -> int:
    """Label of a clip of class ``index`` after a horizontal flip."""
    m = CLASSES[index].mirror
    return index if m is None else _BY_NAME[m].index


def pairs() -> dict[str, tuple[ClassDef, ClassDef]]:
    """The class pairs by name, each (first, second) in label order."""
    out: dict[str, list[ClassDef]] = {}
    for c in CLASSES:
        out.setdefault(c.pair, []).append(c)
    return {k: (v[0], v[1]) for k, v in out.items()}


def labels_json(background: bool = False) -> str:
    """The content of the ``labels.json`` written next to every generated set.

    ``background``: the set also holds clips of no class, labelled ``background`` (the last
    index); ``audio_groups`` lists the classes only sound tells apart (see the package's
    abstention rules).
    """
    extra = ["background"] if background else []
    doc = {
        "dataset": "avsynth",
        "num_classes": NUM_CLASSES + len(extra),
        "names": [*CLASS_NAMES, *extra],
        "background": extra[0] if extra else None,
        "classes": [c.to_dict() for c in CLASSES],
        "pairs": {k: [a.name, b.name] for k, (a, b) in pairs().items()},
        "audio_groups": [[a.name, b.name] for a, b in pairs().values() if a.differs_in == "sound"],
        "flip_label_map": [mirror_index(c.index) for c in CLASSES] + [NUM_CLASSES] * len(extra),
    }
    return json.dumps(doc, indent=2) + "\n"
