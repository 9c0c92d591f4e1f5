"""Transformer classifiers: the bundled model (pinned encoder, adapter file), and hub models by name or folder."""

from __future__ import annotations

import json
import os
import shutil
import stat

import numpy as np
import pytest

from classifiers.encoder import EncoderError, verified_encoder_dir
from classifiers.hub import HubModelError, HubSentiment
from classifiers.minilm import MiniLMClassifier, ModelError
from classifiers.post import PostClassifier, PostText
from monitor.cli import app
from monitor.config import bundled_config_dir

NEGATIVE = "This is the worst service ever, I am furious and want my money back"
POSITIVE = "Thank you so much, the new app is great and support was wonderful!"
HOSTILE = ["", " ", "\x00\xff\ufffe" * 50, "a" * 100_000, "🙂" * 500, "<!channel> <@U123> ```",
           "cut emoji \ud83d", "\udcff not UTF-8 on the command line"]


@pytest.fixture(scope="module")
def bundled():
    return MiniLMClassifier()


@pytest.fixture(scope="module")
def encoder_copy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("encoder")
    shutil.copytree(verified_encoder_dir(), folder, dirs_exist_ok=True)
    return folder


# --- the pinned encoder ------------------------------------------------------------------------------

def test_encoder_package_passes_its_checksums():
    assert (verified_encoder_dir() / "model.safetensors").is_file()


def test_changed_encoder_weights_are_refused(encoder_copy, tmp_path):
    tampered = tmp_path / "enc"
    shutil.copytree(encoder_copy, tampered)
    with (tampered / "model.safetensors").open("r+b") as fh:
        fh.seek(4096)
        byte = fh.read(1)
        fh.seek(4096)
        fh.write(bytes([byte[0] ^ 1]))
    with pytest.raises(EncoderError, match="sha256 .* differs"):
        verified_encoder_dir(tampered)
    with pytest.raises(EncoderError, match="sha256"):
        MiniLMClassifier(encoder_dir=tampered).predict(["hello"])


def test_a_changed_encoder_architecture_is_refused(encoder_copy, tmp_path):
    changed = tmp_path / "enc"
    shutil.copytree(encoder_copy, changed)
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(EncoderError, match="config.json: sha256 .* differs"):
        verified_encoder_dir(changed)


def test_missing_encoder_file_is_named(encoder_copy, tmp_path):
    partial = tmp_path / "enc"
    shutil.copytree(encoder_copy, partial)
    (partial / "tokenizer.json").unlink()
    with pytest.raises(EncoderError, match="tokenizer.json"):
        verified_encoder_dir(partial)


# --- the bundled model ---------------------------------------------------------------------------------

def test_bundled_shapes_labels_and_probabilities(bundled):
    texts = [NEGATIVE, POSITIVE, "The shop opens at nine."]
    out = bundled.predict_all(texts)
    assert set(out) == {"sentiment"}  # complaints are the complaint head's (tests/test_complaint_head.py)
    assert out["sentiment"].shape == (3, 3) and np.allclose(out["sentiment"].sum(axis=1), 1.0, atol=1e-4)
    assert bundled.classes("sentiment") == ("negative", "neutral", "positive")
    assert bundled.predict([NEGATIVE, POSITIVE]) == ["negative", "positive"]


