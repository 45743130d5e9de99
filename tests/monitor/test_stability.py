"""The stability tracker (pure, explicit times) and the memory of recorded versions.

The TIFF completeness check lives in the core with the one TIFF parser (tests/core/test_tiff.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.stability import (
    FileStat,
    SettledFiles,
    StabilityTracker,
    Verdict,
    backoff_delay,
    stat_file,
)

P = Path("/data/a.tif")
S1 = FileStat(100, 1_000)
S2 = FileStat(200, 2_000)


def test_not_due_before_quiet_period() -> None:
    t = StabilityTracker(quiet_s=2.0)
    t.hint(P, 10.0, S1)
    assert t.due(11.9) == []
    assert t.due(12.0) == [P]


def test_each_event_restarts_the_quiet_period() -> None:
    t = StabilityTracker(quiet_s=2.0)
    t.hint(P, 10.0, S1)
    t.hint(P, 11.5, S2)
    assert t.due(12.5) == []
    assert t.due(13.5) == [P]


def test_unchanged_stat_is_stable_and_leaves_the_tracker() -> None:
    t = StabilityTracker(quiet_s=1.0)
    t.hint(P, 0.0, S1)
    d = t.confirm(P, 1.0, S1)
    assert d.verdict is Verdict.STABLE and d.stat == S1
    assert P not in t and len(t) == 0


def test_changed_stat_without_event_waits_another_quiet_period() -> None:
    # a writer whose events were lost (network share): size grew silently
    t = StabilityTracker(quiet_s=1.0)
    t.hint(P, 0.0, S1)
    d = t.confirm(P, 1.0, S2)
    assert d.verdict is Verdict.WAIT
    assert t.due(1.5) == []
    assert t.due(2.0) == [P]
    assert t.confirm(P, 2.0, S2).verdict is Verdict.STABLE


def test_hint_without_stat_needs_one_confirmation_round() -> None:
    t = StabilityTracker(quiet_s=1.0)
    t.hint(P, 0.0, None)
    assert t.confirm(P, 1.0, S1).verdict is Verdict.WAIT
    assert t.confirm(P, 2.0, S1).verdict is Verdict.STABLE


def test_deleted_file_is_gone() -> None:
    t = StabilityTracker(quiet_s=1.0)
    t.hint(P, 0.0, S1)
    assert t.confirm(P, 1.0, None).verdict is Verdict.GONE
    assert len(t) == 0
    assert t.confirm(P, 1.0, S1).verdict is Verdict.GONE  # unknown path


def test_scan_of_an_old_file_is_due_at_once() -> None:
    t = StabilityTracker(quiet_s=5.0)
    t.hint(P, 100.0, S1, quiet_since=10.0)
    assert t.due(100.0) == [P]
    # a file modified just now is not
    q = Path("/data/b.tif")
    t.hint(q, 100.0, S1, quiet_since=99.0)
    assert t.due(100.0) == [P]


def test_quiet_since_in_the_future_counts_as_now() -> None:
    t = StabilityTracker(quiet_s=1.0)
    t.hint(P, 10.0, S1, quiet_since=50.0)  # clock skew on a share
    assert t.due(10.5) == [] and t.due(11.0) == [P]


def test_retry_later_respects_backoff_and_counts_attempts() -> None:
    t = StabilityTracker(quiet_s=0.5)
    t.retry_later(P, 10.0, delay=3.0, attempts=2)
    assert t.due(11.0) == []
    assert t.due(13.0) == [P]
    assert t.confirm(P, 13.0, S1).verdict is Verdict.WAIT
    d = t.confirm(P, 13.5, S1)
    assert d.verdict is Verdict.STABLE and d.attempts == 2


def test_new_content_resets_attempts() -> None:
    t = StabilityTracker(quiet_s=0.5)
    t.retry_later(P, 0.0, delay=0.0, attempts=2)
    t.hint(P, 0.1, S1)
    t.hint(P, 0.2, S2)
    assert t.confirm(P, 1.0, S2).attempts == 0


def test_due_excludes_in_flight_and_orders_oldest_first() -> None:
    t = StabilityTracker(quiet_s=1.0)
    a, b, c = Path("/a.tif"), Path("/b.tif"), Path("/c.tif")
    t.hint(b, 1.0, S1)
    t.hint(a, 2.0, S1)
    t.hint(c, 0.5, S1)
    assert t.due(5.0) == [c, b, a]
    assert t.due(5.0, exclude={b}) == [c, a]


def test_next_due_in() -> None:
    t = StabilityTracker(quiet_s=2.0)
    assert t.next_due_in(0.0) is None
    t.hint(P, 10.0, S1)
    assert t.next_due_in(11.0) == pytest.approx(1.0)
    t.retry_later(P, 10.0, delay=5.0, attempts=1)
    assert t.next_due_in(11.0) == pytest.approx(4.0)


def test_backoff_doubles_up_to_the_limit() -> None:
    assert [backoff_delay(n, 1.0, 5.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]


def test_stat_file(tmp_path: Path) -> None:
    f = tmp_path / "a.tif"
    assert stat_file(f) is None
    f.write_bytes(b"123")
    st = stat_file(f)
    assert st is not None and st.size == 3
    assert stat_file(tmp_path) is None  # a folder is not a file


# ------------------------------------------------------------------ recorded versions


def test_settled_files_are_bounded_and_forget_the_least_recently_used() -> None:
    settled = SettledFiles(capacity=3)
    paths = [Path(f"/data/{i}.tif") for i in range(5)]
    for p in paths[:3]:
        settled[p] = S1
    assert settled.get(paths[0]) == S1  # used: now the most recent
    settled[paths[3]] = S1
    settled[paths[4]] = S2
    assert len(settled) == 3
    assert paths[1] not in settled and paths[2] not in settled  # the least recently used
    assert [settled.get(p) for p in (paths[0], paths[3], paths[4])] == [S1, S1, S2]


def test_settled_files_update_and_pop() -> None:
    settled = SettledFiles(capacity=2)
    settled[P] = S1
    settled[P] = S2  # a new version replaces the old, it does not take a second slot
    assert len(settled) == 1 and settled.get(P) == S2
    assert settled.pop(P) == S2 and settled.pop(P) is None and len(settled) == 0
    with pytest.raises(ValueError, match="at least 1"):
        SettledFiles(0)
