"""gRPC to a standalone buildkitd through connection-helper processes (``_stdio``), one per grpcio connection.

grpcio needs an address to dial, so each transport listens on a private unix socket and the pump pairs
every connection grpcio makes there with a fresh helper, as DockerTransport does with dockerd's hijacked
/grpc; sessions ride in Control.Session over the same channel.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import weakref

import grpc

from envd_jupyter.buildkit._address import Address, helper_argv
from envd_jupyter.buildkit._pump import Pump
from envd_jupyter.buildkit._stdio import GRACE, HelperProcess
from envd_jupyter.buildkit._transport import CHANNEL_OPTIONS, DIRECT_KEEPALIVE, private_dir


class StdioTransport:
    """gRPC to buildkitd through helper processes; ``argv`` overrides the address's own helper command."""

    uses_control_session = True

    def __init__(self, address: Address, *, timeout: float = 10.0, argv: list[str] | None = None):
        self.address, self.tls = address, None
        self._argv = argv or helper_argv(address, connect_timeout=timeout)
        self._latest: HelperProcess | None = None
        self._spawn_error = ""  # why the newest helper could not even start
        self._dir = private_dir("envd-bkx-")
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._dir, True)
        self._pump = Pump(f"envd-buildkit-stdio {address}")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = os.path.join(self._dir, "grpc.sock")
        listener.bind(path)
        listener.listen(16)
        self._pump.add_listener(listener, self._accept)
        self.channel_target = path
        # buildkitd behind the helper is grpc-go's server, with its ping policy: the direct keepalive.
        self.channel = grpc.insecure_channel("unix:" + path, options=CHANNEL_OPTIONS + DIRECT_KEEPALIVE)

    def _accept(self, local: socket.socket) -> None:
        """Starting a process takes a while: in its own thread, so the pump's other pairs keep moving."""
        threading.Thread(target=self._connect, args=(local,), name="envd-buildkit-helper", daemon=True).start()

    def _connect(self, local: socket.socket) -> None:
        try:
            helper = HelperProcess(self._argv)
        except OSError as exc:
            self._spawn_error = str(exc)
            local.close()  # grpcio sees the reset and reports UNAVAILABLE; failure() says why
            return
        self._latest, self._spawn_error = helper, ""
        try:
            self._pump.add_pair(local, helper.socket)
        except RuntimeError:  # the client closed meanwhile
            local.close()
            helper.socket.close()

    def failure(self, wait: float = GRACE) -> str:
        """Why the newest helper's stream ended, in one line ("" if none ended with something to say)."""
        if self._spawn_error or self._latest is None:
            return self._spawn_error
        return self._latest.failure(wait)

    def close(self) -> None:
        self.channel.close()
        self._pump.close()
        self._cleanup()
