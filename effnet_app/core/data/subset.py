"""A dataset after the user's edits: files left out, files moved to another class.

Nothing is read again: the samples keep their digests (a moved file has the same bytes,
so cached features still match), and only what depends on the counts is recomputed:
the class reports' counts and examples, ``fixed_val``, and the checks about counts
(too few images, a class missing from train/ or val/, imbalance). What the scan found
about files (unreadable, duplicates, small, the listing) stays as it was.
``dataset`` re-exports ``without``; import it from there.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from . import dataset_checks as checks
from .folders import natural_key

# Checks that follow from the counts, recomputed after an edit; "unreadable" and
# "duplicates" come back from class_checks too, from the reports, unchanged.
_COUNTED = {"too_few_classes", "class_too_small", "few_images", "not_in_train", "not_in_val"}
_COUNTED |= {"imbalance", "unreadable", "duplicates"}


def _key(path) -> str:
    return os.path.normcase(os.path.abspath(path))


def without(dataset, paths: Iterable) -> object:
    """The dataset minus those files (samples, counts per class, fixed_val remapped).

    Classes stay (an emptied class becomes an error, as in a scan), so labels keep
    their meaning; checks about the counts are recomputed.
    """
    gone = {_key(p) for p in paths}
    if not any(_key(s.path) in gone for s in dataset.samples):
        return dataset
    val = dataset.fixed_val or frozenset()
    rows = [
        (s.path, dataset.classes[s.label], s.digest, i in val)
        for i, s in enumerate(dataset.samples)
        if _key(s.path) not in gone
    ]
    return rebuilt(dataset, rows)


def relabelled(dataset, moves: Mapping) -> object:
    """The dataset with files moved: ``moves`` maps a sample's path to (new path, class).

    A class that did not exist becomes one, its folder the one its files went to.
    """
    moved = {_key(p): (Path(t), c) for p, (t, c) in moves.items()}
    val = dataset.fixed_val or frozenset()
    rows = []
    for i, s in enumerate(dataset.samples):
        path, name = moved.get(_key(s.path), (s.path, dataset.classes[s.label]))
        rows.append((path, name, s.digest, i in val))
    folders = {c: t.parent for t, c in moved.values()}
    return rebuilt(dataset, rows, folders)


def rebuilt(dataset, rows, new_folders: Mapping | None = None) -> object:
    """``dataset`` over ``rows`` [(path, class name, digest, in val/)], counts recomputed."""
    from .dataset import ClassReport, Sample

    names = {name for _, name, _, _ in rows}
    classes = tuple(sorted(set(dataset.classes) | names, key=natural_key))
    index = {name: i for i, name in enumerate(classes)}
    rows = sorted(
        rows,
        key=lambda r: (index[r[1]], r[3], tuple(natural_key(p) for p in Path(r[0]).parts)),
    )
    samples = tuple(Sample(Path(p), index[name], digest) for p, name, digest, _ in rows)
    old = dict(zip(dataset.classes, dataset.reports, strict=True))
    folders = dict(new_folders or {})
    reports = []
    for i, name in enumerate(classes):
        paths = [s.path for s in samples if s.label == i]
        report = old.get(name) or ClassReport(name, 0, (), 0, 0, folders.get(name), ())
        small = min(report.small, len(paths))
        reports.append(
            dataclasses.replace(
                report, count=len(paths), small=small, examples=tuple(paths[: checks.EXAMPLES])
            )
        )
    fixed_val = None
    vals = None
    if dataset.fixed_val is not None:
        fixed_val = frozenset(i for i, row in enumerate(rows) if row[3])
        vals = [sum(1 for i in fixed_val if samples[i].label == c) for c in range(len(classes))]
    found = [c for c in dataset.checks if c.code not in _COUNTED]
    found += checks.class_checks(reports, None, [0] * len(reports), vals)
    return dataclasses.replace(
        dataset,
        classes=classes,
        samples=samples,
        reports=tuple(reports),
        checks=tuple(found),
        fixed_val=fixed_val,
    )
