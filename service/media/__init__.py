"""Media ingestion: safe probing/decoding of untrusted files, sampling for the models,
the decode worker pool, SSRF-safe URL fetching and upload streaming."""

from __future__ import annotations

from service.media.clips import read_clips
from service.media.fetch import FetchedFile, fetch_url
from service.media.geometry import box_from_uv, center_box, dense_windows, snippet_times
from service.media.netguard import forbidden_reason
from service.media.policy import FetchPolicy, MediaPolicy
from service.media.pool import DecodePool, PoolStats
from service.media.probe import probe
from service.media.snippets import read_snippets
from service.media.types import (
    AudioStreamInfo,
    ClipBatch,
    ClipSpec,
    ClipWindow,
    CropBox,
    GlanceSnippets,
    MediaInfo,
    ResolvedWindow,
    SnippetSpec,
    StreamSummary,
    VideoStreamInfo,
)
from service.media.upload import remove_quietly, removing, save_upload

__all__ = [
    "AudioStreamInfo",
    "ClipBatch",
    "ClipSpec",
    "ClipWindow",
    "CropBox",
    "DecodePool",
    "FetchPolicy",
    "FetchedFile",
    "GlanceSnippets",
    "MediaInfo",
    "MediaPolicy",
    "PoolStats",
    "ResolvedWindow",
    "SnippetSpec",
    "StreamSummary",
    "VideoStreamInfo",
    "box_from_uv",
    "center_box",
    "dense_windows",
    "fetch_url",
    "forbidden_reason",
    "probe",
    "read_clips",
    "read_snippets",
    "remove_quietly",
    "removing",
    "save_upload",
    "snippet_times",
]
