"""Glance snippets: T evenly spaced instants, one small squashed frame and ~1 s of audio each.

Snippet t is centred at c_t = (t + 0.5)·D/T. Its frame is the whole picture squashed to
``frame_size``² (no crop, so a (u, v) patch position refers to the full frame). Cheap by
design: a keyframe that a seek lands on near c_t is used as is (``frame_tolerance``), and
non-reference frames are skipped while decoding towards an instant.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from service.errors import AvserveError, MediaError
from service.media.audio import read_audio_windows
from service.media.container import Deadline, open_input, raise_media_error
from service.media.geometry import snippet_times
from service.media.imaging import squash
from service.media.passes import read_frames
from service.media.policy import MediaPolicy
from service.media.types import GlanceSnippets, MediaInfo, SnippetSpec
from service.media.walk import Emit

_MAX_SNIPPETS = 1024
_MAX_SIDE = 1024


def _check_spec(spec: SnippetSpec) -> None:
    if not 1 <= spec.num_snippets <= _MAX_SNIPPETS or not 1 <= spec.frame_size <= _MAX_SIDE:
        raise AvserveError(
            f"snippet spec out of range ({spec.num_snippets} snippets of {spec.frame_size} px)",
            code="invalid_request",
        )
    if spec.audio_samples < 1 or spec.audio_samples > 10 * spec.audio_sample_rate:
        raise AvserveError("snippet audio window out of range", code="invalid_request")


def read_snippets(
    path: Path, info: MediaInfo, spec: SnippetSpec, policy: MediaPolicy
) -> GlanceSnippets:
    """Decode the glance snippets of a probed file. Raises MediaError."""
    _check_spec(spec)
    deadline = Deadline(policy.max_wall_s)
    count, size = spec.num_snippets, spec.frame_size
    times = np.asarray(snippet_times(info.duration_s, count), dtype=np.float64)
    frames = np.zeros((count, size, size, 3), np.uint8)
    frame_times = np.zeros(count, np.float64)

    def make_emit() -> Emit:
        """One per decoder: repeated frames convert once; swscale contexts are not shared."""
        last: list[tuple[av.VideoFrame, np.ndarray]] = []
        reformatter = VideoReformatter()

        def emit(i: int, t: float, frame: av.VideoFrame) -> None:
            if not last or last[0][0] is not frame:
                last[:] = [(frame, squash(frame, info.video.rotation, size, reformatter))]
            frames[i] = last[0][1]
            frame_times[i] = t

        return emit

    half = spec.audio_seconds / 2
    spans = [(c - half, c + half) for c in times.tolist()]

    with open_input(path, policy) as container:
        try:
            tolerance = max(spec.frame_tolerance, 0.0) * info.duration_s / count
            stats, (audio, silent, audio_errors) = read_frames(
                path, container, info, policy, deadline, times.tolist(), make_emit,
                lambda: read_audio_windows(
                    container, info, policy, deadline, spans,
                    spec.audio_sample_rate, spec.audio_samples,
                ),
                tolerance_s=tolerance,
            )  # fmt: skip
        except (MediaError, AvserveError):
            raise
        except Exception as e:
            raise_media_error(e, "reading snippets")
    return GlanceSnippets(
        times_s=times,
        frames=frames,
        audio=audio,
        audio_present=info.audio is not None,
        decoded_frames=stats.decoded_frames,
        extra={
            "frame_times_s": frame_times,
            "seeks": stats.seeks,
            "decoders": stats.decoders,
            "plan": stats.plan,
        },
        audio_silent=silent,
        decode_errors=stats.decode_errors + audio_errors,
        coverage=stats.coverage,
    )
