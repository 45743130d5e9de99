"""Plate maps in the database: what each well holds, kept append-only.

Every import of a plate's map (:func:`save_plate_map`) is kept with who imported it, when and
from which file; a plate's map is its latest import (:func:`plate_map`), so importing a
corrected map replaces the old one in every view without deleting it
(:func:`plate_map_history`). Parsing lives in :mod:`stemwatch.core.platemap`.

A map belongs to a plate of one instrument, like the plate's images (the rule of
:mod:`stemwatch.store.instruments`); a map imported before the plate's first image, from a
computer whose name is not the instrument's, is still found while it is the only map of that
plate name.
"""

from __future__ import annotations

import json
import time
from typing import Any

from stemwatch.core.platemap import PlateMap, WellLayout
from stemwatch.store.connection import Database, snapshot, write
from stemwatch.store.instruments import plate_instrument
from stemwatch.store.records import PlateMapImport


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def save_plate_map(
    db: Database,
    plate_map: PlateMap,
    *,
    by: str,
    source: str | None = None,
    instrument: str | None = None,
    now: float | None = None,
) -> PlateMapImport:
    """Store ``plate_map`` as the plate's current map (earlier imports are kept)."""
    t = _now(now)

    def do(db: Database) -> PlateMapImport:
        who = plate_instrument(db, plate_map.plate, instrument)
        import_id = int(
            db.scalar(
                "INSERT INTO plate_map_imports (instrument, plate, source, imported_by, "
                "imported_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
                (who, plate_map.plate, source, by, t),
            )
        )
        db.executemany(
            "INSERT INTO plate_map_wells (import_id, well, condition, treatment, induction_s, "
            "induction_basis, role, notes, attributes_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    import_id,
                    w.well,
                    w.condition,
                    w.treatment,
                    w.induction_s,
                    w.induction_basis,
                    w.role,
                    w.notes,
                    json.dumps(dict(w.attributes), sort_keys=True),
                )
                for w in plate_map.wells
            ],
        )
        return PlateMapImport(
            import_id, plate_map.plate, source, by, t, len(plate_map.wells), instrument=who
        )

    return write(db, do)


def _import(r: Any) -> PlateMapImport:
    return PlateMapImport(
        id=int(r["id"]),
        plate=r["plate"],
        source=r["source"],
        imported_by=r["imported_by"],
        imported_at=float(r["imported_at"]),
        n_wells=int(r["n_wells"]),
        instrument=r["instrument"],
    )


_IMPORTS = (
    "SELECT i.id, i.instrument, i.plate, i.source, i.imported_by, i.imported_at, "
    "(SELECT count(*) FROM plate_map_wells w WHERE w.import_id = i.id) AS n_wells "
    "FROM plate_map_imports i"
)


def _map_instrument(db: Database, plate: str, instrument: str | None) -> str:
    """The instrument whose map of ``plate`` is meant: the plate's (the store's rule), else,
    when only one instrument has a map of that name, that one."""
    who = plate_instrument(db, plate, instrument)
    if instrument is not None or db.row(
        "SELECT 1 FROM plate_map_imports WHERE instrument = ? AND plate = ? LIMIT 1", (who, plate)
    ):
        return who
    others = [
        str(r[0])
        for r in db.rows(
            "SELECT DISTINCT instrument FROM plate_map_imports WHERE plate = ?", (plate,)
        )
    ]
    return others[0] if len(others) == 1 else who


def plate_map_history(
    db: Database, plate: str, *, instrument: str | None = None
) -> list[PlateMapImport]:
    """Every import of ``plate``'s map, newest (the current one) first."""
    with snapshot(db):
        who = _map_instrument(db, plate, instrument)
        return [
            _import(r)
            for r in db.rows(
                f"{_IMPORTS} WHERE i.instrument = ? AND i.plate = ? ORDER BY i.id DESC",
                (who, plate),
            )
        ]


def mapped_plates(db: Database, *, instrument: str | None = None) -> list[PlateMapImport]:
    """The current map import of every plate that has one (of ``instrument``, else of every
    instrument), by instrument and plate name."""
    where, params = ("", ()) if instrument is None else (" AND i.instrument = ?", (instrument,))
    return [
        _import(r)
        for r in db.rows(
            f"{_IMPORTS} WHERE i.id = (SELECT max(j.id) FROM plate_map_imports j "
            f"WHERE j.instrument = i.instrument AND j.plate = i.plate){where} "
            "ORDER BY i.instrument, i.plate",
            params,
        )
    ]


def _layout(r: Any) -> WellLayout:
    return WellLayout(
        well=r["well"],
        condition=r["condition"],
        treatment=r["treatment"],
        induction_s=r["induction_s"],
        induction_basis=r["induction_basis"],
        role=r["role"],
        notes=r["notes"],
        attributes=json.loads(r["attributes_json"] or "{}"),
    )


def plate_map(
    db: Database, plate: str, *, instrument: str | None = None, import_id: int | None = None
) -> PlateMap | None:
    """``plate``'s current map (or the import ``import_id``), None when it has none."""
    with snapshot(db):
        if import_id is None:
            import_id = db.scalar(
                "SELECT max(id) FROM plate_map_imports WHERE instrument = ? AND plate = ?",
                (_map_instrument(db, plate, instrument), plate),
            )
        if import_id is None:
            return None
        rows = db.rows(
            "SELECT * FROM plate_map_wells WHERE import_id = ? ORDER BY well", (import_id,)
        )
    return PlateMap(plate, tuple(_layout(r) for r in rows))
