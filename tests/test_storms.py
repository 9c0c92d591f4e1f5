"""Storm detection: the hour-of-week baseline, a storm opening on a surge and closing when the
volume is back to baseline, and `eval storms` with its scenario builder."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from classifiers.storm import HourOfWeekBaseline
from monitor.cli import app
from monitor.clock import ManualClock
from monitor.pipeline.classify import classify_pending
from monitor.pipeline.storms import StormTracker
from monitor.scenario import Scenario
from monitor.storm_eval import score_storms
from tests.support import BRAND, T0, build_config, build_mention, scenario_post, write_scenario

OUTAGE = ["Acme internet down again in {}, no connection at all, terrible",
          "Acme outage: internet down in {}, router blinking red, so annoying",
          "internet down here in {} too, Acme please fix this terrible outage"]
TOWNS = ["Utrecht", "Zwolle", "Breda", "Delft", "Leiden", "Ede", "Gouda", "Assen", "Venlo", "Hoorn", "Emmen", "Weert"]
CALM = ["Lovely weather today, going for a walk after work",
        "Just moved house, the Acme technician is coming on Thursday"]


# --- the baseline ------------------------------------------------------------------------------

def test_baseline_without_history_is_the_prior():
    baseline = HourOfWeekBaseline(4.0, "Europe/Amsterdam")
    assert baseline.rate(T0, [], None, T0) == pytest.approx(4.0)


def test_baseline_learns_the_brands_level_within_a_day():
    """A day at 12 negative posts an hour moves every hour of the day far from a prior of 4, even
    hours of the week never seen before."""
    baseline = HourOfWeekBaseline(4.0, "Europe/Amsterdam")
    start = T0 - timedelta(days=1)
    history = [start + timedelta(minutes=5 * i) for i in range(12 * 24)]
    unseen_weekday = T0 + timedelta(days=3)
    assert baseline.rate(T0, history, start, T0) > 9
    assert baseline.rate(unseen_weekday, history, start, T0) > 9


def test_baseline_follows_the_hour_of_the_day():
    """Busy evenings and quiet nights: each hour learns its own level."""
    baseline = HourOfWeekBaseline(4.0, "UTC")
    start = T0.replace(hour=0) - timedelta(weeks=2)
    history = [start + timedelta(days=d, hours=20, minutes=m) for d in range(14) for m in range(0, 60, 3)]
    evening, night = T0.replace(hour=20), T0.replace(hour=3)
    assert baseline.rate(evening, history, start, T0) > 15
    assert baseline.rate(night, history, start, T0) < 1.5


# --- open and close ----------------------------------------------------------------------------

def _post(store, clock, classifier, cfg, external_id, text, at):
    store.ingest("x", BRAND, [build_mention(external_id, text, at=at)], None, own_accounts={}, now=clock.now())
    classify_pending(store, classifier, clock, cfg.engagement)


def test_storm_opens_on_a_surge_grows_and_closes_when_volume_is_back_to_baseline(sqlite_store, classifier):
    cfg = build_config()
    tracker = StormTracker(cfg.storms, cfg.timezone)
    clock = ManualClock(T0 - timedelta(hours=3))
    brand = cfg.brand(BRAND)
    # Three calm hours: the odd complaint, mostly chatter.
    for minute in range(0, 180, 10):
        clock.set(T0 - timedelta(hours=3) + timedelta(minutes=minute))
        _post(sqlite_store, clock, classifier, cfg, f"calm{minute}", CALM[minute // 10 % 2], clock.now())
        assert tracker.update(sqlite_store, brand, clock) == []
    # The outage: a complaint a minute.
    changes = []
    for i, town in enumerate(TOWNS[:10]):
        clock.set(T0 + timedelta(minutes=i))
        _post(sqlite_store, clock, classifier, cfg, f"out{i}", OUTAGE[i % 3].format(town), clock.now())
        changes += tracker.update(sqlite_store, brand, clock)
    opened = [c for c in changes if c.opened]
    assert len(opened) == 1, "one storm that grows, not one per post"
    storm = sqlite_store.storm(opened[0].storm_id)
    assert storm.size == 10 and storm.closed_at is None
    assert "internet down" in storm.terms

    # Volume back to calm: the storm stays open for close_after_minutes, then closes once.
    closed_at = None
    for minute in range(10, 80, 5):
        clock.set(T0 + timedelta(minutes=minute))
        _post(sqlite_store, clock, classifier, cfg, f"after{minute}", CALM[0], clock.now())
        for change in tracker.update(sqlite_store, brand, clock):
            assert change.closed and closed_at is None
            closed_at = clock.now()
    assert closed_at is not None
    assert closed_at - storm.last_post_at >= timedelta(minutes=cfg.storms.close_after_minutes)
    assert closed_at - storm.last_post_at <= timedelta(minutes=cfg.storms.close_after_minutes + 5)
    assert sqlite_store.storm(storm.id).closed_at == closed_at
    assert sqlite_store.open_storms(BRAND) == []


def test_storm_stays_open_while_posts_keep_coming(sqlite_store, classifier):
    cfg = build_config()
    tracker = StormTracker(cfg.storms, cfg.timezone)
    clock = ManualClock(T0)
    brand = cfg.brand(BRAND)
    for i in range(60):
        clock.set(T0 + timedelta(minutes=i))
        if i % 6 == 0 or i < 10:  # the surge, then a steady trickle of the same outage
            text = OUTAGE[i % 3].format(TOWNS[i % len(TOWNS)])
            _post(sqlite_store, clock, classifier, cfg, f"p{i}", text, clock.now())
        for change in tracker.update(sqlite_store, brand, clock):
            assert not change.closed
    (storm,) = sqlite_store.open_storms(BRAND)
    assert storm.size >= 15


# --- eval storms -------------------------------------------------------------------------------

def _scenario(tmp_path, events):
    return Scenario.load(write_scenario(tmp_path / "s.jsonl", events))


def test_score_storms_counts_delays_and_false_storms(tmp_path):
    posts = [scenario_post(f"s{i}", "x", T0 + timedelta(minutes=i)) | {"storm": "outage"} for i in range(12)]
    posts += [scenario_post("bg", "y", T0 + timedelta(days=2))]
    scenario = _scenario(tmp_path, posts)
    found = T0 + timedelta(minutes=4)
    first_at = {1: {"outage": found, None: found}, 2: {None: T0 + timedelta(days=1)}}
    make_up = {1: Counter({"outage": 11, None: 2}), 2: Counter({None: 7, "outage": 1})}
    report = score_storms(scenario, first_at, make_up).as_dict()
    assert report == {"storms": [{"name": "outage", "detected": True, "delay_first_s": 240.0,
                                  "delay_10th_s": -300.0}],
                      "false_storms": 1, "false_storms_per_day": 0.5, "days": 2.0}


def test_score_storms_reports_a_missed_storm(tmp_path):
    scenario = _scenario(tmp_path, [scenario_post("s1", "x", T0) | {"storm": "outage"},
                                    scenario_post("bg", "y", T0 + timedelta(days=1))])
    report = score_storms(scenario, {}, {}).as_dict()
    assert report["storms"] == [{"name": "outage", "detected": False, "delay_first_s": None, "delay_10th_s": None}]
    assert report["false_storms"] == 0


def _tsv(path, header, rows):
    path.write_text("\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def storm_data(tmp_path):
    support = _tsv(tmp_path / "support.tsv", ["tweet_id", "author_id", "inbound", "created_at", "text"],
                   [[str(i), f"{1000 + i}", "True" if i % 4 else "False", "-", CALM[0]] for i in range(160)])
    complaints = _tsv(tmp_path / "complaints.tsv", ["id", "text", "is_complaint", "domain"],
                      [[f"{i}", OUTAGE[i % 3].format(TOWNS[i]), "1", "services"] for i in range(12)]
                      + [["99", "Acme internet down? asking for a friend", "0", "services"]])
    return support, complaints


def test_eval_storms_on_a_built_scenario(tmp_path, storm_data, monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")
    runner = CliRunner()
    support, complaints = storm_data
    out = tmp_path / "storm.jsonl"
    built = runner.invoke(app, ["eval", "storm-scenario", "--support", str(support), "--complaints", str(complaints),
                                "--out", str(out), "--days", "0.125", "--term", "internet", "--posts", "12",
                                "--minutes", "12", "--at-hours", "2"])
    assert built.exit_code == 0, built.output
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert Counter("storm" in e for e in events) == {False: 120, True: 12}
    assert all(e["storm"] == "internet" for e in events if "storm" in e)
    assert not any("asking for a friend" in e["text"] for e in events), "only is_complaint=1 rows make the storm"

    result = runner.invoke(app, ["eval", "storms", "--scenario", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"storms", "false_storms", "false_storms_per_day", "days"}
    (storm,) = report["storms"]
    assert storm["name"] == "internet" and storm["detected"] is True
    assert 0 < storm["delay_first_s"] <= 12 * 60
    assert storm["delay_10th_s"] <= 10 * 60
    assert report["false_storms"] == 0


def test_storm_scenario_bad_input_is_one_clear_error(tmp_path, storm_data):
    runner = CliRunner()
    support, complaints = storm_data
    no_column = _tsv(tmp_path / "bad.tsv", ["id", "text"], [["1", "x"]])
    result = runner.invoke(app, ["eval", "storm-scenario", "--support", str(support), "--complaints",
                                 str(no_column), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2
    assert "bad.tsv has no column(s) is_complaint" in " ".join(result.output.split())
    too_few = runner.invoke(app, ["eval", "storm-scenario", "--support", str(support), "--complaints",
                                  str(complaints), "--out", str(tmp_path / "o.jsonl"), "--term", "internet",
                                  "--posts", "40", "--at-hours", "1"])
    assert too_few.exit_code == 2
    assert "only 12 complaints use 'internet'" in " ".join(too_few.output.split())
    missing = runner.invoke(app, ["eval", "storms", "--scenario", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "cannot read the scenario" in " ".join(missing.output.split())
