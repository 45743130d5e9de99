"""Every plate layout legible on a laptop and a desktop screen, in a real headless Chromium;
the Models view's tables fit a laptop; the replay plays forward (issue 13)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_browser import (
    Browser,
    DashboardServer,
    chrome,
    find_browser,
    free_port,
    wait_for_plate,
    wait_for_text,
)
from dashboard_db import LAYOUTS, PLATE, FilledDb, fill_layouts

from stemwatch.core.wells import plate_format

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SCREENS = {"laptop": (1280, 800), "desktop": (1920, 1080)}

# For each cell of row A (one per column): is it inside the window, and is the point at its
# centre part of the plate chart (not under another panel)? Scrolls the cell into view first.
CHECK_COLUMNS = """
const [chart, n] = arguments;
const out = [];
for (let c = 1; c <= n; c++) {
  const name = 'A' + String(c).padStart(2, '0');
  const cell = chart.querySelector(`[aria-label*="Well: ${name};"]`);
  if (!cell) { out.push(name + ': no cell'); continue; }
  cell.scrollIntoView({block: 'center', inline: 'nearest'});
  const r = cell.getBoundingClientRect();
  if (r.width < 12 || r.height < 12) out.push(`${name}: ${r.width}x${r.height} px`);
  if (r.left < 0 || r.right > window.innerWidth)
    out.push(`${name}: outside the window (${r.left}-${r.right})`);
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  if (!hit || !chart.contains(hit))
    out.push(`${name}: covered by ${hit ? hit.outerHTML.slice(0, 80) : 'nothing'}`);
}
return out;
"""


# Each HTML table on the page: does its box scroll sideways (a column cut off), or reach out
# of the window? (The text of a cell wraps; a cell whose text still overflows is listed too.)
CHECK_TABLES = """
const out = [];
for (const wrap of document.querySelectorAll(".sw-tablewrap")) {
  const name = wrap.querySelector("th") ? wrap.querySelector("th").textContent : "?";
  if (wrap.scrollWidth > wrap.clientWidth + 1)
    out.push(`${name}: ${wrap.scrollWidth - wrap.clientWidth} px cut off`);
  if (wrap.getBoundingClientRect().right > window.innerWidth)
    out.push(`${name}: outside the window`);
  for (const td of wrap.querySelectorAll("td"))
    if (td.scrollWidth > td.clientWidth + 1) out.push(`${name}: '${td.textContent}' overflows`);
}
return [document.querySelectorAll(".sw-tablewrap").length, out];
"""

# Each metric's label: is its text cut off (Streamlit ends a label too long for its column in
# an ellipsis)?
CHECK_METRICS = """
const out = [];
const labels = document.querySelectorAll('[data-testid="stMetricLabel"]');
for (const label of labels)
  for (const el of [label, ...label.querySelectorAll("*")])
    if (el.scrollWidth > el.clientWidth + 1) {
      out.push(`'${label.textContent}' cut off by ${el.scrollWidth - el.clientWidth} px`);
      break;
    }
return [labels.length, out];
"""


@pytest.fixture(scope="module")
def browser() -> Browser:
    found = find_browser()
    if found is None:
        pytest.skip("chromium and chromedriver not installed; run scripts/ensure-browser.sh")
    return found


@pytest.fixture(scope="module")
def layouts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    work = tmp_path_factory.mktemp("layouts")
    fill_layouts(work / "layouts.db")
    srv = DashboardServer(work / "layouts.db", free_port(), work / "server.log")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def sized(browser: Browser, width: int, height: int) -> Any:
    """A session whose page (viewport) is exactly width x height CSS pixels."""
    d = chrome(browser, width=width, height=height)
    d.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )
    return d


def checked_columns(driver: Any, cols: int) -> list[str]:
    """CHECK_COLUMNS on the plate chart once its wells have drawn. An auto-refresh may redraw
    the chart while it is checked (the element read is then replaced, its cells gone): check
    the chart on the page again until its cells are there."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def drawn(d: Any) -> tuple[list[str]] | None:
        found: list[str] = d.execute_script(CHECK_COLUMNS, wait_for_plate(d), cols)
        return None if any(f.endswith(": no cell") for f in found) else (found,)

    (result,) = WebDriverWait(
        driver, 30, poll_frequency=0.25, ignored_exceptions=(StaleElementReferenceException,)
    ).until(drawn, message="the plate chart's wells never drew")
    return result


