"""Reads one post: language, sentiment, complaint, triggers. The pipeline's classify stage calls this."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from classifiers.language import LanguageIdentifier
from classifiers.lexicon import Lexicon, LexiconComplaint, LexiconSentiment
from classifiers.triggers import TriggerDetector
from monitor.models import Classification, StoredMention

MAX_TEXT_CHARS = 2000  # posts are short; anything longer is cut rather than slowing the batch


@dataclass(frozen=True, slots=True)
class PostText:
    mention_id: int
    text: str
    lang: str | None


def clean_text(text: str) -> str:
    """Untrusted input: drop control characters and NULs, cap the length."""
    text = text[:MAX_TEXT_CHARS] if isinstance(text, str) else ""
    return "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text)


class PostClassifier:
    def __init__(self, config_dir: Path, languages: list[str], sentiment_model: str = "lexicon"):
        if sentiment_model != "lexicon":
            raise ValueError(f"classifiers.sentiment_model: unknown model {sentiment_model!r} (available: lexicon)")
        lexicon = Lexicon(config_dir / "lexicons")
        self.sentiment = LexiconSentiment(lexicon)
        self.complaint = LexiconComplaint(lexicon)
        self.triggers = TriggerDetector(config_dir / "triggers")
        self.language = LanguageIdentifier(languages)

    @property
    def model_name(self) -> str:
        return f"{self.sentiment.name}+{self.complaint.name}"

    @property
    def model_version(self) -> str:
        return f"{self.sentiment.version}.{self.complaint.version}"

    def classify(self, posts: Sequence[PostText]) -> list[Classification]:
        texts = [clean_text(p.text) for p in posts]
        langs = [p.lang or self.language.identify(t) for p, t in zip(posts, texts)]
        sentiment = self.sentiment.predict_proba(texts)
        complaint = self.complaint.predict_proba(texts)[:, 1]
        results = []
        for i, post in enumerate(posts):
            scores = {label: round(float(p), 4) for label, p in zip(self.sentiment.classes_, sentiment[i])}
            results.append(Classification(
                mention_id=post.mention_id,
                model=self.model_name,
                model_version=self.model_version,
                lang=langs[i],
                sentiment=max(scores, key=scores.__getitem__),
                sentiment_scores=scores,
                complaint=round(float(complaint[i]), 4),
                triggers=self.triggers.find(texts[i], langs[i]),
            ))
        return results

    def classify_mentions(self, mentions: Sequence[StoredMention]) -> list[Classification]:
        return self.classify([PostText(m.id, m.text, m.lang) for m in mentions])
