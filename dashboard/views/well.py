"""One well: its probability over time (band, fields, smoothed, onset), reset, and the images
behind it with thumbnails and activation maps, read only from under the folders its
instrument's daemon watched."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import context, data, figures, lab, plots, reads, thumbs
from dashboard.context import Context
from stemwatch import store

IMAGE_ROWS = {"newest 8": 8, "newest 30": 30, "newest 100": 100}
THUMB_THREADS = 4  # decoding releases the GIL: thumbnails of a table are made side by side
CAM_HELP = (
    "Activation map: where in the image the model saw evidence. Red: differentiated, "
    "blue: undifferentiated, black: background (no tile analysed)."
)


def render_well(
    ctx: Context, summary: store.PlateSummary, well: str, onsets: list[store.OnsetRecord]
) -> None:
    """The well ``well`` of the plate ``summary`` (on its instrument)."""
    plate, who = summary.plate, summary.instrument
    tb = data.time_base(summary)
    version = reads.stamp(ctx.db_path)
    detail = reads.well_detail(ctx.db_path, version, plate, well, who, model_hash=ctx.model_hash)
    series = data.series_frame(detail.series, tb)
    images = data.images_frame(detail.images, tb)
    onset = data.active_onset(onsets, plate, well)
    onset_h = None if onset is None else tb.hours(onset.onset_time_s)

    st.subheader(f"Well {well}")
    if mapped := lab.well_text(reads.plate_map(ctx.db_path, version, plate, who), well, tb):
        st.caption(mapped)
    latest = series["mean"].iloc[-1] if not series.empty else None
    left_out = data.excluded_points(images)
    st.html(
        figures.row(
            [
                figures.Figure(
                    "Latest P(differentiated)", "–" if latest is None else f"{latest:.2f}"
                ),
                figures.Figure("Onset", "none" if onset is None else f"at {onset_h or 0:.1f} h"),
                figures.Figure("Images", len(images)),
                figures.Figure(
                    "Left out",
                    int((images["excluded"] != "").sum()),
                    "Images outside the model's training domain and bad frames (blank, "
                    "saturated, NaN): kept in the database, left out of the series and of "
                    "onset detection.",
                ),
            ]
        )
    )

    smoothed = data.smoothing_visible(series)
    fields = images[images["excluded"] == ""].dropna(subset=["probability", "time_h"])
    chart = plots.well_series_chart(
        series,
        fields[["time_h", "probability", "field"]],
        onset_h=onset_h,
        x_title=tb.label,
        show_smoothed=smoothed,
        excluded=left_out,
    )
    st.altair_chart(chart, key=f"series_{plate}_{well}")
    st.caption(
        series_caption(series, smoothed=smoothed, onset=onset is not None, excluded=left_out)
    )
    if onset is not None:
        with st.popover(f"Reset onset of {well}"):
            st.markdown(
                f"Closes the onset of **{well}** and re-arms its detector, e.g. after "
                "passaging or re-plating. The detector fires again only once the well's "
                "probability has fallen and risen again; the history stays in the database."
            )
            st.button(
                f"Reset {well}",
                key=f"reset_{plate}_{well}",
                type="primary",
                on_click=context.reset_onset,
                args=(ctx.db_path, plate, well, who),
            )
    context.show_write_error()
    folders = reads.watched_folders(ctx.db_path, version, who)  # its instrument's folders
    _images_table(ctx.db_path, images, folders)


def series_caption(
    series: pd.DataFrame,
    *,
    smoothed: bool,
    onset: bool,
    excluded: pd.DataFrame | None = None,
) -> str:
    """What the chart shows, as drawn (issue 13, item 6), and what it leaves out."""
    parts = [
        "Line: the well's P(differentiated) (mean over its fields)",
        data.band_caption(series),
        "dots: single fields",
    ]
    if smoothed:
        parts.append("dashed: smoothed (what the onset detector follows)")
    else:
        parts.append("the detector's smoothed series coincides with the line here")
    if onset:
        parts.append("red rule: estimated onset")
    kinds = set() if excluded is None else set(excluded["kind"])
    if "domain" in kinds:
        parts.append(
            "orange ×: images outside the model's training domain, at the probability that "
            "did not count"
        )
    if "quality" in kinds:
        parts.append("orange ▲ at 0: frames not analysed (blank, saturated or NaN)")
    text = "; ".join(parts) + "."
    if kinds:
        text += " Left-out images are not in the line, the band or onset detection."
    return text


def _images_table(db_path: str, images: pd.DataFrame, folders: tuple[str, ...]) -> None:
    if images.empty:
        st.markdown("**Images behind this well**: none")
        return
    label = st.selectbox(
        "**Images behind this well** (newest first)", list(IMAGE_ROWS), key="image_rows", width=320
    )
    limit = IMAGE_ROWS[str(label)]
    shown = images.tail(limit).iloc[::-1]
    any_cam = bool(shown["has_cam"].any())
    cams: dict[int, bytes | None] = {}
    if any_cam:
        with data.reading(db_path) as db:
            cams = {
                int(i): store.cam_png(db, int(i))
                for i, has in zip(shown["image_id"], shown["has_cam"], strict=True)
                if has
            }
    allowed = [data.image_allowed(str(p), folders) for p in shown["path"]]
    thumbs_ = _thumbnails(
        [
            (str(p), _int_or_none(m)) if ok else None
            for p, m, ok in zip(shown["path"], shown["mtime_ns"], allowed, strict=True)
        ]
    )
    rows = []
    for r, ok, thumb in zip(shown.itertuples(index=False), allowed, thumbs_, strict=True):
        path = str(r.path)
        notes = []
        if not ok:
            notes.append("not under a watched folder: not shown")
        elif thumb is None:
            notes.append("image file missing or unreadable")
        if r.status != "done":
            notes.append(str(r.status))
        if r.excluded:
            notes.append(f"left out of the series: {r.excluded}")
        row: dict[str, Any] = {
            "Time (h)": r.time_h,
            "Field": r.field,
            "P(diff.)": r.probability,
            "Image": thumbs.data_uri(thumb),
        }
        if any_cam:
            cam = cams.get(int(r.image_id))
            row["Activation"] = thumbs.data_uri(_cam_thumb(cam) if cam else None)
        row["File"] = Path(path).name
        row["Note"] = "; ".join(notes)
        rows.append(row)
    table = pd.DataFrame(rows)
    if not table["Note"].any():
        table = table.drop(columns="Note")
    st.dataframe(
        table,
        hide_index=True,
        row_height=72,
        column_config={
            "Time (h)": st.column_config.NumberColumn(format="%.1f", width="small"),
            "Field": st.column_config.NumberColumn(width="small"),
            "P(diff.)": st.column_config.ProgressColumn(
                format="%.2f", min_value=0, max_value=1, width="small"
            ),
            "Image": st.column_config.ImageColumn(width="small"),
            "Activation": st.column_config.ImageColumn(width="small", help=CAM_HELP),
            "File": st.column_config.TextColumn(width="medium", help="double-click to see all"),
        },
    )
    notes = []
    if any_cam:
        notes.append(
            "Activation maps: :red[red] differentiated, :blue[blue] undifferentiated, "
            "black background (not analysed)"
        )
    else:
        notes.append("no activation maps stored for these images")
    if not folders:
        notes.append(
            "no watched folder of this instrument is recorded in this database (written "
            "before stemwatch recorded them): restart its `stemwatch watch` to see the images"
        )
    if len(images) > limit:
        notes.append(f"showing the latest {limit} of {len(images)} images")
    st.caption("; ".join(notes))


def _thumbnails(files: list[tuple[str, int | None] | None]) -> list[bytes | None]:
    """Thumbnails of ``files`` (path, mtime_ns; None: not to be read), cached per table."""
    return list(_thumbnails_cached(tuple(files)))


@st.cache_data(max_entries=256, show_spinner=False)
def _thumbnails_cached(
    files: tuple[tuple[str, int | None] | None, ...],
) -> tuple[bytes | None, ...]:
    """Made in a few threads (decoding and downsampling release the GIL); ``mtime_ns`` is in
    the key, so a rewritten file gets a new thumbnail."""
    from concurrent.futures import ThreadPoolExecutor

    todo = [f[0] for f in files if f is not None]
    with ThreadPoolExecutor(THUMB_THREADS) as pool:
        made = dict(zip(todo, pool.map(thumbs.image_thumbnail, todo), strict=True))
    return tuple(None if f is None else made[f[0]] for f in files)


@st.cache_data(max_entries=4096, show_spinner=False)
def _cam_thumb(png: bytes) -> bytes | None:
    return thumbs.resize_png(png)


def _int_or_none(x: Any) -> int | None:
    return None if x is None or pd.isna(x) else int(x)
