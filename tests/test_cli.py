"""The command line: demo, classify, db upgrade, digest and eval, in process via typer's CliRunner."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
import yaml
from typer.testing import CliRunner

from monitor.cli import app
from monitor.store import db
from tests.support import (
    LEGAL_THREAT,
    NEUTRAL_CHATTER,
    T0,
    build_mention,
    config_dict,
    scenario_post,
    small_threat_scenario,
)


@pytest.fixture
def runner(monkeypatch):
    monkeypatch.setenv("COLUMNS", "500")  # no wrapped error lines
    return CliRunner()


def flat(text: str) -> str:
    """Output with all whitespace removed, immune to line wrapping."""
    return "".join(text.split())


def json_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def write_config(tmp_path, name="cfg.yaml", **overrides):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config_dict(**overrides)), encoding="utf-8")
    return path


# --- demo ---------------------------------------------------------------------------------------------

def test_python_m_runs_the_command_line():
    """`python -m monitor.cli` is the same program as the `escalation-monitor` entry point."""
    done = subprocess.run([sys.executable, "-m", "monitor.cli", "db", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Usage: escalation-monitor db" in done.stdout and "upgrade" in done.stdout


def test_demo_json_summary(runner, scenario_file):
    scenario = scenario_file(small_threat_scenario(T0))
    result = runner.invoke(app, ["demo", "--json", "--scenario", str(scenario), "--speed", "400"])
    assert result.exit_code == 0, result.output
    (summary,) = json_lines(result.stdout)
    assert {"mentions", "alerts", "by_reason", "true_positives", "false_positives", "missed"} <= set(summary)
    assert summary["mentions"] == 5
    assert summary["alerts"] == 2
    assert summary["by_reason"] == {"threat": 2}
    assert (summary["true_positives"], summary["false_positives"], summary["missed"]) == (2, 0, 0)


def test_demo_with_the_default_model(runner):
    """`./run demo` as a new user runs it: the bundled scenario read by the default (bundled) model.
    The lexicon baseline, whose term lists were written alongside this scenario, finds 53 of the
    87 posts that need an alert with no false alarm; the default model must find the outage and
    every threat, and no fewer posts."""
    result = runner.invoke(app, ["demo", "--json"])
    assert result.exit_code == 0, result.output
    (summary,) = json_lines(result.stdout)
    assert summary["by_reason"]["threat"] == 7 and summary["by_reason"]["storm"] == 1
    assert len(summary["storms"]) == 1 and "internet" in summary["storms"][0]
    assert summary["true_positives"] >= 53 and summary["false_positives"] <= 1
    assert summary["true_positives"] + summary["missed"] == 87


def test_demo_counts_a_missed_post(runner, scenario_file):
    events = [scenario_post("a", NEUTRAL_CHATTER[0], T0, expect="alert"),
              scenario_post("b", LEGAL_THREAT, T0 + timedelta(minutes=1), expect="alert")]
    result = runner.invoke(app, ["demo", "--json", "--scenario", str(scenario_file(events)), "--speed", "400"])
    assert result.exit_code == 0, result.output
    (summary,) = json_lines(result.stdout)
    assert (summary["true_positives"], summary["missed"], summary["alerts"]) == (1, 1, 1)


@pytest.mark.parametrize("bad_line, expected", [
    ("{not json", "notvalidJSON"),
    ('{"type": "post", "at": "2026-11-20T08:00:00Z", "source": "x", "id": "2"}', "author"),
    ('{"type": "tweet"}', "`type`"),
    ('{"type": "post", "at": "2026-11-20T08:00:00", "source": "x", "id": "2", '
     '"author": {"id": "a", "handle": "h"}, "text": "naive time"}', "at"),
])
def test_demo_malformed_scenario_names_the_line(runner, tmp_path, bad_line, expected):
    good = json.dumps(scenario_post("1", "hello", T0))
    path = tmp_path / "bad.jsonl"
    path.write_text(f"{good}\n\n{bad_line}\n", encoding="utf-8")
    result = runner.invoke(app, ["demo", "--json", "--scenario", str(path)])
    assert result.exit_code == 2
    assert "bad.jsonl:3:" in flat(result.output), result.output
    assert expected in flat(result.output), result.output
    assert result.stdout.strip() == ""


def test_demo_scenario_without_posts(runner, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n", encoding="utf-8")
    result = runner.invoke(app, ["demo", "--json", "--scenario", str(path)])
    assert result.exit_code == 2
    assert "noposts" in flat(result.output)


# --- classify -------------------------------------------------------------------------------------------

def test_classify_prints_a_press_trigger(runner):
    result = runner.invoke(app, ["classify", "ik stap naar de Radar"])
    assert result.exit_code == 0, result.output
    (line,) = json_lines(result.stdout)
    assert line["text"] == "ik stap naar de Radar"
    assert line["lang"] == "nl"
    assert line["sentiment"] in ("negative", "neutral", "positive")
    (press,) = [t for t in line["triggers"] if t["category"] == "press"]
    assert press["text"] == "Radar"
    start, end = press["span"]
    assert "ik stap naar de Radar"[start:end] == "Radar"


def test_classify_several_posts_one_line_each(runner):
    result = runner.invoke(app, ["classify", "--lang", "en", "my lawyer will hear about this", "nice weather"])
    assert result.exit_code == 0, result.output
    first, second = json_lines(result.stdout)
    assert [t["category"] for t in first["triggers"]] == ["legal"]
    assert second["triggers"] == [] and second["lang"] == "en"


# --- db upgrade and digest -----------------------------------------------------------------------------

def test_db_upgrade_on_a_fresh_sqlite_path(runner, tmp_path):
    target = tmp_path / "sub" / "fresh.db"
    target.parent.mkdir()
    config = write_config(tmp_path, storage={"url": f"sqlite:///{target}"})
    result = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert target.is_file()
    engine = db.make_engine(f"sqlite:///{target}")
    try:
        assert db.current_revision(engine) == db.head_revision()
    finally:
        engine.dispose()
    assert db.head_revision() in result.output and "empty" in result.output

    again = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    assert again.exit_code == 0, again.output
    assert "empty" not in again.output


def test_db_upgrade_with_a_broken_url(runner, tmp_path):
    config = write_config(tmp_path, storage={"url": "this is not a url"})
    result = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 2
    assert "storage.url" in result.output


def test_digest_of_an_empty_database(runner, tmp_path):
    config = write_config(tmp_path, storage={"url": f"sqlite:///{tmp_path / 'digest.db'}"})
    result = runner.invoke(app, ["digest", "--week", "2026-W47", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    (digest,) = json_lines(result.stdout)
    assert digest["week"] == "2026-W47"
    assert digest["total"] == 0
    assert digest["by_severity"] == {} and digest["per_owner"] == {}
    assert digest["false_positive_rate"] is None and digest["bottleneck"] is None


@pytest.mark.parametrize("week", ["banana", "2026-W99", "2026W47", "-W"])
def test_digest_rejects_a_bad_week(runner, tmp_path, week):
    config = write_config(tmp_path, storage={"url": f"sqlite:///{tmp_path / 'digest.db'}"})
    result = runner.invoke(app, ["digest", "--week", week, "--json", "--config", str(config)])
    assert result.exit_code == 2
    assert "--week" in result.output
    assert result.stdout.strip() == ""


def test_digest_counts_escalations_of_the_week(runner, tmp_path):
    from monitor.models import EscalationState, Severity
    from monitor.store.repository import Store

    url = f"sqlite:///{tmp_path / 'digest.db'}"
    store = Store.open(url)
    try:
        at = T0 - timedelta(days=7)  # Monday 2026-11-16, week 47
        (mention_id,) = store.ingest("x", "Acme", [build_mention("1", at=at)],
                                     "c", own_accounts={}, now=at).new_ids
        esc = store.create_escalation(
            brand="Acme", group_key=f"mention:{mention_id}", kind="mention", subject_mention_id=mention_id,
            storm_id=None, source="x", lang="nl", severity=Severity.high, probability=0.8, reasons=[],
            suggested_owner="Sanne", owner_reason="", member_ids=[mention_id], alert_payload={}, channel=None,
            last_alert={}, now=at)
        store.transition(esc, EscalationState.claimed, "Sanne", at + timedelta(minutes=10))
        store.transition(esc, EscalationState.dismissed, "Sanne", at + timedelta(minutes=20))
    finally:
        store.close()
    config = write_config(tmp_path, storage={"url": url})
    result = runner.invoke(app, ["digest", "--week", "2026-W47", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    (digest,) = json_lines(result.stdout)
    assert digest["total"] == 1
    assert digest["by_severity"] == {"high": 1} and digest["by_language"] == {"nl": 1}
    assert digest["claim_minutes"] == [10.0, 10.0]
    assert digest["dismissed"] == 1 and digest["false_positive_rate"] == 1.0
    assert digest["claim_breaches"] == 0
    other_week = runner.invoke(app, ["digest", "--week", "2026-W48", "--json", "--config", str(config)])
    assert json_lines(other_week.stdout)[0]["total"] == 0


# --- eval ---------------------------------------------------------------------------------------------------

SENTIMENT_TSV = "label\ttext\n" + "\n".join([
    "negative\tAbsolutely terrible service, worst provider ever, I hate this",
    "negative\tInternet down again for the third day, nobody answers the phone",
    "positive\tGreat service, thanks so much, the engineer was brilliant",
    "positive\tThanks for the help, all sorted now!",
    "neutral\tAnyone know if Acme supports port forwarding?",
    "neutral\tThe technician is coming on Thursday",
]) + "\n"

COMPLAINTS_TSV = "text\tis_complaint\n" + "\n".join([
    "Internet down again for the third day, nobody answers the phone, terrible\t1",
    "Still no refund after six weeks, this is a disgrace\t1",
    "Thanks for the help, all sorted now!\t0",
    "Anyone know if Acme supports port forwarding?\t0",
]) + "\n"


def test_eval_sentiment_json(runner, tmp_path):
    path = tmp_path / "sentiment.tsv"
    path.write_text(SENTIMENT_TSV, encoding="utf-8")
    result = runner.invoke(app, ["eval", "sentiment", "--file", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (report,) = json_lines(result.stdout)
    assert set(report) == {"n", "macro_recall", "macro_f1", "accuracy", "posts_per_s", "model"}
    assert report["n"] == 6
    for key in ("macro_recall", "macro_f1", "accuracy"):
        assert 0.0 <= report[key] <= 1.0
    assert report["accuracy"] > 1 / 3  # better than always answering one class
    assert report["posts_per_s"] > 0
    assert isinstance(report["model"], str) and report["model"]


def test_eval_complaints_json(runner, tmp_path):
    path = tmp_path / "complaints.tsv"
    path.write_text(COMPLAINTS_TSV, encoding="utf-8")
    result = runner.invoke(app, ["eval", "complaints", "--file", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (report,) = json_lines(result.stdout)
    assert {"n", "macro_f1", "precision", "recall", "posts_per_s"} <= set(report)
    assert report["n"] == 4
    for key in ("macro_f1", "precision", "recall"):
        assert 0.0 <= report[key] <= 1.0
    assert report["posts_per_s"] > 0


@pytest.mark.parametrize("command, header", [("sentiment", "label\ttweet"), ("complaints", "body\tis_complaint")])
def test_eval_tsv_without_text_column(runner, tmp_path, command, header):
    path = tmp_path / "bad.tsv"
    path.write_text(f"{header}\nnegative\tsomething\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", command, "--file", str(path), "--json"])
    assert result.exit_code == 2
    assert "text" in result.output
    assert result.stdout.strip() == ""


def test_eval_sentiment_unknown_label(runner, tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("label\ttext\nangry\tgrr\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "sentiment", "--file", str(path), "--json"])
    assert result.exit_code == 2
    assert "angry" in result.output


def test_eval_unknown_labels_name_the_file_and_line_and_stop_at_five(runner, tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("label\ttext\npositive\tok\n" + "".join(f"x{i}\tpost\n" for i in range(8)), encoding="utf-8")
    result = runner.invoke(app, ["eval", "sentiment", "--file", str(path), "--model", "lexicon", "--json"])
    assert result.exit_code == 2 and result.stdout.strip() == ""
    assert "bad.tsv" in flat(result.output) and "'x0'(line3)" in flat(result.output)
    assert "x4" in result.output and "x5" not in result.output and "and3more" in flat(result.output)


def test_eval_complaint_values_other_than_0_and_1_name_the_line(runner, tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("text\tis_complaint\nstill no refund\t1\nmy order never came\tyes\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "complaints", "--file", str(path), "--model", "lexicon", "--json"])
    assert result.exit_code == 2 and "'yes'(line3)" in flat(result.output)


@pytest.mark.parametrize("command, content", [
    ("sentiment", "label\ttext\nnegative\nnegative\tI hate this\n"),
    ("sentiment", "text\tlabel\nI hate this\nlove it\tpositive\n"),
    ("complaints", "text\tis_complaint\nstill no refund\nthanks\t0\n"),
])
def test_eval_row_cut_short_is_an_error_naming_its_line_not_a_row_lost(runner, tmp_path, command, content):
    path = tmp_path / "short.tsv"
    path.write_text(content, encoding="utf-8")
    result = runner.invoke(app, ["eval", command, "--file", str(path), "--model", "lexicon", "--json"])
    assert result.exit_code == 2, result.output
    assert "line2" in flat(result.output) and "novaluefor" in flat(result.output) and result.stdout.strip() == ""


def test_eval_reads_a_file_with_a_byte_order_mark(runner, tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_bytes("\ufefflabel\ttext\r\nnegative\tI hate this, terrible\r\npositive\tlove it, great\r\n".encode())
    result = runner.invoke(app, ["eval", "sentiment", "--file", str(path), "--model", "lexicon", "--json"])
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[0]["n"] == 2


def test_eval_header_longer_than_the_field_limit_exits_2(runner, tmp_path):
    path = tmp_path / "huge_header.tsv"
    path.write_text("label\t" + "t" * (17 * 1024 * 1024) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "sentiment", "--file", str(path), "--model", "lexicon", "--json"])
    assert result.exit_code == 2 and "line1" in flat(result.output), result.output


def test_eval_file_not_utf8_names_the_line(runner, tmp_path):
    data = tmp_path / "latin1.tsv"
    data.write_bytes("label\ttext\npositive\tfine\nnegative\tna\u00efve caf\u00e9\n".encode("latin-1"))
    result = runner.invoke(app, ["eval", "sentiment", "--file", str(data), "--model", "lexicon"])
    assert result.exit_code == 2
    assert "isnotUTF-8text(line3)" in flat(result.output)


def test_eval_scores_a_post_longer_than_csvs_field_limit(runner, tmp_path):
    """csv refuses a field over 128 KiB by default: a huge post is scored, not a traceback."""
    data = tmp_path / "huge.tsv"
    data.write_text("label\ttext\nnegative\t" + "terrible service " * 20_000 + "\npositive\tlove it\n",
                    encoding="utf-8")
    result = runner.invoke(app, ["eval", "sentiment", "--file", str(data), "--model", "lexicon", "--json"])
    assert result.exit_code == 0, result.output
    assert json_lines(result.stdout)[0]["n"] == 2


def test_eval_float32_of_a_model_without_an_int8_form_exits_2(runner, tmp_path):
    data = tmp_path / "s.tsv"
    data.write_text("label\ttext\nnegative\tbad\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "sentiment", "--file", str(data), "--model", "lexicon", "--float32"])
    assert result.exit_code == 2
    assert "--float32" in result.output and "lexicon" in result.output and result.stdout.strip() == ""


def test_eval_missing_file(runner, tmp_path):
    result = runner.invoke(app, ["eval", "complaints", "--file", str(tmp_path / "nope.tsv"), "--json"])
    assert result.exit_code == 2


@pytest.mark.parametrize("command, header", [("sentiment", "label\ttext"), ("complaints", "text\tis_complaint")])
def test_eval_header_only_file_exits_2(runner, tmp_path, command, header):
    path = tmp_path / "empty.tsv"
    path.write_text(f"{header}\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", command, "--file", str(path), "--json"])
    assert result.exit_code == 2, result.output
