"""Language identification for posts the source did not label (lingua)."""

from __future__ import annotations

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

# Below this many letters a guess is noise; the post stays unlabelled.
MIN_LETTERS = 8


class LanguageIdentifier:
    def __init__(self, languages: list[str], min_confidence: float = 0.5):
        wanted = []
        for code in languages:
            try:
                wanted.append(Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())))
            except AttributeError:
                raise ValueError(f"classifiers.languages: unknown ISO 639-1 code {code!r}") from None
        if len(wanted) < 2:
            raise ValueError("classifiers.languages: name at least two languages to tell apart")
        self.min_confidence = min_confidence
        self._detector = LanguageDetectorBuilder.from_languages(*wanted).build()

    def identify(self, text: str) -> str | None:
        """ISO 639-1 code, or None when the text is too short or too mixed to tell."""
        letters = sum(ch.isalpha() for ch in text)
        if letters < MIN_LETTERS:
            return None
        values = self._detector.compute_language_confidence_values(text)
        if not values or values[0].value < self.min_confidence:
            return None
        return values[0].language.iso_code_639_1.name.lower()
