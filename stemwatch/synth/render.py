"""Rendering colonies into a brightfield or phase-contrast image.

Living cells are nearly transparent: a transmitted-light microscope sees them through the
optical path length they add (phase) and, much less, through what they absorb or scatter.
The renderer follows that in three stages:

1. :func:`render_specimen` draws the specimen as two float32 maps: **phase** (optical path,
   1 = a compact colony's plateau) and **absorption** (dead cells, debris, a slight darkening
   of colonies). A colony is a thickness profile that rises over a few micrometres inside its
   ragged border (compact colonies are thick and steep-edged, differentiated ones flat and
   thin) times a cobblestone of cells: a jittered lattice (Worley / Voronoi distances from
   cached periodic tiles) of domed cells with a nucleus and nucleoli. Under everything lies
   the coating's faint fibrous and mottled texture; on top, debris of many sizes, some out
   of focus, and dead cells on the colonies.
2. :func:`form_image` turns the maps into an intensity modulation around 1. **Brightfield**:
   a slightly defocused bright field shows a phase object through the Laplacian of its
   optical path (transport of intensity equation), so cell borders are thin bright lines,
   domes darker, and a colony's edge gets a thin bright halo outside and a dark rim inside
   where its thickness bends; a small oblique-illumination relief term (the gradient along a
   random direction) makes debris bright on one side. **Phase contrast**: the phase ring
   shows the optical path high-passed at the ring's scale (thick = dark, with the bright halo
   that comes with it) plus some of the Laplacian. Absorption darkens in both.
3. :func:`expose` images that modulation: uneven illumination and vignetting, out-of-focus
   smudges, a random monotone tone curve, Poisson-Gaussian noise, a mild camera blur (real
   camera noise is not white), random offset, quantisation to 8 bits or 12 bits in 16.

Geometry is in micrometres scaled by the pixel size (0.5-2 µm/px); camera effects are per
pixel. All work is vectorised numpy over bounding boxes or the whole plane; Python loops
run over objects (colonies, spindle cells, debris particles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from scipy import ndimage as ndi
from threadpoolctl import ThreadpoolController

from stemwatch.synth.biology import ColonyView
from stemwatch.synth.difficulty import Difficulty, SynthError

Modality = Literal["brightfield", "phase"]
MODALITIES: tuple[str, ...] = ("brightfield", "phase")
PIXEL_SIZE_RANGE_UM = (0.5, 2.0)
"""Pixel sizes the renderer is made for (cells of 5-8 µm stay resolved)."""

N_THETA = 1024
"""Angular resolution of the radial shape table of a colony."""
TILE = 256
"""Side (px) of the periodic cell-lattice tiles that colonies sample their cells from."""
TILE_BITS = 8
NOISE_TILE = 512
"""Side (px) of the periodic band-pass noise tiles (granularity, ragged borders)."""
NOISE_BITS = 9
BG_TILE = 1024
"""Side (px) of the periodic band-pass noise tiles of the background texture."""


@dataclass(frozen=True)
class Exposure:
    """Per-image acquisition draws, recorded for reproducibility and debugging."""

    level: float
    contrast: float
    defocus_px: float
    read_noise_dn: float
    dn_per_electron: float


@dataclass
class Specimen:
    """What the light passes through: optical path (``phase``) and ``absorb`` maps, and
    ``glint``: refractile granules and gap corners in compact colonies, too small for the
    phase image's resolution, that show as bright points."""

    phase: np.ndarray
    absorb: np.ndarray
    glint: np.ndarray
    cover: np.ndarray
    """Colony thickness profile (0 outside, 1 inside a colony's rim)."""


@dataclass(frozen=True)
class Look:
    """Appearance constants of the synthetic microscope, tuned with the realism gauge
    (``stemwatch synth realism``) against real hiPSC brightfield colonies at ~1 µm/px.
    Pairs are (low, high) of a uniform draw per image; ``*_scale`` multiply the drawn
    amplitudes."""

    bf_gain: float = 0.12
    """Brightfield contrast per unit Laplacian of the optical path (per µm²)."""
    pc_gain: float = 0.5
    """Phase-contrast darkening per unit optical path (high-passed at the ring's scale)."""
    bf_contrast: float = 0.032
    """Median standard deviation of the modulation inside a brightfield field's colonies
    (relative to the mean intensity); each image draws its own around it
    (``Difficulty.contrast_jitter``)."""
    pc_contrast: float = 0.12
    """The same for phase contrast."""
    colony_contrast: bool = False
    """Normalise the contrast inside colonies (else over the whole field)."""
    relief: tuple[float, float] = (0.3, 1.2)
    """Oblique-illumination relief (gradient term) relative to the Laplacian."""
    full_well_e: tuple[float, float] = (20000.0, 40000.0)
    """Camera full well (electrons; log-uniform): sets the shot noise."""
    camera_blur_px: tuple[float, float] = (0.5, 0.6)
    phase_blur_um: tuple[float, float] = (0.3, 0.6)
    """How much finer detail than this the phase image loses (partial coherence)."""
    debris_per_mm2: float = 80.0
    debris_um: float = 2.0
    """Median radius of debris (log-normal, 0.4-6 µm)."""
    debris_absorb_scale: float = 3.0
    debris_height_scale: float = 3.0
    """Debris is refractile: a strong phase bump gives sharp dark/bright rims."""
    dead_fraction: float = 0.04
    dead_um: float = 1.6
    """Median radius of a dead cell on a colony (log-normal)."""
    dead_absorb: float = 0.2
    """Scales the absorption of dead cells (relative to debris): real ones are refractile
    rings with a bright centre, not black dots."""
    cell_um: float = 6.5
    """Spacing of compact, undifferentiated cells (differentiated: 17 µm)."""
    nucleolus: float = 0.3
    """Optical path of a compact cell's nucleoli (dense: a dark central dot)."""
    nucleolus_fraction: float = 0.7
    """Fraction of compact colony cells that show a nucleolus (a dense, dark central dot)."""
    cell_scale: float = 1.0
    """Scales the optical path of the cells' texture (not the colony's thickness)."""
    gap: float = 0.8
    """Depth of the gaps between compact cells."""
    gap_continuity: float = 0.7
    """How continuous the gaps between compact cells are (0.3: fragmented; 0.9: every
    border, as in a flat epithelium)."""
    fine: float = 0.08
    """Optical path of the fine granularity (1-3 µm) inside compact cells."""
    fibres: tuple[float, float] = (0.01, 0.03)
    mottle: tuple[float, float] = (0.0006, 0.0018)
    """Fine mottle of the coating (absorption, band-pass ``mottle_band_um``)."""
    mottle_band_um: tuple[float, float] = (2.0, 5.0)
    smudge: tuple[float, float] = (0.0006, 0.002)
    """Large soft smudges of the background (absorption, band-pass 30-90 µm)."""
    specks_per_mm2: float = 2000.0
    speck_amp: float = 0.06
    """Mean absorption of the coating's tiny dark squiggles."""
    colony_absorb: float = 0.02
    edge_ramp_um: float = 4.0
    """A compact colony's thickness rises over this distance inside its border."""
    ragged_um: float = 1.5
    """Amplitude of a compact colony's ragged border (differentiated: 3.5 µm)."""
    plateau: float = 2.0
    """Optical path of a compact colony's sheet (differentiated: 0.4)."""
    glint: float = 0.1
    """Brightness of the refractile points in compact colonies."""
    illumination: float = 0.005
    """Sd of the illumination gradient across the field."""
    # what fully differentiated colonies (d = 1) look like, and the compact colonies' dome;
    # the defaults are hiPSC's, a cell line (stemwatch.synth.cellline) sets its own
    diff_cell_um: float = 17.0
    """Spacing of fully differentiated cells (compact: ``cell_um``)."""
    diff_ragged_um: float = 3.5
    """Ragged border amplitude of differentiated colonies (compact: ``ragged_um``)."""
    diff_edge_ramp_um: float = 12.0
    """Distance over which a differentiated colony's thickness rises (``edge_ramp_um``)."""
    diff_plateau: float = 0.4
    """Optical path of a differentiated sheet (compact: ``plateau``)."""
    diff_gap: float = 0.3
    """Depth of the gaps between differentiated cells (compact: ``gap``)."""
    dome: float = 0.0
    """Extra optical path at a compact colony's centre, relative to ``plateau``, rising
    from its border like a spherical cap (0: flat-topped; fades as ``d`` goes to 1)."""
    spindles: float = 1.0
    """Scales how many cells migrate out of differentiating colonies."""


