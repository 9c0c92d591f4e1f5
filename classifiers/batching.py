"""Batching helpers shared by the transformer classifiers: tweets vary a lot in length, so
batches of similar lengths waste little compute on padding."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence


def length_sorted_batches(encoded: Sequence[Sequence[int]], batch_size: int) -> Iterator[list[int]]:
    """Row indices in batches of similar token length."""
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


# Widths rounded up to a multiple of this: oneDNN caches kernels per input shape, and one
# shape per possible length grew the process by 600 MB over 10,000 posts.
PAD_TO_MULTIPLE = 8


def pad(rows: Sequence[Sequence[int]], pad_id: int = 0):
    """Token id rows -> (input_ids, attention_mask) tensors, right-padded."""
    import torch

    width = max(1, max(len(r) for r in rows))
    width = -(-width // PAD_TO_MULTIPLE) * PAD_TO_MULTIPLE
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
