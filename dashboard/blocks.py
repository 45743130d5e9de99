"""Server-drawn figures on the page: the plate you click a well on, and plain drawings.

Streamlit's ``st.html`` strips SVG, and ``st.markdown`` would run a large SVG through its
Markdown parser; Vega (``st.altair_chart``) costs the browser most of a first render on 2
cores (issue 13). One small ``st.components.v2`` component instead puts the SVG of
:mod:`dashboard.drawing` into the page as it is (no iframe, no Vega) and, for the plate,
sends the clicked well back to the script: a click (or Enter or Space on a focused cell;
arrow keys move between cells) triggers ``well``, and the ``on_pick`` callback runs before
the next script run, like any widget's. Hovering over a mark shows its ``data-tip`` (one
tooltip box for the drawing: a ``<title>`` per mark would add two DOM nodes to each of a
long series' hundreds of dots). The drawings are built from escaped text only
(:mod:`dashboard.drawing` escapes every value from the database).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import streamlit as st

COMPONENT = "stemwatch_figure"

JS = """
const STEP = {ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0]};
export default function (component) {
  const {data, parentElement, setTriggerValue} = component;
  let host = parentElement.querySelector(":scope > .sw-host");
  if (!host) {
    host = document.createElement("div");
    host.className = "sw-host";
    parentElement.appendChild(host);
  }
  host.innerHTML = data.html;
  // hover: the mark's data-tip in a box by the pointer (one box, not a <title> per mark)
  const tip = document.createElement("div");
  tip.className = "sw-tip";
  tip.hidden = true;
  host.appendChild(tip);
  host.onmousemove = (e) => {
    const mark = e.target.closest("[data-tip]");
    tip.hidden = !mark;
    if (!mark) return;
    tip.textContent = mark.dataset.tip;
    const left = e.clientX > window.innerWidth - 280;
    tip.style.left = left ? "" : `${e.clientX + 14}px`;
    tip.style.right = left ? `${window.innerWidth - e.clientX + 14}px` : "";
    tip.style.top = `${e.clientY + 14}px`;
  };
  host.onmouseleave = () => { tip.hidden = true; };
  if (!data.pick) return;
  const pick = (cell) => {
    for (const c of host.querySelectorAll(".sw-picked")) c.classList.remove("sw-picked");
    cell.classList.add("sw-picked");
    setTriggerValue("well", cell.dataset.well);
  };
  host.onclick = (e) => {
    const cell = e.target.closest("[data-well]");
    if (cell) pick(cell);
  };
  host.onkeydown = (e) => {
    const cell = e.target.closest("[data-well]");
    if (!cell) return;
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      pick(cell);
      return;
    }
    const step = STEP[e.key];
    const next = step && host.querySelector(
      `[data-row="${+cell.dataset.row + step[0]}"][data-col="${+cell.dataset.col + step[1]}"]`);
    if (next) {
      e.preventDefault();
      cell.tabIndex = -1;
      next.tabIndex = 0;
      next.focus();
    }
  };
}
"""

CSS = """
.sw-host { font-family: inherit; }
.sw-host svg { overflow: visible; font-size: 12px; }
.sw-host .ax { font-size: 12px; fill: #31333f; }
.sw-host .axt { font-size: 12px; font-weight: 600; fill: #31333f; }
.sw-plate [role="button"] { cursor: pointer; }
.sw-plate [role="button"]:hover .c, .sw-plate [role="button"]:focus .c,
.sw-plate .sw-picked .c { stroke: #31333f; stroke-width: 2; }
.sw-plate [role="button"]:focus { outline: none; }
.sw-plate .sw-well text, .sw-plate .ring { pointer-events: none; }
.sw-series { display: flex; width: 100%; padding-right: 12px; box-sizing: border-box; }
.sw-series .sw-plot { flex: 1 1 0; min-width: 0; display: block; }
.sw-series .dot:hover, .sw-series .mk:hover { r: 5; }
.sw-tip { position: fixed; z-index: 1000; pointer-events: none; white-space: pre-line;
  background: white; color: #31333f; border: 1px solid rgba(49, 51, 63, 0.2);
  border-radius: 0.4rem; padding: 0.35rem 0.6rem; font-size: 12px; line-height: 1.45;
  box-shadow: 0 2px 8px rgba(0, 0, 0, 0.15); max-width: 22rem; }
"""


@functools.cache
def _component() -> Any:
    """The component, registered once per process (and by Streamlit on each runtime it
    mounts in: AppTest makes one per test)."""
    return st.components.v2.component(COMPONENT, js=JS, css=CSS, isolate_styles=False)


def plate_picker(svg: str, *, key: str, on_pick: Callable[[], None]) -> None:
    """The plate drawing ``svg`` (:func:`dashboard.drawing.plate_svg`); a click on a well
    calls ``on_pick`` before the next run, with ``st.session_state[key]["well"]`` set."""
    _component()(key=key, data={"html": svg, "pick": True}, on_well_change=on_pick)


def picked(key: str) -> str | None:
    """The well just clicked on the plate drawn with ``key`` (in ``on_pick``), else None."""
    try:
        well = st.session_state[key]["well"]
    except (KeyError, TypeError):
        return None
    return str(well) if well else None


def figure(markup: str, *, key: str) -> None:
    """A drawing (SVG or HTML of :mod:`dashboard.drawing`) as it is."""
    _component()(key=key, data={"html": markup, "pick": False})
