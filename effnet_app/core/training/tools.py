"""What the training wizard needs around ``train()``: time, choice, a try-out, the save.

- ``estimate``: how long head mode and a fine-tuning epoch will take, measured on a
  few of the user's own images on the chosen device (a guess from a table would be
  wrong by 10x between a laptop and a GPU).
- ``compare``: head mode on several bases, each point accuracy against speed.
- ``preview_classifier`` / ``try_images``: the trained network before it is saved,
  classifying exactly as the saved bundle will (folded, calibrated, same threshold).
- ``save_result``: the bundle as the CLI saves it; ``images_in_cell``: the files
  behind one cell of the confusion matrix.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Generator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from ..devices import resolve_device
from ..errors import DatasetError, WeightsError
from ..jobs import NEVER, CancelToken, Progress, relay
from ..models import registry
from . import network
from .config import TrainBatch, TrainConfig, TrainMessage, TrainPhase, TrainResult

MEASURED_IMAGES = 8  # images decoded and timed at most: a few seconds on a CPU
PREVIEW_KEY = "unsaved"
PREVIEW_NAME = "New model (not saved)"


@dataclass(frozen=True)
class Estimate:
    base: str  # zoo key
    device: str  # resolved, "cpu" / "cuda:0"
    ms_per_image: float  # inference (forward only, preprocessed batch), measured
    seconds_head: float  # head mode, whole run from an empty feature cache (≈ features pass)
    seconds_per_epoch: float  # finetune: one epoch (train step on N_train + forward on N_val)
    images_measured: int  # how many of the user's images were timed (<= 8)


@dataclass(frozen=True)
class ComparePoint:
    base: str
    name: str
    accuracy: float
    ms_per_image: float
    train_size: int
    val_size: int


# --------------------------------------------------------------------------- measuring
def _measured_samples(dataset) -> list:
    """Up to MEASURED_IMAGES samples spread over the dataset (so over its classes)."""
    samples = list(dataset.samples)
    step = max(1, len(samples) // MEASURED_IMAGES)
    return samples[::step][:MEASURED_IMAGES]


def _decode_batch(spec, samples, cancel: CancelToken):
    """(batch tensor, labels, seconds per image) of the samples that decode."""
    from ..data.images import ImageProblem
    from ..data.pipeline import DecodePipeline

    started = time.perf_counter()
    pipeline = DecodePipeline.for_preprocess(spec.preprocess)
    tensors, labels = [], []
    with closing(pipeline.run([s.path for s in samples], cancel)) as decoded:
        for sample, (_, item) in zip(samples, decoded, strict=True):
            if not isinstance(item, ImageProblem):
                tensors.append(item)
                labels.append(sample.label)
    if not tensors:
        raise DatasetError("None of the images tried could be read, so nothing was timed.")
    import torch

    seconds = (time.perf_counter() - started) / len(tensors)
    return torch.stack(tensors), torch.as_tensor(labels), seconds


def _timed(run, batch, *more) -> float:
    """Seconds per image of ``run(batch, *more)``, after a warm-up on two images.

    The warm-up picks kernels and fills caches; two images keep it cheap on a CPU.
    """
    import torch

    run(batch[:2], *(m[:2] for m in more))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    run(batch, *more)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - started) / len(batch)


def inference_ms(backend, batch) -> float:
    """Milliseconds per image of ``backend.run`` on ``batch`` (inference as classifying)."""
    return 1000.0 * _timed(backend.run, batch)


def _inference_backend(spec, model, device: str):
    """A ``TorchBackend`` over a folded, channels_last copy, as ``TorchBackend.load`` makes."""
    import torch

    from ..runtime.torch_backend import TorchBackend, fold_batch_norms

    folded = fold_batch_norms(copy.deepcopy(model).eval())
    folded = folded.to(device, memory_format=torch.channels_last)
    return TorchBackend(spec, device, model=folded)


def _train_step_seconds(spec, pretrained, batch, labels, n_classes: int, device: str) -> float:
    """Seconds per image of one fine-tuning step (the last stages and the head trainable)."""
    import torch

    from .finetune import _freeze_bn, _Trainer

    config = TrainConfig(base=spec.key, device=device, mode="finetune")
    head = torch.zeros(n_classes, spec.feature_dim)
    model = network.with_new_head(spec, pretrained, head, torch.zeros(n_classes))
    trainer = _Trainer(spec, model, config, device)  # param_groups: what phase 2 trains
    trainer.model.train()
    _freeze_bn(trainer.model)
    return _timed(trainer.step, batch, labels)


def _validation_size(dataset, val_fraction: float) -> int:
    n = len(dataset.samples)
    if dataset.fixed_val is not None:
        return len(dataset.fixed_val)
    return min(n - 1, max(len(dataset.classes), round(val_fraction * n)))


def estimate(
    base: str, dataset, device: str = "auto", val_fraction: float = 0.2, cancel=NEVER
) -> Generator[Progress, None, Estimate]:
    """Job: load the base network, decode up to 8 of ``dataset.samples``, time one
    warm-up and then a forward batch and a forward+backward batch; scale to the size.
    """
    spec = network.base_spec(base)
    device = resolve_device(device)
    if not dataset.samples:
        raise DatasetError("There are no images to time; add some to each class.")
    yield Progress(0, 4, "Reading a few of your images…", "steps")
    batch, labels, decode_s = _decode_batch(spec, _measured_samples(dataset), cancel)
    cancel.raise_if_cancelled()
    yield Progress(1, 4, f"Loading {spec.name}…", "steps")
    pretrained = network.load_pretrained(spec)
    cancel.raise_if_cancelled()
    yield Progress(2, 4, f"Timing {spec.name} on {device}…", "steps")
    ms = inference_ms(_inference_backend(spec, pretrained, device), batch)
    cancel.raise_if_cancelled()
    yield Progress(3, 4, "Timing a fine-tuning step…", "steps")
    step_s = _train_step_seconds(spec, pretrained, batch, labels, len(dataset.classes), device)
    yield Progress(4, 4, "Timed", "steps")
    n = len(dataset.samples)
    n_val = _validation_size(dataset, val_fraction)
    return Estimate(
        base=spec.key,
        device=device,
        ms_per_image=ms,
        seconds_head=n * (decode_s + ms / 1000.0),
        seconds_per_epoch=(n - n_val) * step_s + n_val * ms / 1000.0,
        images_measured=len(batch),
    )


# --------------------------------------------------------------------------- comparing
def _named(event, prefix: str):
    """``train``'s events with the model named, for a run that trains several."""
    if isinstance(event, TrainBatch):
        event = event.progress
    if isinstance(event, Progress):
        return dataclasses.replace(event, message=f"{prefix}{event.message}")
    if isinstance(event, TrainPhase):
        return TrainPhase(event.name, f"{prefix}{event.message}")
    if isinstance(event, TrainMessage):
        return TrainMessage(event.level, f"{prefix}{event.text}")
    return None  # epochs: head mode has one row, and the point says it better


