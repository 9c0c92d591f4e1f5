"""The scheduler: one job per source, engagement re-polling, delivery, digest, retention and the daemon lock."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.pipeline import Pipeline
from monitor.store.lock import AlreadyRunning, DaemonLock

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10
SLA_CHECK_SECONDS = 60  # SLAs are minutes long; a minute late is within their resolution
LOCK_CHECK_SECONDS = 60  # how soon a daemon finds that a database restart took its lock


def _guarded(name: str, work: Callable[[], object]) -> Callable[[], None]:
    """One log line per failure; the job runs again at its next time."""

    def run() -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001 - a job must never take the scheduler down
            log.error("job failed job=%s error=%s: %s", name, type(exc).__name__, str(exc)[:300])
            log.debug("job failure details job=%s", name, exc_info=True)

    return run


class Daemon:
    """Builds the scheduler. `speed` > 1 compresses intervals for replays (the demo)."""

    def __init__(self, pipeline: Pipeline, *, speed: float = 1.0, with_cron_jobs: bool = True,
                 digest: Callable[[], object] | None = None, lock: DaemonLock | None = None):
        self.pipeline = pipeline
        self.speed = speed
        self.lock = lock
        self.lost_lock: str | None = None  # why the daemon stopped of itself: another took the store
        self._stop = threading.Event()
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max(4, len(pipeline.collectors) + 3))},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=pipeline.config.timezone,
        )
        self._add_jobs(with_cron_jobs, digest)

    def _every(self, seconds: float) -> IntervalTrigger:
        scaled = max(0.05, seconds / self.speed)
        # Start each job right away instead of one interval after start-up.
        return IntervalTrigger(seconds=scaled, start_date=datetime.now(timezone.utc) + timedelta(seconds=0.01))

    def _add_jobs(self, with_cron_jobs: bool, digest: Callable[[], object] | None) -> None:
        cfg = self.pipeline.config
        sources = cfg.sources.all()
        for name in self.pipeline.collectors:
            source = sources.get(name.split(":")[0])  # collectors are named SOURCE or SOURCE:BRAND
            interval = source.interval_seconds if source else 60
            self.scheduler.add_job(_guarded(f"collect:{name}", lambda n=name: self.collect_cycle(n)),
                                   self._every(interval), id=f"collect:{name}", name=f"collect {name}",
                                   misfire_grace_time=max(1, int(interval / self.speed)))
        self.scheduler.add_job(_guarded("engagement", self.repoll_cycle), self._every(cfg.engagement.interval_seconds),
                               id="engagement", name="engagement re-poll", misfire_grace_time=max(1, int(cfg.engagement.interval_seconds / self.speed)))
        self.scheduler.add_job(_guarded("sla", self.pipeline.sla), self._every(SLA_CHECK_SECONDS), id="sla",
                               name="SLA follow-up", misfire_grace_time=max(1, int(SLA_CHECK_SECONDS / self.speed)))
        self.scheduler.add_job(_guarded("deliver", self.pipeline.deliver), self._every(cfg.delivery.interval_seconds),
                               id="deliver", name="deliver alerts", misfire_grace_time=max(1, int(cfg.delivery.interval_seconds / self.speed)))
        if self.lock is not None:
            self.scheduler.add_job(_guarded("lock", self.keep_lock), self._every(LOCK_CHECK_SECONDS), id="lock",
                                   name="daemon lock", misfire_grace_time=max(1, int(LOCK_CHECK_SECONDS / self.speed)))
        if with_cron_jobs:
            if digest is not None:
                # A digest that misses its minute (daemon down) is still wanted hours later.
                self.scheduler.add_job(_guarded("digest", digest), CronTrigger.from_crontab(cfg.digest.cron,
                                       timezone=cfg.timezone), id="digest", misfire_grace_time=6 * 3600)
            self.scheduler.add_job(_guarded("retention", self.pipeline.retention),
                                   CronTrigger.from_crontab(cfg.retention.cron, timezone=cfg.timezone),
                                   id="retention", misfire_grace_time=3600)

    def keep_lock(self) -> None:
        """Hold on to the store's lock; stop, rather than run beside it, if another daemon took it."""
        try:
            self.lock.keep()
        except AlreadyRunning as exc:
            self.lost_lock = str(exc)
            log.error("daemon lock lost: %s; stopping", exc)
            self._stop.set()

    def collect_cycle(self, name: str) -> None:
        while True:
            result = self.pipeline.collect(name)
            self.pipeline.process()
            # A source with a backlog (a long replay, a backfill) is drained without waiting.
            if not result.more:
                break

    def repoll_cycle(self) -> None:
        if self.pipeline.repoll():
            self.pipeline.process()

    def run_once(self) -> None:
        """Every job once, in pipeline order (the `once` command)."""
        for name in self.pipeline.collectors:
            _guarded(f"collect:{name}", lambda n=name: self.collect_cycle(n))()
        _guarded("engagement", self.repoll_cycle)()
        _guarded("process", self.pipeline.process)()
        _guarded("sla", self.pipeline.sla)()
        _guarded("deliver", self.pipeline.deliver)()

    def start(self) -> None:
        self.scheduler.start()
        log.info("scheduler started jobs=%s", ",".join(job.id for job in self.scheduler.get_jobs()))

    def stop(self) -> None:
        """Let the jobs in hand finish, start no new ones."""
        stopper = threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True)
        stopper.start()
        stopper.join(SHUTDOWN_GRACE_S)
        if stopper.is_alive():
            log.warning("jobs still running after %ds; exiting anyway (their work is re-done on restart)",
                        SHUTDOWN_GRACE_S)
        log.info("scheduler stopped")

    def run_until_signal(self) -> None:
        """Run the jobs until SIGTERM or SIGINT, or until the store's lock is lost (`lost_lock`)."""
        def on_signal(signum, _frame) -> None:
            log.info("signal received signal=%s; finishing the jobs in hand", signal.Signals(signum).name)
            self._stop.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
