"""What every benchmark records about the machine it ran on (shared with ``avserve eval``)."""

from __future__ import annotations

from offline.provenance import cpu_model, machine

__all__ = ["cpu_model", "machine"]
