"""A Session: our gRPC server on a private unix socket, bridged to the daemon.

The daemon is the gRPC *client* of a session. We run the server locally and pipe the bytes of
one daemon-side stream into it: dockerd's hijacked ``POST /session`` connection, or for a
standalone buildkitd the ``Control.Session`` BytesMessage stream (whose headers travel as
lower-cased gRPC metadata).
"""

from __future__ import annotations

import os
import secrets as _random
import shutil
import socket
import threading
import weakref
from typing import Any, Callable, Sequence

import grpc

from envd_jupyter._proto import control_pb2, control_pb2_grpc
from envd_jupyter.buildkit._session import SessionService, merge_services
from envd_jupyter.buildkit._session.h2server import H2Server
from envd_jupyter.buildkit._session.health import HealthService
from envd_jupyter.buildkit._transport import SocketLink, private_dir

HEADER_ID = "X-Docker-Expose-Session-Uuid"
HEADER_NAME = "X-Docker-Expose-Session-Name"
HEADER_SHARED_KEY = "X-Docker-Expose-Session-Sharedkey"
HEADER_METHOD = "X-Docker-Expose-Session-Grpc-Method"
CHUNK = 32 * 1024
STOP_GRACE = 0.5  # seconds close() gives handlers still running (the daemon waits for exports' handlers itself)
_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_id() -> str:
    """A 25-character random id, the shape BuildKit's identity.NewID uses for sessions and refs."""
    return "".join(_random.choice(_ALPHABET) for _ in range(25))


# Builds the session's gRPC server when a Session is given no ``server_factory``: a callable
# returning an object with grpc.Server's add_generic_rpc_handlers / add_insecure_port / start /
# stop(grace) -> threading.Event. H2Server packs messages into frames (fast context uploads);
# grpcio_server.GrpcioServer is grpcio's own server.
DEFAULT_SERVER_FACTORY: Callable[[], Any] = H2Server


class Session:
    """One session for one solve (or one interactive build); ``with`` closes it."""

    def __init__(self, services: Sequence[SessionService] = (), *, name: str = "envd-jupyter",
                 shared_key: str = "", server_factory: Callable[[], Any] | None = None):
        self.id = new_id()
        self.name = name
        self.shared_key = shared_key
        self.services = [HealthService(), *merge_services(list(services))]
        self._dir = private_dir("envd-bks-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self.socket_path = os.path.join(self._dir, "session.sock")
        self._server = (server_factory or DEFAULT_SERVER_FACTORY)()
        for service in self.services:
            service.add_to_server(self._server)
        self._server.add_insecure_port("unix:" + self.socket_path)
        self._link = None
        self._closed = False

    def headers(self) -> list[tuple[str, str]]:
        pairs = [(HEADER_ID, self.id), (HEADER_NAME, self.name), (HEADER_SHARED_KEY, self.shared_key)]
        pairs += [(HEADER_METHOD, path) for service in self.services for path in service.method_paths]
        return pairs

    def start(self, transport) -> "Session":
        """Serve locally and open the daemon-side stream through ``transport``."""
        self._server.start()
        try:
            if transport.uses_control_session:
                self._link = ControlSessionLink(transport.channel, self.headers(), self.socket_path)
            elif hasattr(self._server, "serve_socket"):  # H2Server: serve dockerd's stream itself, no pipe
                remote, rest = transport.hijack_session(self.headers())
                self._server.serve_socket(remote, received=rest)
                self._link = SocketLink(remote)
            else:
                self._link = transport.open_session(self.headers(), self.socket_path)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """End the stream and stop the server; waits at most STOP_GRACE for handlers still running.

        A solve's exports are complete when it answers (the daemon waits for their receivers), so
        at close only a handler that ignores its ended context can still run: it is left behind.
        """
        if self._closed:
            return
        self._closed = True
        if self._link is not None:
            self._link.close()
        # Handlers see their context end with the server; a service that ignores it must not hang us.
        self._server.stop(STOP_GRACE).wait(STOP_GRACE)
        self._cleanup()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ControlSessionLink:
    """Pipes ``Control.Session`` messages to and from our local server socket."""

    def __init__(self, channel: grpc.Channel, headers: list[tuple[str, str]], server_path: str):
        self._local = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._local.settimeout(5)
        self._local.connect(server_path)
        self._local.settimeout(None)
        metadata = [(key.lower(), value) for key, value in headers]
        stub = control_pb2_grpc.ControlStub(channel)
        self._call = stub.Session(self._outgoing(), metadata=metadata)
        self._reader = threading.Thread(target=self._incoming, name="envd-session-in", daemon=True)
        self._reader.start()

    def _outgoing(self):
        while True:
            try:
                data = self._local.recv(CHUNK)
            except OSError:
                return
            if not data:
                return
            yield control_pb2.BytesMessage(data=data)

    def _incoming(self) -> None:
        try:
            for message in self._call:
                self._local.sendall(message.data)
        except (grpc.RpcError, OSError):
            pass
        finally:
            self._shutdown_local()

    def _shutdown_local(self) -> None:
        try:
            self._local.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self._call.cancel()
        self._shutdown_local()
        self._reader.join(5)
        self._local.close()
