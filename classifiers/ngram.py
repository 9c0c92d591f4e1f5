"""Sentiment for one language from character and word n-grams plus lexicon cues.

The bundled encoder's vocabulary is English: it splits Dutch words into fragments and reads
Dutch polarity worse than a word list. Character n-grams need no vocabulary and learn from a few
hundred labelled posts, so a small logistic regression over them, with the lexicon's cue counts
as extra columns, serves a language the encoder cannot. scikit-learn style: parameters in the
constructor, `fit`, `predict`, `predict_proba`; `save`/`load` use plain JSON (no pickle: a model
file is data, never code).

A head may read a `prior`: another n-gram model, fitted on many posts in other languages (English
SemEval, UMSAB's German, Arabic and Hindi), whose log-probabilities become three more columns.
Emoji, emoticons, hashtags, laughter and words borrowed from English carry polarity across
languages, and 1,839 posts of one language see too few of them.

A head may also read a `polarity` list (`classifiers.polarity`): word polarities from a published
lexicon, for the many polar words its few training posts never show.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from classifiers.lexicon import Lexicon
from classifiers.model_file import read_model_file, write_model_file
from classifiers.polarity import COLUMNS as POLARITY_COLUMNS
from classifiers.polarity import PolarityError, PolarityLexicon
from classifiers.textnorm import normalise_post
from classifiers.tfidf import nb_log_count_ratio, restore, vocabulary_in_column_order

FORMAT = "ngram-sentiment/1"


class NgramModelError(RuntimeError):
    """A language head's file is missing or not a model this code wrote."""


def _vectorizers(char_ngrams: tuple[int, int], word_ngrams: tuple[int, int], min_df: int, max_features: int | None):
    return (TfidfVectorizer(analyzer="char_wb", ngram_range=char_ngrams, min_df=min_df, sublinear_tf=True,
                            max_features=max_features),
            TfidfVectorizer(analyzer="word", ngram_range=word_ngrams, min_df=1, sublinear_tf=True,
                            max_features=max_features))


def _ngram_range(data: dict, key: str) -> tuple[int, int]:
    low, high = data[key]
    if not (type(low) is int and type(high) is int and 1 <= low <= high <= 10):
        raise ValueError(f"{key} {data[key]!r} is not a range of n-gram lengths")
    return low, high


def _number(data: dict, key: str, default: float | None = None) -> float:
    value = data[key] if default is None else data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} {value!r} is not a number")
    return float(value)


