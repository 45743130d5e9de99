"""The realism gauge: texture features, grouped separability, the end-to-end command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

pytest.importorskip("sklearn")

from stemwatch.cli import main
from stemwatch.evaluation.realism import (
    RealismError,
    bin_image,
    comparison_table,
    cut_crops,
    load_summary,
    ome_pixel_size_um,
    plot_comparison,
    run_gauge,
    separability,
    synthetic_images,
)
from stemwatch.evaluation.texture import feature_family, feature_names, texture_features
from stemwatch.synth.plate import generate_plate
from stemwatch.synth.spec import PlateSpec


@pytest.mark.parametrize("feature_set", ["basic", "full"])
def test_features_have_names_and_ignore_gain_and_offset(feature_set: str) -> None:
    rng = np.random.default_rng(0)
    img = synthetic_images(1, size=256, pixel_size_um=1.0, hours=(24,), bit_depth=16)[0][1]
    f = texture_features(img, feature_set)
    assert f.shape == (len(feature_names(feature_set)),) and np.isfinite(f).all()
    assert len(feature_names("basic")) == 18 and len(feature_names("full")) == 68
    # intensity-normalised: exposure (gain) and offset do not change the features
    brighter = img.astype(np.float64) * 3.7 + 100.0
    g = texture_features(brighter, feature_set)
    counts = np.array([feature_family(n) == "blobs" for n in feature_names(feature_set)])
    np.testing.assert_allclose(g[~counts], f[~counts], rtol=1e-4, atol=1e-4)
    # blob counts per 10,000 px: float rounding may tip one extremum over the threshold
    np.testing.assert_allclose(g[counts], f[counts], atol=1.01 * 10_000 / img.size)
    assert not np.allclose(texture_features(rng.normal(size=(256, 256)), feature_set), f)
    assert {feature_family(n) for n in feature_names(feature_set)} >= {"local sd", "ps", "grad"}


def _crops_from(images: list[tuple[str, np.ndarray]], crop: int) -> list:
    out = []
    for name, img in images:
        out += cut_crops(img, name, crop)
    return out


def _gauge(a: list, b: list) -> tuple[float, float]:
    crops = a + b
    x = np.array([texture_features(c.pixels, "basic") for c in crops])
    y = np.array([0] * len(a) + [1] * len(b))
    sep = separability(
        x, y, [c.source for c in crops], feature_names("basic"), repeats=2, n_boot=200
    )
    lo, hi = sep.balanced_accuracy_ci
    assert lo <= sep.balanced_accuracy <= hi
    assert len(sep.fold_balanced_accuracy) == sep.n_folds * 2
    assert sep.permutation_importance and sep.family_importance
    return sep.balanced_accuracy, sep.roc_auc


def test_same_generator_is_near_chance_and_a_different_texture_is_not() -> None:
    kw = {"size": 256, "pixel_size_um": 1.0, "hours": (0.0, 24.0, 48.0), "bit_depth": 8}
    a = _crops_from(synthetic_images(12, seed=1, **kw), 128)  # type: ignore[arg-type]
    b = _crops_from(synthetic_images(12, seed=2, **kw), 128)  # type: ignore[arg-type]
    ba, auc = _gauge(a, b)
    assert ba < 0.7 and auc < 0.75, (ba, auc)
    # the same fields, each blurred a little (a different texture, same content)
    from scipy import ndimage as ndi

    blurred = [
        type(c)(ndi.gaussian_filter(c.pixels, 1.2), c.source + " blurred", c.y, c.x) for c in b
    ]
    ba, auc = _gauge(a, blurred)
    assert ba > 0.9 and auc > 0.95, (ba, auc)


def test_crops_skip_a_black_surround_and_binning_averages() -> None:
    yy, xx = np.mgrid[0:512, 0:512]
    well = np.where(np.hypot(yy - 256, xx - 256) < 200, 120, 0).astype(np.uint8)
    well[250:260, 250:260] = 40  # a little debris inside the well stays
    crops = cut_crops(well, "well", 128)
    assert {(c.y, c.x) for c in crops} == {(128, 128), (128, 256), (256, 128), (256, 256)}
    img = np.arange(16, dtype=np.uint16).reshape(4, 4)
    np.testing.assert_array_equal(bin_image(img, 2), [[2, 4], [10, 12]])  # rounded means


def test_ome_pixel_size() -> None:
    assert ome_pixel_size_um('<Pixels PhysicalSizeX="0.65" PhysicalSizeXUnit="µm"/>') == 0.65
    assert ome_pixel_size_um('<Pixels PhysicalSizeX="650" PhysicalSizeXUnit="nm"/>') == 0.65
    assert ome_pixel_size_um('<Pixels PhysicalSizeX="2" PhysicalSizeXUnit="&#181;m"/>') == 2.0
    assert ome_pixel_size_um("<Pixels/>") is None and ome_pixel_size_um(None) is None


@pytest.fixture(scope="module")
def fake_real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """'Real' images: the generator's own OME-TIFFs (8-bit, pixel size in the metadata)."""
    out = tmp_path_factory.mktemp("fake_real")
    generate_plate(
        out,
        PlateSpec(wells=["A01", "A03", "B01"], n_fields=1, n_timepoints=2, size=256, bit_depth=8),
    )
    return out


