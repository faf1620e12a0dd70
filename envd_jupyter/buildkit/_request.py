"""What a solve sends: the Definition lowered for the daemon, the SolveRequest, the session's services."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

from google.protobuf.message import DecodeError

from envd_jupyter._proto import control_pb2, ops_pb2, worker_pb2
from envd_jupyter.buildkit._cache import cache_entry
from envd_jupyter.buildkit._errors import CapsError, InvalidDefinitionError
from envd_jupyter.buildkit._session import Export

MULTIPLE_EXPORTERS_CAP = "exporter.multiple"
BUILD_NAME_ATTR = "build-arg:BUILDKIT_BUILD_NAME"  # the name BuildKit's build history shows


def lower(target: Any, llb_caps: frozenset[str]) -> Any:
    """Marshal a State, lower the Definition for the daemon's caps, check nothing required is missing."""
    definition = target.marshal() if hasattr(target, "marshal") else target
    lower_for = getattr(definition, "lower_for", None)
    if lower_for is not None:
        from envd_jupyter.llb._errors import LLBError  # only Definitions from llb have lower_for

        try:
            definition = lower_for(llb_caps)
        except (LLBError, ValueError, TypeError) as exc:
            raise CapsError(f"cannot lower the build for this daemon: {exc}") from None
    missing = sorted(set(getattr(definition, "required_caps", ()) or ()) - set(llb_caps))
    if missing:
        raise CapsError(f"the daemon lacks LLB capabilities {', '.join(missing)} and the build cannot be lowered")
    return definition


def serialize(definition: Any) -> bytes:
    if isinstance(definition, (bytes, bytearray)):
        return bytes(definition)
    for attribute in ("to_bytes", "SerializeToString"):
        if hasattr(definition, attribute) and not isinstance(definition, int):  # int.to_bytes is not LLB
            return getattr(definition, attribute)()
    raise InvalidDefinitionError(f"cannot solve {type(definition).__name__}: expected a State, Definition or bytes")


def prepare_definition(target: Any, llb_caps: frozenset[str]) -> bytes:
    """The bytes to send: ``lower`` then ``serialize``."""
    return serialize(lower(target, llb_caps))


@dataclass(frozen=True)
class Vertices:
    """The digests the Status stream will report for a Definition (its terminal op excluded)."""

    all: frozenset[str]
    sources: frozenset[str]  # image, local, git, http: resolved rather than run or cached
    head: str | None  # the op whose result the Definition names


def vertices(definition: bytes) -> Vertices:
    try:
        raw = list(getattr(ops_pb2.Definition.FromString(definition), "def"))
        parsed = [ops_pb2.Op.FromString(op) for op in raw]
    except DecodeError as exc:
        raise InvalidDefinitionError(f"not an LLB Definition ({len(definition)} bytes): {exc}") from None
    digests = ["sha256:" + hashlib.sha256(op).hexdigest() for op in raw]
    terminal = parsed[-1] if parsed and not parsed[-1].WhichOneof("op") else None
    head = terminal.inputs[0].digest if terminal is not None and terminal.inputs else None
    ops = [(digest, op) for digest, op in zip(digests, parsed) if op.WhichOneof("op")]
    return Vertices(frozenset(d for d, _ in ops), frozenset(d for d, op in ops if op.HasField("source")), head)


def session_services(local_dirs, secrets, exports: Sequence[Export], auth=None) -> list:
    """The services a solve's session needs for these options (``auth``: its AuthService, or one with no hosts)."""
    services = []
    if local_dirs:
        from envd_jupyter.buildkit._session.filesync import FileSyncService

        services.append(FileSyncService(local_dirs))
    if secrets:
        from envd_jupyter.buildkit._session.secrets import SecretsService

        services.append(SecretsService(secrets))
    if auth is None:
        from envd_jupyter.buildkit._session.auth import AuthService

        auth = AuthService()
    services.append(auth)
    for index, export in enumerate(exports):
        services.extend(export.session_services(index))
    return services


def result_metadata(exports: Sequence[Export]) -> dict[str, bytes]:
    """Result metadata the exports need (see ``session.Export``); two exports may not disagree on a key."""
    merged: dict[str, bytes] = {}
    for export in exports:
        for key, value in (getattr(export, "result_metadata", dict)() or {}).items():
            if merged.setdefault(key, value) != value:
                raise InvalidDefinitionError(f"exports disagree on result metadata {key!r}")
    return merged


def build_request(ref: str, session_id: str, definition: bytes | None, exports: Sequence[Export], caps,
                  *, cache_imports=(), cache_exports=(), entitlements=(), name: str | None = None
                  ) -> control_pb2.SolveRequest:
    """The SolveRequest in the shape this daemon reads (one legacy exporter before BuildKit 0.13).

    ``definition`` None: an interactive build, no definition and no frontend; the daemon waits for
    LLBBridge calls tagged with ``ref``.
    """
    request = control_pb2.SolveRequest(
        Ref=ref, Session=session_id, Entitlements=list(entitlements),
        Cache=control_pb2.CacheOptions(Imports=[cache_entry(c) for c in cache_imports],
                                       Exports=[cache_entry(c) for c in cache_exports]),
    )
    if definition is not None:
        request.Definition.CopyFrom(worker_pb2.OpaqueDefinition.FromString(definition))
    if name:
        request.FrontendAttrs[BUILD_NAME_ATTR] = name
    if exports:
        request.ExporterDeprecated = exports[0].type
        request.ExporterAttrsDeprecated.update(exports[0].attrs)
    if caps.has(MULTIPLE_EXPORTERS_CAP):
        request.Exporters.extend(control_pb2.Exporter(Type=e.type, Attrs=dict(e.attrs)) for e in exports)
    elif len(exports) > 1:
        raise CapsError(f"this daemon exports one result per solve ({len(exports)} exports given); "
                        "BuildKit >= 0.13 accepts several")
    return request
