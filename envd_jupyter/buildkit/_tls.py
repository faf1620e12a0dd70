"""TLS to daemons as docker and buildctl do it, and the rule for plain text.

``TLSConfig`` serves both routes: grpc credentials straight to buildkitd, and an ``ssl`` context
for dockerd's HTTP API and its hijacked /grpc and /session connections. Docker's environment
(``DOCKER_TLS_VERIFY`` set, certificates in ``DOCKER_CERT_PATH`` or ``~/.docker`` as ca.pem,
cert.pem, key.pem) applies to ``docker+tcp://`` addresses. Verification is always on. Plain text
to a remote address is refused unless asked for with ``tls=False``; loopback needs no TLS.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import grpc


@dataclass(frozen=True)
class TLSConfig:
    """TLS to a tcp:// daemon; ``cert``+``key`` make it mutual TLS; ``server_name`` overrides the name checked."""

    ca: str | Path | None = None
    cert: str | Path | None = None
    key: str | Path | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path):
            return Path(path).read_bytes() if path else None

        self._check_pair()
        return grpc.ssl_channel_credentials(read(self.ca), read(self.key), read(self.cert))

    def ssl_context(self) -> ssl.SSLContext:
        """A verifying client context (hostname and chain) for dockerd's HTTP/1.1 endpoints."""
        self._check_pair()
        return _context(self)

    def _check_pair(self) -> None:
        if bool(self.cert) != bool(self.key):
            raise ValueError("TLS client auth needs both cert and key")


@functools.lru_cache(maxsize=16)
def _context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
    if tls.cert:
        context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


def docker_env_tls(environ: Mapping[str, str] | None = None) -> TLSConfig | None:
    """What docker's CLI uses with ``DOCKER_TLS_VERIFY`` set (any value), None when it is not set."""
    env = os.environ if environ is None else environ
    if not env.get("DOCKER_TLS_VERIFY"):
        return None
    base = Path(env.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
    return TLSConfig(ca=base / "ca.pem", cert=base / "cert.pem", key=base / "key.pem")


def is_loopback(host: str) -> bool:
    """``host`` or ``host:port`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    name = host
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        name = host.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(target: str) -> str:
    """The host part of ``host:port`` (brackets of an IPv6 literal removed)."""
    host = target.rpartition(":")[0] if target.count(":") == 1 or target.startswith("[") else target
    return host.strip("[]")
