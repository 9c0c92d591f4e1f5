"""What a button click does: the escalation's state changes in the store, with who and when, and
a rewrite of its message is queued in the outbox. Shared by Socket Mode and the HTTP endpoint."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.exc import NoResultFound

from classifiers.textnorm import well_formed
from monitor.clock import Clock
from monitor.config import TeamConfig
from monitor.models import EscalationState
from monitor.notifiers.blocks import BACK, CLAIM, DISMISS, REASSIGN, RESOLVE, WAIT
from monitor.store.repository import Store

log = logging.getLogger(__name__)

_STATES = {CLAIM: EscalationState.claimed, REASSIGN: EscalationState.claimed, WAIT: EscalationState.waiting,
           BACK: EscalationState.claimed, RESOLVE: EscalationState.resolved, DISMISS: EscalationState.dismissed}
# What the message says happened, where the new state alone would not tell.
_SHOWN = {REASSIGN: "reassigned", BACK: "back"}
# A stale "Back from dept." (someone already clicked it) must not re-claim the escalation.
_ONLY_FROM = {BACK: {EscalationState.waiting}}


@dataclass(frozen=True, slots=True)
class Click:
    escalation_id: int
    action: str  # one of blocks.ACTIONS
    user: str  # Slack user id of whoever clicked
    selected_user: str | None  # Reassign: the picked user


@dataclass(frozen=True, slots=True)
class ClickResult:
    escalation_id: int
    state: EscalationState
    owner: str | None


def parse_clicks(payload: dict) -> list[Click]:
    """The escalation buttons in a `block_actions` payload (anything else, or anything of another
    shape than Slack's, is not ours). Ids are made `well_formed`: JSON can carry a lone surrogate
    escape, which no database stores, and the click would be lost."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return []
    user = _text(_field(payload.get("user"), "id"))
    actions = payload.get("actions")
    clicks = []
    for action in actions if isinstance(actions, list) else ():
        action_id, block_id = _text(_field(action, "action_id")), _text(_field(action, "block_id"))
        if action_id not in _STATES or not block_id.startswith("escalation:"):
            continue
        try:
            escalation_id = int(block_id.split(":", 1)[1])
        except ValueError:
            continue
        clicks.append(Click(escalation_id, action_id, user, _text(action.get("selected_user")) or None))
    return clicks


def _field(mapping, key: str):
    return mapping.get(key) if isinstance(mapping, dict) else None


def _text(value) -> str:
    return well_formed(value) if isinstance(value, str) else ""


class ClickHandler:
    def __init__(self, store: Store, team: TeamConfig, clock: Clock):
        self.store = store
        self.clock = clock
        self._names = {m.slack_user: m.name for m in team.members if m.slack_user}

    def name_of(self, user: str) -> str:
        """A team member's name; someone outside the configured team by their Slack id."""
        return self._names.get(user, f"slack:{user}")

    def handle(self, payload: dict) -> list[ClickResult]:
        return [r for click in parse_clicks(payload) if (r := self.apply(click)) is not None]

    def apply(self, click: Click) -> ClickResult | None:
        now = self.clock.now()
        actor = self.name_of(click.user)
        if click.action == REASSIGN and not click.selected_user:
            return None
        owner = self.name_of(click.selected_user) if click.action == REASSIGN else None
        try:
            record = self.store.transition(click.escalation_id, _STATES[click.action], actor, now, owner=owner,
                                           only_from=_ONLY_FROM.get(click.action))
        except (ValueError, NoResultFound) as exc:  # a stale button, or an escalation purged since
            log.warning("click ignored escalation=%d action=%s by=%s: %s", click.escalation_id, click.action,
                        actor, exc)
            return None
        state = _SHOWN.get(click.action, record.state.value)
        shown = click.selected_user if click.action == REASSIGN else click.user
        self.store.queue_message(click.escalation_id, "state", now, status={
            "state": state, "user": shown, "actor": actor, "at": now.isoformat(timespec="minutes")})
        log.info("escalation %s id=%d by=%s owner=%s", state, click.escalation_id, actor, record.owner)
        return ClickResult(click.escalation_id, record.state, record.owner)
