"""Plate maps in the database: what each well holds, kept append-only.

Every import of a plate's map (:func:`save_plate_map`) is kept with who imported it, when and
from which file; a plate's map is its latest import (:func:`plate_map`), so importing a
corrected map replaces the old one in every view without deleting it
(:func:`plate_map_history`). Parsing lives in :mod:`stemwatch.core.platemap`.
"""

from __future__ import annotations

import json
import time
from typing import Any

from stemwatch.core.platemap import PlateMap, WellLayout
from stemwatch.store.connection import Database, snapshot, write
from stemwatch.store.records import PlateMapImport


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def save_plate_map(
    db: Database,
    plate_map: PlateMap,
    *,
    by: str,
    source: str | None = None,
    now: float | None = None,
) -> PlateMapImport:
    """Store ``plate_map`` as the plate's current map (earlier imports are kept)."""
    t = _now(now)

    def do(db: Database) -> PlateMapImport:
        import_id = int(
            db.scalar(
                "INSERT INTO plate_map_imports (plate, source, imported_by, imported_at) "
                "VALUES (?, ?, ?, ?) RETURNING id",
                (plate_map.plate, source, by, t),
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
        return PlateMapImport(import_id, plate_map.plate, source, by, t, len(plate_map.wells))

    return write(db, do)


def _import(r: Any) -> PlateMapImport:
    return PlateMapImport(
        id=int(r["id"]),
        plate=r["plate"],
        source=r["source"],
        imported_by=r["imported_by"],
        imported_at=float(r["imported_at"]),
        n_wells=int(r["n_wells"]),
    )


_IMPORTS = (
    "SELECT i.id, i.plate, i.source, i.imported_by, i.imported_at, "
    "(SELECT count(*) FROM plate_map_wells w WHERE w.import_id = i.id) AS n_wells "
    "FROM plate_map_imports i"
)


def plate_map_history(db: Database, plate: str) -> list[PlateMapImport]:
    """Every import of ``plate``'s map, newest (the current one) first."""
    return [
        _import(r) for r in db.rows(f"{_IMPORTS} WHERE i.plate = ? ORDER BY i.id DESC", (plate,))
    ]


def mapped_plates(db: Database) -> list[PlateMapImport]:
    """The current map import of every plate that has one, by plate name."""
    return [
        _import(r)
        for r in db.rows(
            f"{_IMPORTS} WHERE i.id = (SELECT max(id) FROM plate_map_imports j "
            "WHERE j.plate = i.plate) ORDER BY i.plate"
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


def plate_map(db: Database, plate: str, *, import_id: int | None = None) -> PlateMap | None:
    """``plate``'s current map (or the import ``import_id``), None when it has none."""
    with snapshot(db):
        if import_id is None:
            import_id = db.scalar("SELECT max(id) FROM plate_map_imports WHERE plate = ?", (plate,))
        if import_id is None:
            return None
        rows = db.rows(
            "SELECT * FROM plate_map_wells WHERE import_id = ? ORDER BY well", (import_id,)
        )
    return PlateMap(plate, tuple(_layout(r) for r in rows))
