"""Plate maps: what each well of a plate holds (condition, treatment, induction time, notes).

A lab keeps its plate layout in one of three shapes, all read here into the same
:class:`WellLayout` records:

- a **table** (CSV or tab-separated), one row per well: ``well`` and any of ``plate``,
  ``condition``, ``treatment``, ``induction_h`` (hours since the plate's time zero: time 0 of
  images with elapsed times, else the plate's first image) or ``induction_at`` (a date and
  time), ``role``
  (``induced``, ``maintenance``, ``control`` or ``empty``) and ``notes``; any other column
  (cell line, passage, density...) is kept as an attribute of the well;
- a **grid**, the way plate designers and Incucyte's plate-map editor lay a plate out: one
  block per attribute, whose first line is the attribute's name followed by the column
  numbers ``1, 2, ... 12`` and whose next lines start with a row letter (``A``, ``B``, ...)
  followed by one cell per column; blocks are separated by an empty line;
- an **Incucyte .PlateMap** file (XML): each well's ``GrowthCondition`` becomes its
  condition, its ``Compound`` (with concentration) its treatment and its ``CellType`` (with
  passage and seeding density) attributes.

A well's **role** decides how the onset evaluation counts it: ``induced`` wells should
differentiate (their delay is measured from the induction time), ``maintenance`` wells should
not (any onset there is a false alarm); ``control``, ``empty`` and wells without a role are
left out. The role comes from the ``role`` column, else from an induction time (induced),
else from the condition when it is literally ``induced`` or ``maintenance``, else from the
``induced``/``maintenance`` condition names the caller passes; nothing else is guessed.

Every problem raises :class:`PlateMapError` naming the file, the row and the column, the bad
value and the fix.
"""

from __future__ import annotations

import csv
import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

from stemwatch.core.errors import StemwatchError
from stemwatch.core.wells import parse_well, row_index, well_from_index

Role = Literal["induced", "maintenance", "control", "empty"]
ROLES: tuple[Role, ...] = ("induced", "maintenance", "control", "empty")
InductionBasis = Literal["elapsed", "epoch"]
MapFormat = Literal["auto", "table", "grid", "incucyte"]

# Column names as a lab writes them -> the field they fill (after lower-casing and turning
# spaces, dashes and brackets into underscores).
_ALIASES: dict[str, str] = {
    "plate": "plate",
    "plate_id": "plate",
    "plate_name": "plate",
    "barcode": "plate",
    "well": "well",
    "well_id": "well",
    "wellid": "well",
    "position": "well",
    "condition": "condition",
    "group": "condition",
    "growthcondition": "condition",
    "growth_condition": "condition",
    "treatment": "treatment",
    "compound": "treatment",
    "induction_h": "induction_h",
    "induction_hours": "induction_h",
    "induction_time_h": "induction_h",
    "induction": "induction_h",
    "induction_at": "induction_at",
    "induction_datetime": "induction_at",
    "induction_date": "induction_at",
    "role": "role",
    "notes": "notes",
    "note": "notes",
    "comment": "notes",
    "comments": "notes",
}
_EMPTY_CELLS = {"", "-", "na", "n/a", "nan", "none", "null"}


class PlateMapError(StemwatchError):
    """A plate map cannot be read: names the file, row and column, the value and the fix."""


@dataclass(frozen=True)
class WellLayout:
    """What one well of a plate holds."""

    well: str  # normalised, e.g. "A01"
    condition: str | None = None
    treatment: str | None = None
    induction_s: float | None = None  # in ``induction_basis``
    induction_basis: InductionBasis | None = None
    role: Role | None = None
    notes: str | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def induction_h(self) -> float | None:
        """Hours since the plate's time zero (elapsed basis only)."""
        if self.induction_s is None or self.induction_basis != "elapsed":
            return None
        return self.induction_s / 3600.0

    def group(self, by: str = "condition") -> str:
        """The well's value for ``by`` (``condition``, ``treatment``, ``role`` or an attribute
        name) for grouping wells; ``(none)`` when it has none."""
        if by in ("condition", "treatment", "role", "notes"):
            value = getattr(self, by)
        elif by == "induction_h":
            value = None if self.induction_h is None else f"{self.induction_h:g} h"
        else:
            value = self.attributes.get(by)
        return str(value) if value not in (None, "") else "(none)"


