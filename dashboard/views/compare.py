"""Compare: groups of wells, from one plate or several, as curves with their bands.

A group is a name and a set of (plate, well) (:class:`dashboard.data.WellGroup`), the plate
named as the sidebar names it (``instrument · plate`` where several instruments share the
database). Groups are made by hand, or start from "wells with an onset against the rest", or
from the plate map (issue 10): one group per condition, treatment, role or attribute
(:func:`dashboard.data.groups_from_conditions`).
"""

from __future__ import annotations

import streamlit as st

from dashboard import data, lab, plots, reads
from dashboard.context import Context
from stemwatch import store
from stemwatch.core.platemap import PlateMap

MAX_GROUPS = 8
PRESETS = ("wells with onset vs the rest", "by hand")
BY_MAP = "plate map: "  # presets "plate map: condition", "plate map: treatment", ...


def render(ctx: Context) -> None:
    st.title("Compare wells")
    st.caption(
        "Each group's mean P(differentiated) over its wells, band ± 1 SD across wells. "
        "Groups may take wells of different plates (e.g. maintenance on one plate, induced "
        "on another)."
    )
    choices = ctx.choices  # plates by their sidebar name (with the instrument where several)
    names = list(choices)
    version = reads.stamp(ctx.db_path)
    presets = [*(BY_MAP + k for k in lab.group_keys(_plate_map(ctx, version))), *PRESETS]
    if st.session_state.get("cmp_preset") not in presets:
        st.session_state["cmp_preset"] = presets[0]
    st.selectbox(
        "Start from",
        presets,
        key="cmp_preset",
        on_change=_apply_preset,
        args=(ctx, version),
        help="fills the groups below; edit them freely afterwards",
    )
    if "cmp_n" not in st.session_state:
        _apply_preset(ctx, version)
    n = int(st.number_input("Groups", min_value=1, max_value=MAX_GROUPS, step=1, key="cmp_n"))
    groups: list[data.WellGroup] = []
    for i in range(n):
        c = st.columns([2, 2, 6])
        st.session_state.setdefault(f"cmp_name_{i}", f"group {i + 1}")
        name = c[0].text_input("Name", key=f"cmp_name_{i}")
        plate = c[1].selectbox("Plate", names, key=f"cmp_plate_{i}")
        wells = _imaged_wells(ctx.db_path, version, choices[str(plate)])
        if any(w not in wells for w in st.session_state.get(f"cmp_wells_{i}", [])):
            st.session_state[f"cmp_wells_{i}"] = [
                w for w in st.session_state[f"cmp_wells_{i}"] if w in wells
            ]
        chosen = c[2].multiselect("Wells", wells, key=f"cmp_wells_{i}")
        if chosen:
            groups.append(data.WellGroup.of(name or f"group {i + 1}", str(plate), chosen))
    if not groups:
        st.info("Choose wells for at least one group.")
        return
    plates_used = sorted({p for g in groups for p, _ in g.members})
    series = {
        p: reads.plate_series(ctx.db_path, version, choices[p].plate, choices[p].instrument)
        for p in plates_used
    }
    bases = {p: ctx.time_base(p) for p in plates_used}
    curves = data.group_curves(groups, series, bases)
    labels = {tb.label for tb in bases.values()}
    st.altair_chart(
        plots.compare_chart(curves, x_title=labels.pop() if len(labels) == 1 else "Time (h)"),
        key="compare_chart",
    )
    st.download_button(
        "Group curves (CSV)",
        curves.to_csv(index=False, float_format="%.6g"),
        file_name="stemwatch-compare.csv",
        mime="text/csv",
        key="dl_compare",
    )


def _wells_of(
    db_path: str, version: reads.Stamp, plate: store.PlateSummary
) -> list[store.WellSummary]:
    return reads.plate_overview(db_path, version, plate.plate, plate.instrument).wells


def _imaged_wells(db_path: str, version: reads.Stamp, plate: store.PlateSummary) -> list[str]:
    return [w.well for w in _wells_of(db_path, version, plate) if w.n_timepoints > 0]


def _plate_map(ctx: Context, version: reads.Stamp) -> PlateMap | None:
    """The map of the sidebar's plate (None: none imported)."""
    summary = ctx.summary
    if summary is None:
        return None
    return reads.plate_map(ctx.db_path, version, summary.plate, summary.instrument)


def _apply_preset(ctx: Context, version: reads.Stamp) -> None:
    """Fill the groups' widgets from the chosen preset (a callback: before they are drawn)."""
    preset = str(st.session_state.get("cmp_preset", PRESETS[0]))
    choices = ctx.choices
    plate = ctx.plate if ctx.plate in choices else next(iter(choices), "")
    if preset == PRESETS[0] and plate:
        groups = data.onset_groups(plate, _wells_of(ctx.db_path, version, choices[plate]))
    elif preset.startswith(BY_MAP) and plate:
        imaged = set(_imaged_wells(ctx.db_path, version, choices[plate]))
        by = lab.conditions(_plate_map(ctx, version), preset.removeprefix(BY_MAP))
        groups = data.groups_from_conditions(plate, {w: c for w, c in by.items() if w in imaged})[
            :MAX_GROUPS
        ]
    else:
        groups = []
    groups = groups or [data.WellGroup("group 1", ())]
    st.session_state["cmp_n"] = len(groups)
    for i, g in enumerate(groups):
        st.session_state[f"cmp_name_{i}"] = g.name
        st.session_state[f"cmp_plate_{i}"] = g.members[0][0] if g.members else plate
        st.session_state[f"cmp_wells_{i}"] = [w for _, w in g.members]
