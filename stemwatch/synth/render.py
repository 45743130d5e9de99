"""Rendering colonies into a brightfield / phase-contrast-like image.

Two stages:

1. :func:`render_optical` draws the specimen as a float32 modulation around 0 (background):
   every colony is a jittered lattice of cells (Worley / Voronoi cells computed in the colony's
   bounding box only) inside a radial shape; cell borders are thin bright lines, nuclei darker
   blobs with dark nucleoli, a thin dark line runs just inside the colony border and a bright
   phase halo just outside it. The differentiation state ``d`` of each colony makes cells
   larger and flatter (less contrast), the border irregular with protrusions, the halo weaker,
   and spindle-shaped cells migrate out.
2. :func:`expose` turns the modulation into counts: uneven illumination and vignetting, out of
   focus smudges, debris, bubbles, defocus, Poisson-Gaussian noise, random gain and offset,
   8-bit or 12-bit-in-16-bit output.

All work is vectorised numpy / scipy.ndimage over bounding boxes or the whole plane; the only
Python loops are over objects (colonies, spindle cells, bubbles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from stemwatch.synth.biology import ColonyView
from stemwatch.synth.difficulty import Difficulty, SynthError

N_THETA = 2048
"""Angular resolution of the radial shape table of a colony."""


@dataclass(frozen=True)
class Exposure:
    """Per-image acquisition draws, recorded for reproducibility and debugging."""

    level: float
    contrast: float
    defocus_px: float
    read_noise_dn: float
    dn_per_electron: float


def _radial_table(view: ColonyView, rng: np.random.Generator, px_per_um: float) -> np.ndarray:
    """Colony radius (px) as a function of angle, sampled at :data:`N_THETA` angles."""
    theta = np.linspace(0.0, 2 * math.pi, N_THETA, endpoint=False)
    d = view.d
    r = view.radius
    amp = np.asarray(view.shape_amp) * (0.05 + 0.22 * d)
    k = np.arange(2, 2 + amp.size)[:, None]
    rel = 1.0 + (
        amp[:, None] * np.cos(k * theta[None, :] + np.asarray(view.shape_phase)[:, None])
    ).sum(0)
    # fine roughness: small for compact colonies, ragged for differentiating ones
    kk = np.arange(12, 48)[:, None]
    rough = rng.normal(0, 1, kk.size)[:, None] / kk**0.8
    ph = rng.uniform(0, 2 * math.pi, kk.size)[:, None]
    rel += (0.004 + 0.05 * d) * (rough * np.cos(kk * theta[None, :] + ph)).sum(0)
    table = r * np.maximum(rel, 0.3)
    # protrusions (lamellipodia / leading cells): many short ones on every colony, long with d
    n_spikes = int(rng.poisson(2 * math.pi * r / (40.0 * px_per_um) * (0.3 + 1.5 * d)))
    if n_spikes:
        centres = rng.uniform(0, 2 * math.pi, n_spikes)
        widths = rng.uniform(2.0, 7.0, n_spikes) * px_per_um / max(r, 1.0)
        lengths = (
            rng.uniform(2.0, 6.0, n_spikes) * px_per_um
            + rng.uniform(0, 45.0, n_spikes) * px_per_um * d**1.5
        )
        delta = np.angle(np.exp(1j * (theta[None, :] - centres[:, None])))
        table += (lengths[:, None] * np.exp(-((delta / widths[:, None]) ** 2))).sum(0)
    return table.astype(np.float32)


def _worley(
    u: np.ndarray, v: np.ndarray, spacing: float, rng: np.random.Generator, jitter: float = 0.42
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distances to the nearest and second-nearest seed of a jittered square lattice.

    Returns ``(f1, edge, cell_rand)``: distance to the nearest seed (px), approximate distance
    to the nearest cell border (px) and a per-cell uniform random number.
    """
    gu = u / spacing
    gv = v / spacing
    iu = np.floor(gu).astype(np.int32)
    iv = np.floor(gv).astype(np.int32)
    i0 = int(iu.min()) - 1
    j0 = int(iv.min()) - 1
    ni = int(iu.max()) - i0 + 2
    nj = int(iv.max()) - j0 + 2
    jit = rng.uniform(0.5 - jitter, 0.5 + jitter, (2, ni, nj)).astype(np.float32)
    crand = rng.random((ni, nj), dtype=np.float32)
    f1 = np.full(u.shape, np.inf, np.float32)
    f2 = np.full(u.shape, np.inf, np.float32)
    best = np.zeros(u.shape, np.int64)
    fu = (gu - iu).astype(np.float32)
    fv = (gv - iv).astype(np.float32)
    li = iu - i0
    lj = iv - j0
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            ci = li + di
            cj = lj + dj
            flat = ci * nj + cj
            du = fu - (di + jit[0].ravel()[flat])
            dv = fv - (dj + jit[1].ravel()[flat])
            d2 = du * du + dv * dv
            closer = d2 < f1
            f2 = np.where(closer, f1, np.minimum(f2, d2))
            best = np.where(closer, flat, best)
            f1 = np.where(closer, d2, f1)
    r1 = np.sqrt(f1)
    edge = (np.sqrt(f2) - r1) * (0.5 * spacing)
    return r1 * spacing, edge, crand.ravel()[best]


