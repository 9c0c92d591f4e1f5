"""One daemon per store: a second `run` or `once` on the same store is refused, not run beside the first."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import text
from typer.testing import CliRunner

from monitor.cli import app
from monitor.clock import ManualClock
from monitor.daemon import Daemon
from monitor.notifiers.console import ConsoleNotifier
from monitor.pipeline import Pipeline
from monitor.store.lock import AlreadyRunning, DaemonLock
from monitor.store.repository import Store
from tests.support import T0, build_config, config_dict


def end_session_of(lock: DaemonLock, store: Store) -> None:
    """What a database restart does to the lock's session: it ends, and the lock is gone."""
    with store.engine.connect() as connection:
        ended = connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_locks "
                                        "WHERE locktype = 'advisory' AND objid::bigint = :k"), {"k": lock._key}).all()
    assert ended == [(True,)]


def test_a_second_lock_on_the_same_store_is_refused_until_the_first_is_released(store, store_url):
    other = Store.open(store_url)
    try:
        first, second = DaemonLock(store.engine), DaemonLock(other.engine)
        first.acquire()
        try:
            with pytest.raises(AlreadyRunning, match="stop it first"):
                second.acquire()
        finally:
            first.release()
        second.acquire()
        second.release()
    finally:
        other.close()


@pytest.mark.postgres
def test_stores_in_other_schemas_of_one_database_do_not_block_each_other(postgres_schema):
    stores = [Store.open(postgres_schema()) for _ in range(2)]
    locks = [DaemonLock(s.engine) for s in stores]
    try:
        for lock in locks:
            lock.acquire()
    finally:
        for lock, s in zip(locks, stores):
            lock.release()
            s.close()


def test_once_exits_with_one_line_while_another_daemon_holds_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")  # the error on one line
    url = f"sqlite:///{tmp_path / 'held.db'}"
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(config_dict(storage={"url": url})), encoding="utf-8")
    running = Store.open(url)
    lock = DaemonLock(running.engine)
    lock.acquire()
    try:
        result = CliRunner().invoke(app, ["once", "--config", str(path)])
        assert result.exit_code == 1, result.output
        assert "another escalation-monitor daemon is using" in result.stderr
        assert "held.db.lock" in result.stderr
    finally:
        lock.release()
        running.close()
    result = CliRunner().invoke(app, ["once", "--config", str(path)])
    assert result.exit_code == 0, result.output


@pytest.fixture
def restarted(postgres_schema):
    """(store, its daemon's lock, whose session a database restart ended, a second daemon's lock)."""
    url = postgres_schema()
    store, other = Store.open(url), Store.open(url)
    lock, second = DaemonLock(store.engine), DaemonLock(other.engine)
    try:
        lock.acquire()
        end_session_of(lock, other)
        yield store, lock, second
    finally:
        second.release()
        lock.release()
        store.close()
        other.close()


@pytest.mark.postgres
def test_keep_takes_the_lock_again_after_a_database_restart_ended_its_session(restarted):
    _store, lock, second = restarted
    lock.keep()
    with pytest.raises(AlreadyRunning):
        second.acquire()


@pytest.mark.postgres
def test_a_daemon_stops_when_another_took_its_lock_while_the_database_restarted(restarted):
    store, lock, intruder = restarted
    intruder.acquire()
    pipeline = Pipeline(build_config(), store, ManualClock(T0), ConsoleNotifier(), {})
    daemon = Daemon(pipeline, with_cron_jobs=False, lock=lock, speed=1000)
    daemon.run_until_signal()  # returns of itself: the lock job's first run finds the lock taken
    assert daemon.lost_lock is not None and "another escalation-monitor daemon holds the lock" in daemon.lost_lock
