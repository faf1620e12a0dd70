"""Builders the user already has: buildx builders and docker contexts, read from their files.

Nothing is run and nothing is contacted: the files say where each daemon is, ``buildkit.connect`` finds
out later whether it answers. Locations follow the tools: docker's config dir is ``$DOCKER_CONFIG`` or
``~/.docker``; buildx's is ``$BUILDX_CONFIG`` or ``<docker config>/buildx``.

* docker contexts (docker cli ``context/store``): ``contexts/meta/<sha256 of name>/meta.json`` holds
  ``{"Name", "Endpoints": {"docker": {"Host", "SkipTLSVerify"}}}``; TLS files (ca.pem, cert.pem,
  key.pem) sit in ``contexts/tls/<sha256 of name>/docker/``. The implicit "default" context is
  ``$DOCKER_HOST`` or the default socket, as ``docker context ls`` shows it.
* buildx builders (buildx ``store``): ``instances/<name>`` holds ``{"Name", "Driver", "Nodes":
  [{"Name", "Endpoint", "DriverOpts"}]}``. Driver ``docker``: the node's endpoint is a docker context
  (or a docker host); ``docker-container``: the container ``buildx_buildkit_<node>`` on that context's
  daemon (or the docker host buildx recorded when DOCKER_HOST was set), reached with ``docker exec ...
  buildctl dial-stdio``; ``remote``: the endpoint is a BuildKit
  address, with TLS from the ``cacert``/``cert``/``key``/``servername`` driver options.
  ``kubernetes``: skipped, saying why (buildx picks one of a deployment's pods per build; name a pod
  with ``kube-pod://POD?namespace=NS`` instead).

Each reader returns a ``Discovered``: ``{name: Source}`` of what can be addressed, and ``skipped``
(name: one-line reason) for what cannot (an unreadable file, a driver or host this client has no
transport for, a context that turns TLS verification off).
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from envd_jupyter.buildkit import TLSConfig

DOCKER_ENDPOINT = "docker"  # the endpoint name docker contexts keep the daemon under
BUILDX_CONTAINER_PREFIX = "buildx_buildkit_"
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_TLS_FILES = {"ca": "ca.pem", "cert": "cert.pem", "key": "key.pem"}


@dataclass(frozen=True)
class Source:
    """One daemon found in the user's files: its address, its TLS (None: none configured), and where it came from."""

    address: str
    tls: TLSConfig | None = None
    origin: str = ""


class Discovered(dict):
    """``{name: Source}`` for what can be addressed; ``skipped`` maps the rest to why."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: dict[str, str] = {}

    def addresses(self) -> dict[str, str]:
        return {name: source.address for name, source in self.items()}


def docker_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env["DOCKER_CONFIG"]) if env.get("DOCKER_CONFIG") else Path.home() / ".docker"


def buildx_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env["BUILDX_CONFIG"]) if env.get("BUILDX_CONFIG") else docker_config_dir(env) / "buildx"


def docker_contexts(environ: Mapping[str, str] | None = None, *, include_default: bool = True) -> Discovered:
    """Every docker context's daemon (its embedded BuildKit), as ``docker context ls`` lists them."""
    env = os.environ if environ is None else environ
    found = Discovered()
    if include_default:
        try:
            found["default"] = Source(_docker_address(env.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST), None,
                                      "docker context default" + (" (DOCKER_HOST)" if env.get("DOCKER_HOST") else ""))
        except ValueError as exc:
            found.skipped["default"] = str(exc)
    meta_root = docker_config_dir(env) / "contexts" / "meta"
    for meta_file in sorted(meta_root.glob("*/meta.json")):
        try:
            meta = _lower_keys(json.loads(meta_file.read_text()))
            name = meta["name"]
            endpoint = _lower_keys(meta.get("endpoints", {}).get(DOCKER_ENDPOINT) or {})
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            found.skipped[meta_file.parent.name] = f"{meta_file}: unreadable ({type(exc).__name__}: {exc})"
            continue
        try:
            found[name] = _context_source(docker_config_dir(env), name, endpoint)
        except ValueError as exc:
            found.skipped[name] = str(exc)
    return found


