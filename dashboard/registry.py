"""The views of the dashboard and the registry the page shell draws from.

A view is a function ``render(ctx)`` of a :class:`dashboard.context.Context`: it reads through
:mod:`dashboard.reads` (cached store reads), shapes with :mod:`dashboard.data`, draws with
:mod:`dashboard.plots`. To add one write ``dashboard/views/NAME.py`` with a
``render`` and append a :class:`View` to :data:`VIEWS`; it gets a place in the sidebar and an
address (``?view=NAME``). Issue 10 added ``labels`` and ``models``.

A view's module is imported when the view is first drawn: the plate page, drawn first, then
does not import the Altair charts of the other views (issue 13: the first render; the
server imports them all before it reports ready, :mod:`dashboard.serve`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from dashboard.context import Context


@dataclass(frozen=True)
class View:
    key: str  # in the address: ?view=KEY (and its module: dashboard/views/KEY.py)
    title: str
    needs_plate: bool = True  # shows one plate (the sidebar's)
    live: bool = True  # re-drawn at every auto-refresh (else only on interaction)
    help: str = ""

    @property
    def module(self) -> str:
        return f"dashboard.views.{self.key}"

    def render(self, ctx: Context) -> None:
        """Draw the view (its module's ``render``)."""
        importlib.import_module(self.module).render(ctx)


VIEWS: tuple[View, ...] = (
    View("plate", "Plate", help="the plate, its wells, onsets and images"),
    View("compare", "Compare", live=False, help="groups of wells on one chart"),
    View("replay", "Replay", live=False, help="the plate at any time point"),
    View("plates", "Plates", needs_plate=False, help="every plate, unplaced images"),
    View(
        "instrument",
        "Instrument",
        needs_plate=False,
        help="daemon, model, throughput, queue, failures, domain flags",
    ),
    View("alerts", "Alerts", needs_plate=False, help="every alert, acknowledge"),
    View(
        "labels",
        "Labels",
        live=False,
        help="label wells, false alarms, undo",
    ),
    View("models", "Models", live=False, help="two models side by side"),
)


def by_key(key: str | None) -> View:
    """The view named ``key``, else the plate view."""
    return next((v for v in VIEWS if v.key == key), VIEWS[0])
