"""Resolving plate, well, field, time point, channel and z for each image.

Evidence, in this order (earlier evidence wins field by field, later evidence fills gaps, and
evidence that *disagrees about the well* places the image nowhere: nothing is ever put in a
wrong well):

1. **OME-XML** (from the TIFF itself): the ``WellSample`` whose ``ImageRef`` names this file's
   ``Image`` gives the well (``Row``/``Column``, 0-based in OME, or the ``Well`` ``Name``) and
   the plate (``Plate`` ``Name``; without one, the fallback below). The field is the
   WellSample's position in its Well (1-based) when the Well lists several, else its
   ``Index`` + 1. Time: ``AcquisitionDate`` (epoch seconds, UTC when no zone is given) plus
   the first ``Plane`` ``DeltaT`` (per the OME spec DeltaT counts from AcquisitionDate);
   ``DeltaT`` alone is elapsed time.
2. **File-name presets** (:mod:`stemwatch.core.presets`, one per instrument convention, with
   real example names and their sources; docs/file-names.md). Every selected preset is tried;
   two that read different wells make the name ambiguous.
3. **A user regular expression** (:class:`PlateMetaConfig`), searched in the whole path with
   forward slashes (so groups may capture folders), with index bases and date formats of its
   own. docs/file-names.md explains the groups and how to anchor it.
4. **The file's modification time**, for time only, once plate and well are known.

Plate falls back to ``default_plate``, then to the nearest parent folder whose name is not a
generic instrument folder (``Images``, ``data``, ``TimePoint_N``, ``ZStep_N``, Leica's
``field--``/``chamber--``/``slide--``). ``field``, ``timepoint``, ``z`` and ``channel`` are
1-based numbers whatever base the instrument writes; a field nobody states stays ``None``
(each such image is its own field, never merged with another). Wells are normalised (``A1``
== ``A01``; rows A–Z and AA–AF, columns 1–48). A file without a well raises
:class:`UnresolvedImageError` naming the file and every source tried. Analysis outputs
(masks, thumbnails, correction images: :func:`stemwatch.core.filekinds.non_image_output`)
raise :class:`IgnoredImageError` (a subclass).
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from stemwatch.core.config import StrictModel
from stemwatch.core.errors import ConfigError, PlateMetadataError
from stemwatch.core.filekinds import non_image_output
from stemwatch.core.paths import printable
from stemwatch.core.presets import (
    GROUPS,
    NUMBERED,
    PRESET_LIST,
    PRESETS,
    GroupError,
    Preset,
    read_groups,
)
from stemwatch.core.wells import MAX_COLS, normalise_well, well_from_index

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
    ``field`` is None when nothing states it. ``channel`` is the channel's number,
    ``channel_name`` its name, ``z`` the focal plane, each where the evidence says.
    ``source`` says which evidence was used, e.g. ``"ome"`` or ``"preset:incucyte+mtime"``.
    """

    plate: str
    well: str
    field: int | None
    timepoint: int | None
    time_s: float | None
    source: str
    time_basis: TimeBasis | None = None
    channel: int | None = None
    channel_name: str | None = None
    z: int | None = None


class UnresolvedImageError(PlateMetadataError):
    """Where an image was taken cannot be told from any evidence; names the file and sources."""

    def __init__(self, path: object, reason: str, tried: Sequence[str] = ()) -> None:
        self.path = printable(path)
        self.reason = reason
        self.tried = list(tried)
        tried_text = "; tried: " + ", ".join(self.tried) if self.tried else ""
        super().__init__(f"{self.path}: {reason}{tried_text}")


class IgnoredImageError(UnresolvedImageError):
    """The file is an analysis output or instrument by-product and must not be analysed."""


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


def preset_names() -> list[str]:
    """Names of every file-name preset, in the order they are tried."""
    return list(PRESETS)


def select_presets(names: Iterable[str] | None) -> list[Preset]:
    """Presets by name (``None`` means all); unknown names raise :class:`ConfigError`."""
    if names is None:
        return list(PRESET_LIST)
    chosen = []
    for n in names:
        if n not in PRESETS:
            raise ConfigError(
                f"presets: unknown file-name preset {n!r}; choose from {', '.join(PRESETS)}"
            )
        chosen.append(PRESETS[n])
    return chosen


# --------------------------------------------------------------------------- user regex


@dataclass(frozen=True)
class UserRegex:
    """A user's file-name regex with the index bases and date formats of its groups."""

    pattern: re.Pattern[str]
    bases: Mapping[str, int] = field(default_factory=dict)
    time_formats: Mapping[str, str] = field(default_factory=dict)

    def match(self, path: PurePath, *, well_columns: int | None = None) -> dict[str, Any] | None:
        m = self.pattern.search(path.as_posix())
        if m is None:
            return None
        return read_groups(
            m.groupdict(),
            bases=self.bases,
            time_formats=self.time_formats,
            well_columns=well_columns,
        )


