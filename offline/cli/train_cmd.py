"""``avserve train``: ``avslowfast`` here; ``glance`` and ``calibrate`` in their own modules."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from offline.cli import calibrate_cmd, glance_cmd, patch_cmd
from offline.cli.overrides import parse_overrides
from service.errors import AvserveError

if TYPE_CHECKING:
    from offline.data.cache import Region

train_app = typer.Typer(help="Train models.", no_args_is_help=True)


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
    avs_stages: str | None = typer.Option(
        None, help="Hierarchical AV-sync heads, e.g. 'res3,res4,res5' (default: the config's)."
    ),
    avs_sync_only_epochs: float = typer.Option(
        0.0, min=0.0, help="Curriculum: epochs of AV-sync loss alone before CE joins."
    ),
    avs_hard_from: float = typer.Option(
        0.5, min=0.0, max=1.0, help="Share of training after which hard negatives join (paper)."
    ),
    avs_hard_share: float = typer.Option(
        0.25, min=0.0, max=1.0, help="Share of hard (same clip, shifted) negatives then."
    ),
    crop_size: int = typer.Option(112, min=16),
    sampling_rate: int = typer.Option(2, min=1, help="30 fps grid steps between Fast frames."),
    cache_side: int = typer.Option(128, min=16, help="Side of the cached square frames."),
    region: str = typer.Option("center", help="center (short split) or event (long split)."),
    mix: list[str] = typer.Option(
        [], help="Also train on this AVSynth set, as SET:REGION, e.g. long_train:views (repeat)."
    ),
    val_mix: list[str] = typer.Option(
        [], help="Also validate on this AVSynth set, as SET:REGION (repeat)."
    ),
    edge_views: int = typer.Option(
        0, min=0, help="Per long video of a :views mix, windows catching only an event's edge."
    ),
    edge_from_epoch: int = typer.Option(
        0, min=0, help="Curriculum: edge windows join training at this epoch (0: from the start)."
    ),
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
    from offline.data.cache import CacheConfig, CacheUnion, build_cache
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
    if a["edge_from_epoch"] >= a["epochs"]:
        raise ValueError("--edge-from-epoch must be below --epochs")
    mixes = {k: [_mix_spec(m) for m in a[k]] for k in ("mix", "val_mix")}
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
    overrides = parse_overrides(a["override"])
    if a["avs_stages"] is not None:
        from models.configs import SYNC_POINTS

        sync_at = {x.strip() for x in a["avs_stages"].split(",") if x.strip()}
        if sync_at - set(SYNC_POINTS):
            raise ValueError(f"--avs-stages takes {', '.join(SYNC_POINTS)}")
        overrides["avs_stages"] = tuple(p in sync_at for p in SYNC_POINTS)
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
        edge_views=a["edge_views"],
    )

    def cache_of(d: Path, region: Region | None = None, edge_views: int | None = None) -> Any:
        cfg = replace(
            cache_cfg,
            region=region or cache_cfg.region,
            edge_views=cache_cfg.edge_views if edge_views is None else edge_views,
        )
        where = (
            a["cache_dir"]
            if d == data and a["cache_dir"]
            else d / f".cache-{a['cache_side']}-{cfg.region}"
        )
        console.print(f"decoding {d} into {where} (once)")
        return build_cache(d, where, cfg, workers=a["workers"])

    def mixed(first: Any, extra: list[tuple[Path, Region]], edges_join: int = 0) -> Any:
        """``first`` + the mixes; with ``edges_join``, each :views mix's edge windows are a
        cache of their own that joins at that epoch (the rest of the views train throughout)."""
        caches, joins = [first], [0]
        for d, region in extra:
            if region == "views" and edges_join and a["edge_views"]:
                caches += [cache_of(d, region, edge_views=0), cache_of(d, "edges")]
                joins += [0, edges_join]
            else:
                caches.append(cache_of(d, region))
                joins.append(0)
        return CacheUnion(caches, joins) if len(caches) > 1 else first

    if sources is None:
        train_cache = mixed(cache_of(data), mixes["mix"], a["edge_from_epoch"])
        val_cache = None
        if a["val_data"] is not None:
            val_cache = mixed(cache_of(a["val_data"]), mixes["val_mix"])
        elif mixes["val_mix"]:
            raise ValueError("--val-mix needs --val-data")
        source_info = None
    elif mixes["mix"] or mixes["val_mix"]:
        raise ValueError("--mix and --val-mix take generated AVSynth sets, with one as --data")
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
        avs_sync_only_epochs=a["avs_sync_only_epochs"],
        avs_hard_from=a["avs_hard_from"],
        avs_hard_share=a["avs_hard_share"],
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
                "mix": a["mix"],
                "val_mix": a["val_mix"],
                "edge_views": a["edge_views"],
                "edge_from_epoch": a["edge_from_epoch"],
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


def _mix_spec(text: str) -> tuple[Path, Region]:
    """``SET:REGION`` -> (set directory, cache region); the set must be a generated one."""
    where, sep, region = text.rpartition(":")
    regions: dict[str, Region] = {"center": "center", "event": "event", "views": "views"}
    if not sep or region not in regions:
        raise ValueError(f"--mix {text!r}: give SET:REGION with REGION center, event or views")
    path = Path(where)
    if not (path / "manifest.jsonl").is_file():
        raise ValueError(f"--mix {text!r}: {path} is not a generated AVSynth set")
    return path, regions[region]


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


train_app.command("glance")(glance_cmd.glance)
train_app.command("calibrate")(calibrate_cmd.calibrate)
train_app.command("patch")(patch_cmd.patch)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(train_app, name="train")
