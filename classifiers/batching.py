"""Batching helpers shared by the transformer classifiers: tweets vary a lot in length, so
batches of similar lengths waste little compute on padding."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def length_sorted_batches(encoded: Sequence[Sequence[int]], batch_size: int) -> Iterator[list[int]]:
    """Row indices in batches of similar token length."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


def pad(rows: Sequence[Sequence[int]], pad_id: int = 0):
    """Token id rows -> (input_ids, attention_mask) tensors, right-padded to the longest row."""
    import torch

    width = max(1, max(len(r) for r in rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = 1
    return ids, mask


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
