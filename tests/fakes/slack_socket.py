"""A fake Socket Mode WebSocket server on 127.0.0.1: sends envelopes, records acknowledgements.

`FakeSlack.socket_url` points `apps.connections.open` here, so slack-sdk's own SocketModeClient
finds it the way it finds Slack.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve


class FakeSocketMode:
    def __init__(self) -> None:
        self.acks: list[dict] = []
        self.connections = 0
        self.disconnections = 0
        self._outgoing: queue.Queue[str] = queue.Queue()
        self._acked = threading.Condition()
        self._server = serve(self._session, "127.0.0.1", 0)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}/link"

    def send_interaction(self, payload: dict) -> str:
        envelope_id = str(uuid.uuid4())
        self._outgoing.put(json.dumps({"envelope_id": envelope_id, "type": "interactive", "payload": payload,
                                       "accepts_response_payload": False}))
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 20) -> dict:
        with self._acked:
            if not self._acked.wait_for(lambda: any(a.get("envelope_id") == envelope_id for a in self.acks),
                                        timeout):
                raise AssertionError(f"envelope {envelope_id} was never acknowledged")
            return next(a for a in self.acks if a.get("envelope_id") == envelope_id)

    def wait_for_disconnect(self, timeout: float = 20) -> None:
        with self._acked:
            if not self._acked.wait_for(lambda: self.disconnections == self.connections > 0, timeout):
                raise AssertionError("the client never disconnected")

    def close(self) -> None:
        self._server.shutdown()

    def _session(self, connection: ServerConnection) -> None:
        self.connections += 1
        connection.send(json.dumps({"type": "hello", "num_connections": 1,
                                    "debug_info": {"host": "fake", "approximate_connection_time": 3600}}))
        try:
            while True:
                try:
                    message = connection.recv(timeout=0.02)
                except TimeoutError:
                    message = None
                if message is not None:
                    with self._acked:
                        self.acks.append(json.loads(message))
                        self._acked.notify_all()
                try:
                    connection.send(self._outgoing.get_nowait())
                except queue.Empty:
                    pass
        except ConnectionClosed:
            with self._acked:
                self.disconnections += 1
                self._acked.notify_all()
