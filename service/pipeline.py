"""The classify pipeline shared by the CLI, the HTTP API and queue workers.

media in -> probe -> glance snippets -> policy -> clip windows + crops -> heavy model (through
an ``InferFn``: the dynamic batcher in the server, a direct runtime call in the CLI) -> fused
scores -> ``ClassifyResult``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from models import ModelPackage
from service import tracing
from service.aggregate import (
    SCORE_DECIMALS,
    average_views,
    fuse_windows,
    glance_only,
    layout_heads,
    top_k,
    window_readings,
)
from service.compute_cost import CostBook
from service.errors import AvserveError, CapacityError
from service.executor import model_thread
from service.glance import GlanceRunner
from service.media.types import (
    ClipBatch,
    ClipSpec,
    GlanceSnippets,
    MediaInfo,
)
from service.notices import answer_warnings, audio_state
from service.pipeline_config import PipelineConfig
from service.pipeline_ports import Decoder, NullObserver, PipelineObserver
from service.policies import (
    DensePolicy,
    Geometry,
    GlancePolicy,
    HeuristicPolicy,
    PlanRequest,
    Policy,
    UniformPolicy,
    WindowPlan,
)
from service.schemas import (
    ClassifyOptions,
    ClassifyResult,
    ComputeSummary,
    InferFn,
    ModelRef,
    PolicyName,
    Priority,
    SaliencyPoint,
    VideoSummary,
    WindowOut,
)
from service.verdict import judge, pool_audio_groups

STAGES = ("probe", "glance_decode", "glance_net", "saliency", "clip_decode", "heavy_net")
# Planning time is a stage of its own only where it is real work: the glance network, or the
# heuristic's saliency from decoded snippets (uniform and dense windows are arithmetic).
_PLAN_STAGE = {"glance": "glance_net", "heuristic": "saliency"}


class Pipeline:
    def __init__(
        self,
        package: ModelPackage,
        decoder: Decoder,
        infer: InferFn,
        config: PipelineConfig = PipelineConfig(),
        observer: PipelineObserver | None = None,
    ) -> None:
        self.package = package
        self.decoder = decoder
        self.infer = infer
        self.config = config
        self.observer: PipelineObserver = observer or NullObserver()
        pre = package.config.preprocessing
        self.geometry = Geometry(
            clip=ClipSpec(**pre.clip_spec()),  # type: ignore[arg-type]
            short_side=pre.short_side,
            test_crop_size=pre.test_crop_size,
        )
        self.layout = layout_heads(
            [(h.name, package.labels[h.name], h.multi_label) for h in package.heads],
            package.config.calibration,
        )
        glance_net = package.glance_model()
        self.glance = None if glance_net is None else GlanceRunner(glance_net, config.glance_device)
        # Weight of the glance head in the fused logits (chosen with the glance; notes: 0.3).
        self.glance_beta = self.glance.cfg.fusion_beta if self.glance else 0.0
        self.costs = CostBook(
            package.model.config, self.glance.cfg if self.glance else None, config.cost_cache_dir
        )
        self.policies: dict[str, Policy] = {
            "uniform": UniformPolicy(),
            "dense": DensePolicy(),
            "heuristic": HeuristicPolicy(config.policy),
        }
        if self.glance is not None:
            self.policies["glance"] = GlancePolicy(
                config.policy,
                self.glance,
                default_rho=package.glance_patch_rho() or self.glance.cfg.rho,
            )

    @property
    def default_policy(self) -> PolicyName:
        if self.config.default_policy is not None:
            return self.config.default_policy
        return "glance" if self.glance is not None else "heuristic"

    # -- costs -------------------------------------------------------------------------------
    def heavy_gmacs(self, crop: int) -> float:
        """Multiply-adds of one heavy clip at ``crop`` squared (counted once, see compute_cost)."""
        return self.costs.heavy(crop)

    def glance_gmacs(self, k: int) -> float:
        """Glance cost of one video: all snippets through the encoders + AV-TeST, K patches located."""
        return self.costs.glance(k) if self.glance is not None else 0.0

    def dense30_gmacs(self) -> float:
        return 30 * self.heavy_gmacs(self.geometry.test_crop_size)

    async def _count_costs(self, plan: WindowPlan) -> None:
        """Count what the answer will report, off the loop, when no earlier process did."""
        crops = [plan.crop_size, self.geometry.test_crop_size]
        ks = [len(plan.windows)] if plan.policy == "glance" else []
        if self.costs.missing(crops, ks):
            await model_thread().run(self._fill_costs, crops, ks)

    def _fill_costs(self, crops: list[int], ks: list[int]) -> None:
        for crop in crops:
            self.heavy_gmacs(crop)
        for k in ks:
            self.glance_gmacs(k)

    # -- classify ----------------------------------------------------------------------------
    async def classify(
        self,
        path: Path,
        options: ClassifyOptions,
        *,
        priority: Priority = Priority.INTERACTIVE,
        deadline: float | None = None,
    ) -> ClassifyResult:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        policy = self._policy(options.policy)
        k = options.k or self.config.policy.default_k

        with self._stage("probe", timings, deadline):
            info = await self.decoder.probe(path)

        snippets = None
        if policy.uses_snippets:
            spec = (
                self.glance.snippet_spec
                if policy.name == "glance" and self.glance
                else self.config.snippets
            )
            with self._stage("glance_decode", timings, deadline):
                snippets = await self.decoder.snippets(path, info, spec)

        request = PlanRequest(info=info, geometry=self.geometry, k=k, snippets=snippets)
        plan_stage = _PLAN_STAGE.get(policy.name)
        if plan_stage is None:
            plan = policy.plan(request)
        else:
            with self._stage(plan_stage, timings, deadline):
                # The glance network is torch: on the model thread (service.executor); the
                # heuristic's numpy saliency needs no model and takes a plain thread.
                run = model_thread().run if policy.name == "glance" else asyncio.to_thread
                plan = await run(policy.plan, request)

        clips_meta: list[ClipBatch] = []
        logits = await self._run_windows(path, info, plan, priority, deadline, timings, clips_meta)
        with tracing.span(
            "fusion", {"avserve.policy": plan.policy, "avserve.k": len(plan.windows)}
        ):
            probs = self._fuse(plan, logits)
        timings["total"] = time.perf_counter() - t0
        decode_s = timings.get("glance_decode", 0.0) + timings.get("clip_decode", 0.0)
        audio = audio_state(info, snippets, clips_meta)
        self.observer.observe_video(info.duration_s, decode_s, audio == "present")
        if audio != "present":  # the picture alone cannot tell sound-defined classes apart
            probs = {h.name: pool_audio_groups(probs[h.name], h) for h in self.layout}
        await self._count_costs(plan)
        result = self._result(
            info, options, plan, probs, clips_meta, timings, snippets=snippets, logits=logits
        )
        result.verdicts = {
            h.name: judge(
                probs[h.name],
                h,
                audio_usable=audio == "present",
                min_confidence=options.min_confidence,
            )
            for h in self.layout
        }
        for head, verdict in result.verdicts.items():
            self.observer.observe_verdict(self.package.name, head, verdict.reason)
        return result

    def _policy(self, name: PolicyName | None) -> Policy:
        name = name or self.default_policy
        if name not in self.policies:
            raise AvserveError(
                f"model {self.package.name!r} has no trained glance network; "
                "use policy 'heuristic', 'uniform' or 'dense'",
                code="invalid_request",
            )
        return self.policies[name]

    @contextlib.contextmanager
    def _stage(
        self, name: str, timings: dict[str, float], deadline: float | None
    ) -> Iterator[None]:
        if deadline is not None and time.monotonic() > deadline:
            raise CapacityError(f"deadline exceeded before {name}", code="deadline_exceeded")
        start = time.perf_counter()
        try:
            with tracing.span(name):
                yield
        except AvserveError as exc:  # e.g. code timeout on a decode stage: alerted on
            self.observer.observe_stage_error(name, exc.code)
            raise
        finally:
            elapsed = time.perf_counter() - start
            timings[name] = timings.get(name, 0.0) + elapsed
            self.observer.observe_stage(name, elapsed)

    async def _run_windows(
        self,
        path: Path,
        info: MediaInfo,
        plan: WindowPlan,
        priority: Priority,
        deadline: float | None,
        timings: dict[str, float],
        clips_meta: list[ClipBatch],
    ) -> np.ndarray | None:
        if not plan.windows:
            return None
        spec = replace(self.geometry.clip, crop_size=plan.crop_size)
        step = self.config.dense_chunk if plan.dense else len(plan.windows)
        parts = []
        for i in range(0, len(plan.windows), step):
            with self._stage("clip_decode", timings, deadline):
                clips = await self.decoder.clips(path, info, plan.windows[i : i + step], spec)
            with self._stage("heavy_net", timings, deadline):
                parts.append(
                    await self.infer(
                        {"frames": clips.frames, "audio": clips.audio}, priority, deadline
                    )
                )
            # Keep only the metadata: the frames are not needed once classified.
            clips_meta.append(
                ClipBatch(
                    frames=np.empty(0, np.uint8),
                    audio=np.empty(0, np.float32),
                    windows=clips.windows,
                    audio_present=clips.audio_present,
                    decoded_frames=clips.decoded_frames,
                    audio_silent=clips.audio_silent,
                    decode_errors=clips.decode_errors,
                    coverage=clips.coverage,
                )
            )
        return np.concatenate(parts, axis=0)

    def _fuse(self, plan: WindowPlan, logits: np.ndarray | None) -> dict[str, np.ndarray]:
        if logits is None:
            if plan.glance_logits is None:
                raise AvserveError("no window was classified", code="internal")
            return glance_only(plan.glance_logits, self.layout)
        if plan.dense:
            return average_views(logits, self.layout)
        return fuse_windows(logits, plan.weights, self.layout, plan.glance_logits, self.glance_beta)

    def _result(
        self,
        info: MediaInfo,
        options: ClassifyOptions,
        plan: WindowPlan,
        probs: dict[str, np.ndarray],
        clips: list[ClipBatch],
        timings: dict[str, float],
        *,
        snippets: GlanceSnippets | None = None,
        logits: np.ndarray | None = None,
    ) -> ClassifyResult:
        resolved = [w for batch in clips for w in batch.windows]
        readings = (
            window_readings(logits, self.layout) if logits is not None else [None] * len(resolved)
        )
        windows = [
            WindowOut(
                start_s=round(r.start_s, 4),
                end_s=round(r.end_s, 4),
                saliency=round(float(w), SCORE_DECIMALS),
                box=r.box.as_list(),
                padded=r.padded,
                heads=seen.top if seen else None,
                evidence=seen.evidence if seen else None,
            )
            for r, w, seen in zip(resolved, plan.weights, readings, strict=True)
        ]
        k = len(plan.windows)
        heavy = k * self.heavy_gmacs(plan.crop_size) if k else 0.0
        glance = self.glance_gmacs(k) if plan.policy == "glance" else 0.0
        dense = self.dense30_gmacs()
        labels = self.package.labels
        return ClassifyResult(
            model=ModelRef(name=self.package.name, version=self.package.version),
            policy=plan.policy,
            k=k,
            heads={name: top_k(p, labels[name], options.top_k) for name, p in probs.items()},
            windows=windows if options.return_windows else None,
            saliency=snippet_saliency(plan, snippets) if options.return_saliency else None,
            audio=audio_state(info, snippets, clips),
            padded=any(r.padded for r in resolved),
            early_exit=plan.early_exit,
            video=VideoSummary(
                duration_s=round(info.duration_s, 4),
                width=info.video.width,
                height=info.video.height,
                fps=info.video.fps,
                container=info.container,
            ),
            timings_ms={name: round(1000 * s, 3) for name, s in timings.items()},
            compute=ComputeSummary(
                gmacs=round(heavy + glance, 4),
                glance_gmacs=round(glance, 4),
                heavy_gmacs=round(heavy, 4),
                dense30_gmacs=round(dense, 4),
                fraction_of_dense=round((heavy + glance) / dense, 5) if dense else 0.0,
            ),
            warnings=answer_warnings(
                audio=audio_state(info, snippets, clips),
                snippets=snippets,
                clips=clips,
                policy=plan.policy,
                k_requested=options.k,
                k_used=k,
            ),
        )


def snippet_saliency(
    plan: WindowPlan, snippets: GlanceSnippets | None
) -> list[SaliencyPoint] | None:
    """The policy's score of every snippet (None when the policy scores no snippets)."""
    scores = plan.extra.get("snippet_saliency")
    if snippets is None or scores is None:
        return None
    return [
        SaliencyPoint(t_s=round(float(t), 4), score=round(float(s), SCORE_DECIMALS))
        for t, s in zip(snippets.times_s, scores, strict=True)
    ]
