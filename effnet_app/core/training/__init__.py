"""Teach a model your own classes: features, a new head, fine-tuning, checks, evaluation.

``config`` (TrainConfig, the events, TrainResult, EvalResult) is plain data and loads
without torch; ``train`` and ``evaluate`` load their modules (and torch) when first used.
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


__all__ = [
    "EvalResult",
    "TrainBatch",
    "TrainConfig",
    "TrainEpoch",
    "TrainMessage",
    "TrainPhase",
    "TrainResult",
    "evaluate",
    "train",
]
