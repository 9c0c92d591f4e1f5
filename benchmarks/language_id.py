"""How often language identification names a post's language, names none, or names another.

From the repository root:  .venv/bin/python -m benchmarks.language_id [--data ../shared/data] [--split val]

Posts come from files of known language: the Dutch MP tweets, TweetEval (English; with
`--split train`, UMSAB's English train file) and UMSAB's German, French, Spanish, Italian,
Portuguese and Hindi files. They are identified among the configuration's default languages (nl,
en, de, fr, es, it, pt; Hindi is not among them, so its posts can only be unnamed or wrong), as
the classify stage does for a post its source did not label. A post with no language goes to the
transformer and is checked against every trigger list; one with a wrong language gets that
language's head and trigger lists.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from classifiers.language import LanguageIdentifier
from classifiers.post import clean_text
from classifiers.training import UMSAB_CODES
from monitor.config import ClassifierConfig
from monitor.tsv import read_tsv

LANGUAGES = ClassifierConfig().languages
# UMSAB's files but English (TweetEval, or UMSAB's train file, below) and Arabic: in its own
# script it is never named among LANGUAGES (measured: every post none), so it tells nothing.
UMSAB = {code: name for name, code in UMSAB_CODES.items() if code not in ("en", "ar")}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", type=Path, default=Path("../shared/data"))
parser.add_argument("--split", choices=("val", "train"), default="val")
args = parser.parse_args()

sentiment = args.data / "sentiment"
files = {"nl": sentiment / "dutch_tweets_polarity.tsv",
         "en": sentiment / ("tweeteval_val.tsv" if args.split == "val" else "umsab/english_train.tsv"),
         **{code: sentiment / "umsab" / f"{name}_{args.split}.tsv" for code, name in UMSAB.items()}}
identifier = LanguageIdentifier(LANGUAGES)
for code, path in files.items():
    texts = [clean_text(row["text"]) for row in read_tsv(path, ("text",))]
    found = Counter(identifier.identify(text) for text in texts)
    wrong = len(texts) - found[code] - found[None]
    print(json.dumps({"lang": code, "file": path.name, "n": len(texts), "named": round(found[code] / len(texts), 3),
                      "none": round(found[None] / len(texts), 3), "wrong": round(wrong / len(texts), 3),
                      "wrong_as": dict(Counter({k: v for k, v in found.items() if k not in (code, None)}).most_common(3))}))
