"""The store's errors: every database problem reaches callers as a :class:`StoreError`."""

from __future__ import annotations

from stemwatch.core.errors import StemwatchError


class StoreError(StemwatchError):
    """The database cannot be opened, read or written (read-only, newer schema, missing...)."""


class StoreBusyError(StoreError):
    """Another writer held the database's lock for longer than the busy timeout."""


class StoreMissingError(StoreError):
    """There is no stemwatch database there yet (no file, or a server database without the
    schema): the daemon creates it on its first start."""
