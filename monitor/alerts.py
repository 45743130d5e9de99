"""Alerts: onset of differentiation and instrument trouble, to the log, the database and apprise.

Every alert is written to the database and the log, always. Each configured apprise channel
(e-mail, Slack, Teams, webhooks... any apprise URL) then gets it unless that channel already
sent ``rate_limit_per_hour`` messages in the last hour; held-back alerts are summarised in the
channel's next message (or by :meth:`Alerter.flush` once the hour frees up), never dropped from
the database.

One alert per well per onset episode; instrument conditions (stalled microscope, failures
piling up, disk nearly full, the watched folder missing, a plate's images outside the model's
training domain) alert once when they begin and again only after they cleared. An alert that
cannot be recorded (the database's disk is full) is still logged and delivered: the full disk
must be heard of.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import Field, field_validator

from monitor.domain_check import DomainCheckConfig, domain_alert
from stemwatch import store
from stemwatch.core.config import SECRET, StrictModel
from stemwatch.core.errors import StemwatchError
from stemwatch.core.times import describe_time

log = logging.getLogger(__name__)

T = TypeVar("T")

HOUR_S = 3600.0


class AlertsConfig(StrictModel):
    """Where alerts go and when instrument alerts fire."""

    channels: dict[str, str] = Field(
        default_factory=dict,
        description="Named apprise URLs, e.g. {lab-slack: 'slack://T000/B000/XXXX',\n"
        "me: 'mailto://user:pass@example.org'}; see https://github.com/caronc/apprise/wiki.\n"
        "Alerts always go to the log and the database as well.\n"
        "URLs hold secrets: keep this file private. Test with `stemwatch alert-test`.",
        json_schema_extra=SECRET,
    )
    urls: list[str] = Field(
        default_factory=list,
        description="Apprise URLs without a name (shown as scheme#n, e.g. slack#1); use\n"
        "`channels` to name them. One URL may be given as a plain string.",
        json_schema_extra=SECRET,
    )
    rate_limit_per_hour: int = Field(
        10,
        ge=1,
        description="At most this many messages per channel per hour; the rest are summarised\n"
        "in the channel's next message (all stay in the database).",
    )
    title_prefix: str = Field("stemwatch", description="Start of every message title.")
    expected_interval_s: float | None = Field(
        None,
        gt=0,
        description="Seconds between time points of the acquisition; empty = inferred from\n"
        "the images' times (median gap between successive images of one field).",
    )
    stall_factor: float = Field(
        3.0,
        gt=1.0,
        description="Alert when no image arrived for this many expected intervals\n"
        "(microscope stalled, or the run ended).",
    )
    max_failed_per_hour: int = Field(
        10, ge=0, description="Alert when more images than this failed in the last hour."
    )
    min_free_percent: float = Field(
        5.0,
        ge=0.0,
        le=100.0,
        description="Alert when the watched folder's or the database's disk has less free\n"
        "space than this percentage.",
    )

    @field_validator("urls", mode="before")
    @classmethod
    def _one_url(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v

    folder_missing_alert_s: float = Field(
        300.0,
        gt=0,
        description="Alert when the watched folder has been missing this long (a share not\n"
        "mounted, a disconnected instrument PC); the daemon waits for it meanwhile.",
    )
    min_interval_s: float = Field(
        60.0,
        gt=0,
        description="Gaps between images of one field shorter than this are not a time-lapse\n"
        "interval (a bulk copy, a z-stack) and are left out when it is inferred.",
    )


def all_channels(config: AlertsConfig) -> dict[str, str]:
    """Named channels plus the unnamed ``urls`` (named ``scheme#n``; the URL stays secret)."""
    out = dict(config.channels)
    for i, url in enumerate(config.urls, start=1):
        scheme = url.split("://", 1)[0] if "://" in url else "url"
        name = f"{scheme}#{i}"
        while name in out:
            name += "'"
        out[name] = url
    return out


@dataclass(frozen=True)
class ChannelResult:
    """Outcome of one delivery: ``sent``, ``failed: why`` or ``rate-limited``."""

    channel: str
    ok: bool
    detail: str

    @property
    def text(self) -> str:
        return "sent" if self.ok else self.detail


def send_to_channel(name: str, url: str, title: str, body: str) -> ChannelResult:
    """Deliver one message through one apprise URL; never raises."""
    import apprise

    try:
        obj = apprise.Apprise()
        if not obj.add(url):
            return ChannelResult(name, False, "failed: not a valid apprise URL")
        with apprise.LogCapture(level=logging.WARNING) as captured:
            ok = bool(obj.notify(title=title, body=body))
            detail = captured.getvalue().strip() if not ok else ""
    except Exception as exc:  # a channel's plugin must never take the daemon down
        return ChannelResult(name, False, f"failed: {type(exc).__name__}: {exc}")
    if ok:
        return ChannelResult(name, True, "sent")
    last = detail.splitlines()[-1] if detail else "delivery failed"
    return ChannelResult(name, False, f"failed: {last}")


def send_test(config: AlertsConfig) -> list[ChannelResult]:
    """Send a test message through every configured channel (no rate limit, no database)."""
    return [
        send_to_channel(
            name,
            url,
            f"{config.title_prefix}: test message",
            "This is a test of the stemwatch alert channel "
            f"'{name}'. If you read this, alerts reach you.",
        )
        for name, url in all_channels(config).items()
    ]


@dataclass(frozen=True)
class _Check:
    """An instrument check: ``message`` when the condition holds; whether it has cleared."""

    message: str | None
    recovered: bool = False


def _resets(n: int) -> str:
    return "a reset" if n == 1 else f"{n} resets"


class Alerter:
    """Raises, records and delivers alerts for one daemon.

    Give it a writable database connection of its own: it runs in the alert thread, beside
    the writer, and must see only what the writer committed.
    """

    def __init__(
        self,
        config: AlertsConfig,
        db: store.Database,
        *,
        disk_paths: Sequence[str | Path] = (),
        watched_folder: Path | None = None,
        domain: DomainCheckConfig | None = None,
    ) -> None:
        self.config = config
        self.domain_config = domain or DomainCheckConfig()
        self.db = db
        self.channels = all_channels(config)
        paths = [Path(p) for p in disk_paths]
        if db.local_path is not None:  # a SQLite file here (not a database server)
            paths.append(db.local_path.parent)
        self.disk_paths = list(dict.fromkeys(paths))
        self.watched_folder = watched_folder
        self._folder_missing_since: float | None = None
        self._active: set[str] = set()  # conditions alerted, for when the database fails

    # -- alert sources ---------------------------------------------------------------------

    def onset(
        self, event: store.OnsetRecord, *, now: float | None = None
    ) -> store.AlertRecord | None:
        """Alert about an onset; None if this well's episode was already alerted."""
        when = (
            ""
            if event.onset_time_s is None
            else f", began ~{describe_time(event.onset_time_s, event.time_basis)}"
        )
        smoothed = (
            "" if event.probability is None else f" (smoothed probability {event.probability:.2f})"
        )
        again = "" if event.episode == 0 else f" again, after {_resets(event.episode)}"
        message = (
            f"Differentiation onset in plate {event.plate} well {event.well}{again}{when}"
            f"{smoothed}."
        )
        return self.raise_alert(
            "onset",
            message,
            plate=event.plate,
            well=event.well,
            dedup_key=f"onset:{event.plate}:{event.well}:{event.episode}",
            now=now,
        )

    def domain(
        self, plate: str, model_hash: str, model_name: str, *, now: float | None = None
    ) -> store.AlertRecord | None:
        """Check whether ``plate``'s newest images lie outside ``model_hash``'s training
        domain (:func:`monitor.domain_check.domain_alert`); one alert per episode."""
        t = time.time() if now is None else now
        cfg = self.domain_config
        window = self._try(
            f"domain check of plate {plate}",
            store.domain_window,
            self.db,
            plate,
            model_hash,
            last=cfg.alert_window,
        )
        if window is None:
            return None
        message, recovered = domain_alert(window, cfg, plate=plate, model_name=model_name)
        return self._condition(
            f"domain:{plate}:{model_hash[:12]}", _Check(message, recovered), t, plate=plate
        )

    def instrument_checks(self, now: float | None = None) -> list[store.AlertRecord]:
        """Check the instrument conditions; alert on those that just began. Also flushes."""
        t = time.time() if now is None else now
        raised: list[store.AlertRecord] = []
        conditions: dict[str, _Check] = {}
        for path in self.disk_paths:  # first: needs no database, must work when it is full
            conditions[f"disk:{path}"] = self._disk_check(path)
        if self.watched_folder is not None:
            conditions["folder"] = self._folder_check(self.watched_folder, t)
        for key, check_fn in (("stall", self._stall_check), ("failures", self._failures_check)):
            check = self._try(f"{key} check", check_fn, t)
            if check is not None:
                conditions[key] = check
        for key, check in conditions.items():
            alert = self._condition(key, check, t)
            if alert is not None:
                raised.append(alert)
        self._try("delivering held-back alerts", self.flush, t)
        return raised

    def _try(self, what: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T | None:
        """``fn(*args, **kwargs)``, or None with a log line when the database fails."""
        try:
            return fn(*args, **kwargs)
        except StemwatchError as exc:
            log.error("alerts: %s failed (%s)", what, exc)
            return None

    # -- conditions ------------------------------------------------------------------------

    def expected_interval_s(self) -> float | None:
        """Configured interval, else the median gap between successive images of one field
        (acquisition times only: never the mtimes of a bulk copy; gaps below
        ``min_interval_s`` left out)."""
        if self.config.expected_interval_s is not None:
            return self.config.expected_interval_s
        return store.typical_field_interval_s(self.db, min_gap_s=self.config.min_interval_s)

    def _stall_check(self, now: float) -> _Check:
        last = store.last_image_arrival(self.db)
        interval = self.expected_interval_s()
        if last is None or interval is None:
            return _Check(None, recovered=True)
        silent = now - last
        if silent <= self.config.stall_factor * interval:
            return _Check(None, recovered=True)
        return _Check(
            f"No new image for {silent / 60:.0f} min ({silent / interval:.1f} x the expected "
            f"interval of {interval / 60:.0f} min): the microscope may have stalled, or the "
            "run ended."
        )

    def _failures_check(self, now: float) -> _Check:
        """Failures above the limit; recovered once at most half the limit failed."""
        failures = store.recent_failures(self.db, since=now - HOUR_S)
        n = failures.count
        limit = self.config.max_failed_per_hour
        if n <= limit:
            return _Check(None, recovered=n <= limit / 2)
        return _Check(
            f"{n} images failed in the last hour (limit {self.config.max_failed_per_hour}); "
            f"latest: {failures.last_path}: {failures.last_error}"
        )

    def _disk_check(self, path: Path) -> _Check:
        """Free space below the limit; recovered at one percentage point above it."""
        try:
            usage = shutil.disk_usage(path)
        except OSError as exc:
            log.warning("cannot check free space of %s: %s", path, exc)
            return _Check(None, recovered=False)
        free_pct = 100.0 * usage.free / usage.total if usage.total else 100.0
        limit = self.config.min_free_percent
        if free_pct >= limit:
            return _Check(None, recovered=free_pct >= limit + 1.0)
        return _Check(
            f"Disk of {path} is nearly full: {free_pct:.1f}% free "
            f"({usage.free / 1e9:.1f} GB; alert below {self.config.min_free_percent}%)."
        )

    def _folder_check(self, folder: Path, now: float) -> _Check:
        """The watched folder missing for ``folder_missing_alert_s``; recovered once it is
        back."""
        if folder.is_dir():
            self._folder_missing_since = None
            return _Check(None, recovered=True)
        if self._folder_missing_since is None:
            self._folder_missing_since = now
        missing = now - self._folder_missing_since
        if missing < self.config.folder_missing_alert_s:
            return _Check(None, recovered=False)
        return _Check(
            f"The watched folder {folder} has been missing for {missing / 60:.0f} min: is the "
            "share mounted and the instrument PC on? The daemon waits for it and goes on when "
            "it is back."
        )

    def _condition(
        self, key: str, check: _Check, now: float, *, plate: str | None = None
    ) -> store.AlertRecord | None:
        """Track an instrument condition; alert once when it begins.

        The episode ends only when the check says ``recovered`` (hysteresis), so a value
        hovering at the limit does not alert again and again. The episode is kept in the
        database and, for when that fails, in memory.
        """
        state = self._try(f"reading condition {key}", store.alert_condition, self.db, key)
        was_active = (state is not None and state.active) or key in self._active
        if check.message is None:
            if was_active and check.recovered:
                log.info("instrument condition cleared: %s", key)
                self._active.discard(key)
                self._try(f"ending condition {key}", store.end_condition, self.db, key)
            return None
        if was_active:
            return None
        self._active.add(key)
        kind = key.split(":", 1)[0]
        alert = self.raise_alert(
            kind, check.message, plate=plate, dedup_key=f"{key}@{now:.3f}", now=now
        )
        self._try(
            f"recording condition {key}",
            store.begin_condition,
            self.db,
            key,
            since=now,
            alert_id=alert.id if alert else None,
        )
        return alert

    # -- recording and delivery ------------------------------------------------------------

    def raise_alert(
        self,
        kind: str,
        message: str,
        *,
        plate: str | None = None,
        well: str | None = None,
        dedup_key: str | None = None,
        now: float | None = None,
    ) -> store.AlertRecord | None:
        """Record an alert, log it and deliver it; None if ``dedup_key`` was seen before."""
        t = time.time() if now is None else now
        try:
            alert_id: int | None = store.record_alert(
                self.db, kind, message, plate=plate, well=well, dedup_key=dedup_key, now=t
            )
        except StemwatchError as exc:
            log.error("alerts: cannot record the alert (%s); delivering it anyway", exc)
            alert_id = 0  # not recorded
        if alert_id is None:
            return None
        log.warning("ALERT [%s] %s", kind, message)
        title = f"{self.config.title_prefix}: {kind}" + (f" {plate} {well}" if well else "")
        results = {r.channel: r.text for r in self._deliver(alert_id, title, message, t)}
        if alert_id:
            self._try("storing delivery results", store.set_channel_results, self.db, alert_id,
                      results)  # fmt: skip
        return store.AlertRecord(
            id=alert_id,
            kind=kind,
            plate=plate,
            well=well,
            message=message,
            created_at=t,
            channel_results=results,
        )

    def _over_limit(self, channel: str, now: float) -> bool:
        sent = self._try("counting deliveries", store.deliveries_since, self.db, channel,
                         now - HOUR_S)  # fmt: skip
        return sent is not None and sent >= self.config.rate_limit_per_hour

    def _deliver(self, alert_id: int, title: str, message: str, now: float) -> list[ChannelResult]:
        """Send to every channel; ``alert_id`` 0: the alert is not in the database."""
        results: list[ChannelResult] = []
        for name, url in self.channels.items():
            if self._over_limit(name, now):
                log.info("channel %s over its rate limit; alert %s held back", name, alert_id)
                results.append(ChannelResult(name, False, "rate-limited"))
                if alert_id:
                    self._try(
                        "recording a delivery",
                        store.record_delivery,
                        self.db,
                        alert_id,
                        name,
                        "rate-limited",
                        now=now,
                    )
                continue
            held = self._try("reading held-back alerts", store.held_back, self.db, name) or []
            result = send_to_channel(name, url, title, message + _summary(held))
            if not result.ok:
                log.error("alert channel %s: %s", name, result.detail)
            if alert_id:
                self._try(
                    "recording a delivery",
                    store.record_delivery,
                    self.db,
                    alert_id,
                    name,
                    result.text,
                    summarised=[h.delivery_id for h in held],
                    now=now,
                )
            results.append(result)
        return results

    def flush(self, now: float | None = None) -> list[ChannelResult]:
        """Send a summary of held-back alerts on channels whose hourly budget freed up."""
        t = time.time() if now is None else now
        results = []
        for name, url in self.channels.items():
            held = store.held_back(self.db, name)
            if not held or self._over_limit(name, t):
                continue
            body = f"{len(held)} alert(s) were held back by the rate limit." + _summary(held)
            result = send_to_channel(name, url, f"{self.config.title_prefix}: summary", body)
            store.record_delivery(
                self.db, None, name, result.text, summarised=[h.delivery_id for h in held], now=t
            )
            results.append(result)
        return results


def _summary(held: Sequence[store.HeldBackAlert], max_lines: int = 20) -> str:
    if not held:
        return ""
    lines = [
        f"- {time.strftime('%Y-%m-%d %H:%M', time.localtime(h.created_at))} {h.message}"
        for h in held[:max_lines]
    ]
    if len(held) > max_lines:
        lines.append(f"- ... and {len(held) - max_lines} more (see `stemwatch status`)")
    return f"\n\nHeld back by the rate limit ({len(held)}):\n" + "\n".join(lines)