@dataclass(frozen=True)
class PlateMap:
    """The layout of one plate, well by well."""

    plate: str
    wells: tuple[WellLayout, ...]

    def by_well(self) -> dict[str, WellLayout]:
        return {w.well: w for w in self.wells}

    def attribute_names(self) -> list[str]:
        """The extra attributes any well carries, in first-seen order."""
        seen: dict[str, None] = {}
        for w in self.wells:
            for k in w.attributes:
                seen.setdefault(k)
        return list(seen)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_plate_maps(
    path: str | Path,
    *,
    plate: str | None = None,
    fmt: MapFormat = "auto",
    induced: Sequence[str] = (),
    maintenance: Sequence[str] = (),
    induction_h: float | None = None,
) -> list[PlateMap]:
    """Read the plate map(s) in ``path``: one :class:`PlateMap` per plate named in it.

    ``plate`` names the plate when the file does not (a grid, an Incucyte file, a table
    without a ``plate`` column) and is an error when the file names other plates.
    ``induced``/``maintenance`` give the roles of wells by condition (or treatment) name;
    ``induction_h`` is the induction time of induced wells that have none in the file.
    """
    p = Path(path)
    if not p.is_file():
        raise PlateMapError(f"{p}: plate map not found; check the path")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # spreadsheet exports on Windows
    if not text.strip():
        raise PlateMapError(f"{p}: the plate map is empty; it needs one row per well or a grid")
    kind = _detect(text, p) if fmt == "auto" else fmt
    maps: dict[str | None, list[WellLayout]]
    if kind == "incucyte":
        maps = {None: _parse_incucyte(text, p)}
    elif kind == "grid":
        maps = {None: _parse_grid(text, p)}
    elif kind == "table":
        maps = _parse_table(text, p)
    else:
        raise PlateMapError(f"{p}: unknown plate map format {fmt!r}; use table, grid or incucyte")
    out: list[PlateMap] = []
    for name, wells in maps.items():
        if name is None and plate is None:
            raise PlateMapError(
                f"{p}: the plate map does not say which plate it describes; pass --plate NAME "
                "(the plate name the images carry), or add a 'plate' column"
            )
        if name is not None and plate is not None and name != plate:
            raise PlateMapError(
                f"{p}: the map names plate {name!r} but --plate is {plate!r}; drop --plate or "
                "fix the 'plate' column"
            )
        layouts = [
            _with_role(w, induced=induced, maintenance=maintenance, induction_h=induction_h)
            for w in wells
        ]
        out.append(PlateMap(str(name if name is not None else plate), tuple(layouts)))
    _check_role_names(out, induced, maintenance, p)
    return out


def _detect(text: str, path: Path) -> MapFormat:
    head = text.lstrip()[:200].lower()
    if head.startswith("<?xml") or head.startswith("<platemap"):
        return "incucyte"
    rows = _rows(text)
    first = next((r for r in rows if any(c.strip() for c in r)), [])
    cells = [c.strip() for c in first[1:] if c.strip()]
    if len(cells) >= 1 and all(c.isdigit() for c in cells):
        return "grid"
    return "table"


def _rows(text: str) -> list[list[str]]:
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    if delimiter == "," and sample.count(";") > sample.count(","):
        delimiter = ";"  # spreadsheets in locales with a decimal comma
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def _key(name: str) -> str:
    return re.sub(r"[\s\-()\[\]/.]+", "_", name.strip().lower()).strip("_")


def _cell(value: str | None) -> str | None:
    if value is None:
        return None
    v = value.strip()
    return None if v.lower() in _EMPTY_CELLS else v


def _parse_well(value: str, where: str) -> str:
    try:
        return well_from_index(*parse_well(value))
    except ValueError:
        raise PlateMapError(
            f"{where}: {value!r} is not a well name; write wells like A1 or A01 (row letter, "
            "column number)"
        ) from None


