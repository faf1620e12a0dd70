"""A daemon dying as a solve opens its session (dockerd's ``POST /session`` upgrade) is a typed BuildKit
error, ConnectError or DaemonError, never a bare socket error: the fleet fails over on exactly those.

The hostile peer is a byte-for-byte unix proxy in front of the real current daemon that cuts the
session upgrade, or stops listening once the client knows the daemon's caps."""

import os
import socket
import threading

import pytest

from envd_jupyter import llb
from envd_jupyter.buildkit import ConnectError, DaemonError, connect

WAIT = 60  # seconds the proxy's sockets wait at most


class SessionCuttingProxy:
    """Forwards each connection to ``upstream``; closes one that starts ``POST /session`` (the daemon
    dying while the session opens)."""

    def __init__(self, upstream: str, path: str):
        self.upstream, self.path = upstream, path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(16)
        self.sessions_cut = 0
        threading.Thread(target=self._accept, name="test-session-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                local, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(local,), daemon=True).start()

    def _serve(self, local: socket.socket) -> None:
        local.settimeout(WAIT)
        first = local.recv(65536)
        if first.startswith(b"POST /session"):
            self.sessions_cut += 1
            local.close()
            return
        remote = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        remote.connect(self.upstream)
        remote.sendall(first)
        threading.Thread(target=self._pipe, args=(remote, local), daemon=True).start()
        self._pipe(local, remote)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(None)
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop_listening(self) -> None:
        """The daemon is gone: its socket file is still there, and nothing accepts on it."""
        self.listener.close()
        os.unlink(self.path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)  # bound, never listening: connect() is refused

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy(docker_current, tmp_path):
    peer = SessionCuttingProxy(docker_current, str(tmp_path / "docker.sock"))
    yield peer
    peer.close()


def test_a_session_cut_while_it_opens_is_a_daemon_error(proxy, busybox, unique):
    with connect(f"docker+unix://{proxy.path}", timeout=WAIT) as client:
        with pytest.raises(DaemonError, match="opening a session to docker\\+unix://.*: the daemon went away"):
            client.solve(llb.image(busybox).run(f"echo {unique}"))
    assert proxy.sessions_cut == 1


def test_a_daemon_gone_before_the_session_opens_is_a_connect_error(proxy, busybox, unique):
    with connect(f"docker+unix://{proxy.path}", timeout=WAIT) as client:
        client.caps()  # known from before the daemon went away
        proxy.stop_listening()
        with pytest.raises(ConnectError, match="nothing answered \\(ConnectionRefusedError"):
            client.interactive()
    assert proxy.sessions_cut == 0
