"""Cell lines: the hiPSC default stays byte-identical, mESC (2i+LIF -> EpiLC) reaches from the
CLI and the API down to the pixels and looks the way Waisman et al. 2019 describe it."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from stemwatch.cli import main
from stemwatch.synth.biology import views_for_field
from stemwatch.synth.cellline import get_cell_line
from stemwatch.synth.dataset import generate_dataset
from stemwatch.synth.difficulty import SynthError, get_difficulty
from stemwatch.synth.plate import PlatePlan, plan_plate
from stemwatch.synth.render import form_image, render_specimen
from stemwatch.synth.spec import PlateSpec

PLAIN = get_difficulty("default", tone_match=0.0, contrast_jitter=0.0)

# sha256 (first 16 hex) of the four 256² fields below, computed on the generator of the third
# realism pass (h-realism e250246) before cell lines existed: the default must not change by a
# single byte
HIPSC_BRIGHTFIELD = "595b60ef188a8aee"
HIPSC_PHASE_8BIT = "713740eb56db3e43"


def digest(**changes: object) -> str:
    spec = PlateSpec(wells=["A01", "A02"], n_fields=1, times_h=(0.0, 24.0), size=256, seed=5)
    plan = plan_plate(spec.replace(**changes))
    h = hashlib.sha256()
    for well in ("A01", "A02"):
        for t in range(2):
            h.update(plan.render(well, 0, t).tobytes())
    return h.hexdigest()[:16]


def test_the_default_hipsc_output_is_byte_identical() -> None:
    assert digest() == HIPSC_BRIGHTFIELD
    assert digest(cell_line="hipsc") == HIPSC_BRIGHTFIELD
    assert digest(modality="phase", bit_depth=8) == HIPSC_PHASE_8BIT


def test_mesc_same_seed_same_bytes_and_not_hipsc() -> None:
    a = digest(cell_line="mesc")
    assert a == digest(cell_line="mesc")
    assert a != HIPSC_BRIGHTFIELD
    assert digest(cell_line="mesc", seed=6) != a


def test_unknown_cell_line_is_refused_with_the_choices() -> None:
    with pytest.raises(SynthError, match=r"cell_line 'rat'.*hipsc, mesc"):
        PlateSpec(cell_line="rat")


def test_api_and_cli_round_trip_the_cell_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kw = dict(n_experiments=1, wells_per_class=1, fields_per_well=1, timepoints_h=(0.0, 24.0))
    api = generate_dataset(tmp_path / "api", size=64, cell_line="mesc", **kw)  # type: ignore[arg-type]
    rows = list(csv.DictReader(api.open()))
    assert {r["cell_line"] for r in rows} == {"mesc"}
    default = generate_dataset(tmp_path / "default", size=64, **kw)  # type: ignore[arg-type]
    assert {r["cell_line"] for r in csv.DictReader(default.open())} == {"hipsc"}
    argv = ["synth", "dataset", str(tmp_path / "cli"), "--cell-line", "mesc", "--size", "64"]
    argv += ["--experiments", "1", "--wells-per-class", "1", "--fields", "1", "--hours", "0,24"]
    assert main([*argv, "--workers", "1"]) == 0
    for r in rows:  # the same images, byte for byte
        cli = (tmp_path / "cli" / r["path"]).read_bytes()
        assert cli == (tmp_path / "api" / r["path"]).read_bytes()
        assert cli != (tmp_path / "default" / r["path"]).read_bytes()
    argv = ["synth", "plate", str(tmp_path / "plate"), "--cell-line", "mesc", "--wells", "A01"]
    argv += ["--fields", "1", "--timepoints", "1", "--size", "64", "--workers", "1"]
    assert main(argv) == 0
    capsys.readouterr()
    tif = next((tmp_path / "plate").glob("*.tif"))
    import tifffile

    spec = PlateSpec(wells=["A01"], n_fields=1, n_timepoints=1, size=64, cell_line="mesc")
    assert np.array_equal(tifffile.imread(tif), plan_plate(spec).render("A01", 0, 0))
    assert plan_plate(spec).wells["A01"].cell_line == "mesc"


def _plan(line: str, seed: int, hours: float, size: int = 384) -> PlatePlan:
    spec = PlateSpec(
        wells=["A01", "A02"],
        n_fields=1,
        times_h=(hours,),
        size=size,
        seed=seed,
        induced=["A02"],
        induction_h=0.0,
        cell_line=line,
    )
    return plan_plate(spec)


def _measure(line: str, well: str, hours: float, seed: int) -> dict[str, float]:
    """Thickness, border halo and cell-border texture of one rendered field's colonies."""
    size = 384
    plan = _plan(line, seed, hours, size)
    views = views_for_field(plan.wells[well], hours, plan.origin(well, 0, 0), size, 1.0)
    rng = np.random.default_rng(seed)
    look = plan.cell_line.look
    spec = render_specimen(views, size, rng, look=look)
    cover, phase = spec.cover.copy(), spec.phase.copy()
    mod, _, _ = form_image(spec, rng, PLAIN, look=look)
    colony = cover > 0.5
    interior = ndi.binary_erosion(cover > 0.99, iterations=6)
    halo = ndi.binary_dilation(colony, iterations=2) & ~colony
    # cell borders: band-pass of the optical path at 0.7-2.5 µm inside the colonies
    band = ndi.gaussian_filter(phase, 0.7) - ndi.gaussian_filter(phase, 2.5)
    q25, q75 = np.percentile(band[interior], [25, 75])
    return {
        "path": float(np.median(phase[interior])),
        "halo": float(np.mean(mod[halo]) / np.std(mod[interior])),
        "texture": float(q75 - q25),
    }


