"""Labels from the lab: the words, and end-point staining results read from a CSV.

A label says what a well really was over a stretch of time: ``differentiated``,
``undifferentiated`` (the two classes a model learns) or ``excluded`` (leave these images
out: a contaminated well, a dried-out edge, a bubble). The store keeps them append-only
(:mod:`stemwatch.store.labels`); this module owns the vocabulary and the end-point reader.

An **end-point result** is the immunostaining of a marker in a well after the run, given per
well as positive/negative or as the stained fraction. Whether staining means differentiated
depends on the marker: for the pluripotency markers in :data:`PLURIPOTENCY_MARKERS` (OCT4,
NANOG, SOX2, SSEA4, TRA-1-60, ...) a stained well is *undifferentiated*; for any other marker
the caller says what staining means (``stained_means``). A stained fraction counts as stained
at or above ``threshold``.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from stemwatch.core.errors import StemwatchError
from stemwatch.core.wells import parse_well, well_from_index

Label = Literal["differentiated", "undifferentiated", "excluded"]
LABELS: tuple[Label, ...] = ("differentiated", "undifferentiated", "excluded")
CLASS_LABELS: tuple[Label, ...] = ("undifferentiated", "differentiated")
"""The labels that are classes a model learns (``excluded`` is not one)."""
StainedMeaning = Literal["differentiated", "undifferentiated"]

PLURIPOTENCY_MARKERS: frozenset[str] = frozenset(
    {
        "oct4",
        "oct3/4",
        "oct-4",
        "pou5f1",
        "nanog",
        "sox2",
        "ssea1",
        "ssea-1",
        "ssea3",
        "ssea-3",
        "ssea4",
        "ssea-4",
        "tra-1-60",
        "tra-1-81",
        "tra160",
        "tra181",
        "alp",
        "ap",
        "alkaline phosphatase",
        "rex1",
        "zfp42",
        "klf4",
        "esrrb",
        "dppa3",
    }
)
"""Markers of the undifferentiated state: stained means undifferentiated."""

_POSITIVE = {"positive", "pos", "+", "stained", "yes", "y", "1", "true"}
_NEGATIVE = {"negative", "neg", "-", "unstained", "no", "n", "0", "false"}
_ALIASES = {
    "plate": "plate",
    "plate_id": "plate",
    "well": "well",
    "marker": "marker",
    "stain": "marker",
    "antibody": "marker",
    "result": "result",
    "staining": "result",
    "stained": "result",
    "stained_fraction": "fraction",
    "fraction": "fraction",
    "fraction_stained": "fraction",
    "positive_fraction": "fraction",
    "percent_positive": "fraction",
    "time_h": "time_h",
    "hours": "time_h",
    "time_at": "time_at",
    "fixed_at": "time_at",
    "date": "time_at",
    "notes": "notes",
    "note": "notes",
    "comment": "notes",
}


class LabelError(StemwatchError):
    """A label or an end-point file is invalid: names the file, row, column, value and fix."""


def check_label(label: str) -> Label:
    """``label`` as a :data:`Label`, or a :class:`LabelError` naming the allowed ones."""
    for known in LABELS:
        if label == known:
            return known
    raise LabelError(f"label {label!r} is not one of {', '.join(LABELS)}")


def stained_label(marker: str, stained: bool, stained_means: StainedMeaning | None) -> Label:
    """The label a staining result gives, or a :class:`LabelError` when the marker's meaning
    is unknown and ``stained_means`` is not given."""
    if marker.strip().lower() in PLURIPOTENCY_MARKERS:
        meaning: StainedMeaning = "undifferentiated"
    elif stained_means is not None:
        meaning = stained_means
    else:
        raise LabelError(
            f"marker {marker!r}: stemwatch does not know whether staining means differentiated "
            "or undifferentiated; pass --stained-means differentiated (a differentiation "
            "marker) or undifferentiated (a pluripotency marker)"
        )
    other: StainedMeaning = "undifferentiated" if meaning == "differentiated" else "differentiated"
    return meaning if stained else other


@dataclass(frozen=True)
class EndpointResult:
    """One well's end-point staining, with the label it gives."""

    plate: str
    well: str
    marker: str
    stained: bool
    label: Label
    fraction: float | None = None
    time_s: float | None = None  # when the well was fixed; None: at its last image
    time_basis: Literal["elapsed", "epoch"] | None = None
    notes: str | None = None
    row: int = 0  # the CSV row it came from


def _key(name: str) -> str:
    return re.sub(r"[\s\-()\[\]/.%]+", "_", name.strip().lower()).strip("_")