@pytest.mark.parametrize("screen", list(SCREENS))
def test_every_layout_shows_every_column_of_the_plate(
    browser: Browser,
    layouts_server: DashboardServer,
    screen: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Bug (issue 13, item 4): at 1280 x 800 the heatmap ran under the well panel."""
    monkeypatch.setenv("SE_OFFLINE", "true")
    width, height = SCREENS[screen]
    driver = sized(browser, width, height)
    problems: dict[str, list[str]] = {}
    try:
        for n in LAYOUTS:
            layout = plate_format(n)
            driver.get(f"{layouts_server.url}/?view=plate&plate=L{n}")
            wait_for_text(driver, f"Plate L{n}")
            wait_for_text(driver, f"{n}-well plate")
            assert driver.execute_script("return window.innerWidth") == width
            found = checked_columns(driver, layout.cols)
            if found:
                problems[f"L{n}"] = found
                driver.save_screenshot(str(tmp_path / f"L{n}-{screen}.png"))
    finally:
        driver.quit()
    assert not problems, problems


def test_the_models_views_tables_fit_a_laptop(
    browser: Browser, filled_db: FilledDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bug (issue 13): at 1280 x 800 the data grid of "Onsets by the plate map" cut its last
    column (model B) off; and the label "Wells with the same onset call" ended in an ellipsis."""
    from test_dashboard_lab_views import reanalysed, with_plate_map

    monkeypatch.setenv("SE_OFFLINE", "true")
    with_plate_map(filled_db.path)
    reanalysed(filled_db.path)
    srv = DashboardServer(filled_db.path, free_port(), tmp_path / "server.log")
    driver = sized(browser, 1280, 800)
    try:
        srv.wait_ready()
        driver.get(f"{srv.url}/?view=models&plate={PLATE}")
        wait_for_text(driver, "Onsets by the plate map")
        wait_for_text(driver, "false alarms per 100 maintenance wells")
        n, problems = driver.execute_script(CHECK_TABLES)
        n_metrics, cut = driver.execute_script(CHECK_METRICS)
        if problems or cut:
            driver.save_screenshot(str(tmp_path / "models.png"))
        assert n >= 2 and not problems, problems
        assert n_metrics >= 4 and not cut, cut
    finally:
        driver.quit()
        srv.stop()


def test_replay_plays_forward_in_the_browser(
    browser: Browser, filled_db: FilledDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.common.by import By

    monkeypatch.setenv("SE_OFFLINE", "true")
    srv = DashboardServer(filled_db.path, free_port(), tmp_path / "server.log")
    driver = sized(browser, 1280, 800)
    try:
        srv.wait_ready()
        driver.get(f"{srv.url}/?view=replay")
        wait_for_text(driver, "time point 6 of 6")
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        play = WebDriverWait(driver, 30).until(
            ec.element_to_be_clickable((By.XPATH, "//button[contains(normalize-space(.), 'Play')]"))
        )
        play.click()
        wait_for_text(driver, "time point 1 of 6", timeout_s=30)  # from the start...
        wait_for_text(driver, "time point 4 of 6", timeout_s=30)  # ...forward...
        wait_for_text(driver, "time point 6 of 6", timeout_s=30)
        wait_for_text(driver, "▶ Play", timeout_s=30)  # ...and stops at the end
        assert not driver.find_elements(By.CSS_SELECTOR, "[data-testid='stException']")
    finally:
        driver.quit()
        srv.stop()
