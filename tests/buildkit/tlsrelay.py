"""A real TLS hop in front of a plain gRPC socket, to test tcp:// + TLS/mTLS without a TLS buildkitd.

Certificates come from the ``openssl`` CLI: a CA, a server cert for ``buildkitd.test`` and a
client cert. The relay terminates TLS (ALPN h2, optionally requiring a client cert signed by the
CA) and pipes bytes to the daemon's h2c endpoint, so the client really speaks TLS to the daemon.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path

SERVER_NAME = "buildkitd.test"


def make_certs(directory: Path) -> dict[str, Path]:
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
        "-keyout", "ca.key", "-out", "ca.pem")
    for name, extra in (("server", f"subjectAltName=DNS:{SERVER_NAME}"), ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr")
        (directory / f"{name}.ext").write_text(extra + "\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
    return {name: directory / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


class TLSRelay:
    """Listens on 127.0.0.1:<port> with TLS; each connection is piped to ``upstream`` (unix socket)."""

    def __init__(self, upstream: str, certs: dict[str, Path] | None, *, require_client_cert: bool = False):
        """``certs=None`` relays plain TCP (for tcp:// without TLS)."""
        self.upstream = upstream
        self.context = None if certs is None else ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if self.context is not None:
            self.context.load_cert_chain(certs["server.pem"], certs["server.key"])
            self.context.set_alpn_protocols(["h2"])
        if require_client_cert:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(certs["ca.pem"])
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.handshake_errors: list[str] = []
        self.frozen = threading.Event()  # set: every connection stays open but carries nothing (a half-open peer)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            worker = threading.Thread(target=self._relay, args=(raw,), daemon=True)
            self._threads.append(worker)
            worker.start()

    def _relay(self, raw: socket.socket) -> None:
        raw.settimeout(10)
        try:
            tls = raw if self.context is None else self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.handshake_errors.append(str(exc))
            raw.close()
            return
        tls.settimeout(None)
        plain = socket.socket(socket.AF_UNIX)
        plain.connect(self.upstream)
        back = threading.Thread(target=_copy, args=(plain, tls, self.frozen, self._stop), daemon=True)
        back.start()
        _copy(tls, plain, self.frozen, self._stop)
        back.join(5)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for thread in self._threads:
            thread.join(5)


def _copy(src: socket.socket, dst: socket.socket, frozen: threading.Event, stop: threading.Event) -> None:
    try:
        while data := src.recv(65536):
            while frozen.is_set() and not stop.wait(0.1):
                pass  # hold the bytes: nothing moves, nothing closes
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
