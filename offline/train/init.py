"""Start training from a model package (``avserve train avslowfast --init PACKAGE``).

Every tensor whose name and shape match is copied. The classifier is sized from the new label
set: rows (weights and bias) of labels the package already knows are copied by *name*, so a
head that gains a class (e.g. ``background``) or reorders its classes keeps what it learnt;
rows of new labels keep their fresh initialisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from models import AVSlowFast, load_package

HEAD_PREFIX = "head.proj."


@dataclass(frozen=True)
class InitReport:
    copied: int  # tensors copied whole
    head_rows: int  # classifier rows copied by label name
    new_labels: tuple[str, ...]  # labels the package did not know (freshly initialised)
    skipped: tuple[str, ...]  # tensors of the model that stayed as initialised


def init_from_package(
    model: AVSlowFast, package_dir: str | Path, labels: Sequence[str] | None
) -> InitReport:
    """Load ``package_dir``'s weights into ``model`` (same architecture family, any head)."""
    package = load_package(package_dir)
    source = package.model.inference_state_dict()
    old_labels = [label for head in package.heads for label in package.labels[head.name]]
    target = model.state_dict()
    total = sum(h.num_classes for h in model.config.heads)
    new = list(labels) if labels else [f"class_{i}" for i in range(total)]
    copied, rows, skipped = 0, 0, []
    with torch.no_grad():
        for name, tensor in target.items():
            src = source.get(name)
            if src is not None and src.shape == tensor.shape and not name.startswith(HEAD_PREFIX):
                tensor.copy_(src)
                copied += 1
            elif (
                name.startswith(HEAD_PREFIX)
                and src is not None
                and src.shape[1:] == tensor.shape[1:]
            ):
                for i, label in enumerate(new):
                    if label in old_labels and i < tensor.shape[0]:
                        tensor[i] = src[old_labels.index(label)]
                        rows += 1
                copied += 1
            else:
                skipped.append(name)
    model.load_state_dict(target)
    unknown = tuple(label for label in new if label not in old_labels)
    return InitReport(copied, rows // 2, unknown, tuple(skipped))
