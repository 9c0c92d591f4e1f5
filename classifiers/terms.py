"""Term lists from `config/` compiled into fast, case-insensitive matchers with spans."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import yaml


def _normalise(text: str) -> str:
    return " ".join(text.strip().lower().replace("\u2019", "'").split())


def _pattern(term: str) -> str:
    """A phrase as a regex: words in order, any whitespace between, `*` at the end = any word ending."""
    term = term.strip().lower().replace("\u2019", "'")
    wildcard = term.endswith("*")
    words = term.rstrip("*").split()
    body = r"\s+".join(re.escape(w) for w in words)
    return body + r"\w*" if wildcard else body


class TermMatcher:
    """Finds any of many terms in a text; each term maps to a label (e.g. a trigger category)."""

    def __init__(self, labelled_terms: Iterable[tuple[str, str]]):
        self._exact: dict[str, tuple[str, str]] = {}
        self._prefixes: list[tuple[str, tuple[str, str]]] = []  # wildcard terms, longest first
        parts = []
        for label, term in labelled_terms:
            key = _normalise(term.rstrip("*")) if term else ""
            if not key:
                continue
            if term.strip().endswith("*"):
                self._prefixes.append((key, (label, term)))
            else:
                self._exact.setdefault(key, (label, term))
            parts.append(_pattern(term))
        self._prefixes.sort(key=lambda p: -len(p[0]))
        # Plain alternation, longest first, with one boundary check around it: capture groups or
        # a boundary per term make Python's regex engine many times slower on long lists. The
        # boundaries also work for terms starting with '#' or '@' or ending in emoji.
        parts.sort(key=len, reverse=True)
        self._regex = re.compile(rf"(?<![\w#@])(?:{'|'.join(parts)})(?!\w)", re.IGNORECASE) if parts else None

    def _term_of(self, matched: str) -> tuple[str, str] | None:
        key = _normalise(matched)
        if key in self._exact:
            return self._exact[key]
        # None only where case folding differs between re and str.lower (rare scripts): skip it.
        return next((found for prefix, found in self._prefixes if key.startswith(prefix)), None)

    def finditer(self, text: str) -> Iterator[tuple[str, str, int, int]]:
        """(label, term, start, end) for each non-overlapping match, left to right."""
        if self._regex is None:
            return
        # Curly apostrophes as straight ones; one character for one, so spans stay true.
        for match in self._regex.finditer(text.replace("\u2019", "'")):
            found = self._term_of(match.group())
            if found is not None:
                yield found[0], found[1], match.start(), match.end()

    def count(self, text: str) -> int:
        return sum(1 for _ in self.finditer(text))


@lru_cache(maxsize=64)
def load_term_file(path: Path) -> dict:
    with Path(path).open(encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict) or "language" not in data:
        raise ValueError(f"{path}: a term file must be a mapping with a `language` key")
    return data


def term_files(folder: Path) -> dict[str, dict]:
    """language code -> parsed term file, for every *.yaml in a folder."""
    files = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        data = load_term_file(path)
        files[str(data["language"])] = data
    return files
