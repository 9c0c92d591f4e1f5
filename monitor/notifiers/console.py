"""Prints each alert as its Slack message would read, for the demo and for runs without Slack."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from monitor.notifiers.blocks import status_line
from monitor.notifiers.render import payload_to_alert, render_mrkdwn
from monitor.store.repository import OutboxItem


class ConsoleNotifier:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def send(self, item: OutboxItem) -> str:
        header = f"── alert #{item.escalation_id}" + ("" if item.kind == "new" else f" ({item.kind})") + \
                 (f" → {item.channel}" if item.channel else "")
        if item.kind == "followup":
            body = item.payload["text"]
        else:
            body = render_mrkdwn(payload_to_alert(item.payload))
            if item.payload.get("status"):
                body += "\n" + status_line(item.payload["status"])
        with self._lock:
            self.stream.write(f"{header}\n{body}\n\n")
            self.stream.flush()
        return f"console-{item.id}"
