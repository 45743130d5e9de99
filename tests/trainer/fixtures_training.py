"""Tiny labelled image sets for the training tests (real TIFF files, built in tmp_path).

Two textures a small CNN separates in one or two epochs: "undifferentiated" is fine-grained
noise (compact colonies), "differentiated" is smooth large-scale blobs (spread cells). Each
well belongs to one class; fields and time points give several images per well.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import tifffile
from scipy.ndimage import gaussian_filter

CLASSES = ("undifferentiated", "differentiated")


def texture(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A 16-bit image whose texture scale depends on the class."""
    noise = rng.normal(size=(size, size))
    sigma = 1.0 if label == 0 else 6.0
    img = gaussian_filter(noise, sigma)
    img = (img - img.mean()) / (img.std() + 1e-9)
    img = 20000 + 6000 * img + rng.normal(0, 300, size=(size, size))
    return np.clip(img, 0, 65535).astype(np.uint16)


def make_dataset(
    root: Path,
    *,
    n_experiments: int = 1,
    wells_per_class: int = 4,
    fields: int = 2,
    hours: tuple[float, ...] = (0.0, 24.0),
    size: int = 128,
    seed: int = 0,
) -> Path:
    """Write ``root/<label>/<file>.tif`` and ``root/manifest.csv``; returns the manifest."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_experiments):
        for label, name in enumerate(CLASSES):
            for w in range(wells_per_class):
                well = f"{'AB'[label]}{w + 1:02d}"
                for f in range(fields):
                    for h in hours:
                        rel = Path(name) / f"exp{e}_P1_{well}_f{f}_t{int(h):03d}.tif"
                        (root / rel).parent.mkdir(parents=True, exist_ok=True)
                        tifffile.imwrite(root / rel, texture(label, size, rng))
                        rows.append(
                            {
                                "path": rel.as_posix(),
                                "label": name,
                                "plate": "P1",
                                "well": well,
                                "field": f,
                                "experiment": f"exp{e}",
                                "hours_since_induction": h,
                            }
                        )
    manifest = root / "manifest.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def tiny_config(manifest: Path, out_dir: Path, **overrides: object) -> dict[str, object]:
    """A config mapping for a seconds-long run on the tiny set."""
    cfg: dict[str, object] = {
        "data": {
            "manifest": str(manifest),
            "tiling": {"downsample": 2, "tile_size": 32, "max_tiles": 4},
            "io_workers": 1,
        },
        "split": {"group_by": "well", "test_fraction": 0.25, "val_fraction": 0.34, "seed": 0},
        "model": {"architecture": "fastnet"},
        "optim": {"epochs": 2, "batch_size": 16, "lr": 3e-3, "patience": 5},
        "runtime": {"threads": 1, "out_dir": str(out_dir), "progress": False, "seed": 0},
    }
    for key, value in overrides.items():
        section, name = key.split("__")
        cfg.setdefault(section, {})[name] = value  # type: ignore[index]
    return cfg
