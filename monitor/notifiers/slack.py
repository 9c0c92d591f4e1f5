"""Delivers outbox items to Slack with slack-sdk's WebClient.

One item, one effect: `new` posts the alert; `update` rewrites it (chat.update) and says what
changed in its thread; `state` rewrites it after a button click and says who did what in its
thread; `followup` is a thread reply (SLA reminders). Updates always go to the channel of the
first message, so an escalation whose severity moved to another channel still has one message.
Every message carries its outbox id as metadata, so a retry finds what an earlier try posted.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError

from monitor.notifiers.base import DeliveryError
from monitor.notifiers.blocks import alert_blocks, status_reply
from monitor.notifiers.render import escape_mrkdwn
from monitor.notifiers.slack_setup import SlackSession
from monitor.store.repository import OutboxItem

log = logging.getLogger(__name__)

# ok:false errors that no retry can fix for this message (the rest may be fixed by an admin
# while the item waits: a revoked token, a channel the bot was removed from).
_PERMANENT = {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments",
              "message_not_found", "cant_update_message", "edit_window_closed", "is_archived"}


ALERT_EVENT = "escalation_alert"
REPLY_EVENT = "escalation_reply"
HISTORY_LOOKBACK = 200  # messages; the alert of a retry is among the channel's latest
REPLIES_PAGE = 200


class SlackNotifier:
    def __init__(self, session: SlackSession):
        self.client = session.client
        self.channel_ids = session.channel_ids

    def send(self, item: OutboxItem) -> str | None:
        try:
            return self._send(item)
        except SlackApiError as exc:
            raise _delivery_error(exc) from None
        except OSError as exc:  # connection refused, reset, timeout: Slack is down or unreachable
            raise DeliveryError(f"slack unreachable: {type(exc).__name__}: {exc}") from None

    def _send(self, item: OutboxItem) -> str | None:
        if item.kind == "new":
            channel = self._channel(item.channel)
            if item.attempts > 0 and (posted := self._posted_before(channel, item.id)):
                return posted
            text, blocks = alert_blocks(item.payload)
            response = self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False,
                metadata={"event_type": ALERT_EVENT, "event_payload": {"outbox_id": item.id}})
            return response["ts"]
        if item.thread_ts is None or item.thread_channel is None:
            raise DeliveryError(f"outbox {item.id}: the first message has no ts", permanent=True)
        channel = self._channel(item.thread_channel)
        if item.attempts > 0 and (replied := self._replied_before(channel, item.thread_ts, item.id)):
            return replied
        if item.kind in ("update", "state"):
            text, blocks = alert_blocks(item.payload)
            # Rewriting a message to the same content is harmless, so a retry of this step is too.
            self.client.chat_update(channel=channel, ts=item.thread_ts, text=text, blocks=blocks)
            reply = status_reply(item.payload["status"]) if item.kind == "state" else \
                "Update: " + escape_mrkdwn(item.payload.get("change") or "details changed", 300)
        elif item.kind == "followup":
            reply = item.payload["text"]  # composed by the SLA follow-up from trusted parts only
        else:
            raise DeliveryError(f"outbox {item.id}: unknown kind {item.kind!r}", permanent=True)
        response = self.client.chat_postMessage(
            channel=channel, thread_ts=item.thread_ts, text=reply, unfurl_links=False, unfurl_media=False,
            metadata={"event_type": REPLY_EVENT, "event_payload": {"outbox_id": item.id}})
        return response["ts"]

    def _posted_before(self, channel: str, outbox_id: int) -> str | None:
        """ts of this outbox item's message if an earlier try posted it but its answer was lost.

        Without this, a timeout or a cut-off answer after Slack stored the message would post the
        alert twice. The message carries its outbox id as metadata; recent history is enough,
        since retries follow within minutes.
        """
        history = self.client.conversations_history(channel=channel, include_all_metadata=True, limit=HISTORY_LOOKBACK)
        for message in history.get("messages") or []:
            metadata = message.get("metadata") or {}
            if (metadata.get("event_type") == ALERT_EVENT
                    and (metadata.get("event_payload") or {}).get("outbox_id") == outbox_id):
                log.info("alert already posted outbox=%d ts=%s; not posting it again", outbox_id, message["ts"])
                return message["ts"]
        return None

    def _replied_before(self, channel: str, thread_ts: str, outbox_id: int) -> str | None:
        """ts of this outbox item's thread reply if an earlier try posted it but its answer was lost
        (the same reasoning as for the alert itself, looked up in the thread)."""
        for page in self.client.conversations_replies(channel=channel, ts=thread_ts, include_all_metadata=True,
                                                      limit=REPLIES_PAGE):
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                if (metadata.get("event_type") == REPLY_EVENT
                        and (metadata.get("event_payload") or {}).get("outbox_id") == outbox_id):
                    log.info("thread reply already posted outbox=%d ts=%s; not posting it again", outbox_id,
                             message["ts"])
                    return message["ts"]
        return None

    def _channel(self, configured: str | None) -> str:
        if configured is None:
            raise DeliveryError("no channel configured", permanent=True)
        return self.channel_ids.get(configured, configured)


def _delivery_error(exc: SlackApiError) -> DeliveryError:
    status = exc.response.status_code
    data = exc.response.data if isinstance(exc.response.data, dict) else {}
    error = data.get("error") or f"HTTP {status}"
    if status == 429 or error == "ratelimited":
        retry_after = exc.response.headers.get("Retry-After") or exc.response.headers.get("retry-after")
        return DeliveryError(f"slack rate limited ({error})", retry_after=float(retry_after) if retry_after else None)
    if status >= 500:
        return DeliveryError(f"slack server error {status} ({error})")
    return DeliveryError(f"slack refused: {error}", permanent=error in _PERMANENT)
