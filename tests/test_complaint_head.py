"""The complaint head: a stack over kernel, linear and text scorers, the encoder's sentiment and lexicon cues."""

from __future__ import annotations

import numpy as np
import pytest

from classifiers.bundled import COMPLAINT_HEAD, MODELS_DIR, BundledModel, load_bundled
from classifiers.complaint_head import THRESHOLDS, ComplaintHead, ComplaintHeadError, ComplaintInputs
from classifiers.lexicon import Lexicon
from classifiers.minilm import FEATURE_LAYERS, MiniLMClassifier
from classifiers.model_file import encode_array
from monitor.config import bundled_config_dir
from tests.support import rewrite_model_file

HOSTILE = ["", " ", "\x00\xff\ufffe" * 50, "a" * 100_000, "🙂" * 500, "<!channel> <@U123> ```"]
WORDS = ["order", "app", "today", "team", "delivery", "store", "week", "phone", "call", "update"]


@pytest.fixture(scope="module")
def lexicon():
    return Lexicon(bundled_config_dir() / "lexicons")


def _separable(n=60, width=8, seed=1):
    """Complaints are high in the first half of the feature columns; sentiment and texts are noise."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, width))
    labels = ["yes" if i % 3 == 0 else "no" for i in range(n)]
    features[:, :width // 2] += np.where(np.array(labels) == "yes", 3.0, -3.0)[:, None]
    sentiment = rng.dirichlet(np.ones(3), size=n)
    texts = [" ".join(rng.choice(WORDS, size=5)) for _ in range(n)]
    return ComplaintInputs(features, sentiment, texts), labels


@pytest.fixture(scope="module")
def head(lexicon):
    return ComplaintHead(lexicon, kernel_Cs=(0.3, 3.0), linear_Cs=(0.1, 1.0), components=4, adapter="abc").fit(*_separable())


def test_head_learns_and_gives_probabilities(head):
    inputs, labels = _separable(seed=2)
    probs = head.predict_proba(inputs)
    assert probs.shape == (len(labels), 2) and np.allclose(probs.sum(axis=1), 1.0)
    assert head.classes_ == ("no", "yes")
    assert head.predict(inputs) == labels
    # Chosen by inner cross-validation.
    assert head.kernel_.C in head.kernel_Cs and head.linear_.C in head.linear_Cs and head.threshold_ in THRESHOLDS
    assert head.projection_.matrix_.shape == (8, 4)


def test_threshold_is_folded_into_the_intercept(lexicon, monkeypatch):
    """Probability 0.5 is the tuned threshold: a head tuned to 0.3 is the 0.5 head shifted by logit(0.3)."""
    inputs, labels = _separable()
    probs = {}
    for threshold in (0.3, 0.5):
        monkeypatch.setattr("classifiers.complaint_head.THRESHOLDS", np.array([threshold]))
        head = ComplaintHead(lexicon, kernel_Cs=(1.0,), linear_Cs=(1.0,), components=4).fit(inputs, labels)
        assert head.threshold_ == threshold
        probs[threshold] = head.predict_proba(_separable(seed=5)[0])[:, 1]
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert np.allclose(logit(probs[0.3]) - logit(probs[0.5]), -logit(0.3))
    assert ((probs[0.3] >= 0.5) == (probs[0.5] >= 0.3)).all()


def test_in_one_pass_scores_and_text_give_the_same_probabilities(head):
    inputs, _ = _separable(seed=4)
    scores = head.encoder_scores(inputs.features)
    assert scores.shape == (len(inputs.texts), 2)
    assert np.array_equal(head.predict_proba_from_scores(scores, inputs.sentiment, inputs.texts), head.predict_proba(inputs))


def test_head_needs_both_labels_matching_rows_and_a_fit(lexicon):
    inputs, labels = _separable()
    with pytest.raises(ValueError, match="both labels"):
        ComplaintHead(lexicon).fit(inputs, ["no"] * len(labels))
    with pytest.raises(ValueError, match="one feature row, sentiment row and text per label"):
        ComplaintHead(lexicon).fit(ComplaintInputs(inputs.features, inputs.sentiment, inputs.texts[:-1]), labels)
    with pytest.raises(ComplaintHeadError, match="not fitted"):
        ComplaintHead(lexicon).predict_proba(inputs)


def test_head_with_too_few_examples_to_choose_uses_the_middle_strengths(lexicon):
    inputs, _ = _separable(n=4)
    head = ComplaintHead(lexicon).fit(inputs.rows(np.arange(2)), ["yes", "no"])
    assert head.kernel_.C == head.kernel_Cs[len(head.kernel_Cs) // 2] and head.threshold_ == 0.5
    assert head.predict_proba(inputs).shape == (4, 2)


def test_a_column_that_barely_varies_cannot_swing_the_scores(lexicon):
    """Two encoder feature columns sit near 1e-32 for every post; rounding that differs between
    CPUs must not move a post's complaint probability."""
    inputs, labels = _separable()
    features = inputs.features.copy()
    features[:, -1] = 5e-32 + 1e-34 * np.arange(len(features))
    head = ComplaintHead(lexicon, kernel_Cs=(1.0,), linear_Cs=(1.0,), components=4).fit(
        ComplaintInputs(features, inputs.sentiment, inputs.texts), labels)
    elsewhere = features.copy()
    elsewhere[:, -1] = 0.0
    probs = [head.predict_proba(ComplaintInputs(f, inputs.sentiment, inputs.texts))[:, 1] for f in (features, elsewhere)]
    assert np.allclose(probs[0], probs[1], atol=1e-6)


