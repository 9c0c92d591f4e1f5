"""A 10,000-post X backfill: tweepy against the local fake X API, normalised and stored in SQLite.

From the repository root:  .venv/bin/python -m benchmarks.backfill [--posts 10000] [--db sqlite:///file.db]

Prints how many mentions per second were collected, normalised and stored, end to end (HTTP,
JSON, normalisation, the store's idempotent ingest and cursor), the way the daemon's collect job
drains a backlog: run after run until the source has no more.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from monitor.clock import ManualClock
from monitor.collectors.budget import ReadBudget
from monitor.collectors.x import XCollector, build_query
from monitor.pipeline.collect import collect_and_store
from monitor.store.repository import Store
from tests.fakes.x import SEARCH, FakeX

TOKEN = "benchmark-token"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--db", help="SQLAlchemy URL (default: a SQLite file in a temporary folder)")
    args = parser.parse_args()

    clock = ManualClock(datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc))
    fake = FakeX(clock, bearer_token=TOKEN, window_limit=args.posts)  # the benchmark measures us, not X's limits
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(args.db or f"sqlite:///{Path(tmp) / 'backfill.db'}")
        try:
            for i in range(args.posts):
                fake.post(f"acme storing nummer {i}, al uren geen internet", f"klant{i % 500}")
            collector = XCollector("Acme", build_query(["acme"], ["acme_care"]), TOKEN,
                                   ReadBudget(store, "x", 2 * args.posts, clock), clock, base_url=fake.url)
            started = time.perf_counter()
            runs = 1
            while collect_and_store(collector, store, clock, {"x": {"acme_care"}}).more:
                runs += 1
            seconds = time.perf_counter() - started
            stored = store.count_mentions()
        finally:
            store.close()
            fake.close()
    print(f"stored {stored} of {args.posts} posts in {seconds:.2f} s over {runs} runs and "
          f"{len(fake.requests_to(SEARCH))} search requests: {stored / seconds:,.0f} mentions/s")


if __name__ == "__main__":
    main()
