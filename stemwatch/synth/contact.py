"""A contact sheet of synthetic images: both conditions side by side at several hours, with
native-resolution crops, and optionally a real brightfield image at the same scale."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stemwatch.synth.plate import plan_plate
from stemwatch.synth.spec import PlateSpec


def _stretch(img: np.ndarray) -> np.ndarray:
    """A viewer's auto-contrast: 0.5-99.5 percentiles to 0-1."""
    a = img.astype(np.float32)
    lo, hi = np.percentile(a, [0.5, 99.5])
    return np.clip((a - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)


def make_contact_sheet(
    out_png: Path,
    *,
    hours: Sequence[float] = (0, 12, 24, 48),
    size: int = 768,
    crop: int = 192,
    seed: int = 0,
    difficulty: str = "default",
    real_image: Path | None = None,
    pixel_size_um: float = 1.0,
    modality: str = "brightfield",
    cell_line: str = "hipsc",
) -> Path:
    """Write a PNG: maintenance and induced fields (rows) at ``hours`` after induction
    (columns), then ``crop``-pixel crops at native resolution; ``real_image`` (any format
    :func:`stemwatch.core.imaging.read_image` reads) adds a real field and crop for comparison."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plan = plan_plate(
        PlateSpec(
            wells=["A01", "A02"],
            n_fields=1,
            times_h=hours,
            size=size,
            bit_depth=8,
            seed=seed,
            difficulty=difficulty,
            induced=["A02"],
            induction_h=0.0,
            pixel_size_um=pixel_size_um,
            modality=modality,
            cell_line=cell_line,
        )
    )
    fields = {w: [plan.render(w, 0, t) for t in range(len(hours))] for w in ("A01", "A02")}
    real = None
    if real_image is not None:
        from stemwatch.core.imaging import read_image

        real = read_image(real_image).pixels
    n_cols = len(hours) + (1 if real is not None else 0)
    fig, axes = plt.subplots(3, n_cols, figsize=(3.2 * n_cols, 10.2), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    names = ("2i+LIF", "EpiLC induction") if cell_line == "mesc" else ("maintenance", "induced")
    for r, (well, label) in enumerate(zip(("A01", "A02"), names, strict=True)):
        for c, h in enumerate(hours):
            axes[r, c].imshow(_stretch(fields[well][c]), cmap="gray", vmin=0, vmax=1)
            state = plan.mean_state(well, c)
            axes[r, c].set_title(f"{label}, {h:g} h (d={state:.2f})", fontsize=9)
    # native-resolution crops: maintenance and induced at the last two time points
    crop = min(crop, size)
    y0 = x0 = (size - crop) // 2
    crops = [
        (fields["A01"][0], f"{names[0]} {hours[0]:g} h, 1:1"),
        (fields["A01"][-1], f"{names[0]} {hours[-1]:g} h, 1:1"),
        (fields["A02"][-1], f"{names[1]} {hours[-1]:g} h, 1:1"),
    ]
    if len(hours) > 1:
        crops.insert(2, (fields["A02"][-2], f"{names[1]} {hours[-2]:g} h, 1:1"))
    for c, (img, title) in enumerate(crops[: len(hours)]):
        axes[2, c].imshow(_stretch(img[y0 : y0 + crop, x0 : x0 + crop]), cmap="gray")
        axes[2, c].set_title(title, fontsize=9)
    if real is not None:
        h, w = real.shape
        side = min(h, w, size)
        ry, rx = (h - side) // 2, (w - side) // 2
        axes[0, -1].imshow(_stretch(real[ry : ry + side, rx : rx + side]), cmap="gray")
        axes[0, -1].set_title(f"real hiPSC, {side}² crop", fontsize=9)
        cy, cx = (h - crop) // 2, (w - crop) // 2
        axes[2, -1].imshow(_stretch(real[cy : cy + crop, cx : cx + crop]), cmap="gray")
        axes[2, -1].set_title("real hiPSC, 1:1", fontsize=9)
    fig.suptitle(
        f"stemwatch synthetic {modality}, {cell_line} (seed {seed}, {difficulty}, {size}² at "
        f"{plan.pixel_size_um:g} µm/px)",
        fontsize=11,
    )
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png
