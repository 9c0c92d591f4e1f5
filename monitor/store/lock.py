"""One daemon per store: a PostgreSQL advisory lock on the database and schema, or a lock file beside a SQLite file."""

from __future__ import annotations

import zlib
from pathlib import Path

from filelock import FileLock, Timeout
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError


class AlreadyRunning(Exception):
    pass


class DaemonLock:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._file_lock: FileLock | None = None
        self._connection: Connection | None = None
        self._key = 0
        self._on_postgres = False  # a PostgreSQL lock was taken and not released: keep() keeps it

    def acquire(self) -> None:
        url = self.engine.url
        if url.get_backend_name() == "sqlite":
            database = url.database or ""
            if database in ("", ":memory:"):
                return  # a private in-memory database cannot be shared
            lock_path = Path(database).resolve().with_name(Path(database).name + ".lock")
            file_lock = FileLock(str(lock_path))
            try:
                file_lock.acquire(timeout=0)
            except Timeout:
                raise AlreadyRunning(f"another escalation-monitor daemon is using {database} "
                                     f"(lock file {lock_path} is held); stop it first") from None
            self._file_lock = file_lock  # only a lock held: release() gives up what acquire() took
            return
        self._connection = self.engine.connect()
        # The store is the schema the connection writes to: monitors in other schemas of one
        # database do not block each other.
        database, schema = self._connection.execute(text("SELECT current_database(), current_schema()")).one()
        self._key = zlib.crc32(f"escalation-monitor:{database}:{schema}".encode())
        got = self._connection.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar()
        if not got:
            self._connection.close()
            self._connection = None
            raise AlreadyRunning(f"another escalation-monitor daemon holds the lock on database "
                                 f"{database!r}, schema {schema!r}; stop it first")
        self._connection.commit()
        self._on_postgres = True

    def keep(self) -> None:
        """Take the PostgreSQL lock again if its session was lost: a server restart or a dropped
        connection ends the session, and the lock with it, without a word. AlreadyRunning when
        another daemon took it meanwhile; a database that cannot be reached raises its error (the
        next call tries again). Nothing to do on SQLite, whose lock file stays held."""
        if not self._on_postgres:
            return
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
                self._connection.commit()
                return
            except DBAPIError:
                self._connection.invalidate()
                self._connection.close()
                self._connection = None
        self.acquire()

    def release(self) -> None:
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None
        self._on_postgres = False
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                # close() hands the connection back to SQLAlchemy's pool, where its session, and a
                # session's advisory lock, live on: the lock is given up explicitly.
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                connection.commit()
            except DBAPIError:
                connection.invalidate()  # the session is gone, and its lock with it
            finally:
                connection.close()
