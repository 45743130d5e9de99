"""Which paths in the watched folder are not worth a look: temporary and hidden files, and
files whose suffix is not an image's.

Instruments and operating systems leave temporary files, lock files and metadata beside the
images; none of them reaches the pipeline (silently: they come and go). Analysis outputs
(masks, thumbnails, correction images) and image formats that are not read *do* reach it:
the pipeline records them as skipped with the reason
(:mod:`stemwatch.core.filekinds`), so a user can see why they were not analysed.
Files without a suffix are let through and told apart by their first bytes.
:func:`ignore_reason` is pure (no file access).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath

# Matched case-insensitively against the file name.
BUILTIN_NAME_PATTERNS: tuple[str, ...] = (
    "~$*",  # Office-style lock files
    "~*",
    "*~",  # editor backups
    "*.tmp",
    "*.temp",
    "*.part",
    "*.partial",
    "*.filepart",
    "*.crdownload",
    "*.download",
    "*.swp",
    "*.lock",
    "*.!sync",
    "thumbs.db",
    "desktop.ini",
    "icon\r",
)
# Folders whose contents are never images to process (case-insensitive).
BUILTIN_DIR_NAMES = frozenset({"__macosx", "$recycle.bin", "system volume information", "@eadir"})


@dataclass(frozen=True)
class IgnoreFilter:
    """Decides whether a path under ``root`` is an image worth processing."""

    suffixes: frozenset[str]
    patterns: tuple[str, ...] = BUILTIN_NAME_PATTERNS
    dir_names: frozenset[str] = field(default=BUILTIN_DIR_NAMES)

    @classmethod
    def build(cls, suffixes: Iterable[str], extra_patterns: Sequence[str] = ()) -> IgnoreFilter:
        """``suffixes``: accepted suffixes, with or without the dot; ``""`` accepts names
        without a suffix."""
        normal = frozenset(
            s.lower() if s.startswith(".") or not s else f".{s.lower()}" for s in suffixes
        )
        extra = tuple(p.lower() for p in extra_patterns)
        return cls(suffixes=normal, patterns=BUILTIN_NAME_PATTERNS + extra)

    def reason(self, path: str | PurePath, root: str | PurePath | None = None) -> str | None:
        """Why ``path`` is ignored, or ``None`` when it should be processed."""
        p = PurePath(path)
        parts = p.parts
        if root is not None:
            try:
                parts = p.relative_to(root).parts
            except ValueError:
                parts = p.parts
        if not parts:
            return "not a file"
        name = parts[-1]
        for part in parts[:-1]:
            if part.startswith("."):
                return f"inside hidden folder {part!r}"
            if part.lower() in self.dir_names:
                return f"inside {part!r} folder"
        if name.startswith("."):
            return "hidden file"
        lower = name.lower()
        for pattern in self.patterns:
            if fnmatch.fnmatchcase(lower, pattern):
                return f"temporary or auxiliary name (matches {pattern!r})"
        suffix = PurePath(lower).suffix
        if suffix not in self.suffixes:
            return f"not an image suffix ({suffix or 'none'})"
        return None

    def accepts(self, path: str | PurePath, root: str | PurePath | None = None) -> bool:
        return self.reason(path, root) is None


def ignore_reason(
    path: str | Path, root: str | Path | None, suffixes: Iterable[str], extra: Sequence[str] = ()
) -> str | None:
    """Convenience wrapper: build a filter and ask it once."""
    return IgnoreFilter.build(suffixes, extra).reason(path, root)
