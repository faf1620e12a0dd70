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
from envd_jupyter.buildkit._transport import DirectTransport, DockerTransport, TLSConfig

DEFAULT_TIMEOUT = 10.0
HINT = ("start a daemon: `scripts/buildkit-up` (this project's dockerd flavours), "
        "`buildkitd --addr unix:///run/buildkit/buildkitd.sock`, or `dockerd`; "
        "or point BUILDKIT_HOST / DOCKER_HOST at a running one")


def connect(address: str | None = None, *, tls: TLSConfig | Mapping | None = None,
            timeout: float = DEFAULT_TIMEOUT):
    """Connect to ``address`` (or discover one) and return a Client whose daemon answered."""
    from envd_jupyter.buildkit._client import Client

    if isinstance(tls, Mapping):
        tls = TLSConfig(**tls)
    try:
        tried = [parse(address)] if address else candidates()
    except AddressError as exc:
        raise ConnectError(str(exc)) from None
    failures = []
    for addr in tried:
        try:
            transport = _open(addr, tls if addr.kind == "buildkitd" else None, timeout)
        except (OSError, ValueError, grpc.RpcError) as exc:
            failures.append(f"{addr} ({addr.source}): {_reason(exc)}")
            continue
        return Client(transport, timeout=timeout)
    raise ConnectError(f"no BuildKit daemon answered; tried {'; '.join(failures)}. {HINT}")


def _open(addr: Address, tls: TLSConfig | None, timeout: float):
    if addr.transport == "unix" and not os.path.exists(addr.target):
        raise FileNotFoundError(f"socket {addr.target} does not exist")
    if addr.kind == "docker":
        _ping_docker(addr, timeout)
        transport = DockerTransport(addr)
    else:
        transport = DirectTransport(addr, tls)
    try:
        control_pb2_grpc.ControlStub(transport.channel).ListWorkers(
            control_pb2.ListWorkersRequest(), timeout=timeout, wait_for_ready=False)
    except BaseException:
        transport.close()
        raise
    return transport


def _ping_docker(addr: Address, timeout: float) -> None:
    """dockerd answers HTTP; checking ``/_ping`` first gives a real reason when it does not."""
    with open_socket(addr, timeout) as sock:
        sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
        head = sock.recv(256)
    if not head.startswith(b"HTTP/1.") or b" 200 " not in head.split(b"\r\n", 1)[0] + b" ":
        raise OSError(f"not a docker daemon (answered {head[:40]!r})")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, OSError) or not exc.strerror else str(exc)
