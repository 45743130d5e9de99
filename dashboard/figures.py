"""A row of key figures (label, value, help on hover) as one HTML element.

``st.metric`` in ``st.columns`` costs the browser two Streamlit elements and a column block
per figure (the plate page had 9 figures in 20 elements); each element is a WebSocket message
and a React subtree, and the browser's share of the first render is most of it (issue 13).
One ``st.html`` block draws the same figures. Pure: tested directly, and the tests read the
figures back with :func:`read`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# the figures' look, close to st.metric's; sent once per page with the page's CSS
CSS = """
.sw-figs { display: flex; flex-wrap: wrap; gap: 0.4rem 2.2rem; margin: 0.2rem 0 0.6rem; }
.sw-fig { display: flex; flex-direction: column; min-width: 6rem; }
.sw-fig span { font-size: 0.875rem; opacity: 0.75; }
.sw-fig b { font-size: 1.75rem; font-weight: 400; line-height: 1.3; }
.sw-fig[title] span { text-decoration: underline dotted; cursor: help; }
"""


@dataclass(frozen=True)
class Figure:
    label: str
    value: object
    help: str = ""


def row(figures: list[Figure]) -> str:
    """The figures as one HTML block (escaped; ``help`` shows on hover)."""
    cells = []
    for f in figures:
        title = f' title="{html.escape(f.help)}"' if f.help else ""
        cells.append(
            f'<div class="sw-fig"{title}><span>{html.escape(f.label)}</span>'
            f"<b>{html.escape(str(f.value))}</b></div>"
        )
    return f'<div class="sw-figs">{"".join(cells)}</div>'


_CELL = re.compile(r'<div class="sw-fig"(?: title="[^"]*")?><span>(.*?)</span><b>(.*?)</b></div>')


def read(block: str) -> dict[str, str]:
    """The figures of a block made by :func:`row`: label to value (unescaped)."""
    return {html.unescape(k): html.unescape(v) for k, v in _CELL.findall(block)}
