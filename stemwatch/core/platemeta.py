"""Resolving plate, well, field and time point for each image.

Order of evidence (earlier evidence wins field by field; later evidence only fills gaps):

1. **OME-XML** (from the TIFF itself): the ``WellSample`` whose ``ImageRef`` names this file's
   ``Image`` gives the well (``Row``/``Column``, 0-based in OME, or the ``Well`` ``Name``) and
   the plate (``Plate`` ``Name``; without one, the fallback below). The field is the
   WellSample's position in its Well (1-based) when the Well lists several, else its
   ``Index`` + 1. Time: ``AcquisitionDate`` (epoch seconds, UTC when no zone is given) plus
   the first ``Plane`` ``DeltaT`` (per the OME spec DeltaT counts from AcquisitionDate);
   ``DeltaT`` alone is elapsed time.
2. **File-name presets** (:data:`PRESETS`, selectable by name): ``incucyte``,
   ``incucyte-elapsed``, ``imagexpress``, ``operetta``, ``cellvoyager-cv7000``,
   ``cellvoyager-cv1000``; see each preset's ``example``.
3. **A user regular expression** with named groups ``plate``, ``well`` (or ``row`` + ``col``),
   ``field``, ``timepoint``, ``channel`` and one of ``time_s``, ``time_min``, ``time_h``. It
   is searched in the whole path written with forward slashes, so groups may capture folders;
   anchor the file name with ``[^/]*$``.
4. **The file's modification time**, for time only, once plate and well are known.

Plate falls back to ``default_plate``, then to the nearest parent folder whose name is not a
generic instrument folder (``Images``, ``TimePoint_N``, ``ZStep_N``). Field falls back to 1
(one field per well). ``field``, ``timepoint`` and ``channel`` are the instrument's 1-based
numbers. Wells are normalised (``A1`` == ``A01``; rows A–Z and AA–AF, columns 1–48, so 6- to
1536-well plates). A file without a well raises :class:`PlateMetadataError` naming the file and
every source tried; nothing is guessed silently. Instrument thumbnails raise
:class:`IgnoredImageError` (a subclass) so a caller can skip them quietly.
"""

from __future__ import annotations

import calendar
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from stemwatch.core.config import StrictModel
from stemwatch.core.errors import ConfigError, PlateMetadataError
from stemwatch.core.wells import MAX_COLS, normalise_well, row_index, well_from_index

log = logging.getLogger(__name__)

TimeBasis = Literal["elapsed", "epoch", "mtime"]


@dataclass(frozen=True)
class ImageLocation:
    """Where and when an image was taken.

    ``time_s`` is seconds since the start of the experiment where known (OME DeltaT, an
    elapsed-time token in the name), else seconds since the epoch (an acquisition date in the
    OME-XML or in the name, or the file's mtime); ``time_basis`` says which. Within one plate
    the basis is normally the same for every image, so differences of ``time_s`` are hours of
    culture either way. ``timepoint`` is the instrument's acquisition index where known.
    ``source`` says which evidence was used, e.g. ``"ome"`` or ``"preset:incucyte+mtime"``.
    """

    plate: str
    well: str
    field: int
    timepoint: int | None
    time_s: float | None
    source: str
    time_basis: TimeBasis | None = None
    channel: int | None = None


class UnresolvedImageError(PlateMetadataError):
    """Where an image was taken cannot be told from any evidence; names the file and sources."""

    def __init__(self, path: object, reason: str, tried: Sequence[str] = ()) -> None:
        self.path = str(path)
        self.reason = reason
        self.tried = list(tried)
        tried_text = "; tried: " + ", ".join(self.tried) if self.tried else ""
        super().__init__(f"{self.path}: {reason}{tried_text}")


class IgnoredImageError(UnresolvedImageError):
    """The file is an instrument by-product (a thumbnail) and must not be analysed."""


# --------------------------------------------------------------------------- OME-XML


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(elem: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in elem if _local(c.tag) == name]


def _iter(elem: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in elem.iter() if _local(e.tag) == name]