LOOK = Look()
"""The default look; :func:`render_field` takes another one for experiments."""


def check_pixel_size(pixel_size_um: float) -> None:
    """Raise :class:`SynthError` for a pixel size outside :data:`PIXEL_SIZE_RANGE_UM`."""
    lo, hi = PIXEL_SIZE_RANGE_UM
    if not lo <= pixel_size_um <= hi:
        raise SynthError(
            f"pixel_size_um={pixel_size_um:g} is outside {lo:g}-{hi:g} µm/px, the range the "
            "synthetic microscope renders; for coarser images render finer and bin down"
        )


def check_modality(modality: str) -> None:
    if modality not in MODALITIES:
        raise SynthError(f"modality {modality!r} is unknown; use one of {', '.join(MODALITIES)}")


# --------------------------------------------------------------------------- cached tiles


@lru_cache(maxsize=24)
def _cell_tile(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A periodic jittered lattice of ``n`` x ``n`` cells on a :data:`TILE`-pixel square.

    Returns flat float32 arrays: distance to the cell's seed (px), approximate distance to the
    nearest cell border (px) and a per-cell uniform random number. Computed once per process
    per ``n`` (Worley / Voronoi with the 3x3 neighbouring lattice sites as candidates).
    """
    rng = np.random.default_rng(9000 + n)
    spacing = TILE / n
    jit = rng.uniform(0.08, 0.92, (2, n, n)).astype(np.float32)
    crand = rng.random((n, n), dtype=np.float32)
    g = ((np.arange(TILE, dtype=np.float32) + 0.5) / spacing).astype(np.float32)
    gu = np.broadcast_to(g[None, :], (TILE, TILE))
    gv = np.broadcast_to(g[:, None], (TILE, TILE))
    iu = np.floor(gu).astype(np.int64)
    iv = np.floor(gv).astype(np.int64)
    f1 = np.full((TILE, TILE), np.inf, np.float32)
    f2 = np.full((TILE, TILE), np.inf, np.float32)
    best = np.zeros((TILE, TILE), np.int64)
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            cu = iu + dj
            cv = iv + di
            flat = (cv % n) * n + (cu % n)
            du = gu - (cu + jit[0].ravel()[flat])
            dv = gv - (cv + jit[1].ravel()[flat])
            d2 = du * du + dv * dv
            closer = d2 < f1
            f2 = np.where(closer, f1, np.minimum(f2, d2))
            best = np.where(closer, flat, best)
            f1 = np.where(closer, d2, f1)
    r1 = np.sqrt(f1)
    edge = (np.sqrt(f2) - r1) * (0.5 * spacing)
    out = (
        (r1 * spacing).astype(np.float32).ravel(),
        edge.astype(np.float32).ravel(),
        crand.ravel()[best.ravel()],
    )
    for a in out:
        a.flags.writeable = False
    return out


@lru_cache(maxsize=24)
def _cell_profiles(n: int, ppu: float) -> tuple[np.ndarray, np.ndarray]:
    """The parts of a cell's profile that depend only on the lattice of :func:`_cell_tile`
    (and the pixel size), computed once per tile instead of at every pixel that samples it:
    the smooth body and the gap at the border (flat float32, as :func:`_cells` used them)."""
    f1_t, edge_t, _crand_t = _cell_tile(n)
    spacing = TILE / n
    body = np.exp(-((f1_t / (0.45 * spacing)) ** 2))
    gap = np.exp(-((edge_t / (1.0 * ppu)) ** 2))
    for a in (body, gap):
        a.flags.writeable = False
    return body, gap


def _band_noise(n: int, sigma_lo: float, sigma_hi: float, seed: int) -> np.ndarray:
    """Periodic band-pass Gaussian noise on an ``n`` x ``n`` square (unit sd, float32)
    keeping scales between ``sigma_lo`` and ``sigma_hi`` pixels."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft2(rng.standard_normal((n, n)))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f2 = fy * fy + fx * fx
    k = 2 * math.pi**2
    band = np.exp(-k * sigma_lo**2 * f2) - np.exp(-k * sigma_hi**2 * f2)
    x = np.fft.irfft2(spec * band, s=(n, n))
    return (x / x.std()).astype(np.float32)


@lru_cache(maxsize=16)
def _noise_tile(sigma_lo: float, sigma_hi: float) -> np.ndarray:
    """Flat :data:`NOISE_TILE`² band-pass noise (see :func:`_band_noise`)."""
    x = _band_noise(NOISE_TILE, sigma_lo, sigma_hi, int(sigma_lo * 1000 + sigma_hi * 10)).ravel()
    x.flags.writeable = False
    return x


@lru_cache(maxsize=8)
def _bg_tile(sigma_lo: float, sigma_hi: float) -> np.ndarray:
    """:data:`BG_TILE`² band-pass noise for the background (2-D)."""
    x = _band_noise(BG_TILE, sigma_lo, sigma_hi, 77 + int(sigma_lo * 100 + sigma_hi))
    x.flags.writeable = False
    return x


def _noise_at(
    ys: np.ndarray, xs: np.ndarray, offset: tuple[int, int], band: tuple[float, float]
) -> np.ndarray:
    """Band-pass noise (``band`` = sigma_lo, sigma_hi) at pixels (ys, xs), tile shifted by
    ``offset``."""
    oy, ox = offset
    tile = _noise_tile(round(band[0], 3), round(band[1], 3))
    m = NOISE_TILE - 1
    # np.take: ~a third faster than fancy indexing for a flat gather
    return np.take(tile, (((ys + oy) & m) << NOISE_BITS) | ((xs + ox) & m))


def _noise_frame(size: int, rng: np.random.Generator, band: tuple[float, float]) -> np.ndarray:
    """A ``size``² window of background noise at a random offset of its periodic tile."""
    tile = _bg_tile(round(band[0], 3), round(band[1], 3))
    oy, ox = (int(v) for v in rng.integers(0, BG_TILE, 2))
    rows = (np.arange(size) + oy) % BG_TILE
    cols = (np.arange(size) + ox) % BG_TILE
    return tile.take(rows, axis=0).take(cols, axis=1)


# --------------------------------------------------------------------------- colonies


@lru_cache(maxsize=1)
def _theta_basis() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    theta = np.linspace(-math.pi, math.pi, N_THETA, endpoint=False)
    k = np.arange(2, 48)[None, :]
    return theta, np.cos(k * theta[:, None]), np.sin(k * theta[:, None])


def _radial_table(view: ColonyView, rng: np.random.Generator, px_per_um: float) -> np.ndarray:
    """Colony radius (px) at :data:`N_THETA` angles from -pi: a few smooth harmonics (polygonal
    colonies), fine roughness and protrusions, all growing with the state ``d``."""
    _theta, cos_k, sin_k = _theta_basis()
    d = view.d
    amp = np.asarray(view.shape_amp) * (0.26 + 0.2 * d)
    ph = np.asarray(view.shape_phase)
    nk = amp.size
    coef_c = np.zeros(cos_k.shape[1])
    coef_s = np.zeros(cos_k.shape[1])
    coef_c[:nk] = amp * np.cos(ph)
    coef_s[:nk] = -amp * np.sin(ph)
    kk = np.arange(2, 2 + cos_k.shape[1])
    rough = rng.normal(0, 1, (2, kk.size)) / kk**0.9 * (0.02 + 0.05 * d) * (kk >= 8)
    coef_c += rough[0]
    coef_s += rough[1]
    rel = 1.0 + cos_k @ coef_c + sin_k @ coef_s
    r = view.radius
    table = r * np.maximum(rel, 0.35)
    # protrusions: short spikes on every colony, long lamellipodia as cells spread
    n_spikes = int(rng.poisson(2 * math.pi * r / (30.0 * px_per_um) * (0.5 + 1.5 * d)))
    if n_spikes:
        centres = rng.uniform(0, N_THETA, n_spikes)
        widths = rng.uniform(1.0, 3.5, n_spikes) * px_per_um / max(r, 1.0) * N_THETA / (2 * math.pi)
        lengths = (
            rng.exponential(3.5, n_spikes) + rng.uniform(0, 40.0, n_spikes) * d**1.5
        ) * px_per_um
        half = int(min(N_THETA // 2 - 1, math.ceil(3 * widths.max())))
        offs = np.arange(-half, half + 1)
        pos = np.floor(centres)[:, None] + offs[None, :]
        bumps = lengths[:, None] * np.exp(-np.abs((pos - centres[:, None]) / widths[:, None]))
        np.add.at(table, (pos.astype(np.int64) % N_THETA).ravel(), bumps.ravel())
    return table.astype(np.float32)


def _lerp(undiff: float, diff: float, d: Any) -> Any:
    return undiff + (diff - undiff) * d


@dataclass(frozen=True)
class _Lattice:
    """A colony's cell lattice, drawn once per colony (:func:`_lattice`): its state ``d``,
    the tile's cell count ``n`` and spacing (px), orientation (``c``, ``s``: cos, sin),
    stretch, and the offsets of the cell tile (``oy``, ``ox``) and of its noise (``ny``,
    ``nx``)."""

    d: float
    n: int
    spacing: float
    c: float
    s: float
    stretch: float
    oy: int
    ox: int
    ny: int
    nx: int


def _lattice(view: ColonyView, *, ppu: float, rng: np.random.Generator, look: Look) -> _Lattice:
    """Draw the cell lattice of a colony (for :func:`_cells`) from its generator."""
    d = float(np.clip(view.d, 0.0, 1.0))
    compaction = 1.0 - 0.1 * min(1.0, view.age_h / 48.0) * (1.0 - d)
    spacing = _lerp(look.cell_um, look.diff_cell_um, d) * compaction * ppu
    spacing *= float(rng.uniform(0.9, 1.1))
    # few distinct lattices (every other cell count) so the per-process tile cache stays small
    n = max(4, 2 * round(TILE / spacing / 2))
    ang = float(rng.uniform(0, math.pi))
    stretch = float(rng.uniform(1.0, 1.3)) + 0.5 * d * float(rng.uniform(0.5, 1.0))
    oy, ox = (int(v) for v in rng.integers(0, TILE, 2))
    ny, nx = (int(v) for v in rng.integers(0, NOISE_TILE, 2))
    return _Lattice(d, n, TILE / n, math.cos(ang), math.sin(ang), stretch, oy, ox, ny, nx)


def _cells(
    lat: _Lattice,
    *,
    ys: np.ndarray,
    xs: np.ndarray,
    depth: np.ndarray,
    rmean: float,
    ppu: float,
    look: Look,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optical path of the cells of a colony (its lattice ``lat``) at absolute pixels
    (``ys``, ``xs``), ``depth`` px inside its border, where dead cells sit (a boolean mask
    over those pixels) and its glints. Pixel by pixel: any subset of a colony's pixels gets
    the same values.

    Compact, undifferentiated cells (Thomson et al. 1998): small (~6.5 µm), tightly packed,
    domed, a large nucleus (high nucleus-to-cytoplasm ratio) with prominent nucleoli.
    Differentiating cells (``d`` -> 1): enlarged (~16 µm), flattened (less relief) with spread
    cytoplasm, a small nucleus (low nucleus-to-cytoplasm ratio) and thin distinct borders."""
    d, n, spacing, c, s = lat.d, lat.n, lat.spacing, lat.c, lat.s
    stretch, oy, ox, ny, nx = lat.stretch, lat.oy, lat.ox, lat.ny, lat.nx
    f1_t, _edge_t, crand_t = _cell_tile(n)
    xf = xs.astype(np.float32)
    yf = ys.astype(np.float32)
    # a slow warp of the lattice coordinates: cells are not on a grid
    warp = _noise_at(ys, xs, (ny, nx), (4.0 * ppu, 12.0 * ppu)) * np.float32(0.2 * spacing)
    iu = ((xf * c + yf * s + warp) / stretch).astype(np.int64) + ox
    iv = (yf * c - xf * s - warp).astype(np.int64) + oy
    flat = ((iv & (TILE - 1)) << TILE_BITS) | (iu & (TILE - 1))
    body_t, gap_t = _cell_profiles(n, ppu)
    f1 = np.take(f1_t, flat)
    crand = np.take(crand_t, flat)
    fine = _noise_at(ys, xs, (nx, ny), (1.2 * ppu, 3.0 * ppu))
    # the periphery differentiates first: local state is higher near the border
    inner = np.clip(depth / (0.35 * rmean), 0.0, 1.0)
    dl = np.clip(d * (1.45 - 0.7 * np.sqrt(inner)), 0.0, 1.0)
    # a cell: a smooth body (domed in compact colonies, flat when differentiated), the
    # nucleus a bump (large in compact cells: high nucleus-to-cytoplasm ratio), nucleoli
    # small dense dots, and between cells narrow gaps, fragmented in compact colonies
    # (where neighbours press together there is no gap) and continuous in flat epithelia
    size_var = 0.75 + 0.5 * crand
    body = np.take(body_t, flat)
    rn = _lerp(0.36, 0.2, dl) * spacing
    nucleus = np.exp(-((f1 / rn) ** 2))
    nucleolus = np.exp(-((f1 / (_lerp(1.0, 1.1, dl) * ppu)) ** 2))
    nucleolus *= crand > 1.0 - look.nucleolus_fraction
    gap = np.take(gap_t, flat)
    mask = np.clip(
        _lerp(look.gap_continuity, 0.9, dl)
        + 0.8 * _noise_at(ys, xs, (ny, ox), (1.5 * ppu, 4.0 * ppu)),
        0.0,
        1.0,
    )
    path = (
        _lerp(0.6, 0.2, dl) * body * size_var
        + _lerp(0.5, 0.35, dl) * nucleus * size_var
        + _lerp(look.nucleolus, 0.3, dl) * nucleolus
        - _lerp(look.gap, look.diff_gap, dl) * gap * mask
        + _lerp(look.fine, 0.05, dl) * fine
    )
    # dead and mitotic cells per area, not per cell: larger flat cells carry as many
    per_cell = look.dead_fraction * min(8.0, (spacing / (look.cell_um * ppu)) ** 2)
    dead = (crand < per_cell) & (f1 < 1.6 * ppu)
    glint = np.clip(fine - 1.6, 0.0, None) * (mask > 0.5) * (1.0 - dl)
    return (path * np.float32(look.cell_scale)).astype(np.float32), dead, glint


BLOCK = 16
"""Side (px) of the blocks a colony skips whole where it cannot reach or where colonies drawn
before it already cover every pixel at full thickness."""


@dataclass
class _Colonies:
    """The colony layer while it is drawn: thickness (the maximum over overlapping colonies,
    so touching colonies merge into one sheet), the optical path of the cells of the colony
    that owns each pixel (the top one) and which pixels are owned; per :data:`BLOCK`² block,
    how many of its pixels are at full thickness (``n_full``) and how many it has (``n_px``,
    fewer at the image's edge)."""

    thick: np.ndarray
    body: np.ndarray
    glint: np.ndarray
    owner: np.ndarray
    n_full: np.ndarray
    n_px: np.ndarray

    @classmethod
    def empty(cls, size: int) -> _Colonies:
        nb = -(-size // BLOCK)
        side = np.minimum(BLOCK, size - BLOCK * np.arange(nb))
        return cls(
            np.zeros((size, size), np.float32),
            np.zeros((size, size), np.float32),
            np.zeros((size, size), np.float32),
            np.zeros((size, size), bool),
            np.zeros((nb, nb), np.int64),
            (side[:, None] * side[None, :]).astype(np.int64),
        )


def _candidates(
    layer: _Colonies,
    box: tuple[int, int, int, int],
    centre: tuple[float, float],
    frame: tuple[float, float, float],
    reach: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns (int32) of the pixels of ``box`` (y0, y1, x0, x1) in blocks that a
    colony at ``centre`` (cy, cx) with stretched ``frame`` (cos, sin, sqrt aspect) may reach
    within ``reach`` and that are not all at full thickness yet; block by block, not in
    row-major order."""
    y0, y1, x0, x1 = box
    cy, cx = centre
    ca, sa, sq = frame
    by0, by1 = y0 // BLOCK, (y1 - 1) // BLOCK + 1
    bx0, bx1 = x0 // BLOCK, (x1 - 1) // BLOCK + 1
    half = (BLOCK - 1) / 2
    dy = np.arange(by0, by1) * BLOCK + half - cy
    dx = np.arange(bx0, bx1) * BLOCK + half - cx
    ub = (dx[None, :] * ca + dy[:, None] * sa) / sq
    vb = (dy[:, None] * ca - dx[None, :] * sa) * sq
    # a pixel lies within half * sqrt(2) of its block's centre, which the stretch moves by at
    # most max(sq, 1 / sq) times that in the colony's frame (plus a pixel for rounding)
    slack = half * math.sqrt(2.0) * max(sq, 1.0 / sq) + 1.0
    open_ = layer.n_full[by0:by1, bx0:bx1] < layer.n_px[by0:by1, bx0:bx1]
    bi, bj = np.nonzero(open_ & (ub * ub + vb * vb < (reach + slack) ** 2))
    ar = np.arange(BLOCK, dtype=np.int32)
    rows = (bi.astype(np.int32) + by0)[:, None] * BLOCK + ar
    cols = (bj.astype(np.int32) + bx0)[:, None] * BLOCK + ar
    shape = (bi.size, BLOCK, BLOCK)
    ys = np.broadcast_to(rows[:, :, None], shape)
    xs = np.broadcast_to(cols[:, None, :], shape)
    ok = ((rows >= y0) & (rows < y1))[:, :, None] & ((cols >= x0) & (cols < x1))[:, None, :]
    if ok.all():
        return ys.ravel(), xs.ravel()
    return ys[ok], xs[ok]


CHUNK = 65536
"""Candidate pixels a colony's pixel work handles at a time (see :func:`_draw_colony`)."""


@dataclass(frozen=True)
class _Outline:
    """A colony's outline for :func:`_colony_pixels`: centre (cy, cx), stretched frame
    (cos, sin, sqrt aspect), radial ``table``, ``reach`` (px, the longest radius plus the
    ragged margin), the ragged border's amplitude ``rag`` and the thickness rise ``w_edge``
    (px), and the offsets ``off`` of its noise."""

    centre: tuple[float, float]
    frame: tuple[float, float, float]
    table: np.ndarray
    reach: float
    rag: float
    w_edge: float
    off: tuple[int, int]


def _colony_pixels(
    layer: _Colonies, shape: _Outline, ys: np.ndarray, xs: np.ndarray, ppu: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Of the candidate pixels (``ys``, ``xs``) of a colony: raise the layer's thickness
    where the colony lies (the maximum of the colonies'), count the blocks' pixels that reach
    full thickness, and return the pixels inside it that no colony drawn before owns: rows,
    columns, flat indices and depth inside the border (px)."""
    width = layer.thick.shape[1]
    thick_flat = layer.thick.reshape(-1)
    cy, cx = shape.centre
    ca, sa, sq = shape.frame
    rag = shape.rag
    pix = ys * width + xs
    keep = np.take(thick_flat, pix) < np.float32(1.0)
    ys, xs, pix = ys[keep], xs[keep], pix[keep]
    yy = ys.astype(np.float32) - np.float32(cy)
    xx = xs.astype(np.float32) - np.float32(cx)
    u = (xx * ca + yy * sa) / sq
    v = (yy * ca - xx * sa) * sq
    rho2 = u * u + v * v
    theta = np.arctan2(v, u)
    idx = ((theta + math.pi) * (N_THETA / (2 * math.pi))).astype(np.int32) & (N_THETA - 1)
    s = np.take(shape.table, idx) - np.sqrt(rho2)  # ~ signed distance to the border, + inside
    near = (rho2 < np.float32(shape.reach**2)) & (s > -3 * rag)
    ys, xs, pix, s = ys[near], xs[near], pix[near], s[near]
    off = shape.off
    s = s + np.float32(rag) * _noise_at(ys, xs, off, (3.0 * ppu, 10.0 * ppu))
    inside = s > 0
    ys, xs, pix, s = ys[inside], xs[inside], pix[inside], s[inside]
    if not ys.size:
        return ys, xs, pix, s
    # thickness: rises over w_edge (varying along the border: an uneven halo)
    wl = shape.w_edge * (
        0.55 + 0.45 * (1.0 + _noise_at(ys, xs, off[::-1], (6.0 * ppu, 20.0 * ppu)))
    )
    t = np.clip(s / np.maximum(wl, 0.5), 0.0, 1.0)
    thick = (t * (2.0 - t)).astype(np.float32)  # a kink at the foot: a thin bright halo
    thick_flat[pix] = np.maximum(np.take(thick_flat, pix), thick)
    # every pixel here was below full thickness: count those that reach it, per block
    nb = layer.n_full.shape[0]
    done = thick >= np.float32(1.0)
    blocks = (ys[done] // BLOCK) * nb + xs[done] // BLOCK
    layer.n_full += np.bincount(blocks, minlength=layer.n_full.size).reshape(nb, nb)
    free = ~np.take(layer.owner.reshape(-1), pix)
    return ys[free], xs[free], pix[free], s[free]


def _draw_colony(
    layer: _Colonies,
    view: ColonyView,
    *,
    ppu: float,
    look: Look,
) -> tuple[list[tuple[float, float, float]], tuple[np.ndarray, np.ndarray]]:
    """Draw one colony's thickness everywhere it reaches and its cells where no colony drawn
    before it lies (callers draw the top colony first); returns where its spindle cells and
    its dead cells are."""
    rng = np.random.default_rng(view.seed)
    h, w = layer.owner.shape
    d = float(np.clip(view.d, 0.0, 1.0))
    table = _radial_table(view, rng, ppu)
    rmax = float(table.max())
    rag = _lerp(look.ragged_um, look.diff_ragged_um, d) * ppu  # ragged border, px
    w_edge = _lerp(look.edge_ramp_um, look.diff_edge_ramp_um, d) * ppu  # thickness rise, px
    plateau = _lerp(look.plateau, look.diff_plateau, d)
    sq = math.sqrt(view.aspect)
    reach = rmax * sq + 3 * rag + 2
    y0 = max(0, int(view.cy - reach))
    y1 = min(h, int(view.cy + reach) + 1)
    x0 = max(0, int(view.cx - reach))
    x1 = min(w, int(view.cx + reach) + 1)
    none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if y0 >= y1 or x0 >= x1:
        return [], none
    ca, sa = math.cos(view.angle), math.sin(view.angle)
    rmean = max(float(table.mean()), 1.0)
    pts: list[tuple[float, float, float]] = []
    dead_y: np.ndarray = none[0]
    dead_x: np.ndarray = none[1]
    # the colony's pixels: those in its reach (its box's corners are empty) and not where a
    # colony drawn before is already at full thickness (nothing changes there: the thickness
    # is the maximum, the cells are that colony's); at confluence this skips most of the
    # overlap, whole blocks at a time
    width = layer.thick.shape[1]
    ys_all, xs_all = _candidates(
        layer, (y0, y1, x0, x1), (view.cy, view.cx), (ca, sa, sq), rmax + 3 * rag
    )
    shape = _Outline(
        centre=(view.cy, view.cx),
        frame=(ca, sa, sq),
        table=table,
        reach=rmax + 3 * rag,
        rag=rag,
        w_edge=w_edge,
        off=(int(view.seed % 509), int(view.seed % 503)),
    )
    lat: _Lattice | None = None
    dead_pix: list[np.ndarray] = []
    # pixel by pixel work in chunks, so a large colony's temporaries stay in the cache
    # (colony drawing ~5-10 % faster at 48 h); every step is per pixel, so the values do not
    # depend on the chunking, and the lattice is drawn at the first pixel that gets cells
    # (its generator's draws in the same order as before)
    for i in range(0, ys_all.size, CHUNK):
        ys, xs, pix, s = _colony_pixels(
            layer, shape, ys_all[i : i + CHUNK], xs_all[i : i + CHUNK], ppu
        )
        if not ys.size:
            continue
        if lat is None:
            lat = _lattice(view, ppu=ppu, rng=rng, look=look)
        cells, dead, glint = _cells(lat, ys=ys, xs=xs, depth=s, rmean=rmean, ppu=ppu, look=look)
        if look.dome > 0.0:
            # a dome: the path rises like a spherical cap from the border inwards
            cap = np.sqrt(np.clip(s * (2.0 * rmean - s), 0.0, None)) / np.float32(rmean)
            dome = np.float32(plateau * look.dome * (1.0 - d)) * np.minimum(cap, 1.0)
            layer.body.reshape(-1)[pix] = plateau + dome + cells
        else:
            layer.body.reshape(-1)[pix] = plateau + cells
        layer.glint.reshape(-1)[pix] = glint
        layer.owner.reshape(-1)[pix] = True
        dead_pix.append(pix[dead])
    if dead_pix:
        # in row-major order, as the dead cells are thinned by a draw per pixel
        at = np.sort(np.concatenate(dead_pix)).astype(np.int64)
        dead_y, dead_x = at // width, at % width
    # spindle-shaped cells migrating out of differentiating colonies
    if d > 0.15:
        n_sp = int(rng.poisson(look.spindles * d**2 * 2 * math.pi * rmean / (90.0 * ppu)))
        for _ in range(n_sp):
            th = float(rng.uniform(-math.pi, math.pi))
            rr = float(table[int((th + math.pi) * N_THETA / (2 * math.pi)) % N_THETA])
            dist = rr + float(rng.uniform(-0.1, 1.0)) * 50.0 * ppu * d
            uu0, vv0 = dist * math.cos(th) * sq, dist * math.sin(th) / sq
            px = view.cx + uu0 * ca - vv0 * sa
            py = view.cy + uu0 * sa + vv0 * ca
            orient = math.atan2(py - view.cy, px - view.cx) + float(rng.normal(0, 0.5))
            pts.append((px, py, orient))
    return pts, (dead_y, dead_x)


def _draw_spindle(
    phase: np.ndarray, at: tuple[float, float, float], rng: np.random.Generator, ppu: float
) -> None:
    """An elongated, flat, migrating cell at ``at`` = (x, y, orientation): a thin body that
    tapers at both ends and a nucleus."""
    px, py, orient = at
    h, w = phase.shape
    length = float(rng.uniform(20.0, 45.0)) * ppu
    width = float(rng.uniform(2.5, 5.0)) * ppu
    reach = length + 4
    y0, y1 = max(0, int(py - reach)), min(h, int(py + reach) + 1)
    x0, x1 = max(0, int(px - reach)), min(w, int(px + reach) + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(py)
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(px)
    c, s = math.cos(orient), math.sin(orient)
    a = (xx * c + yy * s) / length
    b = (yy * c - xx * s) / width
    taper = np.clip(1.0 - np.abs(a) ** 1.5, 0.01, 1.0) ** 2
    q = np.sqrt(a * a + (b * b) / taper)
    body = np.clip(1.0 - q * q, 0.0, 1.0) ** 0.7
    nucleus = np.exp(-((a * 3.0) ** 2 + (b * 1.3) ** 2))
    phase[y0:y1, x0:x1] += 0.35 * body + 0.25 * nucleus


STAMP_HALF = 9
"""Half-width (px) of the window :func:`_stamp` draws small particles in."""


def _particle_profile(
    yy: np.ndarray,
    xx: np.ndarray,
    *,
    cos: Any,
    sin: Any,
    aspect: Any,
    r2: Any,
    soft: bool,
) -> np.ndarray:
    """A particle's profile at offsets (``yy``, ``xx``) from its centre: an ellipse of squared
    radius ``r2`` stretched ``aspect``-fold along its angle, Gaussian when ``soft`` (out of
    focus), else flat-topped and sharp-edged. Scalars or arrays that broadcast (one particle
    or many at once)."""
    u = (xx * cos + yy * sin) / aspect
    v = yy * cos - xx * sin
    q = (u * u + v * v) / r2
    return np.exp(-q) if soft else np.exp(-(q * q))


def _stamp(
    spec: Specimen,
    ys: np.ndarray,
    xs: np.ndarray,
    *,
    radii: np.ndarray,
    absorb: np.ndarray,
    height: np.ndarray,
    aspects: np.ndarray,
    angles: np.ndarray,
) -> None:
    """Sharp particles reaching at most :data:`STAMP_HALF` px from their centre, all at
    once: the profile :func:`_particles` draws one by one, added with ``np.add.at``
    (overlapping particles sum)."""
    h, w = spec.phase.shape
    off = np.arange(-STAMP_HALF, STAMP_HALF + 1)
    iy = np.floor(ys).astype(np.int64)[:, None] + off  # (n, k) pixel rows
    ix = np.floor(xs).astype(np.int64)[:, None] + off
    yy = (iy - ys[:, None]).astype(np.float32)[:, :, None]
    xx = (ix - xs[:, None]).astype(np.float32)[:, None, :]
    prof = _particle_profile(
        yy,
        xx,
        cos=np.cos(angles).astype(np.float32)[:, None, None],
        sin=np.sin(angles).astype(np.float32)[:, None, None],
        aspect=aspects.astype(np.float32)[:, None, None],
        r2=(radii * radii).astype(np.float32)[:, None, None],
        soft=False,
    )
    valid = ((iy >= 0) & (iy < h))[:, :, None] & ((ix >= 0) & (ix < w))[:, None, :]
    flat = (iy[:, :, None] * w + ix[:, None, :])[valid]
    for target, amp in ((spec.absorb, absorb), (spec.phase, height)):
        vals = (prof * amp.astype(np.float32)[:, None, None])[valid]
        np.add.at(target.reshape(-1), flat, vals)


def _particles(
    spec: Specimen,
    ys: np.ndarray,
    xs: np.ndarray,
    *,
    radii: np.ndarray,
    absorb: np.ndarray,
    height: np.ndarray,
    soft: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Roundish particles (elongated up to 1.8:1): absorbing and refractile (a phase bump),
    ``soft`` ones out of focus (Gaussian, wide) instead of sharp-edged."""
    h, w = spec.phase.shape
    n = len(ys)
    aspects = rng.uniform(1.0, 1.8, n)
    angles = rng.uniform(0.0, math.pi, n)
    reach = radii * aspects * np.where(soft, 3.5, 1.8) + 2
    small = ~soft & (reach <= STAMP_HALF)
    # the many small sharp ones (dead cells, most debris) in one vectorised stamp
    if small.any():
        _stamp(
            spec,
            ys[small],
            xs[small],
            radii=radii[small],
            absorb=absorb[small],
            height=height[small],
            aspects=aspects[small],
            angles=angles[small],
        )
    big = ~small
    for y, x, r, a, hgt, sft, asp, ang in zip(
        ys[big],
        xs[big],
        radii[big],
        absorb[big],
        height[big],
        soft[big],
        aspects[big],
        angles[big],
        strict=True,
    ):
        reach = r * asp * (3.5 if sft else 1.8) + 2
        y0, y1 = max(0, int(y - reach)), min(h, int(y + reach) + 1)
        x0, x1 = max(0, int(x - reach)), min(w, int(x + reach) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(y)
        xx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(x)
        prof = _particle_profile(
            yy,
            xx,
            cos=np.float32(math.cos(ang)),
            sin=np.float32(math.sin(ang)),
            aspect=np.float32(asp),
            r2=np.float32(r * r),
            soft=bool(sft),
        )
        spec.absorb[y0:y1, x0:x1] += np.float32(a) * prof
        spec.phase[y0:y1, x0:x1] += np.float32(hgt) * prof


def _debris(
    spec: Specimen, rng: np.random.Generator, ppu: float, amount: float, look: Look
) -> None:
    """Floating debris and dead cells over the whole field: sizes from below a micrometre to
    ~10 µm (log-normal), some in clusters, a quarter out of focus (faint, wide)."""
    h, w = spec.phase.shape
    area_um2 = h * w / (ppu * ppu)
    n = int(rng.poisson(area_um2 * 1e-6 * look.debris_per_mm2 * amount * rng.uniform(0.3, 2.5)))
    if n == 0:
        return
    ys = rng.uniform(0, h, n)
    xs = rng.uniform(0, w, n)
    # clusters: some particles get companions next to them
    k = int(rng.binomial(n, 0.4))
    if k:
        parent = rng.integers(0, n, k)
        ys = np.concatenate([ys, ys[parent] + rng.normal(0, 3.0 * ppu, k)])
        xs = np.concatenate([xs, xs[parent] + rng.normal(0, 3.0 * ppu, k)])
    m = ys.size
    radii = np.clip(rng.lognormal(math.log(look.debris_um), 0.5, m), 0.4, 6.0) * ppu
    soft = rng.random(m) < 0.05
    radii = np.where(soft, radii * rng.uniform(2.0, 5.0, m), radii)
    absorb = rng.uniform(0.05, 0.3, m) * np.where(soft, 0.12, 1.0) * look.debris_absorb_scale
    height = rng.uniform(0.6, 2.0, m) * np.where(soft, 0.2, 1.0) * look.debris_height_scale
    _particles(
        spec, ys, xs, radii=np.maximum(radii, 0.5), absorb=absorb, height=height, soft=soft, rng=rng
    )


def _background(
    spec: Specimen, rng: np.random.Generator, ppu: float, amount: float, look: Look
) -> None:
    """The coating's texture under everything: faint thin fibres (the zero crossings of
    band-pass noise), a fine mottle and tiny dark specks."""
    size = spec.phase.shape[0]
    lo = round(3.0 * ppu, 1)
    fib = _noise_frame(size, rng, (lo, round(lo * 4.0, 1)))
    fibres = np.exp(-((fib / np.float32(0.12)) ** 2))
    mlo, mhi = look.mottle_band_um
    mottle = _noise_frame(size, rng, (round(mlo * ppu, 1), round(mhi * ppu, 1)))
    a_f = float(rng.uniform(*look.fibres)) * amount
    a_m = float(rng.uniform(*look.mottle)) * amount
    spec.phase += np.float32(0.3 * a_f) * fibres
    spec.absorb += np.float32(a_f) * fibres + np.float32(a_m) * mottle
    a_s = float(rng.uniform(*look.smudge)) * amount
    if a_s > 0:
        smudge = _noise_frame(size, rng, (round(30.0 * ppu), round(90.0 * ppu)))
        spec.absorb += np.float32(a_s) * smudge
    n = int(rng.poisson(size * size / (ppu * ppu) * 1e-6 * look.specks_per_mm2 * amount))
    if n:
        ys = rng.integers(0, size, n)
        xs = rng.integers(0, size, n)
        # short squiggles, not points: a random walk of 2-6 steps each
        steps = rng.integers(2, 7, n)
        amp = rng.exponential(look.speck_amp, n).astype(np.float32)
        for k in range(int(steps.max())):
            live = steps > k
            np.add.at(spec.absorb, (ys[live] % size, xs[live] % size), amp[live])
            ys = ys + rng.integers(-1, 2, n)
            xs = xs + rng.integers(-1, 2, n)


def render_specimen(
    views: list[ColonyView],
    size: int,
    rng: np.random.Generator,
    *,
    pixel_size_um: float = 1.0,
    noise: float = 1.0,
    look: Look = LOOK,
) -> Specimen:
    """The specimen of one field: optical path and absorption maps (float32, ``size``²)."""
    ppu = 1.0 / pixel_size_um
    spec = Specimen(*(np.zeros((size, size), np.float32) for _ in range(4)))
    _background(spec, rng, ppu, 1.0, look)
    layer = _Colonies.empty(size)
    spindles: list[tuple[float, float, float]] = []
    dead_y: list[np.ndarray] = []
    dead_x: list[np.ndarray] = []
    for view in reversed(views):
        pts, (dy, dx) = _draw_colony(layer, view, ppu=ppu, look=look)
        spindles += pts
        dead_y.append(dy)
        dead_x.append(dx)
    spec.phase += layer.thick * layer.body
    spec.cover += layer.thick
    spec.glint += layer.thick * layer.glint
    spec.absorb += np.float32(look.colony_absorb) * layer.thick
    for at in spindles:
        _draw_spindle(spec.phase, at, rng, ppu)
    # dead cells on the colonies: dark, refractile, a few micrometres, often in clumps
    if dead_y:
        cy = np.concatenate(dead_y).astype(np.float64)
        cx = np.concatenate(dead_x).astype(np.float64)
        if cy.size:
            # one particle per dead cell (its pixels are many): thin them to one per cell
            keep = rng.random(cy.size) < 1.0 / max(1.0, 3.0 * ppu * ppu)
            cy, cx = cy[keep], cx[keep]
            m = cy.size
            radii = np.clip(rng.lognormal(math.log(look.dead_um), 0.35, m), 0.8, 4.0) * ppu
            _particles(
                spec,
                cy,
                cx,
                radii=radii,
                absorb=rng.uniform(0.05, 0.25, m) * look.debris_absorb_scale * look.dead_absorb,
                height=rng.uniform(0.6, 2.0, m) * look.debris_height_scale,
                soft=np.zeros(m, bool),
                rng=rng,
            )
    _debris(spec, rng, ppu, noise, look)
    return spec


# --------------------------------------------------------------------------- optics


def _laplacian(a: np.ndarray) -> np.ndarray:
    """5-point Laplacian with reflecting edges."""
    p = np.pad(a, 1, mode="edge")
    return p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:] - 4.0 * a


def _lowpass(a: np.ndarray, sigma: float) -> np.ndarray:
    """A wide Gaussian low-pass, cheaply: block-mean by ``k``, Gaussian on the small
    plane, bilinear back up."""
    k = max(1, int(sigma / 3))
    h, w = a.shape
    hk, wk = h // k, w // k
    small = a[: hk * k, : wk * k].reshape(hk, k, wk, k).mean(axis=(1, 3))
    small = ndi.gaussian_filter(small, sigma / k, mode="reflect")
    if k == 1:
        return small
    zoom = (h / hk, w / wk)
    return ndi.zoom(small, zoom, order=1, mode="nearest", grid_mode=True)[:h, :w]


def form_image(
    spec: Specimen,
    rng: np.random.Generator,
    difficulty: Difficulty,
    *,
    modality: str = "brightfield",
    pixel_size_um: float = 1.0,
    look: Look = LOOK,
) -> tuple[np.ndarray, float, float]:
    """The intensity modulation around 0 (``spec`` is used as scratch): returns it, the
    defocus blur (px) and the contrast gain drawn."""
    check_modality(modality)
    ppu = 1.0 / pixel_size_um
    nz = difficulty.noise
    defocus = float(0.45 + abs(rng.normal(0.0, 0.15 * nz)))
    gain = float(math.exp(rng.normal(0.0, difficulty.contrast_jitter)))
    # partial coherence: the condenser's aperture damps the phase contrast of the finest
    # detail (the transfer of a defocused bright field falls off beyond ~1 µm)
    path = _blur(spec.phase, math.hypot(defocus, float(rng.uniform(*look.phase_blur_um)) * ppu))
    # absorption darkens, glints brighten: both enter the image linearly, so one blur of
    # their difference serves both
    spec.glint *= np.float32(look.glint)
    spec.glint -= spec.absorb
    shade = _blur(spec.glint, defocus)
    # oblique illumination: a little relief along a random direction
    ang = float(rng.uniform(0, 2 * math.pi))
    relief = float(rng.uniform(*look.relief))
    gy, gx = np.gradient(path)
    grad = gx * np.float32(math.cos(ang)) + gy * np.float32(math.sin(ang))
    lap = _laplacian(path)
    if modality == "brightfield":
        k = look.bf_gain * ppu * ppu  # the Laplacian is per px²: the same contrast per µm
        mod = np.float32(k) * (lap + np.float32(relief) * grad)
        target = look.bf_contrast
    else:
        # the ring passes the path high-passed at its scale (halo and shade-off); a finite
        # ring leaves part of the large scales (a colony's interior stays darker)
        ring = float(rng.uniform(5.0, 12.0)) * ppu
        keep = float(rng.uniform(0.25, 0.5))
        mod = np.float32(-look.pc_gain) * (path - np.float32(1.0 - keep) * _lowpass(path, ring))
        mod += np.float32(0.04) * (lap + np.float32(relief) * grad)
        target = look.pc_contrast
    mod += shade
    # exposure and condenser setting: the contrast of the colonies is scaled to a random
    # target drawn independently of what they are, so contrast carries no label (fields
    # almost without colonies keep the contrast their optics give)
    inside = spec.cover[::4, ::4] > 0.5
    if not look.colony_contrast:
        inside[:] = True
    if inside.mean() > 0.02:
        sd = float(mod[::4, ::4][inside].std())
        mod *= np.float32(np.clip(target * gain / max(sd, 1e-6), 0.3, 4.0))
    else:
        mod *= np.float32(gain)
    if rng.random() < 0.05 * nz:
        _draw_bubble(mod, rng)
    return mod, defocus, gain


def _smooth_field(
    size: int, rng: np.random.Generator, scale: int, amplitude: float, n_blobs: float
) -> np.ndarray:
    """Low-resolution smooth random field: illumination gradient plus out-of-focus smudges."""
    n = max(4, size // scale)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / (n - 1) - 0.5
    gx, gy = rng.normal(0, amplitude, 2)
    field = 1.0 + gx * xx + gy * yy
    # vignetting
    vig = float(rng.uniform(0.005, 0.02))
    cx, cy = rng.normal(0, 0.08, 2)
    field *= 1.0 - vig * ((xx - cx) ** 2 + (yy - cy) ** 2) * 2
    imp = np.zeros((n, n), np.float32)
    k = int(rng.poisson(n_blobs))
    if k:
        imp[rng.integers(0, n, k), rng.integers(0, n, k)] = rng.uniform(-1.0, -0.3, k)
        field += ndi.gaussian_filter(imp, float(rng.uniform(1.0, 2.5))) * 0.04
    return field.astype(np.float32)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (reflecting edges) by shifted multiply-adds in float32: for
    the small kernels here ~4x faster than ndimage.gaussian_filter."""
    r = max(1, math.ceil(3.0 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    h, w = img.shape
    if min(h, w) <= r:
        return ndi.gaussian_filter(img, sigma, truncate=3.0)
    pad = np.pad(img, ((r, r), (0, 0)), mode="symmetric")
    tmp = pad[0:h] * k[0]
    for i in range(1, 2 * r + 1):
        tmp += pad[i : i + h] * k[i]
    pad = np.pad(tmp, ((0, 0), (r, r)), mode="symmetric")
    out = pad[:, 0:w] * k[0]
    for i in range(1, 2 * r + 1):
        out += pad[:, i : i + w] * k[i]
    return out


def _illuminate(img: np.ndarray, small: np.ndarray) -> np.ndarray:
    """Multiply ``img`` in place by the bilinear upsampling of the small smooth field
    ``small``, one band of rows at a time (cache-friendly; no full-size field is built)."""
    size = img.shape[0]
    n = small.shape[0]
    pos = np.clip((np.arange(size, dtype=np.float32) + 0.5) * (n / size) - 0.5, 0, n - 1)
    lo = np.minimum(pos.astype(np.int64), n - 2)
    frac = (pos - lo).astype(np.float32)[:, None]
    m = np.zeros((size, n), np.float32)
    m[np.arange(size), lo] = 1.0 - frac[:, 0]
    m[np.arange(size), lo + 1] = frac[:, 0]
    cols = small.astype(np.float32) @ m.T  # (n, size): rows of the field, full width
    starts = np.flatnonzero(np.diff(lo, prepend=-1))
    for a, b in zip(starts, [*starts[1:], size], strict=True):
        k = int(lo[a])
        band = cols[k] + frac[a:b] * (cols[k + 1] - cols[k])
        img[a:b] *= band
    return img


def _draw_bubble(out: np.ndarray, rng: np.random.Generator) -> None:
    h, w = out.shape
    r = float(rng.uniform(0.05, 0.2) * min(h, w))
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    y0, y1 = max(0, int(cy - r - 8)), min(h, int(cy + r + 8))
    x0, x1 = max(0, int(cx - r - 8)), min(w, int(cx + r + 8))
    if y0 >= y1 or x0 >= x1:
        return
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
    rr = np.hypot(yy, xx) - r
    ring = -0.35 * np.exp(-((rr / 3.0) ** 2)) + 0.12 * np.exp(-(((rr + 6.0) / 4.0) ** 2))
    out[y0:y1, x0:x1] += ring + 0.04 * (rr < 0)


# --------------------------------------------------------------------------- camera


def expose(
    modulation: np.ndarray,
    rng: np.random.Generator,
    difficulty: Difficulty,
    *,
    bit_depth: int = 16,
    defocus_px: float = 0.0,
    contrast: float = 1.0,
    look: Look = LOOK,
    colony_fraction: float = 0.5,
) -> tuple[np.ndarray, Exposure]:
    """Image an intensity modulation (around 0; used as scratch): illumination,
    noise, camera blur, tone curve, gain/offset, quantisation."""
    if bit_depth not in (8, 16):
        raise SynthError(f"bit_depth {bit_depth} is not supported; use 8 or 16")
    size = modulation.shape[0]
    nz = difficulty.noise
    full = 255.0 if bit_depth == 8 else 4095.0
    signal = modulation
    signal += np.float32(1.0)
    np.maximum(signal, np.float32(0.02), out=signal)
    illum_small = _smooth_field(size, rng, 32, look.illumination, 2 * nz)
    level = float(rng.uniform(0.45, 0.6)) * full
    signal = _illuminate(signal, illum_small)
    # auto-exposure: the image mean (not the background) lands at ``level``
    signal *= np.float32(level / max(float(signal[::4, ::4].mean()), 0.05))
    # Poisson-Gaussian noise (Gaussian approximation of the shot noise: counts are high)
    lo_e, hi_e = look.full_well_e
    dn_per_e = full / float(math.exp(rng.uniform(math.log(lo_e), math.log(hi_e))))
    read = float(rng.uniform(0.5, 2.0)) * full / 4095.0 * 4.0 * nz
    sd_noise = np.maximum(signal, np.float32(0.0))
    sd_noise *= np.float32(dn_per_e * nz * nz)
    sd_noise += np.float32(read * read)
    np.sqrt(sd_noise, out=sd_noise)
    sd_noise *= rng.standard_normal(signal.shape, dtype=np.float32)
    signal += sd_noise
    # the camera's own blur (optics' MTF, demosaicing, resampling): noise is not white
    # (with the contrast the image had before it: the blur takes more from fine texture than
    # from coarse, so compact colonies would end up with less contrast than flat ones, and the
    # image's standard deviation would tell them apart)
    before = float(signal[::4, ::4].std())
    signal = _blur(signal, float(rng.uniform(*look.camera_blur_px)))
    sub = signal[::4, ::4]
    mean, after = float(sub.mean()), float(sub.std())
    if after > 0:
        signal -= np.float32(mean)
        signal *= np.float32(before / after)
        signal += np.float32(mean)
    # the camera's response and the export's auto-levels: a random tone curve on what the
    # camera read (noise and blur included, so the histogram's tails, which the blur shapes
    # differently in fine and coarse texture, are matched too)
    if difficulty.tone_match > 0:
        signal = _tone_match(signal, rng, difficulty.tone_match, colony_fraction)
    offset = float(rng.uniform(0.0, 0.04)) * full
    signal += np.float32(offset + 0.5)
    np.clip(signal, 0.0, full + 0.49, out=signal)
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    img = signal.astype(dtype)  # floor of x + 0.5: rounding
    return img, Exposure(level, contrast, defocus_px, read, dn_per_e)


def _tone_match(
    img: np.ndarray, rng: np.random.Generator, strength: float, colony_fraction: float = 0.5
) -> np.ndarray:
    """A random monotone tone curve (camera response plus export auto-levels) that maps the
    image's intensity histogram towards a random reference histogram drawn independently of
    the specimen; keeps every spatial structure, removes whole-image intensity statistics as
    a shortcut to the label. ``strength`` 1 matches fully, 0 leaves the image as it is."""
    sub = img[::4, ::4].ravel()
    qs = np.linspace(0.0, 1.0, 129)
    src = np.quantile(sub, qs)
    # reference: what real brightfield fields of colonies look like, with random
    # proportions: a narrow background peak, a wider, heavy-tailed and slightly darker
    # colony component (2-4x the background's spread), a dark tail of debris and dead
    # cells and a faint bright tail of halos
    n = 8192
    k = int(n * float(np.clip(colony_fraction + rng.normal(0.0, 0.1), 0.05, 0.95)))
    colony = rng.standard_t(float(rng.uniform(3.0, 8.0)), k)
    colony *= float(rng.uniform(3.0, 5.0)) / max(float(colony.std()), 1e-6)
    ref = np.concatenate([rng.normal(0.0, 1.0, n - k), colony + float(rng.uniform(-1.5, 0.2))])
    n_dark = int(rng.binomial(n, float(rng.uniform(0.002, 0.015))))
    ref[:n_dark] = -2.0 - rng.exponential(float(rng.uniform(4.0, 10.0)), n_dark)
    n_bright = int(rng.binomial(n, float(rng.uniform(0.0005, 0.005))))
    ref[n_dark : n_dark + n_bright] = rng.exponential(float(rng.uniform(2.0, 5.0)), n_bright)
    tgt = np.quantile(ref, qs)
    tgt = (tgt - ref.mean()) / max(float(ref.std()), 1e-6)
    src_scale = max(float(sub.std()), 1e-6)
    tgt = float(sub.mean()) + tgt * src_scale
    src = np.maximum.accumulate(src + np.arange(qs.size) * 1e-9 * src_scale)
    tgt = np.maximum.accumulate(tgt)
    # extend both ends linearly so values beyond the subsample are not clamped
    span = 10.0 * (src[-1] - src[0] + 1e-6)
    xs = np.concatenate([[src[0] - span], src, [src[-1] + span]])
    ys = np.concatenate([[tgt[0] - span], tgt, [tgt[-1] + span]])
    # apply through a fine look-up table (np.interp on every pixel costs ~10x more); the
    # blend with the identity is folded into the table
    lo, hi = float(img.min()), float(img.max())
    n_lut = 8192
    step = max(hi - lo, 1e-9) / (n_lut - 1)
    grid = lo + step * np.arange(n_lut)
    lut = ((1.0 - strength) * grid + strength * np.interp(grid, xs, ys)).astype(np.float32)
    idx = ((img - np.float32(lo)) * np.float32(1.0 / step) + np.float32(0.5)).astype(np.int32)
    return lut[np.clip(idx, 0, n_lut - 1, out=idx)]


@lru_cache(maxsize=1)
def _threadpools() -> ThreadpoolController:
    """This process's native thread pools (BLAS), looked up once (~2 ms)."""
    return ThreadpoolController()


def render_field(
    views: list[ColonyView],
    size: int,
    rng: np.random.Generator,
    difficulty: Difficulty,
    *,
    bit_depth: int = 16,
    pixel_size_um: float = 1.0,
    modality: str = "brightfield",
    look: Look | None = None,
) -> np.ndarray:
    """One field of view as an integer image (uint8, or 12-bit data in uint16)."""
    check_pixel_size(pixel_size_um)
    check_modality(modality)
    look = LOOK if look is None else look
    # the few small matrix products here gain nothing from BLAS threads, whose helper thread
    # then spins on the other core, taking it from the other render process
    with _threadpools().limit(limits=1, user_api="blas"):
        spec = render_specimen(
            views, size, rng, pixel_size_um=pixel_size_um, noise=difficulty.noise, look=look
        )
        colony_fraction = float((spec.cover[::4, ::4] > 0.5).mean())
        mod, defocus, gain = form_image(
            spec, rng, difficulty, modality=modality, pixel_size_um=pixel_size_um, look=look
        )
        img, _ = expose(
            mod,
            rng,
            difficulty,
            bit_depth=bit_depth,
            defocus_px=defocus,
            contrast=gain,
            look=look,
            colony_fraction=colony_fraction,
        )
        return img