_NO_WEIGHTS = (
    "its weights are not on this computer. Choose it as the model once to download them "
    "(or import the file), then compare again."
)


def compare(
    bases: Sequence[str], dataset, config: TrainConfig, cancel: CancelToken = NEVER
) -> Generator[object, None, tuple[ComparePoint, ...]]:
    """Job: head-mode ``train()`` on each base (same split settings); yields Progress
    naming the model and one ComparePoint per base as soon as it is done; returns all.
    Bases without weights on this computer are skipped with a TrainMessage warning.
    """
    from .trainer import train

    points = []
    for number, key in enumerate(bases, 1):
        spec = network.base_spec(key)
        prefix = f"{spec.name} ({number} of {len(bases)}): "
        if registry.weights_path(spec) is None:
            yield TrainMessage("warning", f"{spec.name} was left out: {_NO_WEIGHTS}")
            continue
        run = dataclasses.replace(config, base=spec.key, mode="head")
        try:
            result = yield from _relayed(train(run, dataset, cancel), prefix)
        except WeightsError as exc:
            yield TrainMessage("warning", f"{spec.name} was left out: {exc.sentence}")
            continue
        samples = _measured_samples(dataset)
        batch, _, _ = _decode_batch(spec, samples, cancel)
        ms = inference_ms(preview_classifier(result, result.config.device).backend, batch)
        point = ComparePoint(
            spec.key, spec.name, result.accuracy, ms, result.train_size, result.val_size
        )
        points.append(point)
        yield point
    return tuple(points)


def _relayed(job, prefix: str):
    """Run ``job``, yielding its events with ``prefix``; returns its result.

    Closed with this generator, so a cancelled comparison stops the run at once.
    """
    return relay(job, lambda event: _named(event, prefix))


# --------------------------------------------------------------------------- trying it
def preview_classifier(result: TrainResult, device: str = "cpu"):
    """The trained, unsaved network as a ``Classifier`` (key "unsaved"), calibrated and
    folded as the saved bundle will be, so "Try it" shows what the saved model shows.
    """
    from ..models import bundle
    from ..runtime.classifier import Classifier

    base = network.base_spec(result.config.base)
    spec = bundle.trained_spec(
        base.key,
        result.classes,
        base.preprocess,
        result.temperature,
        result.unknown_threshold,
        key=PREVIEW_KEY,
        name=PREVIEW_NAME,
    )
    model = spec.build()
    model.load_state_dict(result.state_dict, strict=True)
    device = resolve_device(device)
    return Classifier(spec, device, backend=_inference_backend(spec, model.eval(), device))


def try_images(result: TrainResult, paths, device: str = "cpu", top_k: int = 3, cancel=NEVER):
    """Job: ``preview_classifier(result).predict(paths, top_k)`` (yields PredictionBatch)."""
    classifier = preview_classifier(result, device)
    return (yield from classifier.predict(paths, top_k, cancel))


def images_in_cell(predictions, true_index: int, predicted_index: int) -> list[Path]:
    """Paths of validation predictions (``TrainResult.val_predictions`` rows) with that
    label and that guess, in their order.
    """
    return [
        Path(row["path"])
        for row in predictions
        if int(row["label"]) == true_index and int(row["predicted"]) == predicted_index
    ]


# --------------------------------------------------------------------------- saving
def save_result(
    result: TrainResult,
    name: str,
    dataset,
    *,
    replace: bool = False,
    excluded: Sequence[Path] = (),
):
    """The result as a bundle (``bundle.save_bundle``), with what it was trained on:
    ``dataset.summary()`` plus the files left out (``excluded``).
    """
    from ..models import bundle, zoo

    spec = zoo.get_spec(result.config.base)
    summary = {**dataset.summary(), "excluded": [str(p) for p in excluded]}
    return bundle.save_bundle(
        name,
        result.state_dict,
        base=spec.key,
        classes=result.classes,
        preprocess=spec.preprocess,
        temperature=result.temperature,
        unknown_threshold=result.unknown_threshold,
        metrics=result.summary(),
        training=result.config.to_dict(),
        dataset=summary,
        replace=replace,
    )
