"""Button clicks over Socket Mode: no public URL needed. Every envelope is acknowledged first
(Slack retries an envelope not acknowledged within three seconds), then handled."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from monitor.notifiers.slack_actions import ClickHandler

log = logging.getLogger(__name__)


class SocketModeListener:
    def __init__(self, app_token: str, web_client: WebClient, handler: ClickHandler):
        self.handler = handler
        self.client = SocketModeClient(app_token=app_token, web_client=web_client)
        self.client.socket_mode_request_listeners.append(self._on_request)

    def _on_request(self, client: SocketModeClient, request: SocketModeRequest) -> None:
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type != "interactive":
            return
        try:
            self.handler.handle(request.payload)
        except Exception:  # noqa: BLE001 - one bad click must not stop the listener
            log.exception("interaction failed envelope=%s", request.envelope_id)

    def start(self) -> None:
        # Asked once here first: a refused app token then raises to the caller's one-line error
        # instead of the client logging the failed request with the server's answer.
        self.client.web_client.apps_connections_open(app_token=self.client.app_token)
        self.client.connect()
        log.info("socket mode connected")

    def stop(self) -> None:
        self.client.close()
        log.info("socket mode disconnected")
