"""The realism gauge: how well can a texture classifier tell real images from synthetic ones?

Crops of ``crop`` x ``crop`` pixels are cut at native resolution from the real images of a
folder and from synthetic fields rendered by :mod:`stemwatch.synth` at the same pixel size
(maintenance wells: undifferentiated colonies, by default; the same bit depth as the real
files). Each crop becomes a vector of intensity-normalised texture statistics
(:mod:`stemwatch.evaluation.texture`). A random forest is cross-validated with folds grouped
by source image (no image has crops on both sides of a split; the folds are repeated with
reshuffled groups and the out-of-fold probabilities averaged), and the gauge reports:

- balanced accuracy (threshold 0.5, balanced class weights) and ROC-AUC, each with a 95 %
  interval from a bootstrap over source images (images resampled within each class) and the
  range over folds;
- the features that separate most: permutation importance (drop in held-out ROC-AUC when one
  feature is shuffled, mean over the folds of the first repetition) and the ROC-AUC of each
  feature alone;
- plots: distributions of the top features, real vs synthetic, and a contact sheet of real
  and synthetic crops side by side at the same scale (1 image pixel = 1 screen pixel).

0.5 is indistinguishable; 1.0 is trivially told apart. Pixel sizes above what the generator
renders (2 µm/px, e.g. downsized whole-well images) are rendered at a fraction of the pixel
size and binned down, as a downsized stitched image is made.
"""

from __future__ import annotations

import csv
import html
import json
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from stemwatch.core.errors import StemwatchError
from stemwatch.core.imaging import IMAGE_SUFFIXES, read_image
from stemwatch.core.platemeta import well_from_index
from stemwatch.evaluation.texture import feature_family, feature_names, texture_features
from stemwatch.synth.plate import plan_plate
from stemwatch.synth.spec import PlateSpec

log = logging.getLogger(__name__)

MAX_RENDER_PIXEL_UM = 2.0
"""Coarser pixel sizes are rendered finer and binned down."""
LABELS = ("real", "synthetic")


class RealismError(StemwatchError):
    """The realism gauge cannot run on this input."""


@dataclass(frozen=True)
class Crop:
    """One crop: its pixels (float32), the image it came from and where."""

    pixels: np.ndarray
    source: str
    y: int
    x: int


@dataclass(frozen=True)
class Separability:
    """Cross-validated separability of two classes of crops, grouped by source image."""

    balanced_accuracy: float
    balanced_accuracy_ci: tuple[float, float]
    roc_auc: float
    roc_auc_ci: tuple[float, float]
    fold_balanced_accuracy: tuple[float, ...]
    fold_roc_auc: tuple[float, ...]
    n_folds: int
    n_repeats: int
    permutation_importance: tuple[tuple[str, float, float], ...]
    """(feature, mean drop in ROC-AUC, sd over folds), largest first."""
    family_importance: tuple[tuple[str, float, float], ...]
    """The same for families of features shuffled together (all LBP codes at radius 1,
    ...): with redundant features a single one shuffled costs little, a family more."""
    univariate_auc: tuple[tuple[str, float], ...]
    """(feature, ROC-AUC of the feature alone, oriented >= 0.5), largest first."""
    probability: np.ndarray = field(repr=False)
    """Out-of-fold probability of 'synthetic' per crop (mean over repetitions)."""


