"""The int8 encoder: the merged float network exported to ONNX, its few outlier channels split
off in float, every other matrix product against a weight in int8, run by ONNX Runtime.

Dynamic int8 quantization scales each batch's activations by one number per matrix. In
MiniLM's feed-forward blocks a single input channel reaches 15-30 where the others stay
below 3 (the same channels for every post), so that one number leaves the ordinary
channels a handful of levels and 8 % of TweetEval's labels flipped against float32. Here
those channels bypass the int8 matrix and are multiplied in float32 (the LLM.int8()
decomposition, Dettmers et al. 2022), and weights get one scale per output column.

ONNX Runtime rather than torch's eager `quantize_dynamic` (which torch has deprecated): with the
same recipe its kernels and fused operators ran the encoder a fifth faster (4,000 tweets, one
thread, AMD EPYC with AVX-512 VNNI, the two alternating: 609-629 against 513-523 posts/s), for
about 1.4 s more at load (export included). The weights are quantized here, straight into ONNX
Runtime's fused DynamicQuantizeMatMul, rather than by `onnxruntime.quantization`, which holds
two more copies of the model while it works (peak RSS while loading 858 against 717 MB); the
layers' biases become those operators' own bias inputs (`fold_biases`).
"""

from __future__ import annotations

import ctypes
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

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
INPUT_NAMES = ("input_ids", "attention_mask")


class QuantizationError(RuntimeError):
    """The network could not be turned into an int8 ONNX model."""


def _torch():
    import torch

    return torch


def _is_feed_forward(name: str) -> bool:
    # "attention.output.dense" also ends in "output.dense"; it is left alone.
    return name.endswith((FEED_FORWARD_INPUT, FEED_FORWARD_OUTPUT)) and "attention" not in name


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


def export_onnx(module, sample_inputs: tuple, output_names: Sequence[str], path: Path) -> None:
    """`module(input_ids, attention_mask)` as an ONNX model at `path` (batch size and length free)."""
    torch = _torch()

    axes = {name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES} | {name: {0: "batch"} for name in output_names}
    with warnings.catch_warnings(), torch.inference_mode():
        # The TorchScript exporter warns that it is deprecated and about branches traced once; the
        # traced branches do not depend on the batch (checked: float32 ONNX = torch on TweetEval).
        warnings.simplefilter("ignore")
        torch.onnx.export(module, sample_inputs, str(path), dynamo=False, input_names=list(INPUT_NAMES),
                          output_names=list(output_names), dynamic_axes=axes, opset_version=17)


def split_outlier_channels(model, channels: Mapping[str, Sequence[int]], weights: Mapping[str, np.ndarray]) -> list[str]:
    """Rewrite each `channels` layer's MatMul in `model` (in place) as
    MatMul(x with the channels zeroed, W) + MatMul(x[channels], W[channels]); returns the names of
    the second products, which must stay float. A layer's MatMul is the one whose constant
    equals its weight (`weights[layer]`, as `torch.nn.Linear.weight`, (out, in)): exporters name
    nodes differently, the weights are what they are."""
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    layer_of: dict[str, str] = {}  # MatMul node name -> layer
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in constants:
            continue
        weight = numpy_helper.to_array(constants[node.input[1]])
        for layer in channels:
            if weight.shape == weights[layer].shape[::-1] and np.array_equal(weight, weights[layer].T):
                layer_of[node.name] = layer
    missing = set(channels) - set(layer_of.values())
    if missing:
        # A silently unsplit layer would cost accuracy without any error: refuse instead.
        raise QuantizationError(f"no MatMul found for layers {sorted(missing)} in the exported graph")
    nodes, float_products = [], []
    for node in graph.node:
        if node.name not in layer_of:
            nodes.append(node)
            continue
        x, weight_name = node.input
        weight = numpy_helper.to_array(constants[weight_name])  # (in, out)
        index = np.asarray(channels[layer_of[node.name]], dtype=np.int64)
        mask = np.ones(weight.shape[0], dtype=np.float32)
        mask[index] = 0.0
        p = node.name
        graph.initializer.extend([numpy_helper.from_array(mask, f"{p}/inlier_mask"),
                                  numpy_helper.from_array(index, f"{p}/outlier_index"),
                                  numpy_helper.from_array(np.ascontiguousarray(weight[index]), f"{p}/outlier_weight")])
        nodes += [helper.make_node("Mul", [x, f"{p}/inlier_mask"], [f"{p}/inliers"], name=f"{p}/Inliers"),
                  helper.make_node("MatMul", [f"{p}/inliers", weight_name], [f"{p}/int8_part"], name=p),
                  helper.make_node("Gather", [x, f"{p}/outlier_index"], [f"{p}/outliers"], axis=-1, name=f"{p}/Outliers"),
                  helper.make_node("MatMul", [f"{p}/outliers", f"{p}/outlier_weight"], [f"{p}/float_part"],
                                   name=f"{p}/FloatPart"),
                  helper.make_node("Add", [f"{p}/int8_part", f"{p}/float_part"], list(node.output), name=f"{p}/Sum")]
        float_products.append(f"{p}/FloatPart")
    del graph.node[:]
    graph.node.extend(nodes)
    return float_products


