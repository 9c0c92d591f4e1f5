"""Who should take an escalation: on shift, speaks the language, has the skill, least loaded."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from monitor.config import TeamConfig, TeamMember
from monitor.models import Owner

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def on_shift(member: TeamMember, at: datetime, team_timezone: str) -> bool:
    """Whether `at` falls in one of the member's shifts, read in the member's own timezone.

    A shift whose end is not after its start runs past midnight into the next day; it belongs
    to the day it starts on, and a holiday cancels the shifts that start on it.
    """
    tz = ZoneInfo(member.timezone or team_timezone)
    local = at.astimezone(tz)
    for shift in member.shifts:
        for day_offset in (0, -1):  # today's shifts, and yesterday's that run past midnight
            day = (local + timedelta(days=day_offset)).date()
            if _DAYS[day.weekday()] not in shift.days or day in member.holidays:
                continue
            start = datetime.combine(day, shift.start, tzinfo=tz)
            end_day = day if shift.end > shift.start else day + timedelta(days=1)
            end = datetime.combine(end_day, shift.end, tzinfo=tz)
            if start <= local < end:
                return True
    return False


@dataclass(frozen=True, slots=True)
class RoutingRequest:
    lang: str | None
    skills: Sequence[str]  # most specific first (trigger categories, then the source); any makes a fit
    previous_owner: str | None  # who had this customer or storm before
    at: datetime
    # The brand's first language: asked for when the alert has none (a storm, a post of no language).
    brand_lang: str | None = None


class Router:
    def __init__(self, team: TeamConfig, team_timezone: str):
        self.team = team
        self.team_timezone = team_timezone
        self._turn = itertools.count()
        self._last_pick: dict[str, int] = {}
        self._lock = threading.Lock()

    def suggest(self, request: RoutingRequest, load: dict[str, int]) -> Owner:
        members = self.team.members
        if not members:
            return Owner(None, None, "no team configured")
        by_name = {m.name: m for m in members}
        present = [m for m in members if on_shift(m, request.at, self.team_timezone)]

        previous = by_name.get(request.previous_owner or "")
        if previous is not None and previous in present and load.get(previous.name, 0) < previous.capacity:
            return self._owner(previous, f"handled this before · {load.get(previous.name, 0)} open")

        available = [m for m in present if load.get(m.name, 0) < m.capacity] or present
        lang = request.lang or request.brand_lang
        speakers = [m for m in available if lang in m.languages] if lang else []
        candidates = speakers or available  # no language asked for, or nobody on hand reads it
        # The first skill asked for that a candidate has: a press threat goes to whoever does press
        # before whoever merely does the source it came from.
        skill = next((s for s in request.skills if any(s in m.skills for m in candidates)), None)
        skilled = [m for m in candidates if skill in m.skills]
        pool = skilled or candidates
        agents = [m for m in pool if m.role == "agent"] or pool
        if agents:
            chosen = self._fairest(agents, load)
            why = ([f"speaks {lang}"] if speakers else []) + ([f"skill: {skill}"] if skilled else [])
            reason = " · ".join(why or ["on shift"]) + f" · {load.get(chosen.name, 0)} open"
            return self._owner(chosen, reason)

        if self.team.on_call:
            return self._owner(by_name[self.team.on_call], "nobody on shift: on-call")
        lead = next((m for m in members if m.role == "lead"), None)
        if lead is not None:
            return self._owner(lead, "nobody on shift and no on-call: team lead")
        return Owner(None, None, "nobody on shift, no on-call and no lead configured")

    def _fairest(self, candidates: Sequence[TeamMember], load: dict[str, int]) -> TeamMember:
        """Lowest load; among equals, whoever was picked longest ago (round robin)."""
        with self._lock:
            chosen = min(candidates, key=lambda m: (load.get(m.name, 0), self._last_pick.get(m.name, -1)))
            self._last_pick[chosen.name] = next(self._turn)
            return chosen

    @staticmethod
    def _owner(member: TeamMember, reason: str) -> Owner:
        return Owner(member.name, member.slack_user, reason)
