"""The views of the dashboard and the registry the page shell draws from.

A view is a function ``render(ctx)`` of a :class:`dashboard.context.Context`: it reads through
:mod:`dashboard.reads` (cached store reads), shapes with :mod:`dashboard.data`, draws with
:mod:`dashboard.plots`. To add one write ``dashboard/views/NAME.py`` with a
``render`` and append a :class:`View` to :data:`VIEWS`; it gets a place in the sidebar and an
address (``?view=NAME``). Issue 10 added ``labels`` and ``models``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dashboard.context import Context
from dashboard.views import alerts, compare, instrument, labels, models, plate, plates, replay


@dataclass(frozen=True)
class View:
    key: str  # in the address: ?view=KEY
    title: str
    render: Callable[[Context], None]
    needs_plate: bool = True  # shows one plate (the sidebar's)
    live: bool = True  # re-drawn at every auto-refresh (else only on interaction)
    help: str = ""


VIEWS: tuple[View, ...] = (
    View("plate", "Plate", plate.render, help="the plate, its wells, onsets and images"),
    View("compare", "Compare", compare.render, live=False, help="groups of wells on one chart"),
    View("replay", "Replay", replay.render, live=False, help="the plate at any time point"),
    View("plates", "Plates", plates.render, needs_plate=False, help="every plate, unplaced images"),
    View(
        "instrument",
        "Instrument",
        instrument.render,
        needs_plate=False,
        help="daemon, model, throughput, queue, failures, domain flags",
    ),
    View("alerts", "Alerts", alerts.render, needs_plate=False, help="every alert, acknowledge"),
    View(
        "labels",
        "Labels",
        labels.render,
        live=False,
        help="label wells, false alarms, undo",
    ),
    View("models", "Models", models.render, live=False, help="two models side by side"),
)


def by_key(key: str | None) -> View:
    """The view named ``key``, else the plate view."""
    return next((v for v in VIEWS if v.key == key), VIEWS[0])