def quantize_matmuls(model, keep_float: Sequence[str] = ()) -> None:
    """Every MatMul in `model` against a constant weight, except the nodes named in `keep_float`,
    becomes ONNX Runtime's DynamicQuantizeMatMul (in place): activations u8, scaled per call;
    weights int8 with one scale per output column, in 7 bits ([-63, 63]), so that CPUs without
    VNNI, which sum u8 x s8 pairs in 16 bits, cannot overflow."""
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    uses = Counter(name for node in graph.node for name in node.input)
    nodes = []
    for node in graph.node:
        constant = constants.get(node.input[1]) if node.op_type == "MatMul" else None
        # A weight that another node also reads stays float: rewriting it would change what that node reads.
        if (constant is None or node.name in keep_float or constant.data_type != TensorProto.FLOAT
                or uses[constant.name] > 1):
            nodes.append(node)
            continue
        x, weight_name = node.input
        weight = numpy_helper.to_array(constants[weight_name])  # (in, out)
        scale = (np.abs(weight).max(axis=0) / 63.0).astype(np.float32)
        scale[scale == 0] = 1.0
        quantized = np.clip(np.rint(weight / scale), -63, 63).astype(np.int8)
        constants[weight_name].CopyFrom(numpy_helper.from_array(quantized, weight_name))
        graph.initializer.extend([numpy_helper.from_array(scale, f"{weight_name}/scale"),
                                  numpy_helper.from_array(np.zeros_like(quantized[0]), f"{weight_name}/zero_point")])
        nodes.append(helper.make_node("DynamicQuantizeMatMul", [x, weight_name, f"{weight_name}/scale", f"{weight_name}/zero_point"],
                                      list(node.output), name=node.name, domain="com.microsoft"))
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))


def fold_biases(model) -> int:
    """Each Add of a constant vector to a DynamicQuantizeMatMul's product (directly, or after the
    Add that joins an outlier split's two products) becomes that operator's bias input, in place;
    returns how many. ONNX Runtime then adds the bias as it writes the product rather than in one
    more pass over it (36 passes in MiniLM)."""
    from onnx import TensorProto

    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    uses = Counter(name for node in graph.node for name in node.input)
    uses.update(output.name for output in graph.output)  # a graph output is read too: never renamed
    producer = {name: node for node in graph.node for name in node.output}

    def only_reader(name: str, op_type: str):
        node = producer.get(name)
        return node if node is not None and node.op_type == op_type and uses[name] == 1 else None

    def is_bias_of(name: str, product) -> bool:
        bias, weight = constants.get(name), constants[product.input[1]]
        return (bias is not None and bias.data_type == TensorProto.FLOAT and list(bias.dims) == [weight.dims[1]]
                and not (len(product.input) > 4 and product.input[4]))

    folded: set[int] = set()
    for index, add in enumerate(graph.node):
        if add.op_type != "Add":
            continue
        for bias, term in (add.input, add.input[::-1]):
            product = last = only_reader(term, "DynamicQuantizeMatMul")
            if product is None and (split_sum := only_reader(term, "Add")) is not None:
                product = next(filter(None, (only_reader(x, "DynamicQuantizeMatMul") for x in split_sum.input)), None)
                last = split_sum  # its output becomes the bias Add's
            if product is not None and is_bias_of(bias, product):
                product.input.extend([""] * (4 - len(product.input)) + [bias])
                last.output[0] = add.output[0]
                producer[add.output[0]] = last
                folded.add(index)
                break
    kept = [node for index, node in enumerate(graph.node) if index not in folded]
    del graph.node[:]
    graph.node.extend(kept)
    return len(folded)


class Int8Encoder:
    """An ONNX Runtime session over the int8 model; `run` is safe to call from several threads at
    once (each call computes on its own thread: one intra-op thread, so callers choose the cores)."""

    def __init__(self, model_path: Path, output_names: Sequence[str]):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        # Memory patterns are planned and kept per input shape; posts come in ever new shapes.
        options.enable_mem_pattern = False
        options.log_severity_level = 3  # its notes on unused initializers are not the operator's concern
        try:
            self.session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime's load errors share no base class but Exception
            # (an empty file: InvalidArgument); any of them means "build it again", never a failed start.
            raise QuantizationError(f"{model_path}: not a model ONNX Runtime can load ({exc})") from None
        outputs = {out.name for out in self.session.get_outputs()}
        missing = [name for name in output_names if name not in outputs]
        if missing:
            raise QuantizationError(f"{model_path}: the model has no output {', '.join(missing)}")
        self.model_path = Path(model_path)
        self.output_names = list(output_names)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, {"input_ids": input_ids, "attention_mask": attention_mask})
        return dict(zip(self.output_names, values))


def int8_encoder(exported: Path, output_names: Sequence[str], channels: Mapping[str, Sequence[int]],
                 weights: Mapping[str, np.ndarray]) -> Int8Encoder:
    """The float model `export_onnx` wrote at `exported` as an `Int8Encoder`, with `channels` of
    the layers whose `weights` they are (see `split_outlier_channels`) multiplied in float. The
    int8 model is written beside `exported`."""
    import onnx

    model = onnx.load(str(exported))
    quantize_matmuls(model, keep_float=split_outlier_channels(model, channels, weights))
    fold_biases(model)
    quantized = exported.with_name("int8.onnx")
    onnx.save(model, str(quantized))
    del model
    return Int8Encoder(quantized, output_names)


def release_freed_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's `malloc_trim`; elsewhere nothing):
    building the int8 model frees a few hundred MB that the process would otherwise keep."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    trim = getattr(libc, "malloc_trim", None)
    if trim is not None:
        trim(0)
