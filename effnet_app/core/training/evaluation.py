"""``evaluate()``: how well a model the registry knows classifies a labelled folder.

Any model will do whose categories include every class name of the dataset (a trained
bundle, or a zoo model for folders named after ImageNet categories). The model is scored
on the dataset's classes only: its other categories are left out of the softmax, so a
zoo model is asked "which of these classes", as a bundle is.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from contextlib import closing

import numpy as np

from ..data.images import ImageProblem
from ..data.pipeline import DecodePipeline
from ..errors import ModelError
from ..jobs import NEVER, CancelToken, Progress, RateMeter
from ..models import registry
from .calibrate import expected_calibration_error
from .config import EvalResult
from .metrics import classification_report, softmax


def class_columns(spec, classes) -> list[int]:
    """The model's output index of each dataset class (exact name, else case-insensitive)."""
    exact = {name: i for i, name in enumerate(spec.categories)}
    folded = {name.casefold(): i for i, name in enumerate(spec.categories)}
    columns, missing = [], []
    for name in classes:
        index = exact.get(name, folded.get(str(name).casefold()))
        (missing.append(name) if index is None else columns.append(index))
    if missing:
        shown = ", ".join(f'"{m}"' for m in missing[:5])
        raise ModelError(
            f"{spec.name} does not know the classes {shown}. Choose a model trained on "
            "these classes, or rename the folders to its category names."
        )
    return columns


def evaluate(
    spec_or_key,
    dataset,
    device: str = "auto",
    cancel: CancelToken = NEVER,
    batch_size: int | None = None,
) -> Generator[Progress, None, EvalResult]:
    """Job: classify every sample of ``dataset`` and return the metrics."""
    from ..runtime.backend import RunState
    from ..runtime.torch_backend import TorchBackend

    spec = spec_or_key
    if isinstance(spec_or_key, (str, os.PathLike)):
        spec = registry.resolve(spec_or_key)
    columns = class_columns(spec, dataset.classes)
    yield Progress(0, len(dataset.samples), f"Loading {spec.name}…", "images")
    backend = TorchBackend(spec, device, registry.weights_path(spec))
    backend.load(cancel)
    state = RunState(batch_size or backend.default_batch_size())
    logits, rows, problems = yield from _classify(backend, state, spec, dataset, cancel)
    temperature = float(getattr(spec, "temperature", 1.0) or 1.0)
    probs = softmax(
        np.asarray(logits)[:, columns] if rows else np.zeros((0, len(columns))), temperature
    )
    labels = [dataset.samples[i].label for i in rows]
    report = classification_report(
        labels, probs, dataset.classes, [dataset.samples[i].path for i in rows]
    )
    return EvalResult(
        classes=tuple(dataset.classes),
        accuracy=report["accuracy"],
        baseline=report["baseline"],
        per_class=report["per_class"],
        confusion=report["confusion"],
        predictions=report["predictions"],
        problems=tuple(problems),
        ece=expected_calibration_error(probs, labels) if rows else None,
    )


def _classify(backend, state, spec, dataset, cancel):
    """(logits rows, sample indices, problems) for every sample, in batches."""
    import torch

    pipeline = DecodePipeline.for_preprocess(spec.preprocess, look_ahead=2 * state.batch_size)
    meter = RateMeter(len(dataset.samples), "images")
    logits, rows, problems, pending = [], [], [], []
    paths = [s.path for s in dataset.samples]
    with closing(pipeline.run(paths, cancel)) as decoded:
        for index, (path, item) in enumerate(decoded):
            if isinstance(item, ImageProblem):
                problems.append((str(path), item.reason))
            else:
                pending.append((index, item))
            if pending and (len(pending) >= state.batch_size or index == len(paths) - 1):
                cancel.raise_if_cancelled()
                out = backend.run(torch.stack([t for _, t in pending]), state)
                logits.extend(np.asarray(out.numpy(), dtype=np.float64))
                rows.extend(i for i, _ in pending)
                pending = []
                yield meter.progress(index + 1, f"Classified {index + 1} of {len(paths)}")
    return logits, rows, problems