def _parse_hours(value: str, where: str) -> float:
    try:
        hours = float(value.replace(",", ".") if value.count(",") == 1 else value)
    except ValueError:
        raise PlateMapError(
            f"{where}: {value!r} is not a number of hours; write the induction time as hours "
            "since the plate's time zero (e.g. 24), or use an induction_at column with a date"
        ) from None
    if not math.isfinite(hours) or hours < 0:
        raise PlateMapError(
            f"{where}: induction time {value!r} must be zero or a positive number of hours"
        )
    return hours


def _parse_datetime(value: str, where: str) -> float:
    try:
        return datetime.fromisoformat(value.replace("/", "-")).timestamp()
    except ValueError:
        raise PlateMapError(
            f"{where}: {value!r} is not a date and time; write it as 2026-01-05 09:00"
        ) from None


def _parse_role(value: str, where: str) -> Role:
    v = value.strip().lower()
    for role in ROLES:
        if v == role:
            return role
    raise PlateMapError(f"{where}: role {value!r} is not one of {', '.join(ROLES)}")


def _layout(values: Mapping[str, str | None], attributes: dict[str, str], where: str) -> WellLayout:
    """A well from its named cells (``where`` names the row for messages)."""
    well_text = values.get("well")
    if not well_text:
        raise PlateMapError(f"{where}, column 'well': the well is empty; give a well like A01")
    well = _parse_well(well_text, f"{where}, column 'well'")
    induction_s: float | None = None
    basis: InductionBasis | None = None
    hours = values.get("induction_h")
    at = values.get("induction_at")
    if hours is not None and at is not None:
        raise PlateMapError(
            f"{where}: both induction_h ({hours!r}) and induction_at ({at!r}) are given; keep one"
        )
    if hours is not None:
        induction_s, basis = _parse_hours(hours, f"{where}, column 'induction_h'") * 3600, "elapsed"
    elif at is not None:
        induction_s, basis = _parse_datetime(at, f"{where}, column 'induction_at'"), "epoch"
    role_text = values.get("role")
    return WellLayout(
        well=well,
        condition=values.get("condition"),
        treatment=values.get("treatment"),
        induction_s=induction_s,
        induction_basis=basis,
        role=_parse_role(role_text, f"{where}, column 'role'") if role_text else None,
        notes=values.get("notes"),
        attributes=attributes,
    )


def _parse_table(text: str, path: Path) -> dict[str | None, list[WellLayout]]:
    rows = _rows(text)
    header_at = next((i for i, r in enumerate(rows) if any(c.strip() for c in r)), None)
    if header_at is None:
        raise PlateMapError(f"{path}: the plate map is empty; it needs one row per well")
    header = [c.strip() for c in rows[header_at]]
    fields: list[str | None] = []
    for col, name in enumerate(header, start=1):
        if not name:
            fields.append(None)
            continue
        target = _ALIASES.get(_key(name))
        if target is not None and target in fields:
            raise PlateMapError(
                f"{path}: row {header_at + 1}, column {col} ({name!r}): a second column for "
                f"{target}; keep one"
            )
        fields.append(target if target is not None else f"attr:{name}")
    if "well" not in fields:
        raise PlateMapError(
            f"{path}: row {header_at + 1}: no 'well' column (columns: {', '.join(header)}); a "
            "table needs one row per well with a 'well' column, or use the grid layout"
        )
    plates: dict[str | None, list[WellLayout]] = {}
    seen: dict[tuple[str | None, str], int] = {}
    for i, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(fields) and any(c.strip() for c in row[len(fields) :]):
            raise PlateMapError(
                f"{path}: row {i}, column {len(fields) + 1}: {row[len(fields)].strip()!r} is "
                f"beyond the {len(fields)} columns of the header; add a header for it or remove it"
            )
        values: dict[str, str | None] = {}
        attributes: dict[str, str] = {}
        for col, target in enumerate(fields):
            if target is None:
                continue
            value = _cell(row[col]) if col < len(row) else None
            if target.startswith("attr:"):
                if value is not None:
                    attributes[target[5:]] = value
            else:
                values[target] = value
        layout = _layout(values, attributes, f"{path}: row {i}")
        plate = values.get("plate")
        key = (plate, layout.well)
        if key in seen:
            raise PlateMapError(
                f"{path}: row {i}, column 'well': well {layout.well} of plate "
                f"{plate or '(this plate)'} is also on row {seen[key]}; give each well once"
            )
        seen[key] = i
        plates.setdefault(plate, []).append(layout)
    if not plates:
        raise PlateMapError(f"{path}: the plate map has a header but no wells")
    if None in plates and len(plates) > 1:
        first = min(seen[k] for k in seen if k[0] is None)
        raise PlateMapError(
            f"{path}: row {first}, column 'plate': the plate is empty while other rows name one; "
            "fill in the plate on every row"
        )
    return plates


