"""``avserve train``: train models on generated data (``train avslowfast``, ``train glance``)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from service.errors import AvserveError

train_app = typer.Typer(help="Train models.", no_args_is_help=True)


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are JSON when they parse (numbers, lists, booleans)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"override {item!r} is not key=value")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if isinstance(out[key], list):
            out[key] = tuple(out[key])
    return out


@train_app.command("avslowfast")
def avslowfast(
    data: Path = typer.Option(
        ..., help="AVSynth set, class folders or a CSV/JSONL list (docs/own-videos.md)."
    ),
    out: Path = typer.Option(..., "--out", help="Run directory (checkpoints, log, package)."),
    arch: str = typer.Option("avslowfast_tiny", help="Named model config (models.list_configs)."),
    val_data: Path | None = typer.Option(None, help="Set or list to evaluate on each epoch."),
    data_format: str = typer.Option(
        "auto", "--format", help="auto | avsynth | folder | csv | jsonl."
    ),
    videos_dir: Path | None = typer.Option(
        None, help="Root of a list's relative paths / Kinetics downloads (default: its folder)."
    ),
    val_fraction: float = typer.Option(
        0.0, min=0.0, max=0.9, help="Hold out this share of --data for val (by path hash)."
    ),
    skip_bad: bool = typer.Option(
        False, help="Leave out unusable rows and files (each one reported) instead of stopping."
    ),
    max_seconds: float = typer.Option(
        10.0, min=0.5, help="Longest cached window per sample (the centred part is kept)."
    ),
    flip_pairs: str = typer.Option(
        "", help="Classes a horizontal flip swaps, e.g. 'swipe_left:swipe_right' (user data)."
    ),
    flip_prob: float = typer.Option(0.5, min=0.0, max=1.0, help="Random horizontal flips."),
    epochs: int = typer.Option(10, min=1),
    batch_size: int = typer.Option(16, min=1),
    lr: float = typer.Option(0.05, help="Base learning rate (after warm-up)."),
    warmup_epochs: float = typer.Option(1.0, min=0.0),
    weight_decay: float = typer.Option(1e-4, min=0.0),
    avs_weight: float = typer.Option(0.0, min=0.0, help="AV-sync loss weight (paper: 1.0)."),
    crop_size: int = typer.Option(112, min=16),
    sampling_rate: int = typer.Option(2, min=1, help="30 fps grid steps between Fast frames."),
    cache_side: int = typer.Option(128, min=16, help="Side of the cached square frames."),
    region: str = typer.Option("center", help="center (short split) or event (long split)."),
    cache_dir: Path | None = typer.Option(None, help="Default: <data>/.cache-<side>-<region>."),
    override: list[str] = typer.Option([], help="Model config override key=value (repeat)."),
    device: str = typer.Option("cpu"),
    amp: bool = typer.Option(False, help="float16 autocast (CUDA only)."),
    threads: int | None = typer.Option(None, help="torch intra-op threads."),
    workers: int = typer.Option(1, min=1, help="Processes decoding the cache."),
    seed: int = typer.Option(0, min=0),
    steps_per_epoch: int | None = typer.Option(None, min=1, help="Cap steps per epoch."),
    resume: bool = typer.Option(True, help="Continue from <out>/checkpoints/last if present."),
    package: bool = typer.Option(
        True, help="Write <out>/package (models.save_package) at the end."
    ),
    init: Path | None = typer.Option(
        None, help="Start from this package's weights (head rows copied by label name)."
    ),
    freeze: str = typer.Option(
        "", help="Stages to freeze, comma-separated: conv1,res2,... (or res2.audio)."
    ),
    freeze_until: str | None = typer.Option(
        None, help="Freeze conv1 .. this stage (res2-res5) and the fusions between them."
    ),
    patience: int | None = typer.Option(
        None, min=1, help="Stop after this many epochs without a better val top-1."
    ),
    audio_dropout: float = typer.Option(
        0.0, min=0.0, max=1.0, help="Share of training clips with their audio silenced."
    ),
    head: str | None = typer.Option(
        None, help="Name of the output head (default: the data set's name, e.g. avsynth)."
    ),
    name: str | None = typer.Option(None, help="Package name (default: avsynth-<arch>)."),
    version: str | None = typer.Option(None, help="Package version (default: seed<S>-e<E>)."),
    progress: bool = typer.Option(True),
) -> None:
    """Train an AVSlowFast-family model on an AVSynth set with the paper's recipe."""
    console = Console(stderr=True)
    try:
        _train(**locals())
    except (AvserveError, ValueError, KeyError) as err:
        msg = err.message if isinstance(err, AvserveError) else str(err)
        console.print(f"[red]error[/red] {msg}")
        raise typer.Exit(2) from err


