"""Prints each alert as its Slack message would read, for the demo and for runs without Slack."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from monitor.notifiers.render import payload_to_alert, render_mrkdwn
from monitor.store.repository import OutboxItem


class ConsoleNotifier:
    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def send(self, item: OutboxItem) -> str:
        alert = payload_to_alert(item.payload)
        header = f"── alert #{item.escalation_id}" + (" (update)" if item.kind == "update" else "") + \
                 (f" → {item.channel}" if item.channel else "")
        with self._lock:
            self.stream.write(f"{header}\n{render_mrkdwn(alert)}\n\n")
            self.stream.flush()
        return f"console-{item.id}"
