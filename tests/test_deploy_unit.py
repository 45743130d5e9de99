"""The systemd unit restarts the daemon on every failure it can recover from, caps its
memory, and starts even when the microscope share is not mounted yet (issue 11 #2, #8)."""

from __future__ import annotations

import configparser
from pathlib import Path

from monitor.supervise import EXIT_THREAD_DIED
from stemwatch.store import StoreLockedError

UNIT = Path(__file__).resolve().parents[1] / "deploy" / "stemwatch-monitor.service"


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_restart_covers_every_exit_status_the_daemon_uses() -> None:
    service = unit()["Service"]
    assert service["Restart"] == "on-failure"  # non-zero exits and kills (OOM) restart
    prevented = set(service["RestartPreventExitStatus"].split())
    assert prevented == {"2"}  # only "fix the configuration" stops the restarts
    assert str(EXIT_THREAD_DIED) not in prevented and str(StoreLockedError.exit_code) not in (
        prevented
    )
    assert unit()["Unit"]["StartLimitIntervalSec"] == "0"  # never gives up


def test_memory_is_capped_and_a_missing_share_does_not_block_the_start() -> None:
    service = unit()["Service"]
    assert service["MemoryMax"] == "8G" and service["MemoryHigh"] == "6G"
    assert all(p.startswith("-") for p in service["ReadOnlyPaths"].split())
