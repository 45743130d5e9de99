"""Labelled synthetic data sets: layout, manifest, determinism, and no trivial shortcut."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
import tifffile

from stemwatch.core.imaging import read_image
from stemwatch.core.manifest import MANIFEST_COLUMNS, SYNTHETIC_SOURCE
from stemwatch.core.optics import read_pixel_size
from stemwatch.synth.dataset import SYNTH_COLUMNS, generate_dataset
from stemwatch.synth.difficulty import SynthError

Dataset = tuple[Path, list[dict[str, str]]]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """2 experiments x 4 wells per class x 2 fields x 5 time points = 160 images of 256²."""
    out = tmp_path_factory.mktemp("dataset")
    manifest = generate_dataset(out, n_experiments=2, wells_per_class=4, size=256, seed=11)
    with manifest.open() as fh:
        return out, list(csv.DictReader(fh))


def test_layout_and_manifest(dataset: Dataset) -> None:
    out, rows = dataset
    assert (out / "manifest.csv").read_text().splitlines()[0] == ",".join(
        MANIFEST_COLUMNS + SYNTH_COLUMNS
    )
    assert len(rows) == 2 * 2 * 4 * 2 * 5
    for r in rows:
        path = out / r["path"]
        assert path.parent.name == r["label"] and path.is_file()
        assert r["label"] == (
            "differentiated" if r["condition"] == "induced" else "undifferentiated"
        )
    assert {r["experiment"] for r in rows} == {"E01", "E02"}
    assert {r["hours_since_induction"] for r in rows} == {"0", "6", "12", "24", "48"}
    assert len({(r["plate"], r["well"]) for r in rows}) == 16
    img = read_image(out / rows[0]["path"])
    assert img.pixels.shape == (256, 256) and img.pixels.dtype == np.uint8
    # a microscope's export states its scale; the trainer derives its downsampling from it
    pixel = read_pixel_size(out / rows[0]["path"])
    assert pixel is not None and pixel.um == 1.0 and pixel.source == "OME PhysicalSizeX"
    assert {r["source"] for r in rows} == {SYNTHETIC_SOURCE}


def test_true_state_rises_in_induced_wells_only(dataset: Dataset) -> None:
    _, rows = dataset

    def mean_state(cond: str, hours: str) -> float:
        return float(
            np.mean(
                [
                    float(r["state"])
                    for r in rows
                    if r["condition"] == cond and r["hours_since_induction"] == hours
                ]
            )
        )

    assert mean_state("induced", "0") == 0.0
    assert mean_state("induced", "12") < mean_state("induced", "24") < mean_state("induced", "48")
    assert mean_state("induced", "48") > 0.8
    assert mean_state("maintenance", "48") < 0.15


def _intensity_features(img: np.ndarray) -> list[float]:
    a = img.astype(np.float64)
    return [a.mean(), a.std(), *np.percentile(a, [1, 5, 25, 50, 75, 95, 99])]


def _morphology_features(img: np.ndarray) -> np.ndarray:
    """Shape of the radially averaged power spectrum (cell size, border sharpness), with the
    intensity scale removed."""
    a = img.astype(np.float64)
    a = (a - a.mean()) / (a.std() + 1e-9)
    power = np.abs(np.fft.rfft2(a)) ** 2
    f = np.hypot(np.fft.fftfreq(a.shape[0])[:, None], np.fft.rfftfreq(a.shape[1])[None, :])
    edges = [0.01, 0.03, 0.05, 0.07, 0.09, 0.11, 0.14, 0.18, 0.25, 0.35, 0.5]
    bands = np.log([power[(f >= lo) & (f < hi)].mean() for lo, hi in itertools.pairwise(edges)])
    return bands - bands.mean()


def _grouped_cv_accuracy(x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    pred = cross_val_predict(clf, x, y, groups=groups, cv=GroupKFold(4))
    return float(balanced_accuracy_score(y, pred))


def test_whole_image_intensity_statistics_stay_near_chance(tmp_path: Path) -> None:
    """Logistic regression on mean, std and percentiles, validated on held-out wells, over
    2 experiments x 16 wells x 2 fields x 5 time points (320 images of 128²)."""
    manifest = generate_dataset(tmp_path, n_experiments=2, wells_per_class=8, size=128, seed=12)
    with manifest.open() as fh:
        rows = list(csv.DictReader(fh))
    x = np.array([_intensity_features(tifffile.imread(tmp_path / r["path"])) for r in rows])
    y = np.array([r["label"] == "differentiated" for r in rows])
    groups = np.array([r["plate"] + r["well"] for r in rows])
    late = np.array([float(r["hours_since_induction"]) >= 24 for r in rows])
    assert _grouped_cv_accuracy(x, y, groups) < 0.65
    assert _grouped_cv_accuracy(x[late], y[late], groups[late]) < 0.65


def test_morphology_separates_the_classes_at_later_hours(dataset: Dataset) -> None:
    """The information is in the spatial structure: even a linear model on the power
    spectrum's shape separates the classes from 24 h on (a CNN does better)."""
    out, rows = dataset
    late = [r for r in rows if float(r["hours_since_induction"]) >= 24]
    x = np.array([_morphology_features(tifffile.imread(out / r["path"])) for r in late])
    y = np.array([r["label"] == "differentiated" for r in late])
    groups = np.array([r["plate"] + r["well"] for r in late])
    assert _grouped_cv_accuracy(x, y, groups) >= 0.8


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    kw = {
        "n_experiments": 1,
        "wells_per_class": 1,
        "fields_per_well": 1,
        "timepoints_h": (0, 24),
        "size": 64,
    }
    a = generate_dataset(tmp_path / "a", seed=5, **kw)  # type: ignore[arg-type]
    b = generate_dataset(tmp_path / "b", seed=5, **kw)  # type: ignore[arg-type]
    c = generate_dataset(tmp_path / "c", seed=6, **kw)  # type: ignore[arg-type]
    assert a.read_bytes() == b.read_bytes()
    files_a = sorted(p.relative_to(a.parent) for p in a.parent.rglob("*.tif"))
    assert len(files_a) == 4
    for rel in files_a:
        assert (a.parent / rel).read_bytes() == (b.parent / rel).read_bytes()
    c_bytes = {p.read_bytes() for p in c.parent.rglob("*.tif")}
    assert not c_bytes & {(a.parent / rel).read_bytes() for rel in files_a}


def test_label_by_state_and_sixteen_bit(tmp_path: Path) -> None:
    manifest = generate_dataset(
        tmp_path,
        n_experiments=1,
        wells_per_class=1,
        fields_per_well=1,
        timepoints_h=(0, 48),
        size=64,
        bit_depth=16,
        label_by="state",
    )
    with manifest.open() as fh:
        rows = list(csv.DictReader(fh))
    by = {(r["condition"], r["hours_since_induction"]): r["label"] for r in rows}
    assert by[("induced", "0")] == "undifferentiated"
    assert by[("induced", "48")] == "differentiated"
    assert tifffile.imread(tmp_path / rows[0]["path"]).dtype == np.uint16


def test_bad_arguments_are_named(tmp_path: Path) -> None:
    with pytest.raises(SynthError, match="label_by"):
        generate_dataset(tmp_path, label_by="mood")  # type: ignore[arg-type]
    with pytest.raises(SynthError, match="timepoints_h"):
        generate_dataset(tmp_path, timepoints_h=(-6, 0))
