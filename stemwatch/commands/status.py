"""`stemwatch status`: Print what the daemon is doing, from its database."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from stemwatch.commands.watch import DB_ENV, INSTRUMENT_ENV

if TYPE_CHECKING:
    from stemwatch.store import DomainSummary, Heartbeat, ImageRecord


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "status",
        help="Print what the daemon is doing, from its database",
        description="Print what the daemon is doing, from its database (opened read-only).",
    )
    p.add_argument(
        "--db",
        default=None,
        metavar="PATH|URL",
        help="the daemon's database, a SQLite file or a postgresql:// URL (default: "
        "$STEMWATCH_DB, else `database` of --config, else stemwatch.db)",
    )
    p.add_argument(
        "--instrument",
        default=None,
        metavar="NAME",
        help="only this instrument's daemon, plates and images (default: "
        "$STEMWATCH_INSTRUMENT, else every instrument)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="health check: print one line per daemon and exit 1 when a daemon's heartbeat is "
        "stale or missing (container healthchecks, monitoring); 0 when all are alive",
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


def _daemon_line(hb: Heartbeat, now: float, stale_after_s: float | None, label: str) -> str:
    liveness = hb.liveness(now, stale_after_s=stale_after_s)
    verdict = {
        "stopped": "stopped",
        "alive": f"alive; state {hb.state}",
        "stale": f"NOT RUNNING (stale heartbeat; last state {hb.state})",
    }[liveness]
    detail = f" - {hb.detail}" if hb.detail else ""
    return (
        f"{label}{verdict}{detail}; last heartbeat {_ago(hb.at, now)} (pid {hb.pid} on {hb.host})"
    )


def domain_note(d: DomainSummary | None) -> str:
    """What a plate line says about bad frames and images outside the model's domain."""
    if d is None:
        return ""
    parts = []
    if d.n_scored:
        parts.append(f"{d.n_out_of_domain} of {d.n_scored} out of the model's domain")
    if d.n_quality:
        parts.append(f"{d.n_quality} bad frames (not analysed)")
    return "; " + ", ".join(parts) if parts else ""


def image_result(img: ImageRecord) -> str:
    """An image's outcome in one phrase: its probability, why it was not analysed, or that it
    lies outside the model's training domain."""
    if img.quality is not None:
        return f"NOT ANALYSED ({img.quality})"
    if img.status == "done" and img.probability is not None:
        p = f"p={img.probability:.2f}"
        if img.out_of_domain:
            return f"OUT OF DOMAIN (domain score {img.domain_score:.1f}; {p} not used)"
        return p
    return img.status + (f": {img.error}" if img.error else "")


def check(
    beats: list[Heartbeat], instrument: str | None, now: float, stale_after_s: float | None
) -> int:
    """``--check``: one line per daemon; 0 when every one is alive, else 1."""
    if not beats:
        who = f"instrument {instrument!r}" if instrument else "any instrument"
        print(f"UNHEALTHY: no heartbeat from {who} in this database")
        return 1
    healthy = True
    for hb in beats:
        liveness = hb.liveness(now, stale_after_s=stale_after_s)
        healthy &= liveness == "alive"
        word = "ok" if liveness == "alive" else "UNHEALTHY"
        print(
            f"{word}: {hb.instrument or '(unnamed)'} {liveness}, last heartbeat {_ago(hb.at, now)}"
        )
    return 0 if healthy else 1


