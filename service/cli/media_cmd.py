"""``avserve probe FILE [--json]``: what the media policy sees in a file, or why it refuses it.

Exit status 0 when the file is accepted, 2 when the policy refuses it (the error code is
printed, as JSON with ``--json``), so scripts can branch on either.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

_REFUSED = 2


def _probe(path: Path, max_duration_s: float | None) -> dict[str, Any]:
    from service.errors import MediaError
    from service.media import MediaPolicy, probe

    policy = MediaPolicy() if max_duration_s is None else MediaPolicy(max_duration_s=max_duration_s)
    try:
        info = probe(path, policy)
    except MediaError as e:
        return {"ok": False, "file": str(path), "error": e.to_dict()}
    return {"ok": True, "file": str(path)} | info.to_dict()


def _table(result: dict[str, Any]) -> Table:
    table = Table(title=result["file"], show_header=False)
    video = result["video"]
    audio = result["audio_present"] and result["audio"]
    table.add_row("container", result["container"])
    table.add_row("size", f"{result['size_bytes']} bytes")
    estimated = " (estimated from timestamps)" if result["duration_estimated"] else ""
    table.add_row("duration", f"{result['duration_s']:.3f} s{estimated}")
    fps = f"{video['fps']:.3f} fps" if video["fps"] else "unknown fps"
    table.add_row(
        "video",
        f"#{video['index']} {video['codec']} {video['width']}x{video['height']} "
        f"(coded {video['coded_width']}x{video['coded_height']}), {fps}, "
        f"rotation {video['rotation']}°, timing {video['timing']}",
    )
    table.add_row(
        "audio",
        f"#{audio['index']} {audio['codec']} {audio['sample_rate']} Hz {audio['channels']} ch"
        if audio
        else "absent",
    )
    plan = result.get("decode_plan")
    if plan:
        table.add_row("decode plan", _plan_line(plan))
    for s in result["streams"]:
        detail = (
            f"{s['width']}x{s['height']}"
            if s["kind"] == "video"
            else f"{s['sample_rate']} Hz {s['channels']} ch"
            if s["kind"] == "audio"
            else ""
        )
        mark = " (selected)" if s["selected"] else ""
        default = " default" if s["default"] else ""
        table.add_row(f"stream {s['index']}", f"{s['kind']} {s['codec']} {detail}{default}{mark}")
    return table


def _plan_line(plan: dict[str, Any]) -> str:
    index = plan["index"]
    line = f"{index['keyframes']} keyframes ({index['source']})"
    if index["gop_max_s"] is not None:
        line += f", GOP mean {index['gop_mean_s']:g} s, max {index['gop_max_s']:g} s"
    glance = plan.get("glance")
    if glance:
        line += (
            f"; glance: {glance['strategy']}, {glance['gops']} GOPs, {glance['seeks']} seeks, "
            f"~{glance['frames_est']} of {glance['full_frames_est']} frames decoded; "
            f"a clip window ~{plan['clip_window_frames_est']} frames"
        )
    return line


def probe_cmd(
    file: Annotated[Path, typer.Argument(help="Media file to probe.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    max_duration_s: Annotated[
        float | None, typer.Option(min=0.001, help="Override the duration limit (s).")
    ] = None,
) -> None:
    """Probe a media file under the service's media policy (streams, duration, fps, rotation,
    audio), or print the error code it would be refused with."""
    result = _probe(file, max_duration_s)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
    elif result["ok"]:
        Console().print(_table(result))
    else:
        error = result["error"]
        Console(stderr=True).print(f"[red]refused[/red] {error['code']}: {error['message']}")
    if not result["ok"]:
        raise typer.Exit(_REFUSED)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("probe")(probe_cmd)
