"""One daemon per store: a second `run` or `once` on the same store is refused, not run beside the first."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from monitor.cli import app
from monitor.store.lock import AlreadyRunning, DaemonLock
from monitor.store.repository import Store
from tests.support import config_dict


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
