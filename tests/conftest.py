"""Shared fixtures: a store on SQLite and PostgreSQL, configs, mentions and scenario files.

PostgreSQL tests use `postgresql+psycopg://postgres@127.0.0.1:5432/test` (falling back to the
user `root`) with a fresh schema per test. Without a server they are skipped, unless
ESCALATION_MONITOR_REQUIRE_POSTGRES=1, in which case they fail.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

import pytest

from monitor.config import bundled_config_dir
from tests.support import build_config, build_mention, write_scenario

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_DATABASE = "test"
PG_USERS = ("postgres", "root")


@pytest.fixture(autouse=True, scope="session")
def int8_cache_dir(tmp_path_factory):
    """Built int8 models go to a folder of this run (commands run as subprocesses inherit it): the
    run neither reads nor fills the user's cache, and builds each model once."""
    from classifiers.int8_cache import CACHE_DIR_ENV

    before = os.environ.get(CACHE_DIR_ENV)
    os.environ[CACHE_DIR_ENV] = str(tmp_path_factory.mktemp("int8-cache"))
    yield Path(os.environ[CACHE_DIR_ENV])
    if before is None:
        del os.environ[CACHE_DIR_ENV]
    else:
        os.environ[CACHE_DIR_ENV] = before


@pytest.fixture(autouse=True)
def restore_logging():
    """Commands reconfigure the root logger onto the runner's (then closed) stderr: put it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


# --- PostgreSQL ------------------------------------------------------------------------------

_pg_user: str | None = None
_pg_error: str | None = None


def _postgres_user() -> str | None:
    """The first user the server accepts (cached for the session), or None when unreachable."""
    global _pg_user, _pg_error
    if _pg_user is not None or _pg_error is not None:
        return _pg_user
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is a dev dependency
        _pg_error = f"psycopg is not installed ({exc})"
        return None
    errors = []
    for user in PG_USERS:
        try:
            with psycopg.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DATABASE, user=user, connect_timeout=5):
                _pg_user = user
                return user
        except psycopg.Error as exc:
            errors.append(f"{user}: {' '.join(str(exc).split())[:200]}")
    _pg_error = "; ".join(errors)
    return None


def _pg_admin(user: str):
    import psycopg

    return psycopg.connect(host=PG_HOST, port=PG_PORT, dbname=PG_DATABASE, user=user, autocommit=True,
                           connect_timeout=5)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_schema")()


@pytest.fixture
def postgres_schema():
    """`postgres_schema()` -> the URL of a new, empty schema of the test database, dropped after the
    test; without a server the test is skipped (failed under ESCALATION_MONITOR_REQUIRE_POSTGRES=1)."""
    user = _postgres_user()
    if user is None:
        message = (f"PostgreSQL at {PG_HOST}:{PG_PORT}/{PG_DATABASE} is not reachable as any of "
                   f"{', '.join(PG_USERS)}: {_pg_error}")
        if os.environ.get("ESCALATION_MONITOR_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"ESCALATION_MONITOR_REQUIRE_POSTGRES=1 but {message}", pytrace=False)
        pytest.skip(message)
    schemas = []

    def create() -> str:
        schema = f"t_{uuid.uuid4().hex}"
        with _pg_admin(user) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        return f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{PG_DATABASE}?options=-csearch_path%3D{schema}"

    yield create
    with _pg_admin(user) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def store(store_url):
    from monitor.store.repository import Store

    s = Store.open(store_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sqlite_store(tmp_path):
    """A store on SQLite only, for tests about the pipeline rather than the database."""
    from monitor.store.repository import Store

    s = Store.open(f"sqlite:///{tmp_path / 'pipeline.db'}")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def make_config():
    """`make_config(**overrides)` -> Config with the brand Acme; overrides merge into the document."""
    return build_config


@pytest.fixture
def make_mention():
    """`make_mention(external_id, text, at=..., ...)` -> MentionIn for the brand Acme."""
    return build_mention


@pytest.fixture
def scenario_file(tmp_path):
    """`scenario_file(events, name=...)` writes a scenario (JSON lines) into tmp_path."""

    def write(events: list[dict], name: str = "scenario.jsonl") -> Path:
        return write_scenario(tmp_path / name, events)

    return write


@pytest.fixture(scope="session")
def classifier():
    """One classifier for the session: building the language models is the slow part."""
    from classifiers.post import PostClassifier

    cfg = build_config()
    return PostClassifier(bundled_config_dir(), cfg.classifiers.languages, cfg.classifiers.sentiment_model,
                                cfg.classifiers.sentiment_labels)


@pytest.fixture(scope="session")
def cli_executable():
    """The installed console script of the virtualenv running the tests."""
    import shutil
    import sys

    candidate = Path(sys.executable).parent / "escalation-monitor"
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("escalation-monitor")
    if found is None:
        pytest.fail("the escalation-monitor console script is not installed in this environment")
    return found
