"""Grouped, stratified splits: never a field of the same well on both sides.

Every split is made over *groups* (well, plate or experiment, see :meth:`Sample.group`) with
scikit-learn's StratifiedGroupKFold, and every split is checked by :func:`assert_no_leakage`,
which raises rather than let a leaky split through. Cross-validation holds out one experiment
per fold when the data has two or more (:func:`leave_one_experiment_out`), else K grouped
folds (:func:`kfold_splits`).

:func:`split_record` is what travels with a run: every image with its part, groups, label
and content hash, and the hash of the whole data set, so an evaluation can find the held-out
images again and refuse the others.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.data import DataError, Sample

log = logging.getLogger(__name__)


class GroupLeakageError(RuntimeError):
    """A group appears in more than one part of a split (a bug, never a user error)."""


@dataclass(frozen=True)
class Split:
    """Indices into the sample list for each part; ``test`` may be empty."""

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def describe(self, samples: Sequence[Sample], group_by: str) -> dict[str, object]:
        """JSON-able record of which groups (and how many images) went where."""
        out: dict[str, object] = {"name": self.name, "group_by": group_by}
        for part, idx in self.parts().items():
            groups = sorted({samples[i].group(group_by) for i in idx})
            out[part] = {"groups": groups, "n_images": len(idx)}
        return out


def assert_no_leakage(parts: dict[str, np.ndarray], groups: Sequence[str]) -> None:
    """Raise :class:`GroupLeakageError` if any group occurs in two parts or an index twice."""
    seen: dict[str, str] = {}
    used: set[int] = set()
    for part, idx in parts.items():
        for i in idx.tolist():
            if i in used:
                raise GroupLeakageError(f"image index {i} is in more than one part")
            used.add(i)
            g = groups[i]
            other = seen.setdefault(g, part)
            if other != part:
                raise GroupLeakageError(f"group {g!r} is in both {other!r} and {part!r}")


def _group_arrays(samples: Sequence[Sample], group_by: str) -> tuple[np.ndarray, np.ndarray]:
    groups = np.array([s.group(group_by) for s in samples])
    labels = np.array([s.label for s in samples])
    return groups, labels


def _take_one_fold(
    idx: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    *,
    fraction: float,
    seed: int,
    what: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` into (rest, held) with about ``fraction`` of the groups held out."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    n_groups = len(np.unique(groups[idx]))
    if n_groups < 2:
        raise DataError(
            f"cannot make a {what} split: only {n_groups} group(s) available; add wells "
            "(or group by a smaller unit with split.group_by)"
        )
    n_splits = min(n_groups, max(2, round(1 / fraction)))
    try:
        kfold = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        rest, held = next(iter(kfold.split(idx, labels[idx], groups[idx])))
    except ValueError:
        gss = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        rest, held = next(iter(gss.split(idx, labels[idx], groups[idx])))
    return idx[rest], idx[held]


def _checked(split: Split, groups: np.ndarray) -> Split:
    assert_no_leakage(split.parts(), list(groups))
    if len(split.train) == 0 or len(split.val) == 0:
        raise DataError(f"split {split.name!r} left train or validation empty; add more groups")
    return split


def train_val_test_split(
    samples: Sequence[Sample],
    *,
    group_by: str,
    test_fraction: float,
    val_fraction: float,
    holdout_experiment: str | None = None,
    seed: int = 0,
) -> Split:
    """One grouped split; the test part is a held-out experiment when one is named."""
    groups, labels = _group_arrays(samples, group_by)
    everything = np.arange(len(samples))
    if holdout_experiment is not None:
        exps = np.array([s.experiment for s in samples])
        test = everything[exps == holdout_experiment]
        if len(test) == 0:
            raise DataError(
                f"split.holdout_experiment {holdout_experiment!r} matches no image; "
                f"experiments present: {sorted(set(exps.tolist()))}"
            )
        rest = everything[exps != holdout_experiment]
        # a group key that spans experiments would leak: key groups by experiment too
        if group_by != "experiment" and set(groups[test]) & set(groups[rest]):
            raise GroupLeakageError("held-out experiment shares groups with the rest")
        name = f"holdout-{holdout_experiment}"
    elif test_fraction > 0:
        rest, test = _take_one_fold(
            everything, labels, groups, fraction=test_fraction, seed=seed, what="test"
        )
        name = "holdout"
    else:
        rest, test = everything, np.array([], dtype=int)
        name = "train-val"
    train, val = _take_one_fold(
        rest, labels, groups, fraction=val_fraction, seed=seed + 1, what="validation"
    )
    return _checked(Split(name, np.sort(train), np.sort(val), np.sort(test)), groups)


def kfold_splits(
    samples: Sequence[Sample], *, group_by: str, k: int, val_fraction: float, seed: int = 0
) -> list[Split]:
    """K grouped, stratified folds; each fold's training groups also give its validation."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups, labels = _group_arrays(samples, group_by)
    n_groups = len(np.unique(groups))
    if n_groups < k:
        raise DataError(
            f"{k}-fold cross-validation needs at least {k} groups by {group_by}, found "
            f"{n_groups}; lower --cv or group by a smaller unit"
        )
    everything = np.arange(len(samples))
    kfold = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    out = []
    for fold, (rest, test) in enumerate(kfold.split(everything, labels, groups)):
        train, val = _take_one_fold(
            rest, labels, groups, fraction=val_fraction, seed=seed + 1 + fold, what="val"
        )
        split = Split(f"fold{fold}", np.sort(train), np.sort(val), np.sort(test))
        out.append(_checked(split, groups))
    return out


