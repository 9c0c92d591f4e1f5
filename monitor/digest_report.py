"""The weekly digest as a chart (PNG), a self-contained HTML report, and a Slack post."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on a server; must be chosen before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
from slack_sdk import WebClient  # noqa: E402

from monitor.config import Config  # noqa: E402
from monitor.digest import Digest, build_digest  # noqa: E402
from monitor.store.repository import Store  # noqa: E402

_SEVERITIES = ("medium", "high", "critical")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} min"


def render_chart(digest: Digest, config: Config) -> bytes:
    """Four panels: escalations by severity, time to claim and to reply against the SLA, hours per
    stage (the bottleneck in red), load per agent."""
    fig, (sev, times, stages, load) = plt.subplots(1, 4, figsize=(16, 3.8), dpi=100)
    sev.bar(_SEVERITIES, [digest.by_severity.get(s, 0) for s in _SEVERITIES], color=["#e0b000", "#e07000", "#c00000"])
    sev.set_title("Escalations by severity")
    labels = ["claim median", "claim p90", "reply median", "reply p90"]
    values = [v or 0 for v in (*digest.claim_minutes, *digest.reply_minutes)]
    times.bar(labels, values, color="#4a7bb7")
    sla_claim = config.sla.claim_minutes
    times.axhline(min(sla_claim.values()), color="#c00000", linestyle="--", linewidth=1,
                  label="tightest claim SLA")
    times.set_title("Minutes to claim and to first reply")
    times.tick_params(axis="x", labelrotation=20)
    times.legend(fontsize=8)
    names = list(digest.stage_hours)
    stages.barh([n.replace(" but ", "\nbut ").replace(" on ", "\non ") for n in names],
                [digest.stage_hours[n] for n in names],
                color=["#c00000" if n == digest.bottleneck else "#999999" for n in names])
    stages.invert_yaxis()
    stages.set_title("Hours waiting, by stage")
    owners = sorted(digest.per_owner.items(), key=lambda kv: -kv[1])
    load.barh([o for o, _ in owners] or ["none"], [n for _, n in owners] or [0], color="#5a9e6f")
    load.set_title("Escalations per owner")
    fig.suptitle(f"Escalation digest {digest.week}")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def render_html(digest: Digest, chart_png: bytes) -> str:
    """One file, chart inlined: it can be mailed or archived as is. Every value is escaped."""
    rows = "\n".join(f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{html.escape(_value(v))}</td></tr>"
                     for k, v in asdict(digest).items())
    image = base64.b64encode(chart_png).decode("ascii")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Escalation digest {html.escape(digest.week)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:2em}"
            "td,th{border-bottom:1px solid #ddd;padding:.3em}</style></head><body>"
            f"<h1>Escalation digest {html.escape(digest.week)}</h1>"
            f"<p>{html.escape(summary_text(digest))}</p>"
            f"<img alt=\"digest chart\" src=\"data:image/png;base64,{image}\">"
            f"<table>\n{rows}\n</table></body></html>\n")


def _value(value: object) -> str:
    if isinstance(value, list):  # the storms
        return ", ".join(f"{s['name']} ({s['posts']} posts over {s['minutes']:.0f} min)" for s in value) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in sorted(value.items())) or "none"
    if isinstance(value, tuple):
        return f"median {_fmt(value[0])}, p90 {_fmt(value[1])}"
    if isinstance(value, float):
        return f"{value:.0%}"
    return "–" if value is None else str(value)


def summary_text(digest: Digest) -> str:
    fp = "–" if digest.false_positive_rate is None else f"{digest.false_positive_rate:.0%}"
    waited = f"{digest.bottleneck} ({digest.stage_hours[digest.bottleneck]:.1f} h)" if digest.bottleneck else "–"
    return (f"{digest.total} escalations · claim median {_fmt(digest.claim_minutes[0])} "
            f"(p90 {_fmt(digest.claim_minutes[1])}) · first reply median {_fmt(digest.reply_minutes[0])} "
            f"(p90 {_fmt(digest.reply_minutes[1])}) · SLA breaches: {digest.claim_breaches} claim, "
            f"{digest.reply_breaches} reply · {len(digest.storms)} storm(s) · false positives {fp} · "
            f"waited longest: {waited}")


def write_report(digest: Digest, chart_png: bytes, output_dir: Path) -> Path:
    """The HTML report, and the chart beside it as a PNG for whoever wants it on its own; returns
    the report's path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / f"digest-{digest.week}.png").write_bytes(chart_png)
    path = output_dir / f"digest-{digest.week}.html"
    path.write_text(render_html(digest, chart_png), encoding="utf-8")
    return path


def send_digest(client: WebClient, channel_id: str, digest: Digest, chart_png: bytes) -> None:
    """The summary and the chart in one Slack post (files_upload_v2)."""
    client.files_upload_v2(channel=channel_id, file=chart_png, filename=f"digest-{digest.week}.png",
                           title=f"Escalation digest {digest.week}",
                           initial_comment=f"*Escalation digest {digest.week}*\n{summary_text(digest)}")


@dataclass(frozen=True)
class SlackTarget:
    client: WebClient
    channel_id: str


def publish(store: Store, config: Config, week: str | None, now: datetime,
            slack: SlackTarget | None = None) -> tuple[Digest, Path]:
    """Build the week's digest, write its HTML report, and post it to Slack when given a target
    (the `digest` command and the daemon's weekly job)."""
    digest = build_digest(store, config, week, now)
    chart = render_chart(digest, config)
    path = write_report(digest, chart, config.digest.output_dir)
    if slack is not None:
        send_digest(slack.client, slack.channel_id, digest, chart)
    return digest, path
