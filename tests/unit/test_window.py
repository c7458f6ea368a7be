"""Window edges with time as an argument: W - 1 us, W, W + 1 us. No sleeps."""

from __future__ import annotations

import pytest

from watcher.core.window import SlidingCounter

W = 60_000_000  # 60 s in microseconds
T0 = 1_700_000_000_000_000


def test_event_just_inside_the_window_is_counted() -> None:
    c = SlidingCounter(W)
    c.add(T0)
    assert c.add(T0 + W - 1) == 2


def test_event_exactly_a_window_old_has_left() -> None:
    c = SlidingCounter(W)
    c.add(T0)
    assert c.add(T0 + W) == 1


def test_event_older_than_the_window_has_left() -> None:
    c = SlidingCounter(W)
    c.add(T0)
    assert c.add(T0 + W + 1) == 1


@pytest.mark.parametrize(("now", "expected"), [(T0 + W - 1, 1), (T0 + W, 0), (T0 + W + 1, 0)])
def test_count_at_edges(now: int, expected: int) -> None:
    c = SlidingCounter(W)
    c.add(T0)
    assert c.count(now) == expected


def test_groups_are_counted_apart() -> None:
    c = SlidingCounter(W)
    assert c.add(T0, "a.example") == 1
    assert c.add(T0 + 1, "b.example") == 1
    assert c.add(T0 + 2, "a.example") == 2
    assert c.count(T0 + 2, "b.example") == 1


def test_out_of_order_time_counts_at_the_latest_time() -> None:
    c = SlidingCounter(W)
    c.add(T0 + 10)
    assert c.add(T0) == 2  # a straggler is counted, not dropped
    assert c.count(T0 + 10 + W - 1) == 2


def test_bounded_memory_caps_count_and_groups() -> None:
    c = SlidingCounter(W, cap=5, max_groups=2)
    for i in range(10):
        n = c.add(T0 + i)
    assert n == 5
    c.add(T0, "x")
    c.add(T0, "y")  # evicts the group idle longest ("")
    assert c.count(T0 + 10, "") == 0
    assert c.first("x") == T0 + 9


def test_window_length_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        SlidingCounter(0)


def test_a_step_back_within_the_window_is_counted_at_the_latest_time() -> None:
    c = SlidingCounter(W)
    c.add(T0)
    assert c.add(T0 - W // 2) == 2
    assert c.add(T0 + W) == 1  # both left at the latest time's edge


def test_a_step_back_beyond_the_window_forgets_the_future_dated_counts() -> None:
    c = SlidingCounter(W)
    t = T0
    c.add(t - 10, "a")
    c.add(t + 50 * W, "a")  # far ahead (t - 10 has left that window)
    c.add(t + 50 * W, "b")
    assert c.add(t, "a") == 1  # not the one ahead
    assert c.count(t, "b") == 0
    assert c.first("b") is None
    assert c.add(t + W // 2, "a") == 2  # time runs on from the re-based window
    assert c.add(t + W // 2 + W, "a") == 1  # and its events leave it again
