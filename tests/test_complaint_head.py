"""The complaint head: a linear model over the bundled encoder's layer features."""

from __future__ import annotations

import numpy as np
import pytest

from classifiers.bundled import COMPLAINT_HEAD, BundledModel, load_bundled
from classifiers.complaint_head import ComplaintHead, ComplaintHeadError
from classifiers.lexicon import Lexicon
from classifiers.minilm import FEATURE_LAYERS, MiniLMClassifier
from monitor.config import bundled_config_dir
from tests.support import rewrite_model_file

HOSTILE = ["", " ", "\x00\xff\ufffe" * 50, "a" * 100_000, "🙂" * 500, "<!channel> <@U123> ```"]


def _separable(n=60, width=8, seed=1):
    """Complaints have a high first column; nothing else tells them apart."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, width))
    labels = ["yes" if i % 3 == 0 else "no" for i in range(n)]
    features[:, 0] += np.where(np.array(labels) == "yes", 4.0, -4.0)
    return features, labels


@pytest.fixture(scope="module")
def head():
    return ComplaintHead(Cs=(0.1, 1.0, 10.0), adapter="abc").fit(*_separable())


def test_head_learns_and_gives_probabilities(head):
    features, labels = _separable(seed=2)
    probs = head.predict_proba(features)
    assert probs.shape == (len(labels), 2) and np.allclose(probs.sum(axis=1), 1.0)
    assert head.classes_ == ("no", "yes")
    assert head.predict(features) == labels
    assert head.C_ in head.Cs  # chosen by inner cross-validation


def test_head_needs_both_labels_matching_rows_and_a_fit():
    features, labels = _separable()
    with pytest.raises(ValueError, match="both labels"):
        ComplaintHead().fit(features, ["no"] * len(labels))
    with pytest.raises(ValueError, match="one feature row per label"):
        ComplaintHead().fit(features[:-1], labels)
    with pytest.raises(ComplaintHeadError, match="not fitted"):
        ComplaintHead().predict_proba(features)


def test_head_with_too_few_examples_to_choose_uses_the_middle_strength():
    features, labels = _separable(n=4)
    head = ComplaintHead().fit(features[:2], ["yes", "no"])
    assert head.C_ == head.Cs[len(head.Cs) // 2]


def test_wrong_feature_width_is_a_clear_error(head):
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        head.predict_proba(np.zeros((2, 5)))


def test_save_and_load_round_trip(head, tmp_path):
    path = head.save(tmp_path / "complaint_head.json.gz")
    loaded = ComplaintHead.load(path)
    features, _ = _separable(seed=3)
    assert np.allclose(loaded.predict_proba(features), head.predict_proba(features), atol=1e-5)
    assert loaded.adapter == "abc" and loaded.version == head.version
    assert head.save(tmp_path / "again.json.gz").read_bytes() == path.read_bytes()  # reproducible bytes


@pytest.mark.parametrize("spoil, message", [
    (lambda p: p.write_bytes(b"\x00\x01binary"), "not a valid complaint head file"),
    (lambda p: rewrite_model_file(p, lambda d: d.update(format="other/9")), "format 'other/9'"),
    (lambda p: rewrite_model_file(p, lambda d: d.update(classes=["yes", "no"])), "classes"),
    (lambda p: rewrite_model_file(p, lambda d: d.update(coef=[[1.0], [2.0]])), "not one finite row"),
    (lambda p: rewrite_model_file(p, lambda d: d.pop("intercept")), "not a valid complaint head file"),
    (lambda p: p.unlink(), "complaint head file not found"),
])
def test_bad_head_file_is_named(head, tmp_path, spoil, message):
    path = head.save(tmp_path / "complaint_head.json.gz")
    spoil(path)
    with pytest.raises(ComplaintHeadError, match=message) as info:
        ComplaintHead.load(path)
    assert "complaint_head.json.gz" in str(info.value)


@pytest.fixture(scope="module")
def bundled():
    return load_bundled(Lexicon(bundled_config_dir() / "lexicons"))


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


def test_feature_heads_run_in_the_same_pass(bundled):
    transformer = bundled.transformer
    texts = ["ok", "Refund me now, third time I ask", "fine"]
    features = transformer.features(texts)
    assert features.shape == (3, len(FEATURE_LAYERS) * 384)
    both = transformer.predict_all(texts, feature_heads={"complaint": bundled.complaint_head.predict_proba})
    assert np.allclose(both["sentiment"], transformer.predict_all(texts)["sentiment"], atol=1e-6)
    assert np.allclose(both["complaint"], bundled.complaint_head.predict_proba(features), atol=1e-6)
    assert transformer.features([]).shape == (0, len(FEATURE_LAYERS) * 384)


def test_shipped_model_on_hostile_input(bundled):
    out = bundled.predict_all(HOSTILE, [None, "en", "nl", "xx", None, "en"])
    assert out["complaint"].shape == (len(HOSTILE), 2) and np.isfinite(out["complaint"]).all()
