"""Grouped, stratified splits never leak a group, and the leakage check itself works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer.data import DataError, Sample
from trainer.splits import (
    GroupLeakageError,
    assert_no_leakage,
    kfold_splits,
    train_val_test_split,
)


def samples(n_exp: int = 2, wells_per_class: int = 5, fields: int = 3) -> list[Sample]:
    out = []
    for e in range(n_exp):
        for label in (0, 1):
            for w in range(wells_per_class):
                for f in range(fields):
                    out.append(
                        Sample(
                            Path(f"e{e}_{label}_{w}_{f}.tif"),
                            label,
                            plate="P1",
                            well=f"{'AB'[label]}{w:02d}",
                            field=str(f),
                            experiment=f"exp{e}",
                        )
                    )
    return out


def groups_of(s: list[Sample], idx: np.ndarray, by: str) -> set[str]:
    return {s[i].group(by) for i in idx}


@pytest.mark.parametrize("by", ["well", "plate", "experiment"])
def test_single_split_keeps_groups_apart(by: str) -> None:
    s = samples(n_exp=4) if by != "well" else samples()
    if by == "plate":
        s = [
            Sample(x.path, x.label, plate=f"P{i % 6}", well=x.well, experiment=x.experiment)
            for i, x in enumerate(s)
        ]
    split = train_val_test_split(s, group_by=by, test_fraction=0.25, val_fraction=0.25, seed=3)
    parts = [groups_of(s, p, by) for p in (split.train, split.val, split.test)]
    assert parts[0] and parts[1] and parts[2]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert len(split.train) + len(split.val) + len(split.test) == len(s)


def test_same_well_name_in_two_experiments_is_two_groups() -> None:
    s = samples()
    assert s[0].well == s[30].well and s[0].group("well") != s[30].group("well")


def test_split_is_stratified_and_reproducible() -> None:
    s = samples()
    a = train_val_test_split(s, group_by="well", test_fraction=0.2, val_fraction=0.25, seed=1)
    b = train_val_test_split(s, group_by="well", test_fraction=0.2, val_fraction=0.25, seed=1)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.val, b.val)
    assert {s[i].label for i in a.test} == {0, 1}


def test_holdout_experiment_is_the_test_set() -> None:
    s = samples(n_exp=3)
    split = train_val_test_split(
        s, group_by="well", test_fraction=0.2, val_fraction=0.25, holdout_experiment="exp2"
    )
    assert {s[i].experiment for i in split.test} == {"exp2"}
    assert "exp2" not in {s[i].experiment for i in np.concatenate([split.train, split.val])}


def test_unknown_holdout_experiment_names_the_choices() -> None:
    with pytest.raises(DataError, match=r"'exp9' matches no image.*'exp0', 'exp1'"):
        train_val_test_split(
            samples(),
            group_by="well",
            test_fraction=0.2,
            val_fraction=0.2,
            holdout_experiment="exp9",
        )


def test_kfold_tests_every_group_once() -> None:
    s = samples()
    folds = kfold_splits(s, group_by="well", k=4, val_fraction=0.25, seed=0)
    assert len(folds) == 4
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(s)))
    for f in folds:
        assert not groups_of(s, f.test, "well") & groups_of(s, f.train, "well")
        assert not groups_of(s, f.val, "well") & groups_of(s, f.train, "well")


def test_kfold_needs_enough_groups() -> None:
    with pytest.raises(DataError, match="at least 5 groups by experiment, found 2"):
        kfold_splits(samples(), group_by="experiment", k=5, val_fraction=0.2)


def test_leakage_check_raises() -> None:
    groups = ["w1", "w1", "w2", "w3"]
    assert_no_leakage({"train": np.array([0, 1, 2]), "test": np.array([3])}, groups)
    with pytest.raises(GroupLeakageError, match="'w1' is in both 'train' and 'test'"):
        assert_no_leakage({"train": np.array([0, 2]), "test": np.array([1, 3])}, groups)
    with pytest.raises(GroupLeakageError, match="index 2"):
        assert_no_leakage({"train": np.array([2]), "val": np.array([2])}, groups)
