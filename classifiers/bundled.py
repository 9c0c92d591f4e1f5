"""The bundled default model: the MiniLM transformer, with language heads where it reads poorly.

The transformer answers every task for every language in one encoder pass. For a language
with a head (`classifiers/models/{lang}_sentiment.json.gz`, trained by `escalation-monitor train`),
that head's sentiment replaces the transformer's: the encoder's English vocabulary reads Dutch
polarity worse (macro-F1 0.40 cross-validated) than n-grams learnt from 899 Dutch posts (0.65).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from classifiers.lexicon import SENTIMENT_LABELS, Lexicon
from classifiers.minilm import DEFAULT_WEIGHTS, MiniLMClassifier
from classifiers.ngram import NgramSentiment

MODELS_DIR = DEFAULT_WEIGHTS.parent
HEAD_SUFFIX = "_sentiment.json.gz"


def language_head_path(language: str, folder: Path = MODELS_DIR) -> Path:
    return folder / f"{language}{HEAD_SUFFIX}"


def load_language_heads(lexicon: Lexicon, folder: Path = MODELS_DIR) -> dict[str, NgramSentiment]:
    """Every head shipped in `folder`, by ISO 639-1 code."""
    return {path.name.removesuffix(HEAD_SUFFIX): NgramSentiment.load(path, lexicon)
            for path in sorted(folder.glob(f"*{HEAD_SUFFIX}"))}


class BundledModel:
    """Sentiment and complaint probabilities; `langs` (one ISO code or None per text) picks the heads."""

    def __init__(self, transformer: MiniLMClassifier, language_heads: Mapping[str, NgramSentiment]):
        self.transformer = transformer
        self.language_heads = dict(language_heads)
        for lang, head in self.language_heads.items():
            if set(head.classes_) != set(SENTIMENT_LABELS):
                raise ValueError(f"language head {lang!r} has labels {head.classes_}, expected {SENTIMENT_LABELS}")

    @property
    def name(self) -> str:
        return "+".join([self.transformer.name, *(f"{lang}-ngram" for lang in sorted(self.language_heads))])

    @property
    def version(self) -> str:
        return "+".join([self.transformer.version, *(self.language_heads[k].version for k in sorted(self.language_heads))])

    def predict_all(self, texts: Sequence[str], langs: Sequence[str | None]) -> dict[str, np.ndarray]:
        if len(langs) != len(texts):
            raise ValueError("need one language (or None) per text")
        out = self.transformer.predict_all(texts)
        for lang, head in self.language_heads.items():
            rows = [i for i, code in enumerate(langs) if code == lang]
            if rows:
                probs = head.predict_proba([texts[i] for i in rows])
                order = [head.classes_.index(label) for label in SENTIMENT_LABELS]
                out["sentiment"][rows] = probs[:, order]
        return out
