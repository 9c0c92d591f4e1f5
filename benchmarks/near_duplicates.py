"""How much of the bundled model's TweetEval score comes from near-copies of its training posts.

    .venv/bin/python -m benchmarks.near_duplicates [--data ../shared/data] [--model bundled]

SemEval 2013-2016 holds near-copies of TweetEval validation tweets (other quoting, case, a cut-off
end) that exact matching misses. `classifiers.training.Corpus` now keeps them out of training; the
shipped adapter was trained before that, with only exact copies removed. This scores a model on
the validation tweets with and without a near-copy in that training set, so the adapter can be
judged on the tweets it never saw.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from classifiers.metrics import sentiment_report
from classifiers.post import PostClassifier, clean_text
from classifiers.textnorm import normalise_post
from classifiers.training import UMSAB_LANGUAGES, near_duplicate_mask, read_tsv
from monitor.config import bundled_config_dir

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", type=Path, default=Path("../shared/data"))
parser.add_argument("--model", default="bundled", help="bundled, lexicon, or a Hugging Face name or folder")
args = parser.parse_args()

sentiment = args.data / "sentiment"
training = [r["text"] for r in read_tsv(sentiment / "semeval_2013_2016_train.tsv", ("label", "text", "split"))]
for lang in UMSAB_LANGUAGES:
    training += [r["text"] for r in read_tsv(sentiment / "umsab" / f"{lang}_train.tsv", ("label", "text"))]
rows = read_tsv(sentiment / "tweeteval_val.tsv", ("label", "text"))
texts, truth = [r["text"] for r in rows], np.array([r["label"] for r in rows])


def exact_key(text: str) -> str:
    return " ".join(normalise_post(text).lower().split())


exact = {exact_key(t) for t in texts}
copied = near_duplicate_mask(texts, [t for t in training if exact_key(t) not in exact])

classifier = PostClassifier(bundled_config_dir(), ["en", "nl", "de", "fr", "es", "it", "pt"], args.model)
probs, _ = classifier.scores([clean_text(t) for t in texts])
predicted = np.array(classifier.sentiment.classes_)[probs.argmax(axis=1)]


def report(mask: np.ndarray) -> dict:
    return {k: v for k, v in sentiment_report(list(truth[mask]), list(predicted[mask])).items()
            if k in ("n", "macro_recall", "macro_f1")}


print(json.dumps({"model": classifier.model_name, "all": report(np.ones(len(texts), dtype=bool)),
                  "without_near_copy_in_training": report(~copied), "with_near_copy": report(copied)}))
