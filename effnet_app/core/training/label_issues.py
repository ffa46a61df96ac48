"""Out-of-fold predictions on cached features, and the images likely to be mislabelled.

Every image gets probabilities from a head that never saw it: stratified K-fold over
train + validation, each fold fitted with the run's own head solver (seconds on cached
features). Confident learning (cleanlab) then flags the images whose given label is
unlikely, ranked by the self-confidence of the given label (lowest first).
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from ..jobs import NEVER, CancelToken, Progress
from .head import fit_quietly


def fold_count(labels: np.ndarray, wanted: int) -> int:
    """At most ``wanted`` folds, and no more than the smallest class has images."""
    counts = np.bincount(labels)
    counts = counts[counts > 0]
    return int(max(2, min(wanted, counts.min()))) if len(counts) else 2


def out_of_fold_logits(
    features: np.ndarray,
    labels,
    num_classes: int,
    config,
    dropout: float = 0.0,
    cancel: CancelToken = NEVER,
) -> Generator[Progress, None, np.ndarray]:
    """Job: (N, classes) logits, each row from the head fitted without that image."""
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels, dtype=int)
    folds = fold_count(labels, config.folds)
    if np.bincount(labels)[np.bincount(labels) > 0].min() < 2:
        from sklearn.model_selection import KFold

        splitter = KFold(folds, shuffle=True, random_state=config.seed).split(features)
    else:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=config.seed).split(
            features, labels
        )
    logits = np.zeros((len(labels), num_classes), dtype=np.float64)
    for k, (fit_rows, held_rows) in enumerate(splitter):
        cancel.raise_if_cancelled()
        head = fit_quietly(
            features[fit_rows], labels[fit_rows], num_classes, config, dropout, cancel
        )
        logits[held_rows] = head.logits(features[held_rows])
        yield Progress(k + 1, folds, f"Out-of-fold check {k + 1} of {folds}", "folds")
    return logits


def find_issues(labels, probabilities: np.ndarray, limit: int = 50) -> list[dict]:
    """[{index, given, suggested, score}] of likely mislabelled images, most likely first.

    ``score`` is cleanlab's label quality (self-confidence: the probability of the given
    label); lower is more likely wrong.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, dtype=int)
    p = np.asarray(probabilities, dtype=np.float64)
    if len(labels) < 2 or len(np.unique(labels)) < 2:
        return []
    p = p / p.sum(axis=1, keepdims=True)
    scores = get_label_quality_scores(labels, p, method="self_confidence")
    flagged = find_label_issues(labels, p, return_indices_ranked_by="self_confidence", n_jobs=1)
    ranked = sorted((int(i) for i in flagged), key=lambda i: (scores[i], i))[:limit]
    return [
        {
            "index": i,
            "given": int(labels[i]),
            "suggested": int(p[i].argmax()),
            "score": float(scores[i]),
        }
        for i in ranked
    ]
