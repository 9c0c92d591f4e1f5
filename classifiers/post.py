"""Reads one post: language, sentiment, complaint, triggers. The pipeline's classify stage calls this."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from classifiers.bundled import BundledModel, load_bundled
from classifiers.hub import HubSentiment
from classifiers.language import LanguageIdentifier
from classifiers.lexicon import Lexicon, LexiconComplaint, LexiconSentiment
from classifiers.triggers import TriggerDetector
from monitor.models import Classification, StoredMention, language_code

MAX_TEXT_CHARS = 2000  # posts are short; anything longer is cut rather than slowing the batch


@dataclass(frozen=True, slots=True)
class PostText:
    mention_id: int
    text: str
    lang: str | None


def clean_text(text: str) -> str:
    """Untrusted input: control characters, NULs and other non-printing characters as spaces
    (same length, so trigger spans index the post as stored), the length capped. Format characters
    (zero-width space, soft hyphen, direction marks) are kept: a space inside "law\u200byer" would
    split the word for the trigger lists, which see through them, and the tokenizer drops them."""
    text = text[:MAX_TEXT_CHARS] if isinstance(text, str) else ""
    return "".join(ch if ch.isprintable() or ch in "\n\t" or unicodedata.category(ch) == "Cf" else " "
                   for ch in text)


def _is_blank(text: str) -> bool:
    """Nothing but whitespace and format characters (a zero-width space alone is still no text)."""
    return not "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip()


class _BundledTask:
    """One task of the bundled model, for the names and labels a classification records."""

    def __init__(self, model: BundledModel, task: str):
        part = model if task == "sentiment" else model.complaint_head
        self.classes_ = model.transformer.classes(task) if task == "sentiment" else model.complaint_head.classes_
        self.name, self.version = part.name, part.version


class PostClassifier:
    """`sentiment_model`: "bundled" (the shipped MiniLM adapter, with its complaint head and
    language heads for the languages it reads poorly),
    "lexicon" (the fast rule baseline), or a Hugging Face model name or directory. `quantize`
    (bundled model only): False keeps its float32 network in torch, to measure what int8 costs."""

    def __init__(self, config_dir: Path, languages: list[str], sentiment_model: str = "bundled",
                 sentiment_labels: dict[str, str] | None = None, quantize: bool = True):
        lexicon = Lexicon(config_dir / "lexicons")
        self._bundled: BundledModel | None = None
        if sentiment_model == "bundled":
            self._bundled = load_bundled(lexicon, quantize=quantize)
            self.sentiment = _BundledTask(self._bundled, "sentiment")
            self.complaint = _BundledTask(self._bundled, "complaint")
        elif sentiment_model == "lexicon":
            self.sentiment = LexiconSentiment(lexicon)
            self.complaint = LexiconComplaint(lexicon)
        else:
            self.sentiment = HubSentiment(sentiment_model, label_map=sentiment_labels)
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
        langs, weights = self._languages(texts, [language_code(p.lang) for p in posts])
        sentiment, complaint = self.scores(texts, langs, weights)
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

    def _languages(self, texts: Sequence[str], given: Sequence[str | None]) -> tuple[list[str | None], list[dict | None]]:
        """Each text's language (the source's, else lingua's first choice) and, where lingua read
        it, lingua's confidence in each language."""
        unlabelled = [i for i, lang in enumerate(given) if lang is None]
        found = dict(zip(unlabelled, self.language.confidences_of([texts[i] for i in unlabelled])))
        langs = [lang if lang is not None else self.language.first_choice(found[i]) for i, lang in enumerate(given)]
        return langs, [found.get(i) or None for i in range(len(texts))]

    def scores(self, texts: Sequence[str], langs: Sequence[str | None] | None = None,
               language_weights: Sequence[dict | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Sentiment probabilities (columns: sentiment.classes_) and complaint probability per text.

        `langs`: each text's language where known, `language_weights` lingua's confidences where
        it named it (see `BundledModel.predict_all`); without `langs`, both are found here when
        the model needs them."""
        if self._bundled is not None:
            if langs is None:
                if self._bundled.language_heads:
                    langs, language_weights = self._languages(texts, [None] * len(texts))
                else:
                    langs = [None] * len(texts)
            both = self._bundled.predict_all(texts, langs, language_weights)  # one encoder pass for both tasks
            sentiment, complaint = both["sentiment"], both["complaint"][:, 1]
        else:
            sentiment, complaint = self.sentiment.predict_proba(texts), self.complaint.predict_proba(texts)[:, 1]
        # A post with no text (an image or a video alone) says nothing: a model still reads its
        # empty input as something (the bundled one: negative, 0.55), which would count as anger.
        blank = np.fromiter((_is_blank(t) for t in texts), dtype=bool, count=len(texts))
        if blank.any():
            sentiment, complaint = sentiment.copy(), complaint.copy()
            sentiment[blank] = np.asarray(self.sentiment.classes_) == "neutral"
            complaint[blank] = 0.0
        return sentiment, complaint

    def classify_mentions(self, mentions: Sequence[StoredMention]) -> list[Classification]:
        return self.classify([PostText(m.id, m.text, m.lang) for m in mentions])
