"""Term lists from `config/` compiled into fast, case-insensitive matchers with spans."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

import yaml


# Invisible characters that split a word without showing: soft hyphen, zero-width space and
# joiners, direction marks, embeddings, overrides and isolates, word joiner, byte order mark.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def _fold(text: str) -> str:
    """Text as the lists are matched against it: compatibility forms as their plain letters (NFKC:
    "ＬＡＷＹＥＲ", the mathematical bold "𝐥𝐚𝐰𝐲𝐞𝐫" posts use for emphasis, ligatures), invisible
    characters dropped ("law\u200byer"), curly apostrophes as straight ones. Each of these
    otherwise kept a threat out of its list."""
    return unicodedata.normalize("NFKC", _INVISIBLE.sub("", text)).replace("\u2019", "'")


@lru_cache(maxsize=16)  # a post is matched against several lists in a row
def _folded(text: str) -> tuple[str, tuple[tuple[int, int], ...] | None]:
    """`_fold(text)` and, where it differs in more than apostrophes, the span in `text` that gave
    each folded character, so that matches point into the post as written."""
    plain = text.replace("\u2019", "'")
    if plain.isascii() or (unicodedata.is_normalized("NFKC", plain) and not _INVISIBLE.search(plain)):
        return plain, None
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    start = 0
    # A base character with the combining marks after it is folded as one (NFKC composes them).
    for end in range(1, len(text) + 1):
        if end < len(text) and unicodedata.combining(text[end]):
            continue
        folded = _fold(text[start:end])
        parts.append(folded)
        spans.extend([(start, end)] * len(folded))
        start = end
    return "".join(parts), tuple(spans)


def _key(folded: str) -> str:
    """A folded term or match as the lookup key: lower case, single spaces."""
    return " ".join(folded.lower().split())


_SPACE, _WORD_END = r"\s+", r"\w*"


def _atoms(term: str) -> tuple[str, ...]:
    """A phrase as regex atoms: its characters, any whitespace between words, `*` at the end of a
    word = any word ending ("cancel* my subscription*")."""
    atoms: list[str] = []
    for word in _fold(term).strip().lower().split():
        atoms.extend([_SPACE] if atoms else [])
        atoms.extend(re.escape(ch) for ch in word.rstrip("*"))
        atoms.extend([_WORD_END] if word.endswith("*") else [])
    return tuple(atoms)


def _trie_pattern(terms: Iterable[tuple[str, ...]]) -> str:
    """One regex for many terms, shaped as a prefix tree: at each position the engine follows one
    path instead of trying every term in turn (a plain alternation of 500 terms cost about 0.3 ms
    a post). Longer terms are tried first and the optional tails are greedy, so a term wins over
    a shorter one it starts with, as in an alternation sorted longest first."""
    root: dict = {}
    for atoms in terms:
        node = root
        for atom in atoms:
            node = node.setdefault(atom, {})
        node[""] = {}  # a term ends here

    def render(node: dict) -> str:
        branches = []
        # Literal characters before the wildcard tail, so "klantenservice" is tried before "klant*".
        for atom, child in sorted(node.items(), key=lambda kv: kv[0] == _WORD_END):
            if not atom:
                continue
            chain = [atom]
            while len(child) == 1 and "" not in child:  # a run without branches: no recursion, however long the term
                ((atom, child),) = child.items()
                chain.append(atom)
            branches.append("".join(chain) + render(child))
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return render(root)


class TermMatcher:
    """Finds any of many terms in a text; each term maps to a label (e.g. a trigger category)."""

    def __init__(self, labelled_terms: Iterable[tuple[str, str]]):
        self._exact: dict[str, tuple[str, str]] = {}
        # Terms with a wildcard, each as a regex of its own, longest first: which term a match is.
        self._wildcards: list[tuple[re.Pattern, tuple[str, str]]] = []
        terms = []
        for label, term in labelled_terms:
            atoms = _atoms(term) if term else ()
            if not [a for a in atoms if a not in (_SPACE, _WORD_END)]:
                continue
            if _WORD_END in atoms:
                self._wildcards.append((re.compile("".join(atoms), re.IGNORECASE), (label, term)))
            else:
                self._exact.setdefault(_key(_fold(term)), (label, term))
            terms.append(atoms)
        self._wildcards.sort(key=lambda w: -len(w[0].pattern))
        # One boundary check around the whole tree: capture groups or a boundary per term make
        # Python's regex engine many times slower on long lists. The boundaries also work for
        # terms starting with '#' or '@' or ending in emoji.
        self._regex = (re.compile(rf"(?<![\w#@])(?:{_trie_pattern(terms)})(?!\w)", re.IGNORECASE)
                       if terms else None)

    def _term_of(self, matched: str) -> tuple[str, str] | None:
        key = _key(matched)  # matched in the folded text already
        if key in self._exact:
            return self._exact[key]
        # None only where case folding differs between re and str.lower (rare scripts): skip it.
        return next((found for pattern, found in self._wildcards if pattern.fullmatch(matched)), None)

    def finditer(self, text: str) -> Iterator[tuple[str, str, int, int]]:
        """(label, term, start, end) for each non-overlapping match, left to right."""
        if self._regex is None:
            return
        folded, spans = _folded(text)
        for match in self._regex.finditer(folded):
            found = self._term_of(match.group())
            if found is None:
                continue
            if spans is None:
                yield found[0], found[1], match.start(), match.end()
            else:
                yield found[0], found[1], spans[match.start()][0], spans[match.end() - 1][1]

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
