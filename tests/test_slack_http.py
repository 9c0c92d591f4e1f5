"""Button clicks over the HTTP endpoint: Slack's signature checked with SignatureVerifier."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import urllib.error
import urllib.request
from datetime import timedelta
from urllib.parse import urlencode

import pytest

from monitor.clock import ManualClock
from monitor.config import TeamConfig
from monitor.models import EscalationState
from monitor.notifiers.slack_actions import ClickHandler
from monitor.notifiers.slack_http import InteractionServer
from tests.support import T0
from tests.test_slack import alert_payload, open_escalation
from tests.test_slack_interactions import TEAM, click

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def endpoint(sqlite_store):
    clock = ManualClock(T0)
    server = InteractionServer(SECRET, ClickHandler(sqlite_store, TeamConfig(**TEAM), clock), port=0)
    server.start()
    try:
        yield server, clock
    finally:
        server.stop()


def post(url: str, payload: dict, *, timestamp: int, secret: str = SECRET) -> int:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_signed_click_claims(endpoint, sqlite_store):
    server, clock = endpoint
    esc = open_escalation(sqlite_store, alert_payload())
    clock.advance(minutes=3)
    assert post(server.url, click("escalation_claim", esc, "U01SANNE"), timestamp=int(clock.now().timestamp())) == 200
    record = sqlite_store.escalation(esc)
    assert (record.state, record.owner, record.claimed_at) == (EscalationState.claimed, "Sanne", clock.now())


@pytest.mark.parametrize("case", ["wrong secret", "stale"])
def test_bad_or_stale_signature_is_refused_and_logged(endpoint, sqlite_store, caplog, case):
    server, clock = endpoint
    esc = open_escalation(sqlite_store, alert_payload())
    signed_at = clock.now() - (timedelta(minutes=6) if case == "stale" else timedelta(0))
    status = post(server.url, click("escalation_claim", esc, "U01SANNE"), timestamp=int(signed_at.timestamp()),
                  secret="not-the-secret" if case == "wrong secret" else SECRET)
    assert status == 401
    assert sqlite_store.escalation(esc).state is EscalationState.open
    assert any("bad or stale signature" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_a_bad_content_length_is_answered_400(endpoint, length):
    """Before any signature is checked: a garbled length is refused at once, not a traceback, and
    a negative one does not leave the server waiting for the client to close."""
    server, _ = endpoint
    with socket.create_connection(server.server.server_address[:2], timeout=10) as conn:
        conn.sendall(f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
        assert conn.recv(64).split(b"\r\n", 1)[0] == b"HTTP/1.0 400 Bad Request"
