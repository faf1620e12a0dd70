"""BuildKit addresses: parsing and the discovery order used when no address is given.

``unix://path`` and ``tcp://host:port`` reach a standalone buildkitd; ``docker+unix://path``,
``docker+tcp://host:port`` and ``docker://`` (the default socket) reach dockerd's embedded
BuildKit through its HTTP upgrade endpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_BUILDKITD_SOCKET = "/run/buildkit/buildkitd.sock"
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True)
class Address:
    """A parsed address: ``kind`` is "buildkitd" or "docker"; ``transport`` "unix" or "tcp"."""

    kind: str
    transport: str
    target: str  # socket path, or host:port
    source: str = ""  # where it came from (explicit, BUILDKIT_HOST, ...)

    def __str__(self) -> str:
        scheme = f"docker+{self.transport}" if self.kind == "docker" else self.transport
        return f"{scheme}://{self.target}"


class AddressError(ValueError):
    """An address string this client cannot reach."""


def parse(address: str, *, source: str = "explicit", docker_default: bool = False) -> Address:
    """Parse one address. ``docker_default`` treats bare unix/tcp as dockerd (for DOCKER_HOST)."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        if address.startswith("/"):
            scheme, rest = "unix", address
        else:
            raise AddressError(f"{address!r}: expected unix://, tcp://, docker:// or docker+unix://")
    kind = "docker" if docker_default else "buildkitd"
    if scheme == "docker":
        return Address("docker", "unix", rest or DEFAULT_DOCKER_SOCKET, source)
    if scheme.startswith("docker+"):
        kind, scheme = "docker", scheme[len("docker+"):]
    if scheme == "unix":
        if not rest:
            raise AddressError(f"{address!r}: missing socket path")
        return Address(kind, "unix", rest, source)
    if scheme == "tcp":
        host, colon, port = rest.rstrip("/").rpartition(":")
        if not colon or not port.isdigit() or not host:
            raise AddressError(f"{address!r}: expected tcp://host:port")
        return Address(kind, "tcp", f"{host}:{port}", source)
    raise AddressError(f"{address!r}: unsupported scheme {scheme!r} (unix, tcp, docker, docker+unix, docker+tcp)")


def candidates(environ: dict[str, str] | None = None) -> list[Address]:
    """Discovery order: BUILDKIT_HOST, DOCKER_HOST, the buildkitd socket, the docker socket."""
    env = os.environ if environ is None else environ
    found: list[Address] = []
    if env.get("BUILDKIT_HOST"):
        found.append(parse(env["BUILDKIT_HOST"], source="BUILDKIT_HOST"))
    if env.get("DOCKER_HOST"):
        found.append(parse(env["DOCKER_HOST"], source="DOCKER_HOST", docker_default=True))
    found.append(Address("buildkitd", "unix", DEFAULT_BUILDKITD_SOCKET, "default buildkitd socket"))
    found.append(Address("docker", "unix", DEFAULT_DOCKER_SOCKET, "default docker socket"))
    return found
