"""The int8 encoder: outlier channels split off in float, the rest int8 in ONNX Runtime (classifiers.quantization)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from classifiers.minilm import MiniLMClassifier
from classifiers.quantization import (Int8Encoder, QuantizationError, export_onnx, fold_biases, int8_encoder,
                                      outlier_channels, quantize_matmuls, split_outlier_channels)


class _Block(torch.nn.Module):
    """Named like a BERT block, so the layer filters apply; `forward` is the feed-forward part,
    taking the encoder's two inputs as the exporter names them."""

    def __init__(self):
        super().__init__()
        self.intermediate = torch.nn.ModuleDict({"dense": torch.nn.Linear(16, 64)})
        self.output = torch.nn.ModuleDict({"dense": torch.nn.Linear(64, 16)})
        self.attention = torch.nn.ModuleDict({"output": torch.nn.ModuleDict({"dense": torch.nn.Linear(16, 16)})})

    def forward(self, input_ids, attention_mask):
        hidden = self.output["dense"](torch.relu(self.intermediate["dense"](input_ids)))
        return (hidden * attention_mask.unsqueeze(-1)).sum(1)


class _FeedForwardInput(torch.nn.Module):
    """Only the layer that reads the outlier channel, so its int8 error is what is measured."""

    def __init__(self):
        super().__init__()
        self.intermediate = torch.nn.ModuleDict({"dense": torch.nn.Linear(16, 64)})

    def forward(self, input_ids, attention_mask):
        return self.intermediate["dense"](input_ids) * attention_mask.unsqueeze(-1)


def _inputs(outlier_channel=3, seed=0, batch=4, tokens=10):
    x = torch.randn(batch, tokens, 16, generator=torch.Generator().manual_seed(seed))
    x[..., outlier_channel] *= 40.0
    return x, torch.ones(batch, tokens)


def _exported(block, tmp_path):
    path = tmp_path / "float.onnx"
    export_onnx(block, _inputs(), ["out"], path)
    return path


def _weights(block):
    return {name: module.weight.detach().numpy() for name, module in block.named_modules() if name.endswith("dense")}


def _run(encoder: Int8Encoder, x, mask) -> np.ndarray:
    return encoder.run(x.numpy(), mask.numpy())["out"]


def test_outlier_channels_are_found_in_feed_forward_layers_only():
    torch.manual_seed(0)
    block = _Block()
    x, mask = _inputs(outlier_channel=3)
    channels = outlier_channels(block, lambda: (block.attention["output"]["dense"](x), block(x, mask)))
    assert set(channels) <= {"intermediate.dense", "output.dense"}
    assert channels["intermediate.dense"].tolist() == [3]


def test_split_graph_computes_the_same_sum(tmp_path):
    torch.manual_seed(0)
    block = _Block()
    exported = _exported(block, tmp_path)
    model = onnx.load(str(exported))
    float_products = split_outlier_channels(model, {"intermediate.dense": [3, 5]}, _weights(block))
    assert len(float_products) == 1
    onnx.save(model, str(tmp_path / "split.onnx"))
    x, mask = _inputs(batch=3, tokens=7)  # other sizes than the export's: the axes are free
    with torch.inference_mode():
        expected = block(x, mask).numpy()
    assert np.allclose(_run(Int8Encoder(tmp_path / "split.onnx", ["out"]), x, mask), expected, atol=1e-4)


def test_a_layer_missing_from_the_graph_is_an_error(tmp_path):
    block = _Block()
    model = onnx.load(str(_exported(block, tmp_path)))
    elsewhere = {"intermediate.dense": block.attention["output"]["dense"].weight.detach().numpy()}  # not in the graph
    with pytest.raises(QuantizationError, match="intermediate.dense"):
        split_outlier_channels(model, {"intermediate.dense": [3]}, elsewhere)


def test_int8_with_outliers_in_float_stays_closer_to_float(tmp_path):
    torch.manual_seed(0)
    block = _FeedForwardInput()
    x, mask = _inputs()
    with torch.inference_mode():
        expected = block(x, mask).numpy()
    channels = outlier_channels(block, lambda: block(x, mask))
    exported = _exported(block, tmp_path)
    plain_error = np.abs(_run(int8_encoder(exported, ["out"], {}, {}), x, mask) - expected).mean()
    split_error = np.abs(_run(int8_encoder(exported, ["out"], channels, _weights(block)), x, mask) - expected).mean()
    assert split_error < plain_error / 3


