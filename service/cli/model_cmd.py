"""``avserve model ...``: inspect architectures, import official checkpoints, export packages.

Heavy imports (torch, models) happen inside the commands so ``avserve --help`` stays fast.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

model_app = typer.Typer(
    help="Model architectures, checkpoint import and export.", no_args_is_help=True
)
_err = Console(stderr=True)


class ImportFormat(StrEnum):
    pyslowfast = "pyslowfast"


class ExportFormat(StrEnum):
    onnx = "onnx"
    torchscript = "torchscript"


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _check_arch(name: str | None) -> str | None:
    from models.configs import list_configs

    if name is not None and name not in list_configs():
        raise typer.BadParameter(f"unknown arch {name!r}; known: {', '.join(list_configs())}")
    return name


@model_app.command("list")
def list_cmd() -> None:
    """List the named architectures."""
    from models.configs import list_configs

    for name in list_configs():
        typer.echo(name)


@model_app.command("info")
def info_cmd(
    arch: Annotated[
        str | None, typer.Option(help="Named architecture.", callback=_check_arch)
    ] = None,
    package: Annotated[
        Path | None, typer.Option(help="A model package instead of --arch (glance included).")
    ] = None,
    crop: Annotated[int, typer.Option(min=32, help="Square crop size in pixels.")] = 224,
    num_classes: Annotated[int | None, typer.Option(min=1, help="Classes of the head.")] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Glance: selected windows.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Parameters and multiply-adds (GMACs, as in the papers) of one clip at CROP; with
    --package, at the package's crop, plus dense-30 and the glance per video."""
    from dataclasses import replace

    from models.configs import HeadSpec, get_config
    from models.flops import count_params, model_gmacs
    from models.package import PackageError, read_config

    glance: dict[str, Any] | None = None
    if package is not None:
        try:
            pkg = read_config(package)
        except PackageError as e:
            raise _fail(str(e)) from e
        config, crop = pkg.architecture, pkg.preprocessing.crop_size
        glance = pkg.glance
    elif arch is not None:
        config = get_config(arch)
    else:
        raise typer.BadParameter("give --arch or --package")
    if num_classes is not None:
        head = config.heads[0]
        config = replace(config, heads=(HeadSpec(head.name, num_classes, head.multi_label),))
    info: dict[str, Any] = {
        "arch": config.name,
        "crop": crop,
        **count_params(config),
        "gmacs": round(model_gmacs(config, crop), 4),
        "inputs": {k: list(v) for k, v in config.input_shapes(crop).items()},
        "heads": [h.to_dict() for h in config.heads],
    }
    if package is not None:
        info["dense30_gmacs"] = round(30 * info["gmacs"], 4)
    if glance is not None:
        info["glance"] = _glance_info(glance["config"], k, info["gmacs"])
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    table = Table(title=f"{config.name} @ {crop}px", show_header=False)
    table.add_row("params (total)", f"{info['params_total'] / 1e6:.2f} M")
    table.add_row("params (inference)", f"{info['params_inference'] / 1e6:.2f} M")
    table.add_row("GMACs / clip", f"{info['gmacs']:.4f}")
    if "dense30_gmacs" in info:
        table.add_row("GMACs / video, dense 30 views", f"{info['dense30_gmacs']:.3f}")
    if glance is not None:
        g = info["glance"]
        table.add_row(f"glance GMACs / video (T={g['snippets']}, K={k})", f"{g['gmacs']:.4f}")
        table.add_row(
            f"glance + {k} windows, GMACs / video (% of dense)",
            f"{g['with_windows_gmacs']:.3f} ({100 * g['with_windows_gmacs'] / info['dense30_gmacs']:.1f}%)",
        )
    for name, shape in info["inputs"].items():
        table.add_row(f"input {name}", "x".join(map(str, shape)))
    Console().print(table)


def _glance_info(cfg: dict[str, Any], k: int, clip_gmacs: float) -> dict[str, Any]:
    from models.glance import GlanceConfig, glance_cost

    cost = glance_cost(GlanceConfig.from_dict(cfg), k=k)
    return {
        "snippets": cost.snippets,
        "params": cost.params,
        "gmacs": round(cost.total_gmacs, 4),
        "with_windows_gmacs": round(cost.total_gmacs + k * clip_gmacs, 4),
    }


def _read_labels(path: Path) -> list[str] | dict[str, list[str]]:
    text = path.read_text()
    if path.suffix == ".json":
        data = json.loads(text)
        if isinstance(data, list | dict):
            return data
        raise ValueError("a JSON labels file holds a list or {head: [labels]}")
    return [line.strip() for line in text.splitlines() if line.strip()]


@model_app.command("import")
def import_cmd(
    checkpoint: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Checkpoint file.")
    ],
    out: Annotated[Path, typer.Option(help="Package directory to write.")],
    fmt: Annotated[
        ImportFormat, typer.Option("--format", help="Checkpoint format.")
    ] = ImportFormat.pyslowfast,
    arch: Annotated[
        str | None, typer.Option(help="Named architecture (when the file has no cfg).")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Labels: one per line, or JSON."),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Package name (default: checkpoint file stem).")
    ] = None,
    version: Annotated[str, typer.Option(help="Package version.")] = "1",
) -> None:
    """Import an official PySlowFast/PyAVSlowFast checkpoint as a model package."""
    from models.checkpoint import CheckpointError, import_pyslowfast
    from models.package import PackageError, save_package

    if arch is not None:
        _check_arch(arch)
    try:
        result = import_pyslowfast(checkpoint, arch=arch)
        label_data = _read_labels(labels) if labels else None
        if result.report.mismatched or result.report.new:
            raise _fail(f"checkpoint does not fit the architecture: {result.report.summary()}")
        save_package(
            out,
            result.model,
            name=name or checkpoint.stem,
            version=version,
            labels=label_data,
            preprocessing=result.preprocessing,
            extra_metadata={"source": {"format": fmt.value, "file": checkpoint.name}},
            include_training_parts=True,
        )
    except (CheckpointError, PackageError, ValueError, OSError) as e:
        raise _fail(str(e)) from e
    typer.echo(f"wrote {out} ({result.report.summary()})")


@model_app.command("export")
def export_cmd(
    package: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="Package directory.")
    ],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="Export format.")],
    verify: Annotated[
        bool, typer.Option(help="Compare against the eager model afterwards.")
    ] = True,
) -> None:
    """Export the package's ServingModel (preprocessing + network) into the package."""
    from models.export import export_package, verify_export
    from models.package import PackageError

    try:
        path = export_package(package, fmt.value)
        msg = f"wrote {path}"
        if verify:
            diff = verify_export(package, fmt.value)
            msg += f" (max |prob diff| vs eager at batch 1 and 3: {diff:.2e})"
    except (PackageError, ValueError, OSError) as e:
        raise _fail(str(e)) from e
    typer.echo(msg)


def register(app: typer.Typer) -> None:
    """Attach ``avserve model ...`` to the root app."""
    app.add_typer(model_app, name="model")
