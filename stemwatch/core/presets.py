"""File-name conventions of plate imagers: the resolver's presets, one record per convention.

Each :class:`Preset` is a regular expression over the *end* of a file's path (written with
forward slashes; most look at the file name only, a few at the folders above it too), the
index base of each number it reads (0 or 1), the strptime format of each date it reads, and
the documentation a user needs: real example names with the source each was taken from, what
is read, and the limits. ``docs/file-names.md`` is generated from this table
(:func:`markdown_table`; a test keeps the two in step).

The named groups every preset and the user regex share (:func:`read_groups` turns them into
values): ``plate``; ``well`` (``A01``, ``a1``, ``A - 01``, ``A_01``) or ``row`` + ``col``
(a row letter or number) or ``well_index`` (wells numbered row by row); ``field``,
``timepoint``, ``z``, ``channel`` (a number, or a name when it is not one) and
``channel_name``; an elapsed time as the sum of ``time_d``, ``time_h``, ``time_min``,
``time_s``, ``time_ms``; any group listed in ``time_formats`` is a date/time read with that
strptime format (naive times are read as UTC). Groups starting with ``_`` are read by the
preset's own ``finish`` step, or ignored. Every number comes out 1-based ("the instrument's
first field is field 1"), whatever base the instrument writes.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

from stemwatch.core.wells import MAX_COLS, normalise_well, row_index, well_from_index

NUMBERED = ("field", "timepoint", "z", "channel", "row", "col", "well_index")
ELAPSED = {"time_d": 86400.0, "time_h": 3600.0, "time_min": 60.0, "time_s": 1.0, "time_ms": 1e-3}
GROUPS = frozenset({"plate", "well", "channel_name", *NUMBERED, *ELAPSED})

_IMG = r"(?:\.ome)?\.(?:tiff?|png|jpe?g)"
_WELL = r"[A-Za-z]{1,2}\d{1,3}"


class GroupError(ValueError):
    """A group matched text that is not a valid value (the caller names the file)."""


def _number(name: str, text: str, base: int) -> int:
    if not text.isdigit():
        raise GroupError(f"group {name!r} matched {text!r}, expected digits")
    value = int(text) - base + 1
    if value < 1:
        raise GroupError(
            f"{name} {text} with a {base}-based convention is before the first {name}; "
            f"if this instrument counts {name}s from 0, declare index_base.{name}: 0"
        )
    return value


def _epoch(texts: list[str], formats: list[str]) -> float:
    joined, fmt = "|".join(texts), "|".join(formats)
    try:
        dt = datetime.strptime(joined, fmt)
    except ValueError as exc:
        raise GroupError(f"date/time {joined!r} does not fit the format {fmt!r} ({exc})") from None
    if dt.tzinfo is None:
        return float(calendar.timegm(dt.timetuple())) + dt.microsecond / 1e6
    return dt.astimezone(UTC).timestamp()


def read_groups(
    groups: Mapping[str, str | None],
    *,
    bases: Mapping[str, int] | None = None,
    time_formats: Mapping[str, str] | None = None,
    zero_is_none: frozenset[str] = frozenset(),
    well_columns: int | None = None,
) -> dict[str, Any]:
    """The values a match says: plate, well, numbers made 1-based, channel, time.

    ``groups`` is ``match.groupdict()`` (in pattern order); empty groups are absent. Raises
    :class:`GroupError` for a value that cannot be what the group says (the caller adds the
    file and the source).
    """
    bases = bases or {}
    time_formats = time_formats or {}
    g = {k: v for k, v in groups.items() if v not in (None, "") and not k.startswith("_")}
    out: dict[str, Any] = {}
    if "plate" in g:
        out["plate"] = g["plate"].strip()
    nums: dict[str, int] = {}
    for key in NUMBERED:
        if key not in g or (key in ("row", "channel") and not g[key].isdigit()):
            continue
        if key in zero_is_none and g[key].isdigit() and int(g[key]) == 0:
            continue
        nums[key] = _number(key, g[key], bases.get(key, 1))
    if "well" in g:
        text = re.sub(r"[^A-Za-z0-9]", "", g["well"])
        try:
            out["well"] = normalise_well(text)
        except ValueError as exc:
            raise GroupError(f"bad well {g['well']!r}: {exc}") from None
    elif "row" in g and "col" in nums:
        row_text = g["row"]
        row = nums["row"] - 1 if row_text.isdigit() else row_index(row_text)
        if row is None:
            raise GroupError(f"row {row_text!r} is not a plate row (A..AF or a number)")
        out["well"] = _well(row, nums["col"] - 1)
    elif "well_index" in nums:
        if well_columns is None:
            raise GroupError(
                f"well number {g['well_index']} counts wells row by row, which needs the "
                "plate's width: set plate.well_columns (12 for 96 wells, 24 for 384)"
            )
        idx = nums["well_index"] - 1
        out["well"] = _well(idx // well_columns, idx % well_columns)
    for key in ("field", "timepoint", "z", "channel"):
        if key in nums:
            out[key] = nums[key]
    name = g.get("channel_name")
    if name is None and "channel" in g and "channel" not in nums:
        name = g["channel"]  # a channel written as a name
    if name:
        out["channel_name"] = name.strip()
    elapsed = [float(g[k]) * scale for k, scale in ELAPSED.items() if k in g and _is_num(g[k])]
    stamps = [k for k in g if k in time_formats]
    if stamps:
        out["time_s"] = _epoch([g[k] for k in stamps], [time_formats[k] for k in stamps])
        out["time_basis"] = "epoch"
    elif elapsed:
        out["time_s"] = sum(elapsed)
        out["time_basis"] = "elapsed"
    return out


def _is_num(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        raise GroupError(f"elapsed time {text!r} is not a number") from None
    return True


def _well(row: int, col: int) -> str:
    try:
        if col >= MAX_COLS:
            raise ValueError(f"column {col + 1} is beyond the largest plate ({MAX_COLS} columns)")
        well = well_from_index(row, col)
        return normalise_well(well)
    except ValueError as exc:
        raise GroupError(
            f"row {row + 1}, column {col + 1} is not a plate position ({exc})"
        ) from None


# --------------------------------------------------------------------------- the record

Finish = Callable[[dict[str, Any], Mapping[str, str | None], PurePath], dict[str, Any]]


@dataclass(frozen=True)
class Example:
    """A real file name of a convention, and where it was seen."""

    name: str
    source: str


@dataclass(frozen=True)
class Preset:
    """One instrument's file-name convention (see the module docstring)."""

    name: str
    family: str
    tail: str  # regex over the end of the path (forward slashes), anchored at a "/"
    examples: tuple[Example, ...]
    reads: str
    limits: str = ""
    bases: Mapping[str, int] = field(default_factory=dict)
    time_formats: Mapping[str, str] = field(default_factory=dict)
    zero_is_none: frozenset[str] = frozenset()
    implied: Mapping[str, Any] = field(default_factory=dict)  # values the convention implies
    finish: Finish | None = None
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = re.compile(rf"(?:^|/)(?:{self.tail})\Z", re.IGNORECASE)
        object.__setattr__(self, "pattern", pattern)
        unknown = {
            g
            for g in self.pattern.groupindex
            if not g.startswith("_") and g not in GROUPS and g not in self.time_formats
        }
        if unknown:
            raise ValueError(f"preset {self.name}: unknown groups {sorted(unknown)}")

    @property
    def example(self) -> str:
        return self.examples[0].name

    def match(
        self, path: str | PurePath, *, well_columns: int | None = None
    ) -> dict[str, Any] | None:
        """What this convention reads from ``path`` (None when it does not apply).

        Raises :class:`GroupError` when the name fits but a value is impossible.
        """
        posix = path.as_posix() if isinstance(path, PurePath) else str(path).replace("\\", "/")
        m = self.pattern.search(posix)
        if m is None:
            return None
        groups = m.groupdict()
        found = read_groups(
            groups,
            bases=self.bases,
            time_formats=self.time_formats,
            zero_is_none=self.zero_is_none,
            well_columns=well_columns,
        )
        for key, value in self.implied.items():
            found.setdefault(key, value)
        if self.finish is not None:
            found = self.finish(found, groups, PurePath(posix))
        return found


