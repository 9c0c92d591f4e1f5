"""The monitor's configuration: one YAML file, validated with pydantic.

Secrets never live in the file: each enabled source names the environment variables it
reads its tokens from, and `check-config` reports a missing one by key path.
"""

from __future__ import annotations

import os
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.models import Severity, language_code

PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_config_dir() -> Path:
    """The `config/` folder: in the repository for a checkout, inside the package for a wheel."""
    for candidate in (PACKAGE_DIR.parent / "config", PACKAGE_DIR / "bundled_config"):
        if (candidate / "example.yaml").is_file():
            return candidate
    raise FileNotFoundError("the bundled config/ folder is missing from this installation")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown timezone {value!r} (use an IANA name such as 'Europe/Amsterdam')") from None
    return value


def _language_codes(values: list[str]) -> list[str]:
    """Codes as posts carry them ("NL", "nl-BE" -> "nl"): written otherwise, a speaker never matched a post."""
    codes = []
    for value in values:
        code = language_code(value)
        if code is None:
            raise ValueError(f"{value!r} names no language (use an ISO 639-1 code such as 'nl')")
        codes.append(code)
    return codes


def _check_cron(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value)
    except ValueError as exc:
        raise ValueError(f"bad cron expression {value!r}: {exc}") from None
    return value


Timezone = Annotated[str, Field(description="IANA timezone name")]
PerSource = dict[str, list[str]]


