"""AVSynth: a procedurally generated audio-visual benchmark whose answers we know.

See ``classes.py`` for the class design, ``scene.py`` for the random streams and splits,
``generate.py`` for seeds, subsets and the manifest.
"""

from offline.data.avsynth.classes import CLASS_NAMES, CLASSES, NUM_CLASSES, ClassDef, labels_json
from offline.data.avsynth.clip import SynthClip, clip_meta, generate_clip, write_clip
from offline.data.avsynth.scene import SPLITS, SplitConfig, SynthSpec, sample_spec

__all__ = [
    "CLASSES",
    "CLASS_NAMES",
    "NUM_CLASSES",
    "SPLITS",
    "ClassDef",
    "SplitConfig",
    "SynthClip",
    "SynthSpec",
    "clip_meta",
    "generate_clip",
    "labels_json",
    "sample_spec",
    "write_clip",
]
