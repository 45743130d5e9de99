"""Each well's series and onset kept up to date one image at a time, at a cost flat in its length.

:func:`monitor.onset.update_well` recomputes a well from all its images: reading them, grouping
them into time points, replaying the detector and rewriting the whole series, so scoring one
image cost time proportional to the length of the experiment. The writer thread keeps here,
per well it recently wrote, what the next image needs: the fields of the well's last time
point, the detector's state before and after that point (:class:`~monitor.onset.Replay`, a
few numbers) and the onset found so far. An image that joins the last time point, or starts a
new one after it, then costs the same whatever the well's length: it re-aggregates that one
time point, steps the detector once and rewrites the series from that point on
(``save_well_analysis(from_seq=...)``). A new image that is left out of the series (a bad
frame, out of the model's domain) changes nothing and is only remembered.

Anything else recomputes the well from the store exactly as before (:meth:`WellSeries.recompute`)
and starts tracking it afresh: the first image of a well after a start (a restart included),
an image earlier than the well's last time point (out of order), a second image of the same
field at the same time point, a well mixing images with and without a time-point index, a
reset from the dashboard (the well's episode changed), a file whose record superseded or moved
another, and a newly found onset (its time basis is the majority over all the well's images).
The result is identical to the full recomputation (``tests/monitor/test_wellseries.py`` checks
it on random series): the fast path is taken only where it provably agrees.

The tracker holds at most ``max_wells`` wells (least recently written dropped first): per
well the last time point's fields, the two detector states and the stored paths of the well's
images (to notice a record that supersedes one of them: tens of bytes per image). Only the
writer thread uses it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from monitor import onset
from monitor.onset import OnsetConfig, OnsetParams, Replay
from stemwatch import store
from stemwatch.core.aggregate import (
    FieldObservation,
    TimepointGroup,
    WellPoint,
    aggregate_fields,
    group_timepoints,
)

log = logging.getLogger(__name__)

WellKey = tuple[str, str]  # plate, well
_NOT_HERE: tuple[bool, None] = (False, None)  # the fast path cannot take this image


@dataclass
class _Tracked:
    """What the next image of one well needs (the series before the last group is stored)."""

    state: store.WellState
    indexed: bool  # time points by index (else by time within the tolerance)
    last_fields: list[FieldObservation]  # every field of the last time point, as stored
    last_timepoint: int | None
    last_key: float
    n_before: int  # points of the series before the last group
    before: Replay  # the detector after those points
    after: Replay  # ...and after the last group's point (the same when it has none)
    has_point: bool  # whether the last group makes a point (a finite probability)
    onset: store.NewOnset | None  # the current episode's onset, as the recomputation gave it
    paths: set[str]  # stored paths of the well's images


class WellSeries:
    """The writer's per-well series and onset updates (see the module docstring)."""

    def __init__(self, config: OnsetConfig, model_hash: str, *, max_wells: int = 4096) -> None:
        self.config = config
        self.model_hash = model_hash
        self.max_wells = max_wells
        self._wells: OrderedDict[WellKey, _Tracked] = OrderedDict()
        self._by_path: dict[str, WellKey] = {}
        self.incremental = 0  # updates by the fast path
        self.recomputed = 0  # updates by the full recomputation

    # -- what the writer calls --------------------------------------------------------------

    def image_scored(
        self, db: store.Database, image_id: int, *, now: float | None = None
    ) -> store.OnsetRecord | None:
        """After ``image_id`` was recorded with a location: update its well."""
        image = store.image_record(db, image_id, model_hash=self.model_hash)
        if image is None or image.plate is None or image.well is None:
            return None
        key = (image.plate, image.well)
        owner = self._by_path.get(image.path)
        if owner is not None:  # a new version of a known file: the older record is superseded
            self.forget(*owner)
        tracked = self._wells.get(key)
        if tracked is not None:
            added, event = self._add(db, key, tracked, image, now)
            if added:
                self.incremental += 1
                return event
        return self.recompute(db, *key, now=now)

    def path_changed(self, path: str) -> None:
        """The record of ``path`` (its stored text) changed: failed, moved, superseded."""
        owner = self._by_path.get(path)
        if owner is not None:
            self.forget(*owner)

    def forget(self, plate: str, well: str) -> None:
        """Stop tracking a well: its next update recomputes it."""
        tracked = self._wells.pop((plate, well), None)
        if tracked is not None:
            for p in tracked.paths:
                if self._by_path.get(p) == (plate, well):
                    del self._by_path[p]

    def recompute(
        self, db: store.Database, plate: str, well: str, *, now: float | None = None
    ) -> store.OnsetRecord | None:
        """Recompute the well from all its images (:func:`monitor.onset.update_well`'s way),
        store it, and track it from there."""
        self.forget(plate, well)
        self.recomputed += 1
        params = self.config.params_for(plate)
        state = store.well_state(db, plate, well)
        images = store.images_for_well(db, plate, well, model_hash=self.model_hash)
        result = onset.analyse_well(images, state, params)
        event = store.save_well_analysis(
            db,
            plate,
            well,
            model_hash=self.model_hash,
            series=result.series,
            onset=result.onset,
            episode=state.episode,
            now=now,
        )
        onset.log_onset(event)
        tracked = _track(images, state, params, result.onset)
        if tracked is not None:
            self._remember((plate, well), tracked)
        return event

    # -- the fast path --------------------------------------------------------------------

    def _add(
        self,
        db: store.Database,
        key: WellKey,
        t: _Tracked,
        image: store.ImageRecord,
        now: float | None,
    ) -> tuple[bool, store.OnsetRecord | None]:
        """Add one image at the end of the well's series: (True, a new onset or None), or
        (False, None) where it cannot be done so (nothing was written)."""
        plate, well = key
        params = self.config.params_for(plate)
        if image.path in t.paths:
            return _NOT_HERE
        if store.well_state(db, plate, well) != t.state:  # reset from the dashboard
            return _NOT_HERE
        if not onset.is_scored(image):  # a bad frame, out of domain: the series is unchanged
            self._known(key, t, image.path)
            return True, None
        o = onset.observation(image)
        joins = _joins_last(t, o, params)
        if joins is None:
            return _NOT_HERE
        if joins:
            same = [f for f in t.last_fields if o.field is not None and _same_field(f, o)]
            if same:  # two images of one field at one time point: the later record wins
                return _NOT_HERE
            fields, start, n_before = [*t.last_fields, o], t.before, t.n_before
        else:
            fields, start, n_before = [o], t.after, t.n_before + int(t.has_point)
        groups = group_timepoints(fields, time_tolerance_s=params.time_tolerance_s)
        if len(groups) != 1:
            return _NOT_HERE
        group = groups[0]
        point = _point(group, params)
        replay = start.copy()
        tail: list[store.TimePoint] = []
        if point is not None:
            smoothed = replay.step(point.probability, index=n_before, key=group.key)
            tail.append(onset.time_point(group.timepoint, group.time_s, point, smoothed))
        found = replay.found
        if found is not None and found != t.after.found:
            return _NOT_HERE  # a new onset: its time basis is the majority over all images
        new_onset = t.onset if found is not None else None
        event = store.save_well_analysis(
            db,
            plate,
            well,
            model_hash=self.model_hash,
            series=tail,
            onset=new_onset,
            episode=t.state.episode,
            from_seq=n_before,
            now=now,
        )
        onset.log_onset(event)
        t.last_fields, t.last_timepoint, t.last_key = fields, group.timepoint, group.key
        t.n_before, t.before, t.after, t.has_point = n_before, start, replay, point is not None
        t.onset = new_onset
        self._known(key, t, image.path)
        return True, event

    def _known(self, key: WellKey, t: _Tracked, path: str) -> None:
        t.paths.add(path)
        self._by_path[path] = key
        self._wells.move_to_end(key)

    def _remember(self, key: WellKey, tracked: _Tracked) -> None:
        self._wells[key] = tracked
        for p in tracked.paths:
            self._by_path[p] = key
        while len(self._wells) > self.max_wells:
            oldest = next(iter(self._wells))
            self.forget(*oldest)