def test_wrong_feature_width_and_row_counts_are_clear_errors(head):
    inputs, _ = _separable(n=3)
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        head.encoder_scores(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="one row of scores and of sentiment per text"):
        head.predict_proba_from_scores(np.zeros((2, 2)), inputs.sentiment, inputs.texts)


def test_hostile_texts_give_finite_probabilities(head):
    n = len(HOSTILE)
    inputs = ComplaintInputs(np.zeros((n, 8)), np.full((n, 3), 1 / 3), HOSTILE)
    probs = head.predict_proba(inputs)
    assert probs.shape == (n, 2) and np.isfinite(probs).all()
    assert head.predict_proba(inputs.rows(np.arange(0))).shape == (0, 2)


def test_save_and_load_round_trip(head, lexicon, tmp_path):
    path = head.save(tmp_path / "complaint_head.json.gz")
    loaded = ComplaintHead.load(path, lexicon)
    inputs, _ = _separable(seed=3)
    assert np.array_equal(loaded.predict_proba(inputs), head.predict_proba(inputs))  # stored values were fitted
    assert loaded.adapter == "abc" and loaded.version == head.version and loaded.threshold_ == head.threshold_
    assert head.save(tmp_path / "again.json.gz").read_bytes() == path.read_bytes()  # reproducible bytes


def test_any_number_that_moves_a_score_is_another_version(head, lexicon, tmp_path):
    from tests.support import rewrite_model_file

    path = head.save(tmp_path / "complaint_head.json.gz")
    versions = {ComplaintHead.load(path, lexicon).version}
    for change in (lambda d: d["stacker"].update(intercept=d["stacker"]["intercept"] + 3),
                   lambda d: d.update(threshold=0.9)):
        rewrite_model_file(path, change)
        versions.add(ComplaintHead.load(path, lexicon).version)
    assert len(versions) == 3


def test_text_scorer_folds_its_naive_bayes_scale_into_the_stored_coefficients():
    from sklearn.linear_model import LogisticRegression

    from classifiers.complaint_scorers import TextScorer
    from classifiers.tfidf import nb_log_count_ratio

    texts = ["my order never arrived", "refund me now", "still no refund for my order", "love the new app",
             "great team, thanks", "the app update is great", "no answer to my call again", "thanks for the call"]
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0])
    probe = texts + ["refund the app", "something else entirely"]
    scaled, plain = (TextScorer(C=10.0, nb_scale=power).fit(texts, y) for power in (0.5, 0.0))
    # What the scorer must equal: a regression fitted on, and reading, the scaled columns.
    matrix = scaled._matrix(scaled._normalise(texts))
    scale = nb_log_count_ratio(matrix, y) ** 0.5
    reference = LogisticRegression(C=10.0, max_iter=5000, class_weight="balanced").fit(matrix.multiply(scale).tocsr(), y)
    expected = reference.decision_function(scaled._matrix(scaled._normalise(probe)).multiply(scale).tocsr())
    assert np.allclose(scaled.decision(probe), expected, atol=0.02)  # coefficients stored in float16
    assert not np.allclose(scaled.decision(probe), plain.decision(probe), atol=0.05)
    loaded = TextScorer.from_state(scaled.state())
    assert loaded.nb_scale == 0.5 and np.array_equal(loaded.decision(probe), scaled.decision(probe))


