"""The paired fluorescence channel (Kusumoto et al. 2018): a differentiation marker with
autofluorescence in dense colonies and faint staining."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import tifffile

from stemwatch.core.stainmask import TRUTH_STAINED, TRUTH_UNSTAINED
from stemwatch.synth.biology import ColonyView
from stemwatch.synth.dataset import generate_dataset
from stemwatch.synth.difficulty import SynthError, get_difficulty
from stemwatch.synth.fluorescence import (
    Camera,
    FluorescenceSpec,
    is_dense,
    render_fluorescence,
    render_for,
)
from stemwatch.synth.plate import plan_plate
from stemwatch.synth.spec import PlateSpec

CLEAN = FluorescenceSpec(autofluorescence_rate=0.0, faint_rate=0.0)
CAMERA = Camera(offset_dn=100.0, read_sd_dn=6.0)


def colony(cx: float, cy: float, radius: float, d: float, seed: int) -> ColonyView:
    return ColonyView(
        cx=cx,
        cy=cy,
        radius=radius,
        d=d,
        shape_amp=(0.0,) * 10,
        shape_phase=(0.0,) * 10,
        aspect=1.0,
        angle=0.0,
        seed=seed,
        age_h=24.0,
    )


def test_undifferentiated_fields_have_no_stained_cell_and_induced_ones_do() -> None:
    plan = plan_plate(
        PlateSpec(
            wells=["A01", "B01"],
            induced=["B01"],
            induction_h=0.0,
            times_h=(0, 12, 48),
            size=256,
            n_fields=2,
            seed=5,
            difficulty=get_difficulty("default", spontaneous_fraction=0.0),
        )
    )
    for t in range(3):
        for fld in range(2):
            f = render_for(plan, "A01", fld, t, CLEAN)
            assert f.n_cells > 0 and (f.truth == TRUTH_UNSTAINED).any()
            assert f.n_stained == 0 and not (f.truth == TRUTH_STAINED).any()
    induced = render_for(plan, "B01", 0, 2, CLEAN)
    assert induced.n_stained > induced.n_cells // 2
    assert (induced.truth == TRUTH_STAINED).mean() > 0.2
    # stained cells are bright: far above the camera background (the maintenance well's
    # field at the same time; the induced field may be confluent, with no background left)
    bg = np.median(render_for(plan, "A01", 0, 2, CLEAN).image)
    assert np.median(induced.image[induced.truth == TRUTH_STAINED]) > bg + 50


def test_autofluorescence_only_in_dense_colonies() -> None:
    views = [
        colony(70, 70, 95, 0.0, seed=1),  # large and compact: dense
        colony(200, 60, 35, 0.0, seed=2),  # small compact colony
        colony(130, 190, 95, 0.9, seed=3),  # large, differentiated (flat, spread cells)
    ]
    assert [is_dense(v, 1.0) for v in views] == [True, False, False]
    spec = FluorescenceSpec(autofluorescence_rate=1.0, faint_rate=0.0)
    glow = render_fluorescence(views, 256, np.random.default_rng(0), spec, camera=CAMERA)
    clean = render_fluorescence(views, 256, np.random.default_rng(0), CLEAN, camera=CAMERA)
    assert glow.n_autofluorescent == 1 and clean.n_autofluorescent == 0
    assert np.array_equal(glow.truth, clean.truth)  # autofluorescence is not stain
    diff = glow.image.astype(float) - clean.image.astype(float)
    yy, xx = np.mgrid[0:256, 0:256]

    def near(v: ColonyView, r: float) -> np.ndarray:
        return np.hypot(yy - v.cy, xx - v.cx) < r

    assert diff[near(views[0], 20)].mean() > 40  # the dense colony's centre glows
    assert abs(diff[near(views[1], 20)].mean()) < 1  # the others do not change at all
    assert abs(diff[near(views[2], 30)].mean()) < 1
    # a dense colony does not glow when the rate is 0, and never stains
    assert not (clean.truth[near(views[0], 30)] == TRUTH_STAINED).any()


def test_faint_staining_dims_the_stained_cells_only() -> None:
    views = [colony(128, 128, 100, 1.0, seed=4)]
    faint = FluorescenceSpec(autofluorescence_rate=0.0, faint_rate=1.0)
    bright = render_fluorescence(views, 256, np.random.default_rng(1), CLEAN, camera=CAMERA)
    dim = render_fluorescence(views, 256, np.random.default_rng(1), faint, camera=CAMERA)
    assert dim.faint and not bright.faint
    assert np.array_equal(dim.truth, bright.truth)  # the same cells are stained
    stained = bright.truth == TRUTH_STAINED
    assert stained.mean() > 0.2
    bg = float(np.median(bright.image[bright.truth == 0]))
    signal_bright = np.median(bright.image[stained]) - bg
    signal_dim = np.median(dim.image[stained]) - bg
    assert signal_dim < 0.3 * signal_bright
    assert signal_dim < 4 * CAMERA.read_sd_dn  # near the noise: a threshold misses it


def test_bad_rates_are_named() -> None:
    with pytest.raises(SynthError, match=r"autofluorescence_rate=1\.5"):
        FluorescenceSpec(autofluorescence_rate=1.5)
    with pytest.raises(SynthError, match=r"faint_rate=-0\.1"):
        FluorescenceSpec(faint_rate=-0.1)


def test_dataset_writes_a_fluorescence_image_per_image_with_truth(tmp_path: Path) -> None:
    kwargs = dict(n_experiments=1, wells_per_class=1, fields_per_well=1, size=96, seed=2)
    manifest = generate_dataset(tmp_path / "a", timepoints_h=(0, 48), fluorescence=CLEAN, **kwargs)
    fdir = tmp_path / "a" / "fluorescence"
    rows = list(csv.DictReader(manifest.open()))
    names = sorted(Path(r["path"]).name for r in rows)
    assert sorted(p.name for p in fdir.glob("*.tif")) == names
    assert sorted(p.name for p in (fdir / "truth").glob("*.tif")) == names
    assert [p.name for p in (fdir / "control").glob("*.tif")] == ["SYN002E01.tif"]
    truth = list(csv.DictReader((fdir / "truth.csv").open()))
    assert sorted(r["image"] + ".tif" for r in truth) == names
    for r in truth:
        if r["well"] == "A01":
            assert r["n_stained"] == "0"
    img = tifffile.imread(fdir / names[0])
    assert img.dtype == np.uint16 and img.shape == (96, 96)
    # the label-free images are the same bytes with or without the paired channel
    plain = generate_dataset(tmp_path / "b", timepoints_h=(0, 48), **kwargs)
    for r in csv.DictReader(plain.open()):
        a = (tmp_path / "a" / r["path"]).read_bytes()
        assert a == (tmp_path / "b" / r["path"]).read_bytes()
    assert not (tmp_path / "b" / "fluorescence").exists()