def _draw_cells(
    out: np.ndarray,
    fg: np.ndarray,
    dots: np.ndarray,
    view: ColonyView,
    *,
    s: np.ndarray,
    inside: np.ndarray,
    xx: np.ndarray,
    yy: np.ndarray,
    corner: tuple[int, int],
    rmean: float,
    px_per_um: float,
    rng: np.random.Generator,
) -> None:
    """The cells of a colony inside its border (``inside`` of the bounding box at ``corner``)."""
    y0, x0 = corner
    h, w = s.shape
    y1, x1 = y0 + h, x0 + w
    d = float(np.clip(view.d, 0.0, 1.0))
    # cells: larger and flatter with differentiation; packing tightens as colonies age
    compaction = 1.0 - 0.12 * min(1.0, view.age_h / 48.0) * (1.0 - d)
    spacing = (9.0 + 9.0 * d) * compaction * px_per_um
    uu = np.broadcast_to(xx, s.shape).astype(np.float32)
    vv = np.broadcast_to(yy, s.shape).astype(np.float32)
    f1, edge, crand = _worley(uu[inside], vv[inside], spacing, rng)
    depth = s[inside]
    dome = np.sqrt(np.clip(depth / (0.35 * rmean), 0.0, 1.0))
    contrast = (1.0 - 0.6 * d) * (0.55 + 0.45 * dome)
    line_w = (0.9 - 0.25 * d) * px_per_um
    border = np.exp(-((edge / line_w) ** 2))
    nuc_r = (0.30 + 0.05 * d) * spacing
    nucleus = np.exp(-((f1 / nuc_r) ** 2))
    nucleolus = np.exp(-((f1 / max(0.9, 0.09 * spacing)) ** 2))
    sig = contrast * (0.13 * border - 0.07 * nucleus * (0.6 + 0.8 * crand))
    sig -= (0.05 + 0.06 * d) * nucleolus * (crand > 0.3)
    # flattened cells show their outlines as thin dark lines beside the bright ones
    sig -= 0.05 * d * np.exp(-(((edge - 1.3 * px_per_um) / (0.7 * px_per_um)) ** 2))
    # dense, thick colonies are a little darker in the middle; dark rim just inside the border
    sig -= 0.025 * (1.0 - d) * dome
    sig -= (0.09 - 0.05 * d) * np.exp(-depth / (1.6 * px_per_um))
    sub = out[y0:y1, x0:x1]
    sub[inside] = sig
    fg[y0:y1, x0:x1] |= inside
    # dead / mitotic cells: dark dots, many in compact colonies
    dead = crand < (0.035 * (1.0 - 0.7 * d))
    if dead.any():
        near = f1 < 1.5 * px_per_um
        sel = dead & near
        ys, xs = np.nonzero(inside)
        dots[ys[sel] + y0, xs[sel] + x0] -= 0.6


