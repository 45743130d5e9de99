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
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from stemwatch.synth.biology import ColonyView
from stemwatch.synth.difficulty import Difficulty, SynthError

N_THETA = 1024
"""Angular resolution of the radial shape table of a colony."""
TILE = 256
"""Side (px) of the periodic cell-lattice tiles that colonies sample their cells from."""
TILE_BITS = 8
NOISE_TILE = 512
"""Side (px) of the periodic band-pass noise tiles (granularity, fragmented borders)."""
NOISE_BITS = 9


@dataclass(frozen=True)
class Exposure:
    """Per-image acquisition draws, recorded for reproducibility and debugging."""

    level: float
    contrast: float
    defocus_px: float
    read_noise_dn: float
    dn_per_electron: float


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


@lru_cache(maxsize=8)
def _noise_tile(sigma_lo: float, sigma_hi: float) -> np.ndarray:
    """Periodic band-pass Gaussian noise (unit sd, flat float32) keeping scales between
    ``sigma_lo`` and ``sigma_hi`` pixels."""
    n = NOISE_TILE
    rng = np.random.default_rng(int(sigma_lo * 1000 + sigma_hi * 10))
    spec = np.fft.rfft2(rng.standard_normal((n, n)))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f2 = fy * fy + fx * fx
    k = 2 * math.pi**2
    band = np.exp(-k * sigma_lo**2 * f2) - np.exp(-k * sigma_hi**2 * f2)
    x = np.fft.irfft2(spec * band, s=(n, n))
    x = (x / x.std()).astype(np.float32).ravel()
    x.flags.writeable = False
    return x


