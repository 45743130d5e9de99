"""File names as text that is safe to store, log and show.

A POSIX file name is bytes. Python decodes the bytes that are not UTF-8 into lone surrogates
(``os.fsdecode``), which SQLite refuses to store and a UTF-8 journal refuses to write; a name
may also hold a newline or other control characters, which split a log line (a file named
``x\\n2026-01-01 ERROR forged.tif`` would forge a log entry). Two functions:

* :func:`path_text`: the text a path is stored under. Identical to ``str(path)`` for every
  valid UTF-8 name; bytes that are not UTF-8 become ``\\xNN`` escapes, so the same file always
  maps to the same text and a restart finds its record again.
* :func:`printable`: text for one line of a log or a message: control characters and
  undecodable bytes escaped (``\\n``, ``\\x1b``, ``\\xe4``), everything else unchanged.
"""

from __future__ import annotations

import os
from pathlib import PurePath

# C0 and C1 control characters, DEL, and the line/paragraph separators some viewers break on
_ESCAPES = {i: f"\\x{i:02x}" for i in [*range(0x20), 0x7F, *range(0x80, 0xA0)]}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"})


def path_text(path: str | PurePath) -> str:
    """``path`` as storable UTF-8 text: bytes that are not UTF-8 become ``\\xNN`` escapes."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", errors="backslashreplace")
    return text


def printable(text: object) -> str:
    """``str(text)`` on one line: control characters and undecodable bytes escaped."""
    s = os.fspath(text) if isinstance(text, PurePath) else str(text)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of a file name: show them as \xNN
        s = "".join(_escape_surrogate(ch) for ch in s)
    return s.translate(_ESCAPES)


def _escape_surrogate(ch: str) -> str:
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte os.fsdecode could not decode
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return f"\\u{code:04x}"
    return ch
