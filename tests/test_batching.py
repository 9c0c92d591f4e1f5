"""Batching helpers: padding widths and the process-wide oneDNN switch shared by threads."""

import threading

import torch

from classifiers.batching import pad, without_onednn


def test_rows_are_padded_to_the_longest_one_and_no_further():
    ids, mask = pad([[5, 6, 7], [8], [9, 10]], pad_id=1)
    assert ids.tolist() == [[5, 6, 7], [8, 1, 1], [9, 10, 1]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]


def test_onednn_stays_off_until_the_last_thread_leaves_and_is_then_restored():
    assert torch.backends.mkldnn.enabled
    first_inside, second_inside, first_left, second_may_leave = (threading.Event() for _ in range(4))
    seen = {}

    def first():
        with without_onednn():
            first_inside.set()
            second_inside.wait(5)
        first_left.set()

    def second():
        first_inside.wait(5)
        with without_onednn():
            second_inside.set()
            first_left.wait(5)
            seen["after the first left"] = torch.backends.mkldnn.enabled
            second_may_leave.wait(5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_left.wait(5)
    second_may_leave.set()
    for thread in threads:
        thread.join(5)
    assert seen == {"after the first left": False}
    assert torch.backends.mkldnn.enabled


def test_a_switch_already_off_stays_off():
    torch.backends.mkldnn.enabled = False
    try:
        with without_onednn():
            assert not torch.backends.mkldnn.enabled
        assert not torch.backends.mkldnn.enabled
    finally:
        torch.backends.mkldnn.enabled = True
