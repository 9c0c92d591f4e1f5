"""The evaluation figures the project reports, computed one way for the eval CLI and training."""

from __future__ import annotations

from collections.abc import Sequence

from classifiers.lexicon import SENTIMENT_LABELS


def sentiment_report(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """n, macro recall (TweetEval's metric), macro F1 (UMSAB's) and accuracy, averaged over the
    labels that occur in `truth` or `predicted` (a file without neutral posts, all read right,
    scores 1, not 0.67)."""
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    labels = [label for label in SENTIMENT_LABELS if label in set(truth) | set(predicted)]
    return {"n": len(truth),
            "macro_recall": round(float(recall_score(truth, predicted, labels=labels, average="macro",
                                                     zero_division=0)), 4),
            "macro_f1": round(float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)), 4),
            "accuracy": round(float(accuracy_score(truth, predicted)), 4)}


def complaint_report(truth: Sequence, predicted: Sequence, positive) -> dict[str, float]:
    """n, macro F1, and precision and recall of the complaint class `positive`."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    return {"n": len(truth),
            "macro_f1": round(float(f1_score(truth, predicted, average="macro", zero_division=0)), 4),
            "precision": round(float(precision_score(truth, predicted, pos_label=positive, zero_division=0)), 4),
            "recall": round(float(recall_score(truth, predicted, pos_label=positive, zero_division=0)), 4)}
