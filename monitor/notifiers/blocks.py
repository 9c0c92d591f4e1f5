"""The alert as a Block Kit message: the escaped mrkdwn body, its state, and the four buttons."""

from __future__ import annotations

from monitor.models import AlertMessage
from monitor.notifiers.render import escape_mrkdwn, payload_to_alert, render_mrkdwn

# action_id of each button; the interaction handler reads them back.
CLAIM = "escalation_claim"
REASSIGN = "escalation_reassign"
RESOLVE = "escalation_resolve"
DISMISS = "escalation_dismiss"
ACTIONS = (CLAIM, REASSIGN, RESOLVE, DISMISS)

_CLOSED = ("resolved", "dismissed")


_DONE = {"claimed": "Claimed by", "resolved": "Resolved by", "dismissed": "Dismissed as false positive by",
         "reassigned": "Reassigned to"}


def _who(status: dict) -> str:
    return f"<@{status['user']}>" if status.get("user") else escape_mrkdwn(status.get("actor") or "someone", 80)


def status_line(status: dict) -> str:
    """`status` as the store's interaction handler writes it: state, actor (Slack user id), at."""
    return f"*{_DONE.get(status['state'], status['state'])}* {_who(status)} · {status.get('at', '')}"


def status_reply(status: dict) -> str:
    """The thread reply to a click: the message shows the state, the thread keeps the story."""
    return f"{_DONE.get(status['state'], status['state'])} {_who(status)}"


def fallback_text(alert: AlertMessage) -> str:
    """The notification text (also mrkdwn, so escaped the same way)."""
    return f"{alert.severity.value.upper()} · {escape_mrkdwn(alert.brand, 80)} · {alert.title}: " \
           f"{escape_mrkdwn(alert.text, 150)}"


def alert_blocks(payload: dict) -> tuple[str, list[dict]]:
    """(fallback text, blocks) for a stored alert payload, with its state once someone acted."""
    alert = payload_to_alert(payload)
    blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": render_mrkdwn(alert)}}]
    status = payload.get("status")
    if status:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": status_line(status)}]})
    if not status or status.get("state") not in _CLOSED:
        blocks.append(_buttons(alert.escalation_id, claimed=bool(status and status["state"] == "claimed")))
    return fallback_text(alert), blocks


def _buttons(escalation_id: int, claimed: bool) -> dict:
    value = str(escalation_id)
    elements: list[dict] = []
    if not claimed:
        elements.append({"type": "button", "action_id": CLAIM, "value": value, "style": "primary",
                         "text": {"type": "plain_text", "text": "Claim"}})
    elements += [
        {"type": "users_select", "action_id": REASSIGN, "placeholder": {"type": "plain_text", "text": "Reassign"}},
        {"type": "button", "action_id": RESOLVE, "value": value, "text": {"type": "plain_text", "text": "Resolve"}},
        {"type": "button", "action_id": DISMISS, "value": value, "style": "danger",
         "text": {"type": "plain_text", "text": "Dismiss as false positive"},
         "confirm": {"title": {"type": "plain_text", "text": "Dismiss this alert?"},
                     "text": {"type": "plain_text", "text": "It is recorded as a false positive for the risk score."},
                     "confirm": {"type": "plain_text", "text": "Dismiss"},
                     "deny": {"type": "plain_text", "text": "Keep"}}},
    ]
    return {"type": "actions", "block_id": f"escalation:{escalation_id}", "elements": elements}