def _parse_grid(text: str, path: Path) -> list[WellLayout]:
    rows = _rows(text)
    cells: dict[str, dict[str, str | None]] = {}  # well -> field -> value
    attrs: dict[str, dict[str, str]] = {}
    i = 0
    n = len(rows)
    blocks = 0
    block_rows: dict[str, int] = {}
    while i < n:
        if not any(c.strip() for c in rows[i]):
            i += 1
            continue
        header = rows[i]
        name = header[0].strip()
        if not name:
            raise PlateMapError(
                f"{path}: row {i + 1}, column 1: a grid block needs the attribute's name "
                "(condition, treatment, induction_h, role, notes or your own) in its first cell"
            )
        target = _ALIASES.get(_key(name)) or f"attr:{name}"
        if target in block_rows:
            raise PlateMapError(
                f"{path}: row {i + 1}, column 1: a second {name!r} block (the first is on row "
                f"{block_rows[target]}); give each attribute one block"
            )
        block_rows[target] = i + 1
        if target in ("well", "plate"):
            raise PlateMapError(
                f"{path}: row {i + 1}, column 1: {name!r} cannot be a grid block; the grid "
                "itself gives the wells, --plate names the plate"
            )
        columns: list[int | None] = []
        for col, cell in enumerate(header[1:], start=2):
            c = cell.strip()
            if not c:
                columns.append(None)
                continue
            if not c.isdigit() or not 1 <= int(c) <= 48:
                raise PlateMapError(
                    f"{path}: row {i + 1}, column {col}: {c!r} is not a column number (1-48); "
                    "the first line of a grid block is the attribute name, then 1, 2, 3, ..."
                )
            columns.append(int(c) - 1)
        blocks += 1
        i += 1
        while i < n and any(c.strip() for c in rows[i]):
            row = rows[i]
            letter = row[0].strip()
            r = row_index(letter) if letter.isalpha() else None
            if r is None:
                raise PlateMapError(
                    f"{path}: row {i + 1}, column 1: {letter!r} is not a plate row letter "
                    "(A, B, ...); leave an empty line between grid blocks"
                )
            for col, value in enumerate(row[1:], start=2):
                v = _cell(value)
                if v is None:
                    continue
                c_index = columns[col - 2] if col - 2 < len(columns) else None
                if c_index is None:
                    raise PlateMapError(
                        f"{path}: row {i + 1}, column {col}: {v!r} is under no column number "
                        "in the block's first line; number every column or clear the cell"
                    )
                well = well_from_index(r, c_index)
                if target.startswith("attr:"):
                    attrs.setdefault(well, {})[target[5:]] = v
                    cells.setdefault(well, {})
                else:
                    where = f"{path}: row {i + 1} ({letter}), column {col} ({c_index + 1})"
                    if target == "induction_h":
                        _parse_hours(v, where)
                    elif target == "induction_at":
                        _parse_datetime(v, where)
                    elif target == "role":
                        _parse_role(v, where)
                    cells.setdefault(well, {})[target] = v
            i += 1
    if blocks == 0 or not cells:
        raise PlateMapError(f"{path}: the grid names no well; fill in at least one cell")
    return [
        _layout({"well": well, **values}, attrs.get(well, {}), f"{path}: well {well}")
        for well, values in sorted(cells.items(), key=lambda kv: parse_well(kv[0]))
    ]


