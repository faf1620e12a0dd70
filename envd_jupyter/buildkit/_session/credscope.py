"""Which registry hosts and repositories one solve may use the user's credentials for.

The daemon names the host in every Auth call, so a shared or hostile daemon could ask for any host
the user has credentials for. Raw credentials and tokens go only to hosts the build references
(image sources in its Definitions, pushed image names, registry cache imports and exports) or that
the user allowed with ``credential_hosts``. A token may pull any repository of a host the build
uses (the daemon mounts blobs across repositories of one registry when it pushes) but push only to
what the build exports, and carries no other action or scope type, unless the user allowed the host.
"""

from __future__ import annotations

import threading
from typing import Iterable

from google.protobuf.message import DecodeError

from envd_jupyter._proto import ops_pb2
from envd_jupyter.buildkit._session.auth import normalise_host
from envd_jupyter.llb._reference import split_domain

IMAGE_SCHEME = "docker-image://"


def image_repository(ref: str) -> tuple[str, str]:
    """(config key of the registry host, repository path) of an image reference."""
    domain, remainder = split_domain(ref)
    name = remainder.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return normalise_host(domain), name


class CredentialScope:
    """Grows as the solve names images (interactive builds solve Definitions one by one); thread-safe."""

    def __init__(self, allowed_hosts: Iterable[str] = ()):
        self._lock = threading.Lock()
        self._allowed = frozenset(normalise_host(host) for host in allowed_hosts)
        self._pull: dict[str, set[str]] = {}
        self._push: dict[str, set[str]] = {}

    def add_image(self, ref: str, *, push: bool = False) -> None:
        try:
            host, repository = image_repository(ref)
        except (ValueError, IndexError):
            return
        with self._lock:
            (self._push if push else self._pull).setdefault(host, set()).add(repository)

    def add_definition(self, data: bytes) -> None:
        """Every image source of a marshalled Definition."""
        try:
            ops = [ops_pb2.Op.FromString(raw) for raw in getattr(ops_pb2.Definition.FromString(data), "def")]
        except DecodeError:
            return
        for op in ops:
            if op.HasField("source") and op.source.identifier.startswith(IMAGE_SCHEME):
                self.add_image(op.source.identifier[len(IMAGE_SCHEME):])

    def add_exports(self, exports) -> None:
        """Image names an export pushes (``push=true`` in its attrs)."""
        for export in exports:
            attrs = getattr(export, "attrs", {}) or {}
            if attrs.get("push") == "true":
                for name in filter(None, attrs.get("name", "").split(",")):
                    self.add_image(name.strip(), push=True)

    def add_cache(self, entries, *, export: bool) -> None:
        """Registry refs of cache imports (pulled) or exports (pushed)."""
        for entry in entries:
            if entry.Type == "registry" and entry.Attrs.get("ref"):
                self.add_image(entry.Attrs["ref"], push=export)

    def host_allowed(self, host: str) -> bool:
        host = normalise_host(host)
        with self._lock:
            return host in self._allowed or host in self._pull or host in self._push

    def refused_scope(self, host: str, scopes: Iterable[str]) -> str:
        """The first scope a token for ``host`` may not carry ("" when all may)."""
        host = normalise_host(host)
        if host in self._allowed:
            return ""
        with self._lock:
            pulled, pushed = self._pull.get(host, set()), self._push.get(host, set())
            for text in scopes:
                for scope in text.split():
                    kind, _, rest = scope.partition(":")
                    name, _, actions = rest.rpartition(":")
                    wanted = set(filter(None, actions.split(",")))
                    if kind != "repository" or not name or not wanted:
                        return scope
                    if wanted - {"pull", "push"} or ("push" in wanted and name not in pushed):
                        return scope
                    if not (pulled or pushed):
                        return scope
        return ""
