"""The served dashboard in a real headless Chromium: `stemwatch dashboard` as a subprocess."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from dashboard_browser import (
    Browser,
    DashboardServer,
    chrome,
    find_browser,
    free_port,
    wait_for_charts,
    wait_for_text,
)
from dashboard_db import BLANK, OUTSIDE, PLATE, FilledDb, fill_database

from monitor.alerts import Alerter, AlertsConfig
from stemwatch import store

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Browser:
    found = find_browser()
    if found is None:
        pytest.skip("chromium and chromedriver not installed; run scripts/ensure-browser.sh")
    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium must never try to download anything
    return found


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., DashboardServer]]:
    """Start `stemwatch dashboard` on a database path; every server is stopped and reaped at
    teardown, whatever the test did."""
    servers: list[DashboardServer] = []

    def start(db: Path, *extra: str) -> DashboardServer:
        srv = DashboardServer(db, free_port(), tmp_path / f"server{len(servers)}.log", *extra)
        servers.append(srv)
        srv.wait_ready()
        return srv

    try:
        yield start
    finally:
        for srv in servers:
            srv.stop()
            assert srv.proc.poll() is not None


@pytest.fixture
def server(filled_db: FilledDb, serve: Callable[[Path], DashboardServer]) -> DashboardServer:
    return serve(filled_db.path)


@pytest.fixture
def driver(browser: Browser) -> Iterator[Any]:
    d = chrome(browser)
    try:
        yield d
    finally:
        d.quit()


def test_served_dashboard_shows_the_plate_follows_a_click_and_refreshes(
    server: DashboardServer, driver: Any, filled_db: FilledDb, tmp_path: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver.get(server.url)
    wait_for_text(driver, f"Plate {PLATE}")
    wait_for_text(driver, "Well B02")  # the well with an onset is shown first
    plate_chart, series_chart = wait_for_charts(driver, 2)[:2]
    wells = plate_chart.find_elements(By.CSS_SELECTOR, "path[aria-label*='Well: ']")
    # every well of the layout is drawn, the wells not imaged (A02: grey) too
    assert {"A01", "A02", "B02", "C03"} <= {
        w.get_attribute("aria-label").split("Well: ")[1][:3] for w in wells
    }
    assert "P(differentiated)" in plate_chart.text or plate_chart.find_elements(
        By.XPATH, ".//*[text()='P(differentiated)']"
    )
    assert series_chart.find_elements(By.XPATH, ".//*[text()='onset 18.0 h']")
    assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    shot = tmp_path / "dashboard.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000

    # click well A01 on the heatmap: the well view follows
    a01 = plate_chart.find_element(By.CSS_SELECTOR, "path[aria-label*='Well: A01;']")
    ActionChains(driver).move_to_element(a01).click().perform()
    wait_for_text(driver, "Well A01", timeout_s=30)
    assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")

    # the daemon raises an alert meanwhile: the page shows it without a reload (auto-refresh)
    with closing(store.open_db(filled_db.path)) as conn:
        Alerter(AlertsConfig(), conn).raise_alert("failures", "11 images failed in the last hour")
    wait_for_text(driver, "11 images failed in the last hour", timeout_s=40)
    assert "Well A01" in driver.find_element(By.TAG_NAME, "body").text  # selection kept
    assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    assert server.proc.poll() is None, server.log()


def test_page_opened_before_the_daemon_comes_alive_by_itself(
    serve: Callable[[Path], DashboardServer], driver: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    db = tmp_path / "later.db"
    server = serve(db, "--wait")
    driver.get(server.url)
    wait_for_text(driver, "no database at")
    wait_for_text(driver, "stemwatch watch")  # how to start the daemon
    fill_database(db, tmp_path / "images")  # the daemon starts and analyses a plate
    wait_for_text(driver, f"Plate {PLATE}", timeout_s=40)  # auto-refresh, no reload
    wait_for_charts(driver, 2)
    assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")


def test_left_out_wells_and_points_draw_in_the_browser(
    flagged_db: FilledDb, serve: Callable[[Path], DashboardServer], driver: Any
) -> None:
    """The plate with wells whose latest images are left out (issue 9), and such a well's
    curve with its left-out points, draw in Chromium (AppTest does not run Vega)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    server = serve(flagged_db.path)
    driver.get(server.url)
    wait_for_text(driver, f"Plate {PLATE}")
    plate_chart = wait_for_charts(driver, 2)[0]
    for well, mark in ((OUTSIDE, "OOD"), (BLANK, "bad")):
        assert plate_chart.find_elements(By.CSS_SELECTOR, f"path[aria-label*='Well: {well};']")
        assert plate_chart.find_elements(By.XPATH, f".//*[text()='{mark}']"), mark
    cell = plate_chart.find_element(By.CSS_SELECTOR, f"path[aria-label*='Well: {OUTSIDE};']")
    ActionChains(driver).move_to_element(cell).click().perform()
    wait_for_text(driver, f"Well {OUTSIDE}", timeout_s=30)
    wait_for_text(driver, "orange ×", timeout_s=30)
    series_chart = wait_for_charts(driver, 2)[1]
    crosses = series_chart.find_elements(
        By.CSS_SELECTOR, "path[aria-label*='Left out: outside the model']"
    )
    assert len(crosses) == 4
    assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
