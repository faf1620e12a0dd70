"""BuildKit addresses: parsing, the discovery order used when no address is given, and the command
line of the connection helper each process-stdio address runs.

``unix://path`` and ``tcp://host:port`` reach a standalone buildkitd; ``docker+unix://path``,
``docker+tcp://host:port`` and ``docker://`` (the default socket) reach dockerd's embedded
BuildKit through its HTTP upgrade endpoints. The rest are BuildKit's connection helpers, a child
process whose stdin/stdout is the connection (``buildctl dial-stdio`` where buildkitd runs):
``docker-container://NAME[?context=CTX | ?host=DOCKER_HOST]``, ``podman-container://NAME``,
``nerdctl-container://NAME[?namespace=NS]``, ``kube-pod://POD[?namespace=&context=&container=]``,
``ssh://[user@]host[:port][/buildkitd.sock]``; and ``docker+ssh://[user@]host[:port][/docker.sock]``
(``ssh://`` in DOCKER_HOST) reaches a remote dockerd as the docker CLI does, through
``docker system dial-stdio`` on that host.
"""

from __future__ import annotations

import os
import re
import shlex
import urllib.parse
from dataclasses import dataclass

DEFAULT_BUILDKITD_SOCKET = "/run/buildkit/buildkitd.sock"
DEFAULT_DOCKER_SOCKET = "/var/run/docker.sock"
# Schemes reached through a child process (its stdio is the byte stream); see ``helper_argv``.
HELPER_SCHEMES = ("docker-container", "podman-container", "nerdctl-container", "kube-pod", "ssh")
# The ssh client and its leading options, as GIT_SSH_COMMAND does for git (e.g. "ssh -F /path/config").
SSH_COMMAND_ENV = "ENVD_JUPYTER_SSH_COMMAND"
_KUBE_IDENTIFIER = re.compile(r"^[-a-z0-9.]+$")  # BuildKit's kubepod check
_PASSWORD = re.compile(r"(://[^/@:]*):[^/@]*@")


@dataclass(frozen=True)
class Address:
    """A parsed address: ``kind`` is "buildkitd" or "docker"; ``transport`` "unix", "tcp" or a helper scheme."""

    kind: str
    transport: str
    target: str  # socket path, host:port, or what follows "scheme://" for a helper scheme
    source: str = ""  # where it came from (explicit, BUILDKIT_HOST, ...)

    def __str__(self) -> str:
        scheme = f"docker+{self.transport}" if self.kind == "docker" else self.transport
        return f"{scheme}://{self.target}"

    @property
    def uses_helper(self) -> bool:
        """Reached through a child process (``helper_argv``) rather than a socket we open ourselves."""
        return self.transport in HELPER_SCHEMES


class AddressError(ValueError):
    """An address string this client cannot reach (a password written into it is shown as ***)."""

    def __init__(self, message: str):
        super().__init__(_PASSWORD.sub(r"\1:***@", message))


