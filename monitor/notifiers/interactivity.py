"""Starts the Slack button listener the configuration asks for: Socket Mode or the HTTP endpoint.

Shared by the daemon and the demo, so a demo configured with Slack takes clicks the way
production does. A missing token or signing secret is one `SlackSetupError` line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from monitor.clock import Clock
from monitor.config import Config
from monitor.notifiers.slack_actions import ClickHandler
from monitor.notifiers.slack_setup import SlackSetupError
from monitor.store.repository import Store


class Listener(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def start_listener(config: Config, client: WebClient, store: Store, clock: Clock,
                   environ: Mapping[str, str]) -> Listener | None:
    """The started listener, or None when `slack.interactivity` is `none`."""
    slack = config.slack
    if slack.interactivity == "none":
        return None
    handler = ClickHandler(store, config.team, clock)
    listener: Listener
    if slack.interactivity == "http":
        from monitor.notifiers.slack_http import InteractionServer

        secret = environ.get(slack.signing_secret_env)
        if not secret:
            raise SlackSetupError(f"slack: environment variable {slack.signing_secret_env} (signing secret) is not set")
        listener = InteractionServer(secret, handler, slack.http_host, slack.http_port)
    else:
        from monitor.notifiers.slack_socket import SocketModeListener

        app_token = environ.get(slack.app_token_env)
        if not app_token:
            raise SlackSetupError(f"slack: environment variable {slack.app_token_env} (app-level token for "
                                  "Socket Mode) is not set")
        listener = SocketModeListener(app_token, client, handler)
    try:
        listener.start()
    except SlackApiError as exc:  # apps.connections.open refused the app-level token
        raise SlackSetupError(f"slack: Socket Mode cannot connect with the token in {slack.app_token_env} "
                              f"({exc.response.get('error') or exc.response.status_code})") from None
    return listener
