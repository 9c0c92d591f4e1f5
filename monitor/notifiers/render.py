"""Turning an alert into text an agent reads, with the post's text made harmless.

A post is untrusted: in Slack mrkdwn `<!channel>`, `<!here>`, `<@U…>`, `<#C…>` and `<url|label>`
are live syntax. Escaping `&`, `<` and `>` (Slack's own rule) turns all of them into plain text.
"""

from __future__ import annotations

import re
from dataclasses import asdict

from monitor.models import AlertMessage, Author, Metrics, Owner, Severity

MAX_POST_CHARS = 500
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
# Control characters, and the direction overrides, embeddings and isolates: a post ending in an
# unclosed right-to-left override would show the rest of the alert's line reversed.
_HIDDEN_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SEVERITY_ICON = {Severity.medium: ":large_yellow_circle:", Severity.high: ":large_orange_circle:",
                  Severity.critical: ":red_circle:"}


# Slack refuses a link target much longer than this; a cut one would lead nowhere.
MAX_LINK_CHARS = 500


def escape_mrkdwn(text: str, limit: int = MAX_POST_CHARS) -> str:
    """`text` as inert mrkdwn of at most `limit` characters: capped after escaping (a post of
    "&" grows five times when escaped, and a Slack section over 3,000 characters is refused for
    good), never inside an entity."""
    text = " ".join(_HIDDEN_CONTROLS.sub("", text).split())  # newlines in a post must not break the message layout
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Plain "@channel" only pings with link_names, which we never set; a zero-width joiner makes sure.
    text = _BROADCAST.sub(lambda m: "@\u2060" + m.group(1), text)
    if len(text) > limit:
        text = text[: limit - 1]
        entity = text.rfind("&", max(0, len(text) - 4))  # "&amp;" is the longest: 5 characters
        if entity >= 0 and ";" not in text[entity:]:
            text = text[:entity]
        text = text.rstrip() + "…"
    return text


def safe_link_target(url: str) -> str:
    """A URL from a source, made unable to close or split Slack's `<url|label>` link syntax."""
    return (url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
            .replace(" ", "%20"))


def alert_to_payload(alert: AlertMessage) -> dict:
    data = asdict(alert)
    data["severity"] = alert.severity.value
    return data


def payload_to_alert(payload: dict) -> AlertMessage:
    data = dict(payload)
    data.pop("status", None)  # what agents did with it, shown by the Slack message (blocks.py)
    data["severity"] = Severity(data["severity"])
    data["author"] = Author(**data["author"]) if data.get("author") else None
    data["owner"] = Owner(**data["owner"])
    data["engagement"] = Metrics(**data["engagement"]) if data.get("engagement") else None
    data["reasons"] = tuple(data.get("reasons") or ())
    return AlertMessage(**data)


def owner_mention(owner: Owner) -> str:
    if owner.slack_user:
        return f"<@{owner.slack_user}>"
    return owner.member or "nobody"


def render_mrkdwn(alert: AlertMessage) -> str:
    """The alert as one Slack mrkdwn message (the console prints exactly this)."""
    icon = _SEVERITY_ICON[alert.severity]
    lines = [f"{icon} *{alert.severity.value.upper()}* · {escape_mrkdwn(alert.brand, 80)} · {alert.title}"]
    if alert.change:
        lines.append(f"_Update: {escape_mrkdwn(alert.change, 200)}_")
    if alert.author is not None:
        verified = " ✔" if alert.author.verified else ""
        lines.append(f"{alert.source} · @{escape_mrkdwn(alert.author.handle, 60)}{verified} · "
                     f"{alert.author.followers:,} followers")
    lines.append("> " + escape_mrkdwn(alert.text))
    target = safe_link_target(alert.url) if alert.url else ""
    if target.lower().startswith(("https://", "http://")) and len(target) <= MAX_LINK_CHARS:
        lines.append(f"<{target}|Open the post>")
    if alert.reasons:
        lines.append("*Why:* " + escape_mrkdwn(" · ".join(alert.reasons), 400))
    if alert.engagement is not None:
        e = alert.engagement
        forecast = f" · forecast {alert.forecast_shares:,.0f} shares" if alert.forecast_shares else ""
        lines.append(f"*Engagement:* {e.reposts:,} reposts · {e.quotes:,} quotes · {e.replies:,} replies · "
                     f"{e.likes:,} likes{forecast}")
    if alert.members > 1:
        lines.append(f"*Posts:* {alert.members}")
    lines.append(f"*Suggested owner:* {owner_mention(alert.owner)} ({escape_mrkdwn(alert.owner.reason, 200)})")
    return "\n".join(lines)