def parse(address: str, *, source: str = "explicit", docker_default: bool = False) -> Address:
    """Parse one address. ``docker_default`` treats bare unix/tcp/ssh as dockerd (for DOCKER_HOST)."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        if address.startswith("/"):
            scheme, rest = "unix", address
        else:
            raise AddressError(f"{address!r}: expected a scheme such as unix://, tcp://, docker:// or ssh://")
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
    if scheme == "ssh" or (kind == "buildkitd" and scheme in HELPER_SCHEMES):
        parsed = Address(kind, scheme, rest, source)
        helper_argv(parsed)  # refuse a malformed address now, not when the first connection opens
        return parsed
    raise AddressError(f"{address!r}: unsupported scheme {scheme!r} "
                       f"(unix, tcp, docker, docker+unix, docker+tcp, docker+ssh, {', '.join(HELPER_SCHEMES)})")


def helper_argv(address: Address, *, connect_timeout: float = 30.0,
                environ: dict[str, str] | None = None) -> list[str]:
    """The command whose stdin/stdout is one connection to ``address``, as BuildKit's
    ``client/connhelper/*`` (and the docker CLI for ``docker+ssh``) build it; AddressError if malformed."""
    url = _split(address)
    query = urllib.parse.parse_qs(url.query)

    def arg(name: str) -> str:
        return query.get(name, [""])[0]

    if address.transport == "ssh":
        return _ssh_argv(address, url, connect_timeout, os.environ if environ is None else environ)
    name = _host(url)
    what = "pod" if address.transport == "kube-pod" else "container"
    if not name:
        raise AddressError(f"{address}: the address lacks a {what} name")
    if name.startswith("-"):  # it would be read as an option of the helper's exec
        raise AddressError(f"{address}: a {what} name cannot start with '-'")
    if address.transport == "docker-container":
        if arg("context") and arg("host"):
            raise AddressError(f"{address}: give a docker context or a docker host, not both")
        target = [f"--context={arg('context')}"] if arg("context") else []
        # ``host`` is ours, not BuildKit's: buildx records a builder made under DOCKER_HOST by its host.
        target += [f"--host={arg('host')}"] if arg("host") else []
        return ["docker", *target, "exec", "-i", name, "buildctl", "dial-stdio"]
    if address.transport == "podman-container":
        return ["podman", "exec", "-i", name, "buildctl", "dial-stdio"]
    if address.transport == "nerdctl-container":
        namespace = ["--namespace", arg("namespace")] if arg("namespace") else []
        return ["nerdctl", "exec", *namespace, "-i", name, "buildctl", "dial-stdio"]
    for what, value in (("pod", name), ("namespace", arg("namespace")), ("container", arg("container"))):
        if value and not _KUBE_IDENTIFIER.match(value):
            raise AddressError(f"{address}: unsupported {what} name {value!r}")
    return ["kubectl", f"--context={arg('context')}", f"--namespace={arg('namespace')}",
            "exec", f"--container={arg('container')}", "-i", name, "--", "buildctl", "dial-stdio"]


def _split(address: Address) -> urllib.parse.SplitResult:
    try:
        url = urllib.parse.urlsplit(f"{address.transport}://{address.target}")
        url.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise AddressError(f"{address}: {exc}") from None
    if url.fragment:
        raise AddressError(f"{address}: unexpected fragment #{url.fragment}")
    return url


def _host(url: urllib.parse.SplitResult) -> str:
    """The host as written (``SplitResult.hostname`` lower-cases it; container names keep their case)."""
    host_port = url.netloc.rpartition("@")[2]
    if host_port.startswith("["):
        return host_port[1:].partition("]")[0]
    return host_port.partition(":")[0]


def _ssh_argv(address: Address, url: urllib.parse.SplitResult, connect_timeout: float,
              environ: dict[str, str]) -> list[str]:
    """``ssh [-l user] [-p port] <options> -- host <remote command>``.

    Options beyond BuildKit's and docker's own: ``-T`` and ``ConnectTimeout`` as docker passes them,
    and ``BatchMode=yes`` so a missing key fails at once instead of prompting (nothing could answer).
    """
    host = _host(url)
    if not host:
        raise AddressError(f"{address}: no host specified")
    if url.password is not None:
        raise AddressError(f"{address}: plain-text password is not supported (use a key or ssh-agent)")
    if url.query:
        raise AddressError(f"{address}: unexpected query ?{url.query}")
    argv = shlex.split(environ.get(SSH_COMMAND_ENV) or "ssh")
    if url.username:
        argv += ["-l", urllib.parse.unquote(url.username)]
    if url.port is not None:
        argv += ["-p", str(url.port)]
    argv += ["-T", "-o", f"ConnectTimeout={max(1, round(connect_timeout))}", "-o", "BatchMode=yes",
             "--", host]
    socket_path = urllib.parse.unquote(url.path)
    if address.kind == "docker":
        host = [f"--host=unix://{socket_path}"] if socket_path.strip("/") else []
        remote = ["docker", *host, "system", "dial-stdio"]
    else:
        remote = ["buildctl", *(["--addr", f"unix://{socket_path}"] if socket_path else []), "dial-stdio"]
    return argv + [shlex.join(remote)]


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
