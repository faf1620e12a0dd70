"""The byte pump behind dockerd's hijacked connections: one slow peer stalls only its own pair (issue 17 item 6)."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from envd_jupyter.buildkit import _pump
from envd_jupyter.buildkit._pump import Pump

WAIT = 30.0


def _piped(pump: Pump):
    """Two connected ends for the test; the pump copies between their partners."""
    a_outer, a_inner = socket.socketpair()
    b_outer, b_inner = socket.socketpair()
    pump.add_pair(a_inner, b_inner)
    for sock in (a_outer, b_outer):
        sock.settimeout(WAIT)
    return a_outer, b_outer


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


@pytest.fixture
def pump():
    made = Pump("test-pump")
    yield made
    made.close()


def test_bytes_flow_both_ways_and_a_close_delivers_what_was_sent(pump):
    a, b = _piped(pump)
    payload = os.urandom(5 * 1024 * 1024)
    writer = threading.Thread(target=a.sendall, args=(payload,))
    writer.start()
    assert _read_exactly(b, len(payload)) == payload
    writer.join(WAIT)
    b.sendall(b"reply")
    assert _read_exactly(a, 5) == b"reply"
    b.sendall(b"last words")
    b.close()
    assert _read_exactly(a, 64) == b"last words"  # delivered, then the pair closed


def test_a_peer_that_stops_reading_stalls_only_its_own_pair(pump, monkeypatch):
    monkeypatch.setattr(_pump, "SEND_TIMEOUT", 3600.0)  # the stuck pair stays open throughout
    stuck_source, stuck_sink = _piped(pump)  # nobody reads stuck_sink
    stuck_source.settimeout(0.2)
    sent = 0
    try:
        while sent < 64 * 1024 * 1024:
            sent += stuck_source.send(b"x" * 65536)
    except socket.timeout:
        pass  # every buffer on the way is full: the pump stopped reading from this source
    assert sent < 64 * 1024 * 1024
    a, b = _piped(pump)
    for round_trip in range(50):
        a.sendall(b"ping %d" % round_trip)
        assert _read_exactly(b, len(b"ping %d" % round_trip)) == b"ping %d" % round_trip


def test_a_peer_stalled_past_the_send_timeout_is_closed(pump, monkeypatch):
    monkeypatch.setattr(_pump, "SEND_TIMEOUT", 1.0)
    source, sink = _piped(pump)
    source.settimeout(0.2)
    try:
        while True:
            source.send(b"x" * 65536)
    except socket.timeout:
        pass
    source.settimeout(WAIT)
    try:
        while source.recv(65536):  # what the pump had buffered towards us, if anything
            pass
    except ConnectionResetError:
        pass  # closed: what the test waits for (a socket.timeout instead fails it)
