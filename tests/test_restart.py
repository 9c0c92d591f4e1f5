"""Restarts lose nothing and duplicate nothing: crashes between stages, kill -9 of the daemon, the lock."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from monitor.clock import ManualClock
from monitor.collectors.replay import ReplayCollector
from monitor.pipeline import Pipeline
from monitor.pipeline.classify import classify_pending
from monitor.scenario import Scenario
from monitor.store.repository import OutboxItem, Store
from monitor.store.schema import ClassificationRow, EscalationMentionRow, EscalationRow, MentionRow, OutboxRow
from tests.support import (
    BRAND,
    LEGAL_THREAT,
    NEUTRAL_CHATTER,
    PRESS_AND_LEGAL_THREAT,
    T0,
    build_config,
    config_dict,
    scenario_post,
    small_threat_scenario,
    write_scenario,
)


class Crash(Exception):
    """Stands in for the process dying at this point."""


class Notifier:
    """Delivers; with `crash_on` set, "dies" on that call (1-based) before anything is delivered."""

    def __init__(self, crash_on: int | None = None):
        self.crash_on = crash_on
        self.calls = 0
        self.delivered: list[int] = []

    def send(self, item: OutboxItem) -> str:
        self.calls += 1
        if self.crash_on is not None and self.calls == self.crash_on:
            raise Crash("power cut during delivery")
        self.delivered.append(item.id)
        return f"ts-{item.id}"


# --- in-process: a crash at each stage boundary ---------------------------------------------------------

def restart_scenario(tmp_path: Path) -> Path:
    events = small_threat_scenario(T0)
    # A third customer threatens too, and the brand answers the first one later on.
    events.append(scenario_post("p6", "Ik stap naar de Radar, al drie weken geen internet en niemand helpt!!",
                                T0 + timedelta(minutes=5), lang="nl", expect="alert"))
    events.append(scenario_post("p7", NEUTRAL_CHATTER[3], T0 + timedelta(minutes=6)))
    return write_scenario(tmp_path / "restart.jsonl", events)


def open_pipeline(url: str, scenario: Path, notifier, classifier) -> Pipeline:
    clock = ManualClock(T0 + timedelta(minutes=30))
    collector = ReplayCollector(Scenario.load(scenario), BRAND, clock, batch_size=2)
    return Pipeline(build_config(), Store.open(url), clock, notifier, {"replay": collector}, classifier=classifier)


def collect_all(p: Pipeline) -> None:
    while p.collect("replay").more:
        pass


def finish(p: Pipeline) -> None:
    """What a (re)started daemon does: every job, in pipeline order."""
    collect_all(p)
    p.repoll()
    p.process()
    p.deliver()


def crash_after_first_batch(p: Pipeline) -> None:
    p.collect("replay")


def crash_after_collect(p: Pipeline) -> None:
    collect_all(p)


def crash_after_classify(p: Pipeline) -> None:
    collect_all(p)
    classify_pending(p.store, p.classifier, p.clock, p.config.engagement)


def crash_inside_process_before_mark_scored(p: Pipeline) -> None:
    collect_all(p)

    def die(_ids):
        raise Crash("died after the decisions were written")

    p.store.mark_scored = die
    p.process()


def crash_after_enqueue_before_deliver(p: Pipeline) -> None:
    collect_all(p)
    p.process()


def crash_mid_delivery(p: Pipeline) -> None:
    collect_all(p)
    p.process()
    p.deliver()


def final_state(store: Store) -> dict:
    with store.session() as s:
        ext = dict(s.execute(select(MentionRow.id, MentionRow.external_id)).all())
        mentions = Counter(s.scalars(select(MentionRow.external_id)).all())
        classified = Counter(s.scalars(select(ClassificationRow.mention_id)).all())
        members = {}
        for esc_id, mention_id in s.execute(select(EscalationMentionRow.escalation_id,
                                                   EscalationMentionRow.mention_id)).all():
            members.setdefault(esc_id, set()).add(ext[mention_id])
        escalations = sorted(
            (r.group_key.split(":")[0], ext.get(r.subject_mention_id), r.kind, r.severity, r.state,
             round(r.probability, 6), tuple(r.reasons), tuple(sorted(members.get(r.id, ()))))
            for r in s.scalars(select(EscalationRow)).all())
        group_keys = Counter(s.scalars(select(EscalationRow.group_key)).all())
        subject_of = {r.id: ext.get(r.subject_mention_id) for r in s.scalars(select(EscalationRow)).all()}
        outbox = sorted((subject_of[o.escalation_id], o.kind, o.state) for o in s.scalars(select(OutboxRow)).all())
        outbox_ids = set(s.scalars(select(OutboxRow.id)).all())
    return {"mentions": mentions, "classified": classified, "escalations": escalations,
            "group_keys": group_keys, "outbox": outbox, "outbox_ids": outbox_ids}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, classifier):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    scenario = restart_scenario(tmp)
    notifier = Notifier()
    p = open_pipeline(f"sqlite:///{tmp / 'clean.db'}", scenario, notifier, classifier)
    try:
        finish(p)
        state = final_state(p.store)
    finally:
        p.store.close()
    return state, Counter(notifier.delivered)


CRASHES: list[Callable[[Pipeline], None]] = [
    crash_after_first_batch, crash_after_collect, crash_after_classify, crash_inside_process_before_mark_scored,
    crash_after_enqueue_before_deliver, crash_mid_delivery,
]


def test_uninterrupted_run_is_a_useful_reference(uninterrupted):
    state, delivered = uninterrupted
    assert len(state["mentions"]) == 7
    assert {e[1] for e in state["escalations"]} >= {"p2", "p4"}
    assert all(o[2] == "sent" for o in state["outbox"])
    assert len(state["outbox"]) >= 2  # the delivery crash below needs a second message to die on


@pytest.mark.parametrize("crash", CRASHES, ids=lambda f: f.__name__)
def test_crash_between_stages_then_restart(tmp_path, classifier, uninterrupted, crash):
    reference, _ = uninterrupted
    scenario = restart_scenario(tmp_path)
    url = f"sqlite:///{tmp_path / 'crashy.db'}"

    first = Notifier(crash_on=2)
    p = open_pipeline(url, scenario, first, classifier)
    crashed = False
    try:
        crash(p)
    except Crash:
        crashed = True
    finally:
        p.store.close()  # the process is gone; nothing in memory survives
    del p
    # The two crashes staged inside a stage really happened there.
    assert crashed == (crash in (crash_inside_process_before_mark_scored, crash_mid_delivery))
    if crash is crash_mid_delivery:
        assert len(first.delivered) == 1

    second = Notifier()
    p = open_pipeline(url, scenario, second, classifier)
    try:
        finish(p)
        finish(p)  # and a later tick changes nothing
        state = final_state(p.store)
    finally:
        p.store.close()

    assert state["mentions"] == reference["mentions"]
    assert set(state["mentions"].values()) == {1}
    assert set(state["classified"].values()) == {1}
    assert state["escalations"] == reference["escalations"]
    assert set(state["group_keys"].values()) == {1}
    assert state["outbox"] == reference["outbox"]
    assert all(kind_state[2] == "sent" for kind_state in state["outbox"])
    seen = Counter(first.delivered + second.delivered)
    assert set(seen) == state["outbox_ids"]
    assert set(seen.values()) == {1}, seen


# --- the daemon as a process ----------------------------------------------------------------------------

N_POSTS = 200
THREAT_EVERY = 20


def daemon_scenario(path: Path) -> tuple[Path, set[str]]:
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=5)
    events = []
    for i in range(N_POSTS):
        if i % THREAT_EVERY == 7:
            text = (LEGAL_THREAT, PRESS_AND_LEGAL_THREAT)[(i // THREAT_EVERY) % 2]
        else:
            text = f"{NEUTRAL_CHATTER[i % len(NEUTRAL_CHATTER)]} #{i}"
        events.append(scenario_post(f"d{i:03d}", text, base + timedelta(seconds=45 * i), author_id=f"cust{i}"))
    write_scenario(path, events)
    return path, {e["id"] for e in events}


def daemon_config(tmp_path: Path, *, replay: Path | None) -> Path:
    raw = config_dict(
        storage={"url": f"sqlite:///{tmp_path / 'daemon.db'}"},
        delivery={"interval_seconds": 1},
        engagement={"interval_seconds": 5},
    )
    if replay is not None:
        raw["sources"] = {"replay": {"enabled": True, "file": replay.name, "batch_size": 10,
                                     "interval_seconds": 5}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


class DaemonRunner:
    """Starts `escalation-monitor run` processes; kills only the ones it started."""

    def __init__(self, exe: str, config: Path, workdir: Path):
        self.exe = exe
        self.config = config
        self.workdir = workdir
        self.stdout_path = workdir / "daemon.stdout"
        self.stderr_path = workdir / "daemon.stderr"
        self.procs: list[subprocess.Popen] = []
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("X_BEARER_TOKEN", "SLACK_BOT_TOKEN", "REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET")}
        self.env["COLUMNS"] = "500"

    def start(self) -> subprocess.Popen:
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            proc = subprocess.Popen([self.exe, "run", "--config", str(self.config)], stdout=out, stderr=err,
                                    cwd=self.workdir, env=self.env)
        self.procs.append(proc)
        return proc

    def run_second(self, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([self.exe, "run", "--config", str(self.config)], capture_output=True, text=True,
                              cwd=self.workdir, env=self.env, timeout=timeout)

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace") if self.stderr_path.exists() else ""

    def wait_for_log(self, proc: subprocess.Popen, needle: str, deadline_s: float = 90) -> None:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            if needle in self.stderr():
                return
            if proc.poll() is not None:
                pytest.fail(f"daemon exited with {proc.returncode} before logging {needle!r}:\n{self.stderr()[-3000:]}")
            time.sleep(0.1)
        pytest.fail(f"daemon did not log {needle!r} within {deadline_s}s:\n{self.stderr()[-3000:]}")

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


@pytest.fixture
def daemons(cli_executable, tmp_path):
    runners: list[DaemonRunner] = []

    def make(config: Path) -> DaemonRunner:
        runner = DaemonRunner(cli_executable, config, tmp_path)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.cleanup()


def read_progress(db: Path) -> dict | None:
    if not db.exists():
        return None
    try:
        con = sqlite3.connect(db, timeout=10)
        try:
            row = con.execute(
                "SELECT (SELECT count(*) FROM mentions),"
                " (SELECT count(DISTINCT mention_id) FROM classifications),"
                " (SELECT count(*) FROM mentions WHERE needs_scoring = 1),"
                " (SELECT count(*) FROM alert_outbox WHERE state = 'pending')").fetchone()
        finally:
            con.close()
    except sqlite3.OperationalError:
        return None  # not migrated yet, or busy
    return dict(zip(["mentions", "classified", "to_score", "pending"], row))


def test_kill_9_and_restart_loses_and_duplicates_nothing(daemons, tmp_path):
    scenario, post_ids = daemon_scenario(tmp_path / "scenario.jsonl")
    runner = daemons(daemon_config(tmp_path, replay=scenario))
    db = tmp_path / "daemon.db"

    progress_at_kills = []

    def kill_when(ready: Callable[[dict | None], bool], deadline_s: float = 45) -> None:
        """Start a daemon and kill -9 it once `ready(progress)` holds (or at the deadline)."""
        proc = runner.start()
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline and proc.poll() is None and not ready(read_progress(db)):
            time.sleep(0.05)
        assert proc.poll() is None, f"daemon exited early ({proc.returncode}):\n{runner.stderr()[-3000:]}"
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait(timeout=30)
        progress_at_kills.append(read_progress(db))

    started = time.monotonic()
    kill_when(lambda _: time.monotonic() - started >= 1.5)  # during start-up
    kill_when(lambda p: p is not None and p["mentions"] >= 30)  # in the middle of the backlog
    kill_when(lambda p: p is not None and p["mentions"] >= 60 and p["classified"] > 30)
    kill_when(lambda p: p is not None and p["mentions"] >= 120 and (p["pending"] or p["to_score"]))

    proc = runner.start()
    deadline = time.monotonic() + 150
    progress = None
    while time.monotonic() < deadline:
        progress = read_progress(db)
        if progress and progress["mentions"] == N_POSTS and progress["classified"] == N_POSTS \
                and progress["to_score"] == 0 and progress["pending"] == 0:
            break
        assert proc.poll() is None, f"daemon died ({proc.returncode}):\n{runner.stderr()[-3000:]}"
        time.sleep(0.25)
    else:
        pytest.fail(f"daemon did not finish the scenario; last progress {progress}, at kills "
                    f"{progress_at_kills}\n{runner.stderr()[-3000:]}")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, runner.stderr()[-3000:]

    con = sqlite3.connect(db)
    try:
        stored = Counter(con.execute("SELECT external_id FROM mentions").fetchall())
        group_keys = Counter(r[0] for r in con.execute("SELECT group_key FROM escalations"))
        new_items = Counter(r[0] for r in con.execute(
            "SELECT escalation_id FROM alert_outbox WHERE kind = 'new'"))
        states = Counter(r[0] for r in con.execute("SELECT state FROM alert_outbox"))
    finally:
        con.close()
    assert {k[0] for k in stored} == post_ids
    assert set(stored.values()) == {1}
    assert group_keys, "the scenario's threats raised no escalation at all"
    assert set(group_keys.values()) == {1}
    assert set(new_items.values()) == {1}
    assert set(states) == {"sent"}

    printed = Counter(int(m.group(1)) for m in re.finditer(r"^── alert #(\d+)(?! \(update\))",
                                                          runner.stdout_path.read_text(encoding="utf-8"),
                                                          re.MULTILINE))
    assert printed, "no alert was printed"
    assert set(printed) == set(new_items)
    # Delivery is at-least-once (README): an alert printed in the instant before a kill, not yet
    # recorded as sent, is printed again after the restart; one such alert at most per kill.
    repeats = {k: v for k, v in printed.items() if v > 1}
    assert sum(v - 1 for v in repeats.values()) <= len(progress_at_kills), repeats


def test_second_daemon_on_the_same_database_refuses_to_start(daemons, tmp_path):
    runner = daemons(daemon_config(tmp_path, replay=None))
    first = runner.start()
    runner.wait_for_log(first, "scheduler started")

    second = runner.run_second()
    assert second.returncode != 0
    message = " ".join(second.stderr.split())
    assert "another escalation-monitor daemon" in message, second.stderr
    assert first.poll() is None  # the first one is unaffected

    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) == 0


def test_sigterm_on_an_idle_daemon_exits_zero(daemons, tmp_path):
    runner = daemons(daemon_config(tmp_path, replay=None))
    proc = runner.start()
    runner.wait_for_log(proc, "scheduler started")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, runner.stderr()[-3000:]
