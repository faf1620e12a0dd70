"""How a Client reaches the daemon: a grpcio channel, plus a way to open session streams.

``DirectTransport`` talks gRPC straight to buildkitd (unix/tcp, optional TLS) and carries
sessions inside ``Control.Session``. ``DockerTransport`` runs a private unix-socket proxy: each
connection grpcio opens is hijacked to dockerd with ``POST /grpc``; sessions use ``POST /session``;
over TLS to a tcp:// dockerd when given ``tls``. Which address gets TLS is ``_connect``'s rule.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import weakref

import grpc

from envd_jupyter.buildkit._address import Address
from envd_jupyter.buildkit._hijack import hijack
from envd_jupyter.buildkit._pump import Pump
from envd_jupyter.buildkit._tls import TLSConfig

MAX_MESSAGE = 64 * 1024 * 1024
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
    # Reconnect quickly after a daemon restart instead of backing off for up to two minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]
# dockerd serves /grpc with Go's x/net/http2, which answers pings without grpc-go's ping policy,
# so we can ping often during calls and notice a frozen (not just dead) daemon within seconds.
# Standalone buildkitd runs grpc-go's server, whose default policy closes clients pinging more often
# than every 5 minutes: pings at that pace (which also set TCP_USER_TIMEOUT on the socket); the
# solve's liveness check (``_lifecycle.Liveness``) notices a silent daemon sooner.
DIRECT_KEEPALIVE = [
    ("grpc.keepalive_time_ms", 300_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
]
DOCKER_KEEPALIVE = [
    ("grpc.keepalive_time_ms", 2000),
    ("grpc.keepalive_timeout_ms", 3000),
    ("grpc.http2.ping_timeout_ms", 3000),  # grpc core times pings out with this, not the line above
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
]


def private_dir(prefix: str) -> str:
    """A 0700 temp dir for sockets only this process should reach."""
    path = tempfile.mkdtemp(prefix=prefix)
    os.chmod(path, 0o700)
    return path


class DirectTransport:
    """gRPC straight to buildkitd; sessions ride in Control.Session."""

    uses_control_session = True

    def __init__(self, address: Address, tls: TLSConfig | None):
        self.address, self.tls = address, tls
        options = CHANNEL_OPTIONS + DIRECT_KEEPALIVE
        if address.transport == "unix":
            target = "unix:" + address.target
        else:
            target = address.target
        if tls is not None:
            if address.transport != "tcp":
                raise ValueError(f"{address}: TLS applies to tcp:// addresses only")
            if tls.server_name:
                options.append(("grpc.ssl_target_name_override", tls.server_name))
            self.channel = grpc.secure_channel(target, tls.credentials(), options=options)
        else:
            self.channel = grpc.insecure_channel(target, options=options)

    def close(self) -> None:
        self.channel.close()


class DockerTransport:
    """dockerd's embedded BuildKit through a per-client unix proxy that hijacks ``/grpc``."""

    uses_control_session = False

    def __init__(self, address: Address, *, tls: TLSConfig | None = None, hijack_timeout: float = 5.0):
        if tls is not None and address.transport != "tcp":
            raise ValueError(f"{address}: TLS applies to tcp:// addresses only")
        self.address, self.tls = address, tls
        self._hijack_timeout = hijack_timeout
        self._dir = private_dir("envd-bk-")
        # A client nobody closes (a script that just exits) still removes its socket dir.
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._pump = Pump(f"envd-buildkit-proxy {address}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = os.path.join(self._dir, "grpc.sock")
        listener.bind(path)
        listener.listen(16)
        self._pump.add_listener(listener, self._accept)
        self.channel_target = path  # a plain h2c gRPC endpoint for this daemon, while the client lives
        self.channel = grpc.insecure_channel("unix:" + path, options=CHANNEL_OPTIONS + DOCKER_KEEPALIVE)

    def _accept(self, local: socket.socket) -> None:
        """In its own thread: a slow dockerd answering the upgrade must not hold up the pump's other pairs."""
        threading.Thread(target=self._connect, args=(local,), name="envd-buildkit-hijack", daemon=True).start()

    def _connect(self, local: socket.socket) -> None:
        try:
            remote, rest = hijack(self.address, "/grpc", timeout=self._hijack_timeout, tls=self.tls)
        except OSError:
            local.close()  # grpcio sees the reset and reports UNAVAILABLE with its own retry
            return
        try:
            self._pump.add_pair(local, remote, to_a=rest)
        except RuntimeError:  # the client closed meanwhile
            local.close()
            remote.close()

    def hijack_session(self, headers: list[tuple[str, str]]) -> tuple[socket.socket, bytes]:
        """``POST /session`` upgraded: the daemon's h2c client stream, and bytes already read from it."""
        return hijack(self.address, "/session", headers, timeout=self._hijack_timeout, tls=self.tls)

    def open_session(self, headers: list[tuple[str, str]], server_path: str) -> "SocketLink":
        """Hijack ``/session`` and pipe it to a session server's unix socket (for servers that only listen)."""
        remote, rest = self.hijack_session(headers)
        local = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            local.settimeout(self._hijack_timeout)
            local.connect(server_path)
        except OSError:
            local.close()
            remote.close()
            raise
        self._pump.add_pair(remote, local, to_b=rest)
        return SocketLink(remote, local)

    def close(self) -> None:
        self.channel.close()
        self._pump.close()
        self._cleanup()


class SocketLink:
    """A session stream (piped by the pump, or served directly); closing it ends the session on the daemon."""

    def __init__(self, *sockets: socket.socket):
        self._sockets = sockets

    def close(self) -> None:
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
