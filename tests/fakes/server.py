"""A local HTTP server in a thread that answers like one API, with faults switched on per test.

Each fake API subclasses `FakeApi` and answers `respond(request)`; the faults (429, 5xx, a body
that is not JSON, a truncated body, a hang past the client's timeout, a connection reset) are
applied here, the same way for every API.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FAULTS = ("429", "500", "503", "not_json", "truncated", "hang", "reset")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: object, status: int = 200, headers: dict[str, str] | None = None) -> "Reply":
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


@dataclass
class Fault:
    kind: str
    path: str | None  # only requests whose path starts with this; None: any
    after: int  # matching requests still to answer normally before this one fails


class FakeApi(ABC):
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()  # frees handlers told to hang
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                api._serve(self)

            do_POST = do_GET

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, and every test closes a fake.
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail(self, kind: str, times: int = 1, path: str | None = None, after: int = 0) -> None:
        """The next `times` requests (to paths starting with `path`, if given) fail this way,
        after `after` of them have been answered normally."""
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULTS}")
        with self._lock:
            self._faults.extend(Fault(kind, path, after) for _ in range(times))

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    # --- what subclasses answer ---------------------------------------------------------------

    @abstractmethod
    def respond(self, request: Request) -> Reply:
        """The API's answer when nothing fails."""

    def rate_limited(self, request: Request) -> Reply:
        """The API's own 429."""
        return Reply.json({"error": "Too Many Requests"}, 429)

    # --- plumbing -------------------------------------------------------------------------------

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            matching = [f for f in self._faults if f.path is None or path.startswith(f.path)]
            if not matching:
                return None
            if matching[0].after > 0:
                for fault in matching:
                    fault.after -= 1
                return None
            self._faults.remove(matching[0])
            return matching[0]

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        request = Request(handler.command, split.path, parse_qs(split.query, keep_blank_values=True),
                          {k.lower(): v for k, v in handler.headers.items()}, handler.rfile.read(length))
        with self._lock:
            self.requests.append(request)
        fault = self._take_fault(split.path)
        if fault is None:
            reply = self.respond(request)
        elif fault.kind == "hang":
            self._release.wait()
            handler.close_connection = True
            return
        elif fault.kind == "reset":
            # SO_LINGER 0: close() sends RST, which the client sees as "connection reset by peer".
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
            handler.close_connection = True
            return
        elif fault.kind == "429":
            reply = self.rate_limited(request)
        elif fault.kind in ("500", "503"):
            reply = Reply.json({"error": "server error"}, int(fault.kind))
        elif fault.kind == "not_json":
            reply = Reply(200, b"<html><body>Bad gateway</body></html>", {"Content-Type": "text/html"})
        else:  # truncated: the real answer, cut off half way
            reply = self.respond(request)
            reply = Reply(reply.status, reply.body[: len(reply.body) // 2], reply.headers)
        self._send(handler, reply)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if handler.close_connection:
            handler.send_header("Connection", "close")  # the client asked; say so, as real servers do
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.end_headers()
        handler.wfile.write(reply.body)
