"""Configuration: the example validates; `check-config` reports every problem by key path."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import ConfigError, bundled_config_dir, load_config, parse_config
from tests.support import config_dict

EXAMPLE = bundled_config_dir() / "example.yaml"


@pytest.fixture
def runner(monkeypatch):
    # The secret checks read the process environment: make sure no real token leaks in.
    for var in ("X_BEARER_TOKEN", "REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "500")
    return CliRunner()


def problem_lines(result) -> list[str]:
    return [line.removeprefix("config error ").strip() for line in result.output.splitlines()
            if line.startswith("config error ")]


def write(tmp_path, text: str, name: str = "cfg.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_example_config_validates():
    config = load_config(EXAMPLE, environ={})
    assert [b.name for b in config.brands] == ["Glaslijn"]
    assert config.timezone == "Europe/Amsterdam"
    assert config.team.on_call == "Daan"
    assert config.thresholds.medium <= config.thresholds.high <= config.thresholds.critical
    # The replay file is resolved relative to the config file, not the working directory.
    assert config.sources.replay.file is not None and config.sources.replay.file.is_absolute()
    assert config.sources.replay.file.resolve().is_file()


def test_check_config_accepts_the_example(runner):
    result = runner.invoke(app, ["check-config", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "ok" in result.output
    assert problem_lines(result) == []


def test_check_config_reports_every_problem_in_one_run(runner, tmp_path):
    path = write(tmp_path, """\
        timezone: Mars/Olympus
        brands:
          - name: Acme
            colour: red
        sources:
          x:
            enabled: true
            interval_seconds: often
        digest:
          cron: "61 * * * *"
        """)
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2, result.output
    lines = problem_lines(result)

    def reported(key: str, *words: str) -> bool:
        return any(line.startswith(f"{key}:") and all(w in line for w in words) for line in lines)

    assert reported("brands[0].colour", "unknown key"), lines
    assert reported("sources.x.interval_seconds", "often"), lines
    assert reported("sources.x.bearer_token_env", "X_BEARER_TOKEN"), lines
    assert reported("digest.cron", "61 * * * *"), lines
    assert reported("timezone", "Mars/Olympus"), lines
    # One line per problem, nothing else.
    assert len(lines) == 5, lines


def test_secret_present_in_environment_is_accepted(runner, tmp_path, monkeypatch):
    path = write(tmp_path, yaml.safe_dump(config_dict(sources={"x": {"enabled": True}})))
    monkeypatch.setenv("X_BEARER_TOKEN", "not-a-real-token")
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 0, result.output


def test_missing_secret_on_an_otherwise_valid_file(runner, tmp_path):
    path = write(tmp_path, yaml.safe_dump(config_dict(
        sources={"x": {"enabled": True, "bearer_token_env": "ACME_X_TOKEN"}})))
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    lines = problem_lines(result)
    assert len(lines) == 1, lines
    assert lines[0].startswith("sources.x.bearer_token_env:") and "ACME_X_TOKEN" in lines[0]


def test_not_yaml(runner, tmp_path):
    path = write(tmp_path, "brands: [unclosed\n  - : : {\n")
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    lines = problem_lines(result)
    assert len(lines) == 1 and "not valid YAML" in lines[0], result.output


def test_yaml_that_is_not_a_mapping(runner, tmp_path):
    path = write(tmp_path, "- just\n- a list\n")
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    assert any("mapping" in line for line in problem_lines(result)), result.output


def test_missing_file(runner, tmp_path):
    result = runner.invoke(app, ["check-config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    lines = problem_lines(result)
    assert len(lines) == 1 and "nope.yaml" in lines[0] and "cannot read" in lines[0], result.output


def test_thresholds_out_of_order(runner, tmp_path):
    path = write(tmp_path, yaml.safe_dump(config_dict(thresholds={"medium": 0.9, "high": 0.5, "critical": 0.95})))
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    lines = problem_lines(result)
    assert len(lines) == 1 and lines[0].startswith("thresholds:") and "medium <= high <= critical" in lines[0], lines


def test_brand_thresholds_out_of_order_name_the_brand():
    raw = config_dict()
    raw["brands"][0]["thresholds"] = {"medium": 0.6, "high": 0.95, "critical": 0.9}
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, environ={})
    assert [p.split(":")[0] for p in exc.value.problems] == ["brands[0].thresholds"]


@pytest.mark.parametrize("raw, key", [
    ({"brands": []}, "brands"),
    ({"team": {"on_call": "Nobody", "members": [{"name": "Sanne"}]}}, "team"),
    ({"team": {"members": [{"name": "Sanne", "timezone": "Europe/Nowhere"}]}}, "team.members[0].timezone"),
    ({"team": {"members": [{"name": "Sanne", "languages": ["nl", "und"]}]}}, "team.members[0].languages"),
    ({"retention": {"cron": "every day"}}, "retention.cron"),
    ({"sources": {"replay": {"enabled": True}}}, "sources.replay"),
    ({"classifiers": {"sentiment_labels": {"LABEL_0": "angry"}}}, "classifiers.sentiment_labels"),
    ({"classifiers": {"languages": ["nl"]}}, "classifiers.languages"),
    ({"classifiers": {"languages": ["nl", "NL-be"]}}, "classifiers.languages"),
    ({"classifiers": {"languages": ["nl", "xx"]}}, "classifiers.languages"),
    ({"classifiers": {"languages": ["nld", "eng"]}}, "classifiers.languages"),
])
def test_parse_config_names_the_key(raw, key):
    with pytest.raises(ConfigError) as exc:
        parse_config(config_dict(**raw) if "brands" not in raw else {**config_dict(), **raw}, environ={})
    assert any(p.split(": ")[0] == key for p in exc.value.problems), exc.value.problems


def test_sentiment_labels_are_read_in_lower_case():
    config = parse_config(config_dict(classifiers={"sentiment_labels": {"LABEL_0": "Negative"}}), environ={})
    assert config.classifiers.sentiment_labels == {"LABEL_0": "negative"}


def test_configured_languages_are_read_as_posts_carry_them():
    raw = config_dict(team={"members": [{"name": "Sanne", "languages": ["NL", "en-GB"]}]},
                      classifiers={"languages": ["nl-NL", "PT", "en"]})
    raw["brands"][0]["languages"] = ["nl-BE", "EN"]
    config = parse_config(raw, environ={})
    assert config.team.members[0].languages == ["nl", "en"]
    assert config.brands[0].languages == ["nl", "en"]
    assert config.classifiers.languages == ["nl", "pt", "en"]


def test_parse_config_defaults_and_helpers(make_config):
    config = make_config()
    assert config.own_accounts("x") == {"acme_care"}
    assert config.own_accounts("reddit") == set()
    assert config.thresholds_for("Acme") is config.thresholds
    assert config.thresholds.severity_for(0.49) is None
    assert config.thresholds.severity_for(0.5).value == "medium"
    assert config.thresholds.severity_for(0.8).value == "high"
    assert config.thresholds.severity_for(0.95).value == "critical"


def test_check_config_on_a_binary_file_reports_one_line(runner, tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_bytes(b"\xff\xfe\x00\x01 not text at all \x89PNG")
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    lines = problem_lines(result)
    assert len(lines) == 1 and "cfg.yaml" in lines[0], result.output


def test_missing_slack_token_is_reported_with_the_other_problems(runner, tmp_path):
    path = write(tmp_path, """\
        brands:
          - name: Acme
            colour: red
        slack:
          enabled: true
        """)
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    lines = problem_lines(result)
    assert any(line.startswith("brands[0].colour:") for line in lines), lines
    assert any(line.startswith("slack.bot_token_env:") and "SLACK_BOT_TOKEN" in line for line in lines), lines


def test_missing_slack_token_on_an_otherwise_valid_file(runner, tmp_path):
    path = write(tmp_path, yaml.safe_dump(config_dict(slack={"enabled": True})))
    result = runner.invoke(app, ["check-config", str(path)])
    assert result.exit_code == 2
    lines = problem_lines(result)
    assert len(lines) == 1 and lines[0].startswith("slack.bot_token_env:") and "SLACK_BOT_TOKEN" in lines[0]


def test_make_config_overrides_merge_into_the_document(make_config):
    config = make_config(thresholds={"medium": 0.4}, storage={"url": "sqlite:///x.db"})
    assert (config.thresholds.medium, config.thresholds.high) == (0.4, 0.75)
    assert config.storage.url == "sqlite:///x.db" and config.brands[0].name == "Acme"