_DELTA_T_UNITS = {
    "s": 1.0,
    "ms": 1e-3,
    "µs": 1e-6,
    "us": 1e-6,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def _parse_iso(text: str) -> float | None:
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _ome_image_for_file(root: ET.Element, filename: str) -> ET.Element | None:
    """The Image whose TiffData names ``filename``; else the first Image."""
    images = _iter(root, "Image")
    if not images:
        return None
    for img in images:
        for uuid in _iter(img, "UUID"):
            if uuid.get("FileName") and Path(uuid.get("FileName", "")).name == filename:
                return img
    return images[0]


def ome_evidence(ome_xml: str, filename: str) -> tuple[dict[str, Any], str | None]:
    """What the OME-XML says about the image stored in ``filename``.

    Returns the fields found (a subset of plate, well, field, time_s, time_basis) and, when
    nothing useful was found, a short reason.
    """
    try:
        root = ET.fromstring(ome_xml)
    except ET.ParseError as exc:
        return {}, f"OME-XML is not well-formed XML ({exc})"
    found: dict[str, Any] = {}
    image = _ome_image_for_file(root, filename)
    if image is not None:
        found.update(_ome_time(image))
    image_id = image.get("ID") if image is not None else None
    for plate in _iter(root, "Plate"):
        for well in _children(plate, "Well"):
            samples = _children(well, "WellSample")
            for pos, sample in enumerate(samples):
                refs = _children(sample, "ImageRef")
                if image_id is None or not any(r.get("ID") == image_id for r in refs):
                    continue
                well_name = _ome_well_name(well)
                if well_name is None:
                    return found, "OME Well has neither Row/Column nor a well-like Name"
                if plate.get("Name"):  # the ID ("Plate:0") names nothing; fall back instead
                    found["plate"] = plate.get("Name")
                found["well"] = well_name
                if len(samples) > 1:
                    found["field"] = pos + 1
                elif sample.get("Index", "").isdigit():
                    found["field"] = int(sample.get("Index", "0")) + 1
                return found, None
    why = "OME-XML has no Plate/Well/WellSample whose ImageRef names this file's Image"
    return found, why


def _ome_well_name(well: ET.Element) -> str | None:
    row, col = well.get("Row"), well.get("Column")
    if row is not None and col is not None and row.isdigit() and col.isdigit():
        return well_from_index(int(row), int(col))
    name = well.get("Name") or ""
    try:
        return normalise_well(name)
    except ValueError:
        return None


def _ome_time(image: ET.Element) -> dict[str, Any]:
    acq_el = _children(image, "AcquisitionDate")
    acquired = _parse_iso(acq_el[0].text or "") if acq_el else None
    delta: float | None = None
    for plane in _iter(image, "Plane"):
        dt = plane.get("DeltaT")
        if dt is None:
            continue
        scale = _DELTA_T_UNITS.get(plane.get("DeltaTUnit", "s"))
        try:
            delta = float(dt) * (scale if scale is not None else 1.0)
        except ValueError:
            continue
        break
    if acquired is not None:
        return {"time_s": acquired + (delta or 0.0), "time_basis": "epoch"}
    if delta is not None:
        return {"time_s": delta, "time_basis": "elapsed"}
    return {}


# --------------------------------------------------------------------------- presets

Parser = Callable[[re.Match[str], Path], dict[str, Any]]
_IMG_EXT = r"\.(?:tiff?|png|jpe?g)"
_WELL_TOKEN = r"[A-Za-z]{1,2}\d{1,2}"


@dataclass(frozen=True)
class Preset:
    """A file-name convention of one instrument: a regex on the file name and a parser."""

    name: str
    pattern: re.Pattern[str]
    parse: Parser
    example: str
    description: str

    def match(self, path: Path) -> dict[str, Any] | None:
        m = self.pattern.fullmatch(path.name)
        return None if m is None else self.parse(m, path)


def _epoch(year: str, month: str, day: str, hour: str, minute: str) -> float:
    return float(
        calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), 0, 0, 0, 0))
    )


def _parse_incucyte(m: re.Match[str], path: Path) -> dict[str, Any]:
    return {
        "plate": m["plate"],
        "well": m["well"],
        "field": int(m["field"]),
        "time_s": _epoch(m["y"], m["mo"], m["d"], m["h"], m["mi"]),
        "time_basis": "epoch",
    }


