"""Pooled features of a frozen backbone for every sample, computed once and cached.

Images are read through the shared ``DecodePipeline`` with the model's own preprocessing
and run through the backbone under ``inference_mode`` (a ``TorchBackend`` over the pooled
output, so running out of memory halves the batch as it does for classification). Each
image's features are cached by the SHA-256 of its bytes (``Sample.digest``), so a second
run, with any other options, decodes nothing.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import dataclass

import numpy as np

from ..data.images import ImageProblem
from ..data.pipeline import DecodePipeline
from ..jobs import NEVER, CancelToken, Progress, RateMeter
from ..models import checksums
from . import network
from .feature_cache import FeatureCache, cache_key

CHUNK_IMAGES = 256  # images per cache file: what a cancel can lose at most
VIEWS = ("plain", "flip")  # "flip": the horizontally mirrored image


@dataclass(frozen=True)
class Features:
    """Features per view (N, D) float32, rows in the order of the samples given."""

    views: dict  # view name -> ndarray
    problems: tuple[tuple[int, str], ...]  # (sample index, reason): rows left as zeros
    decoded: int  # images decoded (0 when everything was cached)

    @property
    def plain(self) -> np.ndarray:
        return self.views["plain"]


def caches_for(spec, views: Sequence[str] = ("plain",)) -> dict[str, FeatureCache]:
    path = network.weights_file(spec)
    digest = (checksums.remembered_sha256(path) if path else None) or "no-weights-file"
    describe = {"model": spec.key, "weights_sha256": digest}
    return {
        view: FeatureCache(
            cache_key(spec.key, digest, spec.preprocess.to_dict(), view),
            spec.feature_dim,
            describe={**describe, "view": view},
        )
        for view in views
    }


def extract(
    spec,
    samples: Sequence,
    *,
    model=None,
    device: str = "cpu",
    batch_size: int | None = None,
    views: Sequence[str] = ("plain",),
    cancel: CancelToken = NEVER,
) -> Generator[Progress, None, Features]:
    """Job: features of every sample (``Sample.path``/``.digest``), from the cache or computed.

    ``model`` is the pretrained network (loaded here when missing and needed).
    """
    caches = caches_for(spec, views)
    known = {view: cache.load() for view, cache in caches.items()}
    wanted = list(dict.fromkeys(s.digest for s in samples))
    todo = [d for d in wanted if any(d not in known[v] for v in views)]
    problems: dict[str, str] = {}
    if todo:
        by_digest = {s.digest: s.path for s in samples}
        model = model if model is not None else network.load_pretrained(spec)
        computed = yield from _compute(
            spec, model, [(d, by_digest[d]) for d in todo], caches, device, batch_size, cancel
        )
        for view in views:
            known[view].update(computed[view])
        problems = computed["problems"]
        for cache in caches.values():
            cache.compact()
    yield Progress(len(wanted), len(wanted), "Features ready", "images")
    out = {}
    for view in views:
        rows = known[view]
        zero = np.zeros(spec.feature_dim, np.float32)
        out[view] = np.stack([rows.get(s.digest, zero) for s in samples]).astype(np.float32)
    bad = tuple((i, problems[s.digest]) for i, s in enumerate(samples) if s.digest in problems)
    return Features(out, bad, len(todo))


def _compute(spec, model, todo, caches, device, batch_size, cancel):
    """Decode and run ``todo`` [(digest, path)]; writes a cache chunk every CHUNK_IMAGES."""
    from ..runtime.backend import RunState
    from ..runtime.torch_backend import TorchBackend

    backend = TorchBackend(spec, device, model=network.feature_extractor(model, device))
    state = RunState(batch_size or backend.default_batch_size())
    pipeline = DecodePipeline.for_preprocess(spec.preprocess, look_ahead=2 * state.batch_size)
    meter = RateMeter(len(todo), "images")
    out = {view: {} for view in caches}
    out["problems"] = {}
    pending: list[tuple[str, object]] = []
    unsaved: list[str] = []
    digests = [d for d, _ in todo]
    paths = [p for _, p in todo]
    with closing(pipeline.run(paths, cancel)) as decoded:
        for index, (_, item) in enumerate(decoded):
            if isinstance(item, ImageProblem):
                out["problems"][digests[index]] = item.reason
            else:
                pending.append((digests[index], item))
            last = index == len(todo) - 1
            if pending and (len(pending) >= state.batch_size or last):
                cancel.raise_if_cancelled()
                _run_batch(backend, state, pending, out, caches)
                unsaved += [d for d, _ in pending]
                pending = []
            if len(unsaved) >= CHUNK_IMAGES or (last and unsaved):
                _save(caches, out, unsaved)
                unsaved = []
            yield meter.progress(index + 1, f"Features of {index + 1} of {len(todo)} images")
    return out


def _run_batch(backend, state, pending, out, caches) -> None:
    import torch

    batch = torch.stack([t for _, t in pending])
    for view in caches:
        x = batch if view == "plain" else torch.flip(batch, dims=[-1])
        rows = backend.run(x, state).numpy().astype(np.float32)
        for (digest, _), row in zip(pending, rows, strict=True):
            out[view][digest] = row


def _save(caches, out, digests) -> None:
    for view, cache in caches.items():
        cache.save(digests, np.stack([out[view][d] for d in digests]))