def _same_field(a: FieldObservation, b: FieldObservation) -> bool:
    return (a.field, a.channel, a.z) == (b.field, b.channel, b.z)


def _joins_last(t: _Tracked, o: FieldObservation, params: OnsetParams) -> bool | None:
    """True: ``o`` belongs to the last time point; False: it starts one after it; None: it
    lands elsewhere (earlier, or of the other kind of time point)."""
    if t.indexed:
        if o.timepoint is None or t.last_timepoint is None:
            return None
        if o.timepoint == t.last_timepoint:
            return True
        return False if o.timepoint > t.last_timepoint else None
    if o.timepoint is not None or o.time_s is None:
        return None
    latest = max(float(f.time_s or 0.0) for f in t.last_fields)
    if o.time_s < latest:
        return None
    return o.time_s - t.last_key <= params.time_tolerance_s


def _point(group: TimepointGroup, params: OnsetParams) -> WellPoint | None:
    try:
        return aggregate_fields(group.fields, params.aggregate)
    except ValueError:  # no field with a finite probability: no point (as build_series)
        return None


def _track(
    images: Sequence[store.ImageRecord],
    state: store.WellState,
    params: OnsetParams,
    found_onset: store.NewOnset | None,
) -> _Tracked | None:
    """The tracking state of a well just recomputed from ``images``; None where the fast path
    cannot take it (no time point yet, or time points both by index and by time)."""
    scored = [i for i in images if onset.is_scored(i)]
    observations = [onset.observation(i) for i in scored]
    indexed = [o for o in observations if o.timepoint is not None]
    timed = [o for o in observations if o.timepoint is None and o.time_s is not None]
    if bool(indexed) == bool(timed):
        return None
    groups = group_timepoints(observations, time_tolerance_s=params.time_tolerance_s)
    last = groups[-1]
    if indexed:
        fields = [o for o in indexed if o.timepoint == last.timepoint]
    else:
        fields = [o for o in timed if float(o.time_s or 0.0) >= last.key]
    replay = Replay(params, state.rearm_after_key)
    n_before = 0
    for g in groups[:-1]:
        p = _point(g, params)
        if p is not None:
            replay.step(p.probability, index=n_before, key=g.key)
            n_before += 1
    before = replay.copy()
    point = _point(last, params)
    if point is not None:
        replay.step(point.probability, index=n_before, key=last.key)
    return _Tracked(
        state=state,
        indexed=bool(indexed),
        last_fields=fields,
        last_timepoint=last.timepoint,
        last_key=last.key,
        n_before=n_before,
        before=before,
        after=replay,
        has_point=point is not None,
        onset=found_onset,
        paths={i.path for i in images},
    )
