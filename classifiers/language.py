"""Language identification for posts the source did not label (lingua)."""

from __future__ import annotations

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

from classifiers.textnorm import without_handles_and_links

# Below this many letters, handles and links not counted, a guess is noise; the post stays
# unlabelled ("@Vodafone_NL ??" was German, 0.41).
MIN_LETTERS = 8
# Lingua's confidence (shares of 1 among the configured languages) from which its first choice is
# taken. Chosen on UMSAB's train files and the Dutch tweets: from 0.5 down to 0.3 each step names
# more posts rightly than wrongly (Portuguese, mostly unsure against Spanish: 0.842 to 0.921 named,
# 0.014 to 0.052 wrong; English 0.995 to 0.998 named, 0.001 to 0.002 wrong), below 0.3 it no
# longer does. The first choice picks a post's trigger lists, its speakers in routing and its
# complaint rule; its sentiment weighs every language by its confidence (classifiers/bundled.py).
MIN_CONFIDENCE = 0.3


def lingua_languages(codes: list[str]) -> list[Language]:
    """Lingua's languages for ISO 639-1 `codes`; a ValueError names a code it does not know, or
    fewer than two different languages (with one, every post would be labelled that language)."""
    wanted = []
    for code in codes:
        try:
            language = Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper()))
        except AttributeError:
            raise ValueError(f"{code!r} is not an ISO 639-1 code the language identifier knows") from None
        wanted += [language] if language not in wanted else []
    if len(wanted) < 2:
        raise ValueError("name at least two different languages to tell apart")
    return wanted


class LanguageIdentifier:
    def __init__(self, languages: list[str], min_confidence: float = MIN_CONFIDENCE):
        try:
            wanted = lingua_languages(languages)
        except ValueError as exc:
            raise ValueError(f"classifiers.languages: {exc}") from None
        self.min_confidence = min_confidence
        self._detector = LanguageDetectorBuilder.from_languages(*wanted).build()

    def confidences(self, text: str) -> dict[str, float]:
        """Lingua's confidence in each configured language (ISO 639-1 code -> share of 1), most
        likely first; empty when the text is too short to tell."""
        return self.confidences_of([text])[0]

    def confidences_of(self, texts: list[str]) -> list[dict[str, float]]:
        """`confidences` of each text, on every core at once (10,000 tweets: 1.9 s against 5.1 s
        one by one on 2 cores; the same values to 1e-14)."""
        known = [i for i, text in enumerate(texts)
                 if sum(ch.isalpha() for ch in without_handles_and_links(text)) >= MIN_LETTERS]
        out: list[dict[str, float]] = [{} for _ in texts]
        values = self._detector.compute_language_confidence_values_in_parallel([texts[i] for i in known])
        for i, found in zip(known, values):
            out[i] = {value.language.iso_code_639_1.name.lower(): value.value for value in found}
        return out

    def first_choice(self, confidences: dict[str, float]) -> str | None:
        """The most likely language of `confidences`, or None when lingua is unsure of every one."""
        code, value = next(iter(confidences.items()), (None, 0.0))
        return code if value >= self.min_confidence else None

    def identify(self, text: str) -> str | None:
        """ISO 639-1 code, or None when the text is too short or too mixed to tell."""
        return self.first_choice(self.confidences(text))
