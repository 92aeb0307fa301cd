"""The named AVSlowFast configurations: the released checkpoints' architectures, the tiny
AVSynth network, their single-modality ablations and the paper's fusion variants.

``get_config(name)`` and ``list_configs()`` are the registry; ``models.configs`` holds the
dataclasses themselves.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from models.configs import DEPTH_BLOCKS, AVSlowFastConfig, HeadSpec

_NO_FUSION = (False, False, False, False)
_NO_AVS = (False, False, False, False, False)
_8X8: dict[str, Any] = {"slow_frames": 8, "alpha": 4, "fusion_kernel": 7, "audio_alpha": 16}

_REGISTRY: dict[str, AVSlowFastConfig] = {
    # The released AVSlowFast 4x16 R50 (configs/Kinetics/AVSLOWFAST_4x16_R50.yaml).
    "avslowfast_r50_4x16": AVSlowFastConfig(name="avslowfast_r50_4x16"),
    # 8x8: 8 Slow frames at alpha 4 (SlowFast 8x8 recipe: lateral kernel 7); 16 log-mel/frame.
    "avslowfast_r50_8x8": AVSlowFastConfig(name="avslowfast_r50_8x8", **_8X8),
    "avslowfast_r101_8x8": AVSlowFastConfig(
        name="avslowfast_r101_8x8", depth=101, blocks=DEPTH_BLOCKS[101], **_8X8
    ),
    # Visual-only SlowFast 4x16 R50: F->S after pool1, res2, res3 and res4.
    "slowfast_r50_4x16": AVSlowFastConfig(
        name="slowfast_r50_4x16",
        pathways=("slow", "fast"),
        fs_fusion=(True, True, True, True),
        afs_fusion=_NO_FUSION,
        avs_stages=_NO_AVS,
        drop_pathway=0.0,
    ),
    # The Audio pathway alone with its own head.
    "audionet_r50": AVSlowFastConfig(
        name="audionet_r50",
        pathways=("audio",),
        fs_fusion=_NO_FUSION,
        afs_fusion=_NO_FUSION,
        avs_stages=_NO_AVS,
        drop_pathway=0.0,
    ),
    # A real AVSlowFast (all pathways, F->S, A->FS, AV-sync) small enough for CPU tests.
    "avslowfast_tiny": AVSlowFastConfig(
        name="avslowfast_tiny",
        blocks=(1, 1, 1, 1),
        width_per_group=8,
        beta_inv=4,
        afs_dim=16,
        avs_proj_dim=16,
        crop_size=64,
        heads=(HeadSpec("kinetics", 10),),
    ),
}
# SlowFast 8x8 (alpha 4: 8 Slow / 32 Fast frames), the PyTorchVideo hub and PySlowFast
# SLOWFAST_8x8 recipe. The lateral kernel is 7 for R50 and 5 for R101, as in PyTorchVideo's
# `slowfast_r50` / `slowfast_r101` (the only public SlowFast R101 8x8 Kinetics weights).
_SF_8X8: dict[str, Any] = {"slow_frames": 8, "alpha": 4, "audio_alpha": 16}
_SF = _REGISTRY["slowfast_r50_4x16"]
_REGISTRY["slowfast_r50_8x8"] = replace(_SF, name="slowfast_r50_8x8", fusion_kernel=7, **_SF_8X8)
_REGISTRY["slowfast_r101_8x8"] = replace(
    _SF, name="slowfast_r101_8x8", depth=101, blocks=DEPTH_BLOCKS[101], fusion_kernel=5, **_SF_8X8
)
# The tiny model's visual-only and audio-only ablations: same widths and depths, one modality.
_TINY = _REGISTRY["avslowfast_tiny"]
_REGISTRY["slowfast_tiny"] = replace(
    _TINY,
    name="slowfast_tiny",
    pathways=("slow", "fast"),
    afs_fusion=_NO_FUSION,
    avs_stages=_NO_AVS,
    drop_pathway=0.0,
)
_REGISTRY["audionet_tiny"] = replace(
    _TINY,
    name="audionet_tiny",
    pathways=("audio",),
    fs_fusion=_NO_FUSION,
    afs_fusion=_NO_FUSION,
    avs_stages=_NO_AVS,
    drop_pathway=0.0,
)

# The paper's fusion ablations (Table 5a: lateral type; Table 6: fusion stages), as configs of
# the tiny (AVSynth) and the released R50 4x16 networks. Only A->FS has AV-sync heads (they read
# its conv outputs), so the A->F->S and non-local variants train without them.
_RES5_AVS = (False, False, False, False, True)


def _fusion_variants(base: AVSlowFastConfig) -> dict[str, AVSlowFastConfig]:
    def variant(suffix: str, **kw: Any) -> tuple[str, AVSlowFastConfig]:
        return f"{base.name}_{suffix}", replace(base, name=f"{base.name}_{suffix}", **kw)

    return dict(
        (
            variant("a2f2s", av_fusion="a_f_s", avs_stages=_NO_AVS),
            variant("avnl", av_fusion="nonlocal", avs_stages=_NO_AVS),
            # Table 6 "pool5": late fusion only (the head's concat), no lateral from audio.
            variant("late", afs_fusion=_NO_FUSION, avs_stages=_RES5_AVS),
            variant(
                "fuse_res4",
                afs_fusion=(False, False, False, True),
                avs_stages=(False, False, False, True, True),
            ),
            # A->FS also after res2 (F->S stays after res3 and res4, as released).
            variant("fuse_res234", afs_fusion=(False, True, True, True)),
        )
    )


for _base in ("avslowfast_tiny", "avslowfast_r50_4x16"):
    _REGISTRY.update(_fusion_variants(_REGISTRY[_base]))


def list_configs() -> list[str]:
    return sorted(_REGISTRY)


def get_config(name: str) -> AVSlowFastConfig:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown model config {name!r}; known: {', '.join(list_configs())}"
        ) from None
