"""`stemwatch alert-test`: Send a test message through every configured alert channel."""

from __future__ import annotations

import argparse
from pathlib import Path

from stemwatch.core.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "alert-test",
        help="Send a test message through every configured alert channel",
        description="Send a test message through every alert channel of the monitor "
        "configuration; print each channel's result; exit 1 if any failed.",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="monitor configuration YAML whose `alerts.channels` and `alerts.urls` to test",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from monitor.alerts import all_channels, send_test
    from monitor.config import MonitorConfig
    from stemwatch.core.config import load_config

    config = load_config(MonitorConfig, args.config)
    source = str(args.config) if args.config else "the default configuration"
    if not all_channels(config.alerts):
        raise ConfigError(
            f"{source}: alerts.channels and alerts.urls are empty; add an apprise URL, e.g. "
            "`alerts: {channels: {lab-slack: 'slack://...'}}`"
        )
    results = send_test(config.alerts)
    width = max(len(r.channel) for r in results)
    for r in results:
        print(f"{r.channel:<{width}}  {'OK  ' if r.ok else 'FAIL'}  {r.text}")
    failed = [r.channel for r in results if not r.ok]
    if failed:
        print(f"{len(failed)} of {len(results)} channel(s) failed: {', '.join(failed)}")
        return 1
    print(f"all {len(results)} channel(s) delivered")
    return 0
