"""Fast rule-based sentiment and complaint scoring from the term lists in `config/lexicons/`.

Estimators in scikit-learn style: hand-set coefficients work without training; `fit`
re-learns them (multinomial logistic regression) from labelled posts.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_right
from collections.abc import Sequence
from itertools import islice
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from classifiers.terms import TermMatcher, term_files

SENTIMENT_LABELS = ("negative", "neutral", "positive")
NEGATION_SPAN = 3  # a negator flips the polarity of words up to this many tokens after it
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class Lexicon:
    """Every language's lists merged into one matcher per kind of cue."""

    def __init__(self, folder: Path):
        files = term_files(folder)
        if not files:
            raise ValueError(f"{folder}: no lexicon files (*.yaml)")

        def matcher(key: str) -> TermMatcher:
            return TermMatcher((key, t) for data in files.values() for t in data.get(key) or ())

        # The lists feed every head's cue columns: an edited list is another model.
        kinds = ("positive", "negative", "negators", "intensifiers", "complaint")
        lists = {kind: sorted(str(t) for data in files.values() for t in data.get(kind) or ()) for kind in kinds}
        self.version = hashlib.sha256(json.dumps(lists, sort_keys=True).encode()).hexdigest()[:8]

        self.positive = matcher("positive")
        self.negative = matcher("negative")
        self.negators = matcher("negators")
        self.intensifiers = matcher("intensifiers")
        self.complaint = matcher("complaint")

    def features(self, text: str) -> np.ndarray:
        """Counts of cues in one text, with polarity flipped after a negator."""
        text = text[:2000]
        negator_ends = [end for *_, end in self.negators.finditer(text)]  # in order: matches go left to right

        def negated(start: int) -> bool:
            # The nearest negator before the cue has the fewest tokens between them; counting stops
            # past the span. (Counting from every negator to every cue took seconds on a long post.)
            nearest = bisect_right(negator_ends, start) - 1
            if nearest < 0:
                return False
            tokens = _TOKEN.finditer(text, negator_ends[nearest], start)
            return sum(1 for _ in islice(tokens, NEGATION_SPAN + 1)) <= NEGATION_SPAN

        def polarity_hits(matcher: TermMatcher) -> tuple[int, int]:
            plain = flipped = 0
            for _, _, start, _ in matcher.finditer(text):
                near = negated(start)
                flipped += near
                plain += not near
            return plain, flipped

        pos, pos_neg = polarity_hits(self.positive)
        neg, neg_neg = polarity_hits(self.negative)
        return np.array([
            pos + neg_neg,
            neg + pos_neg,
            self.complaint.count(text),
            self.intensifiers.count(text),
            text.count("!") > 1,
            "?" in text,
            sum(w.isupper() and len(w) > 2 for w in text.split()) > 1,
        ], dtype=float)

    def matrix(self, texts: Sequence[str]) -> np.ndarray:
        return np.vstack([self.features(t) for t in texts]) if texts else np.zeros((0, 7))


class _LexiconEstimator:
    classes_: tuple[str, ...]
    _default_coef: np.ndarray
    _default_intercept: np.ndarray

    def __init__(self, lexicon: Lexicon, C: float = 1.0):
        self.lexicon = lexicon
        self.C = C
        self._model: LogisticRegression | None = None

    def fit(self, texts: Sequence[str], labels: Sequence[str]):
        self._model = LogisticRegression(C=self.C, max_iter=1000).fit(self.lexicon.matrix(texts), list(labels))
        self.classes_ = tuple(str(c) for c in self._model.classes_)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        x = self.lexicon.matrix(texts)
        if self._model is not None:
            return self._model.predict_proba(x)
        logits = x @ self._default_coef.T + self._default_intercept
        if logits.shape[1] == 1:  # binary: one logit for the positive class
            p = 1 / (1 + np.exp(-logits[:, 0]))
            return np.column_stack([1 - p, p])
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.classes_[i] for i in self.predict_proba(texts).argmax(axis=1)]


class LexiconSentiment(_LexiconEstimator):
    """negative / neutral / positive from lexicon cue counts."""

    name = "lexicon-sentiment"
    version = "1"
    classes_ = SENTIMENT_LABELS
    # Columns: positive, negative, complaint cues, intensifiers, "!!", "?", SHOUTING.
    # Fitted with `fit` on 15,000 posts of the SemEval 2013-2016 training file.
    _default_coef = np.array([
        [-0.65, 1.19, 0.31, 0.22, -0.34, 0.14, -0.07],   # negative
        [-0.47, -0.51, -0.15, -0.23, -0.51, 0.15, 0.12],  # neutral
        [1.12, -0.67, -0.16, 0.02, 0.85, -0.29, -0.05],   # positive
    ])
    _default_intercept = np.array([-0.73, 0.71, 0.02])


class LexiconComplaint(_LexiconEstimator):
    """Probability that a post is a complaint, from complaint and negative cues."""

    name = "lexicon-complaint"
    version = "1"
    classes_ = ("0", "1")
    # Fitted with `fit` (balanced classes) on the complaints corpus of Preotiuc-Pietro et al. (2019).
    _default_coef = np.array([[-0.59, 1.16, 1.71, 0.23, 0.03, 0.67, 0.5]])
    _default_intercept = np.array([-0.66])