@dataclass(frozen=True)
class RealismReport:
    """What :func:`run_gauge` measured (figures, settings, where the plots went)."""

    real_dir: str
    pixel_size_um: float
    modality: str
    feature_set: str
    crop: int
    condition: str
    hours: tuple[float, ...]
    difficulty: str
    seed: int
    n_real_images: int
    n_real_crops: int
    n_synthetic_images: int
    n_synthetic_crops: int
    separability: Separability
    seconds: float
    files: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        s = self.separability
        out = {k: v for k, v in asdict(self).items() if k not in ("separability", "files")}
        out["balanced_accuracy"] = round(s.balanced_accuracy, 4)
        out["balanced_accuracy_ci95"] = [round(v, 4) for v in s.balanced_accuracy_ci]
        out["roc_auc"] = round(s.roc_auc, 4)
        out["roc_auc_ci95"] = [round(v, 4) for v in s.roc_auc_ci]
        out["fold_balanced_accuracy"] = [round(v, 4) for v in s.fold_balanced_accuracy]
        out["fold_roc_auc"] = [round(v, 4) for v in s.fold_roc_auc]
        out["n_folds"] = s.n_folds
        out["n_repeats"] = s.n_repeats
        out["top_permutation_importance"] = [
            {"feature": n, "auc_drop": round(m, 4), "sd": round(sd, 4)}
            for n, m, sd in s.permutation_importance[:10]
        ]
        out["family_importance"] = [
            {"family": n, "auc_drop": round(m, 4), "sd": round(sd, 4)}
            for n, m, sd in s.family_importance
        ]
        out["top_univariate_auc"] = [
            {"feature": n, "auc": round(a, 4)} for n, a in s.univariate_auc[:10]
        ]
        out["files"] = dict(self.files)
        return out

    def text(self) -> str:
        s = self.separability
        lo, hi = s.balanced_accuracy_ci
        alo, ahi = s.roc_auc_ci
        lines = [
            f"realism gauge: {self.n_real_crops} real crops from {self.n_real_images} images "
            f"in {self.real_dir} vs {self.n_synthetic_crops} synthetic crops from "
            f"{self.n_synthetic_images} fields ({self.condition}, {self.modality}, "
            f"{self.pixel_size_um:g} µm/px, {self.crop}² crops, {self.feature_set} features)",
            f"  balanced accuracy {s.balanced_accuracy:.3f} (95 % CI {lo:.3f}-{hi:.3f}, "
            f"folds {min(s.fold_balanced_accuracy):.3f}-{max(s.fold_balanced_accuracy):.3f})",
            f"  ROC-AUC           {s.roc_auc:.3f} (95 % CI {alo:.3f}-{ahi:.3f}, "
            f"folds {min(s.fold_roc_auc):.3f}-{max(s.fold_roc_auc):.3f})",
            f"  ({s.n_folds} folds grouped by source image x {s.n_repeats} repeats; "
            "0.5 = indistinguishable)",
            "  separating most (permutation importance, drop in ROC-AUC): "
            + ", ".join(f"{n} {m:.3f}" for n, m, _ in s.permutation_importance[:5]),
            "  families (shuffled together, drop in ROC-AUC): "
            + ", ".join(f"{n} {m:.3f}" for n, m, _ in s.family_importance[:5]),
            "  separating most (one feature alone, ROC-AUC): "
            + ", ".join(f"{n} {a:.2f}" for n, a in s.univariate_auc[:5]),
        ]
        lines += [f"  wrote {p}" for p in self.files.values()]
        return "\n".join(lines)


# --------------------------------------------------------------------------- crops