class Thresholds(Strict):
    """Risk probability at or above which an alert of that severity is raised."""

    medium: float = Field(0.5, ge=0, le=1)
    high: float = Field(0.75, ge=0, le=1)
    critical: float = Field(0.9, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> "Thresholds":
        if not self.medium <= self.high <= self.critical:
            raise ValueError("thresholds must satisfy medium <= high <= critical")
        return self

    def severity_for(self, probability: float) -> Severity | None:
        for severity in reversed(Severity):
            if probability >= getattr(self, severity.value):
                return severity
        return None


class BrandConfig(Strict):
    name: str = Field(min_length=1)
    languages: list[str] = Field(default_factory=lambda: ["nl", "en"])
    own_accounts: PerSource = Field(default_factory=dict)
    search_terms: PerSource = Field(default_factory=dict)
    thresholds: Thresholds | None = None  # falls back to the top-level thresholds
    slack_channel: str | None = None  # falls back to slack.channel
    slack_channels_by_severity: dict[Severity, str] = Field(default_factory=dict)

    _languages = field_validator("languages")(_language_codes)


class SourceConfig(Strict):
    # Keys naming the environment variables an enabled source cannot work without.
    SECRET_KEYS: ClassVar[tuple[str, ...]] = ()

    enabled: bool = False
    interval_seconds: int = Field(60, ge=5)
    timeout_seconds: float = Field(30, gt=0)  # per HTTP request

    def secret_variables(self) -> dict[str, str]:
        """Key -> the environment variable it names."""
        return {key: getattr(self, key) for key in self.SECRET_KEYS}


class XSourceConfig(SourceConfig):
    SECRET_KEYS = ("bearer_token_env",)

    bearer_token_env: str = "X_BEARER_TOKEN"
    daily_read_budget: int = Field(10_000, ge=0)
    pages_per_run: int = Field(10, ge=1)  # pages of 100 posts; a longer backlog continues in the next run
    base_url: str | None = None  # for tests against a local fake


class RedditSourceConfig(SourceConfig):
    SECRET_KEYS = ("client_id_env", "client_secret_env")

    interval_seconds: int = Field(300, ge=5)
    client_id_env: str = "REDDIT_CLIENT_ID"
    client_secret_env: str = "REDDIT_CLIENT_SECRET"
    user_agent: str = "escalation-monitor/0.1"
    subreddits: list[str] = Field(default_factory=lambda: ["all"], min_length=1)
    base_url: str | None = None  # token and API requests go here instead (tests against a local fake)


class MastodonInstanceConfig(Strict):
    url: str = Field(pattern=r"^https?://")
    access_token_env: str | None = None  # full-text search needs a token; hashtag timelines are public


class MastodonSourceConfig(SourceConfig):
    """Hashtag timelines (terms starting with #) and full-text search (other terms) on each instance."""

    interval_seconds: int = Field(120, ge=5)
    pages_per_run: int = Field(5, ge=1)  # pages of 40 statuses per stream; a longer backlog continues right after
    instances: list[MastodonInstanceConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _instances(self) -> "MastodonSourceConfig":
        if self.enabled and not self.instances:
            raise ValueError("an enabled mastodon source needs at least one entry in `instances`")
        urls = [i.url.rstrip("/") for i in self.instances]
        if len(set(urls)) != len(urls):
            raise ValueError("instance urls must be unique")
        return self

    def secret_variables(self) -> dict[str, str]:
        return {f"instances[{n}].access_token_env": i.access_token_env
                for n, i in enumerate(self.instances) if i.access_token_env}


class BlueskySourceConfig(SourceConfig):
    """searchPosts for each of a brand's bluesky terms and `from:` its own accounts."""

    interval_seconds: int = Field(120, ge=5)
    pages_per_run: int = Field(5, ge=1)  # pages of 100 posts per search; a longer backlog continues right after
    handle: str | None = None  # log in as this account; the app password comes from app_password_env
    app_password_env: str = "BLUESKY_APP_PASSWORD"
    base_url: str | None = None  # default: bsky.social with a handle, the public AppView without

    def secret_variables(self) -> dict[str, str]:
        return {"app_password_env": self.app_password_env} if self.handle else {}

    def service_url(self) -> str:
        if self.base_url:
            return self.base_url
        return "https://bsky.social/xrpc" if self.handle else "https://public.api.bsky.app/xrpc"


class FeedConfig(Strict):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")  # in logs and `status`
    url: str = Field(pattern=r"^https?://")


class NewsSourceConfig(SourceConfig):
    """RSS and Atom feeds of news sites and blogs (or Google News queries); entries naming a
    brand's news terms become mentions."""

    interval_seconds: int = Field(600, ge=5)
    feeds: list[FeedConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _feeds(self) -> "NewsSourceConfig":
        if self.enabled and not self.feeds:
            raise ValueError("an enabled news source needs at least one entry in `feeds`")
        names = [f.name for f in self.feeds]
        if len(set(names)) != len(names):
            raise ValueError("feed names must be unique")
        return self


class ReplaySourceConfig(SourceConfig):
    """Feeds a scenario file (JSON lines) through the pipeline, a batch per run."""

    file: Path | None = None
    batch_size: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _needs_file(self) -> "ReplaySourceConfig":
        if self.enabled and self.file is None:
            raise ValueError("an enabled replay source needs `file`")
        return self


class SourcesConfig(Strict):
    x: XSourceConfig = Field(default_factory=XSourceConfig)
    reddit: RedditSourceConfig = Field(default_factory=RedditSourceConfig)
    mastodon: MastodonSourceConfig = Field(default_factory=MastodonSourceConfig)
    bluesky: BlueskySourceConfig = Field(default_factory=BlueskySourceConfig)
    news: NewsSourceConfig = Field(default_factory=NewsSourceConfig)
    replay: ReplaySourceConfig = Field(default_factory=ReplaySourceConfig)

    def all(self) -> dict[str, SourceConfig]:
        return {name: getattr(self, name) for name in type(self).model_fields}

    def secrets_needed(self) -> dict[str, list[str]]:
        """Key path of each enabled source -> environment variables it reads."""
        return {f"sources.{name}.{key}": [var] for name, source in self.all().items() if source.enabled
                for key, var in source.secret_variables().items()}

    def secret_variables(self) -> list[str]:
        """Every variable a source reads a secret from, enabled or not: their values are masked in the log."""
        return [var for source in self.all().values() for var in source.secret_variables().values()]


class EngagementConfig(Strict):
    """Re-polling of engagement for watched mentions; the gaps grow with the post's age."""

    interval_seconds: int = Field(60, ge=5)
    repoll_minutes: list[float] = Field(default_factory=lambda: [2, 5, 10, 20, 40, 60])
    max_age_hours: float = Field(48, gt=0)
    min_followers_to_watch: int = Field(10_000, ge=0)
    # Clearly dead: no new shares over this many polls in a row, at this age or older.
    dead_after_polls: int = Field(3, ge=2)
    dead_min_age_minutes: float = Field(120, ge=0)


class StormConfig(Strict):
    window_minutes: int = Field(15, ge=1)
    min_posts: int = Field(6, ge=2)
    # Expected negative posts per hour before the store has history of its own.
    prior_negative_per_hour: float = Field(4.0, gt=0)
    # One-sided Poisson tail probability below which the window counts as a surge.
    surge_p_value: float = Field(1e-4, gt=0, lt=1)
    close_after_minutes: int = Field(30, ge=1)


class RiskConfig(Strict):
    repeat_contact_window_hours: float = Field(24, gt=0)
    repeat_contact_min_posts: int = Field(3, ge=2)
    # Agents' feedback: precision is tracked on the last `feedback_window` labelled alerts, and
    # the risk is recalibrated from them once there are `recalibrate_min_labels`.
    feedback_window: int = Field(200, ge=1)
    recalibrate_min_labels: int = Field(30, ge=2)


class Shift(Strict):
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]]
    start: time
    end: time  # an end at or before the start means the shift runs past midnight


class TeamMember(Strict):
    name: str = Field(min_length=1)
    slack_user: str | None = None
    email: str | None = None
    role: Literal["agent", "lead"] = "agent"
    languages: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list)
    timezone: str | None = None  # falls back to the team timezone
    shifts: list[Shift] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)
    capacity: int = Field(5, ge=1)

    _tz = field_validator("timezone")(lambda v: v if v is None else _check_timezone(v))
    _languages = field_validator("languages")(_language_codes)


