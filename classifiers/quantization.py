"""Int8 quantization of the encoder's linear layers, with its few outlier channels kept in float.

Dynamic int8 quantization scales each batch's activations by one number per matrix. In
MiniLM's feed-forward blocks a single input channel reaches 15-30 where the others stay
below 3 (the same channels for every post), so that one number leaves the ordinary
channels a handful of levels and 8 % of TweetEval's labels flipped against float32. Here
those channels bypass the int8 matrix and are multiplied in float32 (the LLM.int8()
decomposition, Dettmers et al. 2022), and weights get one scale per output row: 2 % of
labels flip, and macro recall moves 0.0014 instead of 0.011, for 10-15 % of the speed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

# Which channels count as outliers: their largest magnitude on the sample posts exceeds this
# many times the median channel's.
OUTLIER_RATIO = 4.0
# The feed-forward layers, where the outliers are (attention's inputs have none worth the cost).
FEED_FORWARD_INPUT, FEED_FORWARD_OUTPUT = "intermediate.dense", "output.dense"
# What the channel magnitudes are measured on at load time: the outliers are a property of the
# encoder, not of the posts, so a few ordinary ones in both languages find them.
SAMPLE_POSTS = (
    "Worst service ever, my flight got cancelled and nobody answers @airline",
    "Thanks for the quick help, all sorted now :)",
    "Why is my internet down AGAIN?? #fail",
    "Going to the match tomorrow with friends.",
    "New phone arrived today http://t.co/abc",
    "Not sure what to think about the new update...",
    "Al drie dagen geen internet, ik ga opzeggen!",
    "Bedankt voor de snelle reactie, top geregeld.",
)


def _torch():
    import torch

    return torch


def _is_feed_forward(name: str) -> bool:
    # "attention.output.dense" also ends in "output.dense"; it is left alone.
    return name.endswith((FEED_FORWARD_INPUT, FEED_FORWARD_OUTPUT)) and "attention" not in name


def _split_linear_class():
    torch = _torch()

    class OutlierSplitLinear(torch.nn.Module):
        """linear(x with `channels` zeroed) + x[channels] @ W[:, channels]^T: the same sum, with the
        outlier channels out of the part that `quantize_dynamic` turns into int8.

        `in_place`: zero them in x itself, which saves a copy of a 1536-wide
        activation; only for a layer whose input nothing else reads (the feed-forward output
        layer's: the activation of the layer before)."""

        def __init__(self, linear: torch.nn.Linear, channels: torch.Tensor, in_place: bool):
            super().__init__()
            self.register_buffer("channels", channels)
            self.register_buffer("outlier_weight", linear.weight.detach()[:, channels].t().contiguous())
            self.linear = linear
            self.in_place = in_place

        def forward(self, x):
            outliers = x[..., self.channels].flatten(0, -2)
            inliers = (x if self.in_place else x.clone()).index_fill_(-1, self.channels, 0.0)
            out = self.linear(inliers)
            out.view(-1, out.shape[-1]).addmm_(outliers, self.outlier_weight)  # in place: no copy of out
            return out

    return OutlierSplitLinear


def outlier_channels(encoder, run_samples: Callable[[], None], ratio: float = OUTLIER_RATIO) -> dict:
    """{feed-forward layer name: input channels whose peak magnitude while `run_samples()` runs
    the float encoder exceeds `ratio` times the median channel's}; layers without any are left out."""
    torch = _torch()
    peaks: dict = {}

    def record(name):
        def hook(_module, inputs, _output):
            x = inputs[0].detach().abs().flatten(0, -2).amax(0)
            peaks[name] = torch.maximum(peaks[name], x) if name in peaks else x
        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in encoder.named_modules()
               if isinstance(module, torch.nn.Linear) and _is_feed_forward(name)]
    try:
        with torch.inference_mode():
            run_samples()
    finally:
        for handle in handles:
            handle.remove()
    found = {name: torch.nonzero(peak > ratio * peak.median()).flatten() for name, peak in peaks.items()}
    return {name: channels for name, channels in found.items() if len(channels)}


def quantize_encoder(encoder, channels: dict):
    """The encoder with `channels` (see `outlier_channels`) split off in float and every linear
    layer int8 (weights per output row, activations per batch). Changes `encoder` in place:
    quantizing a copy held two float encoders at once (peak RSS after loading 733 MB, in place 609)."""
    torch = _torch()
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    split = _split_linear_class()
    for name, idx in channels.items():
        parent, _, child = name.rpartition(".")
        in_place = name.endswith(FEED_FORWARD_OUTPUT)
        setattr(encoder.get_submodule(parent), child, split(encoder.get_submodule(name), idx, in_place))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch marks eager int8 as deprecated; it is still the fastest on CPU
        return quantize_dynamic(encoder, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
