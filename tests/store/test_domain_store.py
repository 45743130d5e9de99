"""The domain check in the store (schema v8), on both engines: bad frames recorded unscored,
domain scores on predictions, and the reads the dashboard, `stemwatch status` and the alert
rule use."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from stemwatch import store
from stemwatch.core.platemeta import ImageLocation
from stemwatch.store.schema import MIGRATIONS


def loc(plate: str = "P1", well: str = "A01", tp: int = 0, field: int = 0) -> ImageLocation:
    return ImageLocation(plate, well, field, tp, tp * 3600.0, "test", time_basis="elapsed")


def version(path: str) -> store.FileVersion:
    return store.FileVersion(path, 100, 1, f"h-{path}")


def scored(
    db: store.Database,
    path: str,
    p: float,
    location: ImageLocation,
    *,
    score: float | None,
    model: str = "m",
    now: float | None = None,
) -> int:
    prediction = store.Prediction(
        model,
        p,
        n_tiles=4,
        domain_score=score,
        out_of_domain=None if score is None else score > 1.0,
    )
    return store.record_result(db, version(path), location, prediction, now=now)


def test_scores_and_bad_frames_are_stored_and_read_back(target: str) -> None:
    db = store.open_db(target, instrument="scope")
    scored(db, "/i/a.tif", 0.2, loc(tp=0), score=0.4, now=1.0)
    scored(db, "/i/b.tif", 0.9, loc(tp=1), score=3.2, now=2.0)
    scored(db, "/i/c.tif", 0.3, loc(tp=2), score=None, now=3.0)  # a model without description
    bad = store.record_quality_issue(
        db, version("/i/d.tif"), loc(tp=3), reason="blank: every pixel is 0", now=4.0
    )
    images = {i.path: i for i in store.images_for_well(db, "P1", "A01")}
    assert (images["/i/a.tif"].domain_score, images["/i/a.tif"].out_of_domain) == (0.4, False)
    assert (images["/i/b.tif"].domain_score, images["/i/b.tif"].out_of_domain) == (3.2, True)
    assert images["/i/c.tif"].domain_score is None and images["/i/c.tif"].out_of_domain is None
    d = images["/i/d.tif"]
    assert (d.status, d.quality, d.probability, d.model_hash) == (
        "done",
        "blank: every pixel is 0",
        None,
        None,
    )
    assert [i.flagged for i in images.values()] == [False, True, False, True]
    # a bad frame is recorded: not read again while the file stays the same
    assert store.already_recorded(db, store.FileVersion("/i/d.tif", 100, 1)) == bad
    assert store.counts(db).done == 4


def test_flagged_images_summary_and_the_alert_window(target: str) -> None:
    db = store.open_db(target, instrument="scope")
    for i, s in enumerate([0.5, 2.0, 0.7, 3.0, 4.0]):
        scored(db, f"/i/{i}.tif", 0.5, loc(tp=i), score=s, now=float(i))
    store.record_quality_issue(db, version("/i/nan.tif"), loc("P2"), reason="nonfinite: x")
    scored(db, "/i/other.tif", 0.5, loc("P2", tp=1), score=0.3, model="m2")
    flagged = store.flagged_images(db)
    assert {f.path for f in flagged} == {"/i/1.tif", "/i/3.tif", "/i/4.tif", "/i/nan.tif"}
    assert [f.path for f in store.flagged_images(db, "P1", limit=2)] == ["/i/4.tif", "/i/3.tif"]
    summary = {s.plate: s for s in store.domain_summary(db)}
    p1, p2 = summary["P1"], summary["P2"]
    assert (p1.n_images, p1.n_scored, p1.n_out_of_domain, p1.n_quality) == (5, 5, 3, 0)
    assert p1.last_flagged_at == 4.0 and p1.instrument == "scope"
    assert (p2.n_images, p2.n_scored, p2.n_out_of_domain, p2.n_quality) == (2, 1, 0, 1)
    window = store.domain_window(db, "P1", "m", last=3)
    # the alert quotes the outside images' typical score, not the newest (maybe inside) one
    assert (window.n_scored, window.n_out_of_domain, window.median_out_score) == (3, 2, 3.5)
    assert window.fraction_out == 2 / 3
    assert store.domain_window(db, "P1", "other-model").n_scored == 0
    assert store.domain_summary(db, instrument="elsewhere") == []


def test_a_rewritten_file_is_flagged_by_its_newest_version_only(target: str) -> None:
    db = store.open_db(target, instrument="scope")
    store.record_quality_issue(db, version("/i/a.tif"), loc(), reason="saturated: 90%")
    rewritten = store.FileVersion("/i/a.tif", 200, 2, "h-new")
    store.record_result(db, rewritten, loc(), store.Prediction("m", 0.3, domain_score=0.5))
    (img,) = store.images_for_well(db, "P1", "A01")
    assert img.quality is None and not img.flagged and img.probability == 0.3
    assert store.flagged_images(db) == []


def test_a_v7_file_gains_the_domain_columns(tmp_path: Path) -> None:
    path = tmp_path / "v7.db"
    r = sqlite3.connect(path, isolation_level=None)
    for m in MIGRATIONS[:7]:
        r.executescript(m.sqlite)
    r.execute("PRAGMA user_version = 7")
    r.execute(
        "INSERT INTO images (id, instrument, path, plate, well, field, timepoint, time_s, "
        "status, created_at, updated_at) "
        "VALUES (1, 'scope', '/i/a.tif', 'P1', 'A01', 0, 0, 0.0, 'done', 1, 1)"
    )
    r.execute(
        "INSERT INTO predictions (image_id, model_hash, probability, created_at) "
        "VALUES (1, 'm', 0.4, 1)"
    )
    r.close()
    db = store.open_db(path, instrument="scope")
    (img,) = store.images_for_well(db, "P1", "A01")
    assert (img.probability, img.quality, img.domain_score, img.out_of_domain) == (
        0.4,
        None,
        None,
        None,
    )
    (summary,) = store.domain_summary(db)
    assert (summary.n_scored, summary.n_out_of_domain, summary.last_flagged_at) == (0, 0, None)


def test_a_bad_frame_replaces_a_skip_and_a_failure_clears_its_reason(target: str) -> None:
    db = store.open_db(target, instrument="scope")
    v = version("/i/a.tif")
    store.record_skipped(db, v, kind="ignored", reason="channel not selected")
    bad = store.record_quality_issue(db, v, None, reason="blank: x", unplaced_reason="no well")
    assert store.skipped_file(db, "/i/a.tif") is None  # analysed now: no longer skipped
    (img,) = store.unplaced_images(db)
    assert (img.id, img.quality, img.unplaced_reason) == (bad, "blank: x", "no well")
    store.record_failure(db, v, reason="unreadable", attempts=1)
    (img,) = store.recent_images(db, limit=5)
    assert (img.status, img.quality, img.flagged) == ("failed", None, False)


def test_well_flags_tell_whether_a_wells_newest_images_are_all_left_out(target: str) -> None:
    db = store.open_db(target, instrument="scope")
    for f in (0, 1):  # A01: fine at t0, both fields outside the domain at t1
        scored(db, f"/i/a0{f}.tif", 0.2, loc(tp=0, field=f), score=0.5)
        scored(db, f"/i/a1{f}.tif", 0.9, loc(tp=1, field=f), score=2.5 + f)
    # A02: one field outside and one fine at its newest time point: its series has a point
    scored(db, "/i/b0.tif", 0.2, loc(well="A02", tp=0), score=0.5)
    scored(db, "/i/b10.tif", 0.9, loc(well="A02", tp=1, field=0), score=4.0)
    scored(db, "/i/b11.tif", 0.2, loc(well="A02", tp=1, field=1), score=0.6)
    # A03: a blank frame at its newest time point; A04: clean
    scored(db, "/i/c0.tif", 0.2, loc(well="A03", tp=0), score=0.5)
    store.record_quality_issue(db, version("/i/c1.tif"), loc(well="A03", tp=1), reason="blank: 0")
    scored(db, "/i/d0.tif", 0.2, loc(well="A04", tp=0), score=0.5)
    # A05: times without indices (an mtime time base): the newest within the tolerance
    for name, t, s in (("e0", 0.0, 0.5), ("e1", 7200.0, 3.0), ("e2", 7300.0, 3.0)):
        when = ImageLocation("P1", "A05", 0, None, t, "test", time_basis="mtime")
        scored(db, f"/i/{name}.tif", 0.5, when, score=s)
    flags = {f.well: f for f in store.well_flags(db, "P1")}
    assert sorted(flags) == ["A01", "A02", "A03", "A05"]  # A04 has nothing left out
    a01, a02, a03, a05 = flags["A01"], flags["A02"], flags["A03"], flags["A05"]
    assert (a01.n_latest, a01.n_latest_out_of_domain, a01.latest_excluded) == (2, 2, True)
    assert a01.latest_score == 3.5 and a01.n_excluded == 2 and a01.instrument == "scope"
    assert (a02.n_latest, a02.n_latest_out_of_domain, a02.latest_excluded) == (2, 1, False)
    assert (a03.n_latest_quality, a03.latest_quality, a03.latest_excluded) == (1, "blank: 0", True)
    assert (a05.n_latest, a05.n_latest_out_of_domain, a05.latest_excluded) == (2, 2, True)
    assert store.well_flags(db, "P1", instrument="elsewhere") == []


def test_alerts_of_one_kind(target: str) -> None:
    db = store.open_db(target, instrument="scope")
    store.record_alert(db, "domain", "plate P2 looks foreign", plate="P2")
    store.record_alert(db, "stall", "no image")
    assert [a.kind for a in store.list_alerts(db, kind="domain")] == ["domain"]
    assert [a.kind for a in store.list_alerts(db, kind="domain", instrument="x")] == []


def test_well_flags_through_one_model(target: str) -> None:
    db = store.open_db(target, instrument="scope")
    image = scored(db, "/i/a.tif", 0.2, loc(), score=0.5, model="m")
    other = store.Prediction("m2", 0.9, domain_score=3.0, out_of_domain=True)
    store.record_prediction(db, image, other)  # a re-analysis by a model it is foreign to
    assert store.well_flags(db, "P1", model_hash="m") == []
    (flags,) = store.well_flags(db, "P1", model_hash="m2")
    assert (flags.well, flags.latest_excluded, flags.latest_score) == ("A01", True, 3.0)