class TeamConfig(Strict):
    members: list[TeamMember] = Field(default_factory=list)
    on_call: str | None = None  # a member's name

    @model_validator(mode="after")
    def _on_call_is_member(self) -> "TeamConfig":
        names = [m.name for m in self.members]
        if self.on_call is not None and self.on_call not in names:
            raise ValueError(f"on_call {self.on_call!r} is not one of the team members")
        if len(set(names)) != len(names):
            raise ValueError("team member names must be unique")
        return self


class SlackConfig(Strict):
    enabled: bool = False
    channel: str = "#webcare"
    base_url: str = "https://slack.com/api/"
    bot_token_env: str = "SLACK_BOT_TOKEN"
    app_token_env: str = "SLACK_APP_TOKEN"
    # How button clicks reach the daemon: Socket Mode (no public URL), or an HTTP endpoint that
    # checks Slack's request signature with the signing secret.
    interactivity: Literal["socket_mode", "http", "none"] = "socket_mode"
    signing_secret_env: str = "SLACK_SIGNING_SECRET"
    http_host: str = "127.0.0.1"
    http_port: int = Field(3000, ge=1, le=65535)


class SlaConfig(Strict):
    claim_minutes: dict[Severity, int] = Field(
        default_factory=lambda: {Severity.medium: 30, Severity.high: 15, Severity.critical: 5}
    )
    reply_minutes: dict[Severity, int] = Field(
        default_factory=lambda: {Severity.medium: 60, Severity.high: 30, Severity.critical: 15}
    )


class DigestConfig(Strict):
    cron: str = "0 9 * * mon"
    output_dir: Path = Path("reports")

    _cron = field_validator("cron")(_check_cron)


class RetentionConfig(Strict):
    cron: str = "30 3 * * *"
    keep_days: int = Field(180, ge=1)

    _cron = field_validator("cron")(_check_cron)


class StorageConfig(Strict):
    url: str = "sqlite:///escalation-monitor.db"


class ClassifierConfig(Strict):
    sentiment_model: str = "bundled"
    sentiment_labels: dict[str, str] = Field(default_factory=dict)
    languages: list[str] = Field(default_factory=lambda: ["nl", "en", "de", "fr", "es", "it", "pt"])

    @field_validator("languages")
    @classmethod
    def _identifiable_languages(cls, values: list[str]) -> list[str]:
        from classifiers.language import lingua_languages

        codes = list(dict.fromkeys(_language_codes(values)))
        lingua_languages(codes)  # raises naming what the language identifier cannot use
        return codes

    @field_validator("sentiment_labels")
    @classmethod
    def _sentiment_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        wrong = {raw: label for raw, label in labels.items() if label.lower() not in ("negative", "neutral", "positive")}
        if wrong:
            raise ValueError(f"each model label must map onto negative, neutral or positive, not {wrong}")
        return {raw: label.lower() for raw, label in labels.items()}


class DeliveryConfig(Strict):
    interval_seconds: int = Field(5, ge=1)
    max_attempts: int = Field(20, ge=1)


