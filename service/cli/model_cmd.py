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
    pyslowfast = "pyslowfast"  # PySlowFast / PyAVSlowFast .pyth (cfg embedded)
    pytorchvideo = "pytorchvideo"  # PyTorchVideo model-zoo SlowFast .pyth
    caffe2 = "caffe2"  # PySlowFast Caffe2-era SlowFast .pkl


class ExportFormat(StrEnum):
    onnx = "onnx"
    torchscript = "torchscript"


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _check_arch(name: str | None) -> str | None:
    from models.named_configs import list_configs

    if name is not None and name not in list_configs():
        raise typer.BadParameter(f"unknown arch {name!r}; known: {', '.join(list_configs())}")
    return name


@model_app.command("list")
def list_cmd() -> None:
    """List the named architectures."""
    from models.named_configs import list_configs

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

    from models.configs import HeadSpec
    from models.flops import count_params, model_gmacs
    from models.named_configs import get_config
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


def _detect_format(checkpoint: Path) -> ImportFormat:
    from models.checkpoint_detect import detect_format

    found = detect_format(checkpoint)
    if found is None:
        raise ValueError(
            f"{checkpoint}: not a PySlowFast, PyTorchVideo or Caffe2 SlowFast checkpoint "
            "(pass --format to say which it is)"
        )
    _err.print(f"format: {found} (detected)")
    return ImportFormat(found)


def _choose_labels(
    spec: str | None, fmt: ImportFormat, heads: list[tuple[str, int]], dataset: str | None
) -> list[str] | dict[str, list[str]] | None:
    """``--labels`` when given; else a shipped set the checkpoint surely uses; else warn."""
    from models.labels import guess_label_set, label_sets, load_label_set, resolve_labels

    if spec is not None:
        return resolve_labels(spec)
    guess = guess_label_set(fmt.value, heads[0][1], dataset) if len(heads) == 1 else None
    if guess is not None:
        _err.print(f"labels: {guess} (a {heads[0][1]}-class {fmt.value} checkpoint)")
        return load_label_set(guess)
    classes = sum(n for _, n in heads)
    _err.print(
        f"[yellow]warning:[/yellow] no --labels and no shipped label set matches {classes} "
        f"classes: they will be named class_0..class_{classes - 1}. Pass --labels FILE "
        f"(one name per line, or JSON) or a shipped set ({', '.join(label_sets())})."
    )
    return None


@model_app.command("import")
def import_cmd(
    checkpoint: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Checkpoint file.")
    ],
    out: Annotated[Path, typer.Option(help="Package directory to write.")],
    fmt: Annotated[
        ImportFormat | None,
        typer.Option("--format", help="Checkpoint format (default: detected from the file)."),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(help="Named architecture (files without a cfg: sets alpha and frames)."),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(
            help="A shipped label set (kinetics400) or a file: one name per line, or JSON. "
            "Default: chosen when the format and class count make it certain."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Package name (default: checkpoint file stem).")
    ] = None,
    version: Annotated[str, typer.Option(help="Package version.")] = "1",
) -> None:
    """Import a PySlowFast/PyAVSlowFast, PyTorchVideo or Caffe2 checkpoint as a model package."""
    from models.checkpoint import CheckpointError, import_pyslowfast
    from models.checkpoint_caffe2 import import_caffe2
    from models.checkpoint_pytorchvideo import import_pytorchvideo
    from models.package import PackageError, save_package

    if arch is not None:
        _check_arch(arch)
    importers = {
        ImportFormat.pyslowfast: import_pyslowfast,
        ImportFormat.pytorchvideo: import_pytorchvideo,
        ImportFormat.caffe2: import_caffe2,
    }
    try:
        if fmt is None:
            fmt = _detect_format(checkpoint)
        result = importers[fmt](checkpoint, arch=arch)
        if result.report.mismatched or result.report.new:
            raise _fail(f"checkpoint does not fit the architecture: {result.report.summary()}")
        config = result.model.config
        dataset = (result.source_cfg or {}).get("TRAIN", {}).get("DATASET")
        heads = [(h.name, h.num_classes) for h in config.heads]
        label_data = _choose_labels(labels, fmt, heads, dataset)
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
    typer.echo(
        f"wrote {out} ({result.report.summary()}; arch {config.name}: {config.slow_frames} "
        f"Slow / {config.fast_frames} Fast frames, {config.total_classes} classes)"
    )


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