def _parse_incucyte_elapsed(m: re.Match[str], path: Path) -> dict[str, Any]:
    secs = int(m["d"]) * 86400 + int(m["h"]) * 3600 + int(m["mi"]) * 60
    return {
        "plate": m["plate"],
        "well": m["well"],
        "field": int(m["field"]),
        "time_s": float(secs),
        "time_basis": "elapsed",
    }


_TIMEPOINT_DIR = re.compile(r"^TimePoint_(\d+)$", re.IGNORECASE)


def _parse_imagexpress(m: re.Match[str], path: Path) -> dict[str, Any]:
    if m["thumb"]:
        raise IgnoredImageError(path, "MetaXpress thumbnail (_thumb), not an acquired image")
    out: dict[str, Any] = {"plate": m["plate"], "well": m["well"]}
    if m["field"]:
        out["field"] = int(m["field"])
    if m["channel"]:
        out["channel"] = int(m["channel"])
    for parent in path.parents:
        tp = _TIMEPOINT_DIR.match(parent.name)
        if tp:
            out["timepoint"] = int(tp.group(1))
            break
    return out


def _parse_operetta(m: re.Match[str], path: Path) -> dict[str, Any]:
    row, col = int(m["row"]), int(m["col"])
    if row < 1 or col < 1:
        raise UnresolvedImageError(path, f"Operetta row/column must start at 1, got r{row} c{col}")
    return {
        "well": well_from_index(row - 1, col - 1),
        "field": int(m["field"]),
        "channel": int(m["channel"]),
        "timepoint": int(m["timepoint"]),
    }


def _parse_cv7000(m: re.Match[str], path: Path) -> dict[str, Any]:
    return {
        "plate": m["plate"],
        "well": m["well"],
        "field": int(m["field"]),
        "timepoint": int(m["timepoint"]),
        "channel": int(m["channel"]),
    }


def _parse_cv1000(m: re.Match[str], path: Path) -> dict[str, Any]:
    # The CV1000 numbers wells (points) linearly; "well_columns" is applied in resolve().
    return {
        "well_index": int(m["well_index"]),
        "field": int(m["field"]),
        "timepoint": int(m["timepoint"]),
        "channel": int(m["channel"]),
    }


def _preset(name: str, regex: str, parse: Parser, example: str, description: str) -> Preset:
    return Preset(name, re.compile(regex, re.IGNORECASE), parse, example, description)


PRESETS: Mapping[str, Preset] = {
    p.name: p
    for p in (
        _preset(
            "incucyte",
            rf"(?P<plate>.+?)_(?P<well>{_WELL_TOKEN})_(?P<field>\d+)_"
            rf"(?P<y>\d{{4}})y(?P<mo>\d{{2}})m(?P<d>\d{{2}})d_(?P<h>\d{{2}})h(?P<mi>\d{{2}})m"
            rf"{_IMG_EXT}",
            _parse_incucyte,
            "VID123_A1_1_2023y05m12d_14h30m.tif",
            "Incucyte export: vessel_well_image_YYYYyMMmDDd_HHhMMm (date taken as UTC)",
        ),
        _preset(
            "incucyte-elapsed",
            rf"(?P<plate>.+?)_(?P<well>{_WELL_TOKEN})_(?P<field>\d+)_"
            rf"(?P<d>\d{{1,3}})d(?P<h>\d{{1,2}})h(?P<mi>\d{{1,2}})m{_IMG_EXT}",
            _parse_incucyte_elapsed,
            "VID123_B3_2_01d06h30m.tif",
            "Incucyte export with elapsed time: vessel_well_image_DDdHHhMMm",
        ),
        _preset(
            "imagexpress",
            r"(?P<plate>.+?)_(?P<well>[A-Za-z]{1,2}\d{2})(?:_s(?P<field>\d+))?"
            r"(?:_w(?P<channel>\d))?(?P<thumb>_thumb)?(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f-]{27})?"
            r"\.tiff?",
            _parse_imagexpress,
            "TimePoint_3/Plate1_A01_s2_w1.TIF",
            "ImageXpress/MetaXpress: plate_well_sN_wN[GUID].tif in TimePoint_N folders;"
            " _thumb files are ignored",
        ),
        _preset(
            "operetta",
            r"r(?P<row>\d{2})c(?P<col>\d{2})f(?P<field>\d{2,})p(?P<plane>\d{2,})"
            r"-ch(?P<channel>\d+)sk(?P<timepoint>\d+)fk\d+fl\d+\.tiff?",
            _parse_operetta,
            "r02c05f03p01-ch1sk4fk1fl1.tiff",
            "Operetta / Opera Phenix (Harmony export): rRRcCCfFFpPP-chNskTfkNflN;"
            " plate from the folder above Images/",
        ),
        _preset(
            "cellvoyager-cv7000",
            r"(?P<plate>.+?)_(?P<well>[A-Za-z]{1,2}\d{2})_T(?P<timepoint>\d{4})"
            r"F(?P<field>\d{3})L\d{2}A\d{2}Z\d{2}C(?P<channel>\d{2})\.tiff?",
            _parse_cv7000,
            "Plate1_B03_T0001F001L01A01Z01C01.tif",
            "Yokogawa CellVoyager CV7000/CV8000: plate_well_TtttFfffLllAaaZzzCcc",
        ),
        _preset(
            "cellvoyager-cv1000",
            r"W(?P<well_index>\d{4})F(?P<field>\d{4})T(?P<timepoint>\d{4})Z\d{3}"
            r"C(?P<channel>\d)\.tiff?",
            _parse_cv1000,
            "W0001F0002T0003Z001C1.tif",
            "Yokogawa CellVoyager CV1000: WwwwwFffffTttttZzzzCc; wells numbered row-major"
            " with `well_columns` columns (default 12, a 96-well plate)",
        ),
    )
}