def _draw_colony(
    out: np.ndarray,
    halo: np.ndarray,
    fg: np.ndarray,
    dots: np.ndarray,
    view: ColonyView,
    *,
    px_per_um: float,
) -> list[tuple[float, float, float]]:
    """Paint one colony into ``out`` (painter's order); returns its border points for spindles."""
    rng = np.random.default_rng(view.seed)
    h, w = out.shape
    d = float(np.clip(view.d, 0.0, 1.0))
    table = _radial_table(view, rng, px_per_um)
    rmax = float(table.max())
    halo_w = 3.5 * px_per_um
    reach = rmax * math.sqrt(view.aspect) + 6 * halo_w
    y0 = max(0, int(view.cy - reach))
    y1 = min(h, int(view.cy + reach) + 1)
    x0 = max(0, int(view.cx - reach))
    x1 = min(w, int(view.cx + reach) + 1)
    if y0 >= y1 or x0 >= x1:
        return []
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(view.cy)
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(view.cx)
    ca, sa = math.cos(view.angle), math.sin(view.angle)
    sq = math.sqrt(view.aspect)
    u = (xx * ca + yy * sa) / sq
    v = (-xx * sa + yy * ca) * sq
    rho = np.hypot(u, v)
    theta = np.arctan2(v, u)
    idx = ((theta + math.pi) * (N_THETA / (2 * math.pi))).astype(np.int32) % N_THETA
    # the table is indexed from -pi; rotate it accordingly
    table_rot = np.roll(table, -N_THETA // 2)
    s = table_rot[idx] - rho  # ~ signed distance to the border, positive inside
    inside = s > 0
    if not inside.any() and (s > -6 * halo_w).sum() == 0:
        return []

    rmean = max(float(table.mean()), 1.0)
    if inside.any():
        _draw_cells(
            out,
            fg,
            dots,
            view,
            s=s,
            inside=inside,
            xx=xx,
            yy=yy,
            corner=(y0, x0),
            rmean=rmean,
            px_per_um=px_per_um,
            rng=rng,
        )
    # halo outside the border, strong for compact dome-shaped colonies
    outside = ~inside
    hstrength = 0.26 * (1.0 - 0.8 * d)
    hv = hstrength * np.exp(s[outside] / halo_w)
    hsub = halo[y0:y1, x0:x1]
    hsub[outside] = np.maximum(hsub[outside], hv)
    # border points where spindle cells leave the colony
    pts: list[tuple[float, float, float]] = []
    if d > 0.12:
        n_sp = int(rng.poisson(d**1.5 * 2 * math.pi * rmean / (30.0 * px_per_um)))
        for _ in range(n_sp):
            th = float(rng.uniform(-math.pi, math.pi))
            rr = float(table_rot[int((th + math.pi) * N_THETA / (2 * math.pi)) % N_THETA])
            dist = rr + float(rng.uniform(-0.2, 1.0)) * 45.0 * px_per_um * d
            uu0, vv0 = dist * math.cos(th) * sq, dist * math.sin(th) / sq
            px = view.cx + uu0 * ca - vv0 * sa
            py = view.cy + uu0 * sa + vv0 * ca
            orient = math.atan2(py - view.cy, px - view.cx) + float(rng.normal(0, 0.45))
            pts.append((px, py, orient))
    return pts


def _draw_spindle(
    out: np.ndarray, at: tuple[float, float, float], rng: np.random.Generator, ppu: float
) -> None:
    """An elongated, flat, migrating cell at ``at`` = (x, y, orientation): dark body, bright
    rim, tapering ends."""
    px, py, orient = at
    h, w = out.shape
    length = float(rng.uniform(22.0, 45.0)) * ppu
    width = float(rng.uniform(3.0, 6.0)) * ppu
    reach = length + 4
    y0, y1 = max(0, int(py - reach)), min(h, int(py + reach) + 1)
    x0, x1 = max(0, int(px - reach)), min(w, int(px + reach) + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(py)
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(px)
    c, s = math.cos(orient), math.sin(orient)
    a = (xx * c + yy * s) / length
    b = (-xx * s + yy * c) / width
    # spindle: width tapers towards both ends
    taper = np.clip(1.0 - a * a, 0.02, 1.0)
    q = np.sqrt(a * a + (b * b) / taper)
    body = np.exp(-(q**2) * 2.5)
    rim = np.exp(-(((q - 0.95) / 0.18) ** 2)) * (np.abs(a) < 1.0)
    nucleus = np.exp(-((a * length / (0.35 * length)) ** 2 + (b * 1.2) ** 2) * 1.5)
    out[y0:y1, x0:x1] += -0.05 * body - 0.05 * nucleus + 0.09 * rim


def render_optical(
    views: list[ColonyView],
    size: int,
    rng: np.random.Generator,
    *,
    pixel_size_um: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The specimen as modulation around 0 (float32, ``size`` x ``size``) and a dot-impulse
    plane (dark dead cells / debris, sharpened by the defocus blur in :func:`expose`)."""
    ppu = 1.0 / pixel_size_um
    out = np.zeros((size, size), np.float32)
    halo = np.zeros((size, size), np.float32)
    dots = np.zeros((size, size), np.float32)
    fg = np.zeros((size, size), bool)
    spindles: list[tuple[float, float, float]] = []
    for view in views:
        spindles += _draw_colony(out, halo, fg, dots, view, px_per_um=ppu)
    out += np.where(fg, 0.0, halo)
    for at in spindles:
        _draw_spindle(out, at, rng, ppu)
    return out, dots


def _smooth_field(
    size: int, rng: np.random.Generator, scale: int, amplitude: float, n_blobs: float
) -> np.ndarray:
    """Low-resolution smooth random field: illumination gradient plus out-of-focus smudges."""
    n = max(4, size // scale)
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / (n - 1) - 0.5
    gx, gy = rng.normal(0, amplitude, 2)
    field = 1.0 + gx * xx + gy * yy
    # vignetting
    vig = float(rng.uniform(0.03, 0.15))
    cx, cy = rng.normal(0, 0.08, 2)
    field *= 1.0 - vig * ((xx - cx) ** 2 + (yy - cy) ** 2) * 2
    imp = np.zeros((n, n), np.float32)
    k = int(rng.poisson(n_blobs))
    if k:
        imp[rng.integers(0, n, k), rng.integers(0, n, k)] = rng.uniform(-1.0, -0.3, k)
        field += ndi.gaussian_filter(imp, float(rng.uniform(1.0, 2.5))) * 0.25
    return field.astype(np.float32)


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


def expose(
    optical: np.ndarray,
    dots: np.ndarray,
    rng: np.random.Generator,
    difficulty: Difficulty,
    *,
    bit_depth: int = 16,
) -> tuple[np.ndarray, Exposure]:
    """Image the specimen: illumination, debris, defocus, noise, gain/offset, quantisation."""
    if bit_depth not in (8, 16):
        raise SynthError(f"bit_depth {bit_depth} is not supported; use 8 or 16")
    size = optical.shape[0]
    nz = difficulty.noise
    full = 255.0 if bit_depth == 8 else 4095.0
    contrast = float(math.exp(rng.normal(0.0, difficulty.contrast_jitter)))
    spec = optical * contrast
    # debris: small dark specks everywhere, a few larger particles
    n_specks = int(rng.poisson(size * size / 900.0 * nz * rng.uniform(0.3, 1.5)))
    if n_specks:
        ys = rng.integers(0, size, n_specks)
        xs = rng.integers(0, size, n_specks)
        np.add.at(dots, (ys, xs), rng.uniform(-1.2, -0.2, n_specks).astype(np.float32))
    spec += dots * 2.5
    if rng.random() < 0.06 * nz:
        _draw_bubble(spec, rng)
    spec += rng.standard_normal(spec.shape, dtype=np.float32) * np.float32(0.012)
    defocus = float(0.8 + abs(rng.normal(0.0, 0.25 * nz)))
    spec = ndi.gaussian_filter(spec, defocus, truncate=3.0)
    illum_small = _smooth_field(size, rng, 32, 0.12, 4 * nz)
    illum = ndi.zoom(
        illum_small, size / illum_small.shape[0], order=1, grid_mode=True, mode="nearest"
    )[:size, :size]
    level = float(rng.uniform(0.35, 0.6)) * full
    signal = level * illum * (1.0 + spec)
    # Poisson-Gaussian noise (Gaussian approximation of the shot noise: counts are high)
    dn_per_e = full / float(rng.uniform(6000.0, 14000.0))
    read = float(rng.uniform(0.5, 2.0)) * full / 4095.0 * 4.0 * nz
    var = np.maximum(signal, 0.0) * dn_per_e * nz * nz + read * read
    noisy = signal + np.sqrt(var) * rng.standard_normal(signal.shape, dtype=np.float32)
    offset = float(rng.uniform(0.0, 0.04)) * full
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    img = np.clip(np.rint(noisy + offset), 0, full).astype(dtype)
    return img, Exposure(level, contrast, defocus, read, dn_per_e)


def render_field(
    views: list[ColonyView],
    size: int,
    rng: np.random.Generator,
    difficulty: Difficulty,
    *,
    bit_depth: int = 16,
    pixel_size_um: float = 1.0,
) -> np.ndarray:
    """One field of view as an integer image (uint8, or 12-bit data in uint16)."""
    optical, dots = render_optical(views, size, rng, pixel_size_um=pixel_size_um)
    img, _ = expose(optical, dots, rng, difficulty, bit_depth=bit_depth)
    return img
