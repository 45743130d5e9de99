"""The store's errors: every database problem reaches callers as a :class:`StoreError`."""

from __future__ import annotations

from stemwatch.core.errors import StemwatchError


class StoreError(StemwatchError):
    """The database cannot be opened, read or written (read-only, newer schema, missing...)."""


class StoreBusyError(StoreError):
    """Another writer held the database's lock for longer than the busy timeout."""
