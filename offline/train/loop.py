"""The training loop: epochs over batches of uint8 clips, checkpoints, resume, JSON-lines log.

Batches are mappings ``{"frames": uint8 [B,T,S,S,3], "audio": float32 [B,N], "label": int64 [B]}``
with an optional ``"audio_negative"`` float32 [B,N] (misaligned audio for the AV-sync loss).
The preprocessor (``models.preprocess.ClipPreprocessor``) runs on the training device, so the
data side only ships bytes. The model gets the inputs named by ``model.input_names``, so the
same loop trains AV, visual-only and audio-only configs. CPU and GPU run the same code.

Files in ``run_dir``::

    train_log.jsonl                    one JSON object per line: step / epoch / eval events
    checkpoints/<tag>.safetensors      model weights (tag: last, best)
    checkpoints/<tag>.state.pt         optimiser / scaler / RNG state (plain tensors and dicts,
                                       loaded with ``torch.load(weights_only=True)``)
    checkpoints/<tag>.json             TrainState, TrainConfig, model config, metrics
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from offline.train.recipe import TrainConfig, make_optimizer
from offline.train.sync_curriculum import hard_share, loss_weights, mix_negatives

Batch = Mapping[str, Tensor]
EpochHook = Callable[["Trainer", int, dict[str, Any]], None]


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimisation steps taken in total
    step_in_epoch: int = 0  # steps taken in the current, unfinished epoch (mid-epoch resume)
    best_top1: float | None = None
    best_epoch: int | None = None


class Trainer:
    """Trains ``model`` with the SlowFast recipe; see the module docstring for the data contract."""

    def __init__(
        self,
        model: nn.Module,
        preprocessor: nn.Module,
        config: TrainConfig,
        run_dir: str | Path,
        *,
        hooks: Iterable[EpochHook] = (),
        patience: int | None = None,
        progress: bool = True,
        console: Console | None = None,
    ) -> None:
        self.cfg = config
        self.device = torch.device(config.device)
        if config.amp and self.device.type != "cuda":
            raise ValueError("amp (float16 autocast) is only supported on CUDA devices")
        torch.manual_seed(config.seed)
        self.model = model.to(self.device)
        self.preprocessor = preprocessor.to(self.device)
        self.input_names: tuple[str, ...] = tuple(
            getattr(model, "input_names", ("slow", "fast", "audio"))
        )
        self.optimizer = make_optimizer(self.model, config)
        self.schedule = config.schedule()
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp)
        self.state = TrainState()
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.run_dir / "train_log.jsonl"
        self.hooks = list(hooks)
        # early stopping: end fit() after this many epochs without a better val top-1; derived
        # from the saved state (best_epoch), so a resumed run stops where the first one would
        self.patience = patience
        self.show_progress = progress
        self.console = console or Console(stderr=True)
        self.last_eval: dict[str, Any] = {}
        self._head = self._first_head_slice()

    # ---- inputs -----------------------------------------------------------------------------
    def _first_head_slice(self) -> slice:
        """Single-label training uses the first head's logits (AVSynth has one head)."""
        heads = getattr(getattr(self.model, "config", None), "heads", None)
        return slice(0, heads[0].num_classes) if heads else slice(None)

    def _to_device(self, t: Tensor) -> Tensor:
        return t.to(self.device, non_blocking=True)

    def model_inputs(self, batch: Batch) -> list[Tensor]:
        """Preprocess a batch on the device and order the tensors as the model wants them."""
        with torch.no_grad():
            x = self.preprocessor(self._to_device(batch["frames"]), self._to_device(batch["audio"]))
        named = x._asdict() if hasattr(x, "_asdict") else dict(x)
        return [named[n] for n in self.input_names]

    def _negative_logmel(self, batch: Batch, epoch_float: float) -> Tensor:
        negative = mix_negatives(
            batch["audio"], batch["audio_negative"], hard_share(self.cfg, epoch_float)
        )
        with torch.no_grad():
            x = self.preprocessor(self._to_device(batch["frames"]), self._to_device(negative))
        return x.audio if hasattr(x, "audio") else x["audio"]

    # ---- one step ---------------------------------------------------------------------------
    def set_lr(self, epoch_float: float) -> float:
        lr = self.schedule(epoch_float)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def train_step(self, batch: Batch, epoch_float: float) -> dict[str, float]:
        self.model.train()
        lr = self.set_lr(epoch_float)
        inputs = self.model_inputs(batch)
        labels = _targets(self._to_device(batch["label"]))
        use_avs = (
            self.cfg.avs_weight > 0
            and "audio_negative" in batch
            and "audio" in self.input_names
            and "slow" in self.input_names
            and getattr(self.model, "sync", None) is not None
        )
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.cfg.amp):
            avs: Tensor | None = None
            if use_avs:
                forward_train: Callable[..., Any] = getattr(self.model, "forward_train")  # noqa: B009
                negative = self._negative_logmel(batch, epoch_float)
                out = forward_train(*inputs, audio_negative=negative)
                logits, avs = out.logits, out.avs_loss
            else:
                logits = self.model(*inputs)
            logits = logits[:, self._head].float()
            ce = _loss(logits, labels, self.cfg.label_smoothing)
            ce_weight, avs_weight = loss_weights(self.cfg, epoch_float)
            if avs is None:
                loss = ce
            else:  # CE left out (not zero-weighted) in the sync-only phase: no head update
                loss = avs_weight * avs.float() + (ce_weight * ce if ce_weight else 0.0)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {self.state.step}")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.cfg.grad_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        acc = _hits(logits, labels).float().mean().item()
        return {
            "loss": loss.item(),
            "ce": ce.item(),
            "avs": float(avs.item()) if avs is not None else 0.0,
            "acc": acc,
            "lr": lr,
            "batch": float(labels.numel()),
        }

    # ---- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, batches: Iterable[Batch]) -> dict[str, Any]:
        """Top-1, mean cross-entropy and per-class accuracy over ``batches`` (eval mode)."""
        self.model.eval()
        preds, labels, losses = [], [], []
        for batch in batches:
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.cfg.amp):
                logits = self.model(*self.model_inputs(batch))[:, self._head].float()
            y = _targets(self._to_device(batch["label"]))
            losses.append(_loss(logits, y, 0.0, reduction="sum").item())
            preds.append(logits.argmax(1).cpu())
            labels.append(y.cpu())
        if not labels:
            return {"top1": float("nan"), "loss": float("nan"), "count": 0, "per_class": []}
        p, y = torch.cat(preds), torch.cat(labels)
        multi = y.dim() == 2  # multi-label: a hit is a top-1 among the clip's positives
        hit = y.gather(1, p[:, None])[:, 0] > 0 if multi else p == y
        n_cls = y.shape[1] if multi else self._head.stop or int(y.max().item()) + 1
        per_class = []
        for c in range(n_cls):
            m = y[:, c] > 0 if multi else y == c
            per_class.append(
                float((hit[m] if multi else p[m] == c).float().mean()) if m.any() else None
            )
        return {
            "top1": float(hit.float().mean()),
            "loss": sum(losses) / len(y),
            "count": len(y),
            "per_class": per_class,
        }

    # ---- the loop ---------------------------------------------------------------------------
    def fit(self, train: Iterable[Batch], val: Iterable[Batch] | None = None) -> TrainState:
        """Run the remaining epochs (after ``resume``, continues where the checkpoint stopped)."""
        steps = self._steps_per_epoch(train)
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=not self.show_progress,
        )
        with progress:
            for epoch in range(self.state.epoch, self.cfg.epochs):
                if self.stalled():
                    self._log({"event": "early_stop", "epoch": self.state.epoch,
                               "best_epoch": self.state.best_epoch,
                               "best_top1": self.state.best_top1})  # fmt: skip
                    break
                if hasattr(train, "set_epoch"):
                    train.set_epoch(epoch)  # data order/augmentation are a function of the epoch
                task = progress.add_task(
                    f"epoch {epoch + 1}/{self.cfg.epochs}", total=steps, info=""
                )
                progress.advance(task, self.state.step_in_epoch)
                self._run_epoch(train, epoch, steps, progress, task)
                self.state.epoch, self.state.step_in_epoch = epoch + 1, 0
                metrics: dict[str, Any] = {}
                if (
                    val is not None
                    and self.cfg.eval_every
                    and (epoch + 1) % self.cfg.eval_every == 0
                ):
                    metrics = self.evaluate(val)
                    self.last_eval = metrics
                    self._log({"event": "eval", "epoch": epoch + 1, **metrics})
                    top1 = metrics["top1"]
                    if not math.isnan(top1) and (
                        self.state.best_top1 is None or top1 > self.state.best_top1
                    ):
                        self.state.best_top1, self.state.best_epoch = top1, epoch + 1
                        self.save_checkpoint("best")
                for hook in self.hooks:
                    hook(self, epoch + 1, metrics)
                self.save_checkpoint("last")
        return self.state

    def stalled(self) -> bool:
        """True once ``patience`` epochs have passed since the best validation top-1."""
        best = self.state.best_epoch
        return (
            self.patience is not None
            and best is not None
            and (self.state.epoch - best >= self.patience)
        )

    def _steps_per_epoch(self, train: Iterable[Batch]) -> int:
        n = self.cfg.steps_per_epoch
        if hasattr(train, "__len__"):
            length = len(train)  # type: ignore[arg-type]
            n = length if n is None else min(n, length)
        if not n:
            raise ValueError("the batch source has no len(); set TrainConfig.steps_per_epoch")
        return n

    def _run_epoch(
        self, train: Iterable[Batch], epoch: int, steps: int, progress: Progress, task: Any
    ) -> None:
        tick = time.perf_counter()
        window: list[dict[str, float]] = []
        for i, batch in enumerate(train):
            if i >= steps:
                break
            if i < self.state.step_in_epoch:
                continue  # already trained on before the checkpoint we resumed from
            m = self.train_step(batch, epoch + i / steps)
            self.state.step += 1
            self.state.step_in_epoch = i + 1
            window.append(m)
            progress.update(task, advance=1, info=f"loss {m['loss']:.3f} lr {m['lr']:.4f}")
            if len(window) == self.cfg.log_every or i + 1 == steps:
                elapsed = time.perf_counter() - tick
                n = sum(w["batch"] for w in window)
                self._log(
                    {
                        "event": "train",
                        "epoch": epoch + 1,
                        "step": self.state.step,
                        "lr": m["lr"],
                        **{
                            k: sum(w[k] for w in window) / len(window)
                            for k in ("loss", "ce", "avs", "acc")
                        },
                        "clips_per_s": n / max(elapsed, 1e-9),
                    }
                )
                window, tick = [], time.perf_counter()
            every = self.cfg.checkpoint_every_steps
            if every and self.state.step % every == 0 and i + 1 < steps:
                self.save_checkpoint("last")

    # ---- log / checkpoints ------------------------------------------------------------------
    def _log(self, record: dict[str, Any]) -> None:
        record = {"time": time.time(), **record}
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def save_checkpoint(self, tag: str = "last") -> Path:
        """Write ``<tag>.safetensors``, ``<tag>.state.pt`` and ``<tag>.json`` atomically."""
        base = self.ckpt_dir / tag
        weights = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        extra: dict[str, Any] = {
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            extra["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        model_cfg: Any = getattr(self.model, "config", None)
        meta = {
            "state": asdict(self.state),
            "train_config": self.cfg.to_dict(),
            "model_config": model_cfg.to_dict() if hasattr(model_cfg, "to_dict") else None,
            "input_names": list(self.input_names),
            "last_eval": self.last_eval,
        }
        _atomic(base.with_suffix(".safetensors"), lambda p: save_file(weights, str(p)))
        _atomic(base.with_suffix(".state.pt"), lambda p: torch.save(extra, p))
        _atomic(base.with_suffix(".json"), lambda p: p.write_text(json.dumps(meta, indent=2)))
        return base.with_suffix(".safetensors")

    def load_weights(self, tag: str = "best") -> None:
        """Load only the model weights of checkpoint ``tag`` (e.g. the best one, to export it)."""
        path = (self.ckpt_dir / tag).with_suffix(".safetensors")
        self.model.load_state_dict(load_file(str(path), device=str(self.device)))

    def resume(self, tag: str = "last") -> bool:
        """Load ``<tag>`` from ``run_dir`` if it exists; True when something was restored."""
        base = self.ckpt_dir / tag
        if not base.with_suffix(".json").is_file():
            return False
        self.model.load_state_dict(
            load_file(str(base.with_suffix(".safetensors")), device=str(self.device))
        )
        extra = torch.load(base.with_suffix(".state.pt"), map_location="cpu", weights_only=True)
        self.optimizer.load_state_dict(extra["optimizer"])
        self.scaler.load_state_dict(extra["scaler"])
        torch.set_rng_state(extra["torch_rng"])
        if "cuda_rng" in extra and self.device.type == "cuda":
            torch.cuda.set_rng_state(extra["cuda_rng"], self.device)
        meta = json.loads(base.with_suffix(".json").read_text())
        self.state = TrainState(**meta["state"])
        self.last_eval = meta.get("last_eval") or {}
        self._log({"event": "resume", "tag": tag, **asdict(self.state)})
        return True


def _targets(labels: Tensor) -> Tensor:
    """int64 class indices [B], or float multi-hot targets [B, C] of a multi-label set."""
    return labels.float() if labels.dim() == 2 else labels.long()


def _loss(logits: Tensor, labels: Tensor, smoothing: float, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy, or per-class sigmoid BCE for multi-hot targets (multi-label heads;
    summed over classes, so ``reduction`` acts per clip like the cross-entropy's)."""
    if labels.dim() == 2:
        bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none").sum(1)
        return bce.sum() if reduction == "sum" else bce.mean()
    return F.cross_entropy(logits, labels, label_smoothing=smoothing, reduction=reduction)


def _hits(logits: Tensor, labels: Tensor) -> Tensor:
    """Top-1 correct per clip: the argmax is the label, or one of the positives (multi-label)."""
    top = logits.argmax(1)
    if labels.dim() == 2:
        return labels.gather(1, top[:, None])[:, 0] > 0
    return top == labels


def _atomic(path: Path, write: Callable[[Path], object]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)
