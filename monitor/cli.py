"""The `escalation-monitor` command."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from monitor.config import Config, ConfigError, bundled_config_dir, load_config

if TYPE_CHECKING:
    from monitor.pipeline import Pipeline
    from monitor.store.lock import DaemonLock

app = typer.Typer(
    help="Social media escalation monitor: collects brand mentions, predicts which will escalate, "
         "and routes them to the social care team.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure the classifiers on labelled data.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(eval_app, name="eval")

err = Console(stderr=True)
out = Console()

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="YAML configuration file.")]


class _RedactSecrets(logging.Filter):
    """Last line of defence: a token value never reaches the log, whatever a library prints."""

    def __init__(self, secrets: list[str]):
        super().__init__()
        self.secrets = [s for s in secrets if len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for secret in self.secrets:
                message = message.replace(secret, "***")
            record.msg, record.args = message, None
        return True


def _setup_logging(config: Config | None, verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    if config is not None:
        variables = [config.slack.bot_token_env, config.slack.app_token_env, *config.sources.secret_variables()]
        handler.addFilter(_RedactSecrets([os.environ[v] for v in variables if os.environ.get(v)]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # APScheduler warns at every skipped overlapping run: expected with coalescing, not news.
    # httpx (under atproto) logs every request at INFO.
    for noisy in ("apscheduler", "urllib3", "alembic", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]config error[/red] {problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _default_config() -> Config:
    return load_config(bundled_config_dir() / "example.yaml", environ={})


def _notifier(config: Config):
    """(config with Slack ids filled in, notifier): Slack when enabled, checked before anything runs."""
    from monitor.notifiers.console import ConsoleNotifier

    if not config.slack.enabled:
        return config, ConsoleNotifier()
    from monitor.notifiers.slack import SlackNotifier
    from monitor.notifiers.slack_setup import SlackSetupError, connect

    try:
        session = connect(config, os.environ)
    except SlackSetupError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    return session.config, SlackNotifier(session)


def _open_pipeline(config: Config):
    from monitor.clock import SystemClock
    from monitor.collectors.build import build_collectors
    from monitor.pipeline import Pipeline
    from monitor.scenario import ScenarioError
    from monitor.store.db import StoreError
    from monitor.store.repository import Store

    config, notifier = _notifier(config)
    clock = SystemClock()
    try:
        store = Store.open(config.storage.url)
    except StoreError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    except Exception as exc:  # noqa: BLE001 - a database that cannot be reached is one clear line
        err.print(f"[red]storage.url[/red]: cannot open the database: {type(exc).__name__}: {str(exc)[:200]}",
                  highlight=False)
        raise typer.Exit(2) from None
    try:
        collectors = build_collectors(config, store, clock, os.environ)
    except ScenarioError as exc:
        store.close()
        err.print(f"[red]sources.replay.file[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    return Pipeline(config, store, clock, notifier, collectors)


@app.command()
def run(config: ConfigOption, verbose: Annotated[bool, typer.Option(help="Debug logging.")] = False) -> None:
    """Run the daemon: scheduled collection, processing, delivery, digest and retention until SIGTERM."""
    from monitor.daemon import Daemon
    from monitor.digest_report import publish

    with _locked_pipeline(config, verbose) as (pipeline, lock):
        listener = _interactivity(pipeline.config, pipeline.notifier, pipeline.store, pipeline.clock)
        target = _digest_target(pipeline.config) if pipeline.config.slack.enabled else None

        def weekly_digest() -> None:
            digest, path = publish(pipeline.store, pipeline.config, None, pipeline.clock.now(), target)
            logging.getLogger("monitor.digest").info("weekly digest week=%s escalations=%d report=%s sent=%s",
                                                     digest.week, digest.total, path, target is not None)

        daemon = Daemon(pipeline, digest=weekly_digest, lock=lock)
        try:
            daemon.run_until_signal()
        finally:
            if listener is not None:
                listener.stop()
        if daemon.lost_lock is not None:
            err.print(f"[red]{escape(daemon.lost_lock)}[/red]", highlight=False)
            raise typer.Exit(1)


@contextmanager
def _locked_pipeline(config: Path, verbose: bool) -> Iterator[tuple[Pipeline, DaemonLock]]:
    """(the configured pipeline, its daemon lock), held (one daemon per store) until the block ends."""
    from monitor.store.lock import AlreadyRunning, DaemonLock

    cfg = _load(config)
    _setup_logging(cfg, verbose)
    pipeline = _open_pipeline(cfg)
    lock = DaemonLock(pipeline.store.engine)
    try:
        try:
            lock.acquire()
        except AlreadyRunning as exc:
            err.print(f"[red]{exc}[/red]", highlight=False)
            raise typer.Exit(1) from None
        yield pipeline, lock
    finally:
        lock.release()  # nothing to give up when it was refused
        pipeline.store.close()


def _interactivity(config: Config, notifier, store, clock):
    """Start the Slack button listener the config asks for; None without Slack or with `interactivity: none`."""
    from monitor.notifiers.interactivity import start_listener
    from monitor.notifiers.slack import SlackNotifier
    from monitor.notifiers.slack_setup import SlackSetupError

    if not isinstance(notifier, SlackNotifier):
        return None
    try:
        return start_listener(config, notifier.client, store, clock, os.environ)
    except SlackSetupError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@app.command()
def once(config: ConfigOption, verbose: Annotated[bool, typer.Option(help="Debug logging.")] = False) -> None:
    """Run every job once (collect, re-poll, process, deliver), then exit."""
    from monitor.daemon import Daemon

    with _locked_pipeline(config, verbose) as (pipeline, _lock):
        Daemon(pipeline, with_cron_jobs=False).run_once()


@app.command()
def demo(
    scenario: Annotated[Optional[Path], typer.Option(help="Scenario file (JSON lines); default: the bundled one.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Use this config's brands, thresholds, team and Slack.")] = None,
    speed: Annotated[Optional[float], typer.Option(help="At most this many scenario seconds per wall-clock second; default: as fast as it goes.", min=1)] = None,
    store: Annotated[Optional[str], typer.Option(help="Keep the replay's history in this empty database (URL), e.g. for `digest --week` afterwards; default: a temporary one.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the summary, as one JSON object.")] = False,
) -> None:
    """Replay a scenario through the real pipeline and print the alerts, or post them to Slack when
    the config enables it (button clicks are taken as in `run`)."""
    import io
    from functools import partial

    from monitor.demo.run import DemoStoreError, run_demo
    from monitor.scenario import ScenarioError
    from monitor.store.db import StoreError

    cfg = _load(config) if config else _default_config()
    logging.getLogger().handlers[:] = []
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    stream = io.StringIO() if as_json else sys.stdout
    cfg, notifier = _notifier(cfg)
    replay = partial(run_demo, cfg, scenario, speed, stream, notifier if cfg.slack.enabled else None,
                     storage_url=store,
                     interactivity=partial(_interactivity, cfg, notifier))
    try:
        if as_json:
            summary = replay()
        else:
            with err.status("replaying the scenario on a compressed clock…"):
                summary = replay()
    except ScenarioError as exc:
        err.print(f"[red]--scenario[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    except (DemoStoreError, StoreError) as exc:
        err.print(f"[red]--store[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
        return
    table = Table(title="Demo summary", show_header=False)
    for key in ("mentions", "alerts", "updates", "true_positives", "false_positives", "missed", "wall_seconds"):
        table.add_row(key.replace("_", " "), str(getattr(summary, key)))
    table.add_row("alerts by reason", ", ".join(f"{k}: {v}" for k, v in sorted(summary.by_reason.items())))
    table.add_row("storms", "; ".join(summary.storms) or "none")
    if cfg.slack.enabled:
        from monitor.notifiers.slack_setup import configured_channels

        table.add_row("alerts posted to", ", ".join(configured_channels(cfg)))
    out.print(table)
    for label, posts in (("missed", summary.missed_posts), ("false positive", summary.false_positive_posts)):
        for post in posts:
            out.print(f"[yellow]{label}[/yellow] {escape(post)}", highlight=False)


@app.command()
def classify(
    texts: Annotated[list[str], typer.Argument(help="Posts to classify.")],
    lang: Annotated[Optional[str], typer.Option(help="Language of the posts, if known.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", "-c")] = None,
) -> None:
    """Classify posts: language, sentiment, complaint and escalation triggers."""
    from classifiers.post import PostClassifier, PostText

    cfg = _load(config) if config else _default_config()
    classifier = PostClassifier(bundled_config_dir(), cfg.classifiers.languages, cfg.classifiers.sentiment_model,
                                cfg.classifiers.sentiment_labels)
    for c, text in zip(classifier.classify([PostText(i, t, lang) for i, t in enumerate(texts)]), texts):
        print(json.dumps({
            "text": text[:200], "lang": c.lang, "sentiment": c.sentiment, "scores": c.sentiment_scores,
            "complaint": c.complaint,
            "triggers": [{"category": t.category, "span": [t.start, t.end], "text": t.matched_text} for t in c.triggers],
        }, ensure_ascii=False))


@app.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="YAML configuration file.")]) -> None:
    """Validate a configuration: exit 0, or exit 2 with one line per problem naming its key."""
    cfg = _load(path)
    sources = [n for n, source in cfg.sources.all().items() if source.enabled] or ["none"]
    out.print(f"[green]ok[/green] {path}: {len(cfg.brands)} brand(s), sources: {', '.join(sources)}, "
              f"{len(cfg.team.members)} team member(s)", highlight=False)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption) -> None:
    """Create or migrate the database schema to the latest version."""
    from monitor.store import db

    cfg = _load(config)
    try:
        engine = db.make_engine(cfg.storage.url)
        before = db.current_revision(engine)
        db.upgrade(engine)
    except db.StoreError as exc:
        err.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    out.print(f"database at revision {db.current_revision(engine)} (was {before or 'empty'})", highlight=False)


@app.command()
def status(config: ConfigOption) -> None:
    """Where the monitor stands: each source's health, posts and cursor, reads, outbox, open escalations."""
    from sqlalchemy import func, select

    from monitor.clock import SystemClock
    from monitor.pipeline.score import feedback
    from monitor.source_status import source_statuses
    from monitor.store.repository import Store
    from monitor.store.schema import EscalationRow

    cfg = _load(config)
    store = Store.open(cfg.storage.url)
    try:
        now = SystemClock().now()
        with store.session() as s:
            states = dict(s.execute(select(EscalationRow.state, func.count()).group_by(EscalationRow.state)).all())
        table = Table(title="Sources")
        for column in ("source", "brand", "state", "last success", "last error", "posts last hour", "cursor"):
            table.add_column(column)
        for row in source_statuses(store, now):
            error = f"{_when(row.last_error_at)} {row.last_error}" if row.last_error else "-"
            table.add_row(row.source, row.brand, row.state, _when(row.last_success_at), escape(error),
                          str(row.posts_last_hour), escape(str(row.cursor)[:60]))
        out.print(table)
        if cfg.sources.x.enabled:
            reads = store.reads_on("x", now.date().isoformat())
            out.print(f"x reads today (UTC): {reads} of {cfg.sources.x.daily_read_budget}", highlight=False)
        out.print(f"mentions: {store.count_mentions()} · escalations: {states or 'none'} · "
                  f"outbox: {store.outbox_counts() or 'empty'}", highlight=False)
        out.print(feedback(store, cfg.risk)[1].line(), highlight=False)
    finally:
        store.close()


