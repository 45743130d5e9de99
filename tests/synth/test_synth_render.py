"""The renderer's optics: modality, pixel size, the look of compact and differentiated cells."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from stemwatch.cli import main
from stemwatch.synth.biology import N_HARMONICS, ColonyView
from stemwatch.synth.difficulty import SynthError, get_difficulty
from stemwatch.synth.plate import plan_plate
from stemwatch.synth.render import render_field, render_specimen
from stemwatch.synth.spec import PlateSpec

PLAIN = get_difficulty("default", tone_match=0.0, contrast_jitter=0.0)


def colony(size: int, radius: float, d: float = 0.0, seed: int = 3) -> ColonyView:
    """One round colony in the middle of a ``size``² field."""
    zeros = (0.0,) * N_HARMONICS
    return ColonyView(size / 2, size / 2, radius, d, zeros, zeros, 1.0, 0.0, seed, age_h=24.0)


def mean_frequency(img: np.ndarray) -> float:
    """Power-weighted mean spatial frequency (cycles/px) above the colony's own scale."""
    a = img - img.mean()
    p = np.abs(np.fft.rfft2(a * np.hanning(a.shape[0])[:, None] * np.hanning(a.shape[1]))) ** 2
    f = np.hypot(np.fft.fftfreq(a.shape[0])[:, None], np.fft.rfftfreq(a.shape[1])[None, :])
    m = f > 0.02
    return float((p[m] * f[m]).sum() / p[m].sum())


def cell_texture(ps: float, d: float) -> np.ndarray:
    """The optical path inside a colony that covers the whole 256² field."""
    spec = render_specimen(
        [colony(256, 2000.0 / ps, d)], 256, np.random.default_rng(1), pixel_size_um=ps
    )
    return spec.phase


def test_cells_keep_their_size_in_micrometres() -> None:
    """Half the pixel size, twice the pixels per cell: the texture's frequency halves."""
    ratio = mean_frequency(cell_texture(0.5, 0.0)) / mean_frequency(cell_texture(1.0, 0.0))
    assert 0.4 < ratio < 0.65, ratio
    ratio = mean_frequency(cell_texture(2.0, 0.0)) / mean_frequency(cell_texture(1.0, 0.0))
    assert 1.4 < ratio < 2.4, ratio


def test_differentiated_cells_are_larger_and_flatter() -> None:
    compact, flat = cell_texture(1.0, 0.0), cell_texture(1.0, 1.0)
    assert mean_frequency(compact) > 1.25 * mean_frequency(flat)  # larger cells
    assert np.median(flat) < 0.6 * np.median(compact)  # a thinner sheet


def test_pixel_size_outside_the_range_is_refused() -> None:
    for bad in (0.2, 3.0):
        with pytest.raises(SynthError, match=r"pixel_size_um=.*0\.5-2"):
            PlateSpec(wells=["A01"], n_fields=1, n_timepoints=1, size=64, pixel_size_um=bad)
    with pytest.raises(SynthError, match="modality"):
        PlateSpec(wells=["A01"], n_timepoints=1, size=64, modality="fluorescence")


def _rings(img: np.ndarray, radius: float) -> tuple[float, float, float]:
    """Median inside the colony, in a thin band just outside its border, far outside."""
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    r = np.hypot(yy - img.shape[0] / 2, xx - img.shape[1] / 2)
    a = img.astype(np.float64)
    inside = float(np.median(a[r < radius - 10]))
    halo = float(np.mean(a[(r > radius + 1) & (r < radius + 4)]))
    out = float(np.median(a[r > radius + 40]))
    return inside, halo, out


@pytest.mark.parametrize("modality", ["brightfield", "phase"])
def test_modalities_darken_and_halo_as_real_optics_do(modality: str) -> None:
    """Phase contrast shows a colony dark with a bright halo; brightfield shows it barely
    darker than the background, its edge with a thin bright halo."""
    rng = np.random.default_rng(7)
    img = render_field(
        [colony(512, 150.0)], 512, rng, PLAIN, bit_depth=16, modality=modality
    ).astype(np.float64)
    inside, halo, out = _rings(img, 150.0)
    contrast = (out - inside) / out
    if modality == "phase":
        assert contrast > 0.05, contrast
    else:
        assert -0.03 < contrast < 0.05, contrast
    assert halo > out


def test_same_seed_same_bytes_in_phase_contrast() -> None:
    plan = plan_plate(PlateSpec(wells=["A01"], n_timepoints=2, size=128, modality="phase", seed=4))
    again = plan_plate(PlateSpec(wells=["A01"], n_timepoints=2, size=128, modality="phase", seed=4))
    a, b = plan.render("A01", 0, 1), again.render("A01", 0, 1)
    assert a.tobytes() == b.tobytes()
    bf = plan_plate(PlateSpec(wells=["A01"], n_timepoints=2, size=128, seed=4)).render("A01", 0, 1)
    assert bf.tobytes() != a.tobytes()


def test_cli_modality_and_pixel_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["synth", "dataset", str(tmp_path / "ds"), "--size", "64", "--experiments", "1"]
    argv += ["--wells-per-class", "1", "--fields", "1", "--hours", "0,24"]
    assert main([*argv, "--modality", "phase", "--pixel-size-um", "0.5"]) == 0
    with (tmp_path / "ds" / "manifest.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 4
    argv = ["synth", "plate", str(tmp_path / "pl"), "--wells", "A1", "--timepoints", "1"]
    assert main([*argv, "--size", "64", "--pixel-size-um", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pixel_size_um=3" in err