def _parse_incucyte(text: str, path: Path) -> list[WellLayout]:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise PlateMapError(
            f"{path}: not a readable Incucyte .PlateMap (XML error at line {exc.position[0]}, "
            f"column {exc.position[1]}); export the plate map again"
        ) from None
    wells = root.findall(".//wellStore/wells/well")
    if not wells:
        raise PlateMapError(f"{path}: no <wellStore><wells><well> elements; is it a .PlateMap?")
    out: list[WellLayout] = []
    for el in wells:
        line = getattr(el, "sourceline", None)
        try:
            r, c = int(el.get("row", "")), int(el.get("col", ""))
        except ValueError:
            raise PlateMapError(
                f"{path}: a <well> has row={el.get('row')!r} col={el.get('col')!r}; both must "
                "be numbers counted from 0" + (f" (line {line})" if line else "")
            ) from None
        items = el.findall("./items/wellItem")
        if not items:
            continue  # an empty well
        values: dict[str, str | None] = {"well": well_from_index(r, c)}
        attributes: dict[str, str] = {}
        compounds: list[str] = []
        for item in items:
            ref = item.find("./referenceItem")
            name = None if ref is None else ref.get("displayName") or ref.get("description")
            kind = item.get("type", "")
            if kind == "Compound" and name:
                conc, unit = item.get("concentration"), item.get("concentrationUnits") or ""
                compounds.append(f"{name} {conc} {unit}".strip() if conc else name)
            elif kind == "GrowthCondition" and name:
                values["condition"] = name
            elif kind == "CellType" and name:
                attributes["cell_type"] = name
                for attr, key in (("passage", "passage"), ("seedingDensity", "seeding_density")):
                    if item.get(attr):
                        attributes[key] = str(item.get(attr))
            elif name:
                attributes[kind or "item"] = name
        if compounds:
            values["treatment"] = " + ".join(compounds)
        out.append(_layout(values, attributes, f"{path}: well row {r} col {c}"))
    if not out:
        raise PlateMapError(f"{path}: every well of the plate map is empty")
    return out


# --------------------------------------------------------------------------------------------
# Roles
# --------------------------------------------------------------------------------------------


def _with_role(
    w: WellLayout,
    *,
    induced: Sequence[str],
    maintenance: Sequence[str],
    induction_h: float | None,
) -> WellLayout:
    role = w.role
    names = {n.lower() for n in (w.condition, w.treatment) if n}
    if role is None:
        if w.induction_s is not None or names & {n.lower() for n in induced}:
            role = "induced"
        elif names & {n.lower() for n in maintenance}:
            role = "maintenance"
        elif (w.condition or "").lower() in ("induced", "maintenance"):
            role = "induced" if (w.condition or "").lower() == "induced" else "maintenance"
    out = replace(w, role=role)
    if role == "induced" and out.induction_s is None and induction_h is not None:
        out = replace(out, induction_s=induction_h * 3600.0, induction_basis="elapsed")
    return out


def _check_role_names(
    maps: Iterable[PlateMap], induced: Sequence[str], maintenance: Sequence[str], path: Path
) -> None:
    known = {n.lower() for m in maps for w in m.wells for n in (w.condition, w.treatment) if n}
    for option, names in (("--induced", induced), ("--maintenance", maintenance)):
        for name in names:
            if name.lower() not in known:
                raise PlateMapError(
                    f"{path}: {option} {name!r} is no well's condition or treatment "
                    f"(the map has: {', '.join(sorted(known)) or 'none'})"
                )


# --------------------------------------------------------------------------------------------
# Times on a plate's clock
# --------------------------------------------------------------------------------------------


def time_from_hours(hours: float, clock: bool, plate_start_s: float | None) -> float | None:
    """``hours`` since the plate's time zero on the clock of its images: seconds as given for
    an elapsed time line (time zero is 0), the plate's first image time plus the hours for a
    wall-clock one (None when that is unknown)."""
    if not clock:
        return hours * 3600.0
    return None if plate_start_s is None else plate_start_s + hours * 3600.0


def induction_time_s(layout: WellLayout, clock: bool, plate_start_s: float | None) -> float | None:
    """The well's induction time on its images' clock (``clock``: wall-clock times), None
    when it has none or it cannot be placed on that clock."""
    if layout.induction_s is None:
        return None
    if layout.induction_basis == "epoch":
        return layout.induction_s if clock else None
    return time_from_hours(layout.induction_s / 3600.0, clock, plate_start_s)
