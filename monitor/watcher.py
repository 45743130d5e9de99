"""Filesystem events as hints: watchdog observers feeding a thread-safe inbox.

The event thread only puts ``(kind, path)`` on a queue; it never stats or reads files. Created,
modified, closed-after-write and moved-into-place events all mean "look at this path again
soon"; deletions and moves away mean "forget it". inotify (``Observer``) is the default; a
``PollingObserver`` serves network shares, where inotify sees nothing.
"""

from __future__ import annotations

import logging
import os
import queue
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

log = logging.getLogger(__name__)

HintKind = Literal["touch", "gone", "rescan"]


@dataclass(frozen=True)
class Hint:
    """Something happened to ``path``: look again (touch), forget it (gone), or rescan."""

    kind: HintKind
    path: Path


class HintHandler(FileSystemEventHandler):
    """Translates watchdog events into :class:`Hint` items on ``inbox`` (no file access)."""

    def __init__(self, inbox: queue.Queue[Any]) -> None:
        super().__init__()
        self.inbox = inbox

    def _put(self, kind: HintKind, path: str | bytes) -> None:
        text = os.fsdecode(path)  # bytes that are not UTF-8 survive as surrogates
        self.inbox.put(Hint(kind, Path(text)))

    def on_any_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileMovedEvent):
            self._put("gone", event.src_path)
            self._put("touch", event.dest_path)
        elif isinstance(event, (FileCreatedEvent, FileModifiedEvent, FileClosedEvent)):
            self._put("touch", event.src_path)
        elif isinstance(event, FileDeletedEvent):
            self._put("gone", event.src_path)
        elif isinstance(event, DirMovedEvent):
            # a folder renamed into place: its files produced no events of their own
            self._put("rescan", event.dest_path)
        elif isinstance(event, (DirCreatedEvent, DirDeletedEvent)):
            # files written into a new folder before its watch was added raise no events
            self._put("rescan", event.src_path)


def start_observer(
    folder: Path,
    inbox: queue.Queue[Any],
    *,
    polling: bool,
    polling_interval_s: float = 1.0,
    recursive: bool = True,
) -> Any:
    """Start a watchdog observer on ``folder``; returns it (call ``stop_observer`` later)."""
    if polling:
        from watchdog.observers.polling import PollingObserver

        observer: Any = PollingObserver(timeout=polling_interval_s)
    else:
        from watchdog.observers import Observer

        observer = Observer()
    observer.daemon = True
    observer.schedule(HintHandler(inbox), str(folder), recursive=recursive)
    observer.start()
    log.info(
        "watching %s with %s%s",
        folder,
        type(observer).__name__,
        f" every {polling_interval_s:g} s" if polling else "",
    )
    return observer


def stop_observer(observer: Any, timeout_s: float = 5.0) -> None:
    """Stop and join an observer and its emitter threads; never raises."""
    if observer is None:
        return
    try:
        observer.stop()
        observer.join(timeout_s)
    except Exception as exc:  # a vanished folder can make the emitter fail on stop
        log.debug("observer stop: %s", exc)
