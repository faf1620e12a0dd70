"""Export and cache specs for ``Client.solve`` (each export implements ``session.Export``).

Exports that write on the client (local directory, tar/OCI/docker archives) bring a FileSend
receiver into the session and commit their output only when the solve succeeded. Image exports
need no session: dockerd's embedded BuildKit stores them with its ``moby`` exporter, standalone
buildkitd with ``image``. Cache specs are plain (type, attrs) pairs with a support check so an
unsupported cache backend fails before the solve with a message saying why.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from envd_jupyter.buildkit._engine import EngineConnection
from envd_jupyter.buildkit._errors import ExportError
from envd_jupyter.buildkit._session import SessionService
from envd_jupyter.buildkit._session.auth import (DockerConfig, docker_registry_auth_header, no_credentials_hint,
                                               registry_host)
from envd_jupyter.buildkit._session.filesend import DirTarget, FileSendService, FileTarget


IMAGE_CONFIG_KEY = "containerimage.config"


class _Export:
    type: str = ""

    def __init__(self) -> None:
        self.attrs: dict[str, str] = {}
        self.response: dict[str, str] = {}
        self.ok: bool | None = None

    def session_services(self, exporter_id: int) -> Sequence[SessionService]:
        return ()

    def finish(self, ok: bool, exporter_response: Mapping[str, str]) -> None:
        self.ok, self.response = ok, dict(exporter_response)

    @property
    def digest(self) -> str | None:
        return self.response.get("containerimage.digest")


class Image(_Export):
    """An image by name: into dockerd's image store (``moby``), or buildkitd's (``image``), optionally pushed.

    ``store="docker"`` is for dockerd addresses, ``store="buildkit"`` for standalone buildkitd.
    """

    def __init__(self, name: str | Sequence[str], *, store: str = "docker", push: bool = False,
                 insecure_registry: bool = False, attrs: Mapping[str, str] | None = None):
        super().__init__()
        if store not in ("docker", "buildkit"):
            raise ValueError(f"store must be 'docker' or 'buildkit', not {store!r}")
        self.names = [name] if isinstance(name, str) else list(name)
        self.type = "moby" if store == "docker" else "image"
        self.attrs = {"name": ",".join(self.names), **(attrs or {})}
        if push:
            self.attrs["push"] = "true"
        if insecure_registry:
            self.attrs["registry.insecure"] = "true"

    def result_metadata(self) -> dict[str, bytes]:
        """dockerd's ``moby`` exporter reads the image config from result metadata only, never from attrs."""
        config = self.attrs.get(IMAGE_CONFIG_KEY)
        return {IMAGE_CONFIG_KEY: config.encode()} if self.type == "moby" and config else {}

    def __repr__(self) -> str:
        return f"Image({self.attrs['name']!r}, type={self.type!r})"


class PushViaDocker(Image):
    """Store the image in dockerd, then push it with dockerd's own ``/images/{name}/push``.

    For dockerd whose embedded BuildKit cannot push from the ``moby`` exporter (20.10, classic
    store); sends the credentials docker's CLI would (``session.auth``: credHelpers, credsStore,
    auths in the docker config) as ``X-Registry-Auth``.
    """

    def __init__(self, name: str, docker_socket: str, *, timeout: float = 300.0):
        super().__init__(name, store="docker")
        self.docker_socket, self.timeout = docker_socket, timeout

    def finish(self, ok: bool, exporter_response: Mapping[str, str]) -> None:
        super().finish(ok, exporter_response)
        if ok:
            push_with_dockerd(self.docker_socket, self.names[0], timeout=self.timeout)


class _ReceivedExport(_Export):
    """An export the daemon sends back to us over FileSend, committed only when the solve succeeds.

    The destination is checked before the solve starts (a refusal costs no build) and again at commit.
    """

    target: DirTarget | FileTarget

    def session_services(self, exporter_id: int) -> Sequence[SessionService]:
        self.target.check()
        return (FileSendService({exporter_id: self.target}),)

    def finish(self, ok: bool, exporter_response: Mapping[str, str]) -> None:
        try:
            self.target.commit(ok)
        except BaseException:
            super().finish(False, {})
            raise
        super().finish(ok, exporter_response)


