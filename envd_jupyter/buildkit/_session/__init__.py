"""Session plug-in contract: what a session service or an export gives the solve machinery.

A BuildKit session is a gRPC server that lives on the *client*; the daemon calls into it over
a hijacked byte stream (dockerd ``POST /session`` or ``Control.Session``). ``Session`` (in
``transport``) owns that server and the bridge; everything the daemon may call is a
``SessionService`` added to it before the session starts, because the daemon learns the
callable methods once, from the ``X-Docker-Expose-Session-Grpc-Method`` list.

How ``Client.solve`` builds a session (services are imported lazily, so the core works
before they exist):

* ``local_dirs={name: path | LocalDir}`` -> ``filesync.FileSyncService(local_dirs)``
* ``secrets={id: source}``               -> ``secrets.SecretsService(secrets)``
* always, for registry pulls/pushes     -> ``auth.AuthService(scope=..., note=...)``
* each ``Export`` in ``exports``         -> ``export.session_services(exporter_id)``

An export may also define ``result_metadata() -> Mapping[str, bytes]``: entries the exporter
must find in the *result* metadata (dockerd's ``moby`` exporter takes ``containerimage.config``
only from there). A plain Control.Solve cannot carry them, so ``Client.solve`` then solves
through the gateway and Returns the ref with that metadata (``_solve``: an interactive build).

``exporter_id`` is the export's index in ``exports``; dockerd 26 / BuildKit >= 0.13 tags its
FileSend calls with gRPC metadata ``buildkit-attachable-exporter-id: <index>`` so one receiver
can serve several exports. Services from different sources must not claim the same method
path, except that a service may define ``merge(other) -> SessionService`` to absorb another
one of its kind (e.g. two file exports sharing one FileSend receiver); ``merge_services``
applies that rule.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, runtime_checkable

import grpc

HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check"
EXPORTER_ID_METADATA = "buildkit-attachable-exporter-id"


@runtime_checkable
class SessionService(Protocol):
    """One gRPC service the daemon may call during a solve."""

    method_paths: tuple[str, ...]  # full method URLs, e.g. "/moby.filesync.v1.FileSync/DiffCopy"

    def add_to_server(self, server: grpc.Server) -> None: ...


@runtime_checkable
class Export(Protocol):
    """An exporter request plus the client side it needs (file receivers, stores).

    ``Client.solve`` sends ``type``/``attrs`` in the SolveRequest, adds
    ``session_services(exporter_id)`` to the session, and calls ``finish`` exactly once after
    the solve: ``ok=False`` (with an empty response) when the solve failed or was cancelled,
    so a local-directory export can discard its temp dir and leave the old one intact.
    """

    type: str
    attrs: Mapping[str, str]

    def session_services(self, exporter_id: int) -> Sequence[SessionService]: ...

    def finish(self, ok: bool, exporter_response: Mapping[str, str]) -> None: ...


class SessionSetupError(ValueError):
    """Two services claim the same gRPC method and cannot be merged."""


def merge_services(services: Sequence[SessionService]) -> list[SessionService]:
    """Combine services that share method paths (via ``merge``); refuse any other overlap."""
    merged: list[SessionService] = []
    owner: dict[str, int] = {}
    for service in services:
        clash = {owner[p] for p in service.method_paths if p in owner}
        if not clash:
            for path in service.method_paths:
                owner[path] = len(merged)
            merged.append(service)
            continue
        (index,) = clash if len(clash) == 1 else (None,)
        existing = merged[index] if index is not None else None
        if existing is None or not hasattr(existing, "merge") or type(existing) is not type(service):
            paths = sorted(p for p in service.method_paths if p in owner)
            raise SessionSetupError(f"session services overlap on {', '.join(paths)}")
        merged[index] = existing.merge(service)
        for path in merged[index].method_paths:
            owner[path] = index
    return merged


__all__ = [
    "EXPORTER_ID_METADATA",
    "HEALTH_CHECK_PATH",
    "Export",
    "SessionService",
    "SessionSetupError",
    "merge_services",
]