def _fraction(value: str, where: str) -> float:
    v = value.strip()
    percent = v.endswith("%")
    try:
        x = float(v.rstrip("%").strip())
    except ValueError:
        raise LabelError(
            f"{where}: {value!r} is not a stained fraction; write 0.35 or 35%"
        ) from None
    if percent:
        x /= 100.0
    if not math.isfinite(x) or not 0.0 <= x <= 1.0:
        raise LabelError(
            f"{where}: stained fraction {value!r} is outside 0-1; write a fraction (0.35) or a "
            "percentage with its sign (35%)"
        )
    return x


def read_endpoints(
    path: str | Path,
    *,
    plate: str | None = None,
    stained_means: StainedMeaning | None = None,
    threshold: float = 0.5,
) -> list[EndpointResult]:
    """Read end-point staining results: one row per well (``plate``, ``well``, ``marker``,
    ``result`` positive/negative or ``stained_fraction``, optionally ``time_h`` or
    ``time_at`` when the well was fixed, ``notes``)."""
    p = Path(path)
    if not p.is_file():
        raise LabelError(f"{p}: end-point file not found; check the path")
    if not 0.0 < threshold <= 1.0:
        raise LabelError(f"threshold {threshold} must be in (0, 1]")
    text = p.read_bytes().decode("utf-8-sig", errors="replace")
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise LabelError(
            f"{p}: the end-point file is empty; it needs a header and one row per well"
        )
    header = [c.strip() for c in rows[0]]
    fields = [_ALIASES.get(_key(h)) for h in header]
    for need in ("well", "marker"):
        if need not in fields:
            raise LabelError(
                f"{p}: row 1: no {need!r} column (columns: {', '.join(header)}); an end-point "
                "file needs plate, well, marker and result or stained_fraction"
            )
    if "result" not in fields and "fraction" not in fields:
        raise LabelError(
            f"{p}: row 1: neither a 'result' (positive/negative) nor a 'stained_fraction' "
            f"column (columns: {', '.join(header)})"
        )
    col = {f: i for i, f in enumerate(fields) if f is not None}
    out: list[EndpointResult] = []
    seen: dict[tuple[str, str, str], int] = {}
    for n, row in enumerate(rows[1:], start=2):

        def get(name: str, row: list[str] = row) -> str | None:
            i = col.get(name)
            if i is None or i >= len(row):
                return None
            v = row[i].strip()
            return v or None

        def where(name: str, n: int = n) -> str:
            return f"{p}: row {n}, column {header[col[name]]!r}"

        plate_name = get("plate") or plate
        if not plate_name:
            raise LabelError(f"{p}: row {n}: no plate; add a 'plate' column or pass --plate")
        well_text = get("well")
        if not well_text:
            raise LabelError(f"{where('well')}: the well is empty")
        try:
            well = well_from_index(*parse_well(well_text))
        except ValueError:
            raise LabelError(
                f"{where('well')}: {well_text!r} is not a well name; write wells like A01"
            ) from None
        marker = get("marker")
        if not marker:
            raise LabelError(f"{where('marker')}: the marker is empty; name the stained marker")
        result, fraction_text = get("result"), get("fraction")
        fraction = _fraction(fraction_text, where("fraction")) if fraction_text else None
        if result is not None:
            r = result.lower()
            if r in _POSITIVE:
                stained = True
            elif r in _NEGATIVE:
                stained = False
            else:
                raise LabelError(
                    f"{where('result')}: {result!r} is not a staining result; write positive "
                    "or negative (or +/-)"
                )
        elif fraction is not None:
            stained = fraction >= threshold
        else:
            raise LabelError(
                f"{p}: row {n}: neither a result nor a stained fraction for {well}; fill one in"
            )
        try:
            label = stained_label(marker, stained, stained_means)
        except LabelError as exc:
            raise LabelError(f"{where('marker')}: {exc}") from None
        time_s: float | None = None
        basis: Literal["elapsed", "epoch"] | None = None
        if get("time_h") is not None:
            try:
                time_s, basis = float(str(get("time_h"))) * 3600.0, "elapsed"
            except ValueError:
                raise LabelError(
                    f"{where('time_h')}: {get('time_h')!r} is not a number of hours"
                ) from None
        elif get("time_at") is not None:
            try:
                time_s = datetime.fromisoformat(str(get("time_at"))).timestamp()
                basis = "epoch"
            except ValueError:
                raise LabelError(
                    f"{where('time_at')}: {get('time_at')!r} is not a date; write 2026-01-08 17:00"
                ) from None
        key = (plate_name, well, marker.lower())
        if key in seen:
            raise LabelError(
                f"{where('well')}: {plate_name} {well} {marker} is also on row {seen[key]}; "
                "give each well's marker once"
            )
        seen[key] = n
        out.append(
            EndpointResult(
                plate=plate_name,
                well=well,
                marker=marker,
                stained=stained,
                label=label,
                fraction=fraction,
                time_s=time_s,
                time_basis=basis,
                notes=get("notes"),
                row=n,
            )
        )
    if not out:
        raise LabelError(f"{p}: the end-point file has a header but no rows")
    return out
