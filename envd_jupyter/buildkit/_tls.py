"""TLS to daemons as docker and buildctl do it, and the rule for plain text.

``TLSConfig`` serves both routes: grpc credentials straight to buildkitd, and an ``ssl`` context
for dockerd's HTTP API and its hijacked /grpc and /session connections. Docker's environment
applies to ``docker+tcp://`` addresses: ``DOCKER_TLS_VERIFY`` set → verified TLS with ca.pem,
cert.pem, key.pem from ``DOCKER_CERT_PATH`` (or ``~/.docker``); ``DOCKER_CERT_PATH`` or
``DOCKER_TLS`` without it → TLS that does not check the daemon (docker's ``--tls``), which
``_connect`` allows to loopback only. Verification is on unless a config says ``verify=False``.
Plain text to a remote address is refused unless asked for with ``tls=False``; loopback needs no TLS.

``tls_setting`` reads the ``tls:`` value of a config file or notebook setting into a TLSConfig,
checking it at once and naming the setting's path in a one-line ``TLSConfigError``.
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

from envd_jupyter.buildkit._errors import BuildKitError

_SETTING_KEYS = ("ca", "cert", "key", "server_name", "verify")


class TLSConfigError(BuildKitError, ValueError):
    """A ``tls:`` setting that cannot work: names the setting's path and the problem in one line."""


@dataclass(frozen=True)
class TLSConfig:
    """TLS to a tcp:// daemon; ``cert``+``key`` make it mutual TLS; ``server_name`` overrides the name checked.

    ``verify=False`` skips checking the daemon's certificate (docker's ``--tls``; dockerd only: grpc to
    buildkitd always verifies): the traffic is encrypted but anyone on the path can pose as the daemon.
    """

    ca: str | Path | None = None
    cert: str | Path | None = None
    key: str | Path | None = None
    server_name: str | None = None
    verify: bool = True

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path):
            return Path(path).read_bytes() if path else None

        self._check_pair()
        if not self.verify:
            raise ValueError("grpc to buildkitd always verifies the daemon's certificate: verify=False is "
                             "for docker+tcp:// addresses only")
        return grpc.ssl_channel_credentials(read(self.ca), read(self.key), read(self.cert))

    def ssl_context(self) -> ssl.SSLContext:
        """A client context for dockerd's HTTP/1.1 endpoints: verifying chain and host name unless ``verify=False``."""
        self._check_pair()
        return _context(self)

    def _check_pair(self) -> None:
        if bool(self.cert) != bool(self.key):
            raise ValueError("TLS client auth needs both cert and key")


@functools.lru_cache(maxsize=16)
def _context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls.ca) if tls.ca and tls.verify else None)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.cert:
        context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


def docker_env_tls(environ: Mapping[str, str] | None = None) -> TLSConfig | None:
    """The TLS docker's environment asks for; None when it asks for none.

    ``DOCKER_TLS_VERIFY`` set (any value): verified, with ca.pem, cert.pem, key.pem from
    ``DOCKER_CERT_PATH`` or ``~/.docker``. Without it, ``DOCKER_CERT_PATH`` (docker's Go client) or
    ``DOCKER_TLS`` (its CLI) ask for TLS that does not check the daemon, with the client certificate
    when both of its files exist there.
    """
    env = os.environ if environ is None else environ
    base = Path(env.get("DOCKER_CERT_PATH") or Path.home() / ".docker")
    if env.get("DOCKER_TLS_VERIFY"):
        return TLSConfig(ca=base / "ca.pem", cert=base / "cert.pem", key=base / "key.pem")
    if not env.get("DOCKER_CERT_PATH") and not env.get("DOCKER_TLS"):
        return None
    pair = (base / "cert.pem", base / "key.pem")
    cert, key = pair if all(path.is_file() for path in pair) else (None, None)
    return TLSConfig(cert=cert, key=key, verify=False)


def tls_setting(value: object, *, where: str = "tls", relative_to: str | Path | None = None) -> TLSConfig | bool | None:
    """A ``tls:`` setting → TLSConfig; ``false`` → False (plain text allowed); absent (None) → None.

    The mapping takes ``ca``, ``cert``, ``key`` (paths, ``~`` expanded, relative ones from
    ``relative_to``), ``server_name`` and ``verify``. Files are read and the pair checked now, so a
    mistake is one TLSConfigError naming ``where`` (e.g. ``fleet.yaml: builders.remote.tls.ca``).
    """
    if value is None or value is False or isinstance(value, TLSConfig):
        return value
    if value is True:
        raise TLSConfigError(f"{where}: true says nothing about certificates: use {{}} for the system's CAs, "
                             "{ca, cert, key} for your own, or false for plain text")
    if not isinstance(value, Mapping):
        raise TLSConfigError(f"{where}: expected a mapping of {', '.join(_SETTING_KEYS)}, or false; "
                             f"got {type(value).__name__}")
    unknown = sorted(str(key) for key in value if key not in _SETTING_KEYS)
    if unknown:
        raise TLSConfigError(f"{where}: unknown key {unknown[0]!r} (expected {', '.join(_SETTING_KEYS)})")
    fields: dict = {}
    for key in ("ca", "cert", "key"):
        if value.get(key) is not None:
            fields[key] = _setting_file(value[key], f"{where}.{key}", relative_to)
    if value.get("server_name") is not None:
        if not isinstance(value["server_name"], str) or not value["server_name"]:
            raise TLSConfigError(f"{where}.server_name: expected a host name")
        fields["server_name"] = value["server_name"]
    if "verify" in value:
        if not isinstance(value["verify"], bool):
            raise TLSConfigError(f"{where}.verify: expected true or false")
        fields["verify"] = value["verify"]
    if ("cert" in fields) != ("key" in fields):
        raise TLSConfigError(f"{where}: cert and key go together (a client certificate needs its key)")
    tls = TLSConfig(**fields)
    try:
        _context(tls)
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(f"{where}: the certificates do not load: {' '.join(str(exc).split())}") from None
    return tls


def _setting_file(value: object, where: str, relative_to: str | Path | None) -> Path:
    if not isinstance(value, (str, Path)) or not str(value):
        raise TLSConfigError(f"{where}: expected a file path")
    path = Path(value).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = Path(relative_to) / path
    if not path.is_file():
        raise TLSConfigError(f"{where}: {path}: no such file")
    return path


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
