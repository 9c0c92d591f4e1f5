"""The bundled default model: the MiniLM transformer, its complaint head, and language heads
where it reads poorly.

One encoder pass gives sentiment for every language and the layer features the complaint head
reads (`classifiers/models/complaint_head.json.gz`; it adds a tf-idf model of the text and the
lexicon cues). For a language with a head
(`classifiers/models/{lang}_sentiment.json.gz`), that head's sentiment replaces the
transformer's: the encoder's English vocabulary reads Dutch polarity worse (macro-F1 0.40
cross-validated) than n-grams learnt from 899 Dutch posts (0.65). The heads also read the
cross-lingual prior (`classifiers/models/crosslingual_prior.json.gz`). `escalation-monitor train`
writes all these files.

A post without a word (emoji, emoticons, a handle: "@KLM 😡😡😡") is only unknown tokens to
the encoder, which then reads "😡" and "😍" alike; the cross-lingual prior's character n-grams
learnt emoji from UMSAB's posts and the lexicon's emoji cues, so it reads such a post instead.

Where lingua, not the source, named a post's language, its sentiment is the mean of every
language's reading weighted by lingua's confidence in that language (the language marginalised
out): a post lingua holds 60 % Spanish and 40 % Portuguese is read by both heads. Through
`eval sentiment` (UMSAB validation, macro-F1, first choice only -> weighted, with the Dutch
head's polarity columns): es 0.595 -> 0.601, pt 0.602 -> 0.610, de 0.637 -> 0.649, it 0.610 ->
0.607, fr 0.620 either way, hi 0.309 -> 0.339; TweetEval macro recall 0.698 -> 0.701.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from classifiers.batching import cores
from classifiers.complaint_head import ComplaintHead, ComplaintHeadError
from classifiers.lexicon import SENTIMENT_LABELS, Lexicon, LexiconComplaint
from classifiers.minilm import DEFAULT_WEIGHTS, MiniLMClassifier
from classifiers.ngram import NgramSentiment
from classifiers.textnorm import has_words

MODELS_DIR = DEFAULT_WEIGHTS.parent
HEAD_SUFFIX = "_sentiment.json.gz"
COMPLAINT_HEAD = MODELS_DIR / "complaint_head.json.gz"
CROSSLINGUAL_PRIOR = MODELS_DIR / "crosslingual_prior.json.gz"
# A language of lower confidence is left out of a post's weighted sentiment: it would move the
# mean by less than this, and reading it costs a head's pass.
MIN_LANGUAGE_WEIGHT = 0.01


def language_head_path(language: str, folder: Path = MODELS_DIR) -> Path:
    return folder / f"{language}{HEAD_SUFFIX}"


def load_prior(lexicon: Lexicon, folder: Path = MODELS_DIR) -> NgramSentiment | None:
    """The cross-lingual prior shipped in `folder`, if there is one."""
    path = folder / CROSSLINGUAL_PRIOR.name
    return NgramSentiment.load(path, lexicon) if path.exists() else None


def load_language_heads(lexicon: Lexicon, folder: Path = MODELS_DIR,
                        prior: NgramSentiment | None = None) -> dict[str, NgramSentiment]:
    """Every head shipped in `folder`, by ISO 639-1 code, with the prior they read (default: the
    one in `folder`, when there is one)."""
    prior = prior or load_prior(lexicon, folder)
    return {path.name.removesuffix(HEAD_SUFFIX): NgramSentiment.load(path, lexicon, prior)
            for path in sorted(folder.glob(f"*{HEAD_SUFFIX}"))}


class BundledModel:
    """Sentiment and complaint probabilities; `langs` (one ISO code or None per text) picks the
    heads, and `language_weights` (per text: None, or confidences by ISO code) mixes them.

    For a language with a language head, a post's complaint probability is the higher of the
    complaint head's and `lexicon_complaint`'s (when given). `wordless_reader` (when given) reads
    the sentiment of posts without a word, in place of the transformer."""

    def __init__(self, transformer: MiniLMClassifier, complaint_head: ComplaintHead,
                 language_heads: Mapping[str, NgramSentiment], lexicon_complaint: LexiconComplaint | None = None,
                 wordless_reader: NgramSentiment | None = None):
        self.transformer = transformer
        self.complaint_head = complaint_head
        self.language_heads = dict(language_heads)
        self.lexicon_complaint = lexicon_complaint
        self.wordless_reader = wordless_reader
        for lang, head in [*self.language_heads.items(), ("wordless_reader", wordless_reader)]:
            if head is not None and set(head.classes_) != set(SENTIMENT_LABELS):
                raise ValueError(f"language head {lang!r} has labels {head.classes_}, expected {SENTIMENT_LABELS}")
        if complaint_head.adapter != transformer.version:
            # Features of another adapter mean other numbers: a silently wrong complaint score.
            raise ComplaintHeadError(f"the complaint head was fitted on adapter {complaint_head.adapter!r}, not on "
                                     f"{transformer.version!r} ({transformer.weights}): run `escalation-monitor train --heads-only`")

    @property
    def name(self) -> str:
        return "+".join([self.transformer.name, *(f"{lang}-ngram" for lang in sorted(self.language_heads))])

    @property
    def version(self) -> str:
        """One short hash of the adapter's, every head's and the lexicon's version: stored with each
        classification, so a change to any of them classifies the stored posts again."""
        parts = [self.transformer.version, *(self.language_heads[k].version for k in sorted(self.language_heads)),
                 self.complaint_head.lexicon.version]
        if self.wordless_reader is not None:
            parts.append(self.wordless_reader.version)
        return hashlib.sha256("+".join(parts).encode()).hexdigest()[:12]

    def predict_all(self, texts: Sequence[str], langs: Sequence[str | None],
                    language_weights: Sequence[Mapping[str, float] | None] | None = None) -> dict[str, np.ndarray]:
        """{"sentiment": (n, 3) in SENTIMENT_LABELS order, "complaint": (n, 2) as ("no", "yes")}.

        A text with `language_weights` gets the weighted mean of each language's sentiment (its
        head's, or the transformer's for a language without one), over the languages of weight
        `MIN_LANGUAGE_WEIGHT` or more; `langs` still decides its complaint probability.

        Each core (the transformer's `num_threads`, default: every core this process may use)
        scores its own share of the posts (every k-th) on one thread. Two shares at once kept 2
        cores busier than one share on two threads (10,000 tweets, Intel Xeon, torch's int8
        encoder: 370-417 against 324-326 posts/s): the tokenizer, the heads and the Python
        between the encoder's operations run for one share while the other's matrix products
        do. Int8 activations are scaled per batch, so a post's probabilities move a little with
        the posts it is batched with, as they did before."""
        if len(langs) != len(texts):
            raise ValueError("need one language (or None) per text")
        weights = list(language_weights) if language_weights is not None else [None] * len(texts)
        if len(weights) != len(texts):
            raise ValueError("need one set of language weights (or None) per text")
        self.transformer.load()  # once, before the workers, which would otherwise both quantize it
        workers = min(cores(self.transformer.num_threads), len(texts))
        # The head's matrix products run between encoder batches; OpenBLAS threads left spinning
        # after them took the cores from the encoder's (`eval complaints` 133 posts/s, 215-285 with one
        # thread). The limit is process-wide, so it is set here, around all the workers.
        with threadpool_limits(limits=1, user_api="blas"):
            if workers <= 1:
                return self._predict_share(texts, langs, weights, num_threads=None)

            def share(k: int) -> dict[str, np.ndarray]:
                rows = range(k, len(texts), workers)
                return self._predict_share([texts[i] for i in rows], [langs[i] for i in rows],
                                           [weights[i] for i in rows], num_threads=1)

            # This thread scores the first share itself: a thread fewer, so one malloc arena fewer
            # (peak RSS 932 MB against 1,046 with a thread per share, 10,000 posts).
            with ThreadPoolExecutor(workers - 1, thread_name_prefix="classify") as pool:
                others = pool.map(share, range(1, workers))
                results = [share(0), *others]
        out = {key: np.empty((len(texts), *part.shape[1:]), dtype=part.dtype) for key, part in results[0].items()}
        for k, result in enumerate(results):
            for key, part in result.items():
                out[key][k::workers] = part
        return out

    def _predict_share(self, texts: Sequence[str], langs: Sequence[str | None],
                       weights: Sequence[Mapping[str, float] | None], num_threads: int | None) -> dict[str, np.ndarray]:
        complaint = self.complaint_head
        out = self.transformer.predict_all(texts, feature_heads={"complaint_scores": complaint.encoder_scores},
                                           num_threads=num_threads)
        # The encoder's sentiment, before any language head replaces it: what the head was fitted on.
        out["complaint"] = complaint.predict_proba_from_scores(out.pop("complaint_scores"), out["sentiment"], texts)
        wordless = {i for i, text in enumerate(texts) if not has_words(text)} if self.wordless_reader else set()
        if wordless:
            reader, rows = self.wordless_reader, sorted(wordless)
            order = [reader.classes_.index(label) for label in SENTIMENT_LABELS]
            out["sentiment"][rows] = reader.predict_proba([texts[i] for i in rows])[:, order]
            # Whatever language the source gave, no head reads them: it would have no words to read.
            langs = [None if i in wordless else lang for i, lang in enumerate(langs)]
        kept = [{} if i in wordless else {code: w for code, w in (weight or {}).items() if w >= MIN_LANGUAGE_WEIGHT}
                for i, weight in enumerate(weights)]
        # The transformer's reading of the languages without a head, kept before the heads overwrite it.
        encoder_sentiment = out["sentiment"].copy() if any(kept) else None
        readings: dict[str, dict[int, np.ndarray]] = {}  # language -> row -> its head's sentiment
        for lang, head in self.language_heads.items():
            needed = [i for i, code in enumerate(langs) if code == lang or lang in kept[i]]
            if not needed:
                continue
            order = [head.classes_.index(label) for label in SENTIMENT_LABELS]
            readings[lang] = dict(zip(needed, head.predict_proba([texts[i] for i in needed])[:, order]))
            rows = [i for i in needed if langs[i] == lang]
            if rows:
                out["sentiment"][rows] = [readings[lang][i] for i in rows]
                if self.lexicon_complaint is not None:
                    # The complaint head learnt from English posts and misses most Dutch ones ("Geen
                    # internet in Arnhem. Lekker dan." 0.12); the term lists know the language.
                    lexicon = self.lexicon_complaint.predict_proba([texts[i] for i in rows])[:, 1]
                    yes = np.maximum(out["complaint"][rows, 1], lexicon)
                    out["complaint"][rows] = np.column_stack([1.0 - yes, yes])
        for i, mix in enumerate(kept):
            if mix:
                total = sum(mix.values())
                out["sentiment"][i] = sum(w * (readings[code][i] if code in readings else encoder_sentiment[i])
                                          for code, w in mix.items()) / total
        return out


def load_bundled(lexicon: Lexicon, folder: Path = MODELS_DIR, quantize: bool = True) -> BundledModel:
    """The shipped model: adapter, complaint head, language heads and the prior (which also reads
    posts without a word) from `folder`."""
    prior = load_prior(lexicon, folder)
    return BundledModel(MiniLMClassifier(folder / DEFAULT_WEIGHTS.name, quantize=quantize),
                        ComplaintHead.load(folder / COMPLAINT_HEAD.name, lexicon),
                        load_language_heads(lexicon, folder, prior), LexiconComplaint(lexicon), prior)
