"""Run a trained glance network for one video's snippets (the ``glance`` policy's scorer)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.glance import GlanceNet, GlanceOutput
from service.executor import model_thread
from service.media.types import GlanceSnippets, SnippetSpec
from service.policies import GlanceScores


class GlanceRunner:
    """Eager inference of a GlanceNet on one device; callable from any thread.

    The glance network is ~2-3 GMACs per video, far below one heavy clip, so it runs eagerly
    next to the batcher rather than through a runtime of its own. Its torch calls run on the
    process's model thread (inline when the caller is already on it), which also serialises
    them with the heavy batches.
    """

    def __init__(self, net: torch.nn.Module, device: str | torch.device = "cpu") -> None:
        if not isinstance(net, GlanceNet):
            raise TypeError(f"expected a GlanceNet, got {type(net).__name__}")
        self.device = torch.device(device)
        net.eval().to(self.device)
        self.cfg = net.cfg
        self.net: GlanceNet = net
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
        return model_thread().call(self._score, snippets)

    def locate(self, scores: GlanceScores, indices: Sequence[int]) -> np.ndarray:
        return model_thread().call(self._locate, scores, list(indices))

    def _score(self, snippets: GlanceSnippets) -> GlanceScores:
        frames = torch.from_numpy(np.ascontiguousarray(snippets.frames))[None].to(self.device)
        audio = torch.from_numpy(np.ascontiguousarray(snippets.audio, dtype=np.float32))[None]
        present = torch.tensor([snippets.audio_usable])  # silence counts as no audio
        with torch.inference_mode():
            out = self.net(frames, audio.to(self.device), audio_present=present)
        return GlanceScores(
            saliency=out.saliency[0].float().cpu().numpy(),
            logits=out.logits[0].float().cpu().numpy(),
            state=out,
        )

    def _locate(self, scores: GlanceScores, indices: list[int]) -> np.ndarray:
        out: GlanceOutput = scores.state
        idx = torch.tensor([indices], dtype=torch.long, device=self.device)
        with torch.inference_mode():
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
            # numpy, not torch: this runs on the caller's thread (see service.executor).
            z = scores.logits[start : start + head.num_classes].astype(np.float64)
            e = np.exp(z - z.max())
            probs.append(float(e.max() / e.sum()))
            start += head.num_classes
        return min(probs)
