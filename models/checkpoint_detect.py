"""Tell a checkpoint's format from its bytes and key names, so ``--format`` can be left out."""

from __future__ import annotations

from pathlib import Path

from models.checkpoint import read_checkpoint

# torch.save's legacy (non-zip) files open with this pickled magic number.
_TORCH_LEGACY_MAGIC = bytes.fromhex("8a0a6cfc9c46f9206aa85019")


def detect_format(path: str | Path) -> str | None:
    """``pyslowfast``, ``pytorchvideo`` or ``caffe2``; None when the file is none of them.

    Torch files (zip, or the legacy pickle with torch's magic number) are told apart by their
    key names; any other pickle is taken for a Caffe2 blob dict (its loader is the safe one).
    Reading a torch file here uses the same weights-only loader as the import.
    """
    with open(path, "rb") as f:
        head = f.read(32)
    if head.startswith(b"PK") or _TORCH_LEGACY_MAGIC in head:
        state, _ = read_checkpoint(path)
        keys = [k.removeprefix("model.") for k in state]
        if any(k.startswith("blocks.0.multipathway_blocks.") for k in keys):
            return "pytorchvideo"
        if any(k.startswith(("s1.pathway0_stem.", "s1.pathway2_stem.")) for k in keys):
            return "pyslowfast"
        return None
    if head[:1] == b"\x80" or head[:1] in (b"(", b"}", b"]"):  # pickle protocol 2+ / 0-1
        return "caffe2"
    return None