@pytest.mark.parametrize("spoil, message", [
    (lambda p: p.write_bytes(b"\x00\x01binary"), "not a valid complaint head file"),
    (lambda p: rewrite_model_file(p, lambda d: d.update(format="complaint-head/1")), "format 'complaint-head/1'"),
    (lambda p: rewrite_model_file(p, lambda d: d.update(classes=["yes", "no"])), "classes"),
    (lambda p: rewrite_model_file(p, lambda d: d["kernel"]["support"].update(shape=[5, 3])), "holds"),
    (lambda p: rewrite_model_file(p, lambda d: d["projection"]["mean"].update(dtype="int64")), "dtype 'int64'"),
    (lambda p: rewrite_model_file(p, lambda d: d["kernel"]["support"].update(data="not base64!")), "not a valid"),
    (lambda p: rewrite_model_file(p, lambda d: d["projection"].update(matrix=d["kernel"]["dual"])), "do not fit together"),
    (lambda p: rewrite_model_file(p, lambda d: d["kernel"].update(dual=d["projection"]["mean"])), "do not fit together"),
    (lambda p: rewrite_model_file(p, lambda d: d["kernel"].update(support=encode_array(np.zeros((1, 8)), "float16"),
                                                                  dual=encode_array(np.ones(1), "float32"))),
     "projection's width"),
    (lambda p: rewrite_model_file(p, lambda d: d["text"]["vocabularies"][0].pop()), "do not fit together"),
    (lambda p: rewrite_model_file(p, lambda d: d["text"].pop("nb_scale")), "not a valid complaint head file"),
    (lambda p: rewrite_model_file(p, lambda d: d["linear"].update(coef=d["kernel"]["dual"])), "different widths"),
    (lambda p: rewrite_model_file(p, lambda d: d["stacker"].update(coef=d["projection"]["mean"])), "stacker coefficients"),
    (lambda p: rewrite_model_file(p, lambda d: d["stacker"].pop("intercept")), "not a valid complaint head file"),
    (lambda p: p.unlink(), "complaint head file not found"),
])
def test_bad_head_file_is_named(head, lexicon, tmp_path, spoil, message):
    path = head.save(tmp_path / "complaint_head.json.gz")
    spoil(path)
    with pytest.raises(ComplaintHeadError, match=message) as info:
        ComplaintHead.load(path, lexicon)
    assert "complaint_head.json.gz" in str(info.value)


@pytest.fixture(scope="module")
def bundled():
    return load_bundled(Lexicon(bundled_config_dir() / "lexicons"))


def test_the_projects_model_files_stay_under_10_mb():
    """The bundled model's own files (adapter and heads) ship in the repository: 10 MB at most."""
    files = [path for path in MODELS_DIR.iterdir() if path.is_file()]
    assert COMPLAINT_HEAD in files and sum(path.stat().st_size for path in files) < 10_000_000


def test_shipped_head_belongs_to_the_shipped_adapter(bundled):
    assert COMPLAINT_HEAD.is_file()
    assert bundled.complaint_head.adapter == bundled.transformer.version


def test_head_fitted_on_another_adapter_is_refused(head):
    with pytest.raises(ComplaintHeadError, match="train --heads-only"):
        BundledModel(MiniLMClassifier(), head, {})


def test_shipped_model_reads_complaints(bundled):
    texts = ["My order never arrived and nobody answers my emails, this is ridiculous @acme",
             "Thank you so much, the new app is great and support was wonderful!",
             "What a lovely sunset tonight"]
    out = bundled.predict_all(texts, ["en"] * 3)
    assert out["complaint"].shape == (3, 2) and np.allclose(out["complaint"].sum(axis=1), 1.0)
    assert out["complaint"][0, 1] > 0.5 > max(out["complaint"][1, 1], out["complaint"][2, 1])
    assert set(out) == {"sentiment", "complaint"}


def test_feature_heads_run_in_the_same_pass(bundled, monkeypatch):
    # One share, batched as `features` was: int8 activations are scaled per batch.
    monkeypatch.setattr(bundled.transformer, "num_threads", 1)
    transformer = bundled.transformer
    texts = ["ok", "Refund me now, third time I ask", "fine"]
    features = transformer.features(texts)
    assert features.shape == (3, len(FEATURE_LAYERS) * 384)
    head = bundled.complaint_head
    both = transformer.predict_all(texts, feature_heads={"scores": head.encoder_scores})
    assert np.allclose(both["sentiment"], transformer.predict_all(texts)["sentiment"], atol=1e-6)
    assert np.allclose(both["scores"], head.encoder_scores(features), atol=1e-4)
    alone = head.predict_proba(ComplaintInputs(features, both["sentiment"], texts))
    assert np.allclose(bundled.predict_all(texts, ["en"] * 3)["complaint"], alone, atol=1e-5)
    assert transformer.features([]).shape == (0, len(FEATURE_LAYERS) * 384)


def test_shipped_model_on_hostile_input(bundled):
    out = bundled.predict_all(HOSTILE, [None, "en", "nl", "xx", None, "en"])
    assert out["complaint"].shape == (len(HOSTILE), 2) and np.isfinite(out["complaint"]).all()