# --------------------------------------------------------------------------- finishing steps


Groups = Mapping[str, str | None]


def _imagexpress(found: dict[str, Any], g: Groups, path: PurePath) -> dict[str, Any]:
    z = g.get("_z") or g.get("_z_folder")
    if z and int(z) > 0:  # ZStep_0 holds the projections MetaXpress exports: no plane
        found["z"] = int(z)
    return found


def _cellomics(found: dict[str, Any], g: Groups, path: PurePath) -> dict[str, Any]:
    if g.get("_o"):  # the "o" channel prefix: kept as a name, its base is undocumented
        found["channel_name"] = f"o{g['_o']}"
    return found


def _micromanager_14(found: dict[str, Any], g: Groups, path: PurePath) -> dict[str, Any]:
    if g.get("_t14") is not None:
        found["timepoint"] = int(g["_t14"] or "0") + 1
    if g.get("_z14") is not None:
        found["z"] = int(g["_z14"] or "0") + 1
    return found


def _gen5(found: dict[str, Any], g: Groups, path: PurePath) -> dict[str, Any]:
    roi = g.get("_roi")
    if roi and "field" in found:  # Cytation C10 regions: sites are numbered within each region
        found["field"] = int(roi) * 1000 + found["field"]
    return found


def _leica(found: dict[str, Any], g: Groups, path: PurePath) -> dict[str, Any]:
    fx, fy = g.get("_fx"), g.get("_fy")
    if fx is not None and fy is not None:  # the field grid position, X and Y from 0
        found["field"] = int(fy) * 1000 + int(fx) + 1
    return found


