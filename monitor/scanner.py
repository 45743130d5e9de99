"""Listing the watched folder: the startup scan and the periodic rescan.

Events can be dropped (a restart, an overflowing inotify queue, a re-mounted share); the scan
finds every image file so the daemon can queue those without a record. Unreadable sub-folders
and files vanishing mid-scan are skipped with a log line, never an exception.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from monitor.ignore import IgnoreFilter
from monitor.stability import FileStat

log = logging.getLogger(__name__)


def scan_folder(
    root: Path, accept: IgnoreFilter, *, recursive: bool = True
) -> Iterator[tuple[Path, FileStat, float]]:
    """Yield ``(path, stat, mtime_s)`` for each image file under ``root`` the filter accepts."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            log.warning("%s: folder vanished during the scan", folder)
            continue
        except OSError as exc:
            log.warning("%s: cannot list folder (%s); skipped", folder, exc.strerror or exc)
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive and accept.reason(path / "x.tif", root) is None:
                        stack.append(path)
                    continue
                if not entry.is_file():
                    continue
                if accept.reason(path, root) is not None:
                    continue
                st = entry.stat()
            except OSError as exc:
                log.debug("%s: skipped during scan (%s)", path, exc)
                continue
            yield path, FileStat.of(st), st.st_mtime
