"""Editing a saved package in place: fitted calibration, the served glance patch, claims.

Each edit reads ``config.json``, validates the change against the package and writes the whole
file back (``models.package.write_config``), so a package on disk is always loadable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from models.calibration import HeadCalibration
from models.package import CONFIG_FILE, PackageConfig, PackageError, read_config, write_config


def set_calibration(
    directory: str | Path, calibration: Mapping[str, HeadCalibration]
) -> PackageConfig:
    """Store fitted calibration/abstention rules (by head) in the package's ``config.json``."""
    path = Path(directory)
    config = read_config(path)
    for head, cal in calibration.items():
        if head not in config.labels:
            raise PackageError(f"calibration for unknown head {head!r}")
        cal.check_labels(config.labels[head])
    updated = replace(config, calibration=dict(calibration))
    write_config(path, updated)
    return updated


def set_glance_patch_rho(directory: str | Path, rho: float) -> PackageConfig:
    """Store the served glance patch side (fraction of the short side) in ``config.json``."""
    path = Path(directory)
    config = read_config(path)
    if config.glance is None:
        raise PackageError(f"{path} has no glance")
    if not 0 < rho <= 1:
        raise PackageError(f"patch rho must be in (0, 1], got {rho}")
    updated = replace(config, glance={**config.glance, "patch_rho": rho})
    write_config(path, updated)
    return updated


def update_metadata(directory: str | Path, updates: Mapping[str, Any]) -> PackageConfig:
    """Merge ``updates`` into the package's ``metadata`` (e.g. measured accuracy claims)."""
    path = Path(directory)
    config = read_config(path)
    updated = replace(config, metadata={**config.metadata, **updates})
    tmp = path / f".{CONFIG_FILE}.tmp"
    tmp.write_text(json.dumps(updated.to_dict(), indent=2) + "\n")
    tmp.replace(path / CONFIG_FILE)
    return updated
