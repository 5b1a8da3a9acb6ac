"""The garbage collector paused over an analysis (host.py): spans nest and overlap across
threads, and the collector comes back as it was only when the last one ends."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from modelmeter.host import collector_paused, pause_collector, resume_collector


@pytest.fixture(autouse=True)
def _collector_back() -> Iterator[None]:
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_nested_spans() -> None:
    gc.enable()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer span still runs
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_as_a_decorator_and_on_error() -> None:
    gc.enable()

    @collector_paused()
    def fails() -> None:
        assert not gc.isenabled()
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fails()
    assert gc.isenabled()


def test_overlapping_spans_in_two_threads() -> None:
    # thread A begins, thread B begins, A ends while B still runs: the collector stays off
    # until B ends (a per-thread "was it on" would switch it back on under B)
    gc.enable()
    a_began, b_began, a_ended = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def a() -> None:
        pause_collector()
        a_began.set()
        b_began.wait(10)
        resume_collector()
        a_ended.set()

    def b() -> None:
        a_began.wait(10)
        pause_collector()
        b_began.set()
        a_ended.wait(10)
        seen.append(gc.isenabled())
        resume_collector()

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [False]
    assert gc.isenabled()