def test_gauge_reports_figures_and_writes_plots(fake_real: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    report = run_gauge(
        fake_real,
        crop=128,
        feature_set="basic",
        synthetic_size=256,
        repeats=1,
        out_dir=tmp_path / "gauge",
    )
    assert report.pixel_size_um == 1.0  # from the OME metadata
    assert report.n_real_images == 6 and report.n_real_crops == 24
    assert report.n_synthetic_crops >= report.n_real_crops
    data = json.loads((tmp_path / "gauge" / "report.json").read_text())
    assert 0.0 <= data["balanced_accuracy"] <= 1.0 and len(data["roc_auc_ci95"]) == 2
    for name in ("features.csv", "features.png", "crops.png"):
        assert (tmp_path / "gauge" / name).stat().st_size > 0
    assert "balanced accuracy" in report.text() and "ROC-AUC" in report.text()


def test_realism_command(
    fake_real: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    argv = ["synth", "realism", str(fake_real), "--crop", "128", "--features", "basic"]
    argv += ["--synthetic-size", "256", "--repeats", "1", "--modality", "phase"]
    assert main([*argv, "--pixel-size-um", "1.0", "-o", str(tmp_path / "g")]) == 0
    out = capsys.readouterr().out
    assert "balanced accuracy" in out and "phase" in out
    assert (tmp_path / "g" / "report.json").is_file()


def test_gauge_errors_name_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "realism", str(tmp_path)]) == 2
    assert "holds no images" in capsys.readouterr().err
    for i in range(2):
        tifffile.imwrite(tmp_path / f"plain{i}.tif", np.full((300, 300), 100, np.uint8))
    with pytest.raises(RealismError, match="--pixel-size-um"):
        run_gauge(tmp_path)


@pytest.mark.slow
@pytest.mark.shared
def test_gauge_runs_on_the_real_hipsc_tiles(shared_real: Path) -> None:
    """The real tiles carry no pixel size: the gauge needs it given, and runs."""
    report = run_gauge(
        shared_real / "hipsc-colonies",
        pixel_size_um=1.0,
        feature_set="basic",
        max_crops_per_image=6,
        n_synthetic=4,
        repeats=1,
    )
    assert report.n_real_images == 4 and report.n_real_crops == 24
    assert 0.0 <= report.separability.balanced_accuracy <= 1.0


def _summary(ba: float, auc: float) -> dict[str, object]:
    return {
        "balanced_accuracy": ba,
        "balanced_accuracy_ci95": [ba - 0.05, min(1.0, ba + 0.05)],
        "roc_auc": auc,
        "roc_auc_ci95": [auc - 0.03, min(1.0, auc + 0.03)],
    }


def test_before_after_table_and_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "report.json").write_text(json.dumps(_summary(0.95, 0.99)))
    before = load_summary(tmp_path / "run")
    rows = [("colonies", before, _summary(0.7, 0.8))]
    table = comparison_table(rows).splitlines()
    assert len(table) == 3
    cells = "0.95 (0.90-1.00) | 0.70 (0.65-0.75) | 0.99 (0.96-1.00) | 0.80 (0.77-0.83)"
    assert table[2] == f"| colonies | {cells} |"
    png = plot_comparison(tmp_path / "cmp.png", rows)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "bad.json").write_text(json.dumps({"roc_auc": 0.5}))
    with pytest.raises(RealismError, match="balanced_accuracy"):
        load_summary(tmp_path / "bad.json")
    with pytest.raises(RealismError, match="not a realism report"):
        load_summary(tmp_path / "missing")
