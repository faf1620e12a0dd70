"""Bounds on what a daemon can make the session server hold or block (issue 17 item 6), fake daemon peer.

A declared message past 64 MiB is refused before it is buffered (as on the grpcio path), the rest of
the session keeps working, and Health answers however many long streams occupy the workers.
"""

from __future__ import annotations

import struct
import threading

import grpc
import pytest

from envd_jupyter.buildkit._session.grpcio_server import GrpcioServer
from envd_jupyter.buildkit._session.h2server import MAX_MESSAGE, H2Server
from envd_jupyter.buildkit._session.health import SERVING_REPLY

from hostile import FakeDaemon, raw_h2_call


class _Echo:
    """Counts what its handler was given; a long stream holds its worker until released."""

    method_paths = ("/test.Echo/Unary", "/test.Echo/Hold")

    def __init__(self):
        self.received: list[int] = []
        self.release = threading.Event()
        self.holding = threading.Semaphore(0)

    def add_to_server(self, server) -> None:
        def unary(request, context):
            self.received.append(len(request))
            return b"ok"

        def hold(requests, context):
            self.holding.release()
            self.release.wait(60)
            yield b"released"

        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Echo", {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Hold": grpc.stream_stream_rpc_method_handler(hold),
        }),))


@pytest.mark.parametrize("server", [H2Server, GrpcioServer], ids=["h2", "grpcio"])
def test_a_message_past_64_mib_is_refused_and_the_session_goes_on(server):
    echo = _Echo()
    with FakeDaemon([echo], server_factory=server) as daemon:
        with pytest.raises(grpc.RpcError) as refused:
            daemon.unary("/test.Echo/Unary", b"x" * (MAX_MESSAGE + 1), timeout=60)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert daemon.unary("/test.Echo/Unary", b"y" * 1000) == b"ok"
        assert daemon.health() == SERVING_REPLY
    assert echo.received == [1000]


def test_a_declared_length_is_refused_before_its_bytes_arrive():
    """Only the 5-byte prefix of a 4 GiB message is sent, on an open stream: the answer must not wait for it."""
    echo = _Echo()
    with FakeDaemon([echo]) as daemon:
        trailers = raw_h2_call(daemon.socket_path, "/test.Echo/Unary", struct.pack(">BI", 0, 0xFFFFFFF0))
        assert daemon.health() == SERVING_REPLY  # the connection survives
    assert trailers["grpc-status"] == str(grpc.StatusCode.RESOURCE_EXHAUSTED.value[0])
    assert "larger than max" in trailers["grpc-message"]
    assert echo.received == []


@pytest.mark.parametrize("server", [H2Server, GrpcioServer], ids=["h2", "grpcio"])
def test_health_answers_while_every_worker_holds_a_long_stream(server):
    """A peer opens more long streams than the session server has workers (16 by default): Health still answers."""
    echo = _Echo()
    with FakeDaemon([echo], server_factory=server) as daemon:
        workers = daemon.server.max_workers
        calls = [daemon.channel.stream_stream("/test.Echo/Hold", request_serializer=None,
                                              response_deserializer=None)(iter([b"go"]), timeout=60)
                 for _ in range(workers + 8)]
        try:
            for _ in range(workers):
                assert echo.holding.acquire(timeout=30), "every worker holds a stream"
            assert not echo.holding.acquire(timeout=0.2), "the streams past the pool wait for a worker"
            for _ in range(3):
                assert daemon.health(timeout=10) == SERVING_REPLY
        finally:
            echo.release.set()
        assert all(list(call) == [b"released"] for call in calls)


@pytest.mark.parametrize("server", [H2Server, GrpcioServer], ids=["h2", "grpcio"])
def test_a_peer_opening_streams_past_the_limit_gets_no_more_than_100(server):
    """Both servers advertise 100 concurrent streams; a peer that opens more anyway has its connection ended
    (h2's protocol error) or exactly the extra ones refused (grpcio), and the session's other connections
    are still served."""
    from envd_jupyter.buildkit._session.h2server import MAX_STREAMS

    from hostile import raw_h2_streams

    echo = _Echo()
    with FakeDaemon([echo], server_factory=server) as daemon:
        try:
            seen = raw_h2_streams(daemon.socket_path, "/test.Echo/Hold", MAX_STREAMS + 20)
            assert seen["max_streams"] == MAX_STREAMS
            if server is H2Server:
                assert seen["terminated"]
            else:
                assert not seen["terminated"] and seen["reset"] == set(seen["opened"][MAX_STREAMS:])
            assert daemon.health(timeout=10) == SERVING_REPLY
        finally:
            echo.release.set()
