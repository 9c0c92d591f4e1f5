"""Term lists from `config/` compiled into fast, case-insensitive matchers with spans."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import yaml


def _pattern(term: str) -> str:
    """A phrase as a regex: words in order, any whitespace between, `*` at the end = any word ending."""
    term = term.strip().lower().replace("\u2019", "'")
    wildcard = term.endswith("*")
    words = term.rstrip("*").split()
    body = r"\s+".join(re.escape(w) for w in words)
    if wildcard:
        body += r"\w*"
    # Word boundaries that also work for terms starting with '#' or '@' or ending in emoji.
    return rf"(?<![\w#@]){body}(?!\w)"


class TermMatcher:
    """Finds any of many terms in a text; each term maps to a label (e.g. a trigger category)."""

    def __init__(self, labelled_terms: Iterable[tuple[str, str]]):
        self._labels: dict[str, tuple[str, str]] = {}
        parts = []
        for i, (label, term) in enumerate(labelled_terms):
            if not term or not term.strip().rstrip("*").strip():
                continue
            group = f"t{i}"
            self._labels[group] = (label, term)
            parts.append(f"(?P<{group}>{_pattern(term)})")
        self._regex = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    def finditer(self, text: str) -> Iterator[tuple[str, str, int, int]]:
        """(label, term, start, end) for each non-overlapping match, left to right."""
        if self._regex is None:
            return
        # Curly apostrophes as straight ones; one character for one, so spans stay true.
        for match in self._regex.finditer(text.replace("\u2019", "'")):
            label, term = self._labels[match.lastgroup]
            yield label, term, match.start(), match.end()

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