def _noise_at(
    ys: np.ndarray, xs: np.ndarray, offset: tuple[int, int], band: tuple[float, float]
) -> np.ndarray:
    """Band-pass noise (``band`` = sigma_lo, sigma_hi) at pixels (ys, xs), tile shifted by
    ``offset``."""
    oy, ox = offset
    sigma_lo, sigma_hi = band
    tile = _noise_tile(sigma_lo, sigma_hi)
    m = NOISE_TILE - 1
    return tile[(((ys + oy) & m) << NOISE_BITS) | ((xs + ox) & m)]


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
    amp = np.asarray(view.shape_amp) * (0.22 + 0.2 * d)
    ph = np.asarray(view.shape_phase)
    nk = amp.size
    coef_c = np.zeros(cos_k.shape[1])
    coef_s = np.zeros(cos_k.shape[1])
    coef_c[:nk] = amp * np.cos(ph)
    coef_s[:nk] = -amp * np.sin(ph)
    # fine roughness: small for compact colonies, ragged for differentiating ones
    kk = np.arange(2, 2 + cos_k.shape[1])
    rough = rng.normal(0, 1, (2, kk.size)) / kk**0.9 * (0.012 + 0.05 * d) * (kk >= 8)
    coef_c += rough[0]
    coef_s += rough[1]
    rel = 1.0 + cos_k @ coef_c + sin_k @ coef_s
    r = view.radius
    table = r * np.maximum(rel, 0.35)
    # protrusions: short spikes on every colony, long lamellipodia as cells spread
    n_spikes = int(rng.poisson(2 * math.pi * r / (35.0 * px_per_um) * (0.4 + 1.6 * d)))
    if n_spikes:
        centres = rng.uniform(0, N_THETA, n_spikes)
        widths = rng.uniform(1.0, 4.0, n_spikes) * px_per_um / max(r, 1.0) * N_THETA / (2 * math.pi)
        lengths = (
            rng.uniform(2.0, 7.0, n_spikes) + rng.uniform(0, 40.0, n_spikes) * d**1.5
        ) * px_per_um
        half = int(min(N_THETA // 2 - 1, math.ceil(3 * widths.max())))
        offs = np.arange(-half, half + 1)
        pos = np.floor(centres)[:, None] + offs[None, :]
        bumps = lengths[:, None] * np.exp(-(((pos - centres[:, None]) / widths[:, None]) ** 2))
        np.add.at(table, (pos.astype(np.int64) % N_THETA).ravel(), bumps.ravel())
    return table.astype(np.float32)


def _lerp(undiff: float, diff: float, d: Any) -> Any:
    return undiff + (diff - undiff) * d


def _draw_cells(
    out: np.ndarray,
    dots: np.ndarray,
    view: ColonyView,
    *,
    ys: np.ndarray,
    xs: np.ndarray,
    depth: np.ndarray,
    rmean: float,
    px_per_um: float,
    rng: np.random.Generator,
) -> None:
    """The cells of a colony at absolute pixels (``ys``, ``xs``), ``depth`` px inside its
    border. Compact colonies: small tightly packed cells, fragmented bright borders, dark
    nuclei, much granularity. Differentiated: large flat cells, thin continuous outlines, pale
    nuclei with dark nucleoli, little granularity."""
    d = float(np.clip(view.d, 0.0, 1.0))
    compaction = 1.0 - 0.12 * min(1.0, view.age_h / 48.0) * (1.0 - d)
    spacing = _lerp(7.5, 17.0, d) * compaction * px_per_um
    # few distinct lattices (every other cell count) so the per-process tile cache stays small
    n = max(4, 2 * round(TILE / spacing / 2))
    spacing = TILE / n
    f1_t, edge_t, crand_t = _cell_tile(n)
    ang = float(rng.uniform(0, math.pi))
    stretch = 1.0 + 0.6 * d * float(rng.uniform(0.5, 1.0))
    c, s = math.cos(ang), math.sin(ang)
    oy, ox = (int(v) for v in rng.integers(0, TILE, 2))
    xf = xs.astype(np.float32)
    yf = ys.astype(np.float32)
    iu = ((xf * c + yf * s) / stretch).astype(np.int64) + ox
    iv = (yf * c - xf * s).astype(np.int64) + oy
    flat = ((iv & (TILE - 1)) << TILE_BITS) | (iu & (TILE - 1))
    f1 = f1_t[flat]
    edge = edge_t[flat]
    crand = crand_t[flat]
    ny, nx = (int(v) for v in rng.integers(0, NOISE_TILE, 2))
    fine = _noise_at(ys, xs, (ny, nx), (0.7, 2.5))
    med = _noise_at(ys, xs, (nx, ny), (2.0, 7.0))
    dome = np.sqrt(np.clip(depth / (0.35 * rmean), 0.0, 1.0))
    # the periphery differentiates first: local state is higher near the border
    dl = np.clip(d * (1.45 - 0.7 * dome), 0.0, 1.0)
    contrast = _lerp(1.0, 0.8, dl) * (0.65 + 0.35 * dome)
    line_w = _lerp(1.0, 0.95, dl) * px_per_um
    border = np.exp(-((edge / line_w) ** 2))
    frag = np.clip(_lerp(0.75, 0.85, dl) + _lerp(0.45, 0.3, dl) * med, 0.0, 1.0)
    nucleus = np.exp(-((f1 / (_lerp(0.24, 0.2, d) * spacing)) ** 2))
    nucleolus = np.exp(-((f1 / (_lerp(0.9, 1.4, d) * px_per_um)) ** 2))
    sig = contrast * (
        _lerp(0.09, 0.075, dl) * border * frag
        + _lerp(0.025, 0.012, dl) * fine
        - _lerp(0.05, 0.04, dl) * nucleus * (0.5 + crand)
        - _lerp(0.03, 0.08, dl) * nucleolus * (crand > 0.25)
        + _lerp(-0.015, 0.004, dl) * dome
        + _lerp(0.012, 0.006, dl) * med
    )
    # flattened cells: a faint dark line beside each bright outline
    if d > 0.05:
        sig -= 0.03 * dl * np.exp(-(((edge - 1.4 * px_per_um) / (0.8 * px_per_um)) ** 2))
    # dark rim just inside the border
    sig -= _lerp(0.05, 0.012, dl) * np.exp(-depth / (1.5 * px_per_um))
    out[ys, xs] = sig
    # dead / mitotic cells: dark dots, many in compact colonies, most near the edge
    p_dead = _lerp(0.015, 0.004, d)
    sel = (crand < p_dead) & (f1 < 1.8 * px_per_um)
    if sel.any():
        dots[ys[sel], xs[sel]] -= 0.5 + 0.5 * (depth[sel] < 0.25 * rmean)


def _draw_colony(
    out: np.ndarray,
    halo: np.ndarray,
    fg: np.ndarray,
    dots: np.ndarray,
    view: ColonyView,
    *,
    px_per_um: float,
) -> list[tuple[float, float, float]]:
    """Paint one colony into ``out`` where no colony drawn before it lies (callers draw the
    top colony first); returns where its spindle cells are."""
    rng = np.random.default_rng(view.seed)
    h, w = out.shape
    d = float(np.clip(view.d, 0.0, 1.0))
    table = _radial_table(view, rng, px_per_um)
    rmax = float(table.max())
    halo_w = 2.5 * px_per_um
    sq = math.sqrt(view.aspect)
    reach = rmax * sq + 5 * halo_w
    y0 = max(0, int(view.cy - reach))
    y1 = min(h, int(view.cy + reach) + 1)
    x0 = max(0, int(view.cx - reach))
    x1 = min(w, int(view.cx + reach) + 1)
    if y0 >= y1 or x0 >= x1:
        return []
    ca, sa = math.cos(view.angle), math.sin(view.angle)
    rmean = max(float(table.mean()), 1.0)
    # colonies are drawn top first: pixels already covered by a colony stay as they are (its
    # halo there would be hidden too), so the geometry is computed for free pixels only
    free = ~fg[y0:y1, x0:x1]
    if free.all():
        yy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(view.cy)
        xx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(view.cx)
        yy, xx = np.broadcast_arrays(yy, xx)
        ly, lx = np.nonzero(free)
        yy = yy.ravel()
        xx = xx.ravel()
    else:
        ly, lx = np.nonzero(free)
        yy = ly.astype(np.float32) + np.float32(y0 - view.cy)
        xx = lx.astype(np.float32) + np.float32(x0 - view.cx)
    if ly.size:
        u = (xx * ca + yy * sa) / sq
        v = (yy * ca - xx * sa) * sq
        rho = np.hypot(u, v)
        theta = np.arctan2(v, u)
        idx = ((theta + math.pi) * (N_THETA / (2 * math.pi))).astype(np.int32) % N_THETA
        s = table[idx] - rho  # ~ signed distance to the border, positive inside
        inside = s > 0
        if inside.any():
            ys = ly[inside] + y0
            xs = lx[inside] + x0
            _draw_cells(
                out,
                dots,
                view,
                ys=ys,
                xs=xs,
                depth=s[inside],
                rmean=rmean,
                px_per_um=px_per_um,
                rng=rng,
            )
            fg[ys, xs] = True
        # bright phase halo just outside the border, strong for compact dome-shaped colonies
        band = (~inside) & (s > -5 * halo_w)
        if band.any():
            hy = ly[band]
            hx = lx[band]
            hval = _lerp(0.11, 0.02, d) * np.exp(s[band] / halo_w)
            hval *= 0.75 + 0.25 * _noise_at(hy, hx, (int(view.seed % 97), 5), (2.0, 7.0))
            hy += y0
            hx += x0
            halo[hy, hx] = np.maximum(halo[hy, hx], hval)
    # spindle-shaped cells migrating out of differentiating colonies
    pts: list[tuple[float, float, float]] = []
    if d > 0.15:
        n_sp = int(rng.poisson(d**2 * 2 * math.pi * rmean / (90.0 * px_per_um)))
        for _ in range(n_sp):
            th = float(rng.uniform(-math.pi, math.pi))
            rr = float(table[int((th + math.pi) * N_THETA / (2 * math.pi)) % N_THETA])
            dist = rr + float(rng.uniform(-0.1, 1.0)) * 50.0 * px_per_um * d
            uu0, vv0 = dist * math.cos(th) * sq, dist * math.sin(th) / sq
            px = view.cx + uu0 * ca - vv0 * sa
            py = view.cy + uu0 * sa + vv0 * ca
            orient = math.atan2(py - view.cy, px - view.cx) + float(rng.normal(0, 0.5))
            pts.append((px, py, orient))
    return pts


def _draw_spindle(
    out: np.ndarray, at: tuple[float, float, float], rng: np.random.Generator, ppu: float
) -> None:
    """An elongated, flat, migrating cell at ``at`` = (x, y, orientation): slightly dark
    body and nucleus, faint bright rim, tapering ends."""
    px, py, orient = at
    h, w = out.shape
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
    body = np.exp(-(q**2) * 2.5)
    rim = np.exp(-(((q - 0.95) / 0.2) ** 2)) * (np.abs(a) < 1.0)
    nucleus = np.exp(-((a * 3.0) ** 2 + (b * 1.3) ** 2))
    out[y0:y1, x0:x1] += -0.035 * body - 0.035 * nucleus + 0.018 * rim


def _draw_debris(out: np.ndarray, rng: np.random.Generator, n: int, ppu: float) -> None:
    """Larger particles and floating dead cells: dark discs with a bright ring."""
    h, w = out.shape
    for _ in range(n):
        r = float(rng.uniform(1.5, 5.0)) * ppu
        cy, cx = float(rng.uniform(0, h)), float(rng.uniform(0, w))
        reach = r * 3 + 2
        y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 1)
        x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        yy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
        xx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
        rr = np.hypot(yy, xx) / r
        dark = float(rng.uniform(0.15, 0.5))
        out[y0:y1, x0:x1] += -dark * np.exp(-(rr**4)) + 0.08 * np.exp(-(((rr - 1.4) / 0.35) ** 2))


def render_optical(
    views: list[ColonyView],
    size: int,
    rng: np.random.Generator,
    *,
    pixel_size_um: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The specimen as modulation around 0 (float32, ``size`` x ``size``) and a dot-impulse
    plane (dark dead cells / debris, shaped by the defocus blur in :func:`expose`)."""
    ppu = 1.0 / pixel_size_um
    out = np.zeros((size, size), np.float32)
    halo = np.zeros((size, size), np.float32)
    dots = np.zeros((size, size), np.float32)
    fg = np.zeros((size, size), bool)
    spindles: list[tuple[float, float, float]] = []
    for view in reversed(views):
        spindles += _draw_colony(out, halo, fg, dots, view, px_per_um=ppu)
    halo[fg] = 0.0
    out += halo
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
    vig = float(rng.uniform(0.005, 0.02))
    cx, cy = rng.normal(0, 0.08, 2)
    field *= 1.0 - vig * ((xx - cx) ** 2 + (yy - cy) ** 2) * 2
    imp = np.zeros((n, n), np.float32)
    k = int(rng.poisson(n_blobs))
    if k:
        imp[rng.integers(0, n, k), rng.integers(0, n, k)] = rng.uniform(-1.0, -0.3, k)
        field += ndi.gaussian_filter(imp, float(rng.uniform(1.0, 2.5))) * 0.08
    return field.astype(np.float32)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (reflecting edges) by shifted multiply-adds in float32: for
    the small defocus kernels here ~4x faster than ndimage.gaussian_filter."""
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


def expose(
    optical: np.ndarray,
    dots: np.ndarray,
    rng: np.random.Generator,
    difficulty: Difficulty,
    *,
    bit_depth: int = 16,
) -> tuple[np.ndarray, Exposure]:
    """Image the specimen: debris, defocus, contrast, illumination, tone curve, noise,
    gain/offset, quantisation. ``optical`` and ``dots`` are used as scratch (changed)."""
    if bit_depth not in (8, 16):
        raise SynthError(f"bit_depth {bit_depth} is not supported; use 8 or 16")
    size = optical.shape[0]
    nz = difficulty.noise
    full = 255.0 if bit_depth == 8 else 4095.0
    # exposure / condenser setting: the specimen's contrast is scaled to a random target
    # drawn independently of what is in the field, so whole-image contrast carries no label
    target = 0.035 * math.exp(rng.normal(0.0, difficulty.contrast_jitter))
    spec = optical  # modified in place: the caller's planes are scratch
    ppu = 1.0  # debris sizes are in pixels
    # debris: faint small specks everywhere, a few larger particles and floating dead cells
    n_specks = int(rng.poisson(size * size / 2500.0 * nz * rng.uniform(0.2, 3.0)))
    if n_specks:
        ys = rng.integers(0, size, n_specks)
        xs = rng.integers(0, size, n_specks)
        amp = -rng.exponential(0.35, n_specks).astype(np.float32)
        np.add.at(dots, (ys, xs), amp)
    dots *= np.float32(1.6)
    spec += dots
    _draw_debris(spec, rng, int(rng.poisson(size * size / 40000.0 * nz)), ppu)
    if rng.random() < 0.05 * nz:
        _draw_bubble(spec, rng)
    defocus = float(0.6 + abs(rng.normal(0.0, 0.25 * nz)))
    spec = _blur(spec, defocus)
    sd = float(spec[::4, ::4].std())
    contrast = float(np.clip(target / max(sd, 1e-4), 0.3, 6.0))
    spec *= np.float32(contrast)
    illum_small = _smooth_field(size, rng, 32, 0.015, 2 * nz)
    level = float(rng.uniform(0.35, 0.6)) * full
    # auto-exposure: the image mean (not the background) lands at ``level``
    spec += np.float32(1.0)
    shaded = _illuminate(spec, illum_small)
    if difficulty.tone_match > 0:
        shaded = _tone_match(shaded, rng, difficulty.tone_match)
    level /= max(float(shaded[::4, ::4].mean()), 0.1)
    signal = shaded
    signal *= np.float32(level)
    # Poisson-Gaussian noise (Gaussian approximation of the shot noise: counts are high)
    dn_per_e = full / float(math.exp(rng.uniform(math.log(15000.0), math.log(40000.0))))
    read = float(rng.uniform(0.5, 2.0)) * full / 4095.0 * 4.0 * nz
    sd_noise = np.maximum(signal, np.float32(0.0))
    sd_noise *= np.float32(dn_per_e * nz * nz)
    sd_noise += np.float32(read * read)
    np.sqrt(sd_noise, out=sd_noise)
    sd_noise *= rng.standard_normal(signal.shape, dtype=np.float32)
    signal += sd_noise
    offset = float(rng.uniform(0.0, 0.04)) * full
    signal += np.float32(offset + 0.5)
    np.clip(signal, 0.0, full + 0.49, out=signal)
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    img = signal.astype(dtype)  # floor of x + 0.5: rounding
    return img, Exposure(level, contrast, defocus, read, dn_per_e)


def _tone_match(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A random monotone tone curve (camera response plus export auto-levels) that maps the
    image's intensity histogram towards a random reference histogram drawn independently of
    the specimen; keeps every spatial structure, removes whole-image intensity statistics as
    a shortcut to the label. ``strength`` 1 matches fully, 0 leaves the image as it is."""
    sub = img[::4, ::4].ravel()
    qs = np.linspace(0.0, 1.0, 129)
    src = np.quantile(sub, qs)
    # reference: a narrow background peak mixed with a wide colony component (as in real
    # brightfield, background texture ~5x weaker than colony texture), random proportions
    n = 8192
    k = int(n * float(rng.uniform(0.2, 0.8)))
    ref = np.concatenate(
        [
            rng.normal(0.0, float(rng.uniform(0.15, 0.4)), n - k),
            rng.normal(float(rng.normal(-0.1, 0.1)), float(rng.uniform(0.9, 1.6)), k),
        ]
    )
    ref += float(rng.normal(0.0, 0.08)) * ref**2  # random skew
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
