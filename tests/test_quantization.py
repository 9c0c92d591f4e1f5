"""Int8 quantization with outlier channels split off in float (classifiers.quantization)."""

from __future__ import annotations

import numpy as np
import torch

from classifiers.minilm import MiniLMClassifier
from classifiers.quantization import _split_linear_class, outlier_channels, quantize_encoder


class _Block(torch.nn.Module):
    """Named like a BERT block, so the layer filters apply; `forward` is the feed-forward part."""

    def __init__(self):
        super().__init__()
        self.intermediate = torch.nn.ModuleDict({"dense": torch.nn.Linear(16, 64)})
        self.output = torch.nn.ModuleDict({"dense": torch.nn.Linear(64, 16)})
        self.attention = torch.nn.ModuleDict({"output": torch.nn.ModuleDict({"dense": torch.nn.Linear(16, 16)})})

    def forward(self, x):
        return self.output["dense"](torch.relu(self.intermediate["dense"](x)))


def _inputs(outlier_channel=3, seed=0):
    x = torch.randn(4, 10, 16, generator=torch.Generator().manual_seed(seed))
    x[..., outlier_channel] *= 40.0
    return x


def test_split_linear_computes_the_same_sum():
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 8)
    split = _split_linear_class()
    x = _inputs()
    with torch.inference_mode():
        expected = linear(x)
        assert torch.allclose(split(linear, torch.tensor([3, 5]), in_place=False)(x), expected, atol=1e-5)
        copy = x.clone()
        assert torch.allclose(split(linear, torch.tensor([3, 5]), in_place=True)(copy), expected, atol=1e-5)
        assert (copy[..., 3] == 0).all()  # in place: the caller's activation is spent


def test_outlier_channels_are_found_in_feed_forward_layers_only():
    torch.manual_seed(0)
    block = _Block()
    x = _inputs(outlier_channel=3)
    channels = outlier_channels(block, lambda: (block.attention["output"]["dense"](x), block(x)))
    assert set(channels) <= {"intermediate.dense", "output.dense"}
    assert channels["intermediate.dense"].tolist() == [3]


def test_quantized_encoder_stays_close_to_float():
    torch.manual_seed(0)
    block = _Block()
    x = _inputs()
    with torch.inference_mode():
        expected = block(x)
    channels = outlier_channels(block, lambda: block(x))
    plain = quantize_encoder(_copy(block), {})
    split = quantize_encoder(_copy(block), channels)
    with torch.inference_mode():
        plain_error = (plain(x) - expected).abs().mean()
        split_error = (split(x) - expected).abs().mean()
    assert split_error < plain_error / 3


def _copy(block):
    clone = _Block()
    clone.load_state_dict(block.state_dict())
    return clone


def test_bundled_int8_model_agrees_with_float32():
    texts = ["The worst airline ever, two hours on hold and still no refund",
             "Thanks, all sorted!", "Train to Utrecht leaves at 9", "meh", "I love the new app update :)",
             "Al drie dagen geen internet, ik ga opzeggen", "Is the store open on Sunday?"]
    int8 = MiniLMClassifier(quantize=True).predict_proba(texts)
    float32 = MiniLMClassifier(quantize=False).predict_proba(texts)
    assert np.abs(int8 - float32).max() < 0.1
    assert (int8.argmax(axis=1) == float32.argmax(axis=1)).all()