def _train(**a: Any) -> None:
    import torch

    from models import PreprocessConfig, build_model, save_package
    from models.configs import HeadSpec
    from models.preprocess import ClipPreprocessor
    from offline.data.cache import CacheConfig, build_cache
    from offline.data.dataset import ClipBatches, SamplingConfig
    from offline.data.training_sources import (
        SourceOptions,
        describe,
        native_avsynth,
        open_training,
        source_caches,
    )
    from offline.train import TrainConfig, Trainer

    console: Console = a["console"]
    if a["threads"]:
        torch.set_num_threads(a["threads"])
    if a["region"] not in ("center", "event"):
        raise ValueError("region must be center or event")
    torch.manual_seed(a["seed"])
    data: Path = a["data"]
    labels = (
        json.loads((data / "labels.json").read_text()) if (data / "labels.json").is_file() else {}
    )
    names: list[str] = labels.get("names") or []
    src_opts = SourceOptions(
        a["data_format"], a["videos_dir"], a["val_fraction"], a["skip_bad"], a["max_seconds"],
        a["flip_pairs"],
    )  # fmt: skip
    sources = None
    if not native_avsynth(data, a["val_data"], src_opts):  # class folders, lists, ...
        sources = open_training(data, a["val_data"], src_opts)
        names = list(sources[0].classes)
        labels = {"names": names, "dataset": data.stem}
    overrides = _parse_overrides(a["override"])
    model = build_model(a["arch"], num_classes=len(names) or None, **overrides)
    if sources is not None and sources[0].multi_label:  # sigmoid head, trained with BCE
        first = model.config.heads[0]
        multi = HeadSpec(first.name, len(names), multi_label=True)
        model = build_model(a["arch"], heads=[multi], **overrides)
    mcfg = model.config
    if a["init"] is not None:
        from offline.train.init import init_from_package

        report = init_from_package(model, a["init"], names)
        console.print(
            f"initialised from {a['init']}: {report.copied} tensors, {report.head_rows} head rows"
            f" copied by label; new labels: {', '.join(report.new_labels) or 'none'}"
        )
    frozen: list[str] = []
    if a["freeze"] or a["freeze_until"]:
        from offline.train.freeze import freeze, stages_until, trainable_fraction

        wanted = stages_until(a["freeze_until"]) if a["freeze_until"] else []
        wanted += [x.strip() for x in a["freeze"].split(",") if x.strip()]
        frozen = freeze(model, list(dict.fromkeys(wanted)))
        share = 100 * trainable_fraction(model)
        console.print(f"frozen: {', '.join(frozen)} ({share:.0f}% of the weights train)")
    sampling = SamplingConfig(
        num_frames=mcfg.fast_frames,
        sampling_rate=a["sampling_rate"],
        crop_size=a["crop_size"],
        audio_drop_prob=a["audio_dropout"],
        flip_prob=a["flip_prob"],
    )
    cache_cfg = CacheConfig(
        side=a["cache_side"],
        grid_fps=sampling.target_fps / sampling.sampling_rate,
        region=a["region"],
    )

    def cache_of(d: Path) -> Any:
        where = (
            a["cache_dir"]
            if d == data and a["cache_dir"]
            else d / f".cache-{a['cache_side']}-{a['region']}"
        )
        console.print(f"decoding {d} into {where} (once)")
        return build_cache(d, where, cache_cfg, workers=a["workers"])

    if sources is None:
        train_cache = cache_of(data)
        val_cache = cache_of(a["val_data"]) if a["val_data"] is not None else None
        source_info = None
    else:
        root = a["cache_dir"] or a["out"] / "cache"
        train_cache, val_cache, kept, kept_val = source_caches(
            *sources, root, cache_cfg, src_opts, a["workers"], console
        )
        source_info = {"train": describe(kept), "val": describe(kept_val) if kept_val else None}
    train = ClipBatches(
        train_cache, sampling, batch_size=a["batch_size"], train=True, seed=a["seed"],
        negatives=a["avs_weight"] > 0,
    )  # fmt: skip
    val = None
    if val_cache is not None:
        val = ClipBatches(val_cache, sampling, batch_size=a["batch_size"], train=False)
    if a["patience"] is not None and val is None:
        raise ValueError(
            "--patience needs validation data (--val-data, --val-fraction or a split column)"
        )
    cfg = TrainConfig(
        epochs=a["epochs"],
        batch_size=a["batch_size"],
        base_lr=a["lr"],
        warmup_epochs=min(a["warmup_epochs"], a["epochs"]),
        warmup_start_lr=a["lr"] / 10,
        weight_decay=a["weight_decay"],
        avs_weight=a["avs_weight"],
        seed=a["seed"],
        device=a["device"],
        amp=a["amp"],
        steps_per_epoch=a["steps_per_epoch"],
    )
    preprocessing = PreprocessConfig(
        num_frames=sampling.num_frames,
        sampling_rate=sampling.sampling_rate,
        target_fps=sampling.target_fps,
        alpha=mcfg.alpha,
        crop_size=a["crop_size"],
        short_side=a["crop_size"],  # eval view: the whole short-side square resized to the crop
        test_crop_size=a["crop_size"],
    )
    out: Path = a["out"]
    _same_freeze_on_resume(out, frozen, a["resume"])
    trainer = Trainer(
        model, ClipPreprocessor(preprocessing), cfg, out, progress=a["progress"],
        console=console, patience=a["patience"],
    )  # fmt: skip
    (out / "run.json").write_text(
        json.dumps(
            {
                "arch": a["arch"],
                "overrides": {
                    k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()
                },
                "data": str(data),
                "val_data": str(a["val_data"]) if a["val_data"] else None,
                "train_config": cfg.to_dict(),
                "preprocessing": preprocessing.to_dict(),
                "labels": names,
                "source": source_info,
                "init": str(a["init"]) if a["init"] else None,
                "freeze": frozen,
                "patience": a["patience"],
                "audio_dropout": a["audio_dropout"],
            },
            indent=2,
        )
    )
    if a["resume"] and trainer.resume("last"):
        console.print(f"resumed at epoch {trainer.state.epoch}, step {trainer.state.step}")
    state = trainer.fit(train, val)
    console.print(f"done: {state.epoch} epochs, {state.step} steps, best top-1 {state.best_top1}")
    if trainer.stalled():
        console.print(f"stopped early: no better val top-1 since epoch {state.best_epoch}")
    if a["package"]:
        if state.best_top1 is not None:
            trainer.load_weights("best")
        model.eval()
        head_name = a["head"] or labels.get("dataset") or mcfg.heads[0].name
        heads = [replace(h, name=head_name) for h in mcfg.heads] if len(mcfg.heads) == 1 else None
        path = save_package(
            out / "package",
            model,
            heads=heads,
            name=a["name"] or f"avsynth-{a['arch']}",
            version=a["version"] or f"seed{a['seed']}-e{state.epoch}",
            labels=names or None,
            preprocessing=preprocessing,
            extra_metadata={"trained_on": str(data), "val_top1": state.best_top1},
        )
        console.print(f"package written to {path}")


