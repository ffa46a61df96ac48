"""What runs on the Ray workers: the decode step, the model actors and their roster.

``decode_batch`` is the CPU task of the pipeline: it decodes each path with
``DecodePipeline.decode``, the one decode function every job in the app uses (draft
JPEG decoding, the pixel budget, problems as values), into the model's input. A file
that cannot be used becomes a row with its reason; nothing here raises for a bad file.

``ModelWorker`` is the callable class of the actor pool: it receives the model package
by reference, checks and writes it to a private folder, loads it with the app's own
backend, and turns each batch into top-k indices and probabilities with the same
``probabilities`` and ``top_indices`` as ``Classifier``. Only those few numbers travel
back, not the logits.

Given ``shards`` (a Parquet job's folder, see ``core.runtime.results_shards``), each actor
also writes its batch's rows as one shard there and names it in the batch's ``shard``
column; a shard it cannot write comes back unnamed, for the driver to write.

``Roster`` is a tiny actor (no CPU) that every model actor reports its handle to, so an
operator (or the actor-kill test) can see and stop the model actors of a running job.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..core.data.images import ImageProblem
from ..core.data.pipeline import DecodePipeline, draft_target
from ..core.models.zoo import Preprocess
from ..core.runtime.backend import RunState, as_numpy
from ..core.runtime.classifier import ImageResult, Prediction, probabilities, top_indices
from .package import ModelPackage

log = logging.getLogger(__name__)

ROSTER_PREFIX = "effnet_app_roster_"


def _pipeline(preprocess: Preprocess, wants: str) -> DecodePipeline:
    """The decode pipeline ``Classifier.pipeline`` makes for a backend wanting ``wants``."""
    transform = preprocess.apply_numpy if wants == "numpy" else preprocess.apply
    return DecodePipeline(transform, target_size=draft_target(preprocess), threads=1)


class Decoder:
    """The decode step: ``{"path"}`` in; ``{"path", "problem", "pixels"}`` out.

    ``pixels`` is float32 (N, 3, crop, crop); a problem row has zeros there and its
    reason in ``problem`` (empty text for a decoded image).
    """

    def __init__(self, preprocess: dict, wants: str = "numpy") -> None:
        self.pipeline = _pipeline(Preprocess.from_dict(preprocess), wants)
        crop = int(preprocess["crop_size"])
        self.shape = (3, crop, crop)

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["path"]]
        pixels = np.zeros((len(paths), *self.shape), dtype=np.float32)
        problems = []
        for row, path in enumerate(paths):
            item = self.pipeline.decode(path)
            if isinstance(item, ImageProblem):
                problems.append(item.reason)
            else:
                pixels[row] = as_numpy(item)
                problems.append("")
        return {"path": np.array(paths, dtype=object), "problem": np.array(problems, dtype=object),
                "pixels": pixels}  # fmt: skip


def decode_batch(batch: dict, preprocess: dict, wants: str = "numpy") -> dict:
    """The CPU decode task (a plain function, so Ray runs it as tasks, not an actor).

    Only the preprocessing numbers travel with each task, never the model.
    """
    return Decoder(preprocess, wants)(batch)


class ModelWorker:
    """One model actor: the package loaded once, then batches of pixels to top-k."""

    def __init__(
        self,
        package_ref,
        top_k: int,
        device: str = "cpu",
        threads: int | None = None,
        roster: str | None = None,
        shards: dict | None = None,
    ) -> None:
        import ray

        package = ray.get(package_ref[0]) if isinstance(package_ref, list) else package_ref
        self.package: ModelPackage = package
        self.top_k = int(top_k)
        self.folder = Path(tempfile.mkdtemp(prefix="effnet_app_model_"))
        from .package import make_backend

        self.backend = make_backend(package, self.folder, device, threads)
        self.backend.load()
        self.state = RunState(1 << 30)
        self.shards = shards
        if roster:
            _report(roster)

    def __call__(self, batch: dict) -> dict:
        problems = [str(p) for p in batch["problem"]]
        ok = np.array([not p for p in problems], dtype=bool)
        count, k = len(problems), self.top_k
        index = np.full((count, k), -1, dtype=np.int32)
        prob = np.zeros((count, k), dtype=np.float64)
        unsure = np.zeros(count, dtype=bool)
        if ok.any():
            pixels = np.ascontiguousarray(np.asarray(batch["pixels"])[ok], dtype=np.float32)
            logits = as_numpy(self.backend.run(self._input(pixels), self.state))
            probs = probabilities(logits, self.package.temperature)
            top = top_indices(probs, k)
            index[ok, : top.shape[1]] = top
            prob[ok, : top.shape[1]] = np.take_along_axis(probs, top, axis=1)
            if self.package.unknown_threshold is not None:
                unsure[ok] = probs.max(axis=1) < self.package.unknown_threshold
        out = {"path": batch["path"], "problem": batch["problem"], "top_index": index,
               "top_prob": prob, "unsure": unsure}  # fmt: skip
        out["shard"] = np.full(count, self._store(out), dtype=object)
        return out

    def _store(self, out: dict) -> str:
        """Write the batch's shard, when the job asked for shards: its name ("" if not)."""
        if not self.shards:
            return ""
        from ..core.runtime.results_shards import write_shard

        shards = self.shards
        results = batch_results(out, shards["categories"])
        try:
            written = write_shard(shards["folder"], results, shards["top_k"], shards["unsure"])
        except Exception:  # noqa: BLE001 - the driver writes it (and says why, if it fails too)
            log.warning("could not write a shard in %s", shards["folder"], exc_info=True)
            return ""
        return written.name if written is not None else ""

    def _input(self, pixels: np.ndarray):
        if self.package.wants == "numpy":
            return pixels
        import torch

        return torch.from_numpy(pixels)

    def __del__(self) -> None:
        shutil.rmtree(getattr(self, "folder", ""), ignore_errors=True)


def batch_results(batch: dict, categories) -> list[ImageResult]:
    """A model batch (``ModelWorker``'s columns) as ``ImageResult`` rows."""
    rows = []
    for i, path in enumerate(batch["path"]):
        problem = str(batch["problem"][i])
        if problem:
            rows.append(ImageResult(Path(str(path)), problem=problem))
            continue
        predictions = tuple(
            Prediction(categories[int(j)], float(p), int(j))
            for j, p in zip(batch["top_index"][i], batch["top_prob"][i], strict=True)
            if j >= 0
        )
        unsure = bool(batch["unsure"][i])
        rows.append(ImageResult(Path(str(path)), predictions, unsure=unsure))
    return rows


def _report(roster: str) -> None:
    """Tell the job's roster this actor's handle (best effort: a missing roster is fine)."""
    import ray

    try:
        handle = ray.get_runtime_context().current_actor
        ray.get_actor(roster).add.remote(handle)
    except Exception:  # noqa: BLE001 - the roster is for operators; the job goes on
        log.debug("could not report to roster %s", roster, exc_info=True)


class Roster:
    """The handles of a job's model actors (restarted actors report again: kept once)."""

    def __init__(self) -> None:
        self.handles: dict[str, object] = {}

    def add(self, handle) -> None:
        self.handles[handle._actor_id.hex()] = handle

    def members(self) -> list:
        return list(self.handles.values())
