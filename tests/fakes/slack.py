"""A fake Slack Web API on 127.0.0.1 that the real slack-sdk `WebClient` talks to.

It keeps the messages it was sent (per channel, with thread replies), answers `ok:false` the way
Slack does (`invalid_auth`, `channel_not_found`, `missing_scope`), and can be taken down for an
outage (503 on every call) or rate limited with a `Retry-After` header.
"""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from tests.fakes.server import FakeApi, Reply, Request

TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
BOT_SCOPES = ("chat:write", "channels:read", "groups:read", "channels:history", "groups:history", "users:read",
              "users:read.email", "files:write")


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list
    thread_ts: str | None = None
    metadata: dict | None = None
    updates: list[dict] = field(default_factory=list)  # every chat.update body, oldest first


class FakeSlack(FakeApi):
    def __init__(self, channels: dict[str, str] | None = None, users: dict[str, str] | None = None) -> None:
        # name -> id; e-mail -> user id
        self.channels = dict(channels or {"webcare-acme": "C0ACME", "webcare": "C0WEB", "webcare-urgent": "C0URG"})
        self.users = dict(users or {})
        self.scopes = list(BOT_SCOPES)
        self.messages: list[Message] = []
        self.uploads: dict[str, dict] = {}  # file id -> {"filename", "content", "channel", "title"}
        self.socket_url: str | None = None
        self.down = False  # an outage: every call answers 503
        self.down_at_first_post = False  # set: the first chat.postMessage starts an outage
        self.refused = 0  # calls answered 503 by an outage
        self.retry_after: int | None = None  # set: every call answers 429 with this Retry-After
        self._ts = itertools.count(1)
        self._files = itertools.count(1)
        self._state_lock = threading.Lock()
        super().__init__()

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    # --- what a test reads ------------------------------------------------------------------------

    def top_level(self, channel_id: str | None = None) -> list[Message]:
        return [m for m in self.messages if m.thread_ts is None and (channel_id is None or m.channel == channel_id)]

    def replies(self, ts: str) -> list[Message]:
        return [m for m in self.messages if m.thread_ts == ts]

    def message(self, ts: str) -> Message:
        return next(m for m in self.messages if m.ts == ts)

    # --- the API ------------------------------------------------------------------------------------

    def respond(self, request: Request) -> Reply:
        if request.path.startswith("/upload/"):
            return self._upload(request)
        if self.down_at_first_post and request.path == "/api/chat.postMessage":
            self.down, self.down_at_first_post = True, False
        if self.down:
            self.refused += 1
            return Reply.json({"ok": False, "error": "service_unavailable"}, 503)
        if self.retry_after is not None:
            return Reply(429, b'{"ok":false,"error":"ratelimited"}',
                         {"Content-Type": "application/json", "Retry-After": str(self.retry_after)})
        method = request.path.removeprefix("/api/")
        args = self._args(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        expected = APP_TOKEN if method == "apps.connections.open" else TOKEN
        if token != expected:
            return self._error("invalid_auth")
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return self._error("unknown_method")
        with self._state_lock:
            return handler(args)

    @staticmethod
    def _args(request: Request) -> dict:
        args: dict = {k: v[0] for k, v in request.query.items()}
        content_type = request.headers.get("content-type", "")
        if request.body and "json" in content_type:
            args.update(json.loads(request.body))
        elif request.body:
            args.update({k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()})
        return args

    @staticmethod
    def _error(error: str, **extra) -> Reply:
        return Reply.json({"ok": False, "error": error, **extra})

    def _needs(self, scope: str) -> Reply | None:
        if scope in self.scopes:
            return None
        return self._error("missing_scope", needed=scope, provided=",".join(self.scopes))

    def _channel_id(self, channel: str) -> str | None:
        if channel in self.channels.values():
            return channel
        return self.channels.get(channel.lstrip("#"))

    def _auth_test(self, args: dict) -> Reply:
        return Reply.json({"ok": True, "team": "Acme", "user": "monitor", "user_id": "U0BOT", "bot_id": "B0BOT"},
                          headers={"x-oauth-scopes": ",".join(self.scopes)})

    def _conversations_info(self, args: dict) -> Reply:
        if denied := self._needs("channels:read"):
            return denied
        channel_id = self._channel_id(args.get("channel", ""))
        if channel_id is None:
            return self._error("channel_not_found")
        name = next(n for n, i in self.channels.items() if i == channel_id)
        return Reply.json({"ok": True, "channel": {"id": channel_id, "name": name, "is_member": True}})

    def _conversations_list(self, args: dict) -> Reply:
        if denied := self._needs("channels:read"):
            return denied
        return Reply.json({"ok": True, "channels": [{"id": i, "name": n} for n, i in self.channels.items()],
                           "response_metadata": {"next_cursor": ""}})

    def _users_lookupByEmail(self, args: dict) -> Reply:
        if denied := self._needs("users:read.email"):
            return denied
        user = self.users.get(args.get("email", ""))
        return Reply.json({"ok": True, "user": {"id": user}}) if user else self._error("users_not_found")

    def _chat_postMessage(self, args: dict) -> Reply:
        if denied := self._needs("chat:write"):
            return denied
        channel_id = self._channel_id(args.get("channel", ""))
        if channel_id is None:
            return self._error("channel_not_found")
        ts = f"1700000000.{next(self._ts):06d}"
        blocks = args.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        metadata = args.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        message = Message(channel_id, ts, args.get("text", ""), blocks, args.get("thread_ts"), metadata)
        self.messages.append(message)
        return Reply.json({"ok": True, "channel": channel_id, "ts": ts, "message": {"text": message.text}})

    def _conversations_history(self, args: dict) -> Reply:
        if denied := self._needs("channels:history"):
            return denied
        channel_id = self._channel_id(args.get("channel", ""))
        if channel_id is None:
            return self._error("channel_not_found")
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        newest_first = [m for m in reversed(self.messages) if m.channel == channel_id and m.thread_ts is None]
        limit = int(args.get("limit") or 100)
        return Reply.json({"ok": True, "has_more": len(newest_first) > limit, "messages": [
            {"type": "message", "ts": m.ts, "text": m.text, **({"metadata": m.metadata} if with_metadata and m.metadata
                                                               else {})}
            for m in newest_first[:limit]]})

    def _conversations_replies(self, args: dict) -> Reply:
        """The thread's parent, then its replies oldest first, `limit` a page (cursor: the offset)."""
        if denied := self._needs("channels:history"):
            return denied
        channel_id = self._channel_id(args.get("channel", ""))
        if channel_id is None:
            return self._error("channel_not_found")
        parent = args.get("ts")
        thread = [m for m in self.messages if m.channel == channel_id and parent in (m.ts, m.thread_ts)]
        if not any(m.ts == parent for m in thread):
            return self._error("thread_not_found")
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        offset, limit = int(args.get("cursor") or 0), int(args.get("limit") or 1000)
        page, rest = thread[offset:offset + limit], thread[offset + limit:]
        return Reply.json({"ok": True, "has_more": bool(rest), "messages": [
            {"type": "message", "ts": m.ts, "text": m.text, **({"thread_ts": m.thread_ts} if m.thread_ts else {}),
             **({"metadata": m.metadata} if with_metadata and m.metadata else {})} for m in page],
            "response_metadata": {"next_cursor": str(offset + limit) if rest else ""}})

    def _chat_update(self, args: dict) -> Reply:
        target = next((m for m in self.messages if m.ts == args.get("ts") and m.channel == args.get("channel")), None)
        if target is None:
            return self._error("message_not_found")
        target.updates.append(dict(args))
        target.text = args.get("text", target.text)
        blocks = args.get("blocks")
        target.blocks = json.loads(blocks) if isinstance(blocks, str) else (blocks or target.blocks)
        return Reply.json({"ok": True, "channel": target.channel, "ts": target.ts})

    def _apps_connections_open(self, args: dict) -> Reply:
        if self.socket_url is None:
            return self._error("not_allowed")
        return Reply.json({"ok": True, "url": self.socket_url})

    # files_upload_v2: get an upload URL, POST the bytes there, then complete into a channel.
    def _files_getUploadURLExternal(self, args: dict) -> Reply:
        if denied := self._needs("files:write"):
            return denied
        file_id = f"F{next(self._files):05d}"
        self.uploads[file_id] = {"filename": args.get("filename"), "length": int(args.get("length", 0)),
                                 "content": None}
        return Reply.json({"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id})

    def _upload(self, request: Request) -> Reply:
        file_id = request.path.removeprefix("/upload/")
        with self._state_lock:
            if file_id not in self.uploads:
                return Reply(404, b"no such upload")
            self.uploads[file_id]["content"] = request.body
        return Reply(200, b"OK - " + str(len(request.body)).encode())

    def _files_completeUploadExternal(self, args: dict) -> Reply:
        files = json.loads(args.get("files", "[]"))
        channel_id = self._channel_id(args.get("channel_id", "")) if args.get("channel_id") else None
        done = []
        for f in files:
            upload = self.uploads.get(f["id"])
            if upload is None or upload["content"] is None:
                return self._error("file_not_found")
            upload.update(channel=channel_id, title=f.get("title"), comment=args.get("initial_comment"))
            done.append({"id": f["id"], "title": f.get("title"), "name": upload["filename"]})
        return Reply.json({"ok": True, "files": done})
