"""The biology of a synthetic well: colonies that grow, touch and (maybe) differentiate.

Everything here is geometry in micrometres and time in hours since the start of the
experiment; :mod:`stemwatch.synth.render` turns a :class:`ColonyView` into pixels.

Differentiation state ``d`` in [0, 1] per colony follows a normalised sigmoid after the well's
induction time t0:
``d(t) = strength * (s((t - t0 - t50) / tau) - s(-t50 / tau)) / (1 - s(-t50 / tau))``
with ``s`` the logistic function, ``t50`` drawn per colony around the difficulty's ``onset_h``.
Maintenance wells stay at ``d = 0`` except a few spontaneously differentiating colonies that
start at a random time with slower kinetics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from stemwatch.synth.difficulty import Difficulty

Condition = Literal["maintenance", "induced"]

ONSET_THRESHOLD = 0.25
"""A well's true onset is when its mean colony state first reaches this value."""

N_HARMONICS = 10
AREA_DOUBLING_H = 18.0
"""Colony area doubles in this many hours (hPSC population doubling is ~16-20 h), so a
maintenance well seeded at ~15 % cover is confluent (~90 %) by 60-72 h."""


@dataclass(frozen=True)
class Growth:
    """How a cell line's colonies are seeded, grow and change: the biology half of a
    :class:`~stemwatch.synth.cellline.CellLine`. The defaults are hiPSC; every knob enters
    as a factor or a bound of the same draw, so the defaults reproduce the original draws."""

    colonies_per_mm2: float = 12.0
    """Colonies seeded per mm² (times ``Difficulty.density``)."""
    r_median_um: float = 60.0
    """Median colony radius at seeding (log-normal, sd 0.35)."""
    area_doubling_h: float = AREA_DOUBLING_H
    """Colony area doubles in this many hours."""
    spread: float = 0.8
    """Area gained by spreading as the state goes to 1: area x (1 + spread * d)."""
    aspect_max: float = 1.45
    """Colonies are ellipses of aspect ratio uniform in 1..this."""
    shape_scale: float = 1.0
    """Scales the colonies' polygonal outline harmonics (smaller: rounder)."""
    clock: float = 1.0
    """Scales the time course of differentiation (``Difficulty`` onset, spread and kinetics,
    and the spontaneous ones): below 1 the line changes faster."""
    spontaneous_scale: float = 1.0
    """Scales ``Difficulty.spontaneous_fraction``."""


HIPSC_GROWTH = Growth()


@dataclass(frozen=True)
class Colony:
    """One colony in well coordinates (µm), with the random numbers that fix its look."""

    x_um: float
    y_um: float
    r0_um: float
    t50_h: float
    kinetics_h: float
    strength: float
    start_h: float | None
    """Time differentiation starts (induction or spontaneous start); None: never."""
    shape_amp: tuple[float, ...]
    shape_phase: tuple[float, ...]
    aspect: float
    angle: float
    seed: int
    born_h: float = 0.0
    doubling_h: float = HIPSC_GROWTH.area_doubling_h
    """Hours the colony's area takes to double (its line's :attr:`Growth.area_doubling_h`)."""
    spread: float = HIPSC_GROWTH.spread
    """Its line's :attr:`Growth.spread`."""


@dataclass(frozen=True)
class Well:
    """A well's condition, induction time and colonies."""

    well: str
    condition: Condition
    induction_h: float | None
    colonies: tuple[Colony, ...]
    difficulty: Difficulty
    seed: int
    n_spontaneous: int = 0
    cell_line: str = "hipsc"


@dataclass(frozen=True)
class ColonyView:
    """A colony as seen in one field at one time: pixel centre, radius and state."""

    cx: float
    cy: float
    radius: float
    d: float
    shape_amp: tuple[float, ...]
    shape_phase: tuple[float, ...]
    aspect: float
    angle: float
    seed: int
    age_h: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, x))))


def sigmoid_state(t_since_start: float, t50: float, tau: float, strength: float) -> float:
    """Normalised sigmoid: 0 at the start, ``strength`` long after; 0 before the start."""
    if t_since_start <= 0:
        return 0.0
    s0 = _logistic(-t50 / tau)
    s = _logistic((t_since_start - t50) / tau)
    return float(strength * max(0.0, (s - s0) / (1.0 - s0)))


def colony_state(colony: Colony, t_h: float) -> float:
    """Differentiation state of ``colony`` at ``t_h`` hours since the experiment started."""
    if colony.start_h is None:
        return 0.0
    return sigmoid_state(t_h - colony.start_h, colony.t50_h, colony.kinetics_h, colony.strength)


def colony_radius_um(colony: Colony, t_h: float, d: float) -> float:
    """Radius grows with proliferation (area doubles every ``colony.doubling_h``, hiPSC:
    :data:`AREA_DOUBLING_H`) and with spreading of differentiating cells (hiPSC: area up to
    ~1.8x)."""
    age = max(0.0, t_h - colony.born_h)
    growth = 2.0 ** (age / (2.0 * colony.doubling_h))
    spread = math.sqrt(1.0 + colony.spread * d)
    return colony.r0_um * growth * spread