def _same_freeze_on_resume(out: Path, frozen: list[str], resume: bool) -> None:
    """A resumed run keeps its frozen stages (the optimiser state only fits that set)."""
    run_json = out / "run.json"
    if not (resume and (out / "checkpoints" / "last.json").is_file() and run_json.is_file()):
        return
    before = json.loads(run_json.read_text()).get("freeze") or []
    if before != frozen:
        raise AvserveError(
            f"{out} was trained with --freeze {','.join(before) or '(nothing)'}; resume with the "
            "same stages, or start a new --out",
            code="invalid_request",
        )


@train_app.command("glance")
def glance(
    heavy: Path = typer.Option(..., help="Heavy model package the glance serves (the teacher)."),
    data: Path = typer.Option(
        ..., help="Long videos: an AVSynth set, class folders, a list or a plain folder."
    ),
    videos_dir: Path | None = typer.Option(
        None, help="Root of a list's relative paths (default: the list's folder)."
    ),
    out: Path = typer.Option(..., "--out", help="Run directory (cache, log, package)."),
    short_data: Path | None = typer.Option(None, help="Extra short clips (class evidence)."),
    short_limit: int = typer.Option(300, min=1, help="Short clips used at most."),
    val_data: Path | None = typer.Option(None, help="Long videos to report metrics on."),
    config: str = typer.Option("tiny", help="Glance size: tiny | default."),
    num_snippets: int = typer.Option(
        24, min=2, help="Snippets T per video (24: one inside every 2 s event of a 60 s video)."
    ),
    rho: float = typer.Option(0.8, min=0.05, max=1.0, help="Patch side / frame short side."),
    override: list[str] = typer.Option([], help="GlanceConfig override key=value (repeat)."),
    epochs: int = typer.Option(40, min=1),
    batch_size: int = typer.Option(16, min=1),
    lr: float = typer.Option(2e-3, min=0.0),
    crops: int = typer.Option(3, min=1, help="Teacher crops per snippet window."),
    limit: int | None = typer.Option(None, min=1, help="Use the first N videos only."),
    steps_per_epoch: int | None = typer.Option(None, min=1, help="Cap steps per epoch."),
    threads: int | None = typer.Option(None, help="torch intra-op threads."),
    seed: int = typer.Option(0, min=0),
    cache_dir: Path | None = typer.Option(None, help="Default: <out>/cache."),
    progress: bool = typer.Option(True),
) -> None:
    """Train the glance network of a heavy package by distillation; writes <out>/package."""
    console = Console(stderr=True)
    try:
        _train_glance(**locals())
    except (AvserveError, ValueError, KeyError) as err:
        msg = err.message if isinstance(err, AvserveError) else str(err)
        console.print(f"[red]error[/red] {msg}")
        raise typer.Exit(2) from err


