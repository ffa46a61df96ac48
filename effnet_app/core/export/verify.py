"""An exported model checked against PyTorch fp32 before anyone may use it.

The reference photos (``runtime.reference``, at least 200 inputs) are prepared once with
the model's own preprocessing; PyTorch fp32 runs them through the original network, and
each runtime runs them through the exported file. Top-1 classes and probabilities
(after the model's temperature, as the app shows them) are compared: at fp32 every
top-1 must be the same and no probability may differ by more than 1e-4. A file that
fails is refused with an ``ExportRefused`` (an ``ExportError``); callers remove it, so it is never used or
handed out.

Some models round more than 1e-4 in fp32 by themselves: a head trained to huge weights
on a few images, sharpened by a temperature below 1, gives logits that are small
differences of large sums. For those the app's own PyTorch path (BatchNorm folded,
channels_last) already differs from the plain one by more than 1e-4, so the tolerance
becomes 4x that spread (at most 1e-2), measured only when the 1e-4 check fails. A
top-1 that differs where PyTorch's own two best classes are closer than the tolerance
is no disagreement: either is PyTorch's answer to within rounding.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import AppError, ExportRefused
from ..jobs import NEVER, CancelToken, Progress
from .sidecar import FP32_MAX_PROB_DIFF, FP32_MAX_TOLERANCE, Agreement

log = logging.getLogger(__name__)

RUNTIMES = ("onnxruntime", "openvino")
CHUNK = 16  # inputs per run: what the app's batches hold
TIE = 1e-6  # below fp32: PyTorch probabilities this close are the same answer
SPREAD_FACTOR = 4.0  # a runtime may differ 4x as much as PyTorch differs from itself


@dataclass(frozen=True)
class Reference:
    """The reference inputs and PyTorch fp32's logits for them (and the network, if kept).

    ``spread()`` is how far two correct PyTorch fp32 evaluations of the network differ
    in probability: the plain one and the app's own (BatchNorm folded, channels_last).
    """

    inputs: np.ndarray  # float32 (N, 3, crop, crop), normalised
    logits: np.ndarray  # float32 (N, classes)
    temperature: float = 1.0
    model: object = field(default=None, compare=False, repr=False)
    _spread: list = field(default_factory=list, compare=False, repr=False)

    @property
    def images(self) -> int:
        return len(self.inputs)

    def spread(self, cancel: CancelToken = NEVER) -> float | None:
        """The largest probability difference between two PyTorch fp32 paths (cached)."""
        if self.model is None:
            return None
        if not self._spread:
            import copy

            import torch

            from ..runtime.torch_backend import fold_batch_norms

            other = fold_batch_norms(copy.deepcopy(self.model)).to(
                memory_format=torch.channels_last
            )
            logits = _torch_logits(other, self.inputs, cancel, channels_last=True)
            want = probabilities(self.logits, self.temperature)
            got = probabilities(logits, self.temperature)
            self._spread.append(float(np.abs(want - got).max()))
        return self._spread[0]


def available_runtimes() -> tuple[str, ...]:
    """The runtimes that import here, of ``RUNTIMES``, in that order."""
    found = []
    for name in RUNTIMES:
        try:
            importlib.import_module(name)
        except ImportError:  # not installed, or blocked (sys.modules[name] = None)
            continue
        except Exception as exc:  # noqa: BLE001 - a broken install is the same as none
            log.warning("%s is installed but does not import: %r", name, exc)
            continue
        found.append(name)
    return tuple(found)


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Softmax of ``logits / temperature`` per row, in float64 (what the app shows)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def agreement(
    backend: str,
    precision: str,
    reference: Reference,
    logits: np.ndarray,
    tolerance: float = FP32_MAX_PROB_DIFF,
) -> Agreement:
    """How ``logits`` (from ``backend``) agree with the reference's PyTorch logits.

    A top-1 that differs where PyTorch's own two classes are closer than the tolerance
    (at fp32; 1e-6 below it) is no disagreement: either is PyTorch's answer.
    """
    logits = np.asarray(logits, dtype=np.float32)
    if logits.shape != reference.logits.shape or not np.isfinite(logits).all():
        return Agreement(backend, precision, reference.images, 0.0, float("inf"), tolerance)
    want = probabilities(reference.logits, reference.temperature)
    got = probabilities(logits, reference.temperature)
    tie = tolerance if precision == "fp32" else TIE
    same = want[np.arange(len(want)), got.argmax(axis=1)] >= want.max(axis=1) - tie
    worst = float(np.abs(want - got).max())
    return Agreement(backend, precision, reference.images, float(same.mean()), worst, tolerance)


def _torch_logits(model, inputs: np.ndarray, cancel=NEVER, channels_last=False) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(inputs), CHUNK):
            cancel.raise_if_cancelled()
            batch = torch.from_numpy(inputs[start : start + CHUNK])
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            out.append(model(batch).float().cpu().numpy())
    return np.concatenate(out)


def reference_job(
    model, spec, limit: int | None = None, cancel: CancelToken = NEVER
) -> Generator[Progress, None, Reference]:
    """Job: the reference inputs in ``spec``'s preprocessing and PyTorch fp32's logits."""
    from ..runtime.reference import reference_batch

    inputs = np.ascontiguousarray(reference_batch(spec.preprocess, limit=limit, wants="numpy"))
    inputs = inputs.astype(np.float32, copy=False)
    model = model.eval()
    out = []
    for start in range(0, len(inputs), CHUNK):
        cancel.raise_if_cancelled()
        yield Progress(start, len(inputs), f"Running {spec.name} in PyTorch…", "images")
        out.append(_torch_logits(model, inputs[start : start + CHUNK]))
    return Reference(inputs, np.concatenate(out), float(spec.temperature), model)


def make_backend(runtime: str, model_path: Path, precision: str = "fp32", sha256=None):
    """The app's backend for ``runtime`` on the exported file (not loaded yet)."""
    if runtime == "onnxruntime":
        from ..runtime.onnx_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(model_path, sha256=sha256)
    if runtime == "openvino":
        from ..runtime.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(model_path, precision=precision, sha256=sha256)
    raise ValueError(f"{runtime!r} does not run exported models")