class LocalDir(_ReceivedExport):
    """The result's filesystem into ``path``, swapped in atomically when the solve succeeds.

    A non-empty directory that no earlier export wrote is refused unless ``overwrite=True``; ``/``,
    the home directory and the current directory (or its parents) always are. Device nodes and
    set-id bits from the daemon are dropped unless ``devices=True`` (and running as root) / ``setid=True``.
    """

    type = "local"

    def __init__(self, path: str | Path, *, overwrite: bool = False, devices: bool = False, setid: bool = False):
        super().__init__()
        self.target = DirTarget(path, overwrite=overwrite, devices=devices, setid=setid)

    def __repr__(self) -> str:
        return f"LocalDir({str(self.target.dest)!r})"


class Tarball(_ReceivedExport):
    """A tar of the filesystem (``format="tar"``) or an OCI / docker image archive, written to ``path``."""

    def __init__(self, path: str | Path, *, format: str = "tar", name: str | None = None):
        super().__init__()
        if format not in ("tar", "oci", "docker"):
            raise ValueError(f"format must be 'tar', 'oci' or 'docker', not {format!r}")
        self.type = format
        if name:
            self.attrs["name"] = name
        self.target = FileTarget(path)

    def __repr__(self) -> str:
        return f"Tarball({str(self.target.dest)!r}, format={self.type!r})"


def push_with_dockerd(docker_socket: str, name: str, *, timeout: float = 300.0) -> None:
    """Push ``name`` through dockerd's API with the user's registry credentials.

    Raises ExportError with dockerd's message on failure, RegistryAuthError for a broken credential helper.
    """
    repo, tag = _split_tag(name)
    query = urllib.parse.urlencode({"tag": tag})
    host = registry_host(name)
    config = DockerConfig.load()
    creds = config.credentials(host)
    registry_auth = docker_registry_auth_header(host, creds)
    conn = EngineConnection(docker_socket, timeout)
    try:
        conn.request("POST", f"/images/{urllib.parse.quote(repo, safe='/:')}/push?{query}",
                     headers={"X-Registry-Auth": registry_auth})
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
    except OSError as exc:
        raise ExportError(f"pushing {name} via {docker_socket}: {exc}") from None
    finally:
        conn.close()
    if response.status != 200:
        raise ExportError(f"pushing {name}: dockerd answered {response.status}: {body.strip()[:300]}")
    for line in body.splitlines():
        message = json.loads(line).get("error") if line.strip() else None
        if message:
            hint = no_credentials_hint(host, config.path) if creds.anonymous else ""
            raise ExportError(f"pushing {name}: {message}{hint}")


def _split_tag(name: str) -> tuple[str, str]:
    last = name.rsplit("/", 1)[-1]
    if ":" in last and "@" not in last:
        repo, _, tag = name.rpartition(":")
        return repo, tag
    return name, "latest"


@dataclass(frozen=True)
class CacheSpec:
    """One cache import or export backend (BuildKit's CacheOptionsEntry)."""

    type: str
    attrs: Mapping[str, str] = field(default_factory=dict)

    @staticmethod
    def inline() -> "CacheSpec":
        """Cache metadata inside the exported image (export) / read from an image (import by ``registry``)."""
        return CacheSpec("inline")

    @staticmethod
    def registry(ref: str, *, mode: str = "min", insecure: bool = False) -> "CacheSpec":
        attrs = {"ref": ref, "mode": mode}
        if insecure:
            attrs["registry.insecure"] = "true"
        return CacheSpec("registry", attrs)

    @staticmethod
    def local(directory: str, *, export: bool = True, tag: str = "latest") -> "CacheSpec":
        """A cache directory (OCI layout) on the *client*, read and written through the session like buildctl.

        Exporting needs a daemon with a local cache exporter (dockerd 26 with the containerd store,
        buildkitd); ``tag`` names the entry in the directory's index.json.
        """
        attrs = {"dest" if export else "src": str(directory)}
        if tag != "latest":
            attrs["tag"] = tag
        return CacheSpec("local", attrs)
