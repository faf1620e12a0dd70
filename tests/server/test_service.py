"""The pool's timeouts (pure): a call past its timeout is an error at once, and what it returns later is
handed over (a watch closed, never leaked)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from envd_jupyter.server._errors import DaemonTimeout
from envd_jupyter.server._service import EnvdService
from envd_jupyter.server._settings import EnvdServer


def test_a_late_result_is_handed_over_after_the_timeout():
    service = EnvdService(EnvdServer(timeout=0.5))
    started, release, handed = threading.Event(), threading.Event(), []
    received = threading.Event()

    def slow_open():
        started.set()
        release.wait(30)
        return "a watch"

    def close(late):
        handed.append(late)
        received.set()

    with pytest.raises(DaemonTimeout, match="no answer within 0.5 s"):
        asyncio.run(service.run(slow_open, on_late_result=close))
    assert started.is_set() and handed == []
    release.set()
    assert received.wait(30) and handed == ["a watch"]


def test_a_timely_result_is_returned_and_not_handed_over():
    service = EnvdService(EnvdServer(timeout=30))
    handed = []
    assert asyncio.run(service.run(lambda: "answer", on_late_result=handed.append)) == "answer"
    assert handed == []
