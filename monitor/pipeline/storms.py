"""Storm stage: open, grow and close storms of negative posts per brand."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from classifiers.storm import HourOfWeekBaseline, StormDetector
from monitor.clock import Clock
from monitor.config import BrandConfig, StormConfig
from monitor.models import Classification, StoredMention
from monitor.store.repository import Store

log = logging.getLogger(__name__)

NEGATIVE_AT_LEAST = 0.5
COMPLAINT_AT_LEAST = 0.7  # to open a storm: only clear complaints count towards a surge
MAX_STORM_TERMS = 12


@dataclass(frozen=True, slots=True)
class StormChange:
    storm_id: int
    brand: str
    opened: bool
    added: int
    closed: bool


class StormTracker:
    def __init__(self, cfg: StormConfig, timezone: str):
        self.cfg = cfg
        self.detector = StormDetector(cfg.window_minutes, cfg.min_posts, cfg.surge_p_value)
        self.baseline = HourOfWeekBaseline(cfg.prior_negative_per_hour, timezone)

    def _belongs(self, mention: StoredMention, classification: Classification, terms: list[str],
                 brand_terms: list[str]) -> bool:
        """Two storm terms, or one in a clearly negative complaint: one generic word ("router")
        in an otherwise mild post is not enough to make it part of an outage."""
        shared = self.detector.shared_terms(mention.text, terms, brand_terms)
        return shared >= 2 or (shared == 1 and classification.sentiment == "negative"
                               and classification.complaint >= COMPLAINT_AT_LEAST)

    def update(self, store: Store, brand: BrandConfig, clock: Clock) -> list[StormChange]:
        now = clock.now()
        window_start = now - timedelta(minutes=self.cfg.window_minutes)
        brand_terms = [brand.name] + [t for terms in brand.search_terms.values() for t in terms] + \
                      [h for handles in brand.own_accounts.values() for h in handles]
        window = store.negative_mentions(brand.name, window_start, now, NEGATIVE_AT_LEAST, COMPLAINT_AT_LEAST)
        changes: list[StormChange] = []

        in_storm = store.storm_member_ids(brand.name, now - timedelta(days=2))
        open_storms = store.open_storms(brand.name)
        # Joining takes the same bar as opening: a question that merely names a storm term ("when
        # does the new wifi router ship?") is not part of the outage.
        candidates = window if open_storms else []
        for storm in open_storms:
            # A storm's vocabulary grows with it: "storing" first, then "ligt eruit", "plat"...
            member_texts = [m.text for m in store.mentions(store.storm_member_ids_of(storm.id))]
            background = store.mention_texts(brand.name, storm.opened_at - timedelta(hours=24),
                                             storm.opened_at - timedelta(minutes=30))
            fresh = self.detector.storm_terms(member_texts + [m.text for m, _ in candidates], background, brand_terms)
            terms = list(dict.fromkeys([*storm.terms, *fresh]))[:MAX_STORM_TERMS]
            if len(terms) > len(storm.terms):
                store.set_storm_terms(storm.id, terms)
            joining = [m for m, c in candidates if m.id not in in_storm and self._belongs(m, c, terms, brand_terms)]
            matching_now = sum(1 for m, c in candidates if self._belongs(m, c, terms, brand_terms))
            added = store.grow_storm(storm.id, joining, matching_now) if joining else 0
            in_storm.update(m.id for m in joining)
            quiet_since = storm.last_post_at if not joining else now
            closed = (self.detector.is_calm(matching_now, storm.expected_per_window)
                      and now - quiet_since >= timedelta(minutes=self.cfg.close_after_minutes))
            if closed:
                store.close_storm(storm.id, now)
                log.info("storm closed brand=%s storm=%d name=%r", brand.name, storm.id, storm.name)
            if added or closed:
                changes.append(StormChange(storm.id, brand.name, False, added, closed))

        loose = [(m, c) for m, c in window if m.id not in in_storm]
        history_start = store.first_mention_at(brand.name)
        history = [m.created_at for m, _ in store.negative_mentions(
            brand.name, now - timedelta(weeks=8), window_start, NEGATIVE_AT_LEAST, COMPLAINT_AT_LEAST)
            if m.id not in in_storm]
        expected = self.baseline.rate(now, history, history_start, window_start) * self.cfg.window_minutes / 60
        if not self.detector.is_surge(len(loose), expected):
            return changes
        # Storm terms are what sets the surge apart from everything said about the brand on a normal
        # day: "router" in an outage is no storm term for a brand whose customers ask about routers daily.
        background = store.mention_texts(brand.name, now - timedelta(hours=24), window_start)
        terms = self.detector.storm_terms([m.text for m, _ in loose], background, brand_terms)
        members = [m for m, c in loose if self._belongs(m, c, terms, brand_terms)]
        if len(members) < self.cfg.min_posts:
            return changes  # a rise in scattered complaints with nothing in common is not one storm
        for storm in open_storms:
            if set(terms) & set(storm.terms):
                # The same event in other words (often another language): one storm that grows.
                store.set_storm_terms(storm.id, list(dict.fromkeys([*storm.terms, *terms]))[:MAX_STORM_TERMS])
                added = store.grow_storm(storm.id, members, len(members))
                changes.append(StormChange(storm.id, brand.name, False, added, False))
                return changes
        name = self.detector.name(terms)
        storm_id = store.open_storm(brand.name, name, terms, now, expected, members)
        log.info("storm opened brand=%s storm=%d name=%r posts=%d expected=%.2f", brand.name, storm_id, name,
                 len(members), expected)
        changes.append(StormChange(storm_id, brand.name, True, len(members), False))
        return changes
