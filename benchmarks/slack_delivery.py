"""Slack delivery: alerts per second through the outbox, and post-to-chat.postMessage latency in the demo.

From the repository root:  .venv/bin/python -m benchmarks.slack_delivery [--alerts 1000]

Both parts use slack-sdk's real WebClient against the fake Slack Web API on 127.0.0.1 (tests/fakes),
so the figures are our side plus local HTTP, not Slack's. Part 1 queues `--alerts` escalations and
drains the outbox the way the daemon's delivery job does. Part 2 replays the bundled demo with Slack
configured and times each alert from the start of the step that collected its post (the post
entering the pipeline) to its chat.postMessage, in wall-clock time and in scenario time.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from monitor.clock import ManualClock
from monitor.demo.run import BUNDLED_SCENARIO, run_demo
from monitor.notifiers.slack import SlackNotifier
from monitor.pipeline.deliver import deliver_pending
from monitor.scenario import Scenario
from monitor.store.repository import OutboxItem, Store
from tests.fakes.slack import FakeSlack
from tests.slacking import DEMO_CHANNELS, DEMO_USERS, acme_config, demo_config, session_for
from tests.support import T0
from tests.test_slack import alert_payload, open_escalation


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def throughput(alerts: int) -> None:
    fake = FakeSlack(DEMO_CHANNELS | {"webcare-acme": "C0ACME"}, DEMO_USERS)
    try:
        notifier = SlackNotifier(session_for(acme_config(fake)))
        with tempfile.TemporaryDirectory() as tmp:
            store = Store.open(f"sqlite:///{Path(tmp) / 'bench.db'}")
            try:
                for n in range(alerts):
                    open_escalation(store, alert_payload(f"post {n}: Acme broke my internet"), n)
                clock = ManualClock(T0)
                started = time.perf_counter()
                sent = 0
                while (report := deliver_pending(store, notifier, clock)).sent:
                    sent += report.sent
                elapsed = time.perf_counter() - started
            finally:
                store.close()
        assert sent == alerts == len(fake.top_level())
        print(f"outbox → Slack: {alerts} alerts in {elapsed:.2f} s = {alerts / elapsed:.0f} alerts/s")
    finally:
        fake.close()


class _Timed(SlackNotifier):
    """Notes when each new alert's chat.postMessage returned, by the post's URL."""

    def __init__(self, session, clock_of):
        super().__init__(session)
        self.posted: dict[str, tuple[float, datetime]] = {}
        self._clock_of = clock_of

    def send(self, item: OutboxItem) -> str | None:
        ts = super().send(item)
        if item.kind == "new" and item.payload.get("url"):
            self.posted[item.payload["url"]] = (time.perf_counter(), self._clock_of())
        return ts


def demo_latency() -> None:
    fake = FakeSlack(DEMO_CHANNELS, DEMO_USERS)
    try:
        session = session_for(demo_config(fake))
        steps: list[tuple[datetime, float]] = []  # (scenario time, wall time) at the start of each step
        notifier = _Timed(session, lambda: steps[-1][0])
        summary = run_demo(session.config, notifier=notifier,
                           on_step=lambda now: steps.append((now, time.perf_counter())))
        posts = {p.url: p for p in Scenario.load(BUNDLED_SCENARIO).posts}
        wall, scenario = [], []
        for url, (posted_wall, posted_at) in notifier.posted.items():
            post = posts[url]
            entered = next(w for at, w in steps if at >= post.at)  # the step that collected it
            wall.append((posted_wall - entered) * 1000)
            scenario.append((posted_at - post.at).total_seconds())
        print(f"demo: {summary.alerts} alerts ({len(wall)} about one post), {summary.updates} updates, "
              f"{summary.mentions} posts, {summary.wall_seconds} s")
        print(f"post entering the pipeline → chat.postMessage, wall clock: median {statistics.median(wall):.0f} ms, "
              f"p95 {p95(wall):.0f} ms")
        print(f"post written → chat.postMessage, scenario time (60 s collection interval): "
              f"median {statistics.median(scenario):.0f} s, p95 {p95(scenario):.0f} s")
    finally:
        fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the demo's SLA follow-ups would log a line each
    throughput(args.alerts)
    demo_latency()


if __name__ == "__main__":
    main()