def _train_glance(**a: Any) -> None:
    import numpy as np
    import torch
    from rich.progress import Progress

    from models import load_package
    from models.glance import glance_cost
    from offline.glance import distill as gt
    from offline.glance.data import (
        TeacherConfig,
        build_glance_set,
        snippet_spec_of,
        video_records,
    )

    console: Console = a["console"]
    if a["threads"]:
        torch.set_num_threads(a["threads"])
    out: Path = a["out"]
    out.mkdir(parents=True, exist_ok=True)
    heavy = load_package(a["heavy"])
    cfg = gt.GlanceTrainConfig(
        config=a["config"], num_snippets=a["num_snippets"], rho=a["rho"],
        overrides=_parse_overrides(a["override"]), epochs=a["epochs"],
        batch_size=a["batch_size"], lr=a["lr"], seed=a["seed"],
        steps_per_epoch=a["steps_per_epoch"],
    )  # fmt: skip
    torch.manual_seed(a["seed"])
    net = gt.build_glance(heavy, cfg)
    cost = glance_cost(net.cfg, k=4)
    console.print(
        f"glance: {cost.params} params, {cost.total_gmacs:.3f} GMACs/video (T={cost.snippets}, K=4)"
    )
    spec, teacher = snippet_spec_of(net.cfg), TeacherConfig(crops=a["crops"])
    cache: Path = a["cache_dir"] or out / "cache"

    def load(d: Path, limit: int | None, what: str) -> Any:
        n = len(video_records(d, videos_dir=a["videos_dir"]))
        with Progress(console=console, disable=not a["progress"]) as bar:
            task = bar.add_task(f"{what}: snippets + teacher", total=min(n, limit or n))
            return build_glance_set(
                d, heavy, spec, cache, teacher, limit=limit,
                on_progress=lambda _: bar.advance(task), videos_dir=a["videos_dir"],
            )  # fmt: skip

    t0 = time.perf_counter()
    train = load(a["data"], a["limit"], "train")
    if a["short_data"] is not None:
        train = train.concat(load(a["short_data"], a["short_limit"], "short"))
    val = load(a["val_data"], None, "val") if a["val_data"] is not None else None
    cache_s = time.perf_counter() - t0
    labels_file = a["data"] / "labels.json"
    flip = (
        json.loads(labels_file.read_text()).get("flip_label_map") if labels_file.is_file() else None
    )
    (out / "train_log.jsonl").unlink(missing_ok=True)
    t0 = time.perf_counter()
    with Progress(console=console, disable=not a["progress"]) as bar:
        task = bar.add_task("train glance", total=None)

        def tick(step: int, total: int, losses: dict[str, float]) -> None:
            bar.update(task, completed=step, total=total, description=f"loss {losses['total']:.3f}")

        log = gt.train_glance(
            net, train, cfg, flip_map=None if flip is None else np.asarray(flip),
            val=val, log_path=out / "train_log.jsonl", on_step=tick,
        )  # fmt: skip
    train_s = time.perf_counter() - t0
    info = {
        "trained_on": str(a["data"]), "videos": len(train), "config": gt.config_record(cfg),
        "cache_seconds": round(cache_s, 1), "train_seconds": round(train_s, 1),
        "final": {k: v for k, v in log[-1].items() if k in ("train", "val")},
    }  # fmt: skip
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n")
    path = gt.write_glance_package(out / "package", heavy, net, info)
    console.print(f"cache {cache_s:.0f} s, training {train_s:.0f} s; final {info['final']}")
    console.print(f"package written to {path}")


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(train_app, name="train")


