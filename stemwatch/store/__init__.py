"""The stemwatch database: the only module of the project that speaks SQL.

The daemon writes, the dashboard and ``stemwatch status`` read, all through the functions
named here, which take a :class:`Database` (from :func:`open_db`) and return the frozen
dataclasses of :mod:`stemwatch.store.records`. Callers never build SQL, never see a row or
an engine error (every database problem is a :class:`StoreError` naming the file and the
fix), so the schema evolves behind these functions and the engine is a matter of the target:
a file path is SQLite (the embedded default), a ``postgresql://`` URL is PostgreSQL (the
facility store, several daemons in one database). ``tests/store/test_sql_owner.py`` fails when
SQL appears anywhere else. See docs/database.md.

Inside: :mod:`~stemwatch.store.schema` (tables and migrations, each engine's DDL),
:mod:`~stemwatch.store.target` (file path or URL; instrument names),
:mod:`~stemwatch.store.database` (the handle), :mod:`~stemwatch.store.sqlite_engine` and
:mod:`~stemwatch.store.postgres_engine` (what differs between engines),
:mod:`~stemwatch.store.connection` (opening, transactions, retries),
:mod:`~stemwatch.store.instruments` (which instrument a call is about),
:mod:`~stemwatch.store.records` (what goes in and comes out; the liveness rule),
:mod:`~stemwatch.store.images` (image versions, predictions; "already recorded?"),
:mod:`~stemwatch.store.wells` (series, onsets, detector state, plate and well summaries),
:mod:`~stemwatch.store.alerts` (alerts, deliveries, instrument conditions),
:mod:`~stemwatch.store.daemon` (models, watched folders, heartbeat and its log).

Times are float seconds: ``*_at`` values are wall-clock (Unix epoch); ``time_s`` is the
image's time as resolved by :mod:`stemwatch.core.platemeta`, whose ``time_basis`` says
whether it is elapsed experiment time or a wall-clock time.
"""

from stemwatch.store.alerts import (
    acknowledge_alert,
    alert_condition,
    begin_condition,
    deliveries_since,
    end_condition,
    held_back,
    list_alerts,
    record_alert,
    record_delivery,
    set_channel_results,
)
from stemwatch.store.connection import BUSY_TIMEOUT_S, batch, change_stamp, open_db
from stemwatch.store.daemon import (
    beat,
    current_model,
    heartbeat_history,
    heartbeats,
    last_heartbeat,
    list_models,
    record_watched_folder,
    register_model,
    watched_folders,
)
from stemwatch.store.database import Database
from stemwatch.store.errors import StoreBusyError, StoreError, StoreMissingError
from stemwatch.store.images import (
    already_recorded,
    cam_png,
    count_unplaced,
    counts,
    failed_images,
    images_for_well,
    last_image_arrival,
    prediction_times,
    recent_failures,
    recent_images,
    record_failure,
    record_prediction,
    record_result,
    throughput,
    typical_field_interval_s,
    unplaced_images,
)
from stemwatch.store.instruments import list_instruments
from stemwatch.store.records import (
    AlertCondition,
    AlertRecord,
    Counts,
    FileVersion,
    Heartbeat,
    HeartbeatSample,
    HeldBackAlert,
    ImageRecord,
    ModelRecord,
    NewOnset,
    OnsetRecord,
    PlateSummary,
    Prediction,
    RecentFailures,
    SeriesPoint,
    ThroughputBin,
    TimePoint,
    WatchedFolder,
    WellState,
    WellSummary,
)
from stemwatch.store.schema import SCHEMA_VERSION
from stemwatch.store.target import (
    Target,
    check_instrument,
    default_instrument,
    parse_target,
)
from stemwatch.store.wells import (
    list_onsets,
    list_plates,
    plate_model,
    plate_series,
    reset_well,
    save_well_analysis,
    well_series,
    well_state,
    well_summary,
)

__all__ = [
    "BUSY_TIMEOUT_S",
    "SCHEMA_VERSION",
    "AlertCondition",
    "AlertRecord",
    "Counts",
    "Database",
    "FileVersion",
    "Heartbeat",
    "HeartbeatSample",
    "HeldBackAlert",
    "ImageRecord",
    "ModelRecord",
    "NewOnset",
    "OnsetRecord",
    "PlateSummary",
    "Prediction",
    "RecentFailures",
    "SeriesPoint",
    "StoreBusyError",
    "StoreError",
    "StoreMissingError",
    "Target",
    "ThroughputBin",
    "TimePoint",
    "WatchedFolder",
    "WellState",
    "WellSummary",
    "acknowledge_alert",
    "alert_condition",
    "already_recorded",
    "batch",
    "beat",
    "begin_condition",
    "cam_png",
    "change_stamp",
    "check_instrument",
    "count_unplaced",
    "counts",
    "current_model",
    "default_instrument",
    "deliveries_since",
    "end_condition",
    "failed_images",
    "heartbeat_history",
    "heartbeats",
    "held_back",
    "images_for_well",
    "last_heartbeat",
    "last_image_arrival",
    "list_alerts",
    "list_instruments",
    "list_models",
    "list_onsets",
    "list_plates",
    "open_db",
    "parse_target",
    "plate_model",
    "plate_series",
    "prediction_times",
    "recent_failures",
    "recent_images",
    "record_alert",
    "record_delivery",
    "record_failure",
    "record_prediction",
    "record_result",
    "record_watched_folder",
    "register_model",
    "reset_well",
    "save_well_analysis",
    "set_channel_results",
    "throughput",
    "typical_field_interval_s",
    "unplaced_images",
    "watched_folders",
    "well_series",
    "well_state",
    "well_summary",
]
