"""Any Hugging Face text-classification model as the sentiment model, by hub name or local directory.

For teams that want a larger multilingual model in production, e.g.
`cardiffnlp/twitter-xlm-roberta-base-sentiment-multilingual`. The model's own labels are mapped
onto negative / neutral / positive, by name when they are named so, else by `label_map`. Several
labels may map onto one (a five-star model's "1 star" and "2 stars" both negative): their
probabilities add up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from classifiers.batching import length_sorted_batches, pad_tensors, use_cores, without_onednn
from classifiers.lexicon import SENTIMENT_LABELS
from classifiers.textnorm import normalise_post

_ALIASES = {"neg": "negative", "neu": "neutral", "pos": "positive"}


class HubModelError(RuntimeError):
    """The model cannot be loaded, or its labels cannot be mapped onto the sentiment labels."""


class HubSentiment:
    """scikit-learn style wrapper: `predict_proba` gives columns in `classes_` order.

    Parameters: `model` (hub name or directory), `label_map` (model label -> sentiment label),
    `max_length`, `batch_size`, `num_threads`, `device`, `local_files_only` (no download).
    """

    classes_ = SENTIMENT_LABELS

    def __init__(self, model: str, *, label_map: Mapping[str, str] | None = None, max_length: int = 128,
                 batch_size: int = 32, num_threads: int | None = None, device: str = "cpu",
                 local_files_only: bool = False, epochs: int = 1, learning_rate: float = 2e-5):
        self.model = model
        self.label_map = dict(label_map or {})
        self.max_length = max_length
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.device = device
        self.local_files_only = local_files_only
        self.epochs = epochs
        self.learning_rate = learning_rate
        self._net = None
        self._tokenizer = None
        self._groups: np.ndarray | None = None  # (model labels, classes_): 1 where that label counts as that class

    @property
    def name(self) -> str:
        return self.model

    @property
    def version(self) -> str:
        self._load()
        return str(getattr(self._net.config, "_commit_hash", None) or "local")

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._load()
        use_cores(self.num_threads)
        out = np.zeros((len(texts), len(self.classes_)), dtype=np.float32)
        if not texts:
            return out
        encoded = self._encode(texts)
        self._net.eval()
        with torch.inference_mode(), without_onednn():
            for rows in length_sorted_batches(encoded, self.batch_size):
                ids, mask = pad_tensors([encoded[i] for i in rows], self._tokenizer.pad_token_id or 0)
                logits = self._net(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                out[rows] = torch.softmax(logits.float(), dim=-1).cpu().numpy() @ self._groups
        return out

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.classes_[i] for i in self.predict_proba(texts).argmax(axis=1)]

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> HubSentiment:
        """Fine-tune the whole model on labelled posts (labels from `classes_`)."""
        import torch

        unknown = set(labels) - set(self.classes_)
        if unknown or len(texts) != len(labels) or not texts:
            raise ValueError(f"fit needs one label per text from {self.classes_}; got unknown {sorted(unknown)[:5]}")
        self._load()
        use_cores(self.num_threads)
        encoded = self._encode(texts)
        # The loss is on each class's summed probability, so labels grouped into one class share it.
        log_groups = torch.log(torch.as_tensor(self._groups, device=self.device))
        optimizer = torch.optim.AdamW(self._net.parameters(), lr=self.learning_rate)
        self._net.train()
        for _ in range(self.epochs):
            for rows in length_sorted_batches(encoded, self.batch_size):
                ids, mask = pad_tensors([encoded[i] for i in rows], self._tokenizer.pad_token_id or 0)
                logits = self._net(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
                target = torch.tensor([self.classes_.index(labels[i]) for i in rows], device=self.device)
                log_probs = torch.log_softmax(logits.float(), dim=-1)
                class_log_probs = torch.logsumexp(log_probs.unsqueeze(2) + log_groups, dim=1)
                torch.nn.functional.nll_loss(class_log_probs, target).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        self._net.eval()
        return self

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        cleaned = [normalise_post(t) if isinstance(t, str) else "" for t in texts]
        return self._tokenizer(cleaned, truncation=True, max_length=self.max_length)["input_ids"]

    def _load(self) -> None:
        if self._net is not None:
            return
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model, local_files_only=self.local_files_only)
            net = AutoModelForSequenceClassification.from_pretrained(self.model, local_files_only=self.local_files_only)
        except (OSError, ValueError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HubModelError(f"classifiers.sentiment_model: cannot load {self.model!r}: {first_line}") from None
        self._groups = self._map_labels(net.config.id2label)
        self._net, self._tokenizer = net.to(self.device), tokenizer

    def _map_labels(self, id2label: Mapping[int, str]) -> np.ndarray:
        """Which of `classes_` each model output counts as. Every output must count as one: an
        unmapped label ("very negative" of a five-class model) would otherwise be dropped and the
        rest rescaled, silently reading an angry post as neutral."""
        groups = np.zeros((len(id2label), len(self.classes_)), dtype=np.float32)
        unmapped = []
        for idx, raw in id2label.items():
            label = (self.label_map.get(raw) or _ALIASES.get(raw.lower(), raw)).lower()
            if label in self.classes_:
                groups[int(idx), self.classes_.index(label)] = 1.0
            else:
                unmapped.append(raw)
        missing = [label for k, label in enumerate(self.classes_) if not groups[:, k].any()]
        if unmapped or missing:
            problem = " and ".join([*([f"do not map {sorted(unmapped)}"] if unmapped else []),
                                    *([f"name no {', '.join(missing)} label"] if missing else [])])
            raise HubModelError(
                f"classifiers.sentiment_labels: the model's labels {sorted(id2label.values())} {problem}; map each "
                f"onto negative, neutral or positive, e.g. sentiment_labels: {{LABEL_0: negative, LABEL_1: neutral, "
                f"LABEL_2: positive}}")
        return groups
