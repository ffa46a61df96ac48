"""What makes a dataset fit to train and fair to measure: its checks, near-copies, the split.

``dataset.scan`` gathers the facts; the functions here turn them into ``DataCheck`` rows
(a sentence each, saying what is wrong and how to fix it), group near-identical images
from their features, and split train from validation without letting a group straddle.
Everything is re-exported by ``dataset``; import it from there.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DatasetError

IMBALANCE_RATIO = 10  # largest class over smallest beyond this: a warning
FEW_IMAGES = 5  # fewer images than this in a class: a warning (fewer than 2: an error)
SMALL_FRACTION = 4  # shorter side under min_side / this: "far smaller than the model's input"
EXAMPLES = 3  # files quoted in a sentence at most
MAX_FOLDS = 10  # the grouped split's resolution: the fraction is met to within 1/10 or better
_BLOCK_ELEMENTS = 1 << 22  # similarities computed at once (16 MB of float32)
_MAX_EDGES = 1 << 22  # near-duplicate pairs held before they are merged into groups


@dataclass(frozen=True)
class DataCheck:
    """One finding about a dataset. ``code`` is a stable id; ``sentence`` is for a person."""

    level: str  # "error" | "warning" | "info"
    code: str
    sentence: str
    class_name: str | None = None


def _n(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _some(items: Sequence[object]) -> str:
    return ", ".join(f"'{x}'" for x in items[:EXAMPLES]) + (", …" if len(items) > EXAMPLES else "")


# ---------------------------------------------------------------------------------------
# What the listing found before any image was read


def empty_class(name: str) -> DataCheck:
    text = f"The folder '{name}' has no images, so it is not a class; add images or remove it."
    return DataCheck("warning", "empty_class", text, name)


def link_problem(name: str, loop: bool) -> DataCheck:
    what = "a link that leads back into itself" if loop else "a link to something that is gone"
    text = f"The folder '{name}' is {what}, so it is left out; remove the link or fix its target."
    return DataCheck("warning", "link_loop" if loop else "broken_link", text, name)


def loose_files(count: int) -> DataCheck:
    text = (
        f"{_n(count, 'image')} outside any class folder are not used; "
        "move them into the folder of their class."
    )
    return DataCheck("warning", "loose_files", text)


def unused_folders(names: Sequence[str]) -> DataCheck:
    text = f"Only train/ and val/ are read; {_some(names)} left out."
    return DataCheck("info", "unused_folders", text)


def missing_files(missing: Sequence[Path], usable: bool) -> DataCheck:
    text = (
        f"The CSV names {_n(len(missing), 'file')} that do not exist ({_some(missing)}); "
        "fix the paths (relative ones start at the CSV's folder) or remove those rows."
    )
    return DataCheck("warning" if usable else "error", "missing_files", text)


def bad_rows(lines: Sequence[int]) -> DataCheck:
    where = ", ".join(map(str, lines[:EXAMPLES])) + (", …" if len(lines) > EXAMPLES else "")
    text = (
        f"{_n(len(lines), 'row')} of the CSV (line {where}) lack a path or a label "
        "and are skipped; write each row as path,label."
    )
    return DataCheck("warning", "bad_rows", text)


# ---------------------------------------------------------------------------------------
# What reading the images found


def class_checks(
    reports: Sequence, min_side: int | None, conflicted: Sequence[int], val_counts=None
) -> list[DataCheck]:
    """Every check about the classes: too few of them, then per class, then imbalance.

    ``reports`` are ``dataset.ClassReport``s; ``conflicted[i]`` counts class i's files
    left out as conflicts; ``val_counts[i]`` its usable images in val/ (train_val only).
    """
    out = [too_few_classes(reports)] if len(reports) < 2 else []
    for i, report in enumerate(reports):
        val = None if val_counts is None else val_counts[i]
        out += _count_checks(report, conflicted[i], val) + _file_checks(report, min_side)
    return out + [check for check in [imbalance(reports)] if check]


def too_few_classes(facts: Sequence) -> DataCheck:
    text = (
        f"Only one class was found ('{facts[0].name}'); a model needs at least two, "
        "so add a folder of images for another class next to it."
        if facts
        else "No classes were found; put each class's images in a folder named after it."
    )
    return DataCheck("error", "too_few_classes", text)


def _count_checks(fact, conflicted: int, val_count: int | None) -> list[DataCheck]:
    name, count = fact.name, fact.count
    if count == 0:
        lost = len(fact.unreadable) + fact.duplicates + conflicted
        why = f" (its {_n(lost, 'file')} were all left out, see below)" if lost else ""
        text = f"The class '{name}' has no usable images{why}; add some, or remove the folder."
        return [DataCheck("error", "class_too_small", text, name)]
    out = []
    if count == 1:
        text = f"The class '{name}' has only 1 image; add at least one more, or remove the folder."
        out.append(DataCheck("error", "class_too_small", text, name))
    elif count < FEW_IMAGES:
        text = (
            f"The class '{name}' has only {count} images, too few to learn it well; "
            f"add more (at least {FEW_IMAGES}, ideally dozens)."
        )
        out.append(DataCheck("warning", "few_images", text, name))
    if val_count is not None and val_count >= count:
        text = f"The class '{name}' has no images in train/, so it cannot be learnt; add some."
        out.append(DataCheck("error", "not_in_train", text, name))
    elif val_count == 0:
        text = f"The class '{name}' has no images in val/, so it cannot be measured; add some."
        out.append(DataCheck("warning", "not_in_val", text, name))
    return out


def _file_checks(fact, min_side: int | None) -> list[DataCheck]:
    name, out = fact.name, []
    if fact.unreadable:
        shown = "; ".join(f"'{p.name}': {why}" for p, why in fact.unreadable[:EXAMPLES])
        more = "; …" if len(fact.unreadable) > EXAMPLES else ""
        text = (
            f"{_n(len(fact.unreadable), 'file')} in '{name}' could not be read and "
            f"will be skipped ({shown}{more}); replace or remove them."
        )
        out.append(DataCheck("warning", "unreadable", text, name))
    if fact.duplicates:
        text = (
            f"{_n(fact.duplicates, 'image')} in '{name}' exactly repeat another image there; "
            "each is used once."
        )
        out.append(DataCheck("info", "duplicates", text, name))
    if fact.small and min_side:
        text = (
            f"{_n(fact.small, 'image')} in '{name}' are far smaller than the model's input "
            f"(shorter side under {min_side // SMALL_FRACTION} of {min_side} pixels) and will "
            "look blurry to it; use larger versions if you have them."
        )
        out.append(DataCheck("warning", "small_images", text, name))
    return out


def imbalance(facts: Sequence) -> DataCheck | None:
    counted = [fact for fact in facts if fact.count > 0]
    if len(counted) < 2:
        return None
    big = max(counted, key=lambda fact: fact.count)
    small = min(counted, key=lambda fact: fact.count)
    if big.count <= IMBALANCE_RATIO * small.count:
        return None
    text = (
        f"The class '{big.name}' has {big.count} images but '{small.name}' only {small.count} "
        f"({big.count / small.count:.0f}×), so the model will favour the larger classes; "
        "add images to the smaller ones or leave some out of the larger ones."
    )
    return DataCheck("warning", "imbalance", text)


def conflicts(groups: Sequence[Sequence[tuple[Path, str]]]) -> DataCheck | None:
    """``groups``: per set of identical files, each (file, class name)."""
    if not groups:
        return None
    where = " and ".join(f"'{name}'" for name in dict.fromkeys(c for _, c in groups[0]))
    text = (
        f"{_n(sum(map(len, groups)), 'file')} hold the same image under more than one class "
        f"(e.g. '{groups[0][0][0].name}' in {where}) and are left out; "
        "keep each image in one class only."
    )
    return DataCheck("warning", "conflicting_labels", text)


def near_duplicates(groups: Sequence[int]) -> DataCheck | None:
    """A note on ``near_duplicate_groups``' result; None when every image stands alone."""
    sizes: dict[int, int] = {}
    for group in groups:
        sizes[group] = sizes.get(group, 0) + 1
    shared = [size for size in sizes.values() if size > 1]
    if not shared:
        return None
    text = (
        f"{_n(sum(shared), 'image')} are near-copies of another ({_n(len(shared), 'group')}); "
        "each group is kept on one side of the split so validation stays fair."
    )
    return DataCheck("info", "near_duplicates", text)