def _incell_new(found: dict[str, Any], g: Groups, path: PurePath) -> dict[str, Any]:
    ex, em = g.get("_ex"), g.get("_em")
    if ex and em:
        found["channel_name"] = f"{ex} - {em}"
    return found


# --------------------------------------------------------------------------- the table

_MOBIE = "MoBIE HCSPattern.java (mobie/mobie-viewer-fiji), the example in its comment"
_CP505 = "CellProfiler issue #505 'Microscope presets to add to Metadata modules'"
_FRACTAL = "fractal-tasks-core tests/test_unit_parse_metadata_from_filename.py (via spaCR's table)"

PRESET_LIST: tuple[Preset, ...] = (
    Preset(
        "incucyte",
        "Sartorius Incucyte (image export)",
        rf"(?P<plate>[^/]+?)(?:-(?P<channel_name>(?:Phase|Green|Red|Blue|NIR|Orange|Overlay)"
        rf"[A-Za-z]*))?_(?P<well>[A-Za-z]{{1,2}}\d{{1,2}})_(?P<field>\d+)_"
        rf"(?P<stamp>\d{{4}}y\d{{2}}m\d{{2}}d_\d{{2}}h\d{{2}}m){_IMG}",
        (
            Example(
                "VID123_A1_1_2023y05m12d_14h30m.tif",
                "Incucyte image export naming vessel_well_image_YYYYyMMmDDd_HHhMMm, as "
                "stemwatch's earlier preset read it (the vendor manual could not be consulted)",
            ),
            Example(
                "MiaPaCa2-PhaseOriginal_A2_1_2021y03m04d_06h40m.tif",
                "constructed: the MoBIE example below with the date form of the time stamp",
            ),
        ),
        "plate (vessel), well, field (image number), channel name (the -Phase/-Green... "
        "suffix of the vessel), acquisition date and time",
        "the time stamp has no zone: read as UTC (differences are exact)",
        bases={"field": 1},
        time_formats={"stamp": "%Yy%mm%dd_%Hh%Mm"},
    ),
    Preset(
        "incucyte-elapsed",
        "Sartorius Incucyte (export with elapsed time)",
        rf"(?P<plate>[^/]+?)(?:-(?P<channel_name>(?:Phase|Green|Red|Blue|NIR|Orange|Overlay)"
        rf"[A-Za-z]*))?_(?P<well>[A-Za-z]{{1,2}}\d{{1,2}})_(?P<field>\d+)_"
        rf"(?P<time_d>\d{{1,3}})d(?P<time_h>\d{{1,2}})h(?P<time_min>\d{{1,2}})m{_IMG}",
        (
            Example("VID123_B3_2_01d06h30m.tif", "Incucyte export naming with elapsed time"),
            Example("MiaPaCa2-PhaseOriginal_A2_1_03d06h40m.tif", _MOBIE),
        ),
        "plate (vessel), well, field, channel name, elapsed time since the first scan",
    ),
    Preset(
        "incucyte-archive",
        "Sartorius Incucyte (raw archive, EssenFiles/ScanData)",
        r"ScanData/(?P<stamp>\d{4}/\d{2}/\d{4})/(?P<plate>[^/]+)/"
        r"(?P<well>[A-Za-z]{1,2}\d{1,2})-(?P<field>\d+)-(?P<channel_name>C\d|Ph|P|[A-Z]\w*)"
        r"\.tiff?",
        (
            Example(
                "EssenFiles/ScanData/2107/15/1200/1248/A1-1-C1.tif",
                "the Incucyte archive "
                "layout EssenFiles/ScanData/YYMM/DD/HHMM/<vessel>/<well>-<image>-<channel>"
                ".tif, as parsed by Incucyte-to-OME-Zarr converters (IncucyteSource)",
            ),
            Example(
                "EssenFiles/ScanData/2505/16/1124/1248/B2-3-Ph.tif",
                "same source; channels "
                "C1, C2, P/Ph (phase), also in the MRI Incucyte_Exporter macro",
            ),
        ),
        "plate (the vessel id folder), well, field, channel (C1, C2, Ph), scan date and time "
        "from the YYMM/DD/HHMM folders",
        "the archive's TIFFs are pyramids: the full-resolution page 0 is analysed; the scan "
        "time has no zone (read as UTC)",
        time_formats={"stamp": "%y%m/%d/%H%M"},
    ),
    Preset(
        "imagexpress",
        "Molecular Devices ImageXpress / MetaXpress",
        r"(?:TimePoint_(?P<timepoint>\d+)/)?(?:ZStep_(?P<_z_folder>\d+)/)?"
        r"(?:(?P<plate>[^/]+?)_)?(?P<well>[A-Za-z]{1,2}\d{2})(?:_s(?P<field>\d+))?"
        r"(?:_w(?P<channel>\d))?(?:_z(?P<_z>\d+))?"
        r"\{?(?:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
        r"[0-9A-Fa-f]{12})?\}?\.tiff?",
        (
            Example(
                "TimePoint_3/Plate1_A01_s2_w1.TIF",
                "MetaXpress export layout "
                "(TimePoint_N folders; ezstitcher docs, microscope_formats)",
            ),
            Example("ABCD_A01_s1_w5b71ae91c-75e6-426c-8b41-71a5693784e3.tif", _CP505),
            Example(
                "ABCD_A01_s1b71ae91c-75e6-426c-8b41-71a5693784e3.tif",
                _CP505 + " (single channel: the GUID glued to _s1)",
            ),
            Example("MIP-2P-2sub_C05_s1_w146C9B2CD-0BB3-4B8A-9187-2805F4C90506.tif", _MOBIE),
            Example(
                "240124d3_B05_s151E1E486E-D339-44E8-9990-9A8894C2D5CA.tif",
                "faim-ipa issue #89 (site 15, GUID glued; the GUID's first block is always "
                "8 characters)",
            ),
            Example("A01_s1_w1_z1.tif", "ezstitcher docs (no plate prefix; z in the name)"),
        ),
        "plate (the name before the well, else the folder), well, site (field), wavelength "
        "(channel), z (_zN or a ZStep_N folder), time point (TimePoint_N folder)",
        "no _s: one site per well (field 1); ZStep_0 holds projections (z left empty); "
        "_thumb files are rejected as thumbnails",
        bases={"field": 1, "channel": 1, "timepoint": 1, "z": 1},
        implied={"field": 1},
        finish=_imagexpress,
    ),
    Preset(
        "operetta",
        "Revvity (PerkinElmer) Operetta / Opera Phenix (Harmony export)",
        r"r(?P<row>\d{2})c(?P<col>\d{2})f(?P<field>\d{2,})p(?P<z>\d{2,})(?:rc\d+)?"
        r"-ch(?P<channel>\d+)sk(?P<timepoint>\d+)fk\d+fl\d+\.tiff?",
        (
            Example(
                "r02c05f03p01-ch1sk4fk1fl1.tiff",
                "Harmony export naming r<row>c<col>f<field>p<plane>-ch<channel>sk<time>fk..fl..",
            ),
            Example("r01c01f04p01-ch1sk1fk1fl1.tiff", _MOBIE),
            Example(
                "r04c17f01p07-ch1sk1fk1fl1.tiff",
                "forum.image.sc thread 41647 (Operetta CLS), quoted in spaCR's preset table",
            ),
        ),
        "row, column, field, plane (z), channel, time point (sk); plate from the folder above "
        "Images/",
        bases={"row": 1, "col": 1, "field": 1, "z": 1, "channel": 1, "timepoint": 1},
    ),
    Preset(
        "opera-flex",
        "PerkinElmer Opera (.flex, one file per well)",
        r"(?P<row>\d{3})(?P<col>\d{3})(?P<field>\d{3})\.flex",
        (
            Example(
                "001001000.flex",
                "Bio-Formats FlexReader.getWell/getField: names "
                "RRRCCCFFF.flex, row and column from 1",
            ),
            Example("003012001.flex", "same rule"),
        ),
        "row, column, field (000: the file holds every field)",
        "a .flex is a TIFF: its first plane is analysed (field 1, channel 1 of the file); "
        "LuraWave-compressed .flex cannot be decoded (licensed codec)",
        bases={"row": 1, "col": 1, "field": 1},
        zero_is_none=frozenset({"field"}),
    ),
    Preset(
        "cellvoyager-cv7000",
        "Yokogawa CellVoyager CV7000 / CV8000",
        r"(?P<plate>[^/]+?)_(?P<well>[A-Za-z]{1,2}\d{2})_T(?P<timepoint>\d{4})F(?P<field>\d{3})"
        r"L\d{2}A\d{2}Z(?P<z>\d{2})C(?P<channel>\d{2})\.(?:tiff?|png)",
        (
            Example(
                "Plate1_B03_T0001F001L01A01Z01C01.tif",
                "CV7000 naming plate_well_TtttFfffLllAaaZzzCcc",
            ),
            Example("AssayPlate_Greiner_#655090_B02_T0001F004L01A01Z01C01.tif", _FRACTAL),
            Example(
                "20200812-CardiomyocyteDifferentiation14-Cycle1_B03_T0001F036L01A01Z18C01.png",
                _FRACTAL + " (the .png variant)",
            ),
        ),
        "plate, well, time point, field, z, channel",
        bases={"timepoint": 1, "field": 1, "z": 1, "channel": 1},
    ),
    Preset(
        "cellvoyager-cv1000",
        "Yokogawa CellVoyager CV1000 / CQ1",
        r"W(?P<well_index>\d+)F(?P<field>\d+)T(?P<timepoint>\d+)Z(?P<z>\d+)"
        r"C(?P<channel>\d)\.(?:tiff?|png)",
        (
            Example("W0001F0002T0003Z001C1.tif", "CV1000 naming WwwwwFffffTttttZzzzCc"),
            Example(
                "W0262F0001T0001Z000C2.tif",
                "CQ1 (forum.image.sc thread 52615, quoted in "
                "spaCR's preset table; Z000: a projection)",
            ),
            Example(
                "W1F001T0001Z01C1.tif",
                "Bio-Formats CellVoyagerReader SINGLE_TIFF_PATH_BUILDER W%dF%03dT%04dZ%02dC%d.tif",
            ),
        ),
        "well (numbered row by row with plate.well_columns columns), field, time point, z, channel",
        "the well number needs the plate's width: without plate.well_columns these images "
        "stay unplaced (a 96- and a 384-well plate number the same well differently)",
        bases={"well_index": 1, "field": 1, "timepoint": 1, "z": 1, "channel": 1},
        zero_is_none=frozenset({"z"}),
    ),
    Preset(
        "cellomics",
        "Thermo Cellomics ArrayScan / CellInsight (fixed end point)",
        r"(?:(?P<plate>[^/]+)_)?(?P<well>[A-Za-z]\d{2})f(?P<field>\d{1,3})"
        r"(?:d(?P<channel>\d)|o(?P<_o>\d))?\.(?:dib|c01|tiff?|png|jpe?g)",
        (
            Example("AS_09125_050116030001_D03f00d0.DIB", _CP505),
            Example(
                "WHICA-VTI1_090915160001_A01f00o1.DIB",
                "Bio-Formats CellomicsReader.java "
                "(comment: plate WHICA-VTI1_090915160001, well A01, field 00)",
            ),
            Example(
                "020506platerun_A01f01d2.TIF",
                "Cellomics ArrayScan VTI User's Guide "
                "Addendum, 'Image File Naming Convention for Fixed Endpoint Plates' "
                "(quoted in spaCR's preset table)",
            ),
        ),
        "plate (the unique plate id), well, field and dye (channel); .DIB/.C01 read natively",
        "field and dye count from 0 (f00 is field 1, d0 channel 1)",
        bases={"field": 0, "channel": 0},
        finish=_cellomics,
    ),
    Preset(
        "cellomics-kinetic",
        "Thermo Cellomics ArrayScan (kinetic plates)",
        r"(?P<plate>[^/]+?)i3t(?P<timepoint>\d{3})(?P<well>[A-Za-z]\d{2})f(?P<field>\d{2,3})"
        r"d(?P<channel>\d)\.(?:dib|c01|tiff?|png|jpe?g)",
        (
            Example(
                "020506plateruni3t001A01f01d2.TIF",
                "Cellomics Addendum, 'Image File "
                "Naming Convention for Kinetic Plates' (quoted in spaCR's preset table)",
            ),
        ),
        "plate, time point, well, field, dye",
        "time point counts from 1, field and dye from 0",
        bases={"timepoint": 1, "field": 0, "channel": 0},
    ),
    Preset(
        "scanr",
        "Olympus / Evident ScanR",
        r"(?P<well>[A-Za-z]{1,2}\d{1,2})--W\d{5}--P(?P<field>\d{5})--Z(?P<z>\d{5})"
        r"--T(?P<timepoint>\d{5})--(?P<channel_name>[^/]+?)\.tiff?",
        (
            Example(
                "data/A1--W00001--P00001--Z00000--T00000--Alexa 488.tif",
                "forum.image.sc thread 14872 'Olympus Scan^R metadata' (via spaCR); the W/P/Z/T "
                "blocks as Bio-Formats ScanrReader.getBlock writes them",
            ),
            Example(
                "data/B12--W00024--P00003--Z00002--T00010--DAPI.tif",
                "constructed with the same grammar",
            ),
        ),
        "well name, position (field), z, time point, channel name; plate from the folder "
        "above data/",
        "position counts from 1, z and time from 0 (Bio-Formats ScanrReader)",
        bases={"field": 1, "z": 0, "timepoint": 0},
    ),
    Preset(
        "incell",
        "GE / Cytiva IN Cell Analyzer",
        r"(?:(?P<plate>[^/]+?)_)?(?P<well>[A-Za-z]{1,2} - \d{1,2})\(fld (?P<field>\d+)"
        r"(?: wv (?P<channel_name>.+?))?(?: z (?P<z>\d+))?"
        r"(?: ?-? ?time (?P<timepoint>\d+) - (?P<time_ms>\d+) ?ms)?\)\.(?:tiff?|png)",
        (
            Example("A - 01(fld 2 wv Blue - FITC).tif", "CellProfiler issue #3725"),
            Example(
                "A - 01(fld 1 wv UV - DAPI z 3 time 2 - 2636ms).tif", "CellProfiler issue #3725"
            ),
            Example("A - 13(fld 2).tif", "CellProfiler issue #3725 (single channel)"),
            Example("A - 01(fld 1 wv Green - dsRed z 3).tif", _MOBIE),
            Example(
                "Plate1_A - 01(fld 1 wv 390 - Blue).tif", "PlateViewer README (prefix variant)"
            ),
        ),
        "well, field, channel (excitation - emission), z, time point and its elapsed ms",
        "plate from the folder (or the prefix before the well)",
        bases={"field": 1, "z": 1, "timepoint": 1},
    ),
    Preset(
        "incell-v7",
        "GE / Cytiva IN Cell Analyzer (7.2 full names)",
        r"(?P<row>[A-Za-z]{1,2})_(?P<col>\d{1,2})_f(?P<field>\d+)_c(?P<channel>\d+)"
        r"_x(?P<_ex>[^_/]+)_m(?P<_em>[^_/]+)_z(?P<z>\d+)_t(?P<timepoint>\d+)\.tiff?",
        (
            Example(
                "A_01_f2_c1_xUV_mDAPI_z3_t2.tif",
                "CellProfiler issue #3725 (IN Cell 7.2 preference for complete names)",
            ),
        ),
        "row, column, field, channel number and name, z, time point",
        bases={"col": 1, "field": 1, "channel": 1, "z": 1, "timepoint": 1},
        finish=_incell_new,
    ),
    Preset(
        "celigo",
        "Revvity (Nexcelom) Celigo",
        r"(?P<plate>[^/_]+)_Scan_(?P<stamp>\d{1,2}-\d{1,2}-\d{4}-\d{1,2}-\d{2}-\d{2}-[AP]M)"
        r"_Well_(?P<well>[A-Za-z]{1,2}\d{1,2})_Ch(?P<channel>\d+)(?:_-?\d+um)?\.tiff?",
        (
            Example(
                "3500001609_Scan_1-12-2018-6-03-16-AM_Well_F5_Ch1_-1um.tiff",
                "Allen Institute for Cell Science Celigo pipeline (CeligoUploader, example "
                "file name)",
            ),
            Example(
                "3500001609_Scan_1-12-2018-6-03-16-AM_Well_F5_Ch1.tiff",
                "constructed: the same name without the focus offset",
            ),
        ),
        "plate barcode, scan date and time, well, channel; a Celigo image is the whole well",
        "the scan time has no zone (read as UTC)",
        bases={"channel": 1},
        time_formats={"stamp": "%m-%d-%Y-%I-%M-%S-%p"},
        implied={"field": 1},
    ),
    Preset(
        "gen5",
        "Agilent BioTek Cytation / Lionheart (Gen5 export)",
        r"(?:\d{6}_\d{6}_(?P<plate>[^/]+)/)?(?P<well>[A-Za-z]{1,2}\d{1,2})(?:ROI(?P<_roi>\d+))?"
        r"_\d{2}_(?P<channel>\d)_(?P<field>\d{1,3})(?:Z(?P<z>\d+))?_(?P<channel_name>[^/]+?)"
        r"_(?P<timepoint>\d{3})\.tiff?",
        (
            Example(
                "A1_03_1_1_Bright Field_001.tif", "multiWellAnalysis README (a Cytation export)"
            ),
            Example(
                "B3_02_1_2Z1_Bright Field_001.tif",
                "Cellpose macro README: montage position 2, z index 1",
            ),
            Example(
                "210816_100259_Plate 1/A1_03_1_1Z2_Bright Field_001.tif",
                "a Gen5 export folder (date_time_plate) quoted in a spheroid-analysis script",
            ),
            Example(
                "A1ROI1_02_1_1_Bright Field_High Contrast_003.tif",
                "forum.image.sc thread 69372 (Cytation C10), quoted in spaCR's preset table",
            ),
        ),
        "well, channel number and name, field (montage position), z, time point (the last "
        "number); plate from a date_time_plate folder, else the folder",
        "z counts from 0 (Z0 is the first plane); C10 regions: field = ROI x 1000 + site",
        bases={"channel": 1, "field": 1, "z": 0, "timepoint": 1},
        finish=_gen5,
    ),
    Preset(
        "nikon-jobs",
        "Nikon NIS-Elements JOBS / HCA",
        r"(?:(?P<stamp>\d{8}_\d{6}_\d{3})__)?Well(?P<well>[A-Za-z]{1,2}\d{1,2})"
        r"(?:_Point(?:[A-Za-z]{1,2}\d{1,2})?_(?P<field>\d{4}))?_Channel(?P<channel_name>[^/]+?)"
        r"_Seq\d{4,}\.(?:tiff?|nd2)",
        (
            Example(
                "WellA01_PointA01_0000_ChannelCam-DIA DIC Master Screening_Seq0000.tiff",
                "plato example config (NIS-Elements file names)",
            ),
            Example(
                "20260728_143951_318__WellA01_PointA01_0000_ChannelCam-DIA DIC Master "
                "Screening_Seq0000.tiff",
                "same project, the time-stamped variant",
            ),
            Example(
                "WellA01_ChannelDAPI_Seq0001.nd2",
                "ZMB-UZH/omero-docker-extended, quoted in spaCR's preset table",
            ),
        ),
        "well, point index (field), channel name, the leading time stamp when present",
        "the point index counts from 0; without a point the field is unknown; .nd2 files are "
        "recorded as an unsupported format",
        bases={"field": 0},
        time_formats={"stamp": "%Y%m%d_%H%M%S_%f"},
    ),
    Preset(
        "leica-matrix",
        "Leica LAS AF / LAS X Matrix Screener",
        r"(?:image|I)--L\d+--S\d+--U(?P<col>\d+)--V(?P<row>\d+)--J\d+--E\d+--O\d+"
        r"--X(?P<_fx>\d+)--Y(?P<_fy>\d+)--T(?P<timepoint>\d+)--Z(?P<z>\d+)--C(?P<channel>\d+)"
        r"(?:\.ome)?\.(?:tiff?|png)",
        (
            Example(
                "image--L0000--S00--U00--V00--J08--E00--O00--X00--Y00--T0000--Z00--C00.ome.tif",
                "htmrenamer README (Leica MatrixScreener)",
            ),
            Example(
                "chamber--U01--V02/field--X01--Y00/image--L0000--S00--U01--V02--J15--E04"
                "--O01--X01--Y00--T0000--Z00--C01.ome.tif",
                "arve0/leicaexperiment test tree layout",
            ),
        ),
        "well from U (column) and V (row), field from the X/Y grid position, time point, z, "
        "channel",
        "U and V count from 0; U is the well's column and V its row as in arve0/"
        "leicaexperiment (image(): 'well_column ... Same as --U'); one source reads them the "
        "other way round: check one well of a new instrument; field = Y x 1000 + X + 1",
        bases={"col": 0, "row": 0, "timepoint": 0, "z": 0, "channel": 0},
        finish=_leica,
    ),
    Preset(
        "zen-scenes",
        "Zeiss ZEN (split scenes / image export of well plates)",
        r"[^/]+?-Scene-\d+-P(?P<field>\d+)-(?P<well>[A-Za-z]{1,2}\d{1,2})(?:-\d+)?"
        r"(?:_(?:s\d+)?(?:t(?P<timepoint>\d+))?(?:z(?P<z>\d+))?(?:c(?P<channel>\d+))?"
        r"(?:m\d+)?(?:_ORG)?)?(?:\.ome)?\.(?:tiff?|png|jpe?g|czi)",
        (
            Example(
                "Plate1-Blue-A-02-Scene-1-P2-E1-01.czi",
                "OME sample data downloads.openmicroscopy.org/images/Zeiss-CZI/idr0011",
            ),
            Example(
                "3500001004_100X_20170623_5-Scene-1-P24-E06.ome.tiff",
                "pytorch_fnet example data (Allen Institute, ZEN export)",
            ),
            Example(
                "Plate1-Blue-A-02-Scene-1-P2-E1-01_t3c1_ORG.tif",
                "constructed: that scene with the _t..c.._ORG suffix of ZEN image exports "
                "(seen as ..._t42c1_ORG.tif in analysis scripts)",
            ),
        ),
        "well (the scene's well), position (field), time point, z, channel of the export "
        "suffix; plate from the folder",
        "names without the well (only a scene number, e.g. x_s12c1_ORG.tif) stay unplaced: "
        "the scene-to-well map is inside the .czi; .czi files are recorded as unsupported",
        bases={"field": 1, "timepoint": 1, "z": 1, "channel": 1},
    ),
    Preset(
        "acquifer",
        "ACQUIFER Imaging Machine (IM03 / IM04)",
        r"(?:WE\d+---)?-?(?P<well>[A-Za-z]\d{3})--PO(?P<field>\d+)--LO(?P<timepoint>\d+)"
        r"--CO(?P<channel>\d+)--SL(?P<z>\d+)--PX\d+--PW\d+--IN\d+--TM\d+--X\d+--Y\d+--Z\d+"
        r"--T\d+(?:--WE\d+)?\.tiff?",
        (
            Example(
                "-A002--PO01--LO001--CO6--SL001--PX32500--PW0080--IN0020--TM281--X023590"
                "--Y011262--Z211710--T0200262822--WE00002.tif",
                "ACQUIFER Fiji examples, parseMetadata-im04.py",
            ),
            Example(
                "WE00020---B005--PO01--LO001--CO6--SL010--PX16250--PW0040--IN0020--TM246"
                "--X050299--Y019906--Z212275--T1375574652.tif",
                "ACQUIFER Fiji examples, parseMetadata-im03.ijm",
            ),
        ),
        "well, sub-position (field), loop (time point), channel, z slice",
        "the T block (a time in ms) is not read: times come from the file's mtime",
        bases={"field": 1, "timepoint": 1, "channel": 1, "z": 1},
    ),
    Preset(
        "micromanager-hcs",
        "Micro-Manager HCS (multi-position OME-TIFF stacks)",
        r"(?P<plate>[^/]+?)(?:_\d+)?_MMStack_(?P<well>[A-Za-z]{1,2}\d{1,2})-Site_(?P<field>\d+)"
        r"(?:_\d+)?(?:\.ome)?\.tiff?",
        (
            Example(
                "FishDev_WT_01_1_MMStack_A1-Site_0.ome.tif",
                "a zebrafish-development analysis repository's docs (HCS site names A1-Site_0)",
            ),
            Example(
                "VOC3_testtime_5050200_1_MMStack_A1-Site_0.ome.tif",
                "a sensor-array analysis script's example path",
            ),
        ),
        "plate (the acquisition name without Micro-Manager's _N run counter), well, site (field)",
        "sites count from 0; an MMStack file holds every channel and time point: the plane "
        "chosen by plate.channels / plate.z_plane at the first time point is analysed",
        bases={"field": 0},
    ),
    Preset(
        "micromanager-hcs-folders",
        "Micro-Manager HCS (one folder per site, single-image files)",
        r"(?P<well>[A-Za-z]{1,2}\d{1,2})-Site_(?P<field>\d+)/img_(?:channel(?P<channel>\d{3})"
        r"_position\d{3}_time(?P<timepoint>\d{9})_z(?P<z>\d{3})|(?P<_t14>\d{9})_"
        r"(?P<channel_name>[^/]+?)_(?P<_z14>\d{3}))\.tiff?",
        (
            Example(
                "A1-Site_0/img_channel000_position000_time000000000_z000.tif",
                "Micro-Manager 2 StorageSinglePlaneTiffSeries.createFileName (axes in "
                "alphabetical order), in a per-position folder named by the HCS site",
            ),
            Example(
                "B12-Site_3/img_000000004_Brightfield_000.tif",
                "constructed from Micro-Manager 1.4 names img_<time>_<channel>_<z>.tif",
            ),
        ),
        "well and site from the folder, channel, time point, z from the name",
        "every index counts from 0",
        bases={"field": 0, "channel": 0, "timepoint": 0, "z": 0},
        finish=_micromanager_14,
    ),
)

PRESETS: Mapping[str, Preset] = {p.name: p for p in PRESET_LIST}


def markdown_table() -> str:
    """The presets as the Markdown table of docs/file-names.md (family, examples, reads,
    limits)."""
    lines = [
        "| preset | family | example names (source) | what is read | limits |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in PRESET_LIST:
        examples = "<br>".join(f"`{e.name}` ({e.source})" for e in p.examples)
        bases = ", ".join(f"{k} from {v}" for k, v in p.bases.items())
        limits = p.limits + (f" (index bases: {bases})" if bases else "")
        lines.append(
            f"| `{p.name}` | {p.family} | {_cell(examples)} | {_cell(p.reads)} | "
            f"{_cell(limits) or '-'} |"
        )
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


if __name__ == "__main__":  # python -m stemwatch.core.presets: the table of docs/file-names.md
    print(markdown_table())
