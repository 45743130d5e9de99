"""Serving the dashboard with `stemwatch dashboard` and driving it with headless Chromium.

Used by the browser test and by ``python tests/dashboard/make_screenshot.py`` (docs/dashboard.png).
Chromium and chromedriver come from the distribution (``scripts/ensure-browser.sh``); Selenium
is pointed at both, so it never looks for a browser to download.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")
PLATE_READY_TIMEOUT_S = 60


@dataclass(frozen=True)
class Browser:
    binary: str
    driver: str


def find_browser() -> Browser | None:
    """Chromium and its chromedriver on PATH, or None."""
    driver = shutil.which("chromedriver")
    binary = next((b for n in CHROMIUM_NAMES if (b := shutil.which(n))), None)
    return Browser(binary, driver) if binary and driver else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DashboardServer:
    """`stemwatch dashboard --db DB --port PORT` in a child process; ``stop()`` ends it."""

    def __init__(self, db: Path, port: int, log_path: Path, *extra: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stemwatch",
                "dashboard",
                "--db",
                str(db),
                "--port",
                str(port),
                *extra,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.log_path = log_path

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until Streamlit's health endpoint answers; raises with the server log if it died."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dashboard server exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"dashboard not up after {timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        """Terminate (SIGTERM, then SIGKILL after 15 s) and reap; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return int(self.proc.returncode)


def chrome(browser: Browser, *, width: int = 1600, height: int = 1200) -> Any:
    """A headless Chromium session (selenium WebDriver)."""
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    opts.binary_location = browser.binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-extensions",
        "--hide-scrollbars",
        f"--window-size={width},{height}",
        "--force-device-scale-factor=1",
    ):
        opts.add_argument(arg)
    service = webdriver.ChromeService(executable_path=browser.driver)
    return webdriver.Chrome(options=opts, service=service)


def wait_for_text(driver: Any, text: str, timeout_s: float = PLATE_READY_TIMEOUT_S) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(
        lambda d: text in d.find_element(By.TAG_NAME, "body").text,
        message=f"text {text!r} never appeared",
    )


# the plate page's figures, drawn on the server (dashboard/drawing.py); elements of a run that
# Streamlit has marked stale (being replaced) do not count
PLATE_JS = """
const live = [...document.querySelectorAll("svg.sw-plate")].filter(
    (e) => !e.closest("[data-stale='true']") && e.querySelector(".sw-well"));
return live.length ? live[0] : null;
"""
SERIES_JS = """
const well = arguments[0];
const live = [...document.querySelectorAll(".sw-series")].filter(
    (e) => !e.closest("[data-stale='true']") && (!well || e.dataset.well === well));
return live.length ? live[0] : null;
"""


def wait_for_plate(driver: Any, timeout_s: float = PLATE_READY_TIMEOUT_S) -> Any:
    """Until the plate heatmap has drawn its wells; returns its ``<svg>``."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(
        lambda d: d.execute_script(PLATE_JS), message="the plate never drew"
    )


def wait_for_series(
    driver: Any, well: str | None = None, timeout_s: float = PLATE_READY_TIMEOUT_S
) -> Any:
    """Until the chart of ``well`` (any well: None) has drawn; returns its element."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(
        lambda d: d.execute_script(SERIES_JS, well), message=f"the chart of {well} never drew"
    )


def wait_for_charts(driver: Any, n: int, timeout_s: float = PLATE_READY_TIMEOUT_S) -> Any:
    """Until ``n`` Vega charts (the views other than the plate page) have drawn (SVG);
    returns the chart elements."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def drawn(d: Any) -> Any:
        charts = d.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")
        ok = [c for c in charts if c.find_elements(By.CSS_SELECTOR, "svg.marks path")]
        return ok if len(ok) >= n else False

    return WebDriverWait(driver, timeout_s, poll_frequency=0.25).until(
        drawn, message=f"{n} charts never drew"
    )
