"""The complaint head's three base scorers; each gives one logit-like score per post.

- `KernelScorer`: an RBF-kernel SVM on the encoder's layer features, standardized and projected
  onto their first principal components (`Projection`; the full support vectors would be ~9 MB,
  and 128 components kept its cross-validated macro-F1 within 0.003 of them, 0.857 against 0.859;
  in the stack, 256 components gave 0.872 against 0.867 for 128, in a 1.8 MB head file);
- `LinearScorer`: a logistic regression on the same features (the head before the stack);
- `TextScorer`: a logistic regression on word and character tf-idf n-grams of the text, each
  column scaled while fitting by its naive Bayes log-count ratio to the power 0.5, as the language
  heads' are (`classifiers.ngram`): the stack's 5-fold cross-validated macro-F1, mean of fold
  splits 0-9, rose from 0.8670 to 0.8698, better on 8 of the 10 (AMD EPYC with AVX2, 2026-12-01;
  the power 0.75, or the strength chosen from 1, 3 and 10 by inner cross-validation: 0.8697, 0.8696).

Each has `fit(x, y)`, `decision(x)` and `state()` / `from_state(...)` for the model file. Stored
parameters are rounded when fitted (`round_trip`), so a loaded scorer gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from classifiers.model_file import decode_array, encode_array, round_trip
from classifiers.tfidf import nb_log_count_ratio, restore, vocabulary_in_column_order
from classifiers.textnorm import normalise_post

# Posts are short; a cap bounds the n-gram count of hostile input.
MAX_TEXT_CHARS = 2000
_WORD_TOKENS = r"(?u)\b\w+\b|[!?]"  # words of one letter and "!"/"?" carry complaint tone


def _logistic_regression(C: float):
    from sklearn.linear_model import LogisticRegression

    # Balanced: the complaint share of the training file is not a brand's.
    return LogisticRegression(C=C, max_iter=5000, class_weight="balanced")


def _spread(features: np.ndarray) -> np.ndarray:
    """Each column's standard deviation, or 1.0 where it barely varies. Two of the encoder's
    feature columns sit near 1e-32 for every post: divided by their own spread, rounding noise
    that differs between CPUs would become values as large as any real feature's."""
    spread = features.std(axis=0)
    return np.where(spread > 1e-6 * np.median(spread), spread, 1.0)


class Projection:
    """Standardized features onto their first principal components. It learns no labels, so the
    head fits it once on all its training rows, inner folds included."""

    def __init__(self, components: int = 256, seed: int = 0):
        self.components, self.seed = components, seed

    def fit(self, features: np.ndarray) -> Projection:
        from sklearn.decomposition import PCA

        self.mean_ = round_trip(features.mean(axis=0), "float32")
        self.scale_ = round_trip(_spread(features), "float32")
        k = min(self.components, len(features) - 1, features.shape[1])
        pca = PCA(k, svd_solver="randomized", random_state=self.seed).fit((features - self.mean_) / self.scale_)
        self.matrix_ = round_trip(pca.components_.T, "float16")
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean_) / self.scale_) @ self.matrix_

    @property
    def width(self) -> int:
        return len(self.mean_)

    def state(self) -> dict:
        return {"mean": encode_array(self.mean_, "float32"), "scale": encode_array(self.scale_, "float32"),
                "matrix": encode_array(self.matrix_, "float16")}

    @classmethod
    def from_state(cls, state: dict) -> Projection:
        projection = cls()
        projection.mean_, projection.scale_, projection.matrix_ = (decode_array(state[k]) for k in ("mean", "scale", "matrix"))
        width = len(projection.mean_)
        if not (projection.mean_.shape == projection.scale_.shape == (width,) and projection.matrix_.ndim == 2
                and projection.matrix_.shape[0] == width):
            raise ValueError("projection arrays do not fit together")
        return projection


class KernelScorer:
    """An RBF-kernel SVM on projected features (`Projection`)."""

    def __init__(self, C: float):
        self.C = C

    def fit(self, projected: np.ndarray, y: np.ndarray) -> KernelScorer:
        from sklearn.svm import SVC

        self.gamma_ = 1.0 / (projected.shape[1] * max(float(projected.var()), 1e-12))  # scikit-learn's gamma="scale"
        svm = SVC(C=self.C, kernel="rbf", gamma=self.gamma_, class_weight="balanced").fit(projected, y)
        self.support_ = round_trip(svm.support_vectors_, "float16")
        self.dual_ = round_trip(svm.dual_coef_[0], "float32")
        self.intercept_ = float(svm.intercept_[0])
        return self

    def decision(self, projected: np.ndarray) -> np.ndarray:
        distances = ((projected ** 2).sum(axis=1)[:, None] + (self.support_ ** 2).sum(axis=1)[None, :]
                     - 2.0 * projected @ self.support_.T)
        return np.exp(-self.gamma_ * np.maximum(distances, 0.0)) @ self.dual_ + self.intercept_

    def state(self) -> dict:
        return {"C": self.C, "gamma": self.gamma_, "intercept": self.intercept_,
                "support": encode_array(self.support_, "float16"), "dual": encode_array(self.dual_, "float32")}

    @classmethod
    def from_state(cls, state: dict) -> KernelScorer:
        scorer = cls(C=float(state["C"]))
        scorer.gamma_, scorer.intercept_ = float(state["gamma"]), float(state["intercept"])
        scorer.support_, scorer.dual_ = decode_array(state["support"]), decode_array(state["dual"])
        if scorer.support_.ndim != 2 or scorer.dual_.shape != (len(scorer.support_),):
            raise ValueError("kernel scorer arrays do not fit together")
        return scorer


