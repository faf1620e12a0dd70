"""dockerd's HTTP upgrade: turn one HTTP/1.1 request into a raw h2c byte stream.

``POST /grpc`` gives a connection on which dockerd serves BuildKit's Control and LLBBridge
APIs; ``POST /session`` gives one on which dockerd *calls* our session services.
"""

from __future__ import annotations

import socket

from envd_jupyter.buildkit._address import Address
from envd_jupyter.buildkit._stdio import exit_reason, open_helper
from envd_jupyter.buildkit._tls import TLSConfig, host_name

MAX_HEADER_BYTES = 64 * 1024


class HijackError(OSError):
    """dockerd refused the upgrade, or did not answer in time."""


def open_socket(address: Address, timeout: float, tls: TLSConfig | None = None) -> socket.socket:
    """A connected stream socket to a unix path or host:port (or a new helper process's stdio, for ssh),
    with ``timeout`` on every wait; TLS over it (handshake done, chain and host name verified) when
    ``tls`` is given."""
    if address.uses_helper:
        return open_helper(address, timeout)
    if tls is not None:
        raw = open_socket(address, timeout)
        try:
            return tls.ssl_context().wrap_socket(raw, server_hostname=tls.server_name or host_name(address.target))
        except BaseException:
            raw.close()
            raise
    if address.transport == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address.target)
        except OSError:
            sock.close()
            raise
        return sock
    host, _, port = address.target.rpartition(":")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)


def hijack(address: Address, path: str, headers: list[tuple[str, str]] = (), *,
           timeout: float = 5.0, tls: TLSConfig | None = None) -> tuple[socket.socket, bytes]:
    """Upgrade ``POST path`` to h2c; return the socket and any bytes that followed the 101 reply."""
    sock = open_socket(address, timeout, tls)
    try:
        lines = [f"POST {path} HTTP/1.1", "Host: docker", "Connection: Upgrade", "Upgrade: h2c",
                 "Content-Length: 0"]
        lines += [f"{key}: {value}" for key, value in headers]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(4096)
            if not chunk:
                raise HijackError(f"{address}: connection closed during {path} upgrade")
            buf += chunk
            if len(buf) > MAX_HEADER_BYTES:
                raise HijackError(f"{address}: oversized reply to {path} upgrade")
        head, _, rest = buf.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")
        if " 101 " not in status_line + " ":
            body = rest.decode("utf-8", "replace").strip()
            raise HijackError(f"{address}: {path} upgrade refused: {status_line} {body}".strip())
        sock.settimeout(None)
        return sock, rest
    except (ConnectionError, HijackError) as exc:
        sock.close()
        reason = exit_reason(sock)  # a helper process (ssh) that failed says why the stream ended
        if reason:
            raise HijackError(f"{address}: {path} upgrade: {reason}") from None
        raise exc
    except BaseException:
        sock.close()
        raise