def make_colony(
    rng: np.random.Generator,
    x_um: float,
    y_um: float,
    difficulty: Difficulty,
    start_h: float | None,
    *,
    spontaneous: bool = False,
    growth: Growth = HIPSC_GROWTH,
) -> Colony:
    """Draw one colony's size, shape and kinetics (``growth``: its cell line's)."""
    k = np.arange(2, N_HARMONICS + 2)
    amp = rng.normal(0.0, 1.0, N_HARMONICS) / k**1.3 * growth.shape_scale
    clock = growth.clock
    if spontaneous:
        t50 = float(rng.uniform(10.0, 30.0)) * clock
        tau = float(rng.uniform(5.0, 10.0)) * clock
        strength = float(rng.uniform(0.6, 1.0))
    else:
        onset, spread = difficulty.onset_h * clock, difficulty.onset_spread_h * clock
        t50 = float(max(2.0 * clock, rng.normal(onset, spread)))
        tau = float(difficulty.kinetics_h * clock * rng.uniform(0.8, 1.25))
        strength = float(np.clip(difficulty.strength * rng.uniform(0.85, 1.1), 0.0, 1.0))
    return Colony(
        x_um=float(x_um),
        y_um=float(y_um),
        r0_um=float(growth.r_median_um * math.exp(rng.normal(0.0, 0.35))),
        t50_h=t50,
        kinetics_h=tau,
        strength=strength,
        start_h=start_h,
        shape_amp=tuple(float(a) for a in amp),
        shape_phase=tuple(float(p) for p in rng.uniform(0, 2 * math.pi, N_HARMONICS)),
        aspect=float(rng.uniform(1.0, growth.aspect_max)),
        angle=float(rng.uniform(0, math.pi)),
        seed=int(rng.integers(0, 2**31 - 1)),
        doubling_h=growth.area_doubling_h,
        spread=growth.spread,
    )


def make_well(
    rng: np.random.Generator,
    well: str,
    condition: Condition,
    induction_h: float | None,
    difficulty: Difficulty,
    *,
    regions_um: list[tuple[float, float, float, float]],
    duration_h: float = 48.0,
    growth: Growth = HIPSC_GROWTH,
    cell_line: str = "hipsc",
) -> Well:
    """Seed colonies over ``regions_um`` (x0, y0, width, height: the fields' windows with margin).

    Colony density is ``growth.colonies_per_mm2`` (hiPSC: 12) times ``difficulty.density``
    so hiPSC colonies cover about a quarter of the surface at 0 h and touch after a day or
    two; every region gets a colony near its centre so no field is empty. ``growth`` and
    ``cell_line`` (its name, recorded on the well) are the cell line's.
    """
    seed = int(rng.integers(0, 2**31 - 1))
    colonies: list[Colony] = []
    n_spont = 0
    density_per_um2 = growth.colonies_per_mm2 / 1e6 * difficulty.density
    start = induction_h if condition == "induced" else None
    p_spont = difficulty.spontaneous_fraction * growth.spontaneous_scale
    for x0, y0, w, h in regions_um:
        n = int(rng.poisson(density_per_um2 * w * h))
        xs = [x0 + w / 2 + rng.normal(0, w / 10), *(x0 + rng.uniform(0, w, n))]
        ys = [y0 + h / 2 + rng.normal(0, h / 10), *(y0 + rng.uniform(0, h, n))]
        for x, y in zip(xs, ys, strict=True):
            c_start = start
            spont = False
            if condition == "maintenance" and rng.random() < p_spont:
                c_start = float(rng.uniform(0.0, max(1.0, duration_h * 0.7)))
                spont = True
                n_spont += 1
            colonies.append(
                make_colony(rng, x, y, difficulty, c_start, spontaneous=spont, growth=growth)
            )
    return Well(
        well=well,
        condition=condition,
        induction_h=induction_h,
        colonies=tuple(colonies),
        difficulty=difficulty,
        seed=seed,
        n_spontaneous=n_spont,
        cell_line=cell_line,
    )


def well_mean_state(well: Well, t_h: float) -> float:
    """Mean differentiation state over the well's colonies at ``t_h``."""
    if not well.colonies:
        return 0.0
    return float(np.mean([colony_state(c, t_h) for c in well.colonies]))


def true_onset_h(well: Well, *, horizon_h: float = 240.0, step_h: float = 0.25) -> float | None:
    """First time (hours since start) the mean state of an induced well reaches
    :data:`ONSET_THRESHOLD`; None for maintenance wells and wells that never get there."""
    if well.condition != "induced" or well.induction_h is None:
        return None
    t = well.induction_h
    while t <= well.induction_h + horizon_h:
        if well_mean_state(well, t) >= ONSET_THRESHOLD:
            return round(t, 2)
        t += step_h
    return None


def views_for_field(
    well: Well,
    t_h: float,
    origin_um: tuple[float, float],
    size_px: int,
    pixel_size_um: float,
) -> list[ColonyView]:
    """The colonies visible in a square field whose top-left corner is at ``origin_um``."""
    ox, oy = origin_um
    views: list[ColonyView] = []
    for c in well.colonies:
        d = colony_state(c, t_h)
        r = colony_radius_um(c, t_h, d)
        cx = (c.x_um - ox) / pixel_size_um
        cy = (c.y_um - oy) / pixel_size_um
        rp = r / pixel_size_um
        reach = rp * 1.8 + 80.0 / pixel_size_um
        if cx + reach < 0 or cy + reach < 0 or cx - reach > size_px or cy - reach > size_px:
            continue
        views.append(
            ColonyView(
                cx=cx,
                cy=cy,
                radius=rp,
                d=d,
                shape_amp=c.shape_amp,
                shape_phase=c.shape_phase,
                aspect=c.aspect,
                angle=c.angle,
                seed=c.seed,
                age_h=max(0.0, t_h - c.born_h),
            )
        )
    return views