class Config(Strict):
    timezone: str = "Europe/Amsterdam"
    storage: StorageConfig = Field(default_factory=StorageConfig)
    brands: list[BrandConfig] = Field(min_length=1)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    classifiers: ClassifierConfig = Field(default_factory=ClassifierConfig)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    engagement: EngagementConfig = Field(default_factory=EngagementConfig)
    storms: StormConfig = Field(default_factory=StormConfig)
    team: TeamConfig = Field(default_factory=TeamConfig)
    slack: SlackConfig = Field(default_factory=SlackConfig)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)

    _tz = field_validator("timezone")(_check_timezone)

    @model_validator(mode="after")
    def _unique_brands(self) -> "Config":
        names = [b.name for b in self.brands]
        if len(set(names)) != len(names):
            raise ValueError("brand names must be unique")
        return self

    def brand(self, name: str) -> BrandConfig:
        for brand in self.brands:
            if brand.name == name:
                return brand
        raise KeyError(name)

    def thresholds_for(self, brand: str) -> Thresholds:
        return self.brand(brand).thresholds or self.thresholds

    def own_accounts(self, source: str) -> set[str]:
        """Lower-cased handles of every brand's own accounts on a source."""
        return {h.lower().lstrip("@") for b in self.brands for h in b.own_accounts.get(source, [])}


class ConfigError(Exception):
    """A configuration that cannot be used; `problems` holds one line per bad key."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _key_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif str(item).startswith("function-") or item in ("[key]",):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _describe(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] not in ("value_error", "missing") and "input" in error:
        shown = repr(error["input"])
        msg = f"{msg} (got {shown[:60]})"
    return msg


def parse_config(raw: Any, environ: dict[str, str] | None = None, *, base_dir: Path | None = None) -> Config:
    """Validate a parsed YAML document; raise ConfigError listing every problem."""
    environ = dict(os.environ) if environ is None else environ
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): the file must be a YAML mapping of keys to values"])
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_key_path(e['loc'])}: {_describe(e)}" for e in exc.errors()]
        problems += _missing_secrets_raw(raw, environ)
        raise ConfigError(problems) from None
    problems = [
        f"{key}: environment variable {var} is not set (the enabled source needs it)"
        for key, variables in config.sources.secrets_needed().items()
        for var in variables
        if not environ.get(var)
    ]
    if config.slack.enabled and not environ.get(config.slack.bot_token_env):
        problems.append(f"slack.bot_token_env: environment variable {config.slack.bot_token_env} is not set")
    if problems:
        raise ConfigError(problems)
    if base_dir is not None:
        _resolve_paths(config, base_dir)
    return config


def _missing_secrets_raw(raw: dict[str, Any], environ: dict[str, str]) -> list[str]:
    """Secret checks on a document that failed validation, so one run reports everything."""
    sources = raw.get("sources") if isinstance(raw.get("sources"), dict) else {}
    problems = []
    for name, field in SourcesConfig.model_fields.items():
        source = sources.get(name)
        if not isinstance(source, dict) or source.get("enabled") is not True:
            continue
        for key in field.annotation.SECRET_KEYS:
            var = source.get(key, field.annotation.model_fields[key].default)
            if isinstance(var, str) and not environ.get(var):
                problems.append(f"sources.{name}.{key}: environment variable {var} is not set (the enabled source needs it)")
    slack = raw.get("slack")
    if isinstance(slack, dict) and slack.get("enabled") is True:
        var = slack.get("bot_token_env", SlackConfig().bot_token_env)
        if isinstance(var, str) and not environ.get(var):
            problems.append(f"slack.bot_token_env: environment variable {var} is not set")
    return problems


def _resolve_paths(config: Config, base_dir: Path) -> None:
    """A replay file and the digest's output folder named in a config file are relative to that
    file, not to the working directory."""
    replay = config.sources.replay
    if replay.file is not None and not replay.file.is_absolute():
        replay.file = base_dir / replay.file
    if not config.digest.output_dir.is_absolute():
        config.digest.output_dir = base_dir / config.digest.output_dir


def load_config(path: Path, environ: dict[str, str] | None = None) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the file ({exc.strerror})"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not a text file (it is not UTF-8)"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from None
    return parse_config(raw, environ, base_dir=Path(path).resolve().parent)
