"""Escalation triggers (press, legal, regulator, safety, churn, shaming) with matched spans."""

from __future__ import annotations

from pathlib import Path

from classifiers.terms import TermMatcher, term_files
from monitor.models import TriggerMatch

CATEGORIES = ("press", "legal", "regulator", "safety", "churn", "shaming")


# The label of a file's `exceptions`: phrases in which its terms are no threat.
_EXCEPTION = ""


class TriggerDetector:
    """Matches the per-language term lists in `config/triggers/`.

    A post is checked against its own language's list and English (Dutch posts mix in English
    freely); a post of unknown language against every list. A file's `exceptions` are phrases
    holding one of its terms in another sense ("Fire TV", "RT to win"): matched with the terms,
    the longest match at a place wins, so a term inside an exception is not a trigger.
    """

    def __init__(self, folder: Path):
        self.languages: dict[str, TermMatcher] = {}
        for lang, data in term_files(folder).items():
            triggers = data.get("triggers") or {}
            unknown = set(triggers) - set(CATEGORIES)
            if unknown:
                raise ValueError(f"{folder}/{lang}: unknown trigger categories {sorted(unknown)}")
            exceptions = data.get("exceptions") or []
            if not isinstance(exceptions, list) or not all(isinstance(e, str) for e in exceptions):
                raise ValueError(f"{folder}/{lang}: exceptions must be a list of phrases")
            self.languages[lang] = TermMatcher([*((cat, term) for cat, terms in triggers.items() for term in terms or ()),
                                                *((_EXCEPTION, phrase) for phrase in exceptions)])

    def find(self, text: str, lang: str | None) -> tuple[TriggerMatch, ...]:
        if lang in self.languages:
            langs = [lang] + (["en"] if lang != "en" and "en" in self.languages else [])
        else:
            langs = list(self.languages)
        found: dict[tuple[int, int], TriggerMatch] = {}
        for code in langs:
            for category, term, start, end in self.languages[code].finditer(text):
                if category == _EXCEPTION:
                    continue
                found.setdefault((start, end), TriggerMatch(category, term, start, end, text[start:end]))
        return tuple(sorted(found.values(), key=lambda t: t.start))
