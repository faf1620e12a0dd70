"""``connect()``: find a daemon, prove it answers, and hand back a Client.

A failed connect raises one ConnectError naming every address tried, why each failed, and
what to run, because "failed to connect to all addresses" alone sends users hunting.
"""

from __future__ import annotations

import os
from typing import Mapping

import grpc

from envd_jupyter._proto import control_pb2, control_pb2_grpc
from envd_jupyter.buildkit._address import Address, AddressError, candidates, parse
from envd_jupyter.buildkit._errors import ConnectError
from envd_jupyter.buildkit._hijack import open_socket
from envd_jupyter.buildkit._stdio import exit_reason
from envd_jupyter.buildkit._stdio_transport import StdioTransport
from envd_jupyter.buildkit._tls import TLSConfig, docker_env_tls, is_loopback, tls_setting
from envd_jupyter.buildkit._transport import DirectTransport, DockerTransport

DEFAULT_TIMEOUT = 10.0
HINT = ("start a daemon: `scripts/buildkit-up` (this project's dockerd flavours), "
        "`buildkitd --addr unix:///run/buildkit/buildkitd.sock`, or `dockerd`; "
        "or point BUILDKIT_HOST / DOCKER_HOST at a running one")


def connect(address: str | None = None, *, tls: TLSConfig | Mapping | bool | None = None,
            timeout: float = DEFAULT_TIMEOUT):
    """Connect to ``address`` (or discover one) and return a Client whose daemon answered.

    ``tls``: a TLSConfig (or its fields as a mapping) for tcp:// addresses; ``False`` allows plain text
    to a remote address, which is otherwise refused (loopback needs no TLS). ``docker+tcp://`` addresses
    without ``tls`` follow docker's ``DOCKER_TLS_VERIFY`` / ``DOCKER_CERT_PATH`` / ``DOCKER_TLS``; TLS
    that does not check a remote daemon needs an explicit ``TLSConfig(verify=False)``.
    """
    from envd_jupyter.buildkit._client import Client

    if isinstance(tls, Mapping):
        tls = tls_setting(tls)
    if tls is True:
        raise ValueError("tls=True says nothing about certificates: pass a TLSConfig (or tls=False for plain text)")
    try:
        tried = [parse(address)] if address else candidates()
    except AddressError as exc:
        raise ConnectError(str(exc)) from None
    failures = []
    for addr in tried:
        chosen = tls_for(addr, tls)
        try:
            transport = _open(addr, chosen, timeout)
        except (OSError, ValueError, grpc.RpcError) as exc:
            failures.append(f"{addr} ({addr.source}): {_reason(exc)}")
            continue
        return Client(transport, timeout=timeout)
    raise ConnectError(f"no BuildKit daemon answered; tried {'; '.join(failures)}. {HINT}")


def tls_for(addr: Address, tls: TLSConfig | bool | None) -> TLSConfig | None:
    """The TLS an address gets; ConnectError (one line, at once) for plain text, or TLS that does not
    check the daemon, to a remote daemon that was not asked for explicitly."""
    if addr.transport != "tcp":
        if isinstance(tls, TLSConfig) and addr.source == "explicit":
            raise ConnectError(f"{addr}: TLS applies to tcp:// addresses only")
        return None
    if tls is False:
        return None
    if tls is not None:
        if not tls.verify and addr.kind != "docker":
            raise ConnectError(f"{addr}: grpc to buildkitd always verifies the daemon's certificate; "
                               "verify=False is for docker+tcp:// addresses only")
        return tls
    from_env = docker_env_tls() if addr.kind == "docker" else None
    if from_env is not None and (from_env.verify or is_loopback(addr.target)):
        return from_env
    if from_env is not None:
        raise ConnectError(f"refusing TLS that does not check {addr} ({addr.source}): DOCKER_CERT_PATH or "
                           "DOCKER_TLS without DOCKER_TLS_VERIFY would let anyone on the path pose as the daemon; "
                           "set DOCKER_TLS_VERIFY=1, or accept it with tls=TLSConfig(..., verify=False)")
    if is_loopback(addr.target):
        return None
    hint = "DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH, or " if addr.kind == "docker" else ""
    raise ConnectError(f"refusing plain text to {addr} ({addr.source}): a remote daemon needs TLS "
                       f"({hint}tls=TLSConfig(ca=..., cert=..., key=...)); tls=False allows plain text")


def _open(addr: Address, tls: TLSConfig | None, timeout: float):
    if addr.transport == "unix" and not os.path.exists(addr.target):
        raise FileNotFoundError(f"socket {addr.target} does not exist")
    if addr.kind == "docker":
        _ping_docker(addr, timeout, tls)
        # Each upgrade through a helper (ssh) starts a process and logs in: the connect timeout, not 5 s.
        transport = DockerTransport(addr, tls=tls, hijack_timeout=timeout if addr.uses_helper else 5.0)
    elif addr.uses_helper:
        transport = StdioTransport(addr, timeout=timeout)
    else:
        transport = DirectTransport(addr, tls)
    try:
        control_pb2_grpc.ControlStub(transport.channel).ListWorkers(
            control_pb2.ListWorkersRequest(), timeout=timeout, wait_for_ready=False)
    except grpc.RpcError:
        # grpcio only saw the stream close; a helper process that failed says why (ssh: "Permission denied").
        reason = transport.failure() if isinstance(transport, StdioTransport) else ""
        transport.close()
        if reason:
            raise OSError(reason) from None
        raise
    except BaseException:
        transport.close()
        raise
    return transport


def _ping_docker(addr: Address, timeout: float, tls: TLSConfig | None) -> None:
    """dockerd answers HTTP; checking ``/_ping`` first gives a real reason when it does not."""
    with open_socket(addr, timeout, tls) as sock:
        try:
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            head, lost = sock.recv(256), None
        except ConnectionError as exc:
            head, lost = b"", exc
        reason = "" if head else exit_reason(sock)  # a helper process (ssh) that failed to log in, say
    if reason or lost:
        raise OSError(reason) if reason else lost
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
        raise OSError(f"not a docker daemon (answered {head[:40]!r})")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name}: {exc.details()}"
    if type(exc) is OSError or (isinstance(exc, OSError) and exc.strerror):
        return str(exc)  # our own one-line reasons (a helper's failure) and the system's own text
    return f"{type(exc).__name__}: {exc}"
