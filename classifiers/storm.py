"""Storm detection: a surge of negative posts against an hour-of-week baseline, and its shared terms."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from scipy.stats import poisson

_WORD = re.compile(r"(?<![@#\w/])[^\W\d_][\w'-]{2,}", re.UNICODE)
_URL = re.compile(r"https?://\S+|www\.\S+")
STOPWORDS = frozenset("""
the and for are but not you your yours with this that have has had was were will what when who why how all
any can did does don't doesn't from just like more now out our get got its it's too very again still been
being they them their there here about after before into over than then some such only also even because
de het een en van ik je jij jullie we wij zij ze die dat dit er is zijn was waren wordt word worden niet
geen wel nog al maar of om te op in aan met voor naar bij uit ook dan als zo wat wie hoe waarom waar
mijn me mij ons onze hun heb hebt heeft had kan kun kunnen moet moeten zal zou gaat gaan doet doen
meer sinds ook even weer alweer hier daar echt gewoon iemand iets anders heel hele nou toch jullie
anyone anything someone still here there today since really just know think want need going
der die das und nicht ist ich mit für auf les des une est pas pour avec sur dans que qui
""".split())


def tokens(text: str) -> list[str]:
    words = [w.lower().strip("'-") for w in _WORD.findall(_URL.sub(" ", text))]
    return [w for w in words if len(w) >= 3 and w not in STOPWORDS]


def _terms_of(text: str, excluded: frozenset[str]) -> set[str]:
    words = [w for w in tokens(text) if w not in excluded]
    return set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])}


class HourOfWeekBaseline:
    """Expected negative posts per hour for each hour of the week (in the team's timezone).

    Gamma-Poisson shrinkage in three levels: an hour-of-week slot borrows strength from the
    same hour on all days, which borrows from the brand's rate over all hours, which borrows
    from the configured prior rate. A slot with a lot of history follows its own counts; a new
    install follows the prior, and within hours the brand's own level (a prior far from the
    brand's real rate would otherwise take days per hour of the day to unlearn).
    """

    def __init__(self, prior_per_hour: float, timezone: str, prior_hours: float = 4.0, hour_hours: float = 4.0,
                 day_hours: float = 2.0):
        self.prior_per_hour = prior_per_hour
        self.tz = ZoneInfo(timezone)
        self.prior_hours = prior_hours
        self.hour_hours = hour_hours
        self.day_hours = day_hours

    def rate(self, at: datetime, history: Sequence[datetime], history_start: datetime | None,
             history_end: datetime) -> float:
        local = at.astimezone(self.tz)
        hod, dow = local.hour, local.weekday()
        count_hod = count_how = 0
        for t in history:
            lt = t.astimezone(self.tz)
            if lt.hour == hod:
                count_hod += 1
                count_how += lt.weekday() == dow
        exposure_all = exposure_hod = exposure_how = 0.0
        if history_start is not None and history_end > history_start:
            # Whole hours of observed history that fall on this hour of day / hour of week.
            start = max(history_start, history_end - timedelta(weeks=8))
            exposure_all = (history_end - start).total_seconds() / 3600
            cursor = start.replace(minute=0, second=0, microsecond=0)
            while cursor < history_end:
                seg_end = min(cursor + timedelta(hours=1), history_end)
                seg = (seg_end - max(cursor, start)).total_seconds() / 3600
                lc = cursor.astimezone(self.tz)
                if lc.hour == hod and seg > 0:
                    exposure_hod += seg
                    exposure_how += seg if lc.weekday() == dow else 0.0
                cursor += timedelta(hours=1)
        rate_all = (self.prior_per_hour * self.prior_hours + len(history)) / (self.prior_hours + exposure_all)
        rate_hod = (rate_all * self.hour_hours + count_hod) / (self.hour_hours + exposure_hod)
        return (rate_hod * self.day_hours + count_how) / (self.day_hours + exposure_how)


class StormDetector:
    def __init__(self, window_minutes: int = 15, min_posts: int = 6, surge_p_value: float = 1e-4,
                 max_terms: int = 6):
        self.window_minutes = window_minutes
        self.min_posts = min_posts
        self.surge_p_value = surge_p_value
        self.max_terms = max_terms

    def is_surge(self, count: int, expected: float) -> bool:
        """One-sided Poisson test: this many posts in one window would be very unlikely by chance."""
        return count >= self.min_posts and poisson.sf(count - 1, max(expected, 1e-6)) < self.surge_p_value

    def is_calm(self, count: int, expected: float) -> bool:
        return count <= max(1, poisson.ppf(0.99, max(expected, 1e-6)))

    def storm_terms(self, window_texts: Sequence[str], background_texts: Sequence[str],
                    excluded: Sequence[str] = ()) -> list[str]:
        """Terms that many surge posts share and ordinary posts rarely use, best first."""
        skip = frozenset(w.lower() for term in excluded for w in tokens(term))
        window_df = Counter(t for text in window_texts for t in _terms_of(text, skip))
        background_df = Counter(t for text in background_texts for t in _terms_of(text, skip))
        n_w, n_b = max(1, len(window_texts)), max(1, len(background_texts))
        floor = max(2, math.ceil(0.08 * n_w))
        scored = []
        for term, df in window_df.items():
            if df < floor:
                continue
            lift = (df / n_w) / ((background_df.get(term, 0) + 1) / (n_b + 2))
            if lift > 1.5:
                scored.append((df * math.log(lift) * (1.3 if " " in term else 1.0), term))
        scored.sort(reverse=True)
        chosen: list[str] = []
        for _, term in scored:
            if any(term in c or c in term for c in chosen):
                continue  # "app" and "app down" say the same thing once
            chosen.append(term)
            if len(chosen) == self.max_terms:
                break
        return chosen

    @staticmethod
    def shared_terms(text: str, terms: Sequence[str], excluded: Sequence[str] = ()) -> int:
        """How many of the storm's terms the text uses."""
        skip = frozenset(w.lower() for term in excluded for w in tokens(term))
        have = _terms_of(text, skip)
        return sum(1 for t in terms if t in have)

    @staticmethod
    def name(terms: Sequence[str]) -> str:
        return " · ".join(terms[:3]) or "negative surge"