def compile_user_regex(
    pattern: str,
    *,
    index_base: Mapping[str, int] | None = None,
    time_formats: Mapping[str, str] | None = None,
) -> UserRegex:
    """Compile and check a user file-name regex; problems raise :class:`ConfigError`."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"user_regex: {pattern!r} is not a valid regular expression ({exc})"
        ) from None
    formats = dict(time_formats or {})
    groups = set(rx.groupindex)
    unknown = {g for g in groups - GROUPS - set(formats) if not g.startswith("_")}
    if unknown:
        raise ConfigError(
            f"user_regex: unknown named group(s) {sorted(unknown)}; use {sorted(GROUPS)}, a "
            "group named in time_formats, or a name starting with _ for a group to ignore"
        )
    if "well" not in groups and not {"row", "col"} <= groups and "well_index" not in groups:
        raise ConfigError(
            f"user_regex: {pattern!r} needs a (?P<well>...) group, both (?P<row>...) and "
            "(?P<col>...), or (?P<well_index>...)"
        )
    missing = sorted(set(formats) - groups)
    if missing:
        raise ConfigError(
            f"time_formats: group(s) {missing} are not in user_regex {pattern!r}; name the "
            "date/time groups of the regex, e.g. (?P<stamp>\\d{8}_\\d{6}) with "
            "time_formats: {stamp: '%Y%m%d_%H%M%S'}"
        )
    for name, fmt in formats.items():
        if "%" not in fmt:
            raise ConfigError(
                f"time_formats.{name}: {fmt!r} has no % directive; use strftime codes such as "
                "'%Y-%m-%d_%H%M'"
            )
    bases = dict(index_base or {})
    for name, base in bases.items():
        if name not in NUMBERED:
            raise ConfigError(
                f"index_base: {name!r} is not a numbered group; use {', '.join(NUMBERED)}"
            )
        if base not in (0, 1):
            raise ConfigError(f"index_base.{name}: {base!r} must be 0 or 1")
    return UserRegex(rx, bases, formats)


# --------------------------------------------------------------------------- resolve

_GENERIC_DIRS = re.compile(
    r"^(images?|data|timepoint_\d+|zstep_\d+|field--.*|chamber--.*|slide--.*|"
    r"[a-z]{1,2}\d{1,3}-site_\d+)$",
    re.IGNORECASE,
)


def _plate_from_folders(path: PurePath) -> str | None:
    for parent in path.parents:
        if parent.name and not _GENERIC_DIRS.match(parent.name):
            return parent.name
    return None


_CHANNEL_ENTRY = re.compile(r"^\s*(\d+)\s*$")


class PlateMetaConfig(StrictModel):
    """How file names and metadata map to plate, well, field, time, channel and z."""

    presets: list[str] | None = Field(
        default=None,
        description="File-name presets to try (None = all; docs/file-names.md lists them):\n"
        + ", ".join(PRESETS),
    )
    index_base: dict[str, Literal[0, 1]] = Field(
        default_factory=dict,
        description="Index base of the user regex's numbers when not 1, e.g. {field: 0, col: 0}.",
    )
    time_formats: dict[str, str] = Field(
        default_factory=dict,
        description="strftime format of each date/time group of the user regex, e.g.\n"
        "{stamp: '%Y%m%d_%H%M%S'} (naive times are read as UTC).",
    )
    user_regex: str | None = Field(
        default=None,
        description=(
            "Regex with named groups plate, well (or row + col, or well_index), field,\n"
            "timepoint, z, channel, channel_name, time_d/time_h/time_min/time_s/time_ms, and\n"
            "date groups named in time_formats. Searched in the full path with forward\n"
            "slashes: anchor the file name with (?:^|/) ... $ (docs/file-names.md)."
        ),
    )
    examples: list[str] = Field(
        default_factory=list,
        description="Example file names (paths relative to the watched folder) that must\n"
        "resolve to a well; checked at startup (`stemwatch config monitor --check`).",
    )
    default_plate: str | None = Field(
        default=None, description="Plate name when no evidence names one (else the folder name)."
    )
    use_mtime: bool = Field(
        default=True, description="Use the file modification time when nothing gives a time."
    )
    well_columns: int | None = Field(
        default=None,
        ge=1,
        le=MAX_COLS,
        description="Columns of the plate (12 for 96 wells, 24 for 384), for instruments that\n"
        "number wells row by row (CV1000/CQ1, a user regex's well_index); without it such\n"
        "images stay unplaced rather than risk a wrong well.",
    )
    channels: list[str] | None = Field(
        default=None,
        description="Channels to analyse, by number or name (e.g. [1] or ['Bright Field',\n"
        "'Ph']); images of other channels are recorded as ignored. None = every image.",
    )
    z_plane: Literal["first", "middle", "last"] = Field(
        default="first",
        description="The focal plane analysed in a file that holds a z-stack (OME-TIFF).",
    )

    @field_validator("channels", mode="before")
    @classmethod
    def _channels_as_text(cls, v: object) -> object:
        if isinstance(v, (str, int)):
            v = [v]
        if isinstance(v, list):
            return [str(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in v]
        return v

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
    def _valid_regex(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None:
            try:
                compile_user_regex(
                    v,
                    index_base=info.data.get("index_base"),
                    time_formats=info.data.get("time_formats"),
                )
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _valid_examples(self) -> PlateMetaConfig:
        if self.user_regex is None and (self.index_base or self.time_formats):
            raise ValueError("index_base and time_formats apply to user_regex, which is not set")
        problems = []
        for name in self.examples:
            try:
                kwargs = {**with_config(self), "use_mtime": False}
                kwargs["default_plate"] = kwargs["default_plate"] or "(plate)"
                resolve(name, **kwargs)
            except PlateMetadataError as exc:
                problems.append(str(exc))
        if problems:
            raise ValueError("example name(s) do not resolve to a well: " + " | ".join(problems))
        return self


def channel_excluded(location: ImageLocation, channels: Sequence[str] | None) -> str | None:
    """Why an image of ``location`` is not analysed under ``plate.channels``, or None.

    An entry that is a number matches the channel number, any other the channel name
    (case-insensitive). An image whose channel nobody states is analysed.
    """
    if not channels or (location.channel is None and location.channel_name is None):
        return None
    for entry in channels:
        m = _CHANNEL_ENTRY.match(entry)
        if m is not None and location.channel == int(m.group(1)):
            return None
        if location.channel_name and entry.strip().lower() == location.channel_name.lower():
            return None
    which = " ".join(
        x for x in (
            f"{location.channel}" if location.channel is not None else "",
            f"({location.channel_name})" if location.channel_name else "",
        ) if x
    )  # fmt: skip
    return f"channel {which} is not among plate.channels {list(channels)}"


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
    errors: list[str] = field(default_factory=list)  # sources that fit but read nonsense

    def add(self, source: str, found: Mapping[str, Any]) -> None:
        known, other = self.values.get("well"), found.get("well")
        if known is not None and other is not None and _same_well(known, other) is False:
            first = next(s for s in self.sources if s != "folder")
            self.conflicts.append(f"{source} says well {other}, {first} says {known}")
            self.tried.append(f"{source} (well {other})")
            return
        new = {k: v for k, v in found.items() if k not in self.values and v is not None}
        if "time_s" in new and "time_basis" not in new:
            new.pop("time_s")
        if "time_s" not in new:
            new.pop("time_basis", None)
        if new:
            self.values.update(new)
            self.sources.append(source)
        else:
            self.tried.append(f"{source} (agrees, adds nothing)")


def resolve(
    path: str | Path,
    *,
    ome_xml: str | None = None,
    user_regex: str | UserRegex | None = None,
    index_base: Mapping[str, int] | None = None,
    time_formats: Mapping[str, str] | None = None,
    default_plate: str | None = None,
    presets: Iterable[str] | None = None,
    use_mtime: bool = True,
    well_columns: int | None = None,
) -> ImageLocation:
    """Resolve where and when ``path`` was imaged; raise :class:`PlateMetadataError` if not.

    ``ome_xml`` is the OME-XML of the file (``ImageData.ome_xml``); ``presets`` names the
    file-name presets to try (``None``: all, ``[]``: none). Raises
    :class:`IgnoredImageError` (a PlateMetadataError) for analysis outputs and thumbnails,
    :class:`UnresolvedImageError` when no evidence gives a well or the evidence disagrees.
    """
    p = Path(path)
    ignored = non_image_output(p)
    if ignored is not None:
        raise IgnoredImageError(p, ignored)
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
        try:
            found_p = preset.match(p, well_columns=well_columns)
        except GroupError as exc:
            ev.errors.append(f"preset {preset.name}: {exc}")
            ev.tried.append(f"preset:{preset.name} (fits, but {exc})")
            matched = True
            continue
        if found_p is None:
            continue
        ev.add(f"preset:{preset.name}", found_p)
        matched = True
    if not matched:
        names = ", ".join(pr.name for pr in chosen) or "none selected"
        ev.tried.append(f"file-name presets ({names}: no match)")

    if user_regex is not None:
        rx = (
            user_regex
            if isinstance(user_regex, UserRegex)
            else compile_user_regex(user_regex, index_base=index_base, time_formats=time_formats)
        )
        try:
            found_u = rx.match(p, well_columns=well_columns)
        except GroupError as exc:
            ev.errors.append(f"user_regex: {exc}")
            ev.tried.append(f"user_regex (fits, but {exc})")
        else:
            if found_u is None:
                ev.tried.append(
                    f"user_regex {rx.pattern.pattern!r} (no match in {printable(p.as_posix())!r})"
                )
            else:
                ev.add("user_regex", found_u)
    else:
        ev.tried.append("user_regex (not configured)")

    if ev.conflicts:
        raise UnresolvedImageError(
            p,
            "conflicting well evidence, so the image is placed in no well: "
            + "; ".join(ev.conflicts)
            + " (choose the right source with plate.presets or plate.user_regex)",
            ev.tried,
        )
    well_raw = ev.values.get("well")
    if well_raw is None:
        reason = ev.errors[0] if ev.errors else "cannot tell the well of this image"
        raise UnresolvedImageError(p, reason, ev.tried)
    try:
        well = normalise_well(str(well_raw))
    except ValueError as exc:
        raise UnresolvedImageError(p, f"bad well: {exc}", ev.tried) from None

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
        plate=str(printable(plate)),
        well=well,
        field=ev.values.get("field"),
        timepoint=ev.values.get("timepoint"),
        time_s=None if time_s is None else float(time_s),
        source="+".join(ev.sources),
        time_basis=basis,
        channel=ev.values.get("channel"),
        channel_name=ev.values.get("channel_name"),
        z=ev.values.get("z"),
    )


def explain(path: str | Path, **kwargs: Any) -> list[str]:
    """What each source reads from ``path`` and the result, one line each (``--try-name``).

    Takes :func:`resolve`'s keywords; never raises for a file that does not resolve.
    """
    p = Path(path)
    lines = [f"name: {printable(p.as_posix())}"]
    well_columns = kwargs.get("well_columns")
    for preset in select_presets(kwargs.get("presets")):
        try:
            found = preset.match(p, well_columns=well_columns)
        except GroupError as exc:
            lines.append(f"  preset {preset.name}: matches but {exc}")
            continue
        if found is not None:
            lines.append(f"  preset {preset.name}: {_fields(found)}")
    rx = kwargs.get("user_regex")
    if rx is not None:
        try:
            compiled = (
                rx
                if isinstance(rx, UserRegex)
                else compile_user_regex(
                    rx, index_base=kwargs.get("index_base"), time_formats=kwargs.get("time_formats")
                )
            )
            found_u = compiled.match(p, well_columns=well_columns)
            lines.append("  user_regex: " + ("no match" if found_u is None else _fields(found_u)))
        except (GroupError, ConfigError) as exc:
            lines.append(f"  user_regex: {exc}")
    try:
        loc = resolve(p, **{**kwargs, "use_mtime": False})
    except PlateMetadataError as exc:
        reason = getattr(exc, "reason", str(exc))
        lines.append(f"  => not placed: {reason}")
        return lines
    parts = [f"plate {loc.plate}", f"well {loc.well}"]
    for key in ("field", "timepoint", "z", "channel", "channel_name"):
        value = getattr(loc, key)
        if value is not None:
            parts.append(f"{key} {value}")
    if loc.time_s is not None:
        parts.append(f"time {_time_text(loc.time_s, loc.time_basis)}")
    lines.append(f"  => {', '.join(parts)} (from {loc.source})")
    return lines


def _time_text(t: float, basis: str | None) -> str:
    if basis == "elapsed":
        return f"{t / 3600:.2f} h elapsed"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _fields(found: Mapping[str, Any]) -> str:
    shown = []
    for key, value in found.items():
        if key == "time_basis":
            continue
        text = _time_text(value, found.get("time_basis")) if key == "time_s" else value
        shown.append(f"{key}={text}")
    return ", ".join(shown) or "(nothing)"


def resolve_many(
    paths: Iterable[str | Path],
    *,
    read_ome: bool = True,
    user_regex: str | None = None,
    default_plate: str | None = None,
    presets: Iterable[str] | None = None,
    use_mtime: bool = True,
    well_columns: int | None = None,
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
        "index_base": dict(config.index_base),
        "time_formats": dict(config.time_formats),
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
    "UserRegex",
    "channel_excluded",
    "compile_user_regex",
    "explain",
    "preset_names",
    "resolve",
    "resolve_many",
    "select_presets",
    "with_config",
]
