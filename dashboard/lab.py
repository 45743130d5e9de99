"""The dashboard's part of a lab's own model: labels, false alarms, the model shown, two
models side by side (issue 10). Plain functions over the store's records, tested directly;
the views are :mod:`dashboard.views.labels` and :mod:`dashboard.views.models`.

The dashboard writes a label, a false alarm or an undo on a short-lived writable connection,
as it acknowledges alerts (:mod:`dashboard.context`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from dashboard.data import TimeBase, series_frame
from stemwatch import store
from stemwatch.core.compare import ModelComparison, describe_shift
from stemwatch.core.labels import Label
from stemwatch.core.platemap import PlateMap

MODEL_KEY = "shown_model"  # session state: the model the plate views show ("": the daemon's)


# -- writes (button callbacks call these) ---------------------------------------------------


def label_well(
    path: str | Path,
    plate: str,
    well: str,
    label: Label,
    *,
    by: str,
    from_time_s: float | None = None,
    note: str | None = None,
    instrument: str | None = None,
) -> store.LabelRecord:
    """Label a well (from a time point on) as ``label``, said by ``by``."""
    with store.open_db(path) as db:
        return store.label_well(
            db,
            plate,
            well,
            label,
            by=by,
            from_time_s=from_time_s,
            note=note or None,
            instrument=instrument,
        )


def mark_false_alarm(path: str | Path, alert_id: int, *, by: str) -> store.LabelRecord:
    """Mark an onset alert as a false alarm (its window's images: undifferentiated)."""
    with store.open_db(path) as db:
        return store.mark_false_alarm(db, alert_id, by=by)


def undo_label(path: str | Path, label_id: int, *, by: str) -> store.LabelRecord:
    with store.open_db(path) as db:
        return store.undo_label(db, label_id, by=by)


# -- labels ----------------------------------------------------------------------------------


def time_point_starts(images: Sequence[store.ImageRecord]) -> list[float]:
    """The start (earliest field) of each time point of a well, in time order: where a label
    "from this time point on" begins, so every field of that time point is covered."""
    starts: dict[object, float] = {}
    for i in images:
        if i.time_s is None:
            continue
        key: object = i.timepoint if i.timepoint is not None else round(i.time_s / 600.0)
        starts[key] = min(starts.get(key, i.time_s), i.time_s)
    return sorted(starts.values())


def label_state(lab: store.LabelRecord) -> str:
    if not lab.active:
        return f"undone by {lab.undone_by}"
    if lab.superseded_by is not None:
        return f"superseded by #{lab.superseded_by}"
    return "active"


def labels_frame(labels: Sequence[store.LabelRecord], tb: TimeBase) -> pd.DataFrame:
    """One row per label (newest first) as the Labels view lists them."""
    rows = [
        {
            "#": lab.id,
            "Well": lab.well,
            "Label": lab.label,
            "From (h)": _nan(tb.hours(lab.from_time_s)),
            "To (h)": _nan(tb.hours(lab.to_time_s)),
            "Source": lab.source,
            "By": lab.created_by,
            "At": datetime.fromtimestamp(lab.created_at).strftime("%Y-%m-%d %H:%M"),
            "State": label_state(lab),
            "Note": lab.note or "",
        }
        for lab in labels
    ]
    cols = ["#", "Well", "Label", "From (h)", "To (h)", "Source", "By", "At", "State", "Note"]
    return pd.DataFrame(rows, columns=cols)


def false_alarm_text(alert: store.AlertRecord, marks: Mapping[int, store.LabelRecord]) -> str:
    """``marked false alarm by ana`` or empty."""
    lab = marks.get(alert.id)
    return "" if lab is None else f"false alarm (label #{lab.id}, by {lab.created_by})"


# -- plate maps ------------------------------------------------------------------------------


def conditions(plate_map: PlateMap | None, by: str = "condition") -> dict[str, str]:
    """well -> its value of ``by`` (condition, treatment, role or an attribute)."""
    if plate_map is None:
        return {}
    return {w.well: w.group(by) for w in plate_map.wells}


def with_conditions(grid: pd.DataFrame, plate_map: PlateMap | None) -> pd.DataFrame:
    """The plate grid with each well's condition from the plate map (empty where unmapped):
    the heatmap shows it."""
    by_well = conditions(plate_map)
    return grid.assign(condition=[by_well.get(w, "") for w in grid["well"]])


def map_caption(plate_map: PlateMap | None) -> str:
    """``Plate map: EpiLC (12 wells), maintenance (12 wells)``, or empty without one."""
    if plate_map is None or not plate_map.wells:
        return ""
    counts: dict[str, int] = {}
    for w in plate_map.wells:
        key = w.group("condition")
        counts[key] = counts.get(key, 0) + 1
    return "Plate map: " + ", ".join(
        f"{k} ({n} well{'s' if n != 1 else ''})" for k, n in counts.items()
    )


def well_text(plate_map: PlateMap | None, well: str, tb: TimeBase) -> str:
    """What the plate map says of one well, in a line (empty where it says nothing)."""
    layout = None if plate_map is None else plate_map.by_well().get(well)
    if layout is None:
        return ""
    parts = [
        f"{k}: {v}"
        for k, v in (("condition", layout.condition), ("treatment", layout.treatment))
        if v
    ]
    if layout.role:
        parts.append(layout.role)
    if layout.induction_h is not None:
        parts.append(f"induced at {layout.induction_h:g} h")
    parts += [f"{k}: {v}" for k, v in layout.attributes.items()]
    if layout.notes:
        parts.append(layout.notes)
    return " · ".join(parts)


def group_keys(plate_map: PlateMap | None) -> list[str]:
    """What wells can be grouped by: condition, treatment, role, then the map's attributes."""
    if plate_map is None:
        return []
    keys = [
        k for k in ("condition", "treatment", "role") if any(getattr(w, k) for w in plate_map.wells)
    ]
    return keys + plate_map.attribute_names()


# -- models ----------------------------------------------------------------------------------


def model_label(m: store.PlateModel) -> str:
    name = m.name or "model"
    return f"{name} ({m.model_hash[:8]})" + (" · the daemon's" if m.daemon else "")


def two_series_frame(
    series: Mapping[str, Sequence[store.SeriesPoint]], tb: TimeBase
) -> pd.DataFrame:
    """The series of one well by several models, one frame with a ``model`` column."""
    frames = [series_frame(points, tb).assign(model=name) for name, points in series.items()]
    if not frames:
        return pd.DataFrame(columns=["time_h", "mean", "lower", "upper", "smoothed", "model"])
    return pd.concat(frames, ignore_index=True)


def onset_differences_frame(c: ModelComparison, tb: TimeBase) -> pd.DataFrame:
    rows = [
        {
            "Well": d.well,
            "A onset (h)": _nan(None if d.a is None else tb.hours(d.a.onset_time_s)),
            "B onset (h)": _nan(None if d.b is None else tb.hours(d.b.onset_time_s)),
            "Difference": d.kind if d.kind != "both" else describe_shift(d.onset_shift_h),
            "Detection shift": "" if d.kind != "both" else describe_shift(d.detection_shift_h),
        }
        for d in c.onset_differences
    ]
    cols = ["Well", "A onset (h)", "B onset (h)", "Difference", "Detection shift"]
    return pd.DataFrame(rows, columns=cols)


def accuracy_frame(c: ModelComparison) -> pd.DataFrame | None:
    """Both models' accuracy on labelled wells neither trained on (None: no such wells)."""
    if c.accuracy_a is None or c.accuracy_b is None:
        return None
    diff = c.accuracy_difference.text("+.3f") if c.accuracy_difference else ""
    return pd.DataFrame(
        [
            {
                "Figure": "accuracy",
                "A": c.accuracy_a.accuracy.text(),
                "B": c.accuracy_b.accuracy.text(),
                "B - A": diff,
            },
            {
                "Figure": "balanced accuracy",
                "A": c.accuracy_a.balanced_accuracy.text(),
                "B": c.accuracy_b.balanced_accuracy.text(),
                "B - A": "",
            },
        ]
    )


def onset_figures_frame(c: ModelComparison) -> pd.DataFrame | None:
    if c.onsets_a is None or c.onsets_b is None:
        return None
    a, b = c.onsets_a, c.onsets_b
    return pd.DataFrame(
        [
            {
                "Figure": f"induced wells detected (of {a.n_induced})",
                "A": a.induced_detected.text(".2f"),
                "B": b.induced_detected.text(".2f"),
            },
            {
                "Figure": "median delay after induction",
                "A": a.median_delay_h.text(".1f", unit=" h"),
                "B": b.median_delay_h.text(".1f", unit=" h"),
            },
            {
                "Figure": f"false alarms per 100 maintenance wells (of {a.n_maintenance})",
                "A": a.false_alarms_per_100.text(".0f"),
                "B": b.false_alarms_per_100.text(".0f"),
            },
        ]
    )


def _nan(x: float | None) -> float:
    return np.nan if x is None else float(x)
