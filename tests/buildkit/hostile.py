"""The daemon's side of a session, played by a test: a grpc client calling our real session server.

The code under test is the client's session server (``H2Server`` and the services on it); this peer
sends what a hostile or broken daemon could: patterns, paths, huge messages, out-of-order packets.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading

import grpc

from envd_jupyter._proto import fsutil_pb2
from envd_jupyter.buildkit._session.h2server import H2Server
from envd_jupyter.buildkit._session.health import HealthService

P = fsutil_pb2.Packet
RAW = {"request_serializer": None, "response_deserializer": None}
BIG = 256 * 1024 * 1024  # the test client itself never refuses a size; the server under test must


class FakeDaemon:
    """A session server with ``services``, and a grpc channel to it from the daemon's side."""

    def __init__(self, services, *, server_factory=H2Server):
        self._dir = tempfile.mkdtemp(prefix="envd-fake-daemon-")
        path = self.socket_path = os.path.join(self._dir, "session.sock")
        self.server = server_factory()
        for service in (HealthService(), *services):
            service.add_to_server(self.server)
        self.server.add_insecure_port("unix:" + path)
        self.server.start()
        self.channel = grpc.insecure_channel("unix:" + path, options=[
            ("grpc.max_send_message_length", BIG), ("grpc.max_receive_message_length", BIG)])

    def unary(self, method: str, request: bytes, *, metadata=(), timeout: float = 30.0) -> bytes:
        return self.channel.unary_unary(method, **RAW)(request, metadata=metadata, timeout=timeout)

    def stream(self, method: str, requests, *, metadata=(), timeout: float = 30.0) -> list[bytes]:
        return list(self.channel.stream_stream(method, **RAW)(iter(requests), metadata=metadata, timeout=timeout))

    def list_context(self, metadata, *, timeout: float = 30.0) -> list[str]:
        """Play the daemon's FileSync receiver: read every STAT our sender offers, request nothing, end."""
        stats_over = threading.Event()

        def requests():
            stats_over.wait(timeout)
            yield fin()

        call = self.channel.stream_stream("/moby.filesync.v1.FileSync/DiffCopy", **RAW)(
            requests(), metadata=metadata, timeout=timeout)
        paths = []
        for raw in call:
            packet = P.FromString(raw)
            if packet.type == P.PACKET_STAT and packet.HasField("stat"):
                paths.append(packet.stat.path)
            elif packet.type == P.PACKET_STAT:
                stats_over.set()
            elif packet.type in (P.PACKET_FIN, P.PACKET_ERR):
                stats_over.set()
                break
        return paths

    def health(self, timeout: float = 30.0) -> bytes:
        return self.unary("/grpc.health.v1.Health/Check", b"", timeout=timeout)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(0.5).wait(5)
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> "FakeDaemon":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stat(path: str, mode: int = 0o644, **fields) -> bytes:
    return P(type=P.PACKET_STAT, stat=fsutil_pb2.Stat(path=path, mode=mode, **fields)).SerializeToString()


def end_of_stats() -> bytes:
    return P(type=P.PACKET_STAT).SerializeToString()


def data(file_id: int, payload: bytes = b"") -> bytes:
    return P(type=P.PACKET_DATA, ID=file_id, data=payload).SerializeToString()


def fin() -> bytes:
    return P(type=P.PACKET_FIN).SerializeToString()


def packets(raw: list[bytes]) -> list:
    return [P.FromString(item) for item in raw]


def raw_h2_call(socket_path: str, method: str, body: bytes, *, timeout: float = 30.0) -> dict[str, str]:
    """One call from a bare h2 client sending ``body`` as is (any framing, e.g. a lying length prefix)
    without ending the stream; returns the response trailers (grpc-status, grpc-message)."""
    import socket

    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", method),
                                   (":authority", "session"), ("content-type", "application/grpc"), ("te", "trailers")])
        conn.send_data(stream, body)
        sock.sendall(conn.data_to_send())
        while True:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection without trailers")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.TrailersReceived) and event.stream_id == stream:
                    return dict(event.headers)
                if isinstance(event, h2.events.ResponseReceived) and ("grpc-status", "0") not in event.headers \
                        and any(k == "grpc-status" for k, _ in event.headers):
                    return dict(event.headers)  # trailers-only response
            sock.sendall(conn.data_to_send())


def raw_h2_streams(socket_path: str, method: str, count: int, *, timeout: float = 30.0) -> dict:
    """Open ``count`` streams at once from a bare h2 client that ignores the server's stream limit (all
    HEADERS are sent before the server's SETTINGS are read), none of them ended. Returns what the server
    advertised (``max_streams``), which streams it reset (``reset``) and whether it ended the connection."""
    import socket

    import h2.config
    import h2.connection
    import h2.events
    import h2.settings

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    seen = {"max_streams": None, "reset": set(), "terminated": False}
    opened = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(socket_path)
        conn.initiate_connection()
        for _ in range(count):
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", method),
                                       (":authority", "session"), ("content-type", "application/grpc"),
                                       ("te", "trailers")])
            opened.append(stream)
        sock.sendall(conn.data_to_send())
        sock.settimeout(2.0)  # the answers to a burst come at once; then it is quiet
        while True:
            try:
                data = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionError:
                data = b""
            if not data:
                seen["terminated"] = True
                break
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                seen["terminated"] = True
                break
            for event in events:
                if isinstance(event, h2.events.RemoteSettingsChanged):
                    changed = event.changed_settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
                    if changed is not None:
                        seen["max_streams"] = changed.new_value
                elif isinstance(event, h2.events.StreamReset):
                    seen["reset"].add(event.stream_id)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    seen["terminated"] = True
            if seen["terminated"]:
                break
            try:
                sock.sendall(conn.data_to_send())
            except ConnectionError:
                seen["terminated"] = True
                break
    seen["opened"] = opened
    return seen
