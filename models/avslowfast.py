"""The AVSlowFast network (Xiao et al. 2020), laid out like the paper's Table 1.

Stages are attributes named after the table rows: ``conv1`` (stem + pool1), ``res2`` .. ``res5``,
each a ``ModuleDict`` over the pathways present (``slow``, ``fast``, ``audio``). Laterals live in
``fast_to_slow`` / ``audio_to_fastslow`` keyed by the stage they follow (the A->F->S and
non-local variants use ``audio_to_fast`` / ``av_nonlocal`` instead of ``audio_to_fastslow``); training-only parts
(AV-sync) live in ``sync`` so inference weights are everything else.

Shapes for ``avslowfast_r50_4x16`` at crop 224 (B = batch)::

    input   slow [B,3,4,224²]      fast [B,3,32,224²]      audio [B,1,128,80]
    conv1   [B,64,4,56²]           [B,8,32,56²]            [B,32,128,80]   (no pool on audio)
    res2    [B,256,4,56²]          [B,32,32,56²]           [B,128,128,80]
    res3    [B,512,4,28²]          [B,64,32,28²]           [B,256,64,40]
      fuse  Slow ++ F→S (128 ch) = 640 channels, + A→FS (640 ch, broadcast over H×W)
    res4    [B,1024,4,14²]         [B,128,32,14²]          [B,512,32,20]
      fuse  Slow ++ F→S (256 ch) = 1280 channels, + A→FS (1280 ch)
    res5    [B,2048,4,7²]          [B,256,32,7²]           [B,1024,16,10]
    head    pool + concat 2048+256+1024 = 3328 -> dropout -> linear -> logits [B, classes]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
from torch import Tensor, nn

from models.blocks import AudioStem, Bottleneck, Norm, TFBlock, VideoStem, audio_stage, video_stage
from models.configs import FUSION_POINTS, STAGES, AVSlowFastConfig, HeadSpec
from models.fusion import AudioToFastSlow, AudioVisualNonLocal, FastToSlow
from models.head import MultiPathwayHead
from models.named_configs import get_config
from models.sync import DropPathway, SyncModules, forward_with_sync

TRAINING_ONLY_PREFIX = "sync."


@dataclass
class TrainOutput:
    """What ``forward_train`` returns: logits plus the AV-sync loss (None when not computed)."""

    logits: Tensor
    avs_loss: Tensor | None
    avs_losses: dict[str, Tensor] = field(default_factory=dict)
    dropped_audio: bool = False


class AVSlowFast(nn.Module):
    """Slow, Fast and Audio pathways with F→S and A→FS laterals; any subset per config.

    ``forward(*inputs)`` takes the tensors named by ``input_names`` positionally and returns
    logits ``[B, config.total_classes]``.
    """

    def __init__(self, config: AVSlowFastConfig, *, training_parts: bool = True) -> None:
        super().__init__()
        self.config = config
        self.input_names: tuple[str, ...] = config.input_names
        norm = Norm(config.bn_eps, config.bn_momentum)
        c = config

        self.conv1 = nn.ModuleDict()
        if c.has_visual:
            self.conv1["slow"] = VideoStem(
                c.stage_width("slow", "conv1"), c.slow_temporal_kernels[0], norm
            )
            self.conv1["fast"] = VideoStem(
                c.stage_width("fast", "conv1"), c.fast_temporal_kernels[0], norm
            )
        if c.has_audio:
            self.conv1["audio"] = AudioStem(c.stage_width("audio", "conv1"), norm)

        stages = self._build_stages(norm)
        self.res2, self.res3, self.res4, self.res5 = (stages[s] for s in STAGES)

        self.fast_to_slow = nn.ModuleDict()
        self.audio_to_fastslow = nn.ModuleDict()
        # Empty unless config.av_fusion selects them: the released model's keys are unchanged.
        self.audio_to_fast = nn.ModuleDict()
        self.av_nonlocal = nn.ModuleDict()
        for i, point in enumerate(FUSION_POINTS):
            stage = "conv1" if point == "pool1" else point
            if c.fs_fusion[i]:
                self.fast_to_slow[point] = FastToSlow(
                    c.stage_width("fast", stage),
                    c.fusion_conv_ratio,
                    c.fusion_kernel,
                    c.alpha,
                    norm,
                )
            if c.afs_fusion[i]:
                self._add_audio_fusion(point, stage, norm)

        self.head = MultiPathwayHead(
            [c.stage_width(p, "res5") for p in c.pathways], c.total_classes, c.dropout
        )
        self.drop_pathway = DropPathway(c.drop_pathway)
        self.sync = SyncModules(c, norm) if training_parts and any(c.avs_stages) else None
        self.reset_parameters()

    def _add_audio_fusion(self, point: str, stage: str, norm: Norm) -> None:
        c = self.config
        dim_audio, stride = c.stage_width("audio", stage), c.audio_fusion_stride(point)
        if c.av_fusion == "a_f_s":
            self.audio_to_fast[point] = AudioToFastSlow(
                dim_audio, c.afs_dim, c.stage_width("fast", stage), c.afs_kernel, stride, norm
            )
        elif c.av_fusion == "nonlocal":
            width = c.slow_width_after(point)
            self.av_nonlocal[point] = AudioVisualNonLocal(
                width, dim_audio, width // 2, c.afs_kernel, stride, norm
            )
        else:
            self.audio_to_fastslow[point] = AudioToFastSlow(
                dim_audio, c.afs_dim, c.slow_width_after(point), c.afs_kernel, stride, norm
            )

    def _build_stages(self, norm: Norm) -> dict[str, nn.ModuleDict]:
        c = self.config
        dim_in = {p: c.stage_width(p, "conv1") for p in c.pathways}
        if c.has_visual:
            dim_in["slow"] = c.slow_width_after("pool1")
        stages: dict[str, nn.ModuleDict] = {}
        for k, stage in enumerate(STAGES):
            mods = nn.ModuleDict()
            for p in c.pathways:
                widths = {
                    "dim_in": dim_in[p],
                    "dim_out": c.stage_width(p, stage),
                    "dim_inner": c.inner_width(p, stage),
                    "num_blocks": c.blocks[k],
                }
                if p == "audio":
                    mods[p] = audio_stage(
                        **widths,
                        stride=1 if k == 0 else c.audio_stride,
                        time_frequency=k < c.audio_tf_stages,
                        norm=norm,
                    )
                else:
                    kernels = c.slow_temporal_kernels if p == "slow" else c.fast_temporal_kernels
                    mods[p] = video_stage(
                        **widths,
                        temporal_kernel=kernels[k + 1],
                        spatial_stride=1 if k == 0 else 2,
                        norm=norm,
                    )
                dim_in[p] = c.stage_width(p, stage)
            if c.has_visual and stage != "res5":
                dim_in["slow"] = c.slow_width_after(stage)
            stages[stage] = mods
        return stages

    def reset_parameters(self) -> None:
        """Official init: MSRA convs, unit BN, zero-init last BN of each block, N(0, 0.01) FCs."""
        for m in self.modules():
            if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.bn_c.weight)
            elif isinstance(m, TFBlock | AudioVisualNonLocal):
                nn.init.zeros_(m.bn_out.weight)

    # ---- parameters ----------------------------------------------------------------------
    def inference_state_dict(self) -> dict[str, Tensor]:
        """State dict without training-only (``sync.*``) entries."""
        return {
            k: v for k, v in self.state_dict().items() if not k.startswith(TRAINING_ONLY_PREFIX)
        }

    def num_parameters(self, *, inference_only: bool = False) -> int:
        return sum(
            p.numel()
            for n, p in self.named_parameters()
            if not (inference_only and n.startswith(TRAINING_ONLY_PREFIX))
        )

    def strip_training_parts(self) -> AVSlowFast:
        """Drop the AV-sync modules (for serving/export); returns self."""
        self.sync = None
        return self

    # ---- forward -------------------------------------------------------------------------
    def forward(self, *inputs: Tensor, drop_audio: bool | None = None) -> Tensor:
        """conv1 → fuse → res2 → fuse → res3 → fuse → res4 → fuse → res5 → head.

        ``drop_audio`` skips every A→FS addition (DropPathway); None draws it, which only ever
        drops in training mode.
        """
        x = self._named_inputs(inputs)
        add_audio = not (self.drop_pathway.sample() if drop_audio is None else drop_audio)
        x = self.fuse("pool1", self.stage("conv1", x), add_audio=add_audio)
        x = self.fuse("res2", self.stage("res2", x), add_audio=add_audio)
        x = self.fuse("res3", self.stage("res3", x), add_audio=add_audio)
        x = self.fuse("res4", self.stage("res4", x), add_audio=add_audio)
        x = self.stage("res5", x)
        return self.head([x[p] for p in self.input_names])

    def stage(self, name: str, x: dict[str, Tensor]) -> dict[str, Tensor]:
        """Run one Table 1 row (``conv1``, ``res2`` .. ``res5``) on every pathway present."""
        layers = getattr(self, name)
        return {p: layers[p](x[p]) for p in self.input_names}

    def fuse(self, point: str, x: dict[str, Tensor], *, add_audio: bool) -> dict[str, Tensor]:
        """The laterals after ``point``: Slow ++ F→S, then (unless dropped) Slow + A→FS.

        The variants: A→F→S adds audio to Fast *before* F→S; the non-local block replaces
        the A→FS sum. A dropped pathway skips them all (the paper sums zeros).
        """
        if add_audio and point in self.audio_to_fast:
            x["fast"] = x["fast"] + self.audio_to_fast[point](x["audio"])
        if point in self.fast_to_slow:
            x["slow"] = self.fast_to_slow[point](x["slow"], x["fast"])
        if add_audio and point in self.audio_to_fastslow:
            x["slow"] = x["slow"] + self.audio_to_fastslow[point](x["audio"])
        if add_audio and point in self.av_nonlocal:
            x["slow"] = self.av_nonlocal[point](x["slow"], x["audio"])
        return x

    def forward_train(self, *inputs: Tensor, audio_negative: Tensor | None = None) -> TrainOutput:
        """Training forward: one DropPathway draw, and the AV-sync loss when negatives are given.

        ``audio_negative`` ``[B, 1, T_a, F]``: misaligned log-mel for each clip (row i pairs with
        clip i); the sync forward itself is ``models.sync.forward_with_sync``.
        """
        dropped = self.drop_pathway.sample()
        if audio_negative is None:
            return TrainOutput(self(*inputs, drop_audio=dropped), None, {}, dropped)
        x = self._named_inputs(inputs)
        logits, losses = forward_with_sync(self, x, audio_negative, dropped=dropped)
        total = torch.stack(list(losses.values())).sum() if losses else None
        return TrainOutput(logits, total, losses, dropped)

    def _named_inputs(self, inputs: tuple[Tensor, ...]) -> dict[str, Tensor]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"expected inputs {self.input_names}, got {len(inputs)} tensors")
        x = dict(zip(self.input_names, inputs, strict=True))
        c = self.config
        if c.has_visual:
            slow, fast = x["slow"], x["fast"]
            if slow.dim() != 5 or fast.dim() != 5 or slow.shape[1] != 3 or fast.shape[1] != 3:
                raise ValueError("slow and fast must be [B, 3, T, H, W]")
            if fast.shape[2] != c.alpha * slow.shape[2]:
                raise ValueError(f"fast must have alpha={c.alpha} times the slow frames")
        if c.has_audio:
            audio = x["audio"]
            if audio.dim() != 4 or audio.shape[1] != 1:
                raise ValueError("audio must be a log-mel [B, 1, T_a, F]")
            if c.has_visual and tuple(audio.shape[2:]) != (c.audio_frames, c.mel_bins):
                raise ValueError(f"audio must be [B, 1, {c.audio_frames}, {c.mel_bins}]")
            if c.has_visual and x["slow"].shape[2] != c.slow_frames:
                raise ValueError(f"slow must have {c.slow_frames} frames to fuse audio")
        return x


def build_model(
    name: str,
    num_classes: int | None = None,
    heads: tuple[HeadSpec, ...] | list[HeadSpec] | None = None,
    *,
    training_parts: bool = True,
    **overrides: object,
) -> AVSlowFast:
    """Build a named config; ``overrides`` replace config fields (e.g. ``width_per_group=16``).

    ``heads`` replaces the heads; ``num_classes`` alone resizes the config's single first head.
    """
    config = get_config(name)
    if overrides:
        config = replace(config, **overrides)  # type: ignore[arg-type]
    if heads is not None:
        config = config.with_heads(tuple(heads))
    elif num_classes is not None:
        first = config.heads[0]
        config = config.with_heads((HeadSpec(first.name, num_classes, first.multi_label),))
    return AVSlowFast(config, training_parts=training_parts)