def experiments_of(samples: Sequence[Sample]) -> list[str]:
    """The distinct non-empty experiment names, sorted."""
    return sorted({s.experiment for s in samples if s.experiment})


def leave_one_experiment_out(
    samples: Sequence[Sample], *, group_by: str, val_fraction: float, seed: int = 0
) -> list[Split]:
    """One fold per experiment: its images are the test set, the other experiments' groups
    give training and validation (the held-out-experiment figure of Waisman et al. 2019)."""
    experiments = experiments_of(samples)
    if len(experiments) < 2:
        raise DataError(
            f"leave-one-experiment-out needs at least 2 experiments, found {experiments or 'none'}"
            "; fill the manifest's experiment column or use K-fold (--cv K)"
        )
    groups, labels = _group_arrays(samples, group_by)
    exps = np.array([s.experiment for s in samples])
    everything = np.arange(len(samples))
    out = []
    for i, exp in enumerate(experiments):
        test, rest = everything[exps == exp], everything[exps != exp]
        train, val = _take_one_fold(
            rest, labels, groups, fraction=val_fraction, seed=seed + 1 + i, what="validation"
        )
        split = Split(f"holdout-{exp}", np.sort(train), np.sort(val), np.sort(test))
        out.append(_checked(split, groups))
    return out


def split_record(
    split: Split,
    samples: Sequence[Sample],
    *,
    group_by: str,
    class_names: Sequence[str],
    content_hash: Callable[[Path], str],
    data: str = "",
) -> dict[str, Any]:
    """Every image of ``split`` with its part, groups, label and content hash, and the data
    set hash (:func:`data_hash`): what a checkpoint carries so that its evaluation finds the
    held-out images and recognises the seen ones."""
    images = []
    for part, idx in split.parts().items():
        for i in idx.tolist():
            s = samples[i]
            images.append(
                {
                    "path": str(Path(s.path).resolve()),
                    "part": part,
                    "group": s.group(group_by),
                    "label": class_names[s.label],
                    "plate": s.plate,
                    "well": s.well,
                    "field": s.field,
                    "experiment": s.experiment,
                    "hours_since_induction": s.hours,
                    "source": s.source,
                    "content_hash": content_hash(s.path),
                }
            )
    return {
        "name": split.name,
        "group_by": group_by,
        "data": data,
        "data_hash": data_hash(images),
        "images": images,
    }


def data_hash(images: Sequence[dict[str, Any]]) -> str:
    """``sha256:`` of the data set: every image's content hash, label and groups, in a fixed
    order (paths do not count: a moved copy of the same data has the same hash)."""
    lines = sorted(
        "\t".join(
            str(im.get(k) or "")
            for k in ("content_hash", "label", "experiment", "plate", "well", "field")
        )
        + f"\t{im.get('hours_since_induction')}"
        for im in images
    )
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()
