"""Freezing stages for fine-tuning (``avserve train avslowfast --freeze`` / ``--freeze-until``).

Stages are the network's top-level blocks in input-to-output order (``conv1``, ``res2`` ...
``res5``, ``head``); a pathway inside one can be named too (``res2.audio``). Freezing up to
``resN`` also freezes the lateral fusions that feed stage N+1 (``fast_to_slow.resN``,
``audio_to_fastslow.resN``), which belong to that depth. A frozen module's parameters stop
receiving gradients (SGD then skips them, weight decay included) and its batch-norm layers keep
their running statistics (the module is kept in eval mode during training), as in the usual
"freeze the backbone" fine-tuning recipes.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from service.errors import AvserveError

STAGES = ("conv1", "res2", "res3", "res4", "res5")
_FUSIONS = ("fast_to_slow", "audio_to_fastslow")


def stages_until(last: str) -> list[str]:
    """``conv1`` .. ``last`` plus the fusions after them (``--freeze-until res3``)."""
    if last not in STAGES:
        raise AvserveError(
            f"--freeze-until {last!r}: one of {', '.join(STAGES)}", code="invalid_request"
        )
    upto = STAGES[: STAGES.index(last) + 1]
    return [*upto, *(f"{f}.{s}" for f in _FUSIONS for s in upto)]


def _keep_eval(module: nn.Module, _: object) -> None:
    module.train(False)  # Trainer.train_step calls model.train(): re-freeze BN statistics


def freeze(model: nn.Module, names: Sequence[str]) -> list[str]:
    """Freeze the named submodules of ``model``; returns the names frozen (missing ones error).

    Names that do not exist in this architecture (e.g. a fusion of a visual-only model) are an
    error when given explicitly, and skipped when they came from ``stages_until``.
    """
    modules = dict(model.named_modules())
    frozen = []
    for name in names:
        module = modules.get(name)
        if module is None:
            if any(name.startswith(f) for f in _FUSIONS):
                continue
            known = ", ".join(n for n in modules if n and n.count(".") <= 1)
            raise AvserveError(
                f"--freeze {name!r}: no such stage (known: {known})", code="invalid_request"
            )
        for p in module.parameters():
            p.requires_grad_(False)
        for sub in module.modules():  # on each norm layer: parents may not be called directly
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                sub.register_forward_pre_hook(_keep_eval)
        frozen.append(name)
    return frozen


def trainable_fraction(model: nn.Module) -> float:
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / max(total, 1)
