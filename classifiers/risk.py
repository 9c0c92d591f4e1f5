"""Escalation risk: one probability per mention that the team needs to act, with reasons."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from classifiers.virality import ViralityForecaster
from classifiers.virality.defaults import default_forecaster
from monitor.models import RiskAssessment, RiskFeatures, Severity, Snapshot


MAX_QUOTE_CHARS = 40  # a trigger as quoted among an alert's reasons


def _capped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _human(n: float) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M".replace(".0M", "M")
    if n >= 1_000:
        return f"{n / 1_000:.1f}k".replace(".0k", "k")
    return str(int(round(n)))


@dataclass(frozen=True, slots=True)
class RiskWeights:
    """Log-odds contributions. Hand-set priors until feedback labels recalibrate them."""

    intercept: float = -4.0
    negative: float = 2.0
    complaint: float = 1.5
    trigger: float = 3.0
    extra_trigger_category: float = 0.5
    # Threats to go public or to an authority escalate on their own, whatever the tone.
    strong_trigger: float = 0.5
    strong_categories: tuple[str, ...] = ("press", "legal", "regulator", "shaming")
    reach_per_decade: float = 0.6  # per factor 10 of followers above 100
    verified: float = 0.4
    virality_per_decade: float = 1.2  # per factor 10 of forecast shares above 10
    velocity_per_decade: float = 0.5  # per factor 10 of share velocity above this brand's usual
    velocity_floor: float = 1.0  # shares per hour: a brand whose posts never spread is no yardstick
    repeat_contact: float = 1.0  # per unanswered post beyond the first
    repeat_contact_cap: int = 4
    storm: float = 1.0


class RiskScorer:
    def __init__(self, weights: RiskWeights | None = None, forecaster: ViralityForecaster | None = None,
                 repeat_contact_min_posts: int = 3):
        self.weights = weights or RiskWeights()
        self.forecaster = forecaster or default_forecaster()
        self.repeat_contact_min_posts = repeat_contact_min_posts

    def assess(self, f: RiskFeatures, severity_for) -> RiskAssessment:
        """`severity_for(probability)` maps to the brand's thresholds (None: no alert)."""
        w = self.weights
        c = f.classification
        author = f.mention.author
        reasons: list[tuple[float, str]] = []
        z = w.intercept + w.negative * c.negative + w.complaint * c.complaint
        tone = "negative complaint" if c.complaint >= 0.5 and c.negative >= 0.5 else (
            "complaint" if c.complaint >= 0.5 else "negative" if c.negative >= 0.5 else "")
        if tone:
            reasons.append((w.negative * c.negative + w.complaint * c.complaint, tone))

        categories = sorted({t.category for t in c.triggers})
        if categories:
            z += w.trigger + w.extra_trigger_category * (len(categories) - 1)
            z += w.strong_trigger if set(categories) & set(w.strong_categories) else 0.0
            # Each quote capped: a wildcard term can match a word as long as the post, and the
            # reasons after it would be cut from the alert.
            quoted = ", ".join(dict.fromkeys(f'"{_capped(t.matched_text, MAX_QUOTE_CHARS)}"' for t in c.triggers))
            reasons.append((w.trigger, f"{'/'.join(categories)} threat: {quoted}"))

        # Reach and spread matter only for posts that are bad news for the brand.
        gate = max(c.negative, c.complaint, 1.0 if categories else 0.0)
        reach = w.reach_per_decade * max(0.0, math.log10(max(1, author.followers)) - 2) + (w.verified if author.verified else 0)
        z += gate * reach
        if author.followers >= 10_000 or author.verified:
            reasons.append((gate * reach, f"{_human(author.followers)} followers" + (" · verified" if author.verified else "")))

        forecast = self.forecaster.forecast(f.snapshots, f.mention.created_at, f.now, author.followers)
        if f.snapshots:
            spread = w.virality_per_decade * max(0.0, math.log10(max(1.0, forecast)) - 1)
            z += gate * spread
            latest = max(f.snapshots, key=lambda s: s.observed_at)
            if latest.metrics.shares >= 10:
                minutes = max(1, int((f.now - f.mention.created_at).total_seconds() // 60))
                against = ""
                if f.brand_velocity is not None:
                    ratio = velocity(latest, f.mention.created_at) / max(f.brand_velocity, w.velocity_floor)
                    fast = w.velocity_per_decade * max(0.0, math.log10(max(ratio, 1e-9)))
                    z += gate * fast
                    spread += fast
                    against = f" ({ratio:.0f}× usual)" if ratio >= 2 else ""
                reasons.append((gate * spread, f"{_human(latest.metrics.shares)} reposts in {_duration(minutes)}"
                                               f"{against}, forecast {_human(forecast)}"))

        if f.unanswered_contacts >= self.repeat_contact_min_posts:
            extra = min(f.unanswered_contacts - 1, w.repeat_contact_cap)
            z += w.repeat_contact * extra
            reasons.append((w.repeat_contact * extra, f"{f.unanswered_contacts} posts without a reply"))

        if f.storm_name:
            z += w.storm
            reasons.append((w.storm, f"part of storm “{f.storm_name}”"))

        probability = 1 / (1 + math.exp(-z))
        ordered = tuple(text for _, text in sorted(reasons, key=lambda r: -r[0]))
        return RiskAssessment(
            mention_id=f.mention.id,
            probability=probability,
            severity=severity_for(probability),
            reasons=ordered,
            forecast_shares=forecast,
            assessed_at=f.now,
        )


def velocity(snapshot: Snapshot, created_at: datetime) -> float:
    """Shares per hour since the post went up (at least a minute: clocks of sources and pollers differ)."""
    hours = max((snapshot.observed_at - created_at).total_seconds(), 60) / 3600
    return snapshot.metrics.shares / hours


def _duration(minutes: int) -> str:
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h"


def severity_from_size(size: int, expected: float) -> Severity:
    """A storm's severity from how far it runs above its baseline."""
    ratio = size / max(expected, 1.0)
    if size >= 50 or ratio >= 20:
        return Severity.critical
    if size >= 15 or ratio >= 8:
        return Severity.high
    return Severity.medium