def run(args: argparse.Namespace) -> int:
    from monitor.config import MonitorConfig
    from stemwatch import store
    from stemwatch.core.config import load_config
    from stemwatch.core.times import describe_time

    config = load_config(MonitorConfig, args.config) if args.config else MonitorConfig()
    db = args.db or os.environ.get(DB_ENV) or config.database
    only = args.instrument or os.environ.get(INSTRUMENT_ENV) or None
    conn = store.open_db(db, readonly=True)
    now = time.time()
    try:
        beats = [hb for hb in store.heartbeats(conn) if only is None or hb.instrument == only]
        if args.check:
            return check(beats, only, now, args.stale_after)
        print(f"database: {conn.source}")
        several = len(store.list_instruments(conn)) > 1 or only is not None
        if not beats:
            print(
                f"daemon:   {only} never ran on this database"
                if only
                else "daemon:   never ran on this database"
            )
        for hb in beats:
            label = f"daemon:   {hb.instrument}: " if several else "daemon:   "
            print(_daemon_line(hb, now, args.stale_after, label))
        models = [store.current_model(conn, instrument=hb.instrument) for hb in beats] or [
            store.current_model(conn, instrument=only)
        ]
        if not any(models):
            print("model:    none registered yet")
        for model in models:
            if model is None:
                continue
            who = f"{model.instrument}: " if several else ""
            print(
                f"model:    {who}{model.name} ({model.model_hash[:12]}) on {model.provider}, "
                f"last used {_ago(model.last_seen, now)}"
            )
        c = store.counts(conn, instrument=only)
        alive_queues = [
            hb.queued
            for hb in beats
            if hb.queued is not None and hb.liveness(now, stale_after_s=args.stale_after) == "alive"
        ]
        queued = f", {sum(alive_queues)} queued in the daemon" if alive_queues else ""
        print(
            f"images:   {c.done} done, {c.failed} failed{queued}"
            + (f" ({c.superseded} older versions superseded)" if c.superseded else "")
        )
        skipped = store.skipped_counts(conn, limit=args.limit, instrument=only)
        if skipped:
            print(f"skipped:  {sum(k.count for k in skipped)} file(s) not analysed on purpose:")
            for k in skipped:
                print(f"  {k.count:>6} {k.kind}: {k.reason}")
        plates = store.list_plates(conn, instrument=only)
        basis = {(p.instrument, p.plate): p.time_basis for p in plates}
        domain = {(d.instrument, d.plate): d for d in store.domain_summary(conn, instrument=only)}
        for p in plates:
            name = f"{p.instrument}/{p.plate}" if several else p.plate
            print(
                f"plate:    {name}: {p.n_wells} wells, {p.n_images} images, "
                f"up to {describe_time(p.last_time_s, p.time_basis)}, "
                f"{p.n_onsets} wells with onset" + domain_note(domain.get((p.instrument, p.plate)))
            )

        recent = store.recent_images(conn, limit=args.limit, instrument=only)
        print(f"\nlast images ({len(recent)}):")
        for img in recent:
            where = (
                f"{img.plate} {img.well} field {img.field} @ "
                f"{describe_time(img.time_s, img.time_basis)}"
                if img.well
                else "(no plate/well)"
            )
            result = image_result(img)
            if img.status == "failed" and img.retry_at is not None:
                result += f" (read again {_when(img.retry_at, now)})"
            who = f"{img.instrument}: " if several else ""
            print(f"  {_ago(img.updated_at, now):>12}  {who}{where:<32} {result}  {img.path}")

        flagged = store.flagged_images(conn, limit=args.limit, instrument=only)
        if flagged:
            print(f"\nflagged images (newest {len(flagged)}; kept out of onset detection):")
            for img in flagged:
                who = f"{img.instrument}: " if several else ""
                where = f"{img.plate} {img.well}" if img.well else "(no plate/well)"
                print(f"  {_ago(img.updated_at, now):>12}  {who}{where:<12} {image_result(img)}")
                print(f"{'':16}{img.path}")

        onsets = store.list_onsets(conn, include_reset=False, instrument=only)
        print(f"\nwells with onset ({len(onsets)}):")
        for o in onsets[: args.limit * 4]:
            tb = o.time_basis or basis.get((o.instrument, o.plate))
            who = f"{o.instrument}/" if several else ""
            print(
                f"  {who}{o.plate} {o.well}: began ~{describe_time(o.onset_time_s, tb)}, "
                f"detected at {describe_time(o.detected_time_s, tb)} "
                f"({_ago(o.detected_at, now)}), episode {o.episode}"
            )
        alerts = store.list_alerts(conn, limit=1000, unacknowledged_only=True, instrument=only)
        print(f"\nunacknowledged alerts ({len(alerts)}):")
        for a in alerts[: args.limit * 4]:
            channels = ", ".join(f"{k}: {v}" for k, v in a.channel_results.items())
            who = f"{a.instrument}: " if several else ""
            print(
                f"  #{a.id} {_ago(a.created_at, now)} [{a.kind}] {who}{a.message}"
                + (f" ({channels})" if channels else "")
            )
    finally:
        conn.close()
    return 0
