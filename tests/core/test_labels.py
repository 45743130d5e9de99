"""End-point staining results read into labels, and what a marker's staining means."""

from __future__ import annotations

from pathlib import Path

import pytest

from stemwatch.core.labels import LabelError, read_endpoints, stained_label


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "endpoints.csv"
    p.write_text(text, encoding="utf-8")
    return p


def test_marker_meaning() -> None:
    assert stained_label("OCT4", True, None) == "undifferentiated"
    assert stained_label("Nanog", False, None) == "differentiated"
    assert stained_label("SOX17", True, "differentiated") == "differentiated"
    assert stained_label("SOX17", False, "differentiated") == "undifferentiated"
    with pytest.raises(LabelError, match="--stained-means"):
        stained_label("SOX17", True, None)


def test_results_and_fractions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plate,well,marker,result,stained_fraction,time_h,notes\n"
        "P1,A1,OCT4,positive,,,\n"
        "P1,A2,OCT4,,12%,48,faint\n"
        "P1,A3,SOX17,,0.7,,\n",
    )
    rows = read_endpoints(path, stained_means="differentiated")
    assert [(r.well, r.stained, r.label) for r in rows] == [
        ("A01", True, "undifferentiated"),
        ("A02", False, "differentiated"),
        ("A03", True, "differentiated"),
    ]
    assert rows[1].fraction == pytest.approx(0.12) and rows[1].time_s == 48 * 3600.0
    assert rows[1].notes == "faint" and rows[1].row == 3
    strict = read_endpoints(path, stained_means="differentiated", threshold=0.8)
    assert strict[2].label == "undifferentiated"  # 0.7 < 0.8: not stained


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("plate,well,marker,result\nP,A1,OCT4,maybe\n", "row 2, column 'result'"),
        ("plate,well,marker,stained_fraction\nP,A1,OCT4,35\n", "row 2, column 'stained_fraction'"),
        ("plate,well,marker,result\nP,Q77,OCT4,+\n", "row 2, column 'well'"),
        ("plate,well,marker,result\nP,A1,SOX17,+\n", "row 2, column 'marker'"),
        ("plate,well,marker,result\nP,A1,OCT4,+\nP,A01,oct4,-\n", "row 3, column 'well'"),
        ("plate,well,marker,result\nP,A1,OCT4,\n", "row 2: neither"),
        ("plate,well,result\nP,A1,+\n", "no 'marker' column"),
        ("well,marker,result\nA1,OCT4,+\n", "row 2: no plate"),
    ],
)
def test_errors_name_row_and_column(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(LabelError) as exc:
        read_endpoints(path)
    assert str(path) in str(exc.value) and where in str(exc.value), exc.value