def runtime_logits(backend, inputs: np.ndarray, cancel: CancelToken = NEVER):
    """The backend's logits for ``inputs``, ``CHUNK`` at a time (cancel checked between)."""
    from ..runtime.backend import RunState, as_numpy

    out = []
    for start in range(0, len(inputs), CHUNK):
        cancel.raise_if_cancelled()
        piece = inputs[start : start + CHUNK]
        out.append(np.asarray(as_numpy(backend.run(piece, RunState(CHUNK))), np.float32))
    return np.concatenate(out)


def _measure(runtime, model_path, reference, precision, sha256, name, cancel) -> Agreement:
    try:
        backend = make_backend(runtime, model_path, precision, sha256)
        backend.load(cancel)
        logits = runtime_logits(backend, reference.inputs, cancel)
    except AppError:
        raise
    except Exception as exc:  # noqa: BLE001 - each runtime raises kinds of its own
        raise ExportRefused(
            f"{runtime} could not run the exported {name} ({type(exc).__name__}), so the "
            "export was not kept.",
            detail=repr(exc)[:2000],
        ) from exc
    found = agreement(runtime, precision, reference, logits)
    if precision == "fp32" and not found.passes():
        spread = reference.spread(cancel)  # measured only for a model that needs it
        if spread is not None and SPREAD_FACTOR * spread > FP32_MAX_PROB_DIFF:
            tolerance = min(SPREAD_FACTOR * spread, FP32_MAX_TOLERANCE)
            found = agreement(runtime, precision, reference, logits, tolerance)
    return found


def refuse_disagreement(agreements: Sequence[Agreement], name: str) -> None:
    """ExportError naming the first agreement that does not pass, if any."""
    for a in agreements:
        if not a.passes():
            needed = (
                f"every top-1 the same and probabilities within {a.tolerance:.1e}"
                if a.precision == "fp32"
                else "the same top-1 on at least 99.5 % of them"
            )
            raise ExportRefused(
                f"The exported {name} does not agree with PyTorch ({a.describe()}; needed: "
                f"{needed}), so it was not kept."
            )


def check_job(
    model_path: str | Path,
    reference: Reference,
    runtimes: Sequence[str],
    name: str,
    *,
    precision: str = "fp32",
    sha256: str | None = None,
    cancel: CancelToken = NEVER,
) -> Generator[Progress, None, tuple[Agreement, ...]]:
    """Job: each runtime's agreement on the exported file; ExportError when any fails."""
    found = []
    for i, runtime in enumerate(runtimes):
        cancel.raise_if_cancelled()
        message = f"Checking the export with {runtime} on {reference.images} reference images…"
        yield Progress(i, len(runtimes), message, "runtimes")
        found.append(
            _measure(runtime, Path(model_path), reference, precision, sha256, name, cancel)
        )
        log.info("export of %s: %s", name, found[-1].describe())
    refuse_disagreement(found, name)
    yield Progress(len(runtimes), len(runtimes), f"The export of {name} agrees", "runtimes")
    return tuple(found)
