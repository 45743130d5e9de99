"""Configuration of the monitor daemon (one YAML file, validated).

``stemwatch config monitor --example`` prints these models with their descriptions as comments.
The onset and alerts sections belong to :mod:`monitor.onset` and :mod:`monitor.alerts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from monitor.alerts import AlertsConfig
from monitor.domain_check import DomainCheckConfig
from monitor.onset import OnsetConfig
from stemwatch import store
from stemwatch.core.config import StrictModel
from stemwatch.core.filekinds import READABLE_SUFFIXES, UNSUPPORTED_SUFFIXES
from stemwatch.core.platemeta import PlateMetaConfig

# read, or recorded as an unsupported format; "" lets names without a suffix be sniffed
DEFAULT_SUFFIXES = [*sorted(READABLE_SUFFIXES), *sorted(UNSUPPORTED_SUFFIXES), ""]

# Peak bytes per decoded pixel of read + decode + prepare, measured with
# tests/benchmarks/bench_decode_memory.py (docs/monitor-limits.md): 3.5 for uncompressed
# 16-bit, 7.2 for deflate-compressed 16-bit, 5.3 for float32, 11 for 8-bit RGB. Two decode
# workers at 250 MP of the worst case hold ~2 x 2.8 GB: within the 8 GB MemoryMax of
# deploy/stemwatch-monitor.service on the 24 GB, 2-core reference machine.
DEFAULT_MAX_MEGAPIXELS = 250.0


class WatchConfig(StrictModel):
    """How new images are noticed and when a file counts as completely written."""

    polling: bool = Field(
        default=False,
        description=(
            "Use a polling observer instead of inotify. Needed on network shares (SMB/NFS),\n"
            "where inotify sees nothing."
        ),
    )
    polling_interval_s: float = Field(
        default=1.0, gt=0, description="Seconds between directory polls with `polling: true`."
    )
    recursive: bool = Field(default=True, description="Also watch sub-folders.")
    quiet_period_s: float = Field(
        default=2.0,
        ge=0,
        description=(
            "A file is complete once it had no events for this long and its size and mtime\n"
            "did not change meanwhile (then its TIFF structure and page count are checked)."
        ),
    )
    rescan_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between rescans of the folder for images with no record "
        "(dropped events).",
    )
    folder_check_interval_s: float = Field(
        default=5.0,
        gt=0,
        description="Seconds between checks that the watched folder still exists "
        "(a re-mounted share re-arms the observer).",
    )
    max_file_mb: float = Field(
        default=1024.0,
        gt=0,
        description=(
            "Files larger than this are recorded as failed without being read: each decode\n"
            "worker reads one whole file into memory (hash, structure check and decoding use\n"
            "that one read). 1 GB holds a 250 MP float32 plane."
        ),
    )
    max_megapixels: float = Field(
        default=DEFAULT_MAX_MEGAPIXELS,
        gt=0,
        description=(
            "Planes declaring more pixels (width x height, in millions) are recorded as\n"
            "failed before decoding: decoding takes 3.5-11 bytes per pixel at peak\n"
            "(docs/monitor-limits.md). 250 MP is a 15800 x 15800 image."
        ),
    )
    remembered_files: int = Field(
        default=100_000,
        ge=1,
        description=(
            "Recorded file versions the daemon remembers in memory, the least recently seen\n"
            "forgotten first (about 0.6 KB each: 60 MB at 100,000); a rescan looks up the\n"
            "others in the database, one query per file."
        ),
    )
    suffixes: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SUFFIXES),
        description=(
            'File suffixes looked at (case-insensitive); "" = names without a suffix, told\n'
            "apart by their first bytes. Formats that are not read (.nd2, .czi, .h5 ...) are\n"
            "recorded as unsupported; other files are ignored silently."
        ),
    )
    ignore: list[str] = Field(
        default_factory=list,
        description=(
            "Extra glob patterns of file names to ignore silently, on top of the built-in\n"
            "ones (~$*, *.tmp, *.part, hidden files, Thumbs.db, ...). Analysis outputs\n"
            "(masks, thumbnails, correction images) are recorded as skipped anyway."
        ),
    )


class InferenceConfig(StrictModel):
    """The ONNX model and how it runs."""

    model: Path | None = Field(
        default=None,
        description="The exported .onnx model; empty means models/stemwatch-default.onnx.",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto",
        description="auto: CUDA execution provider when present, else CPU.",
    )
    require_gpu: bool = Field(
        default=False, description="Fail at startup instead of falling back to the CPU."
    )
    intra_op_threads: int = Field(
        default=1, ge=1, description="onnxruntime intra-op threads per inference worker."
    )
    inference_workers: int = Field(
        default=1,
        ge=1,
        description="Threads running the model concurrently (each uses intra_op_threads).",
    )
    decode_workers: int = Field(
        default=2, ge=1, description="Threads reading, decoding and tiling images beside inference."
    )
    batch_tiles: int = Field(
        default=32,
        ge=1,
        description="Tiles of several images are batched up to this many (CPU: 16-32 is best).",
    )
    batch_wait_s: float = Field(
        default=0.02,
        ge=0,
        description="How long a partial batch waits for more images before it runs.",
    )
    queue_images: int = Field(
        default=8,
        ge=1,
        description="Decoded images waiting for inference at most; bounds memory with a backlog.",
    )
    warmup: bool = Field(default=True, description="Run one batch at startup.")
    watch_model_file: bool = Field(
        default=True,
        description=(
            "Take a new model when the model file is replaced (e.g. `mv new.onnx model.onnx`),\n"
            "without a restart; SIGHUP does so too. The batch in flight finishes with the old\n"
            "model; the switch is logged and stored."
        ),
    )
    model_check_interval_s: float = Field(
        default=2.0, gt=0, description="Seconds between checks of the model file."
    )


class RetryConfig(StrictModel):
    """What happens to files that cannot be read (yet)."""

    max_attempts: int = Field(
        default=5,
        ge=1,
        description=(
            "Attempts before a file that cannot be read (denied, I/O error) or is cut off\n"
            "is recorded as failed with the reason. Files above a limit fail at once."
        ),
    )
    initial_backoff_s: float = Field(
        default=2.0, ge=0, description="Wait before the second attempt; doubles each time."
    )
    max_backoff_s: float = Field(default=60.0, ge=0, description="Longest wait between attempts.")
    recheck_failed_s: float = Field(
        default=600.0,
        gt=0,
        description=(
            "A file that failed because it could not be read (permission denied, an I/O\n"
            "error, a share gone) is read again this often, even unchanged, until it\n"
            "succeeds, across restarts too. Corrupt files are read again when they change."
        ),
    )


class PlateConfig(PlateMetaConfig):
    """How plate, well, field and time point are found for each image (the shared resolver's
    settings), and the smallest image accepted."""

    min_image_size: int = Field(
        default=0,
        ge=0,
        description=(
            "Smallest accepted image side in pixels; 0 means one tile after downsampling.\n"
            "Smaller images are recorded as failed."
        ),
    )


class MonitorConfig(StrictModel):
    """The monitor daemon beside the microscope."""

    config_component: ClassVar[str | None] = "monitor"

    database: str = Field(
        default="stemwatch.db",
        description=(
            "Where results go: a SQLite file (on a local disk, never a network share), or a\n"
            "PostgreSQL URL shared by a facility's daemons: postgresql://USER@HOST/DBNAME\n"
            "(password in PGPASSWORD or ~/.pgpass, not in this file)."
        ),
    )
    instrument: str = Field(
        default="",
        description=(
            "Name of this daemon's instrument, recorded on every row it writes (several\n"
            "daemons share one PostgreSQL database). Empty: this computer's host name."
        ),
    )
    folder: Path | None = Field(
        default=None, description="Folder the microscope writes to (the command line wins)."
    )
    heartbeat_interval_s: float = Field(
        default=10.0, gt=0, description="Seconds between heartbeats written to the database."
    )
    instrument_check_interval_s: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between instrument checks (stalled acquisition, daemon health).",
    )
    watch: WatchConfig = Field(default_factory=WatchConfig, description="Noticing new images.")
    inference: InferenceConfig = Field(
        default_factory=InferenceConfig, description="The model and how it runs."
    )
    retry: RetryConfig = Field(default_factory=RetryConfig, description="Unreadable files.")
    plate: PlateConfig = Field(
        default_factory=PlateConfig, description="Plate, well, field and time point of images."
    )
    onset: OnsetConfig = Field(default_factory=OnsetConfig, description="Per-well onset detection.")
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="Notifications.")
    domain: DomainCheckConfig = Field(
        default_factory=DomainCheckConfig,
        description="Bad frames and images outside the model's training domain.",
    )

    @field_validator("database", mode="before")
    @classmethod
    def _database(cls, value: object) -> str:
        if isinstance(value, Path):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError("must be a file path or a postgresql:// URL")
        try:
            return store.parse_target(value).location
        except store.StoreError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("instrument")
    @classmethod
    def _instrument(cls, value: str) -> str:
        if value == "":
            return value
        try:
            return store.check_instrument(value)
        except store.StoreError as exc:
            raise ValueError(str(exc)) from None

    @property
    def instrument_name(self) -> str:
        """The instrument this daemon writes as: ``instrument``, else the host name."""
        return self.instrument or store.default_instrument()
