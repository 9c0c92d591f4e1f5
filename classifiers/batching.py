"""Batching helpers shared by the transformer classifiers: tweets vary a lot in length, so
batches of similar lengths waste little compute on padding."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np


def length_sorted_batches(encoded: Sequence[Sequence[int]], batch_size: int) -> Iterator[list[int]]:
    """Row indices in batches of similar token length."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def pad(rows: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Token id rows -> (input_ids, attention_mask), int64 arrays right-padded to the longest row
    (numpy, so that the int8 path runs without torch; torch callers wrap them with `torch.from_numpy`)."""
    width = max(1, max(len(r) for r in rows))
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
        mask[i, :len(r)] = 1
    return ids, mask


def pad_tensors(rows: Sequence[Sequence[int]], pad_id: int = 0):
    """`pad` as torch tensors (sharing the arrays' memory)."""
    import torch

    ids, mask = pad(rows, pad_id)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def cores(num_threads: int | None = None) -> int:
    """`num_threads` when given, else the cores this process may run on (not the machine's count)."""
    return num_threads or len(os.sched_getaffinity(0))


def use_cores(num_threads: int | None) -> None:
    """torch's intra-op threads = `cores(num_threads)`, for the calling thread: each thread keeps its
    own count (OpenMP), so a worker thread that wants another sets its own."""
    import torch

    threads = cores(num_threads)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


_onednn_lock = threading.Lock()
_onednn_users = 0
_onednn_was_enabled = True


@contextmanager
def without_onednn() -> Iterator[None]:
    """torch's oneDNN kernels off inside; safe to enter from several threads at once (torch's
    switch is process-wide: the first thread in turns it off, the last one out restores it).

    Of the encoders' operations only GELU reaches oneDNN, which compiles and keeps a kernel for
    every input shape: with batches exactly as wide as their longest post (10,000 tweets, 64
    widths) the process grew by up to 330 MB. Padding to a multiple of 8 tokens bounded that
    but made 11 % of the tokens padding. torch's own GELU takes 20 % longer than oneDNN's,
    about 1 % of the encoder's time."""
    import torch

    global _onednn_users, _onednn_was_enabled
    with _onednn_lock:
        if _onednn_users == 0:
            _onednn_was_enabled = torch.backends.mkldnn.enabled
            torch.backends.mkldnn.enabled = False
        _onednn_users += 1
    try:
        yield
    finally:
        with _onednn_lock:
            _onednn_users -= 1
            if _onednn_users == 0:
                torch.backends.mkldnn.enabled = _onednn_was_enabled