def _when(at) -> str:
    return at.isoformat(timespec="seconds") if at else "-"


@app.command()
def digest(
    config: ConfigOption,
    week: Annotated[Optional[str], typer.Option(help="ISO week, e.g. 2026-W47; default: last week.")] = None,
    send: Annotated[bool, typer.Option("--send", help="Post it with its chart to the Slack channel.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the digest as JSON.")] = False,
) -> None:
    """The weekly escalation digest from the stored history; writes its HTML report to digest.output_dir."""
    from dataclasses import asdict

    from monitor.clock import SystemClock
    from monitor.digest_report import publish
    from monitor.store.repository import Store

    cfg = _load(config)
    if send and not cfg.slack.enabled:
        err.print("[red]--send[/red]: slack.enabled is false in the configuration", highlight=False)
        raise typer.Exit(2)
    target = _digest_target(cfg) if send else None
    store = Store.open(cfg.storage.url)
    try:
        try:
            result, path = publish(store, cfg, week, SystemClock().now(), target)
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]", highlight=False)
            raise typer.Exit(2) from None
    finally:
        store.close()
    if as_json:
        print(json.dumps(asdict(result)))
        return
    table = Table(title=f"Escalation digest {result.week}", show_header=False)
    for key, value in asdict(result).items():
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)
    out.print(f"report: {path}" + (f" · sent to {cfg.slack.channel}" if send else ""), highlight=False)


