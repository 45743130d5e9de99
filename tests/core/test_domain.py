"""The training-domain description: fitting, distances, tile statistics, thresholds, and how
it travels in a model's metadata."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from scipy import ndimage as ndi

from stemwatch.core.domain import (
    STATISTICS,
    DomainDescription,
    FeatureGaussian,
    calibrate_threshold,
    fit_gaussian,
    image_distance,
    tile_statistics,
)
from stemwatch.core.imaging import TilingSpec, prepare
from stemwatch.core.modelmeta import METADATA_KEY, ModelMetadata

# -- the Gaussian ------------------------------------------------------------------------------


def correlated(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    return rng.normal(size=(n, dim)) @ mix + 3.0


def test_full_rank_fit_is_the_exact_mahalanobis_distance() -> None:
    x = correlated(4000, 6)
    g = fit_gaussian(x, max_components=32, transform="none")
    assert g.variances.shape == (5,)  # k = C - 1; the residual variance holds the last one
    probe = correlated(50, 6, seed=1) * 1.5
    z = probe - x.mean(axis=0)
    exact = np.sqrt(np.einsum("ij,jk,ik->i", z, np.linalg.inv(np.cov(x.T)), z) / 6)
    np.testing.assert_allclose(g.distances(probe), exact, rtol=1e-3)


def test_in_distribution_distances_are_about_one_and_shifts_are_far() -> None:
    x = correlated(3000, 64)
    g = fit_gaussian(x, max_components=8, transform="none")  # low rank + residual
    inside = g.distances(correlated(500, 64, seed=2))
    assert 0.85 < np.median(inside) < 1.15
    shifted = correlated(500, 64, seed=3)
    shifted[:, :8] += 5.0  # five standard deviations along a few directions
    assert np.median(g.distances(shifted)) > 1.5 * np.median(inside)


def test_fit_refuses_too_little_or_non_finite_data() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        fit_gaussian(np.ones((1, 4)))
    bad = correlated(10, 4)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fit_gaussian(bad)
    g = fit_gaussian(correlated(10, 4))
    with pytest.raises(ValueError, match=r"expected \(N, 4\)"):
        g.distances(np.zeros((3, 5)))


def test_constant_feature_does_not_divide_by_zero() -> None:
    x = correlated(200, 5)
    x[:, 2] = 1.0  # a dead unit
    g = fit_gaussian(x, transform="none")
    assert np.all(np.isfinite(g.distances(x)))


def test_signed_sqrt_transform_handles_negative_features() -> None:
    x = correlated(300, 4) - 3.0
    g = fit_gaussian(x)
    assert g.transform == "signed-sqrt" and np.all(np.isfinite(g.distances(x)))


def test_gaussian_round_trips_through_json_compactly() -> None:
    g = fit_gaussian(correlated(500, 256), max_components=32)
    text = g.model_dump_json()
    again = FeatureGaussian.model_validate_json(text)
    np.testing.assert_array_equal(again.components, g.components)
    assert again.residual_variance == g.residual_variance
    assert len(text) < 60_000  # base64 float32, not lists of decimals
    data = json.loads(text)
    data["variances"]["shape"] = [31]
    with pytest.raises(ValueError, match="bytes do not hold"):
        FeatureGaussian.model_validate(data)


# -- images from tiles, thresholds -------------------------------------------------------------


def test_image_distance_is_the_median_of_its_tiles() -> None:
    assert image_distance(np.array([1.0, 1.2, 0.9, 25.0])) == pytest.approx(1.1)  # debris
    assert np.isnan(image_distance(np.array([])))


def test_threshold_never_below_what_the_held_out_images_show() -> None:
    d = np.random.default_rng(0).lognormal(0.0, 0.3, 300)
    thr = calibrate_threshold(d, 0.99, margin=0.0)
    assert thr >= np.quantile(d, 0.99)
    assert (d > thr).mean() <= 0.01
    assert calibrate_threshold(d, 0.99, margin=0.15) == pytest.approx(1.15 * thr)
    # a few dozen images: the parametric quantile is at least the empirical one
    few = d[:30]
    assert calibrate_threshold(few, 0.99, margin=0.0) >= few.max() - 1e-12
    with pytest.raises(ValueError, match="at least 2"):
        calibrate_threshold(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"quantile must lie in \(0, 1\)"):
        calibrate_threshold(d, 1.0)


# -- tile statistics -----------------------------------------------------------------------------


def texture(seed: int, size: int = 512, sigma: float = 1.5) -> np.ndarray:
    """A cell-like texture: smoothed noise with a few dark dots, as uint16."""
    rng = np.random.default_rng(seed)
    img = ndi.gaussian_filter(rng.normal(size=(size, size)), sigma)
    img = img / img.std()
    dots = rng.integers(0, size, (2, 60))
    img[dots[0], dots[1]] -= 6.0
    return np.clip(20000 + 3000 * img, 0, 65535).astype(np.uint16)


TILING = TilingSpec(downsample=2, tile_size=64, max_tiles=64)


def tiles_of(pixels: np.ndarray) -> np.ndarray:
    return prepare(pixels, None, TILING).data


def test_tile_statistics_shape_spread_and_finite_on_flat_tiles() -> None:
    t = tiles_of(texture(0))
    assert len(t) == 16
    stats = tile_statistics(t, max_tiles=8)
    assert stats.shape == (8, len(STATISTICS)) and np.all(np.isfinite(stats))
    flat = np.zeros((2, 1, 64, 64), np.float32)
    assert np.all(np.isfinite(tile_statistics(flat)))
    with pytest.raises(ValueError, match="S>=32"):
        tile_statistics(np.zeros((2, 1, 16, 16), np.float32))


def test_blur_moves_variance_to_coarser_octaves() -> None:
    sharp = tile_statistics(tiles_of(texture(1)))
    blurred = tile_statistics(tiles_of(ndi.gaussian_filter(texture(1).astype(float), 4)))
    fine = STATISTICS.index("octave_1px")
    coarse = STATISTICS.index("octave_16px")
    assert np.median(blurred[:, fine]) < np.median(sharp[:, fine]) - 1.0
    assert np.median(blurred[:, coarse]) > np.median(sharp[:, coarse])


# -- the description, and the metadata that carries it ------------------------------------------


def describe(seeds: range, *, margin: float = 0.15) -> DomainDescription:
    """A statistics-only description fitted on textures, calibrated on others."""
    fit = np.concatenate([tile_statistics(tiles_of(texture(s))) for s in seeds])
    g = fit_gaussian(fit, transform="none")
    held = [
        image_distance(g.distances(tile_statistics(tiles_of(texture(s))))) for s in range(50, 70)
    ]
    scale = float(np.median(held))
    return DomainDescription(
        statistics=g,
        statistics_scale=scale,
        threshold=calibrate_threshold(np.array(held) / scale, margin=margin),
    )


@pytest.fixture(scope="module")
def description() -> DomainDescription:
    return describe(range(20))


def test_score_image_tells_in_domain_from_blurred_and_fluorescent(
    description: DomainDescription,
) -> None:
    for seed in (100, 101, 102):
        assert not description.score_image(tiles_of(texture(seed))).out_of_domain
    blurred = ndi.gaussian_filter(texture(103).astype(float), 6)
    rng = np.random.default_rng(104)
    spots = np.zeros((512, 512))
    spots[rng.integers(0, 512, 300), rng.integers(0, 512, 300)] = 1.0
    fluorescent = 100 + 3000 * ndi.gaussian_filter(spots, 3) / 0.02 + rng.normal(0, 5, (512, 512))
    for foreign in (blurred, np.clip(fluorescent, 0, 65535).astype(np.uint16)):
        score = description.score_image(tiles_of(foreign))
        assert score.out_of_domain and score.score > 1.0
        assert score.score == pytest.approx(score.distance / description.threshold)


def test_features_part_needs_the_features(description: DomainDescription) -> None:
    feats = fit_gaussian(correlated(300, 16))
    both = description.model_copy(update={"features": feats, "output_name": "features"})
    with pytest.raises(ValueError, match="needs the model's 'features'"):
        both.score_image(tiles_of(texture(5)))
    t = tiles_of(texture(5))
    score = both.score_image(t, correlated(len(t), 16, seed=9))
    assert len(both.distances(t, correlated(len(t), 16, seed=9))) == 2 and score.n_tiles == len(t)
    with pytest.raises(ValueError, match="go together"):
        DomainDescription.model_validate({**description.model_dump(), "output_name": "features"})


def base_meta(**extra: object) -> ModelMetadata:
    return ModelMetadata(
        name="m",
        architecture="tiny",
        class_names=["undifferentiated", "differentiated"],
        positive_class="differentiated",
        **extra,  # type: ignore[arg-type]
    )


def test_domain_travels_in_the_metadata(description: DomainDescription) -> None:
    meta = base_meta(domain=description)
    again = ModelMetadata.from_props({METADATA_KEY: meta.to_json()}, "m.onnx")
    assert again.domain is not None
    assert again.domain.threshold == description.threshold
    np.testing.assert_array_equal(again.domain.statistics.mean, description.statistics.mean)
    t = tiles_of(texture(7))
    assert again.domain.score_image(t) == description.score_image(t)
    # a model without one is still a model
    assert ModelMetadata.from_props({METADATA_KEY: base_meta().to_json()}, "m").domain is None


def test_a_newer_or_broken_domain_drops_the_check_not_the_model(
    description: DomainDescription, caplog: pytest.LogCaptureFixture
) -> None:
    data = json.loads(base_meta(domain=description).to_json())
    data["domain"]["gaussian_kind"] = "added by a newer stemwatch"  # unknown field: ignored
    meta = ModelMetadata.from_props({METADATA_KEY: json.dumps(data)}, "new.onnx")
    assert meta.domain is not None
    data["domain"]["kind"] = "normalising-flow"  # a kind this stemwatch cannot apply
    with caplog.at_level(logging.WARNING):
        meta = ModelMetadata.from_props({METADATA_KEY: json.dumps(data)}, "new.onnx")
    assert meta.domain is None and meta.name == "m"
    assert "new.onnx: metadata field domain cannot be used" in caplog.text
    assert "kind" in caplog.text and "re-export" in caplog.text
