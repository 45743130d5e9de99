"""Small tables as one HTML block (``st.html``), for the plate page.

``st.dataframe`` draws with Streamlit's data grid, whose JavaScript the browser loads,
compiles and runs on every new visit: with Vega it was most of the plate page's first render
on 2 cores (issue 13). The plate page's two tables are short (a plate's onsets; the newest 8,
30 or 100 images of a well), so plain HTML shows them at a fraction of that: numbers
formatted, probabilities as bars, thumbnails as images, long file names wrapped, the header
kept in view while the table scrolls. Pure: tested directly; :func:`read` reads a table back.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

CSS = """
.sw-tablewrap { overflow: auto; border: 1px solid rgba(49, 51, 63, 0.1); border-radius: 0.5rem;
  margin-bottom: 0.5rem; }
.sw-table { border-collapse: collapse; font-size: 0.875rem; width: 100%; }
.sw-table th { position: sticky; top: 0; background: #f8f9fb; font-weight: 400;
  color: rgba(49, 51, 63, 0.7); text-align: left; z-index: 1; }
.sw-table th, .sw-table td { padding: 0.3rem 0.6rem;
  border-bottom: 1px solid rgba(49, 51, 63, 0.08); }
.sw-table td.num, .sw-table th.num { text-align: right; font-variant-numeric: tabular-nums; }
.sw-table td.text { overflow-wrap: anywhere; min-width: 3rem; }
.sw-table th[title] { text-decoration: underline dotted; cursor: help; }
.sw-table td.img { padding: 2px 0.4rem; }
.sw-table td.img img { display: block; width: 64px; height: 64px; object-fit: contain; }
.sw-bar { display: inline-block; width: 3.5rem; height: 0.45rem; border-radius: 0.25rem;
  background: rgba(49, 51, 63, 0.12); margin-right: 0.4rem; vertical-align: middle; }
.sw-bar i { display: block; height: 100%; border-radius: 0.25rem; background: #ff4b4b; }
"""

Kind = Literal["text", "number", "bar", "image"]


@dataclass(frozen=True)
class Column:
    """A column of :func:`table`: ``name`` in the frame; ``kind`` ``number`` (right-aligned,
    ``format``), ``bar`` (a value in [0, 1] as a bar and its number), ``image`` (a ``data:``
    URI; empty where None) or ``text``; ``help`` shows on hover over the header."""

    name: str
    kind: Kind = "text"
    format: str = ""
    help: str = ""


def table(frame: pd.DataFrame, columns: Sequence[Column], *, max_height: int = 0) -> str:
    """``frame``'s ``columns`` as one ``<table class="sw-table">`` (every value escaped),
    in a box that scrolls beyond ``max_height`` px (0: no limit)."""
    head = "".join(
        f'<th class="{_align(c)}"'
        + (f' title="{html.escape(c.help)}"' if c.help else "")
        + f">{html.escape(c.name)}</th>"
        for c in columns
    )
    body = []
    for values in zip(*(frame[c.name] for c in columns), strict=True):
        cells = "".join(_cell(c, v) for c, v in zip(columns, values, strict=True))
        body.append(f"<tr>{cells}</tr>")
    style = f' style="max-height: {int(max_height)}px"' if max_height else ""
    return (
        f'<div class="sw-tablewrap"{style}><table class="sw-table"><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _align(c: Column) -> str:
    return {"number": "num", "bar": "bar", "image": "img"}.get(c.kind, "text")


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _cell(c: Column, v: object) -> str:
    cls = _align(c)
    if _missing(v):
        return f'<td class="{cls}"></td>'
    if c.kind == "image":
        src, alt = html.escape(str(v)), html.escape(c.name)
        return f'<td class="{cls}"><img src="{src}" alt="{alt}"></td>'
    if c.kind == "bar":
        p = min(1.0, max(0.0, float(v)))  # type: ignore[arg-type]
        text = format(float(v), c.format or ".2f")  # type: ignore[arg-type]
        return (
            f'<td class="{cls}"><span class="sw-bar"><i style="width: {100 * p:.0f}%"></i>'
            f"</span>{text}</td>"
        )
    if c.kind == "number" and c.format:
        return f'<td class="{cls}">{format(float(v), c.format)}</td>'  # type: ignore[arg-type]
    return f'<td class="{cls}">{html.escape(str(v))}</td>'


_ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
_CELL = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>", re.S)
_IMG = re.compile(r'<img src="([^"]*)"')
_TAG = re.compile(r"<[^>]+>")


def read(block: str) -> pd.DataFrame:
    """The table of a block made by :func:`table`, as shown: text, an image's ``src``, None
    where a cell is empty."""
    rows = []
    for row in _ROW.findall(block):
        cells = []
        for cell in _CELL.findall(row):
            img = _IMG.search(cell)
            text = html.unescape(img.group(1) if img else _TAG.sub("", cell))
            cells.append(text if text else None)
        rows.append(cells)
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows[1:], columns=rows[0], dtype=object)
