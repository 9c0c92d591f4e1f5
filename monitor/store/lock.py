"""One daemon per database: a PostgreSQL advisory lock, or a lock file beside a SQLite file."""

from __future__ import annotations

import zlib
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, text


class AlreadyRunning(Exception):
    pass


class DaemonLock:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._file_lock: FileLock | None = None
        self._connection: Connection | None = None

    def acquire(self) -> None:
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            database = url.database or ""
            if database in ("", ":memory:"):
                return  # a private in-memory database cannot be shared
            lock_path = Path(database).resolve().with_name(Path(database).name + ".lock")
            self._file_lock = FileLock(str(lock_path))
            try:
                self._file_lock.acquire(timeout=0)
            except Timeout:
                raise AlreadyRunning(f"another escalation-monitor daemon is using {database} "
                                     f"(lock file {lock_path} is held); stop it first") from None
            return
        key = zlib.crc32(f"escalation-monitor:{url.database}".encode())
        self._connection = self.engine.connect()
        got = self._connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
        if not got:
            self._connection.close()
            self._connection = None
            raise AlreadyRunning(f"another escalation-monitor daemon holds the lock on database "
                                 f"{url.database!r}; stop it first")
        self._connection.commit()

    def release(self) -> None:
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None
        if self._connection is not None:
            self._connection.close()  # closing the session releases the advisory lock
            self._connection = None