class NgramSentiment:
    """Parameters: `lexicon` (its cue counts become features), `C` (inverse regularisation),
    `char_ngrams` and `word_ngrams` (n-gram ranges), `min_df` (a character n-gram must occur in
    this many training posts to be kept; bounds the file size), `max_features` (keep only the
    most frequent n-grams of each kind; bounds the file of a model fitted on many posts),
    `prior` (a fitted model whose log-probabilities, times `prior_weight`, are extra columns),
    `nb_scale` (0: off; else each n-gram column is scaled by its naive Bayes ratio to this power
    while fitting, and the scale is folded into the saved coefficients), `polarity` (a word
    polarity list whose two columns are added; saved inside the head's file)."""

    name = "ngram-sentiment"

    def __init__(self, lexicon: Lexicon, *, C: float = 1.0, char_ngrams: tuple[int, int] = (2, 5),
                 word_ngrams: tuple[int, int] = (1, 2), min_df: int = 2, max_features: int | None = None,
                 language: str = "", prior: NgramSentiment | None = None, prior_weight: float = 0.5,
                 nb_scale: float = 0.0, polarity: PolarityLexicon | None = None):
        self.lexicon = lexicon
        self.C = C
        self.char_ngrams = tuple(char_ngrams)
        self.word_ngrams = tuple(word_ngrams)
        self.min_df = min_df
        self.max_features = max_features
        self.language = language
        self.prior = prior
        self.prior_weight = prior_weight
        self.nb_scale = nb_scale
        self.polarity = polarity
        self.classes_: tuple[str, ...] = ()
        self._vectorizers: tuple[TfidfVectorizer, TfidfVectorizer] | None = None
        self._model: LogisticRegression | None = None
        self._digest: str | None = None

    @property
    def version(self) -> str:
        """Language, vocabulary size and a hash of everything its file holds (weights, intercepts,
        idf, parameters): a refitted prior is another version, so a head fitted with the old one is
        refused. A fitted model hashes the numbers its file will hold, so it and its copy agree."""
        if self._model is None:
            return f"{self.language or 'any'}-unfitted"
        if self._digest is None:
            self._digest = hashlib.sha256(json.dumps(self._state(), sort_keys=True).encode()).hexdigest()[:8]
        own = f"{self.language or 'any'}-{len(self._vectorizers[0].vocabulary_)}-{self._digest}"
        return f"{own}+{self.prior.version}" if self.prior is not None else own

    def _lexicon_columns(self, texts: Sequence[str]) -> np.ndarray:
        counts = np.log1p(self.lexicon.matrix(texts))  # counts are >= 0; the log keeps one long rant from dominating
        return counts if self.polarity is None else np.hstack([counts, self.polarity.matrix(texts)])

    def _features(self, normalised: Sequence[str]):
        chars, words = self._vectorizers
        blocks = [chars.transform(normalised), words.transform(normalised), csr_matrix(self._lexicon_columns(normalised))]
        if self.prior is not None:
            # Log-probabilities: a confident prior moves the head more than a hesitant one; the floor
            # keeps a zero from becoming -inf.
            blocks.append(csr_matrix(self.prior_weight * np.log(self.prior._proba(normalised) + 1e-3)))
        return hstack(blocks).tocsr()

    def _proba(self, normalised: Sequence[str]) -> np.ndarray:
        return self._model.predict_proba(self._features(normalised))

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> NgramSentiment:
        if len(texts) != len(labels) or len(set(labels)) < 2:
            raise ValueError("need as many labels as texts, and at least two different labels")
        if self.prior is not None and self.prior._model is None:
            raise NgramModelError("the prior is not fitted")
        normalised = [normalise_post(t) for t in texts]
        chars, words = _vectorizers(self.char_ngrams, self.word_ngrams, self.min_df, self.max_features)
        chars.fit(normalised)
        words.fit(normalised)
        self._vectorizers = (chars, words)
        # Balanced: the corpora we learn from are small and their class mix is not the brand's.
        self._model = LogisticRegression(C=self.C, max_iter=3000, class_weight="balanced")
        features = self._features(normalised)
        scale = np.ones(features.shape[1])
        if self.nb_scale:
            ngrams = len(chars.vocabulary_) + len(words.vocabulary_)
            scale[:ngrams] = nb_log_count_ratio(features[:, :ngrams], labels) ** self.nb_scale
        self._model.fit(features.multiply(scale).tocsr(), list(labels))
        # (x * scale) . w == x . (w * scale): the saved model reads the unscaled features as before.
        self._model.coef_ = self._model.coef_ * scale
        self._digest = None
        self.classes_ = tuple(str(c) for c in self._model.classes_)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            raise NgramModelError("this language head is not fitted")
        if not texts:
            return np.zeros((0, len(self.classes_)))
        return self._proba([normalise_post(t) for t in texts])

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.classes_[i] for i in self.predict_proba(texts).argmax(axis=1)]

    # -- persistence --------------------------------------------------------------------
    def save(self, path: Path | str) -> Path:
        if self._model is None:
            raise NgramModelError("nothing to save: fit the head first")
        return write_model_file(Path(path), self._state())

    def _state(self) -> dict:
        chars, words = self._vectorizers
        return {
            "format": FORMAT, "language": self.language, "C": self.C, "min_df": self.min_df,
            "max_features": self.max_features,
            "prior": self.prior.version if self.prior is not None else None, "prior_weight": self.prior_weight,
            "nb_scale": self.nb_scale,
            "polarity": self.polarity.to_dict() if self.polarity is not None else None,
            "char_ngrams": list(self.char_ngrams), "word_ngrams": list(self.word_ngrams),
            "classes": list(self.classes_),
            # Vocabularies as lists in column order, so the idf and coefficient columns line up.
            "char_vocabulary": vocabulary_in_column_order(chars), "word_vocabulary": vocabulary_in_column_order(words),
            "char_idf": np.round(chars.idf_, 5).tolist(), "word_idf": np.round(words.idf_, 5).tolist(),
            "coef": np.round(self._model.coef_, 5).tolist(), "intercept": np.round(self._model.intercept_, 5).tolist(),
        }

    @classmethod
    def load(cls, path: Path | str, lexicon: Lexicon, prior: NgramSentiment | None = None) -> NgramSentiment:
        """`prior`: the model the head was fitted with, when it was fitted with one (checked by version)."""
        path = Path(path)
        try:
            data = read_model_file(path, FORMAT)
            wanted = data["prior"]
            if wanted is not None and (prior is None or prior.version != wanted):
                # Another prior's columns mean other numbers: a silently wrong sentiment.
                found = "none was given" if prior is None else f"not {prior.version!r}"
                raise NgramModelError(f"{path}: this head was fitted with the prior {wanted!r}, {found}: run "
                                      "`escalation-monitor train --heads-only`")
            head = cls(lexicon, C=data["C"], char_ngrams=_ngram_range(data, "char_ngrams"),
                       word_ngrams=_ngram_range(data, "word_ngrams"), min_df=data["min_df"],
                       max_features=data["max_features"], language=data["language"],
                       prior=prior if wanted is not None else None, prior_weight=_number(data, "prior_weight"),
                       nb_scale=_number(data, "nb_scale", 0.0))
            if data.get("polarity") is not None:
                head.polarity = PolarityLexicon.from_dict(data["polarity"], f"{path}: polarity")
            chars, words = _vectorizers(head.char_ngrams, head.word_ngrams, head.min_df, head.max_features)
            restore(chars, data["char_vocabulary"], data["char_idf"])
            restore(words, data["word_vocabulary"], data["word_idf"])
            coef = np.asarray(data["coef"], dtype=np.float64)
            columns = (len(data["char_vocabulary"]) + len(data["word_vocabulary"]) + lexicon.matrix([]).shape[1]
                       + (POLARITY_COLUMNS if head.polarity is not None else 0)
                       + (len(prior.classes_) if head.prior is not None else 0))
            if coef.shape != (len(data["classes"]), columns):
                raise ValueError(f"coefficients of shape {coef.shape} do not fit {columns} feature columns")
            intercept = np.asarray(data["intercept"], dtype=np.float64)
            if intercept.shape != (len(data["classes"]),):
                raise ValueError(f"{intercept.size} intercepts for {len(data['classes'])} classes")
        except FileNotFoundError:
            raise NgramModelError(f"{path}: language head file not found") from None
        except PolarityError as exc:
            raise NgramModelError(f"not a valid language head file: {exc}") from None
        except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise NgramModelError(f"{path}: not a valid language head file ({exc})") from None
        model = LogisticRegression(C=head.C, class_weight="balanced")
        model.classes_ = np.asarray(data["classes"])
        model.coef_ = coef
        model.intercept_ = intercept
        head._vectorizers, head._model, head.classes_ = (chars, words), model, tuple(data["classes"])
        return head