def preset_names() -> list[str]:
    """Names of every file-name preset, in the order they are tried."""
    return list(PRESETS)


def select_presets(names: Iterable[str] | None) -> list[Preset]:
    """Presets by name (``None`` means all); unknown names raise :class:`ConfigError`."""
    if names is None:
        return list(PRESETS.values())
    chosen = []
    for n in names:
        if n not in PRESETS:
            raise ConfigError(
                f"presets: unknown file-name preset {n!r}; choose from {', '.join(PRESETS)}"
            )
        chosen.append(PRESETS[n])
    return chosen


# --------------------------------------------------------------------------- user regex

_USER_GROUPS = {"plate", "well", "row", "col", "field", "timepoint", "channel"}
_TIME_GROUPS = {"time_s": 1.0, "time_min": 60.0, "time_h": 3600.0}


def compile_user_regex(pattern: str) -> re.Pattern[str]:
    """Compile and check a user file-name regex; problems raise :class:`ConfigError`."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"user_regex: {pattern!r} is not a valid regular expression ({exc})"
        ) from None
    groups = set(rx.groupindex)
    unknown = groups - _USER_GROUPS - set(_TIME_GROUPS)
    if unknown:
        raise ConfigError(
            f"user_regex: unknown named group(s) {sorted(unknown)}; use "
            f"{sorted(_USER_GROUPS | set(_TIME_GROUPS))}"
        )
    if "well" not in groups and not {"row", "col"} <= groups:
        raise ConfigError(
            f"user_regex: {pattern!r} needs a (?P<well>...) group or both (?P<row>...) and "
            "(?P<col>...) groups"
        )
    return rx


def _user_evidence(rx: re.Pattern[str], path: Path) -> dict[str, Any] | None:
    m = rx.search(path.as_posix())
    if m is None:
        return None
    g = {k: v for k, v in m.groupdict().items() if v not in (None, "")}
    out: dict[str, Any] = {}
    if "plate" in g:
        out["plate"] = g["plate"]
    if "well" in g:
        out["well"] = g["well"]
    elif "row" in g and "col" in g:
        row_text = g["row"]
        row = int(row_text) - 1 if row_text.isdigit() else row_index(row_text)
        if row is None or row < 0 or not g["col"].isdigit():
            raise UnresolvedImageError(
                path, f"user_regex matched row={row_text!r} col={g['col']!r}, not a plate position"
            )
        out["well"] = well_from_index(row, int(g["col"]) - 1)
    for key in ("field", "timepoint", "channel"):
        if key in g:
            if not g[key].isdigit():
                raise UnresolvedImageError(
                    path, f"user_regex group {key!r} matched {g[key]!r}, expected digits"
                )
            out[key] = int(g[key])
    for key, scale in _TIME_GROUPS.items():
        if key in g:
            try:
                out["time_s"] = float(g[key]) * scale
            except ValueError:
                raise UnresolvedImageError(
                    path, f"user_regex group {key!r} matched {g[key]!r}, expected a number"
                ) from None
            out["time_basis"] = "elapsed"
            break
    return out


# --------------------------------------------------------------------------- resolve

_GENERIC_DIRS = re.compile(r"^(images?|timepoint_\d+|zstep_\d+)$", re.IGNORECASE)


def _plate_from_folders(path: Path) -> str | None:
    for parent in path.parents:
        if parent.name and not _GENERIC_DIRS.match(parent.name):
            return parent.name
    return None


class PlateMetaConfig(StrictModel):
    """How file names and metadata map to plate, well, field and time point."""

    presets: list[str] | None = Field(
        default=None,
        description="File-name presets to try, in order (None = all): " + ", ".join(PRESETS),
    )
    user_regex: str | None = Field(
        default=None,
        description="Regex with named groups plate, well (or row+col), field, timepoint, "
        "channel, time_s/time_min/time_h, searched in the full path (forward slashes).",
    )
    default_plate: str | None = Field(
        default=None, description="Plate name when no evidence names one (else the folder name)."
    )
    use_mtime: bool = Field(
        default=True, description="Use the file modification time when nothing gives a time."
    )
    well_columns: int = Field(
        default=12,
        ge=1,
        le=MAX_COLS,
        description="Columns of the plate, for instruments that number wells linearly (CV1000).",
    )

    @field_validator("presets")
    @classmethod
    def _known_presets(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            unknown = [n for n in v if n not in PRESETS]
            if unknown:
                raise ValueError(f"unknown preset(s) {unknown}; choose from {list(PRESETS)}")
        return v

    @field_validator("user_regex")
    @classmethod
    def _valid_regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                compile_user_regex(v)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v


def _same_well(a: object, b: object) -> bool | None:
    try:
        return normalise_well(str(a)) == normalise_well(str(b))
    except ValueError:
        return None


@dataclass
class _Evidence:
    values: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    tried: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    def add(self, source: str, found: Mapping[str, Any]) -> None:
        known, other = self.values.get("well"), found.get("well")
        if known is not None and other is not None and _same_well(known, other) is False:
            self.conflicts.append(f"{source} says well {other}, {self.sources[0]} says {known}")
        new = {k: v for k, v in found.items() if k not in self.values and v is not None}
        if "time_s" in new and "time_basis" not in new:
            new.pop("time_s")
        if "time_s" not in new:
            new.pop("time_basis", None)
        if new:
            self.values.update(new)
            self.sources.append(source)


def resolve(
    path: str | Path,
    *,
    ome_xml: str | None = None,
    user_regex: str | re.Pattern[str] | None = None,
    default_plate: str | None = None,
    presets: Iterable[str] | None = None,
    use_mtime: bool = True,
    well_columns: int = 12,
) -> ImageLocation:
    """Resolve where and when ``path`` was imaged; raise :class:`PlateMetadataError` if not.

    ``ome_xml`` is the OME-XML of the file (``ImageData.ome_xml``); ``presets`` names the
    file-name presets to try (``None``: all, ``[]``: none). Raises
    :class:`IgnoredImageError` (a PlateMetadataError) for instrument thumbnails.
    """
    p = Path(path)
    ev = _Evidence()

    if ome_xml:
        found, why = ome_evidence(ome_xml, p.name)
        ev.add("ome", found)
        ev.tried.append(f"OME-XML ({why})" if why else "OME-XML")
    else:
        ev.tried.append("OME-XML (none in file)")

    chosen = select_presets(presets)
    matched = False
    for preset in chosen:
        found_p = preset.match(p)
        if found_p is None:
            continue
        if "well_index" in found_p:
            idx = found_p.pop("well_index")
            if idx < 1:
                raise UnresolvedImageError(p, f"well index W{idx:04d} must start at 1")
            found_p["well"] = well_from_index((idx - 1) // well_columns, (idx - 1) % well_columns)
        ev.add(f"preset:{preset.name}", found_p)
        matched = True
        break
    if not matched:
        names = ", ".join(pr.name for pr in chosen) or "none selected"
        ev.tried.append(f"file-name presets ({names}: no match)")

    if user_regex is not None:
        rx = user_regex if isinstance(user_regex, re.Pattern) else compile_user_regex(user_regex)
        found_u = _user_evidence(rx, p)
        if found_u is None:
            ev.tried.append(f"user_regex {rx.pattern!r} (no match in {p.as_posix()!r})")
        else:
            ev.add("user_regex", found_u)
    else:
        ev.tried.append("user_regex (not configured)")

    well_raw = ev.values.get("well")
    if well_raw is None:
        raise UnresolvedImageError(p, "cannot tell the well of this image", ev.tried)
    try:
        well = normalise_well(str(well_raw))
    except ValueError as exc:
        raise UnresolvedImageError(p, f"bad well: {exc}", ev.tried) from None

    for conflict in ev.conflicts:
        log.warning("%s: conflicting well evidence, the first wins: %s", p, conflict)

    plate = ev.values.get("plate") or default_plate
    if not plate:
        plate = _plate_from_folders(p.resolve() if not p.is_absolute() else p)
        if plate:
            ev.sources.append("folder")
    if not plate:
        raise UnresolvedImageError(
            p,
            "cannot tell the plate; set default_plate or put the files in a plate folder",
            ev.tried,
        )

    time_s = ev.values.get("time_s")
    basis: TimeBasis | None = ev.values.get("time_basis")
    if time_s is None and use_mtime:
        try:
            time_s = p.stat().st_mtime
            basis = "mtime"
            ev.sources.append("mtime")
        except OSError:
            time_s = None

    return ImageLocation(
        plate=str(plate),
        well=well,
        field=int(ev.values.get("field", 1)),
        timepoint=ev.values.get("timepoint"),
        time_s=None if time_s is None else float(time_s),
        source="+".join(ev.sources),
        time_basis=basis,
        channel=ev.values.get("channel"),
    )


def resolve_many(
    paths: Iterable[str | Path],
    *,
    read_ome: bool = True,
    user_regex: str | None = None,
    default_plate: str | None = None,
    presets: Iterable[str] | None = None,
    use_mtime: bool = True,
    well_columns: int = 12,
) -> tuple[dict[Path, ImageLocation], dict[Path, PlateMetadataError]]:
    """Resolve every path; returns ``(resolved, errors)`` so a caller can report all failures.

    With ``read_ome`` the OME-XML of each TIFF is read from its header (not its pixels); an
    unreadable file is reported in ``errors``. Config problems (bad regex, unknown preset) raise
    :class:`ConfigError` at once.
    """
    from stemwatch.core.errors import ImageReadError
    from stemwatch.core.imaging import read_ome_xml

    rx = compile_user_regex(user_regex) if user_regex is not None else None
    preset_list = None if presets is None else list(presets)
    select_presets(preset_list)
    resolved: dict[Path, ImageLocation] = {}
    errors: dict[Path, PlateMetadataError] = {}
    for raw in paths:
        p = Path(raw)
        try:
            ome = read_ome_xml(p) if read_ome else None
        except ImageReadError as exc:
            errors[p] = UnresolvedImageError(p, f"cannot read OME-XML: {exc.reason}")
            continue
        try:
            resolved[p] = resolve(
                p,
                ome_xml=ome,
                user_regex=rx,
                default_plate=default_plate,
                presets=preset_list,
                use_mtime=use_mtime,
                well_columns=well_columns,
            )
        except PlateMetadataError as exc:
            errors[p] = exc
    return resolved, errors


def with_config(config: PlateMetaConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`resolve` from a :class:`PlateMetaConfig`."""
    return {
        "user_regex": config.user_regex,
        "default_plate": config.default_plate,
        "presets": config.presets,
        "use_mtime": config.use_mtime,
        "well_columns": config.well_columns,
    }


__all__ = [
    "PRESETS",
    "IgnoredImageError",
    "ImageLocation",
    "PlateMetaConfig",
    "Preset",
    "UnresolvedImageError",
    "compile_user_regex",
    "preset_names",
    "resolve",
    "resolve_many",
    "select_presets",
    "with_config",
]
