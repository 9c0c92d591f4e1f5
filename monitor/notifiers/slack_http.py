"""Button clicks over an HTTP endpoint, for teams that prefer a Request URL to Socket Mode.

Each request's signature is checked with slack-sdk's SignatureVerifier against the signing
secret; a bad or stale (over five minutes old) signature is refused with 401 and logged.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from slack_sdk.signature import Clock as SlackClock
from slack_sdk.signature import SignatureVerifier

from monitor.clock import Clock
from monitor.notifiers.slack_actions import ClickHandler

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20


class _EpochClock(SlackClock):
    """Our injectable clock as the verifier's epoch-seconds clock, so staleness follows it."""

    def __init__(self, clock: Clock):
        self.clock = clock

    def now(self) -> float:
        return self.clock.now().timestamp()


class InteractionServer:
    def __init__(self, signing_secret: str, handler: ClickHandler, host: str = "127.0.0.1", port: int = 3000):
        verifier = SignatureVerifier(signing_secret, clock=_EpochClock(handler.clock))
        clicks = handler

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if length < 0:  # unsigned yet: anyone can send it, and read(-1) would wait for the close
                    self._reply(400)
                    return
                if length > MAX_BODY_BYTES:
                    self._reply(413)
                    return
                body = self.rfile.read(length)
                if not verifier.is_valid_request(body, {k.lower(): v for k, v in self.headers.items()}):
                    log.warning("slack request refused: bad or stale signature from %s path=%s",
                                self.client_address[0], self.path)
                    self._reply(401)
                    return
                try:
                    payload = json.loads(parse_qs(body.decode())["payload"][0])
                except (KeyError, ValueError, UnicodeDecodeError):
                    self._reply(400)
                    return
                try:
                    clicks.handle(payload)  # a few store writes: well inside Slack's three seconds
                except Exception:  # noqa: BLE001 - one bad click must not stop the server
                    log.exception("interaction failed")
                self._reply(200)

            def _reply(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass  # requests are logged above, where it matters

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/slack/actions"

    def start(self) -> None:
        self._thread.start()
        log.info("slack interaction endpoint listening on %s", self.url)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