def find_images(real_dir: Path) -> list[Path]:
    """Image files (any suffix the reader takes) under ``real_dir``, sorted."""
    real_dir = Path(real_dir)
    if not real_dir.is_dir():
        raise RealismError(f"{real_dir} is not a folder; give a folder of real images")
    files = sorted(
        p for p in real_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise RealismError(
            f"{real_dir} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); "
            "give a folder of real microscope images"
        )
    return files


def ome_pixel_size_um(ome_xml: str | None) -> float | None:
    """``PhysicalSizeX`` of OME-XML in µm (µm, nm, mm units), None when absent."""
    if not ome_xml:
        return None
    m = re.search(r'PhysicalSizeX="([0-9.eE+-]+)"', ome_xml)
    if not m:
        return None
    value = float(m.group(1))
    unit = re.search(r'PhysicalSizeXUnit="([^"]+)"', ome_xml)
    name = html.unescape(unit.group(1)) if unit else "µm"
    scale = {"µm": 1.0, "\u03bcm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3}.get(name)
    return value * scale if scale else None


def usable(crop: np.ndarray, reference: float) -> bool:
    """A crop inside the specimen: not in a black surround (round whole-well images) or its
    dark vignetted rim: mean at least 0.75 x the image's reference level and under 2 % of
    pixels below 0.35 x it."""
    if reference <= 0 or not np.isfinite(crop).all():
        return False
    mean = float(crop.mean())
    return mean >= 0.75 * reference and float((crop < 0.35 * reference).mean()) < 0.02


def reference_level(img: np.ndarray) -> float:
    """Median of the pixels above 5 % of the image's maximum (ignores a black surround)."""
    a = img.astype(np.float32)
    top = float(a.max())
    lit = a[a > 0.05 * top] if top > 0 else a.ravel()
    return float(np.median(lit)) if lit.size else 0.0


def cut_crops(
    img: np.ndarray,
    source: str,
    crop: int,
    *,
    max_crops: int | None = None,
    rng: np.random.Generator | None = None,
) -> list[Crop]:
    """Non-overlapping ``crop``-pixel crops on a grid centred in the image, usable ones only
    (:func:`usable`); at most ``max_crops`` of them, drawn at random with ``rng``."""
    h, w = img.shape
    ny, nx = h // crop, w // crop
    oy, ox = (h - ny * crop) // 2, (w - nx * crop) // 2
    ref = reference_level(img)
    out = []
    for i in range(ny):
        for j in range(nx):
            y, x = oy + i * crop, ox + j * crop
            c = img[y : y + crop, x : x + crop]
            if usable(c, ref):
                out.append(Crop(c.astype(np.float32), source, y, x))
    if max_crops is not None and len(out) > max_crops:
        rng = rng or np.random.default_rng(0)
        keep = sorted(rng.choice(len(out), max_crops, replace=False))
        out = [out[k] for k in keep]
    return out


def bin_image(img: np.ndarray, k: int) -> np.ndarray:
    """Block mean over ``k`` x ``k`` pixels (the image cropped to a multiple of ``k``)."""
    if k == 1:
        return img
    h, w = (img.shape[0] // k) * k, (img.shape[1] // k) * k
    a = img[:h, :w].astype(np.float32).reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    if img.dtype.kind == "u":
        return np.clip(np.rint(a), 0, np.iinfo(img.dtype).max).astype(img.dtype)
    return a


def synthetic_images(
    n: int,
    *,
    size: int,
    pixel_size_um: float,
    modality: str = "brightfield",
    hours: Sequence[float] = (0.0, 24.0, 48.0),
    condition: str = "maintenance",
    seed: int = 0,
    bit_depth: int = 8,
    difficulty: str = "default",
) -> list[tuple[str, np.ndarray]]:
    """``n`` synthetic fields of ``size``² at ``pixel_size_um``, one per well (so each is its
    own source), time points cycling through ``hours`` (after induction at 0 h for the
    ``induced`` condition). Pixel sizes above :data:`MAX_RENDER_PIXEL_UM` are rendered at
    ``pixel_size_um / k`` on a ``k``-times larger field and binned ``k`` x ``k``."""
    if condition not in ("maintenance", "induced"):
        raise RealismError(f"condition {condition!r}; use 'maintenance' or 'induced'")
    k = max(1, math.ceil(pixel_size_um / MAX_RENDER_PIXEL_UM - 1e-9))
    wells = [well_from_index(i // 12, i % 12) for i in range(n)]
    plan = plan_plate(
        PlateSpec(
            wells=wells,
            n_fields=1,
            times_h=tuple(float(h) for h in hours),
            size=size * k,
            bit_depth=bit_depth,
            seed=seed,
            plate_name="REALISM",
            difficulty=difficulty,
            induced=wells if condition == "induced" else [],
            induction_h=0.0,
            pixel_size_um=pixel_size_um / k,
            modality=modality,
        )
    )
    out = []
    for i, w in enumerate(wells):
        t = i % len(plan.times_h)
        img = bin_image(plan.render(w, 0, t), k)
        out.append((f"synthetic {w} {plan.times_h[t]:g} h", img))
    return out


# --------------------------------------------------------------------------- statistics


def separability(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    names: Sequence[str],
    *,
    folds: int = 4,
    repeats: int = 5,
    seed: int = 0,
    n_boot: int = 2000,
    importance_repeats: int = 3,
) -> Separability:
    """Random-forest separability of ``y`` (0 real, 1 synthetic) from ``x`` with folds grouped
    by ``groups`` (source images); see the module docstring for what is reported."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold

    y = np.asarray(y, dtype=int)
    g = np.asarray(groups)
    n_groups = [len(set(g[y == c])) for c in (0, 1)]
    if min(n_groups) < 2:
        raise RealismError(
            f"need at least 2 source images per class for grouped cross-validation, got "
            f"{n_groups[0]} real and {n_groups[1]} synthetic"
        )
    k = max(2, min(folds, *n_groups))
    probs = np.zeros((repeats, y.size))
    fold_ba: list[float] = []
    fold_auc: list[float] = []
    imp: list[np.ndarray] = []
    families = sorted({feature_family(n) for n in names})
    fam_cols = [[i for i, n in enumerate(names) if feature_family(n) == f] for f in families]
    fam_imp: list[np.ndarray] = []
    for r in range(repeats):
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed + r)
        for tr, te in cv.split(x, y, g):
            clf = RandomForestClassifier(
                n_estimators=200,
                min_samples_leaf=2,
                class_weight="balanced",
                random_state=seed + r,
                n_jobs=1,
            )
            clf.fit(x[tr], y[tr])
            p = clf.predict_proba(x[te])[:, 1]
            probs[r, te] = p
            if len(set(y[te])) == 2:
                fold_ba.append(float(balanced_accuracy_score(y[te], p >= 0.5)))
                fold_auc.append(float(roc_auc_score(y[te], p)))
                if r == 0 and importance_repeats > 0:
                    prng = np.random.default_rng([seed, len(imp)])
                    cols = [[i] for i in range(x.shape[1])]
                    imp.append(
                        _auc_drop(clf, x[te], y[te], cols, n_repeats=importance_repeats, rng=prng)
                    )
                    fam_imp.append(
                        _auc_drop(
                            clf, x[te], y[te], fam_cols, n_repeats=importance_repeats, rng=prng
                        )
                    )
    prob = probs.mean(axis=0)
    ba = float(balanced_accuracy_score(y, prob >= 0.5))
    auc = float(roc_auc_score(y, prob))
    ba_ci, auc_ci = _cluster_bootstrap(y, prob, g, n_boot=n_boot, seed=seed)
    perm = _ranked(list(names), imp)
    fam = _ranked(families, fam_imp)
    uni = []
    for i, name in enumerate(names):
        col = x[:, i]
        a = 0.5 if np.ptp(col) == 0 else float(roc_auc_score(y, col))
        uni.append((name, max(a, 1.0 - a)))
    uni.sort(key=lambda t: -t[1])
    return Separability(
        balanced_accuracy=ba,
        balanced_accuracy_ci=ba_ci,
        roc_auc=auc,
        roc_auc_ci=auc_ci,
        fold_balanced_accuracy=tuple(fold_ba),
        fold_roc_auc=tuple(fold_auc),
        n_folds=k,
        n_repeats=repeats,
        permutation_importance=perm,
        family_importance=fam,
        univariate_auc=tuple(uni),
        probability=prob,
    )


def _auc_drop(
    clf: object,
    x: np.ndarray,
    y: np.ndarray,
    columns: Sequence[Sequence[int]],
    *,
    n_repeats: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Mean drop of ROC-AUC when the rows of each group of ``columns`` are shuffled together."""
    from sklearn.metrics import roc_auc_score

    predict = clf.predict_proba  # type: ignore[attr-defined]
    base = float(roc_auc_score(y, predict(x)[:, 1]))
    out = np.zeros(len(columns))
    for j, cols in enumerate(columns):
        drops = []
        for _ in range(n_repeats):
            xp = x.copy()
            xp[:, cols] = x[rng.permutation(len(x))][:, cols]
            drops.append(base - float(roc_auc_score(y, predict(xp)[:, 1])))
        out[j] = float(np.mean(drops))
    return out


def _ranked(names: Sequence[str], runs: list[np.ndarray]) -> tuple[tuple[str, float, float], ...]:
    if not runs:
        return ()
    m = np.mean(runs, axis=0)
    sd = np.std(runs, axis=0)
    return tuple((names[i], float(m[i]), float(sd[i])) for i in np.argsort(-m, kind="stable"))


def _cluster_bootstrap(
    y: np.ndarray, prob: np.ndarray, groups: np.ndarray, *, n_boot: int, seed: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """95 % percentile intervals of balanced accuracy and ROC-AUC, resampling source images
    with replacement within each class."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng([seed, 99])
    members = {
        c: [np.flatnonzero((groups == s) & (y == c)) for s in sorted(set(groups[y == c]))]
        for c in (0, 1)
    }
    bas, aucs = [], []
    for _ in range(n_boot):
        idx = []
        for c in (0, 1):
            pick = rng.integers(0, len(members[c]), len(members[c]))
            idx += [members[c][i] for i in pick]
        sel = np.concatenate(idx)
        yy, pp = y[sel], prob[sel]
        pred = pp >= 0.5
        ba = 0.5 * (float(pred[yy == 1].mean()) + float((~pred[yy == 0]).mean()))
        bas.append(ba)
        aucs.append(float(roc_auc_score(yy, pp)))
    q = (2.5, 97.5)
    b = np.percentile(bas, q)
    a = np.percentile(aucs, q)
    return (float(b[0]), float(b[1])), (float(a[0]), float(a[1]))


# --------------------------------------------------------------------------- the gauge


def run_gauge(
    real_dir: Path,
    *,
    pixel_size_um: float | None = None,
    modality: str = "brightfield",
    crop: int = 256,
    feature_set: str = "full",
    condition: str = "maintenance",
    hours: Sequence[float] = (0.0, 24.0, 48.0),
    difficulty: str = "default",
    synthetic_size: int = 1024,
    max_crops_per_image: int = 64,
    n_synthetic: int | None = None,
    folds: int = 4,
    repeats: int = 5,
    seed: int = 0,
    out_dir: Path | None = None,
) -> RealismReport:
    """Measure how separable the generator's crops are from the real ones in ``real_dir``;
    with ``out_dir``, write ``report.json``, ``features.csv`` and the two plots there."""
    t0 = time.perf_counter()
    files = find_images(real_dir)
    rng = np.random.default_rng([seed, 1])
    real_crops: list[Crop] = []
    sizes: set[float] = set()
    dtypes: set[str] = set()
    for path in files:
        data = read_image(path)
        img = data.pixels
        dtypes.add(img.dtype.str)
        ps = ome_pixel_size_um(data.ome_xml)
        if ps is not None:
            sizes.add(round(ps, 4))
        if min(img.shape) < crop:
            log.warning("%s: %s is smaller than one %d-px crop; skipped", path, img.shape, crop)
            continue
        real_crops += cut_crops(
            img, str(path.relative_to(real_dir)), crop, max_crops=max_crops_per_image, rng=rng
        )
    if pixel_size_um is None:
        if len(sizes) != 1:
            raise RealismError(
                f"the images in {real_dir} do not state one pixel size "
                f"({'none found' if not sizes else sorted(sizes)}); give --pixel-size-um"
            )
        pixel_size_um = sizes.pop()
    if not 0.1 <= pixel_size_um <= 20:
        raise RealismError(f"pixel size {pixel_size_um} µm/px is implausible; use 0.1-20")
    n_real_images = len({c.source for c in real_crops})
    if n_real_images < 2:
        raise RealismError(
            f"{real_dir}: usable crops from {n_real_images} image(s); the gauge needs at "
            f"least 2 images at least {crop} px wide"
        )
    bit_depth = 8 if dtypes == {np.dtype(np.uint8).str} else 16
    per_field = (synthetic_size // crop) ** 2
    if n_synthetic is None:  # about as many crops as the real set, in enough images to fold
        n_synthetic = max(2 * folds, math.ceil(len(real_crops) / max(per_field, 1)))
        n_synthetic = min(n_synthetic, 96)
    log.info(
        "realism: %d real crops from %d images; rendering %d synthetic fields",
        len(real_crops),
        n_real_images,
        n_synthetic,
    )
    syn_crops: list[Crop] = []
    for name, img in synthetic_images(
        n_synthetic,
        size=synthetic_size,
        pixel_size_um=pixel_size_um,
        modality=modality,
        hours=hours,
        condition=condition,
        seed=seed,
        bit_depth=bit_depth,
        difficulty=difficulty,
    ):
        syn_crops += cut_crops(img, name, crop, max_crops=max_crops_per_image, rng=rng)
    crops = real_crops + syn_crops
    y = np.array([0] * len(real_crops) + [1] * len(syn_crops))
    names = feature_names(feature_set)
    x = np.array([texture_features(c.pixels, feature_set) for c in crops])
    sep = separability(
        x, y, [c.source for c in crops], names, folds=folds, repeats=repeats, seed=seed
    )
    report = RealismReport(
        real_dir=str(real_dir),
        pixel_size_um=float(pixel_size_um),
        modality=modality,
        feature_set=feature_set,
        crop=crop,
        condition=condition,
        hours=tuple(float(h) for h in hours),
        difficulty=difficulty,
        seed=seed,
        n_real_images=n_real_images,
        n_real_crops=len(real_crops),
        n_synthetic_images=len({c.source for c in syn_crops}),
        n_synthetic_crops=len(syn_crops),
        separability=sep,
        seconds=time.perf_counter() - t0,
    )
    if out_dir is not None:
        report = write_report(report, out_dir, crops=crops, y=y, x=x, names=names)
    return report


def write_report(
    report: RealismReport,
    out_dir: Path,
    *,
    crops: Sequence[Crop],
    y: np.ndarray,
    x: np.ndarray,
    names: Sequence[str],
) -> RealismReport:
    """``report.json``, ``features.csv``, ``features.png`` (top separating features, real vs
    synthetic) and ``crops.png`` (contact sheet) in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"report": str(out_dir / "report.json"), "features": str(out_dir / "features.csv")}
    with open(files["features"], "w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["source", "y", "x", "class", "p_synthetic", *names])
        for c, label, row, p in zip(crops, y, x, report.separability.probability, strict=True):
            wr.writerow([c.source, c.y, c.x, LABELS[label], f"{p:.4f}", *(f"{v:.6g}" for v in row)])
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log.warning("matplotlib is not installed (the 'train' extra): no plots written")
    else:
        files["feature_plot"] = str(
            plot_features(out_dir / "features.png", x, y, names, report.separability)
        )
        files["contact_sheet"] = str(
            contact_sheet(out_dir / "crops.png", crops, y, x[:, list(names).index("lstd9_median")])
        )
    report = RealismReport(**{**report.__dict__, "files": files})
    Path(files["report"]).write_text(json.dumps(report.summary(), indent=2) + "\n")
    return report


def plot_features(
    path: Path, x: np.ndarray, y: np.ndarray, names: Sequence[str], sep: Separability
) -> Path:
    """Histograms of the 8 most separating features (permutation importance, then the single
    feature ROC-AUC), real vs synthetic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top: list[str] = []
    for n, *_ in sep.permutation_importance[:4]:
        top.append(n)
    for n, _ in sep.univariate_auc:
        if len(top) >= 8:
            break
        if n not in top:
            top.append(n)
    uni = dict(sep.univariate_auc)
    fig, axes = plt.subplots(2, 4, figsize=(13, 5.6))
    for ax, name in zip(axes.ravel(), top, strict=False):
        col = x[:, list(names).index(name)]
        lo, hi = np.percentile(col, [0.5, 99.5])
        bins = np.linspace(lo, hi + 1e-12, 30)
        for c, colour in ((0, "tab:blue"), (1, "tab:orange")):
            ax.hist(col[y == c], bins=bins, alpha=0.55, density=True, color=colour, label=LABELS[c])
        ax.set_title(f"{name} (alone: AUC {uni[name]:.2f})", fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(
        f"realism gauge: balanced accuracy {sep.balanced_accuracy:.2f}, ROC-AUC "
        f"{sep.roc_auc:.2f} (grouped CV); the most separating features",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def contact_sheet(
    path: Path,
    crops: Sequence[Crop],
    y: np.ndarray,
    order_by: np.ndarray,
    *,
    n: int = 6,
    side: int = 200,
) -> Path:
    """Real (top row) and synthetic (bottom row) crops at 1:1 scale, each shown with a
    viewer's auto-contrast (0.5-99.5 percentiles); ``n`` per class, chosen at evenly spaced
    quantiles of ``order_by`` (texture: from flat background to dense colony) so both rows
    span the same range. Crops are cut to their central ``side`` pixels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, n, figsize=(n * (side + 10) / 100, 2 * (side + 28) / 100))
    for row, c in enumerate((0, 1)):
        idx = np.flatnonzero(y == c)
        idx = idx[np.argsort(order_by[idx], kind="stable")]
        pick = idx[np.linspace(0, idx.size - 1, n).round().astype(int)]
        for ax, i in zip(axes[row], pick, strict=True):
            a = crops[i].pixels
            m = (a.shape[0] - side) // 2
            a = a[m : m + side, m : m + side] if m > 0 else a
            lo, hi = np.percentile(a, [0.5, 99.5])
            shown = np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1)
            ax.imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(f"{LABELS[c]}: {crops[i].source}"[:34], fontsize=6)
            ax.set_axis_off()
    fig.subplots_adjust(left=0.005, right=0.995, bottom=0.005, top=0.93, wspace=0.03, hspace=0.12)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- before / after


def load_summary(path: Path) -> dict[str, object]:
    """The summary a gauge run wrote (``report.json``, or the folder holding it)."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        out: dict[str, object] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise RealismError(
            f"{path}: not a realism report ({exc}); run stemwatch synth realism -o FOLDER"
        ) from None
    for key in ("balanced_accuracy", "balanced_accuracy_ci95", "roc_auc", "roc_auc_ci95"):
        if key not in out:
            raise RealismError(f"{path}: the report has no {key!r}; run stemwatch synth realism")
    return out


def _figure(summary: dict[str, object], key: str) -> tuple[float, float, float]:
    ci = summary[f"{key}_ci95"]
    value = summary[key]
    if not isinstance(ci, (list, tuple)) or len(ci) != 2 or not isinstance(value, (int, float)):
        raise RealismError(f"{key}: expected a number and a 95 % interval, got {value}, {ci}")
    return float(value), float(ci[0]), float(ci[1])


def comparison_table(rows: Sequence[tuple[str, dict[str, object], dict[str, object]]]) -> str:
    """A markdown table of (label, before, after) gauge summaries: balanced accuracy and
    ROC-AUC with their 95 % intervals."""
    out = [
        "| real set, features | balanced accuracy before | after | ROC-AUC before | after |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, before, after in rows:
        cells = [label]
        for key in ("balanced_accuracy", "roc_auc"):
            for s in (before, after):
                v, lo, hi = _figure(s, key)
                cells.append(f"{v:.2f} ({lo:.2f}-{hi:.2f})")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def plot_comparison(
    path: Path, rows: Sequence[tuple[str, dict[str, object], dict[str, object]]]
) -> Path:
    """Bars of balanced accuracy (95 % interval as error bars) before and after per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        raise RealismError("nothing to plot: give at least one (label, before, after) row")
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(rows), 4.0))
    xs = np.arange(len(rows), dtype=float)
    for shift, which, colour in ((-0.18, 1, "tab:grey"), (0.18, 2, "tab:green")):
        vals = [_figure(r[which], "balanced_accuracy") for r in rows]  # type: ignore[arg-type]
        v = np.array([a for a, _, _ in vals])
        err = np.array([[a - lo for a, lo, _ in vals], [hi - a for a, _, hi in vals]])
        ax.bar(xs + shift, v, 0.34, yerr=err, capsize=3, color=colour)
        ax.bar(0, 0, color=colour, label=("before (main)", "after")[which - 1])
    ax.axhline(0.75, color="tab:red", ls="--", lw=1, label="target 0.75")
    ax.axhline(0.5, color="black", ls=":", lw=1, label="indistinguishable")
    ax.set_xticks(xs, [r[0] for r in rows], fontsize=8)
    ax.set_ylim(0.4, 1.02)
    ax.set_ylabel("balanced accuracy, real vs synthetic\n(grouped CV, 95 % CI)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("realism gauge: lower is closer to real", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