class LinearScorer:
    def __init__(self, C: float):
        self.C = C

    def fit(self, features: np.ndarray, y: np.ndarray) -> LinearScorer:
        mean, spread = features.mean(axis=0), _spread(features)
        model = _logistic_regression(self.C).fit((features - mean) / spread, y)
        # Folded into one linear map, so inference is a single dot product.
        self.coef_ = round_trip(model.coef_[0] / spread, "float32")
        self.intercept_ = float(model.intercept_[0] - self.coef_ @ mean)
        return self

    def decision(self, features: np.ndarray) -> np.ndarray:
        return features @ self.coef_ + self.intercept_

    def state(self) -> dict:
        return {"C": self.C, "coef": encode_array(self.coef_, "float32"), "intercept": self.intercept_}

    @classmethod
    def from_state(cls, state: dict) -> LinearScorer:
        scorer = cls(C=float(state["C"]))
        scorer.coef_, scorer.intercept_ = decode_array(state["coef"]), float(state["intercept"])
        if scorer.coef_.ndim != 1:
            raise ValueError("linear scorer coefficients are not one row")
        return scorer


class TextScorer:
    """A logistic regression on sublinear word and character tf-idf; the vectorizers are stored as
    vocabulary and idf (`classifiers.tfidf`). `nb_scale` (0: off) is the power of the naive Bayes
    log-count ratio each column is scaled by while fitting; the scale is folded into the stored
    coefficients, so inference reads the plain tf-idf."""

    ANALYZERS = ({"analyzer": "word", "ngram_range": (1, 2), "token_pattern": _WORD_TOKENS},
                 {"analyzer": "char_wb", "ngram_range": (2, 5)})

    def __init__(self, C: float, nb_scale: float = 0.5):
        self.C, self.nb_scale = C, nb_scale

    @classmethod
    def _vectorizers(cls, min_df: int = 1) -> list[TfidfVectorizer]:
        return [TfidfVectorizer(**analyzer, min_df=min_df, sublinear_tf=True) for analyzer in cls.ANALYZERS]

    def fit(self, texts: Sequence[str], y: np.ndarray) -> TextScorer:
        texts = self._normalise(texts)
        min_df = 2 if len(texts) >= 100 else 1  # an n-gram counts once a second post has it
        self.vectorizers_ = [vectorizer.fit(texts) for vectorizer in self._vectorizers(min_df)]
        for vectorizer in self.vectorizers_:
            vectorizer.idf_ = round_trip(vectorizer.idf_, "float16")
        matrix = self._matrix(texts)
        scale = nb_log_count_ratio(matrix, y) ** self.nb_scale if self.nb_scale else np.ones(matrix.shape[1])
        model = _logistic_regression(self.C).fit(matrix.multiply(scale).tocsr(), y)
        # (x * scale) . w == x . (w * scale)
        self.coef_ = round_trip(model.coef_[0] * scale, "float16")
        self.intercept_ = float(model.intercept_[0])
        return self

    def decision(self, texts: Sequence[str]) -> np.ndarray:
        if not len(texts):  # scikit-learn's tf-idf refuses an empty batch
            return np.zeros(0)
        return self._matrix(self._normalise(texts)) @ self.coef_ + self.intercept_

    @staticmethod
    def _normalise(texts: Sequence[str]) -> list[str]:
        return [normalise_post(t[:MAX_TEXT_CHARS]).lower() for t in texts]

    def _matrix(self, texts: list[str]) -> sp.csr_matrix:
        return sp.hstack([vectorizer.transform(texts) for vectorizer in self.vectorizers_]).tocsr()

    def state(self) -> dict:
        return {"C": self.C, "nb_scale": self.nb_scale,
                "vocabularies": [vocabulary_in_column_order(v) for v in self.vectorizers_],
                "idf": [encode_array(v.idf_, "float16") for v in self.vectorizers_],
                "coef": encode_array(self.coef_, "float16"), "intercept": self.intercept_}

    @classmethod
    def from_state(cls, state: dict) -> TextScorer:
        scorer = cls(C=float(state["C"]), nb_scale=float(state["nb_scale"]))
        vocabularies, idf = state["vocabularies"], state["idf"]
        if len(vocabularies) != len(cls.ANALYZERS) or len(idf) != len(cls.ANALYZERS):
            raise ValueError(f"text scorer: {len(vocabularies)} vocabularies and {len(idf)} idf, "
                             f"expected {len(cls.ANALYZERS)} of each: they do not fit together")
        scorer.vectorizers_ = [restore(v, terms, decode_array(i))
                               for v, terms, i in zip(cls._vectorizers(), vocabularies, idf)]
        scorer.coef_, scorer.intercept_ = decode_array(state["coef"]), float(state["intercept"])
        columns = sum(len(v.vocabulary_) for v in scorer.vectorizers_)
        if scorer.coef_.shape != (columns,):
            raise ValueError(f"text scorer coefficients of shape {scorer.coef_.shape} and {columns} "
                             "vocabulary terms do not fit together")
        return scorer
