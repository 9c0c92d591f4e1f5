"""N-gram columns shared by the n-gram heads (`classifiers.ngram`) and the complaint head's text
scorer (`classifiers.complaint_scorers`): a fitted TfidfVectorizer as plain lists for a JSON model
file and back (data, never a pickle), and the naive Bayes scale both give their columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer


def vocabulary_in_column_order(vectorizer: TfidfVectorizer) -> list[str]:
    """The terms in column order, so stored idf and coefficient columns line up with them."""
    return sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)


def restore(vectorizer: TfidfVectorizer, vocabulary: Sequence[str], idf) -> TfidfVectorizer:
    """`vectorizer` (unfitted, with the parameters it was fitted with) given a stored vocabulary
    and idf. Raises ValueError when they do not fit together."""
    terms = [str(term) for term in vocabulary]
    idf = np.asarray(idf, dtype=np.float64)
    if idf.shape != (len(terms),) or len(set(terms)) != len(terms):
        raise ValueError(f"a vocabulary of {len(terms)} terms ({len(set(terms))} different) and "
                         f"idf of shape {idf.shape} do not fit together")
    vectorizer.vocabulary_ = {term: i for i, term in enumerate(terms)}
    vectorizer.idf_ = idf
    return vectorizer


def nb_log_count_ratio(ngrams, labels: Sequence, alpha: float = 1.0) -> np.ndarray:
    """Per n-gram column, the largest |naive Bayes log-count ratio| over the classes, one against
    the rest (Wang & Manning 2012, on binarised counts): how much the column tells the classes
    apart. Scaling the columns by it before the regression weakens the penalty on telling n-grams."""
    present = ngrams.copy()
    present.data[:] = 1.0
    labels = np.asarray(labels)
    ratios = []
    for label in np.unique(labels):
        inside = np.asarray(present[labels == label].sum(axis=0)).ravel() + alpha
        outside = np.asarray(present[labels != label].sum(axis=0)).ravel() + alpha
        ratios.append(np.log((inside / inside.sum()) / (outside / outside.sum())))
    return np.abs(np.vstack(ratios)).max(axis=0)
