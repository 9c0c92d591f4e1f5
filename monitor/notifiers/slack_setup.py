"""Start-up check of the Slack configuration: token, scopes, channels and members, in one line each.

Runs once before the daemon starts. A bad token, a missing scope or a channel the bot cannot
find is reported as one clear `SlackSetupError` line instead of a stack trace at the first alert.
Members configured by e-mail are resolved to Slack user ids here, once (users.lookupByEmail).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from monitor.config import Config

# *:history: a retried alert first looks for itself in the channel (see SlackNotifier).
NEEDED_SCOPES = ("chat:write", "channels:read", "groups:read", "channels:history", "groups:history", "files:write")
EMAIL_SCOPE = "users:read.email"
_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


class SlackSetupError(Exception):
    """One line saying what is wrong with the Slack configuration."""


@dataclass(frozen=True)
class SlackSession:
    client: WebClient
    config: Config  # with members' Slack ids filled in from their e-mail
    channel_ids: dict[str, str]  # configured channel (name or id) -> channel id
    bot_user: str


def web_client(config: Config, token: str) -> WebClient:
    # No retry handlers: the outbox retries on its own clock, and must see each 429 and 5xx.
    return WebClient(token=token, base_url=config.slack.base_url, timeout=15, retry_handlers=[])


def configured_channels(config: Config) -> list[str]:
    channels = [config.slack.channel]
    for brand in config.brands:
        channels += [c for c in (brand.slack_channel, *brand.slack_channels_by_severity.values()) if c]
    return list(dict.fromkeys(channels))


def connect(config: Config, environ: Mapping[str, str]) -> SlackSession:
    token = environ.get(config.slack.bot_token_env)
    if not token:
        raise SlackSetupError(f"slack: environment variable {config.slack.bot_token_env} (bot token) is not set")
    client = web_client(config, token)
    try:
        auth = client.auth_test()
    except SlackApiError as exc:
        raise SlackSetupError(f"slack: the bot token in {config.slack.bot_token_env} was refused "
                              f"({_error(exc)})") from None
    except OSError as exc:
        raise SlackSetupError(f"slack: cannot reach {config.slack.base_url} ({type(exc).__name__}: {exc})") from None
    granted = {s.strip() for s in (auth.headers.get("x-oauth-scopes") or "").split(",") if s.strip()}
    needed = list(NEEDED_SCOPES) + ([EMAIL_SCOPE] if any(m.email and not m.slack_user
                                                         for m in config.team.members) else [])
    missing = [s for s in needed if s not in granted]
    if granted and missing:  # no header (some proxies strip it): the calls below report scopes instead
        raise SlackSetupError(f"slack: the bot token lacks scope(s) {', '.join(missing)}; add them to the "
                              "Slack app and reinstall it")
    channel_ids = _resolve_channels(client, configured_channels(config))
    return SlackSession(client, _resolve_members(client, config), channel_ids, auth.get("user_id") or "")


def _error(exc: SlackApiError) -> str:
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    error = data.get("error") or f"HTTP {exc.response.status_code}"
    return f"{error}: needs {data['needed']}" if error == "missing_scope" and data.get("needed") else error


def _call(what: str, call):
    try:
        return call()
    except SlackApiError as exc:
        raise SlackSetupError(f"slack: {what} failed ({_error(exc)})") from None


def _resolve_channels(client: WebClient, channels: list[str]) -> dict[str, str]:
    ids: dict[str, str] = {}
    by_name: dict[str, str] | None = None
    for channel in channels:
        if _CHANNEL_ID.match(channel):
            try:
                ids[channel] = client.conversations_info(channel=channel)["channel"]["id"]
            except SlackApiError as exc:
                raise SlackSetupError(f"slack: channel {channel} cannot be used ({_error(exc)})") from None
            continue
        if by_name is None:
            by_name = {}
            for page in _call("conversations.list", lambda: client.conversations_list(
                    types="public_channel,private_channel", exclude_archived=True, limit=1000)):
                by_name.update({c["name"]: c["id"] for c in page["channels"]})
        found = by_name.get(channel.lstrip("#"))
        if found is None:
            raise SlackSetupError(f"slack: channel {channel} not found (channel_not_found); create it or invite "
                                  "the bot, or fix slack.channel / the brand's slack_channel")
        ids[channel] = found
    return ids


def _resolve_members(client: WebClient, config: Config) -> Config:
    members = []
    for member in config.team.members:
        if member.email and not member.slack_user:
            try:
                user = client.users_lookupByEmail(email=member.email)["user"]["id"]
            except SlackApiError as exc:
                raise SlackSetupError(f"slack: team member {member.name}: no Slack user for their e-mail "
                                      f"({_error(exc)})") from None
            member = member.model_copy(update={"slack_user": user})
        members.append(member)
    config = config.model_copy(deep=True)
    config.team.members = members
    return config