# ---------------------------------------------------------------------------------------
# Near-duplicates and the split


def near_duplicate_groups(features, threshold: float = 0.97) -> list[int]:
    """A group id per row of ``features`` (N x D); cosine similarity >= threshold joins.

    Rows are L2-normalised here (a zero row joins nothing). Similarities are computed a
    block of rows at a time and the pairs merged as connected components (union-find
    over the pairs), so 20,000 x 1280 features need about 120 MB. Ids count from 0 in
    order of each group's first row.
    """
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    x = np.array(features, dtype=np.float32)  # our own copy, normalised in place
    np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array (images x dimensions), not {x.shape}")
    n = len(x)
    if n == 0:
        return []
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    step = max(1, _BLOCK_ELEMENTS // max(n, 1))
    pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def merged() -> np.ndarray:
        i, j = np.concatenate([a for a, _ in pairs]), np.concatenate([b for _, b in pairs])
        graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
        return connected_components(graph, directed=False)[1]

    for start in range(0, n, step):
        block = x[start : start + step] @ x[start:].T  # each pair once: columns from `start`
        i, j = np.nonzero(block >= threshold - 1e-6)
        keep = j > i
        pairs.append((i[keep] + start, j[keep] + start))
        if sum(len(a) for a, _ in pairs) > _MAX_EDGES:  # keep one edge per joined row
            labels = merged()
            first = np.unique(labels, return_index=True)[1]
            pairs = [(np.arange(n), first[labels])]
    _, first, inverse = np.unique(merged(), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))
    return rank[inverse].tolist()


