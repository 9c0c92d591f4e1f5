"""The alert as a Block Kit message: the escaped mrkdwn body, its state, and its buttons."""

from __future__ import annotations

from monitor.models import AlertMessage
from monitor.notifiers.render import escape_mrkdwn, payload_to_alert, render_mrkdwn

# action_id of each button; the interaction handler reads them back.
CLAIM = "escalation_claim"
REASSIGN = "escalation_reassign"
RESOLVE = "escalation_resolve"
DISMISS = "escalation_dismiss"
WAIT = "escalation_wait"  # waiting on another department
BACK = "escalation_back"  # back from it
ACTIONS = (CLAIM, REASSIGN, WAIT, BACK, RESOLVE, DISMISS)

_CLOSED = ("resolved", "dismissed")
_CLAIMED = ("claimed", "reassigned", "back")  # states shown after a click that leave it claimed


_DONE = {"claimed": "Claimed by", "resolved": "Resolved by", "dismissed": "Dismissed as false positive by",
         "reassigned": "Reassigned to", "waiting": "Waiting on another department, says",
         "back": "Back from the other department, says"}


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
    state = (status or {}).get("state")
    if state not in _CLOSED:
        blocks.append(_buttons(alert.escalation_id, "claimed" if state in _CLAIMED else state or "open"))
    return fallback_text(alert), blocks


def _button(action_id: str, value: str, text: str, **extra) -> dict:
    return {"type": "button", "action_id": action_id, "value": value, "text": {"type": "plain_text", "text": text},
            **extra}


def _buttons(escalation_id: int, state: str) -> dict:
    """Claim while open; once claimed, mark it waiting on another department and back again."""
    value = str(escalation_id)
    first = {"open": _button(CLAIM, value, "Claim", style="primary"),
             "claimed": _button(WAIT, value, "Waiting on dept."),
             "waiting": _button(BACK, value, "Back from dept.")}[state]
    elements: list[dict] = [
        first,
        {"type": "users_select", "action_id": REASSIGN, "placeholder": {"type": "plain_text", "text": "Reassign"}},
        _button(RESOLVE, value, "Resolve"),
        _button(DISMISS, value, "Dismiss as false positive", style="danger",
                confirm={"title": {"type": "plain_text", "text": "Dismiss this alert?"},
                         "text": {"type": "plain_text", "text": "It is recorded as a false positive for the risk score."},
                         "confirm": {"type": "plain_text", "text": "Dismiss"},
                         "deny": {"type": "plain_text", "text": "Keep"}}),
    ]
    return {"type": "actions", "block_id": f"escalation:{escalation_id}", "elements": elements}