def _context_source(config_dir: Path, name: str, endpoint: Mapping) -> Source:
    host = endpoint.get("host") or ""
    if not host:
        raise ValueError(f"docker context {name}: no docker endpoint host")
    if endpoint.get("skiptlsverify"):
        raise ValueError(f"docker context {name}: SkipTLSVerify is set; an unverified daemon is taken only from "
                         "an explicit tls: {verify: false} (or TLSConfig(verify=False))")
    tls_dir = config_dir / "contexts" / "tls" / _digest(name) / DOCKER_ENDPOINT
    files = {field: tls_dir / file for field, file in _TLS_FILES.items() if (tls_dir / file).is_file()}
    tls = TLSConfig(**files) if files and host.startswith("tcp://") else None
    return Source(_docker_address(host, f"docker context {name}"), tls, f"docker context {name}")


def _docker_address(host: str, what: str = "DOCKER_HOST") -> str:
    """A docker host (``unix://``, ``tcp://``, ``ssh://``) as our address for that dockerd."""
    scheme = host.partition("://")[0]
    if scheme not in ("unix", "tcp", "ssh"):
        raise ValueError(f"{what}: docker host {host!r} has no transport here (unix://, tcp://, ssh://)")
    return "docker+" + host


def _digest(name: str) -> str:
    """The directory a context's files live in: the hex sha256 of its name (docker's contextdirOf)."""
    return hashlib.sha256(name.encode()).hexdigest()


def buildx_builders(environ: Mapping[str, str] | None = None) -> Discovered:
    """Every node of every buildx builder; a builder of one node is named as the builder, others ``builder/node``."""
    env = os.environ if environ is None else environ
    found = Discovered()
    contexts: Discovered | None = None
    for path in sorted((buildx_config_dir(env) / "instances").glob("*")):
        if not path.is_file():
            continue
        try:
            group = _lower_keys(json.loads(path.read_text()))
            builder, driver = group["name"], group.get("driver") or ""
            nodes = [_lower_keys(node) for node in group.get("nodes") or []]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            found.skipped[path.name] = f"{path}: unreadable ({type(exc).__name__}: {exc})"
            continue
        for node in nodes:
            name = builder if len(nodes) == 1 else f"{builder}/{node.get('name', '')}"
            origin = f"buildx builder {builder} node {node.get('name', '')} ({driver} driver)"
            try:
                if driver == "docker" and contexts is None:
                    contexts = docker_contexts(env)
                found[name] = _node_source(driver, node, contexts, origin)
            except ValueError as exc:
                found.skipped[name] = f"{origin}: {exc}"
    return found


def _node_source(driver: str, node: Mapping, contexts: Discovered | None, origin: str) -> Source:
    endpoint = node.get("endpoint") or ""
    if driver == "docker":
        if "://" in endpoint:
            return Source(_docker_address(endpoint), None, origin)
        if contexts is None or endpoint not in contexts:
            reason = (contexts.skipped.get(endpoint) if contexts else None) or f"no docker context {endpoint!r}"
            raise ValueError(reason)
        return Source(contexts[endpoint].address, contexts[endpoint].tls, origin)
    if driver == "docker-container":
        container = BUILDX_CONTAINER_PREFIX + (node.get("name") or "")
        if "://" in endpoint:  # made with DOCKER_HOST set: buildx records the host, not a context
            where = "?host=" + urllib.parse.quote(endpoint, safe="")
        else:
            where = f"?context={urllib.parse.quote(endpoint, safe='')}" if endpoint and endpoint != "default" else ""
        return Source(f"docker-container://{container}{where}", None, origin)
    if driver == "remote":
        if not endpoint:
            raise ValueError("no endpoint")
        return Source(endpoint, _remote_tls(node.get("driveropts") or {}), origin)
    if driver == "kubernetes":
        raise ValueError("buildx picks one of the deployment's pods per build; "
                         "add a pod as kube-pod://POD?namespace=NS instead")
    raise ValueError(f"unknown driver {driver!r}")


def _remote_tls(options: Mapping[str, str]) -> TLSConfig | None:
    """The remote driver's TLS options (absolute paths), as buildx reads them."""
    if not any(options.get(key) for key in ("cacert", "cert", "key")):
        return None
    if bool(options.get("cert")) != bool(options.get("key")):
        raise ValueError("TLS needs both the cert and key driver options")
    return TLSConfig(ca=options.get("cacert") or None, cert=options.get("cert") or None,
                     key=options.get("key") or None, server_name=options.get("servername") or None)


def _lower_keys(value) -> dict:
    """Go's encoding/json matches field names case-insensitively; so do we."""
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, found {type(value).__name__}")
    return {str(key).lower(): item for key, item in value.items()}
