"""Teach a model your own classes: features, a new head, fine-tuning, checks, evaluation.

``config`` (TrainConfig, the events, TrainResult, EvalResult) is plain data and loads
without torch; ``train`` and ``evaluate`` load their modules (and torch) when first used,
and so do the wizard's tools (``estimate``, ``compare``, ``preview_classifier``,
``try_images``, ``save_result``, ``images_in_cell``; ``Estimate`` and ``ComparePoint``
come from ``tools`` on first use).
"""

from __future__ import annotations

from .config import (
    EvalResult,
    TrainBatch,
    TrainConfig,
    TrainEpoch,
    TrainMessage,
    TrainPhase,
    TrainResult,
)

# The libraries training imports on its way (beyond torch, which the model list loads:
# importing torch on two threads at once can fail, so preload only after that).
# Their compiled parts hold the GIL while they initialise (scipy.linalg's interpolative
# module ~170 ms, pandas under cleanlab ~250 ms): a GUI gets them early, while nothing
# moves on screen, rather than in the middle of a run with live curves.
PRELOAD = (
    "scipy.optimize",
    "scipy.sparse.csgraph",
    "sklearn.metrics",
    "sklearn.model_selection",
    "cleanlab.filter",
    "cleanlab.rank",
)


def preload(cancel=None):
    """Job: import ``PRELOAD`` one module at a time (a cancel lands between two)."""
    import importlib

    from .. import native_libs
    from ..jobs import NEVER, Progress

    cancel = cancel or NEVER
    native_libs.preload()  # torch's libraries, opened without holding the GIL
    for done, name in enumerate(PRELOAD, 1):
        cancel.raise_if_cancelled()
        importlib.import_module(name)
        yield Progress(done, len(PRELOAD), f"Loaded {name}", "modules")


def train(config, dataset, cancel=None):
    """Job: see ``training.trainer.train``."""
    from ..jobs import NEVER
    from .trainer import train as run

    return run(config, dataset, cancel or NEVER)


def evaluate(spec_or_key, dataset, device="auto", cancel=None):
    """Job: see ``training.evaluation.evaluate``."""
    from ..jobs import NEVER
    from .evaluation import evaluate as run

    return run(spec_or_key, dataset, device, cancel or NEVER)


def estimate(base, dataset, device="auto", val_fraction=0.2, cancel=None):
    """Job: see ``training.tools.estimate``."""
    from ..jobs import NEVER
    from .tools import estimate as run

    return run(base, dataset, device, val_fraction, cancel or NEVER)


def compare(bases, dataset, config, cancel=None):
    """Job: see ``training.tools.compare``."""
    from ..jobs import NEVER
    from .tools import compare as run

    return run(bases, dataset, config, cancel or NEVER)


def preview_classifier(result, device="cpu"):
    """See ``training.tools.preview_classifier``."""
    from .tools import preview_classifier as run

    return run(result, device)


def try_images(result, paths, device="cpu", top_k=3, cancel=None):
    """Job: see ``training.tools.try_images``."""
    from ..jobs import NEVER
    from .tools import try_images as run

    return run(result, paths, device, top_k, cancel or NEVER)


def save_result(result, name, dataset, *, replace=False, excluded=()):
    """See ``training.tools.save_result``."""
    from .tools import save_result as run

    return run(result, name, dataset, replace=replace, excluded=excluded)


def images_in_cell(predictions, true_index, predicted_index):
    """See ``training.tools.images_in_cell``."""
    from .tools import images_in_cell as run

    return run(predictions, true_index, predicted_index)


def __getattr__(name):
    if name in ("Estimate", "ComparePoint"):
        from . import tools

        return getattr(tools, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ComparePoint",
    "Estimate",
    "EvalResult",
    "TrainBatch",
    "TrainConfig",
    "TrainEpoch",
    "TrainMessage",
    "TrainPhase",
    "TrainResult",
    "compare",
    "estimate",
    "evaluate",
    "images_in_cell",
    "preload",
    "preview_classifier",
    "save_result",
    "train",
    "try_images",
]
