"""Models: the model a plate is shown through, and two models side by side (issue 10).

Every model that scored the plate (the daemon's, and re-analyses: ``stemwatch reanalyse``) can
be chosen in the sidebar ("Show results of"); the plate, well and replay views then show that
model's series and onsets. Two models are compared on the plate (agreement, wells whose onset
differs and by how much, accuracy on the lab's labelled wells neither model trained on, onset
figures by the plate map; 95 % intervals over wells: the figures of ``stemwatch compare``) and
on a well (both curves, both onsets). The sidebar's chooser is drawn by
:mod:`dashboard.shell` (every page has it).
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, lab, reads, tables
from dashboard.context import Context
from stemwatch import store
from stemwatch.core.compare import ModelComparison, compare_models

# the plate's figures as HTML tables: their cells wrap in a half-width column at 1280 px, where
# the data grid cut the last column of "Onsets by the plate map" off (issue 13)
DIFF_COLUMNS = (
    tables.Column("Well"),
    tables.Column("A onset (h)", "number", ".1f"),
    tables.Column("B onset (h)", "number", ".1f"),
    tables.Column("Difference"),
    tables.Column("Detection shift"),
)


def _text_columns(frame: pd.DataFrame) -> list[tables.Column]:
    return [tables.Column(str(c)) for c in frame.columns]


def render(ctx: Context) -> None:
    summary = ctx.summary
    if summary is None:
        st.warning(f"Plate {ctx.plate} is no longer in the database.")
        return
    st.title(f"Models · plate {summary.plate}")
    version = reads.stamp(ctx.db_path)
    models = reads.plate_models(ctx.db_path, version, summary.plate, summary.instrument)
    if len(models) < 2:
        st.info(
            "Only one model has scored this plate. Re-analyse it with another model to "
            "compare them:\n\n"
            f"```bash\nstemwatch reanalyse DB --model NEW.onnx --plate {summary.plate}\n```"
        )
        return
    names = {m.model_hash: lab.model_label(m) for m in models}
    hashes = list(names)
    if st.session_state.get("mdl_a") not in hashes:
        st.session_state["mdl_a"] = hashes[0]
    if st.session_state.get("mdl_b") not in hashes:
        st.session_state["mdl_b"] = hashes[1]
    c = st.columns(2)
    a = str(c[0].selectbox("Model A", hashes, key="mdl_a", format_func=names.__getitem__))
    b = str(c[1].selectbox("Model B", hashes, key="mdl_b", format_func=names.__getitem__))
    if a == b:
        st.warning("Choose two different models.")
        return
    tb = ctx.time_base()
    on_plate, on_well = st.tabs(["On the plate", "On a well"])
    with on_plate:
        comparison = _comparison(ctx.db_path, version, summary.plate, summary.instrument, a=a, b=b)
        plate_comparison(comparison, tb)
    with on_well:
        _well(ctx, summary, a, b, names=names, tb=tb)


@st.cache_data(max_entries=16, show_spinner=False)
def _comparison(
    db_path: str, version: reads.Stamp, plate: str, instrument: str, *, a: str, b: str
) -> ModelComparison:
    with data.reading(db_path) as db:
        inp = store.comparison_input(db, a, b, plates=[plate], instrument=instrument)
    return compare_models(inp)


def plate_comparison(c: ModelComparison, tb: data.TimeBase) -> None:
    """The figures of ``stemwatch compare`` for one plate."""
    m = st.columns(4)
    m[0].metric(
        "Images on the same side",
        "–" if c.image_agreement.value is None else f"{c.image_agreement.value:.2f}",
        help=f"of {c.n_both} images both scored, threshold {c.threshold:.2f}; 95 % interval "
        f"over wells: {c.image_agreement.text('.2f')}",
    )
    m[1].metric(
        "Same onset call (wells)",
        "–" if c.well_agreement.value is None else f"{c.well_agreement.value:.2f}",
        help=f"of {c.well_agreement.n_groups} wells both scored; 95 % interval (exact "
        f"binomial over wells): {c.well_agreement.text('.2f')}",
    )
    m[2].metric("Wells whose onset differs", len(c.onset_differences))
    m[3].metric(
        "Mean |pA − pB|",
        "–" if c.mean_abs_difference is None else f"{c.mean_abs_difference:.2f}",
    )
    st.caption(
        f"A: {c.a.name} · B: {c.b.name} · {c.n_both} images scored by both, {c.n_only_a} "
        f"only by A, {c.n_only_b} only by B. Images on the same side "
        f"{c.image_agreement.text('.2f')}, same onset call {c.well_agreement.text('.2f')} "
        "(95 % intervals over wells: a bootstrap for images, exact binomial for wells)."
    )
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**Wells where the onset differs** (B minus A)")
        diffs = lab.onset_differences_frame(c, tb)
        if diffs.empty:
            st.caption("none")
        else:
            st.html(tables.table(diffs, DIFF_COLUMNS, max_height=400))
    with right:
        acc = lab.accuracy_frame(c)
        if acc is not None and c.accuracy_a is not None:
            st.markdown(
                "**Accuracy on labelled wells neither model trained on** "
                f"({c.accuracy_a.n_images} images, {c.accuracy_a.n_wells} wells)"
            )
            st.html(tables.table(acc, _text_columns(acc)))
        for why, n in c.labelled_wells_left_out.items():
            st.caption(f"left out: {n} labelled well(s) {why}")
        figures = lab.onset_figures_frame(c)
        if figures is not None:
            st.markdown("**Onsets by the plate map**")
            st.html(tables.table(figures, _text_columns(figures)))
    for note in c.notes:
        st.caption(f"note: {note}")


def _well(
    ctx: Context,
    summary: store.PlateSummary,
    a: str,
    b: str,
    *,
    names: dict[str, str],
    tb: data.TimeBase,
) -> None:
    version = reads.stamp(ctx.db_path)
    ov = reads.plate_overview(ctx.db_path, version, summary.plate, summary.instrument)
    imaged = [w.well for w in ov.wells if w.n_timepoints > 0]
    if not imaged:
        st.info("No well has a series yet.")
        return
    if st.session_state.get("mdl_well") not in imaged:
        wanted = st.session_state.get("well")
        st.session_state["mdl_well"] = wanted if wanted in imaged else imaged[0]
    well = str(st.selectbox("Well", imaged, key="mdl_well"))
    plate, who = summary.plate, summary.instrument
    with data.reading(ctx.db_path) as db:
        series = {
            names[h]: store.well_series(db, plate, well, model_hash=h, instrument=who)
            for h in (a, b)
        }
        onsets = {
            names[h]: [
                o
                for o in store.list_onsets(db, plate, model_hash=h, instrument=who)
                if o.well == well and o.onset_time_s is not None
            ]
            for h in (a, b)
        }
    rules = pd.DataFrame(
        [
            {"model": name, "onset_h": tb.hours(found[0].onset_time_s)}
            for name, found in onsets.items()
            if found
        ],
        columns=["model", "onset_h"],
    )
    frame = lab.two_series_frame(series, tb)
    st.altair_chart(models_chart(frame, rules, x_title=tb.label), key=f"models_{plate}_{well}")
    said = "; ".join(
        f"{name}: onset at {tb.hours(found[0].onset_time_s) or 0.0:.1f} h"
        if found
        else f"{name}: no onset"
        for name, found in onsets.items()
    )
    st.caption(
        "Each model's P(differentiated) of the well (mean over its fields), band ± 1 SD "
        f"across fields; dashed rules: each model's estimated onset. {said}."
    )


def models_chart(frame: pd.DataFrame, rules: pd.DataFrame, *, x_title: str) -> alt.LayerChart:
    """Several models' series of one well, with their bands and onset rules."""
    color = alt.Color("model:N", title="Model", legend=alt.Legend(orient="bottom"))
    x = alt.X("time_h:Q", title=x_title)
    base = alt.Chart(frame).encode(x=x, color=color)
    band = base.mark_area(opacity=0.15).encode(y="lower:Q", y2="upper:Q")
    line = base.mark_line(point=True).encode(
        y=alt.Y("mean:Q", title="P(differentiated)", scale=alt.Scale(domain=[0, 1])),
        tooltip=[
            alt.Tooltip("model:N", title="Model"),
            alt.Tooltip("time_h:Q", title="Time (h)", format=".1f"),
            alt.Tooltip("mean:Q", title="P(differentiated)", format=".2f"),
        ],
    )
    layers: list[alt.Chart] = [band, line]
    if not rules.empty:
        layers.append(
            alt.Chart(rules)
            .mark_rule(strokeDash=[6, 3], strokeWidth=2)
            .encode(x="onset_h:Q", color=color)
        )
    return alt.LayerChart(layer=layers, height=320)
