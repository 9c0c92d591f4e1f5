"""`escalation-monitor eval cascades`: the JSON contract, fitting and cross-validation, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from classifiers.virality.evaluate import _score, parse_ages
from monitor.cli import app

DATA = Path(__file__).parent / "data"
EVENTS = str(DATA / "cascades_events.jsonl")
DELAYS = str(DATA / "cascades_delays.jsonl")
KEYS = {"at", "method", "n", "median_ape", "male", "double_precision", "double_recall"}


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")  # no wrapped error lines
    return CliRunner()


def run_json(runner, *args) -> list[dict]:
    result = runner.invoke(app, ["eval", "cascades", *args, "--json"])
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if line.strip()]
    report = json.loads(line)
    assert set(report) == {"results"}
    return report["results"]


def test_events_file_scores_every_method_at_every_age(runner):
    results = run_json(runner, "--file", EVENTS, "--at", "10m,1h")
    assert [(r["at"], r["method"]) for r in results] == [
        (at, method) for at in ("10m", "1h") for method in ("naive", "szabo_huberman", "seismic", "project")]
    for r in results:
        assert set(r) == KEYS
        assert r["n"] == 12
        assert r["median_ape"] >= 0 and r["male"] >= 0 and math.isfinite(r["male"])
        for key in ("double_precision", "double_recall"):
            assert r[key] is None or 0 <= r[key] <= 1
    naive = next(r for r in results if r["method"] == "naive" and r["at"] == "10m")
    assert naive["double_precision"] is None  # the naive forecast never doubles


def test_delays_file_has_no_seismic(runner):
    results = run_json(runner, "--file", DELAYS, "--at", "30m")
    assert [r["method"] for r in results] == ["naive", "szabo_huberman", "project"]


def test_fit_on_another_file_and_cross_validation(runner):
    fitted = run_json(runner, "--file", DELAYS, "--fit", EVENTS, "--at", "10m")
    crossed = run_json(runner, "--file", EVENTS, "--cv", "3", "--at", "10m")
    assert all(r["n"] == 12 for r in fitted + crossed)
    shipped = run_json(runner, "--file", EVENTS, "--at", "10m")
    # Fitted Szabo-Huberman growth differs from the shipped one (fitted on the SEISMIC cascades).
    assert crossed[1]["male"] != shipped[1]["male"]


def test_cross_validation_is_reproducible(runner):
    assert run_json(runner, "--file", DELAYS, "--cv", "4", "--seed", "7", "--at", "5m") == \
        run_json(runner, "--file", DELAYS, "--cv", "4", "--seed", "7", "--at", "5m")


def test_table_output(runner):
    result = runner.invoke(app, ["eval", "cascades", "--file", DELAYS, "--at", "30m"])
    assert result.exit_code == 0, result.output
    assert "szabo_huberman" in result.stdout and "median_ape" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--file", "nope.jsonl"], "cannot read nope.jsonl"),
    (["--file", DELAYS, "--fit", "nope.jsonl"], "cannot read nope.jsonl"),
    (["--file", DELAYS, "--at", "10m,soon"], "'soon' is not an age"),
    (["--file", DELAYS, "--at", "0m"], "'0m' is not an age"),
    (["--file", DELAYS, "--cv", "1"], "folds must be between 2 and the number of cascades (12)"),
    (["--file", DELAYS, "--cv", "3", "--fit", EVENTS], "not both"),
])
def test_bad_input_exits_2_naming_it(runner, args, message):
    result = runner.invoke(app, ["eval", "cascades", *args, "--json"])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert result.stdout.strip() == ""


def test_bad_json_line_names_the_line(runner, tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text(Path(DELAYS).read_text(encoding="utf-8") + "{oops\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "cascades", "--file", str(path), "--json"])
    assert result.exit_code == 2
    assert "line 13: not JSON" in result.output


def test_parse_ages():
    assert parse_ages("90s, 10m,1.5h,2d") == [("90s", 90.0), ("10m", 600.0), ("1.5h", 5400.0), ("2d", 172800.0)]


def test_score_by_hand():
    # Forecasts 100 and 50 for finals 100 and 200, both seen at 40 now (so both doubled).
    result = _score("1h", "x", [(100.0, True, 40.0, 100.0), (50.0, False, 40.0, 200.0)])
    assert result.n == 2
    assert result.median_ape == pytest.approx((0 + 0.75) / 2)
    assert result.male == pytest.approx(round(math.log(4) / 2, 4))
    assert (result.double_precision, result.double_recall) == (1.0, 0.5)
