"""A paired immunofluorescence image for every label-free field (Kusumoto et al. 2018).

Kusumoto et al. labelled phase-contrast blocks by binarising an immunofluorescence image of the
same field. This module draws that second channel from the plate's ground truth (the colonies
of :mod:`stemwatch.synth.biology` as :class:`~stemwatch.synth.biology.ColonyView`), never from
the label-free pixels, so it does not depend on how :mod:`stemwatch.synth.render` draws them.

- **The marker** is a differentiation marker: a cell is stained with a probability that rises
  with its *local* differentiation state, which (as in the renderer) is highest at the colony
  periphery: ``dl = clip(d * (1.45 - 0.7 * sqrt(inner)), 0, 1)`` with ``inner`` the depth
  into the colony relative to 35 % of its mean radius; ``P(stained) = clip((dl - 0.15) / 0.5,
  0, 1)``. A colony with ``d = 0`` has no stained cell, so a field of undifferentiated
  colonies has none. Staining is cytoplasmic (a dimmer nucleus), per-cell level log-normal.
- **Autofluorescence in dense colonies** (Kusumoto's false positives): a colony is *dense*
  when it is compact (``d <`` :data:`DENSE_MAX_STATE`) and large (radius >=
  :data:`DENSE_MIN_RADIUS_UM`: piled-up cells); a fraction ``autofluorescence_rate`` of dense
  colonies glows diffusely in its centre, as bright as a stained cell. Colonies that are not
  dense never do.
- **Faint staining** (Kusumoto's false negatives): a fraction ``faint_rate`` of fields is
  stained at 8-25 % of the normal level (a poor antibody batch, a bleached region).
- The camera: offset, read and shot noise, a smooth illumination gradient, 12-bit data in
  16-bit TIFFs; unstained cells carry a weak baseline autofluorescence (well below the noise).

Each field also has a ground-truth mask (:data:`TRUTH_BACKGROUND`, :data:`TRUTH_UNSTAINED`,
:data:`TRUTH_STAINED` per pixel): what a perfect stain and a perfect threshold would show.
Every image is drawn from its own random stream seeded by (plate seed, well, field, time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from stemwatch.core.stainmask import TRUTH_BACKGROUND, TRUTH_STAINED, TRUTH_UNSTAINED
from stemwatch.core.wells import normalise_well, parse_well
from stemwatch.synth.biology import ColonyView, views_for_field
from stemwatch.synth.difficulty import SynthError

if TYPE_CHECKING:
    from stemwatch.synth.plate import PlatePlan

DENSE_MAX_STATE = 0.2
"""A colony can be dense only while compact: differentiation state below this."""
DENSE_MIN_RADIUS_UM = 80.0
"""... and when at least this large (cells pile up in the centre of large compact colonies)."""
FULL_SCALE = 4095
"""12-bit data in a 16-bit container."""
_N_THETA = 512


@dataclass(frozen=True)
class FluorescenceSpec:
    """How the paired fluorescence channel is drawn; rates are fractions in [0, 1]."""

    autofluorescence_rate: float = 0.25
    """Fraction of dense colonies that autofluoresce (0: clean)."""
    faint_rate: float = 0.1
    """Fraction of fields stained faintly (0: clean)."""
    stain_snr: float = 14.0
    """Median signal of a stained cell's cytoplasm in units of the background noise sd."""

    def __post_init__(self) -> None:
        for name in ("autofluorescence_rate", "faint_rate"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise SynthError(f"fluorescence {name}={v}; use a fraction between 0 and 1")
        if not self.stain_snr > 0:
            raise SynthError(f"fluorescence stain_snr={self.stain_snr}; use a positive number")

    @property
    def clean(self) -> bool:
        return self.autofluorescence_rate == 0 and self.faint_rate == 0


@dataclass(frozen=True)
class FluorescenceField:
    """One fluorescence image, its ground-truth mask and what was drawn for it."""

    image: np.ndarray
    """uint16, 12-bit data."""
    truth: np.ndarray
    """uint8 mask: TRUTH_BACKGROUND / TRUTH_UNSTAINED / TRUTH_STAINED per pixel."""
    n_cells: int
    n_stained: int
    faint: bool
    n_autofluorescent: int
    """Colonies in the field that autofluoresce."""


def is_dense(view: ColonyView, pixel_size_um: float) -> bool:
    """Whether a colony is dense enough to autofluoresce (module docstring)."""
    return view.d < DENSE_MAX_STATE and view.radius * pixel_size_um >= DENSE_MIN_RADIUS_UM


def stain_probability(local_state: np.ndarray) -> np.ndarray:
    """Probability that a cell at local differentiation state ``local_state`` is stained."""
    return np.clip((np.asarray(local_state, dtype=np.float64) - 0.15) / 0.5, 0.0, 1.0)


def _radius_table(view: ColonyView) -> np.ndarray:
    """Colony radius (px) at ``_N_THETA`` angles: the biology's shape harmonics (the renderer
    adds fine roughness and protrusions of its own on top)."""
    theta = np.linspace(-math.pi, math.pi, _N_THETA, endpoint=False)
    amp = np.asarray(view.shape_amp) * (0.22 + 0.2 * view.d)
    k = np.arange(2, 2 + amp.size)[None, :]
    ph = np.asarray(view.shape_phase)[None, :]
    rel = 1.0 + (amp[None, :] * np.cos(k * theta[:, None] + ph)).sum(axis=1)
    return np.asarray(view.radius * np.maximum(rel, 0.35))


def _colony_cells(
    view: ColonyView,
    size: int,
    free: np.ndarray,
    ppu: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float] | None:
    """Pixels (ys, xs) of the colony not covered by a colony above it, their depth inside
    the border (px), their nearest cell seed, and the cell spacing (px)."""
    table = _radius_table(view)
    sq = math.sqrt(view.aspect)
    reach = float(table.max()) * sq + 2
    y0, y1 = max(0, int(view.cy - reach)), min(size, int(view.cy + reach) + 1)
    x0, x1 = max(0, int(view.cx - reach)), min(size, int(view.cx + reach) + 1)
    if y0 >= y1 or x0 >= x1:
        return None
    ly, lx = np.nonzero(free[y0:y1, x0:x1])
    yy = ly + y0 - view.cy
    xx = lx + x0 - view.cx
    ca, sa = math.cos(view.angle), math.sin(view.angle)
    u = (xx * ca + yy * sa) / sq
    v = (yy * ca - xx * sa) * sq
    idx = ((np.arctan2(v, u) + math.pi) * (_N_THETA / (2 * math.pi))).astype(np.int64) % _N_THETA
    depth = table[idx] - np.hypot(u, v)
    inside = depth > 0
    if not inside.any():
        return None
    ys, xs, depth = ly[inside] + y0, lx[inside] + x0, depth[inside]
    d = float(np.clip(view.d, 0.0, 1.0))
    compaction = 1.0 - 0.1 * min(1.0, view.age_h / 48.0) * (1.0 - d)
    spacing = (6.5 + (17.0 - 6.5) * d) * compaction * ppu
    return ys, xs, depth, np.asarray(table), spacing


@dataclass(frozen=True)
class Camera:
    """The fluorescence camera of one plate: the same offset and read noise in every image."""

    offset_dn: float
    read_sd_dn: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Camera:
        return cls(float(rng.uniform(90.0, 140.0)), float(rng.uniform(5.0, 9.0)))


def render_fluorescence(
    views: list[ColonyView],
    size: int,
    rng: np.random.Generator,
    spec: FluorescenceSpec,
    *,
    pixel_size_um: float = 1.0,
    camera: Camera | None = None,
) -> FluorescenceField:
    """The fluorescence image of a field holding ``views`` (the last view lies on top);
    ``camera`` is the plate's (drawn from ``rng`` when None)."""
    camera = camera or Camera.draw(rng)
    ppu = 1.0 / pixel_size_um
    signal = np.zeros((size, size), np.float32)  # in units of the background noise sd
    truth = np.full((size, size), TRUTH_BACKGROUND, np.uint8)
    free = np.ones((size, size), bool)
    faint = bool(rng.random() < spec.faint_rate)
    gain = float(rng.uniform(0.08, 0.25)) if faint else 1.0
    n_cells = n_stained = n_auto = 0
    for view in reversed(views):
        # per-colony draws from the colony's own seed: a colony autofluoresces at every time
        crng = np.random.default_rng([view.seed, 31])
        auto_draw, auto_level = float(crng.random()), float(crng.uniform(0.5, 1.2))
        got = _colony_cells(view, size, free, ppu)
        if got is None:
            continue
        ys, xs, depth, table, spacing = got
        free[ys, xs] = False
        rmean = max(float(table.mean()), 1.0)
        # cell seeds on a jittered square lattice over the colony's pixels
        step = max(spacing, 2.0)
        gy = np.arange(ys.min(), ys.max() + step, step)
        gx = np.arange(xs.min(), xs.max() + step, step)
        seeds = np.stack(np.meshgrid(gy, gx, indexing="ij"), axis=-1).reshape(-1, 2)
        seeds = seeds + rng.uniform(-0.35, 0.35, seeds.shape) * step
        dist, cell = cKDTree(seeds).query(np.column_stack([ys, xs]))
        used, cell = np.unique(cell, return_inverse=True)
        n = used.size
        # each cell's local state from its mean depth (periphery differentiates first)
        cell_depth = np.bincount(cell, weights=depth, minlength=n) / np.maximum(
            np.bincount(cell, minlength=n), 1
        )
        inner = np.clip(cell_depth / (0.35 * rmean), 0.0, 1.0)
        dl = np.clip(view.d * (1.45 - 0.7 * np.sqrt(inner)), 0.0, 1.0)
        stained = rng.random(n) < stain_probability(dl)
        level = spec.stain_snr * gain * np.exp(rng.normal(0.0, 0.35, n))
        nucleus = np.exp(-((dist / (0.3 * step)) ** 2))
        px_stained = stained[cell]
        signal[ys, xs] = np.where(
            px_stained, level[cell] * (1.0 - 0.45 * nucleus), 0.3 * (1.0 - 0.5 * nucleus)
        )
        truth[ys, xs] = np.where(px_stained, TRUTH_STAINED, TRUTH_UNSTAINED)
        n_cells += n
        n_stained += int(stained.sum())
        if is_dense(view, pixel_size_um) and auto_draw < spec.autofluorescence_rate:
            centre = np.clip(1.0 - np.hypot(*_offsets(view, ys, xs)) / (0.75 * rmean), 0.0, 1.0)
            signal[ys, xs] += spec.stain_snr * auto_level * centre**0.7
            n_auto += 1
    signal = ndi.gaussian_filter(signal, 1.2 * ppu)  # the objective's point-spread function
    image = _expose(signal, rng, camera)
    return FluorescenceField(image, truth, n_cells, n_stained, faint, n_auto)


def _offsets(view: ColonyView, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return ys - view.cy, xs - view.cx


def _expose(signal: np.ndarray, rng: np.random.Generator, camera: Camera) -> np.ndarray:
    """Signal (read-noise sd units) to 12-bit counts: smooth illumination, offset, shot and
    read noise."""
    size = signal.shape[0]
    read_sd, offset = camera.read_sd_dn, camera.offset_dn
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1) - 0.5
    gy, gx = rng.normal(0.0, 0.08, 2)
    illum = 1.0 + gy * yy + gx * xx - 0.1 * (yy**2 + xx**2)
    dn = signal * np.float32(read_sd) * illum
    noise_sd = np.sqrt(read_sd**2 + 0.5 * np.maximum(dn, 0.0))
    counts = offset + dn + noise_sd * rng.standard_normal(signal.shape, dtype=np.float32)
    return np.clip(np.rint(counts), 0, FULL_SCALE).astype(np.uint16)


def _well_key(well: str) -> int:
    row, col = parse_well(well)
    return row * 100 + col


def plate_camera(plan: PlatePlan) -> Camera:
    """The fluorescence camera of ``plan``'s plate."""
    return Camera.draw(np.random.default_rng([plan.seed, 37]))


def render_for(
    plan: PlatePlan, well: str, fld: int, t: int, spec: FluorescenceSpec
) -> FluorescenceField:
    """The fluorescence field paired with ``plan.render(well, fld, t)``: the same colonies."""
    w = plan.wells[normalise_well(well)]
    views = views_for_field(
        w, plan.times_h[t], plan.origin(well, fld, t), plan.size, plan.pixel_size_um
    )
    rng = np.random.default_rng([plan.seed, 29, _well_key(well), fld, t])
    return render_fluorescence(
        views,
        plan.size,
        rng,
        spec,
        pixel_size_um=plan.pixel_size_um,
        camera=plate_camera(plan),
    )


def control_image(plan: PlatePlan) -> np.ndarray:
    """The plate's no-primary-antibody control: the camera on an empty field (what a lab
    images once per plate to know its background)."""
    rng = np.random.default_rng([plan.seed, 41])
    return _expose(np.zeros((plan.size, plan.size), np.float32), rng, plate_camera(plan))
