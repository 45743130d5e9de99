"""`stemwatch status`: Print what the daemon is doing, from its database."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="Print what the daemon is doing, from its database",
        description="Print what the daemon is doing, from its database (opened read-only).",
    )
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        metavar="PATH",
        help="the daemon's database (default: `database` of --config, else stemwatch.db)",
    )
    p.add_argument(
        "--config", type=Path, default=None, metavar="FILE", help="monitor configuration YAML"
    )
    p.add_argument(
        "--stale-after",
        type=float,
        default=None,
        metavar="S",
        help="heartbeat older than this many seconds means the daemon looks dead "
        "(default: 3 of the daemon's heartbeat intervals, at least 30 s)",
    )
    p.add_argument("--limit", type=int, default=5, help="rows per list (default: 5)")
    p.set_defaults(func=run)


def _ago(t: float | None, now: float) -> str:
    if t is None:
        return "never"
    s = max(0.0, now - t)
    if s < 120:
        return f"{s:.0f} s ago"
    if s < 7200:
        return f"{s / 60:.0f} min ago"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h ago"
    return f"{s / 86400:.1f} days ago"


def _when(t: float, now: float) -> str:
    return "now" if t <= now else f"in {_ago(now - (t - now), now).removesuffix(' ago')}"


def run(args: argparse.Namespace) -> int:
    from monitor.config import MonitorConfig
    from stemwatch import store
    from stemwatch.core.config import load_config
    from stemwatch.core.times import describe_time

    config = load_config(MonitorConfig, args.config) if args.config else MonitorConfig()
    db = args.db or config.database
    conn = store.open_db(db, readonly=True)
    now = time.time()
    try:
        print(f"database: {db}")
        hb = store.last_heartbeat(conn)
        liveness = None if hb is None else hb.liveness(now, stale_after_s=args.stale_after)
        if hb is None or liveness is None:
            print("daemon:   never ran on this database")
        else:
            verdict = {
                "stopped": "stopped",
                "alive": f"alive; state {hb.state}",
                "stale": f"NOT RUNNING (stale heartbeat; last state {hb.state})",
            }[liveness]
            detail = f" - {hb.detail}" if hb.detail else ""
            print(
                f"daemon:   {verdict}{detail}; last heartbeat "
                f"{_ago(hb.at, now)} (pid {hb.pid} on {hb.host})"
            )
        model = store.current_model(conn)
        if model is None:
            print("model:    none registered yet")
        else:
            print(
                f"model:    {model.name} ({model.model_hash[:12]}) on {model.provider}, "
                f"last used {_ago(model.last_seen, now)}"
            )
        c = store.counts(conn)
        queued = (
            f", {hb.queued} queued in the daemon"
            if hb is not None and liveness == "alive" and hb.queued is not None
            else ""
        )
        print(
            f"images:   {c.done} done, {c.failed} failed{queued}"
            + (f" ({c.superseded} older versions superseded)" if c.superseded else "")
        )
        skipped = store.skipped_counts(conn, limit=args.limit)
        if skipped:
            print(f"skipped:  {sum(k.count for k in skipped)} file(s) not analysed on purpose:")
            for k in skipped:
                print(f"  {k.count:>6} {k.kind}: {k.reason}")
        plates = store.list_plates(conn)
        basis = {p.plate: p.time_basis for p in plates}
        for p in plates:
            print(
                f"plate:    {p.plate}: {p.n_wells} wells, {p.n_images} images, "
                f"up to {describe_time(p.last_time_s, p.time_basis)}, "
                f"{p.n_onsets} wells with onset"
            )

        recent = store.recent_images(conn, limit=args.limit)
        print(f"\nlast images ({len(recent)}):")
        for img in recent:
            where = (
                f"{img.plate} {img.well} field {img.field} @ "
                f"{describe_time(img.time_s, img.time_basis)}"
                if img.well
                else "(no plate/well)"
            )
            result = (
                f"p={img.probability:.2f}"
                if img.status == "done" and img.probability is not None
                else img.status + (f": {img.error}" if img.error else "")
            )
            if img.status == "failed" and img.retry_at is not None:
                result += f" (read again {_when(img.retry_at, now)})"
            print(f"  {_ago(img.updated_at, now):>12}  {where:<32} {result}  {img.path}")

        onsets = store.list_onsets(conn, include_reset=False)
        print(f"\nwells with onset ({len(onsets)}):")
        for o in onsets[: args.limit * 4]:
            tb = o.time_basis or basis.get(o.plate)
            print(
                f"  {o.plate} {o.well}: began ~{describe_time(o.onset_time_s, tb)}, detected "
                f"at {describe_time(o.detected_time_s, tb)} ({_ago(o.detected_at, now)}), "
                f"episode {o.episode}"
            )
        alerts = store.list_alerts(conn, limit=1000, unacknowledged_only=True)
        print(f"\nunacknowledged alerts ({len(alerts)}):")
        for a in alerts[: args.limit * 4]:
            channels = ", ".join(f"{k}: {v}" for k, v in a.channel_results.items())
            print(
                f"  #{a.id} {_ago(a.created_at, now)} [{a.kind}] {a.message}"
                + (f" ({channels})" if channels else "")
            )
    finally:
        conn.close()
    return 0