def test_bundled_keeps_input_order_across_length_sorted_batches():
    model = MiniLMClassifier(quantize=False, batch_size=2)
    texts = [POSITIVE, "ok", NEGATIVE, "meh " * 40, "fine"]
    together = model.predict_proba(texts)
    alone = np.vstack([model.predict_proba([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)


def test_bundled_on_hostile_input(bundled):
    probs = bundled.predict_proba(HOSTILE)
    assert probs.shape == (len(HOSTILE), 3)
    assert np.isfinite(probs).all()
    assert bundled.predict_proba([]).shape == (0, 3)


def test_unknown_task_is_a_clear_error(bundled):
    with pytest.raises(ValueError, match="task 'sarcasm' unknown"):
        bundled.predict(["x"], task="sarcasm")


@pytest.mark.parametrize("content, message", [(b"not a safetensors file", "not a valid adapter file"),
                                              (None, "adapter file not found")])
def test_bad_adapter_file_is_named(tmp_path, content, message):
    path = tmp_path / "adapter.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        MiniLMClassifier(path).predict(["hello"])


def _spoilt_adapter(tmp_path, spec_change=None, tensor_change=None):
    """The shipped adapter with its spec or one tensor changed."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from classifiers.minilm import DEFAULT_WEIGHTS

    with safe_open(str(DEFAULT_WEIGHTS), framework="numpy") as fh:
        metadata = dict(fh.metadata())
    spec = json.loads(metadata["spec"])
    (spec_change or (lambda s: None))(spec)
    state = load_file(str(DEFAULT_WEIGHTS))
    (tensor_change or (lambda s: None))(state)
    path = tmp_path / "adapter.safetensors"
    save_file(state, str(path), metadata={**metadata, "spec": json.dumps(spec)})
    return path


@pytest.mark.parametrize("spec_change, tensor_change, message", [
    (lambda s: s.update(rank=0), None, "rank 0 is not a positive whole number"),
    (lambda s: s.update(rank="32"), None, "rank '32'"),
    (lambda s: s["logit_bias"].update(sentiment=[0.1, 0.2]), None, "logit_bias of 'sentiment'"),
    (lambda s: s.update(max_length=100_000), None, "max_length 100000"),
    (None, lambda st: st[next(k for k in st if k.startswith("head."))].fill_(float("nan")), "values not finite"),
])
def test_an_adapter_file_holding_what_no_adapter_holds_is_refused(tmp_path, spec_change, tensor_change, message):
    path = _spoilt_adapter(tmp_path, spec_change, tensor_change)
    with pytest.raises(ModelError, match=message):
        MiniLMClassifier(path, cache_dir=False).predict(["hello"])


def test_fit_save_and_load_round_trip(tmp_path):
    texts = [NEGATIVE, POSITIVE, "It is Tuesday.", "Terrible, broken again", "Love it", "Meeting at 3"] * 2
    labels = ["negative", "positive", "neutral", "negative", "positive", "neutral"] * 2
    complaints = ([NEGATIVE, "my order never arrived", POSITIVE, "nice weather"], ["yes", "yes", "no", "no"])
    model = MiniLMClassifier(None, rank=4, epochs=1, train_batch_size=4, quantize=False)
    model.fit({"sentiment": (texts, labels), "complaint": complaints},
              calibration={"sentiment": (texts[:6], labels[:6])})
    before = model.predict_proba(texts)
    previous_umask = os.umask(0o022)
    try:
        path = model.save(tmp_path / "adapter.safetensors")
    finally:
        os.umask(previous_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # a daemon running as another user can read it
    assert [p.name for p in tmp_path.iterdir()] == ["adapter.safetensors"]
    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):  # the rename onto a folder fails: no half-written file is left behind
        model.save(tmp_path / "taken")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter.safetensors", "taken"]
    loaded = MiniLMClassifier(path, quantize=False)
    assert np.allclose(loaded.predict_proba(texts), before, atol=1e-2)  # adapter stored in fp16
    assert loaded.spec_.rank == 4 and loaded.spec_.trained_on == {"sentiment": 12, "complaint": 4}
    assert len(loaded.spec_.logit_bias["sentiment"]) == 3
    # Calibrating again on the same posts, before or after the file is loaded, keeps the bias it found.
    bias = list(loaded.spec_.logit_bias["sentiment"])
    assert any(bias)
    for recalibrated in (MiniLMClassifier(path, quantize=False), loaded):
        recalibrated._calibrate({"sentiment": (texts[:6], labels[:6])})
        assert recalibrated.spec_.logit_bias["sentiment"] == bias


def test_averaged_adapters_are_the_mean_of_their_merged_changes(tmp_path):
    texts = [NEGATIVE, POSITIVE, "It is Tuesday.", "Terrible, broken again", "Love it", "Meeting at 3"] * 2
    labels = ["negative", "positive", "neutral", "negative", "positive", "neutral"] * 2
    runs = [MiniLMClassifier(None, rank=4, epochs=1, train_batch_size=4, quantize=False, seed=seed)
            .fit({"sentiment": (texts, labels)}) for seed in (0, 1)]
    soup = MiniLMClassifier.averaged(runs, calibration={"sentiment": (texts[:6], labels[:6])})
    assert soup.spec_.rank == 8 and soup.spec_.alpha / soup.spec_.rank == runs[0].alpha / runs[0].rank
    weights = [m._net.encoder.state_dict() for m in runs]
    for name, value in soup._net.encoder.state_dict().items():
        assert np.allclose(value.numpy(), (weights[0][name].numpy() + weights[1][name].numpy()) / 2, atol=1e-3), name
    heads = [m._net.heads["sentiment"].weight.detach().numpy() for m in runs]
    assert np.allclose(soup._net.heads["sentiment"].weight.detach().numpy(), (heads[0] + heads[1]) / 2)
    assert len(soup.spec_.logit_bias["sentiment"]) == 3
    before = soup.predict_proba(texts)
    loaded = MiniLMClassifier(soup.save(tmp_path / "soup.safetensors"), quantize=False)
    assert np.allclose(loaded.predict_proba(texts), before, atol=1e-2)  # factors stored in fp16
    assert loaded.spec_.rank == 8
    from_file = MiniLMClassifier(tmp_path / "soup.safetensors", quantize=False)
    again = MiniLMClassifier.averaged([from_file] * 2, calibration={"sentiment": (texts[:6], labels[:6])})
    assert np.allclose(again.predict_proba(texts), loaded.predict_proba(texts), atol=1e-2)  # from files
    assert from_file._net is None  # read, not merged into an encoder of its own


def test_averaging_needs_fitted_adapters():
    with pytest.raises(ModelError, match="fitted adapters or adapter files"):
        MiniLMClassifier.averaged([MiniLMClassifier(None)])


def test_averaging_refuses_adapters_of_different_tasks_or_lengths():
    texts, labels = [NEGATIVE, POSITIVE, "It is Tuesday."], ["negative", "positive", "neutral"]
    complaints = ([NEGATIVE, POSITIVE], ["yes", "no"])

    def fitted(max_length=64, **data):
        return MiniLMClassifier(None, rank=2, epochs=1, train_batch_size=3, quantize=False,
                                max_length=max_length).fit(data)

    sentiment = fitted(sentiment=(texts, labels))
    for other in (fitted(max_length=32, sentiment=(texts, labels)),
                  fitted(sentiment=(texts, labels), complaint=complaints)):
        with pytest.raises(ModelError, match="share their tasks and max_length"):
            MiniLMClassifier.averaged([sentiment, other])


def test_fit_rejects_unknown_labels():
    with pytest.raises(ValueError, match="unknown labels"):
        MiniLMClassifier(None).fit({"sentiment": (["x"], ["angry"])})


def test_post_classifier_with_the_bundled_model():
    classifier = PostClassifier(bundled_config_dir(), ["nl", "en"], "bundled")
    (result,) = classifier.classify([PostText(7, NEGATIVE + " I will call my lawyer", None)])
    assert result.model.startswith("minilm-l6-lora") and result.model.endswith("+complaint-head")
    assert result.sentiment == "negative" and result.complaint > 0.5
    assert result.lang == "en"
    assert [t.category for t in result.triggers] == ["legal"]


# --- models by hub name or folder -----------------------------------------------------------------------

def BertForSequenceClassificationLoad(folder):
    from transformers import BertForSequenceClassification

    return BertForSequenceClassification.from_pretrained(folder)


def _tiny_model(folder, id2label):
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=len(id2label), id2label=id2label,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,  # fit tests must converge
                        label2id={v: k for k, v in id2label.items()})
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(verified_encoder_dir())).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def named_model(tmp_path_factory):
    return _tiny_model(tmp_path_factory.mktemp("named"), {0: "positive", 1: "Negative", 2: "neutral"})


def test_hub_model_from_a_folder_maps_labels_by_name(named_model):
    model = HubSentiment(str(named_model), local_files_only=True)
    probs = model.predict_proba([NEGATIVE, POSITIVE, *HOSTILE])
    assert probs.shape == (2 + len(HOSTILE), 3)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert set(model.predict([NEGATIVE])) <= {"negative", "neutral", "positive"}


def test_hub_model_labels_need_a_mapping(tmp_path):
    folder = _tiny_model(tmp_path / "m", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(HubModelError, match="sentiment_labels"):
        HubSentiment(str(folder), local_files_only=True).predict(["x"])
    mapped = HubSentiment(str(folder), local_files_only=True,
                          label_map={"LABEL_0": "negative", "LABEL_1": "neutral", "LABEL_2": "positive"})
    assert mapped.predict_proba(["x"]).shape == (1, 3)


def test_hub_model_labels_mapped_onto_one_class_add_up(tmp_path):
    import torch

    stars = {0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"}
    folder = _tiny_model(tmp_path / "m", stars)
    net = BertForSequenceClassificationLoad(folder)
    with torch.no_grad():  # outputs fixed by the bias alone: 40 % "1 star", 40 % "2 stars"
        net.classifier.weight.zero_()
        net.classifier.bias.copy_(torch.log(torch.tensor([0.4, 0.4, 0.1, 0.05, 0.05])))
    net.save_pretrained(folder)
    label_map = {"1 star": "negative", "2 stars": "Negative", "3 stars": "neutral", "4 stars": "positive",
                 "5 stars": "positive"}
    model = HubSentiment(str(folder), local_files_only=True, label_map=label_map)
    assert np.allclose(model.predict_proba(["the parcel never came"]), [[0.8, 0.1, 0.1]], atol=1e-4)
    assert model.predict(["the parcel never came"]) == ["negative"]


def test_hub_model_labels_left_unmapped_are_an_error_not_dropped(tmp_path):
    folder = _tiny_model(tmp_path / "m", {0: "very negative", 1: "negative", 2: "neutral", 3: "positive"})
    with pytest.raises(HubModelError, match=r"do not map \['very negative'\]"):
        HubSentiment(str(folder), local_files_only=True).predict(["x"])


def test_hub_model_fit_with_labels_grouped_into_one_class(tmp_path):
    import torch

    torch.manual_seed(0)
    folder = _tiny_model(tmp_path / "m", {0: "bad", 1: "awful", 2: "meh", 3: "good"})
    model = HubSentiment(str(folder), local_files_only=True, epochs=80, learning_rate=1e-3, batch_size=4,
                         label_map={"bad": "negative", "awful": "negative", "meh": "neutral", "good": "positive"})
    texts, labels = ["awful awful awful", "great great great", "table chair lamp"], ["negative", "positive", "neutral"]
    assert model.fit(texts, labels).predict(texts) == labels


def test_hub_model_fit_learns_the_labels(named_model, tmp_path):
    import torch

    torch.manual_seed(0)
    shutil.copytree(named_model, tmp_path / "m")
    model = HubSentiment(str(tmp_path / "m"), local_files_only=True, epochs=80, learning_rate=1e-3, batch_size=4)
    texts, labels = ["awful awful awful", "great great great", "table chair lamp"], ["negative", "positive", "neutral"]
    assert model.fit(texts, labels).predict(texts) == labels


def test_unreachable_hub_model_is_a_clear_error():
    with pytest.raises(HubModelError, match="cannot load 'no-such-org/no-such-model'"):
        HubSentiment("no-such-org/no-such-model", local_files_only=True).predict(["x"])


# --- the eval CLI with a chosen model ---------------------------------------------------------------------

@pytest.fixture
def runner(monkeypatch):
    from typer.testing import CliRunner

    monkeypatch.setenv("COLUMNS", "500")  # no wrapped error lines
    return CliRunner()


def test_eval_sentiment_with_the_bundled_model(runner, tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text(f"label\ttext\nnegative\t{NEGATIVE}\npositive\t{POSITIVE}\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "sentiment", "--file", str(path), "--model", "bundled", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"].startswith("minilm-l6-lora") and report["accuracy"] == 1.0


def test_eval_float32_scores_the_bundled_models_float_network(runner, tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text(f"text\tis_complaint\n{NEGATIVE}\t1\n{POSITIVE}\t0\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "complaints", "--file", str(path), "--model", "bundled", "--float32", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"].startswith("minilm-l6-lora-float32+") and report["n"] == 2


def test_eval_uses_the_configured_model_and_its_label_map(runner, tmp_path):
    import yaml

    from tests.support import config_dict

    folder = _tiny_model(tmp_path / "m", {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(config_dict(classifiers={
        "sentiment_model": str(folder),
        "sentiment_labels": {"LABEL_0": "negative", "LABEL_1": "neutral", "LABEL_2": "positive"}})), encoding="utf-8")
    path = tmp_path / "s.tsv"
    path.write_text(f"label\ttext\nnegative\t{NEGATIVE}\npositive\t{POSITIVE}\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "sentiment", "--file", str(path), "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == f"{folder}+lexicon-complaint"


def test_eval_with_an_unloadable_model_exits_2(runner, tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("label\ttext\nnegative\tbad\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "sentiment", "--file", str(path), "--model", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "--model" in result.output and result.stdout.strip() == ""