def _digest_target(cfg: Config):
    from monitor.digest_report import SlackTarget
    from monitor.notifiers.slack import SlackNotifier

    _, notifier = _notifier(cfg)
    assert isinstance(notifier, SlackNotifier)
    return SlackTarget(notifier.client, notifier.channel_ids[cfg.slack.channel])


def _read_tsv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    from monitor.tsv import TsvError, read_tsv

    try:
        rows = read_tsv(path, required)
    except TsvError as exc:
        err.print(f"[red]--file[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    if not rows:
        err.print(f"[red]--file[/red]: {path} has a header but no rows to evaluate", highlight=False)
        raise typer.Exit(2)
    return rows


def _check_column(path: Path, rows: list, column: str, allowed: tuple[str, ...]) -> None:
    """Exit 2 naming the first few values of `column` outside `allowed`, each with the first line it is on."""
    first_line: dict[str, int] = {}
    for row in rows:
        if row[column] not in allowed:
            first_line.setdefault(row[column], row.line)
    if first_line:
        found = ", ".join(f"{value!r} (line {line})" for value, line in list(first_line.items())[:5])
        more = f" and {len(first_line) - 5} more" if len(first_line) > 5 else ""
        err.print(f"[red]--file[/red]: {escape(str(path))}: column {column} must be one of {', '.join(allowed)}; "
                  f"found {escape(found)}{more}", highlight=False)
        raise typer.Exit(2)


ModelOption = Annotated[Optional[str], typer.Option(
    "--model", help="lexicon, bundled, or a Hugging Face model name or directory; default: the configured one.")]


EvalConfigOption = Annotated[Optional[Path], typer.Option(
    "--config", "-c", help="Evaluate this config's classifiers (sentiment_model, sentiment_labels, languages); "
                           "default: config/example.yaml (the bundled model).")]


Float32Option = Annotated[bool, typer.Option(
    "--float32", help="Bundled model only: its float32 network instead of the int8 one (slower; to measure what int8 costs).")]


def _scores_timed(rows: list[dict[str, str]], model: str | None, float32: bool = False, config: Path | None = None):
    """(classifier, sentiment probabilities, complaint probabilities, seconds): the model alone is timed."""
    from classifiers.post import PostClassifier, clean_text

    cfg = _load(config) if config else _default_config()
    model = model or cfg.classifiers.sentiment_model
    if float32 and model != "bundled":
        err.print(f"[red]--float32[/red]: only the bundled model has an int8 and a float32 form, not {escape(model)!r}",
                  highlight=False)
        raise typer.Exit(2)
    try:
        classifier = PostClassifier(bundled_config_dir(), cfg.classifiers.languages, model,
                                    cfg.classifiers.sentiment_labels, quantize=not float32)
        texts = [clean_text(r["text"]) for r in rows]
        classifier.scores(texts[:8])  # load the model before the clock starts
    except (RuntimeError, ValueError) as exc:
        err.print(f"[red]--model[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    sentiment, complaint = [], []
    started = time.perf_counter()
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("classifying", total=len(texts))
        for i in range(0, len(texts), 1024):
            s, c = classifier.scores(texts[i:i + 1024])
            sentiment.append(s)
            complaint.append(c)
            progress.advance(task, len(s))
    import numpy as np

    return classifier, np.concatenate(sentiment), np.concatenate(complaint), time.perf_counter() - started


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="The public data folder (holding sentiment/ and complaints/).")] = Path(
        "../shared/data"),
    out: Annotated[Path, typer.Option(help="Where to write the adapter (with --heads-only: the adapter to read).")] = Path(
        "classifiers/models/minilm_adapter.safetensors"),
    heads_dir: Annotated[Path, typer.Option(help="Where to write the complaint and language heads.")] = Path(
        "classifiers/models"),
    heads_only: Annotated[bool, typer.Option("--heads-only", help="Keep the adapter; refit only the heads (minutes).")] = False,
    device: Annotated[str, typer.Option(help="cpu, or cuda where a GPU is lent.")] = "cpu",
    folds: Annotated[int, typer.Option(min=0, help="Also cross-validate the Dutch and complaint heads over this many folds (near-copies kept in one).")] = 0,
    fold_splits: Annotated[int, typer.Option(min=1, help="With --folds: cross-validate over this many different fold "
                                             "splits (seeds 0 to N-1) and report each split's macro-F1 and their mean.")] = 1,
    runs: Annotated[int | None, typer.Option(min=1, show_default=False, help="Train this many adapters (seeds 0 "
                                             "to N-1), each for 1/N of the recipe's passes, and keep their weight "
                                             "average (default: the shipped recipe's 2).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Train the bundled model (adapter, complaint head, language heads) from the public data, and
    report what it scores on held-out files."""
    from classifiers.bundled import COMPLAINT_HEAD, CROSSLINGUAL_PRIOR, language_head_path
    from classifiers.lexicon import Lexicon
    from classifiers.minilm import MiniLMClassifier, ModelError
    from classifiers.training import (Corpus, DataError, complaint_inputs, cross_validate_complaint_head,
                                      cross_validate_dutch_head, evaluate, evaluate_heads, language_head_data,
                                      over_fold_splits, recipe, train_complaint_head, train_language_head,
                                      train_prior)
    from classifiers.training import train as train_model

    if fold_splits > 1 and folds < 2:
        err.print(f"[red]--fold-splits[/red]: {fold_splits} fold splits need --folds 2 or more", highlight=False)
        raise typer.Exit(2)
    if runs is not None and heads_only:
        err.print("[red]--runs[/red]: --heads-only keeps the adapter, so it trains no runs", highlight=False)
        raise typer.Exit(2)
    lexicon = Lexicon(bundled_config_dir() / "lexicons")  # the lexicon the heads are used with
    try:
        corpus = Corpus.load(data)
        prior = train_prior(corpus, lexicon)
        heads = {lang: train_language_head(lang, pairs, lexicon, prior)
                 for lang, pairs in language_head_data(corpus).items()}
    except DataError as exc:
        err.print(f"[red]--data[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    report: dict = {"crosslingual_prior": str(prior.save(heads_dir / CROSSLINGUAL_PRIOR.name)),
                    "language_heads": {lang: str(head.save(language_head_path(lang, heads_dir)))
                                       for lang, head in heads.items()}}
    if folds > 1:
        report["dutch_head_cross_validated"] = over_fold_splits(
            lambda seed: cross_validate_dutch_head(corpus, lexicon, folds, seed, prior=prior), fold_splits)
    if heads_only:
        report["umsab_val_heads"] = evaluate_heads(corpus, heads)
        model = MiniLMClassifier(out)
    else:
        chosen = recipe(runs)
        report["recipe"] = chosen
        started = time.perf_counter()
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("training", total=None)
            model = train_model(corpus, device=device,
                                progress=lambda done, total: progress.update(task, completed=done, total=total),
                                **chosen)
        report["train_seconds"] = round(time.perf_counter() - started)
        report["adapter"] = str(model.save(out))
        report["adapter_bytes"] = out.stat().st_size
        model = MiniLMClassifier(out)  # as shipped (fp16 factors): the heads are fitted on what users run
    try:
        inputs, labels = complaint_inputs(model, corpus)
    except ModelError as exc:
        err.print(f"[red]--out[/red]: {exc}", highlight=False)
        raise typer.Exit(2) from None
    head = train_complaint_head(inputs, labels, lexicon, adapter=model.version)
    if folds > 1:
        report["complaint_head_cross_validated"] = over_fold_splits(
            lambda seed: cross_validate_complaint_head(inputs, labels, lexicon, folds, seed), fold_splits)
    report["complaint_head"] = str(head.save(heads_dir / COMPLAINT_HEAD.name))
    if not heads_only:
        report.update(evaluate(model, corpus, heads))
    print(json.dumps(report) if as_json else json.dumps(report, indent=2))


@eval_app.command("sentiment")
def eval_sentiment(
    file: Annotated[Path, typer.Option(help="TSV with a header and columns label (negative/neutral/positive), text.")],
    model: ModelOption = None,
    float32: Float32Option = False,
    config: EvalConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Macro recall, macro F1 and accuracy of the sentiment model on a labelled file."""
    from classifiers.metrics import SENTIMENT_LABELS, sentiment_report

    rows = _read_tsv(file, ("label", "text"))
    _check_column(file, rows, "label", SENTIMENT_LABELS)
    classifier, sentiment, _, seconds = _scores_timed(rows, model, float32, config)
    predicted = [classifier.sentiment.classes_[i] for i in sentiment.argmax(axis=1)]
    report = {**sentiment_report([r["label"] for r in rows], predicted),
              "posts_per_s": round(len(rows) / max(seconds, 1e-9), 1), "model": classifier.model_name}
    print(json.dumps(report) if as_json else "\n".join(f"{k}: {v}" for k, v in report.items()))


@eval_app.command("complaints")
def eval_complaints(
    file: Annotated[Path, typer.Option(help="TSV with a header and columns text, is_complaint (0/1).")],
    model: ModelOption = None,
    float32: Float32Option = False,
    config: EvalConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Macro F1, precision and recall of complaint detection on a labelled file."""
    from classifiers.metrics import complaint_report

    rows = _read_tsv(file, ("text", "is_complaint"))
    _check_column(file, rows, "is_complaint", ("0", "1"))
    classifier, _, complaint, seconds = _scores_timed(rows, model, float32, config)
    truth = [int(r["is_complaint"]) for r in rows]
    predicted = [int(p >= 0.5) for p in complaint]
    report = {**complaint_report(truth, predicted, positive=1),
              "posts_per_s": round(len(rows) / max(seconds, 1e-9), 1), "model": classifier.model_name}
    print(json.dumps(report) if as_json else "\n".join(f"{k}: {v}" for k, v in report.items()))


@eval_app.command("cascades")
def eval_cascades(
    file: Annotated[Path, typer.Option(help="Cascades to score (JSON lines: the events or the delays_min format).")],
    at: Annotated[str, typer.Option(help="Observation ages, comma-separated: 90s, 10m, 1h, 2d.")] = "10m,30m,1h",
    fit: Annotated[Optional[list[Path]], typer.Option(
        help="Fit the calibrated parameters on these cascades (repeatable); default: the shipped ones.")] = None,
    cv: Annotated[Optional[int], typer.Option(
        help="Cross-validate instead: fit on K-1 folds of --file, score the held-out fold.")] = None,
    seed: Annotated[int, typer.Option(help="Shuffle of the cross-validation folds.")] = 0,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Final-size forecasts of naive, Szabo-Huberman, SEISMIC (where followers are known) and the
    project's forecaster: n, median_ape (median |forecast - final| / final), male (mean |ln forecast
    - ln final|, sizes floored at 1), and precision and recall of "final >= 2 x seen now"."""
    from classifiers.virality.cascades import CascadeFileError, load_cascades
    from classifiers.virality.evaluate import evaluate, parse_ages

    try:
        ages = parse_ages(at)
    except ValueError as exc:
        err.print(f"[red]--at[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    try:
        cascades = load_cascades(file)
        training = [c for path in fit for c in load_cascades(path)] if fit else None
        results = evaluate(cascades, ages, fit=training, folds=cv, seed=seed)
    except CascadeFileError as exc:
        err.print(f"[red]cascade file[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except ValueError as exc:
        err.print(f"[red]--cv[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps({"results": results}))
        return
    table = Table(title=f"Cascade forecasts: {file.name}")
    for column in results[0]:
        table.add_column(column)
    for row in results:
        table.add_row(*("-" if v is None else str(v) for v in row.values()))
    out.print(table)


@eval_app.command("storms")
def eval_storms(
    scenario: Annotated[Path, typer.Option(help="Scenario file (README: Scenario format); true storms are the posts labelled `storm`.")],
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="Use this config's first brand and storm settings.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Replay a scenario in virtual time: for each true storm whether it was detected and the delay
    from its first and its 10th post; false storms (mostly unlabelled posts) per day of traffic."""
    from monitor.scenario import Scenario, ScenarioError
    from monitor.storm_eval import evaluate_storms

    cfg = _load(config) if config else _default_config()
    try:
        loaded = Scenario.load(scenario)
    except ScenarioError as exc:
        err.print(f"[red]--scenario[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    report = evaluate_storms(cfg, loaded).as_dict()
    if as_json:
        print(json.dumps(report))
        return
    for storm in report["storms"]:
        out.print(f"storm {escape(storm['name'])}: detected {storm['detected']}, delay from first post "
                  f"{storm['delay_first_s']} s, from 10th post {storm['delay_10th_s']} s", highlight=False)
    out.print(f"false storms: {report['false_storms']} in {report['days']} days "
              f"({report['false_storms_per_day']} per day)", highlight=False)


@eval_app.command("storm-scenario")
def eval_storm_scenario(
    out_file: Annotated[Path, typer.Option("--out", help="Scenario file to write (JSON lines).")],
    support: Annotated[Path, typer.Option(help="Customer-support tweets (TSV): the inbound ones are the background.")] = Path("../shared/data/support/twcs_first5000.tsv"),
    complaints: Annotated[Path, typer.Option(help="Labelled complaints (TSV): is_complaint=1 rows naming --term make the storm.")] = Path("../shared/data/complaints/complaints_dev.tsv"),
    days: Annotated[float, typer.Option(help="Spread the background over this many days.", min=0.1)] = 2.0,
    term: Annotated[str, typer.Option(help="The storm: complaints using this word.")] = "working",
    posts: Annotated[int, typer.Option(help="Posts in the storm.")] = 30,
    minutes: Annotated[float, typer.Option(help="The storm's posts arrive over this many minutes.", min=1)] = 30.0,
    at_hours: Annotated[float, typer.Option(help="The storm starts this many hours into the background.")] = 30.0,
    seed: Annotated[int, typer.Option(help="Random gaps and choice of complaints.")] = 0,
) -> None:
    """Build a storm-detection scenario: real support traffic with an injected storm of real complaints."""
    from monitor.storm_scenario import StormScenarioError, StormScenarioSpec, build_storm_scenario, jsonl

    spec = StormScenarioSpec(days=days, storm_term=term, storm_posts=posts, storm_minutes=minutes,
                             storm_at_hours=at_hours, seed=seed)
    try:
        events = build_storm_scenario(support, complaints, spec)
    except StormScenarioError as exc:
        err.print(f"[red]storm scenario[/red]: {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    try:
        with out_file.open("w", encoding="utf-8") as fh:
            fh.writelines(jsonl(events))
    except OSError as exc:
        err.print(f"[red]--out[/red]: cannot write {out_file}: {exc.strerror}", highlight=False)
        raise typer.Exit(2) from None
    storm = sum(1 for e in events if "storm" in e)
    out.print(f"wrote {out_file}: {len(events) - storm} background posts, {storm} storm posts", highlight=False)


if __name__ == "__main__":  # `python -m monitor.cli`, as well as the `escalation-monitor` entry point
    app(prog_name="escalation-monitor")
