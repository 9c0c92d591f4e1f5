"""The int8 model kept on disk between runs (classifiers.int8_cache): a start with it reads the
model the build gave, without torch; a changed input is a new build; a broken or unwritable
cache costs time, never a wrong model or a crash."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import classifiers.minilm as minilm
from classifiers.int8_cache import CACHE_DIR_ENV, KEEP_DAYS, Int8Cache, cache_key, default_cache_dir
from classifiers.minilm import DEFAULT_WEIGHTS, MiniLMClassifier

TEXTS = ["The worst airline ever, two hours on hold", "Thanks, all sorted!", "Al drie dagen geen internet"]
ROOT = Path(__file__).resolve().parent.parent


def _features(model: MiniLMClassifier) -> dict[str, np.ndarray]:
    return model.predict_all(TEXTS, feature_heads={"features": lambda batch: batch})


def _entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("minilm-int8-*.onnx"))


def test_a_second_start_reads_the_built_model_without_the_float_encoder(tmp_path, monkeypatch):
    built = _features(MiniLMClassifier(cache_dir=tmp_path))
    assert len(_entries(tmp_path)) == 1

    def no_float_network(*_args, **_kwargs):
        raise AssertionError("the float encoder was loaded although the int8 model is in the cache")

    monkeypatch.setattr(minilm, "_Network", no_float_network)
    cached = _features(MiniLMClassifier(cache_dir=tmp_path))
    for key in built:
        assert np.array_equal(cached[key], built[key])
    # The features' width with no posts, known from the cached model alone.
    empty = MiniLMClassifier(cache_dir=tmp_path).predict_all([], feature_heads={"features": lambda batch: batch})
    assert empty["features"].shape == (0, built["features"].shape[1])


def test_a_start_from_the_cache_does_not_import_torch(tmp_path):
    MiniLMClassifier(cache_dir=tmp_path).load()
    script = ("import sys; from classifiers.minilm import MiniLMClassifier; "
              f"MiniLMClassifier(cache_dir={str(tmp_path)!r}).predict(['my flight got cancelled']); "
              "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_another_adapter_is_another_build(tmp_path):
    from safetensors import safe_open
    from safetensors.numpy import save_file

    with safe_open(str(DEFAULT_WEIGHTS), framework="numpy") as fh:
        state, metadata = {name: fh.get_tensor(name) for name in fh.keys()}, fh.metadata()
    state["head.sentiment.bias"] = state["head.sentiment.bias"] + np.array([2.0, 0.0, 0.0], dtype=np.float32)
    other = tmp_path / "other.safetensors"
    save_file(state, str(other), metadata=metadata)
    cache = tmp_path / "cache"

    shipped = MiniLMClassifier(cache_dir=cache).predict_proba(TEXTS)
    changed = MiniLMClassifier(other, cache_dir=cache).predict_proba(TEXTS)
    assert len(_entries(cache)) == 2
    assert (changed[:, 0] > shipped[:, 0]).all()  # the other adapter's bias, not the first model's
    assert np.array_equal(MiniLMClassifier(other, cache_dir=cache).predict_proba(TEXTS), changed)


def test_the_key_changes_with_every_input_of_the_build(tmp_path):
    code = tmp_path / "build.py"
    code.write_text("recipe 1")
    key = cache_key(["adapter-a", "encoder"], [code])
    assert key == cache_key(["adapter-a", "encoder"], [code])
    assert key != cache_key(["adapter-b", "encoder"], [code])
    code.write_text("recipe 2")
    assert key != cache_key(["adapter-a", "encoder"], [code])


def _other_onnx_model() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "other",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize("content", [b"\x00not an onnx model", _other_onnx_model(), b""],
                         ids=["garbage", "other-model", "empty"])
def test_an_unreadable_cached_model_is_built_again_and_replaced(tmp_path, caplog, content):
    reference = MiniLMClassifier(cache_dir=False).predict_proba(TEXTS)
    model = MiniLMClassifier(cache_dir=tmp_path)
    cache, key = model._int8_cache()
    # Stored as it is, digest and all (a file put there by hand, one another ONNX Runtime wrote).
    cache.path(key).write_bytes(content)
    cache.path(key).with_suffix(".sha256").write_text(hashlib.sha256(content).hexdigest())
    with caplog.at_level(logging.WARNING, logger="classifiers.minilm"):
        assert np.array_equal(model.predict_proba(TEXTS), reference)
    assert "int8 model in the cache unusable" in caplog.text
    assert cache.path(key).stat().st_size > 1_000_000
    assert np.array_equal(MiniLMClassifier(cache_dir=tmp_path).predict_proba(TEXTS), reference)


def test_a_read_only_cache_is_still_read(tmp_path, monkeypatch):
    built = _features(MiniLMClassifier(cache_dir=tmp_path))

    def read_only(*_args, **_kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    def no_float_network(*_args, **_kwargs):
        raise AssertionError("the float encoder was loaded although the int8 model is in the cache")

    monkeypatch.setattr(os, "utime", read_only)
    monkeypatch.setattr(minilm, "_Network", no_float_network)
    cached = _features(MiniLMClassifier(cache_dir=tmp_path))
    assert all(np.array_equal(cached[key], built[key]) for key in built)


def test_a_cached_model_changed_since_it_was_built_is_built_again(tmp_path, caplog):
    reference = MiniLMClassifier(cache_dir=tmp_path).predict_proba(TEXTS)
    (path,) = _entries(tmp_path)
    built = path.read_bytes()
    # Among the layers' weights (the first four fifths are word embeddings, most of them rows these
    # posts never read): the file still reads as a model, a different one.
    at = len(built) * 9 // 10
    path.write_bytes(built[:at] + b"\x55" * 4096 + built[at + 4096:])
    with caplog.at_level(logging.WARNING, logger="classifiers.int8_cache"):
        assert np.array_equal(MiniLMClassifier(cache_dir=tmp_path).predict_proba(TEXTS), reference)
    assert "changed since it was built" in caplog.text
    assert path.read_bytes() == built


def test_a_folder_where_the_cached_model_should_be_costs_only_time(tmp_path, caplog):
    model = MiniLMClassifier(cache_dir=tmp_path)
    cache, key = model._int8_cache()
    (cache.path(key) / "something").mkdir(parents=True)  # neither readable as a model nor removable by unlink
    with caplog.at_level(logging.WARNING):
        assert np.array_equal(model.predict_proba(TEXTS), MiniLMClassifier(cache_dir=False).predict_proba(TEXTS))
    assert "not kept" in caplog.text


def test_a_cache_folder_that_cannot_be_written_costs_only_time(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="classifiers.int8_cache"):
        probs = MiniLMClassifier(cache_dir=blocker / "cache").predict_proba(TEXTS)
    assert probs.shape == (3, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert "int8 model not kept" in caplog.text


def test_a_network_trained_in_this_process_is_not_cached(tmp_path):
    texts = ["Terrible, broken again", "Love it", "Meeting at 3"] * 2
    labels = ["negative", "positive", "neutral"] * 2
    model = MiniLMClassifier(None, rank=2, epochs=1, train_batch_size=3, cache_dir=tmp_path)
    model.fit({"sentiment": (texts, labels)})
    model.save(tmp_path / "adapter.safetensors")
    model.predict_proba(texts)  # int8 from the float32 factors in memory, not from the fp16 file
    assert _entries(tmp_path) == []


def test_entries_unused_for_a_while_go_when_another_is_stored(tmp_path):
    source = tmp_path / "built.onnx"
    source.write_bytes(b"model")
    folder = tmp_path / "cache"
    cache = Int8Cache(folder)
    cache.store("old" * 20, source)
    cache.store("recent" * 10, source)
    long_ago = time.time() - (KEEP_DAYS + 1) * 86400
    os.utime(cache.path("old" * 20), (long_ago, long_ago))
    cache.store("new" * 20, source)
    assert sorted(p.name for p in _entries(folder)) == sorted(cache.path(k).name for k in ("recent" * 10, "new" * 20))
    assert cache.find("old" * 20) is None and cache.find("new" * 20).read_bytes() == b"model"
    assert not list(folder.glob(".building-*"))


def test_default_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.setenv(CACHE_DIR_ENV, "")
    assert default_cache_dir() is None
    monkeypatch.delenv(CACHE_DIR_ENV)
    assert default_cache_dir().name == "escalation-monitor"
