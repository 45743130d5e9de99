"""Which instrument a call is about: one rule for every store function.

- Writes stamp :attr:`Database.writer <stemwatch.store.database.Database.writer>`: the handle's
  instrument, else this computer's host name.
- A daemon's own questions (already recorded?, its heartbeat, its current model, its alert
  checks) are about ``instrument=`` when given, else the handle's instrument; on a
  facility-wide handle, about every instrument (:func:`own`).
- A plate belongs to one instrument (two instruments may image plates of the same name): calls
  about one plate or well take ``instrument=``, else the handle's instrument, else the one
  instrument that imaged a plate of that name (:func:`plate_instrument`; a name on several
  instruments is then a :class:`StoreError` that asks for ``instrument=``).
- Listings (plates, onsets, alerts, recent images, heartbeats) cover every instrument unless
  ``instrument=`` narrows them.
"""

from __future__ import annotations

from stemwatch.store.database import Database
from stemwatch.store.errors import StoreError


def own(db: Database, instrument: str | None) -> str | None:
    """The instrument a daemon's own question is about (None: all of them)."""
    return instrument if instrument is not None else db.instrument


def plate_instrument(db: Database, plate: str, instrument: str | None = None) -> str:
    """The instrument whose plate ``plate`` is meant (see the module's rule)."""
    if instrument is not None:
        return instrument
    if db.instrument is not None:
        return db.instrument
    found = [
        str(r[0])
        for r in db.rows(
            "SELECT DISTINCT instrument FROM images WHERE plate = ? ORDER BY instrument",
            (plate,),
        )
    ]
    if len(found) > 1:
        raise StoreError(
            f"{db.source}: plate {plate!r} was imaged on {len(found)} instruments "
            f"({', '.join(found)}); say which with instrument="
        )
    return found[0] if found else db.writer


def list_instruments(db: Database) -> list[str]:
    """Every instrument with images or a heartbeat in the database, by name."""
    return sorted(
        {str(r[0]) for r in db.rows("SELECT DISTINCT instrument FROM images")}
        | {str(r[0]) for r in db.rows("SELECT instrument FROM heartbeat")}
    )
