"""A fitted TfidfVectorizer as plain lists for a JSON model file, and back.

The n-gram heads (`classifiers.ngram`) and the complaint head's text scorer
(`classifiers.complaint_scorers`) store their vectorizers this way: data, never a pickle.
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
