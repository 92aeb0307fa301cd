"""Run a trained glance network for one video's snippets (the ``glance`` policy's scorer)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch

from models.glance import GlanceNet, GlanceOutput
from service.media.types import GlanceSnippets, SnippetSpec
from service.policies import GlanceScores


class GlanceRunner:
    """Eager inference of a GlanceNet on one device; thread-safe (calls are serialised).

    The glance network is ~2-3 GMACs per video, far below one heavy clip, so it runs eagerly
    next to the batcher rather than through a runtime of its own.
    """

    def __init__(self, net: torch.nn.Module, device: str | torch.device = "cpu") -> None:
        if not isinstance(net, GlanceNet):
            raise TypeError(f"expected a GlanceNet, got {type(net).__name__}")
        self.device = torch.device(device)
        net.eval().to(self.device)
        self.cfg = net.cfg
        self.net: GlanceNet = net
        self._lock = threading.Lock()
        self._single_label = [not h.multi_label for h in self.cfg.heads]

    @property
    def snippet_spec(self) -> SnippetSpec:
        return SnippetSpec(
            num_snippets=self.cfg.num_snippets,
            frame_size=self.cfg.frame_size,
            audio_seconds=self.cfg.audio_seconds,
            audio_sample_rate=self.cfg.audio_features.sample_rate,
        )

    def score(self, snippets: GlanceSnippets) -> GlanceScores:
        frames = torch.from_numpy(np.ascontiguousarray(snippets.frames))[None].to(self.device)
        audio = torch.from_numpy(np.ascontiguousarray(snippets.audio, dtype=np.float32))[None]
        present = torch.tensor([snippets.audio_usable])  # silence counts as no audio
        with self._lock, torch.inference_mode():
            out = self.net(frames, audio.to(self.device), audio_present=present)
        return GlanceScores(
            saliency=out.saliency[0].float().cpu().numpy(),
            logits=out.logits[0].float().cpu().numpy(),
            state=out,
        )

    def locate(self, scores: GlanceScores, indices: Sequence[int]) -> np.ndarray:
        out: GlanceOutput = scores.state
        idx = torch.tensor([list(indices)], dtype=torch.long, device=self.device)
        with self._lock, torch.inference_mode():
            uv = self.net.locate(out, idx)
        result: np.ndarray = uv[0].float().cpu().numpy()
        return result

    def max_class_prob(self, scores: GlanceScores) -> float:
        """Confidence of the glance head: the least confident single-label head's top softmax.

        Multi-label heads never trigger an early exit (there is no single "confident" answer).
        """
        if scores.logits is None or not all(self._single_label):
            return 0.0
        probs = []
        start = 0
        for head in self.cfg.heads:
            z = torch.from_numpy(scores.logits[start : start + head.num_classes])
            probs.append(float(torch.softmax(z, dim=0).max()))
            start += head.num_classes
        return min(probs)
