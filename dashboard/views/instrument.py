"""Instrument: the daemon's heartbeat, its model and card, the execution provider, throughput
and queue over the last hours, failures with their reasons, the watched folders, and the
domain flags (domain alerts, images outside the model's training domain and bad frames). A
facility's database holds several instruments: each has a line in an overview, and the chosen
one is shown in full."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import data, plots, reads
from dashboard.context import Context
from stemwatch import store

WINDOWS_H = {"6 h": 6, "24 h": 24, "3 days": 72, "7 days": 168}
MAX_FAILURES = 200
MAX_FLAGGED = 50


def render(ctx: Context) -> None:
    label = st.segmented_control("Window", list(WINDOWS_H), default="24 h", key="inst_window")
    hours = WINDOWS_H[str(label or "24 h")]
    now = time.time()
    since = now - hours * 3600.0
    try:
        with data.reading(ctx.db_path) as db:
            names = store.list_instruments(db)
            beats = {hb.instrument: hb for hb in store.heartbeats(db)}
            if len(names) > 1:  # a facility: every instrument in a line, then the chosen one
                st.title("Instruments")
                st.dataframe(instruments_frame(db, names, beats, now=now), hide_index=True)
                if st.session_state.get("inst_name") not in names:
                    st.session_state["inst_name"] = names[0]
                who: str | None = str(st.selectbox("Instrument", names, key="inst_name"))
                st.header(who)
            else:
                st.title("Instrument")
                who = names[0] if names else None
            hb = beats.get(who) if who is not None else None
            model = store.current_model(db, instrument=who)
            models = store.list_models(db, instrument=who)
            bins = store.throughput(db, since=since, until=now, bin_s=3600.0, instrument=who)
            queue = store.heartbeat_history(db, since=since, instrument=who)
            failures = store.failed_images(db, since=since, limit=MAX_FAILURES, instrument=who)
            folders = store.watched_folders(db, instrument=who)
            totals = store.counts(db, instrument=who)
    except store.StoreError as exc:
        st.error(f"Cannot read the database: {exc}")
        return
    left, right = st.columns(2, gap="large")
    with left:
        _daemon(hb, now, totals)
        st.markdown("**Watched folders** (images are shown only from under these)")
        if folders:
            for f in folders:
                st.markdown(f"- `{f.path}` (last started {data.age_text(now - f.last_seen)})")
        else:
            st.caption("none recorded yet: start `stemwatch watch` on this database")
    with right:
        _model(model, models)
    st.subheader(f"Throughput, last {label}")
    frame = data.throughput_frame(bins)
    if frame[["scored", "failed"]].to_numpy().sum() == 0:
        st.caption("No image scored or failed in this window.")
    else:
        st.altair_chart(plots.throughput_chart(frame), key="throughput_chart")
        per_h = frame["scored"].tail(3).mean()
        st.caption(f"{int(frame['scored'].sum())} images scored; {per_h:.0f}/h over the last 3 h")
    st.subheader("Queue")
    qframe = data.queue_frame(queue)
    if qframe["queued"].notna().sum() == 0:
        st.caption("No heartbeat with a queue in this window.")
    else:
        st.altair_chart(plots.queue_chart(qframe), key="queue_chart")
    st.subheader(f"Failures ({len(failures)} in the window)")
    if failures:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "File": Path(f.path).name,
                        "Plate": f.plate,
                        "Well": f.well,
                        "Attempts": f.attempts,
                        "Reason": f.error,
                        "When": data.age_text(now - f.updated_at),
                    }
                    for f in failures
                ]
            ),
            hide_index=True,
        )
    else:
        st.caption("No image failed in this window.")
    _domain_flags(ctx, who, now)


def _domain_flags(ctx: Context, who: str | None, now: float) -> None:
    """Images left out of the series: the domain alerts, per plate, and the newest ones."""
    st.subheader("Domain flags")
    try:
        flags = reads.domain_flags(ctx.db_path, reads.stamp(ctx.db_path), who, MAX_FLAGGED)
    except store.StoreError as exc:
        st.error(f"Cannot read the domain flags: {exc}")
        return
    open_alerts = [a for a in flags.alerts if a.acknowledged_at is None]
    for a in open_alerts:
        st.error(f"**Domain alert** ({data.age_text(now - a.created_at)}): {a.message}", icon="🚩")
    seen = [a for a in flags.alerts if a.acknowledged_at is not None]
    if seen:
        st.caption(
            f"{len(seen)} earlier domain alert{'s' if len(seen) != 1 else ''} acknowledged "
            "(Alerts page)."
        )
    frame = data.domain_frame(flags.plates, now=now)
    flagged = frame[(frame["Outside the domain"] > 0) | (frame["Bad frames"] > 0)]
    unchecked = frame[(frame["Domain-scored"] == 0) & (frame["Images"] > frame["Bad frames"])]
    if frame.empty:
        st.caption("No plate has analysed images yet.")
        return
    if flagged.empty:
        st.caption(
            "No image is left out: every analysed image lies inside the model's training "
            "domain and no frame was blank, saturated or NaN."
        )
    else:
        out, bad = int(flagged["Outside the domain"].sum()), int(flagged["Bad frames"].sum())
        st.markdown(
            f"**{out}** image{'s' if out != 1 else ''} outside the model's training domain and "
            f"**{bad}** bad frame{'s' if bad != 1 else ''} (blank, saturated or NaN) are kept "
            "in the database but left out of the wells' series and of onset detection."
        )
        st.dataframe(flagged, hide_index=True)
    if not unchecked.empty:
        st.caption(
            "Not checked against a training domain (the model carries no description of it): "
            + ", ".join(str(p) for p in unchecked["Plate"])
            + ". Export the model again with a domain description (docs/domain-check.md)."
        )
    if flags.newest:
        st.markdown(f"**Newest images left out** (up to {MAX_FLAGGED})")
        st.dataframe(data.flagged_frame(flags.newest, now=now), hide_index=True)
    st.caption(
        "What the domain check does, and how to train a model on your own images: "
        "docs/domain-check.md."
    )


def instruments_frame(
    db: store.Database, names: list[str], beats: dict[str, store.Heartbeat], *, now: float
) -> pd.DataFrame:
    """One line per instrument: its daemon, queue, model and images."""
    rows = []
    for name in names:
        status = data.daemon_status(beats.get(name), now=now)
        model = store.current_model(db, instrument=name)
        c = store.counts(db, instrument=name)
        rows.append(
            {
                "Instrument": name,
                "Daemon": status.state,
                "Last heartbeat": data.age_text(status.age_s),
                "Queued": status.queued,
                "Model": None if model is None else model.name or model.model_hash[:12],
                "Provider": None if model is None else model.provider,
                "Images analysed": c.done,
                "Failed": c.failed,
            }
        )
    return pd.DataFrame(rows)


def _daemon(hb: store.Heartbeat | None, now: float, totals: store.Counts) -> None:
    st.subheader("Daemon")
    status = data.daemon_status(hb, now=now)
    st.markdown(f"{_badge(status.state)} last heartbeat {data.age_text(status.age_s)}")
    if hb is None:
        st.caption("The daemon has never run on this database.")
        return
    rows = {
        "state": hb.state or "",
        "host": f"{hb.host or '?'} (pid {hb.pid})",
        "heartbeat every": f"{hb.interval_s:g} s" if hb.interval_s else "unknown",
        "queued": "–" if status.queued is None else str(status.queued),
        "its own tally since start": hb.detail or "",
    }
    _facts(rows)
    st.caption(
        f"The database holds {totals.done} current analysed images, {totals.failed} failed, "
        f"and {totals.superseded} earlier versions replaced by re-acquisitions. The daemon's "
        "tally counts every version it processed since it started, so it can be higher."
    )


def _model(model: store.ModelRecord | None, models: list[store.ModelRecord]) -> None:
    st.subheader("Model")
    if model is None:
        st.caption("No model registered yet.")
        return
    card = data.model_card(model, reads.bundled_card(model.model_hash))
    st.markdown(f"**{card.name}**  \n`{card.model_hash[:16]}`")
    st.markdown(f"Execution provider: `{card.provider}`")
    if card.facts:
        st.table(pd.DataFrame({"": list(card.facts), " ": list(card.facts.values())}).set_index(""))
    if card.card_text:
        with st.expander("Model card"):
            st.markdown(card.card_text)
    else:
        st.caption("No model card for this model here; its metadata is shown above.")
    if len(models) > 1:
        st.caption(
            "Models used on this database: " + ", ".join(m.name or m.model_hash[:8] for m in models)
        )


def _facts(facts: dict[str, str]) -> None:
    st.markdown("\n".join(f"- **{k}**: {v}" for k, v in facts.items() if v))


def _badge(state: str) -> str:
    return {
        "alive": ":green-badge[● alive]",
        "stale": ":orange-badge[● stale]",
        "stopped": ":gray-badge[● stopped]",
        "never": ":gray-badge[● never started]",
    }[state]