def test_bundled_int8_model_agrees_with_float32():
    texts = ["The worst airline ever, two hours on hold and still no refund",
             "Thanks, all sorted!", "Train to Utrecht leaves at 9", "meh", "I love the new app update :)",
             "Al drie dagen geen internet, ik ga opzeggen", "Is the store open on Sunday?"]
    int8 = MiniLMClassifier(quantize=True).predict_proba(texts)
    float32 = MiniLMClassifier(quantize=False).predict_proba(texts)
    assert np.abs(int8 - float32).max() < 0.1
    assert (int8.argmax(axis=1) == float32.argmax(axis=1)).all()


def test_int8_batches_on_several_cores_give_the_same_rows_as_on_one():
    texts = [f"post {i}: " + "flight delayed again " * (i % 5) for i in range(20)]
    model = MiniLMClassifier(quantize=True, batch_size=3)
    one = model.predict_all(texts, feature_heads={"features": lambda batch: batch}, num_threads=1)
    two = model.predict_all(texts, feature_heads={"features": lambda batch: batch}, num_threads=2)
    for key in one:
        assert np.array_equal(one[key], two[key])
    rows = model.predict_all(texts[7:8], feature_heads={"features": lambda batch: batch})
    assert np.allclose(rows["features"][0], one["features"][7], atol=0.05 * np.abs(one["features"][7]).max())


def test_weights_become_int8_in_seven_bits_with_a_scale_per_output_column(tmp_path):
    torch.manual_seed(0)
    block = _Block()
    model = onnx.load(str(_exported(block, tmp_path)))
    quantize_matmuls(model, keep_float=[])
    fused = [node for node in model.graph.node if node.op_type == "DynamicQuantizeMatMul"]
    assert len(fused) == 2 and not any(node.op_type == "MatMul" for node in model.graph.node)
    constants = {init.name: onnx.numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in fused:
        weight, scale = constants[node.input[1]], constants[node.input[2]]
        assert weight.dtype == np.int8 and np.abs(weight).max() == 63
        assert scale.shape == (weight.shape[1],)
        original = next(w for w in _weights(block).values() if w.shape == weight.shape[::-1])
        assert np.abs(weight * scale - original.T).max() <= scale.max() / 2 + 1e-6


def test_biases_are_added_by_the_int8_products_themselves(tmp_path):
    torch.manual_seed(0)
    block = _Block()
    model = onnx.load(str(_exported(block, tmp_path)))
    quantize_matmuls(model, keep_float=split_outlier_channels(model, {"intermediate.dense": [3]}, _weights(block)))
    onnx.save(model, str(tmp_path / "unfolded.onnx"))
    # Both shapes: the split layer (bias after the Add joining its int8 and float products) and the plain one.
    assert fold_biases(model) == 2
    onnx.save(model, str(tmp_path / "folded.onnx"))
    vectors = {init.name for init in model.graph.initializer if len(init.dims) == 1}
    assert not [node for node in model.graph.node if node.op_type == "Add" and set(node.input) & vectors]
    assert all(len(node.input) == 5 for node in model.graph.node if node.op_type == "DynamicQuantizeMatMul")
    x, mask = _inputs(batch=3, tokens=7)
    unfolded = _run(Int8Encoder(tmp_path / "unfolded.onnx", ["out"]), x, mask)
    assert np.allclose(_run(Int8Encoder(tmp_path / "folded.onnx", ["out"]), x, mask), unfolded,
                       atol=1e-4 * np.abs(unfolded).max())


def test_switching_quantize_off_after_loading_int8_gives_the_float_model_back():
    texts = ["Worst service ever", "Thanks, all sorted!"]
    model = MiniLMClassifier(quantize=True).load()
    model.quantize = False  # no float network is held beside the int8 one (handed over, or never read: cached)
    assert np.allclose(model.predict_proba(texts), MiniLMClassifier(quantize=False).predict_proba(texts), atol=1e-6)


def test_a_weight_two_products_share_stays_float(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    weight = np.random.default_rng(0).normal(size=(4, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input_ids", "w"], ["h"], name="first"),
         helper.make_node("MatMul", ["h", "w"], ["out"], name="second")],
        "tied", [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 4]) for name in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [None, 4])], [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    quantize_matmuls(model)
    assert [node.op_type for node in model.graph.node] == ["MatMul", "MatMul"]
    onnx.save(model, str(tmp_path / "tied.onnx"))
    x = np.ones((2, 4), dtype=np.float32)
    out = Int8Encoder(tmp_path / "tied.onnx", ["out"]).run(x, x)["out"]
    assert np.allclose(out, x @ weight @ weight, atol=1e-4)