@dataclass(frozen=True)
class Split:
    train: tuple[int, ...]  # indices into dataset.samples
    val: tuple[int, ...]


def split(dataset, val_fraction: float = 0.2, seed: int = 0, groups=None) -> Split:
    """A deterministic, stratified train/validation split of ``dataset.samples``.

    ``groups[i]`` is a group id per sample (``near_duplicate_groups``): a group never
    straddles the split. Images in no group go through scikit-learn's
    StratifiedShuffleSplit; the groups of near-copies (few, as a rule) through
    StratifiedGroupKFold, taking as many folds as meet the fraction best. Each part is
    stratified on its own, so their union is too; StratifiedGroupKFold alone would
    spend a Python loop per group (20 s for 20,000 images).
    Either is the same for the same samples, seed and scikit-learn version on every
    machine (NumPy's seeded Mersenne Twister). A class with at least two images keeps
    one on each side (unless its images are all one group); a class of one trains.
    With ``dataset.fixed_val`` (train/ + val/ folders) that split is returned as is.
    """
    import numpy as np

    if not isinstance(val_fraction, numbers.Real) or not 0 < val_fraction < 1:
        raise DatasetError(
            f"The validation fraction must lie between 0 and 1 (0.2 sets aside 20 % of the "
            f"images), not {val_fraction!r}; choose another."
        )
    n = len(dataset.samples)
    too_few = DatasetError(
        "There are too few distinct images to set some aside for validation; "
        "add more images to each class."
    )
    if dataset.fixed_val is not None:
        return Split(tuple(i for i in range(n) if i not in dataset.fixed_val),
                     tuple(sorted(dataset.fixed_val)))  # fmt: skip
    labels = np.array([sample.label for sample in dataset.samples], dtype=np.int64)
    ids = np.arange(n) if groups is None else np.asarray(groups)
    if ids.shape != (n,):
        raise ValueError(f"groups needs one id per sample ({n}), got shape {ids.shape}")
    if n < 2:
        raise too_few
    ids = np.unique(ids, return_inverse=True)[1].reshape(-1)
    with warnings.catch_warnings():  # "least populated class has fewer members than folds"
        warnings.simplefilter("ignore", UserWarning)
        in_val = np.zeros(n, dtype=bool)
        alone = np.bincount(ids)[ids] == 1  # most images: no near-copy
        in_val[alone] = _shuffle_split(labels[alone], float(val_fraction), seed)
        if not alone.all():
            in_val[~alone] = _group_split(labels[~alone], ids[~alone], float(val_fraction), seed)
    _both_sides(in_val, labels, ids)
    if in_val.all() or not in_val.any():
        raise too_few
    return Split(tuple(np.flatnonzero(~in_val).tolist()), tuple(np.flatnonzero(in_val).tolist()))


def _shuffle_split(labels, fraction: float, seed: int):
    import numpy as np
    from sklearn.model_selection import StratifiedShuffleSplit

    in_val = np.zeros(len(labels), dtype=bool)
    counts = np.bincount(labels) if len(labels) else np.zeros(0, int)
    pool = np.flatnonzero(counts[labels] >= 2)  # a class of one always trains
    k = int(np.count_nonzero(counts >= 2))
    if not k:
        return in_val
    size = min(max(k, round(fraction * len(pool))), len(pool) - k)
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=size, random_state=seed)
    _, val = next(splitter.split(np.zeros(len(pool)), labels[pool]))
    in_val[pool[val]] = True
    return in_val


def _group_split(labels, ids, fraction: float, seed: int):
    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    in_val = np.zeros(len(labels), dtype=bool)
    most = min(MAX_FOLDS, len(np.unique(ids)), int(np.bincount(labels).max()))
    if most < 2:
        return in_val

    def taken(k: int) -> int:
        return max(1, min(k - 1, round(fraction * k)))

    k = min(range(2, most + 1), key=lambda k: (round(abs(taken(k) / k - fraction), 3), k))
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    folds = [val for _, val in splitter.split(np.zeros(len(labels)), labels, ids)]
    in_val[np.concatenate(folds[: taken(k)])] = True
    return in_val


def _both_sides(in_val, labels, ids) -> None:
    """Move whole groups so each class of >= 2 has both sides and a class of 1 trains."""
    import numpy as np

    sizes = np.bincount(ids)
    for label in np.unique(labels):
        members = labels == label
        sides = (False, True) if members.sum() >= 2 else (False,)
        for side in sides:  # the side this class needs at least one image on
            if np.any(members & (in_val == side)):
                continue
            others = members & (in_val != side)
            candidates = np.unique(ids[others])
            if len(sides) == 2:  # moving must leave one behind on the other side
                per_group = np.bincount(ids[others], minlength=len(sizes))
                candidates = candidates[per_group[candidates] < others.sum()]
            if len(candidates):
                group = candidates[np.argmin(sizes[candidates])]
                in_val[ids == group] = side