@train_app.command("calibrate")
def calibrate(
    package: Path = typer.Option(..., help="Package whose first head is calibrated (in place)."),
    data: Path = typer.Option(..., help="Validation set (manifest.jsonl), never the test set."),
    target: float = typer.Option(
        0.02, min=0.0, max=1.0, help="Largest share of class clips the rules may refuse."
    ),
    limit: int | None = typer.Option(None, min=1, help="Use the first N clips only."),
    threads: int | None = typer.Option(None, help="torch intra-op threads."),
    workers: int = typer.Option(1, min=1, help="Decode threads."),
    json_out: bool = typer.Option(False, "--json", help="Print the fitted rules as JSON."),
) -> None:
    """Fit temperature scaling and the abstention threshold; store them in config.json."""
    import torch

    from offline.calibration import CalibrationConfig, calibrate_package

    console = Console(stderr=True)
    if threads:
        torch.set_num_threads(threads)
    try:
        cfg = CalibrationConfig(target_false_abstention=target, workers=workers, limit=limit)
        report = calibrate_package(package, data, cfg)
    except (AvserveError, ValueError, KeyError) as err:
        msg = err.message if isinstance(err, AvserveError) else str(err)
        console.print(f"[red]error[/red] {msg}")
        raise typer.Exit(2) from err
    if json_out:
        print(json.dumps(report, indent=2))
        return
    m = report["metrics"]
    console.print(
        f"head {report['head']}: temperature {report['temperature']}, min_confidence "
        f"{report['min_confidence']}, ECE {m['ece_before']} -> {m['ece']}, false abstention "
        f"{m['false_abstention']}, background abstention {m['background_abstention']}"
    )