@pytest.mark.parametrize("seed", [2, 3])
def test_2i_domes_are_thick_and_bright_rimmed_epilc_flat_with_visible_cells(seed: int) -> None:
    """Waisman et al. 2019: 2i colonies are 3-D domes with a bright, refractile border and
    cells that cannot be told apart; 24 h after induction EpiLC colonies are flat
    monolayers with a weak border and visible cells."""
    dome = _measure("mesc", "A01", 0.0, seed)
    epi = _measure("mesc", "A02", 24.0, seed)
    assert epi["path"] < 0.3 * dome["path"], (dome, epi)  # flatter: less optical path
    assert epi["halo"] < 0.5 * dome["halo"], (dome, epi)  # border no longer phase-bright
    assert epi["texture"] > 1.1 * dome["texture"], (dome, epi)  # cell borders show


def test_mesc_colonies_are_many_small_and_spread_on_induction() -> None:
    """2i colonies are seeded smaller and more numerous than hiPSC ones; induced EpiLC
    colonies cover more dish than their 2i neighbours 24 h later (spreading)."""
    r: dict[str, list[float]] = {"hipsc": [], "mesc": [], "2i 24h": [], "EpiLC 24h": []}
    n: dict[str, int] = {"hipsc": 0, "mesc": 0}
    for seed in range(3):
        for line in ("hipsc", "mesc"):
            plan = _plan(line, seed, 0.0)
            views = views_for_field(plan.wells["A01"], 0.0, plan.origin("A01", 0, 0), 384, 1.0)
            r[line] += [v.radius for v in views]
            n[line] += len(plan.wells["A01"].colonies)
        plan = _plan("mesc", seed, 24.0)
        for well, key in (("A01", "2i 24h"), ("A02", "EpiLC 24h")):
            views = views_for_field(plan.wells[well], 24.0, plan.origin(well, 0, 0), 384, 1.0)
            r[key] += [v.radius for v in views]
    assert np.median(r["mesc"]) < 0.5 * np.median(r["hipsc"]), r
    assert n["mesc"] > 2 * n["hipsc"], n
    assert np.median(r["EpiLC 24h"]) > 1.2 * np.median(r["2i 24h"]), r


def test_named_lines_share_the_microscope_but_not_the_cells() -> None:
    hipsc, mesc = get_cell_line("hipsc"), get_cell_line("mesc")
    assert mesc.look.camera_blur_px == hipsc.look.camera_blur_px  # the same camera
    assert mesc.look.cell_um < hipsc.look.cell_um
    assert mesc.growth.area_doubling_h != hipsc.growth.area_doubling_h
