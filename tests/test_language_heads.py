"""Language heads: n-gram sentiment for languages the bundled encoder reads poorly (Dutch)."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from classifiers.bundled import COMPLAINT_HEAD, BundledModel, language_head_path, load_language_heads, load_prior
from classifiers.complaint_head import ComplaintHead, ComplaintInputs
from classifiers.lexicon import SENTIMENT_LABELS, Lexicon, LexiconComplaint
from classifiers.minilm import DEFAULT_WEIGHTS, MiniLMClassifier
from classifiers.ngram import NgramModelError, NgramSentiment
from classifiers.polarity import PolarityError, PolarityLexicon, polarity_for
from classifiers.post import PostClassifier, PostText
from monitor.config import bundled_config_dir
from tests.support import rewrite_model_file

HOSTILE = ["", " ", "\x00\xff\ufffe" * 50, "a" * 100_000, "🙂" * 500, "<!channel> <@U123> ```"]
# Small enough to learn exactly: each class has its own words.
TRAIN = [("Wat een slechte service, echt waardeloos", "negative"), ("Slecht, waardeloos en traag", "negative"),
         ("Waardeloze storing weer, slecht geregeld", "negative"), ("De vergadering begint om negen uur", "neutral"),
         ("Morgen om negen uur de vergadering", "neutral"), ("Vergadering verplaatst naar negen uur", "neutral"),
         ("Geweldig, dank jullie wel, super geholpen", "positive"), ("Super, geweldig gedaan, dank", "positive"),
         ("Dank voor de geweldige hulp, super", "positive")]


@pytest.fixture(scope="module")
def lexicon():
    return Lexicon(bundled_config_dir() / "lexicons")


# The prior's own language: the head below never sees these words.
PRIOR_TRAIN = [("terrible awful day", "negative"), ("awful, just terrible", "negative"), ("so terrible :(", "negative"),
               ("the train leaves at ten", "neutral"), ("at ten the train leaves", "neutral"), ("train at ten", "neutral"),
               ("lovely great day :)", "positive"), ("great, just lovely", "positive"), ("so lovely :)", "positive")]


@pytest.fixture(scope="module")
def head(lexicon):
    texts, labels = zip(*TRAIN)
    return NgramSentiment(lexicon, C=10.0, min_df=1, language="nl").fit(list(texts), list(labels))


@pytest.fixture(scope="module")
def prior(lexicon):
    texts, labels = zip(*PRIOR_TRAIN)
    return NgramSentiment(lexicon, C=10.0, min_df=1, max_features=50, language="crosslingual").fit(list(texts), list(labels))


@pytest.fixture(scope="module")
def head_with_prior(lexicon, prior):
    texts, labels = zip(*TRAIN)
    return NgramSentiment(lexicon, C=10.0, min_df=1, language="nl", prior=prior).fit(list(texts), list(labels))


def test_head_learns_shapes_and_labels(head):
    assert head.classes_ == SENTIMENT_LABELS
    probs = head.predict_proba(["echt slecht en waardeloos", "super geweldig, dank", "vergadering om negen uur"])
    assert probs.shape == (3, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert head.predict(["echt slecht en waardeloos", "super geweldig, dank", "vergadering om negen uur"]) == \
        ["negative", "positive", "neutral"]


def test_head_on_hostile_input(head):
    probs = head.predict_proba(HOSTILE)
    assert probs.shape == (len(HOSTILE), 3) and np.isfinite(probs).all()
    assert head.predict_proba([]).shape == (0, 3)


def test_head_needs_two_labels_and_a_fit(lexicon):
    with pytest.raises(ValueError, match="at least two different labels"):
        NgramSentiment(lexicon).fit(["a", "b"], ["negative", "negative"])
    with pytest.raises(NgramModelError, match="not fitted"):
        NgramSentiment(lexicon).predict(["a"])


def test_head_save_and_load_round_trip(head, lexicon, tmp_path):
    path = head.save(tmp_path / "nl_sentiment.json.gz")
    loaded = NgramSentiment.load(path, lexicon)
    texts = [t for t, _ in TRAIN] + ["iets heel anders"]
    assert np.allclose(loaded.predict_proba(texts), head.predict_proba(texts), atol=1e-4)
    assert loaded.language == "nl" and loaded.version == head.version
    assert head.save(tmp_path / "again.json.gz").read_bytes() == path.read_bytes()  # reproducible bytes


def test_prior_log_probabilities_are_three_more_columns(head, head_with_prior, prior):
    texts = ["so terrible", "echt slecht en waardeloos", ""]
    with_prior = head_with_prior._features(texts).toarray()
    assert with_prior.shape[1] == head._features(texts).shape[1] + 3
    assert np.allclose(with_prior[:, -3:], 0.5 * np.log(prior.predict_proba(texts) + 1e-3))
    assert head_with_prior.version.startswith("nl-") and head_with_prior.version.endswith(f"+{prior.version}")
    assert len(prior._vectorizers[0].vocabulary_) == 50  # max_features bounds the vocabulary


def test_naive_bayes_scaling_is_folded_into_the_saved_coefficients(head, lexicon, tmp_path):
    from sklearn.linear_model import LogisticRegression

    from classifiers.tfidf import nb_log_count_ratio

    texts, labels = (list(column) for column in zip(*TRAIN))
    scaled = NgramSentiment(lexicon, C=10.0, min_df=1, language="nl", nb_scale=0.5).fit(texts, labels)
    probe = texts + ["slecht maar super", "iets heel anders"]
    # What the head must equal: a regression fitted on, and reading, the scaled n-gram columns.
    features = scaled._features(probe).toarray()
    n_grams = sum(len(v.vocabulary_) for v in scaled._vectorizers)
    scale = np.ones(features.shape[1])
    scale[:n_grams] = nb_log_count_ratio(scaled._features(texts)[:, :n_grams], labels) ** 0.5
    reference = LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced").fit(features[:len(texts)] * scale, labels)
    assert np.allclose(scaled.predict_proba(probe), reference.predict_proba(features * scale), atol=1e-4)
    assert not np.allclose(scaled.predict_proba(probe), head.predict_proba(probe), atol=1e-3)
    loaded = NgramSentiment.load(scaled.save(tmp_path / "nl_sentiment.json.gz"), lexicon)
    assert loaded.nb_scale == 0.5
    assert np.allclose(loaded.predict_proba(probe), scaled.predict_proba(probe), atol=1e-4)


def test_head_with_prior_round_trip_needs_that_prior(head_with_prior, prior, lexicon, tmp_path):
    path = head_with_prior.save(tmp_path / "nl_sentiment.json.gz")
    loaded = NgramSentiment.load(path, lexicon, NgramSentiment.load(prior.save(tmp_path / "prior.json.gz"), lexicon))
    texts = [t for t, _ in TRAIN] + ["so terrible", "\x00" * 40]
    assert np.allclose(loaded.predict_proba(texts), head_with_prior.predict_proba(texts), atol=1e-4)
    with pytest.raises(NgramModelError, match="fitted with the prior .*none was given.*train --heads-only"):
        NgramSentiment.load(path, lexicon)
    other = NgramSentiment(lexicon, min_df=1, max_features=20).fit(*zip(*PRIOR_TRAIN))
    with pytest.raises(NgramModelError, match=f"not '{other.version}'"):
        NgramSentiment.load(path, lexicon, other)
    with pytest.raises(NgramModelError, match="prior is not fitted"):
        NgramSentiment(lexicon, prior=NgramSentiment(lexicon)).fit(*zip(*TRAIN))


@pytest.mark.parametrize("spoil, message", [
    (lambda p: p.write_bytes(b"not gzip"), "not a valid language head file"),
    (lambda p: rewrite_model_file(p, lambda d: d.update(format="other/9")), "format 'other/9'"),
    (lambda p: rewrite_model_file(p, lambda d: d.update(coef=[[0.0]] * 3)), "do not fit"),
    (lambda p: rewrite_model_file(p, lambda d: d.pop("char_idf")), "not a valid language head file"),
    (lambda p: p.unlink(), "language head file not found"),
    # A damaged deflate stream (an invalid block type right after the header): zlib's own error.
    (lambda p: p.write_bytes(gzip.compress(b'{"format": 1}')[:10] + b"\xff" * 20), "damaged gzip stream"),
    (lambda p: rewrite_model_file(p, lambda d: d.update(intercept=[float("nan")] * 3)), "not a number"),
    (lambda p: p.write_bytes(gzip.compress(b" " * (65 * 1024 * 1024))), "unpacks to more than 64 MB"),
    (lambda p: p.write_bytes(gzip.compress(b"[" * 200_000)), "nested deeper"),
    (lambda p: rewrite_model_file(p, lambda d: d.update(intercept=[0.0, 0.0])), "2 intercepts for 3 classes"),
    (lambda p: rewrite_model_file(p, lambda d: d.update(prior_weight="0.5")), "prior_weight '0.5' is not a number"),
    (lambda p: rewrite_model_file(p, lambda d: d.update(char_ngrams=[5, 2])), r"char_ngrams \[5, 2\] is not a range"),
])
def test_bad_head_file_is_named(head, lexicon, tmp_path, spoil, message):
    path = head.save(tmp_path / "nl_sentiment.json.gz")
    spoil(path)
    with pytest.raises(NgramModelError, match=message) as info:
        NgramSentiment.load(path, lexicon)
    assert "nl_sentiment.json.gz" in str(info.value)


def test_a_prior_changed_in_any_number_is_refused_by_the_heads_fitted_with_it(lexicon, tmp_path):
    from classifiers.bundled import CROSSLINGUAL_PRIOR, language_head_path

    shipped = NgramSentiment.load(CROSSLINGUAL_PRIOR, lexicon)
    changed = tmp_path / CROSSLINGUAL_PRIOR.name
    changed.write_bytes(CROSSLINGUAL_PRIOR.read_bytes())
    rewrite_model_file(changed, lambda d: d.update(intercept=[v + 1.0 for v in d["intercept"]]))
    other = NgramSentiment.load(changed, lexicon)
    assert other.version != shipped.version
    NgramSentiment.load(language_head_path("fr"), lexicon, shipped)
    with pytest.raises(NgramModelError, match="fitted with the prior"):
        NgramSentiment.load(language_head_path("fr"), lexicon, other)


def test_a_save_that_fails_leaves_the_previous_file(head, lexicon, tmp_path):
    path = head.save(tmp_path / "nl_sentiment.json.gz")
    before = path.read_bytes()
    broken = NgramSentiment.load(path, lexicon)
    broken._model.intercept_ = np.array([np.nan, 0.0, 0.0])
    with pytest.raises(ValueError):
        broken.save(path)  # NaN is no JSON number: refused rather than written
    assert path.read_bytes() == before and [f.name for f in tmp_path.iterdir()] == [path.name]


POLARITY = PolarityLexicon("nl", {"fantastisch": 0.8, "rampzalig": -0.9, "matig": -0.3}, frozenset({"niet", "geen"}))


def test_polarity_columns_sum_each_side_and_a_negator_flips_the_word():
    columns = POLARITY.matrix(["Fantastisch! Echt fantastisch", "niet zo fantastisch, en matig", "rampzalig",
                               "niets bekends", ""])
    assert np.allclose(columns, np.log1p([[1.6, 0], [0, 1.1], [0, 0.9], [0, 0], [0, 0]]))
    # Three words on: no longer negated.
    assert np.allclose(POLARITY.matrix(["niet dat het zo fantastisch was"]), np.log1p([[0.8, 0]]))


def test_polarity_columns_are_read_and_saved_inside_the_head(head, lexicon, tmp_path):
    texts, labels = (list(column) for column in zip(*TRAIN))
    with_polarity = NgramSentiment(lexicon, C=10.0, min_df=1, language="nl", polarity=POLARITY).fit(texts, labels)
    probe = texts + ["rampzalig", "fantastisch", "niet fantastisch"]
    features = with_polarity._features(probe).toarray()
    lexicon_end = head._features(probe).shape[1]  # the same columns without the list
    assert features.shape[1] == lexicon_end + 2
    assert np.allclose(features[:, lexicon_end:], POLARITY.matrix(probe))
    loaded = NgramSentiment.load(with_polarity.save(tmp_path / "nl_sentiment.json.gz"), lexicon)
    assert loaded.polarity == POLARITY  # the list travels in the head's file
    assert np.allclose(loaded.predict_proba(probe), with_polarity.predict_proba(probe), atol=1e-4)


def test_bad_polarity_list_is_named(tmp_path, lexicon):
    path = tmp_path / "nl.yaml"
    path.write_text("language: nl\nnegators: [niet]\npolarity: {goed: 3}\n")
    with pytest.raises(PolarityError, match="nl.yaml: polarity of 'goed' outside"):
        PolarityLexicon.read(path)
    path.write_text("language: nl\npolarity: [goed]\n")
    with pytest.raises(PolarityError, match="nl.yaml: not a polarity list"):
        PolarityLexicon.read(path)
    with pytest.raises(PolarityError, match="not found"):
        PolarityLexicon.read(tmp_path / "missing.yaml")
    saved = NgramSentiment(lexicon, min_df=1, language="nl", polarity=POLARITY).fit(*zip(*TRAIN))
    spoilt = saved.save(tmp_path / "nl_sentiment.json.gz")
    rewrite_model_file(spoilt, lambda d: d["polarity"].update(polarity={"goed": "heel"}))
    with pytest.raises(NgramModelError, match="nl_sentiment.json.gz: polarity: not a polarity list"):
        NgramSentiment.load(spoilt, lexicon)


def test_shipped_dutch_polarity_list_reads_dutch():
    dutch = polarity_for("nl")
    assert dutch.language == "nl" and len(dutch.words) > 2000 and polarity_for("en") is None
    positive, negative = dutch.features("Wat een fantastisch idee, niet slecht")
    assert positive == pytest.approx(0.5 + 0.7) and negative == 0


def test_shipped_heads_load_with_the_shipped_prior(lexicon):
    heads = load_language_heads(lexicon)
    assert set(heads) == {"nl", "fr", "es", "it", "pt"}
    for lang, head in heads.items():
        assert head.classes_ == SENTIMENT_LABELS and head.language == lang and language_head_path(lang).is_file()
        assert head.prior is not None and head.prior.language == "crosslingual"
        assert head.predict_proba(HOSTILE).shape == (len(HOSTILE), 3)
        assert (head.polarity is not None) == (lang == "nl")  # fitted with the list of its language


def test_bundled_model_routes_sentiment_by_language(head, lexicon):
    # Float weights: int8 activations are scaled per batch, so the int8 model's probabilities
    # depend a little on a post's batchmates, and the bundled model batches each core's share apart.
    transformer = MiniLMClassifier(quantize=False)
    complaint_head = ComplaintHead.load(COMPLAINT_HEAD, lexicon)
    model = BundledModel(transformer, complaint_head, {"nl": head})
    texts = ["echt slecht en waardeloos", "This is wonderful, thank you!", "echt slecht en waardeloos"]
    out = model.predict_all(texts, ["nl", "en", None])
    alone = transformer.predict_all(texts)
    assert np.allclose(out["sentiment"][0], head.predict_proba(texts[:1])[0])
    assert np.allclose(out["sentiment"][1:], alone["sentiment"][1:], atol=1e-4)  # English and unknown: the transformer
    inputs = ComplaintInputs(transformer.features(texts), alone["sentiment"], texts)
    assert np.allclose(out["complaint"], complaint_head.predict_proba(inputs), atol=1e-5)  # whatever the language
    assert model.name == "minilm-l6-lora-float32+nl-ngram"  # float weights, as above
    with pytest.raises(ValueError, match="one language"):
        model.predict_all(texts, ["nl"])


def test_sentiment_of_a_post_lingua_is_unsure_of_is_weighted_over_its_languages(head, lexicon):
    transformer = MiniLMClassifier(quantize=False)
    complaint_head = ComplaintHead.load(COMPLAINT_HEAD, lexicon)
    spanish = NgramSentiment(lexicon, C=10.0, min_df=1, language="es").fit(*zip(*PRIOR_TRAIN))
    model = BundledModel(transformer, complaint_head, {"nl": head, "es": spanish}, LexiconComplaint(lexicon))
    texts = ["echt slecht en waardeloos, so terrible", "echt slecht en waardeloos, so terrible", "super geweldig"]
    weights = [{"nl": 0.6, "es": 0.3, "de": 0.1}, {"nl": 0.995, "es": 0.005}, None]
    out = model.predict_all(texts, ["nl", "nl", "nl"], weights)
    alone = model.predict_all(texts, ["nl", "nl", "nl"])
    transformer_reads = transformer.predict_all(texts[:1])["sentiment"][0]
    expected = (0.6 * head.predict_proba(texts[:1])[0] + 0.3 * spanish.predict_proba(texts[:1])[0]
                + 0.1 * transformer_reads)  # German has no head: the transformer reads it
    assert np.allclose(out["sentiment"][0], expected, atol=1e-4)
    # Under MIN_LANGUAGE_WEIGHT a language is left out; the rest are renormalised.
    assert np.allclose(out["sentiment"][1], head.predict_proba(texts[1:2])[0], atol=1e-6)
    assert np.allclose(out["sentiment"][2], alone["sentiment"][2])  # no weights: the language decides
    assert np.allclose(out["complaint"], alone["complaint"])  # the first choice decides complaints
    with pytest.raises(ValueError, match="one set of language weights"):
        model.predict_all(texts, ["nl"] * 3, weights[:1])


def test_post_classifier_weighs_languages_only_where_lingua_named_them():
    classifier = PostClassifier(bundled_config_dir(), ["nl", "en", "es", "pt"], "bundled")
    text = "a internet caiu de novo"  # lingua: Portuguese first, Spanish close
    confidences = classifier.language.confidences(text)
    assert list(confidences)[0] == "pt" and 0.3 <= confidences["pt"] < 0.9 and confidences["es"] > 0.05
    assert sum(confidences.values()) == pytest.approx(1.0)
    detected, tagged = classifier.classify([PostText(1, text, None), PostText(2, text, "pt")])
    assert detected.lang == tagged.lang == "pt"
    heads = classifier._bundled.language_heads
    portuguese = dict(zip(SENTIMENT_LABELS, heads["pt"].predict_proba([text])[0]))
    assert tagged.sentiment_scores == {k: pytest.approx(v, abs=1e-4) for k, v in portuguese.items()}
    assert detected.sentiment_scores != tagged.sentiment_scores  # the Spanish head read it too
    assert classifier.language.confidences("ok") == {} and classifier.language.first_choice({}) is None


def test_dutch_complaints_also_come_from_the_term_lists(head, lexicon):
    transformer = MiniLMClassifier(quantize=False)
    complaint_head = ComplaintHead.load(COMPLAINT_HEAD, lexicon)
    terms = LexiconComplaint(lexicon)
    model = BundledModel(transformer, complaint_head, {"nl": head}, terms)
    texts = ["Geen internet in Arnhem. Klantenservice onbereikbaar. Lekker dan.", "My order never arrived, again"]
    out = model.predict_all(texts, ["nl", "en"])
    alone = BundledModel(transformer, complaint_head, {"nl": head}).predict_all(texts, ["nl", "en"])
    from_terms = terms.predict_proba(texts[:1])[0, 1]
    assert from_terms > 0.5 > alone["complaint"][0, 1]  # the head, trained on English, misses it
    assert out["complaint"][0, 1] == pytest.approx(from_terms)
    assert np.allclose(out["complaint"][1], alone["complaint"][1])  # English: the head alone
    assert np.allclose(out["complaint"].sum(axis=1), 1.0)


def test_posts_without_a_word_are_read_by_the_wordless_reader(head, lexicon):
    transformer = MiniLMClassifier(quantize=False)
    complaint_head = ComplaintHead.load(COMPLAINT_HEAD, lexicon)
    prior = load_prior(lexicon)
    model = BundledModel(transformer, complaint_head, {"nl": head}, wordless_reader=prior)
    without = BundledModel(transformer, complaint_head, {"nl": head})
    texts = ["😡😡😡", "@KLM 😍😍 https://t.co/x", "😡😡😡", "This is wonderful 😡", "echt slecht"]
    langs = [None, "en", "nl", "en", "nl"]
    out, alone = model.predict_all(texts, langs), without.predict_all(texts, langs)
    # Whatever language the source gave: the Dutch head has no Dutch word to read.
    assert np.allclose(out["sentiment"][:3], prior.predict_proba(texts[:3]), atol=1e-6)
    assert np.allclose(out["sentiment"][3:], alone["sentiment"][3:])  # posts with words: as before
    assert np.allclose(out["complaint"], without.predict_all(texts, [None, "en", None, "en", "nl"])["complaint"])
    # To the encoder both are unknown tokens alone, read alike; the prior tells them apart.
    assert np.allclose(alone["sentiment"][0], transformer.predict_all(["😍😍😍"])["sentiment"][0], atol=1e-4)
    assert model.predict_all(["😡😡", "😍😍"], [None, None])["sentiment"].argmax(axis=1).tolist() == [0, 2]


def test_the_bundled_model_reads_emoji_alone():
    classifier = PostClassifier(bundled_config_dir(), ["nl", "en"], "bundled")
    angry, happy = classifier.classify([PostText(1, "@acme_care 😡😡😡🤬", None), PostText(2, "😍😍 ❤️", None)])
    assert (angry.sentiment, happy.sentiment) == ("negative", "positive")


def test_each_core_scores_a_share_and_the_rows_come_back_in_order(head, lexicon):
    transformer = MiniLMClassifier(quantize=False, batch_size=2, num_threads=3)
    model = BundledModel(transformer, ComplaintHead.load(COMPLAINT_HEAD, lexicon), {"nl": head}, LexiconComplaint(lexicon))
    texts = ["echt slecht en waardeloos", "This is wonderful, thank you!", "Geen internet, ik ga opzeggen",
             "My order never arrived, again", "ok", "Super, geweldig gedaan, dank", "meh " * 40]
    langs = ["nl", "en", "nl", None, "en", "nl", "en"]
    shared = model.predict_all(texts, langs)  # three shares
    transformer.num_threads = 1
    alone = model.predict_all(texts, langs)
    for key in ("sentiment", "complaint"):
        assert shared[key].shape == alone[key].shape
        assert np.allclose(shared[key], alone[key], atol=1e-4)


def test_post_classifier_reads_dutch_with_the_head():
    classifier = PostClassifier(bundled_config_dir(), ["nl", "en"], "bundled")
    dutch, english = classifier.classify([
        PostText(1, "Al drie weken geen internet en niemand helpt, ik ben er helemaal klaar mee", None),
        PostText(2, "Thank you so much, the new app is great and support was wonderful!", None)])
    assert dutch.lang == "nl" and english.lang == "en"
    assert dutch.model == english.model and "+nl-ngram+" in dutch.model and dutch.model.startswith("minilm-l6-lora+")
    assert len(dutch.model_version) <= 64  # the store's column
    assert english.sentiment == "positive"


def test_near_copies_of_scored_posts_are_found():
    from classifiers.training import drop_near_duplicates, near_duplicate_mask

    scored = ["Also the correct Top 5 is Eminem, Jay-Z, 2Pac and Ice Cube in that order", "I want IHOP tomorrow morning"]
    training = [("\"Also the correct top 5 is Eminem, Jay-Z, 2Pac and Ice Cube in that order with\"", "neutral"),
                ("i want IHOP tomorrow morning :(", "negative"),
                ("Ice Cube's son better be in the new Friday movie", "neutral"),  # same topic, another post
                ("@glaslijn internet ligt er weer uit", "negative")]
    assert near_duplicate_mask([t for t, _ in training], scored).tolist() == [True, True, False, False]
    assert drop_near_duplicates(training, scored) == training[2:]
    assert near_duplicate_mask([], scored).shape == (0,) and not near_duplicate_mask(["x"], []).any()


COMPLAINTS = [("my order never arrived", 1), ("nice weather today", 0), ("refund me now, the app is broken again", 1),
              ("lovely concert last night", 0), ("third day without internet and nobody answers", 1),
              ("see you at the meeting", 0)]


def _public_data(folder):
    """The layout of ../shared/data, a few rows per file."""
    sentiment = folder / "sentiment"
    (sentiment / "umsab").mkdir(parents=True)
    (folder / "complaints").mkdir()
    rows = "".join(f"{label}\t{text}\n" for text, label in TRAIN)
    # Scored files differ from the training rows: training drops near copies of scored posts.
    scored = "label\ttext\nnegative\tthe worst delivery ever\npositive\tlovely helpful staff\n"
    (sentiment / "semeval_2013_2016_train.tsv").write_text(
        "id\tlabel\ttext\tsplit\n" + "".join(f"{i}\t{label}\t{text}\ttrain\n" for i, (text, label) in enumerate(TRAIN)))
    (sentiment / "tweeteval_val.tsv").write_text(scored)
    for lang in ("arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish"):
        (sentiment / "umsab" / f"{lang}_train.tsv").write_text("label\ttext\n" + rows)
        (sentiment / "umsab" / f"{lang}_val.tsv").write_text(scored)
    (sentiment / "dutch_tweets_polarity.tsv").write_text("label\ttext\n" + rows * 2)
    (folder / "complaints" / "complaints_dev.tsv").write_text("id\ttext\tis_complaint\tdomain\n" + "".join(
        f"{i}\t{text}\t{label}\tretail\n" for i, (text, label) in enumerate(COMPLAINTS)))
    return folder


def test_train_heads_only_writes_a_loadable_head(tmp_path, lexicon):
    from typer.testing import CliRunner

    from monitor.cli import app

    data = _public_data(tmp_path / "data")
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--heads-dir", str(tmp_path / "models"),
                                      "--out", str(DEFAULT_WEIGHTS), "--heads-only", "--folds", "2",
                                      "--fold-splits", "3", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["dutch_head_cross_validated"]["n"] == 2 * len(TRAIN) and "recipe" not in report
    assert report["complaint_head_cross_validated"]["n"] == len(COMPLAINTS)
    for key in ("dutch_head_cross_validated", "complaint_head_cross_validated"):
        splits = report[key]["fold_splits"]
        assert splits["n"] == 3 and len(splits["macro_f1"]) == 3 and splits["macro_f1"][0] == report[key]["macro_f1"]
        assert splits["macro_f1_mean"] == pytest.approx(sum(splits["macro_f1"]) / 3)
    assert set(report["language_heads"]) == {"nl", "fr", "es", "it", "pt"}
    assert set(report["umsab_val_heads"]) == {"french", "spanish", "italian", "portuguese"}
    assert report["crosslingual_prior"] == str(tmp_path / "models" / "crosslingual_prior.json.gz")
    heads = load_language_heads(lexicon, tmp_path / "models")
    assert heads["nl"].predict(["echt slecht en waardeloos"]) == ["negative"]
    assert heads["fr"].language == "fr" and heads["fr"].prior.language == "crosslingual"
    complaint_head = ComplaintHead.load(tmp_path / "models" / "complaint_head.json.gz", lexicon)
    transformer = MiniLMClassifier(DEFAULT_WEIGHTS)
    assert complaint_head.adapter == transformer.version
    BundledModel(transformer, complaint_head, {})  # fits the adapter it was trained on


@pytest.mark.parametrize("runs", [1, None])  # None: the shipped recipe's number of runs
def test_train_writes_an_adapter_and_heads_that_fit_together(tmp_path, runs):
    """The whole `train` on miniature data (seconds): the complaint head is fitted on the adapter as saved."""
    from typer.testing import CliRunner

    from classifiers.bundled import load_bundled
    from classifiers.training import RECIPE, RECIPE_RUNS
    from monitor.cli import app

    data = _public_data(tmp_path / "data")
    models = tmp_path / "models"
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--heads-dir", str(models),
                                      "--out", str(models / DEFAULT_WEIGHTS.name), "--json",
                                      *(["--runs", str(runs)] if runs else [])])
    assert result.exit_code == 0, result.output
    runs = runs or RECIPE_RUNS
    report = json.loads(result.stdout)
    assert report["recipe"]["runs"] == runs and report["recipe"]["epochs"] == RECIPE["epochs"] / runs
    assert report["adapter_bytes"] == (models / DEFAULT_WEIGHTS.name).stat().st_size
    assert set(report["umsab_val"]) >= {"german", "french"} and report["tweeteval_val"]["n"] == 2
    model = load_bundled(Lexicon(bundled_config_dir() / "lexicons"), models)  # refuses a head of another adapter
    assert model.transformer.classes("sentiment") == SENTIMENT_LABELS
    assert model.transformer.spec_.rank == RECIPE["rank"] * runs  # the runs' factors stacked
    with pytest.raises(ValueError, match="task 'complaint' unknown"):  # complaints are the head's alone
        model.transformer.classes("complaint")
    assert model.predict_all(["my order never arrived"], ["en"])["complaint"].shape == (1, 2)


def test_train_heads_only_names_a_missing_adapter(tmp_path):
    from typer.testing import CliRunner

    from monitor.cli import app

    data = _public_data(tmp_path / "data")
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--heads-dir", str(tmp_path / "models"),
                                      "--out", str(tmp_path / "none.safetensors"), "--heads-only"])
    assert result.exit_code == 2 and "--out" in result.output and "adapter file not found" in result.output


def test_train_refuses_fold_splits_without_folds(tmp_path):
    from typer.testing import CliRunner

    from monitor.cli import app

    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nowhere"), "--heads-only", "--fold-splits", "3"])
    assert result.exit_code == 2 and "--fold-splits" in result.output and "--folds 2 or more" in result.output


def test_train_refuses_runs_with_heads_only(tmp_path):
    from typer.testing import CliRunner

    from monitor.cli import app

    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nowhere"), "--heads-only", "--runs", "2"])
    assert result.exit_code == 2 and "--runs" in result.output and "trains no runs" in result.output


def test_train_names_a_missing_data_folder(tmp_path):
    from typer.testing import CliRunner

    from monitor.cli import app

    result = CliRunner().invoke(app, ["train", "--data", str(tmp_path / "nowhere"), "--heads-only"])
    assert result.exit_code == 2 and "--data" in result.output


def test_an_edited_lexicon_is_another_model_version(lexicon, tmp_path):
    import shutil

    import yaml

    folder = tmp_path / "lexicons"
    shutil.copytree(bundled_config_dir() / "lexicons", folder)
    assert Lexicon(folder).version == lexicon.version
    folder = shutil.copytree(folder, tmp_path / "edited")  # term files are read once per path
    english = folder / "en.yaml"
    data = yaml.safe_load(english.read_text(encoding="utf-8"))
    data["negative"].append("meh")
    english.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    edited = Lexicon(folder)
    assert edited.version != lexicon.version

    def bundled(lex):
        return BundledModel(MiniLMClassifier(), ComplaintHead.load(COMPLAINT_HEAD, lex), {})

    assert bundled(edited).version != bundled(lexicon).version


def test_cross_validation_keeps_near_copies_in_one_fold():
    from classifiers.training import _folds, near_duplicate_groups

    texts = ["Het kabinet moet nu ingrijpen in de zorg", "het kabinet moet NU ingrijpen in de zorg!",
             "Mooie dag in Den Haag", "Geen woorden voor dit besluit", "Vandaag debat over de begroting",
             "RT: het kabinet moet nu ingrijpen in de zorg"]
    groups = near_duplicate_groups(texts)
    assert groups[0] == groups[1] == groups[5] and len(set(groups.tolist())) == 4
    for seed in range(5):
        folds = _folds(len(texts), 3, seed, groups)
        assert sorted(i for fold in folds for i in fold.tolist()) == list(range(len(texts)))
        assert sum(0 in fold and 1 in fold and 5 in fold for fold in folds) == 1
