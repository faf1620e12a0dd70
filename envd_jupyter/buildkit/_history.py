"""BuildKit's own build history: ``Control.ListenBuildHistory`` and ``UpdateBuildHistory``.

The daemon keeps a record of every build any client made on it (buildx, ``docker build``, ours):
ref, frontend, times, error, step counts, exporter response, and blobs for the logs and the
provenance attestation. BuildKit >= 0.11 has the API; 0.8 (dockerd 20.10) answers UNIMPLEMENTED,
which becomes one ``HistoryUnavailable`` line. The daemons here ignore the request's Filter and
Limit (newer than their BuildKit), so filtering and limits are applied on this side.

Every call is bounded by the client's timeout; a watch runs until ``close()``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Callable, Mapping

import grpc

from envd_jupyter._proto import content_pb2, content_pb2_grpc, control_pb2
from envd_jupyter.buildkit._errors import BuildKitError, DaemonError
from envd_jupyter.buildkit._progress import DEFAULT_LOG_CAP, BuildModel
from envd_jupyter.buildkit._request import BUILD_NAME_ATTR

MAX_ERROR_CHARS = 300
MAX_PROVENANCE_BYTES = 16 << 20  # a provenance blob past this is not read
PROVENANCE_TYPE_PREFIX = "https://slsa.dev/provenance/"
EVENT_KINDS = {control_pb2.STARTED: "started", control_pb2.COMPLETE: "completed", control_pb2.DELETED: "deleted"}
_CANCELLED_CODE = 1  # google.rpc.Code CANCELLED


class HistoryUnavailable(BuildKitError):
    """The daemon has no build history API (BuildKit 0.8, as in dockerd 20.10)."""


class HistoryNotFound(BuildKitError, LookupError):
    """No record with that ref in the daemon's history (never made, deleted, or past its retention)."""


@dataclass(frozen=True)
class HistoryRecord:
    """One build as the daemon recorded it; ``status`` is running, ok, failed or cancelled."""

    ref: str
    name: str
    frontend: str
    created: float | None
    completed: float | None
    error: str
    steps_total: int
    steps_cached: int
    steps_completed: int
    exporter_response: Mapping[str, str]
    pinned: bool
    status: str

    def to_dict(self) -> dict:
        data = asdict(self)
        data["exporter_response"] = dict(self.exporter_response)
        return data


@dataclass(frozen=True)
class HistoryStep:
    """One LLB op as the provenance attestation recorded it (mode=max only); ``inputs`` are digests."""

    digest: str
    kind: str
    summary: str
    inputs: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict:
        return {"digest": self.digest, "kind": self.kind, "summary": self.summary, "inputs": list(self.inputs)}


def _seconds(message, name: str) -> float | None:
    if not message.HasField(name):
        return None
    stamp = getattr(message, name)
    return stamp.seconds + stamp.nanos / 1e9


def _one_line(text: str) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= MAX_ERROR_CHARS else line[:MAX_ERROR_CHARS - 1] + "…"


def _name(record) -> str:
    """Our builds (and buildx's with --build-arg) carry a name; otherwise the Dockerfile and target."""
    attrs = record.FrontendAttrs
    if attrs.get(BUILD_NAME_ATTR):
        return attrs[BUILD_NAME_ATTR]
    base = attrs.get("filename") or record.Frontend
    target = attrs.get("target", "")
    return f"{base} ({target})" if base and target else base


def _status(record) -> str:
    if not record.HasField("CompletedAt"):
        return "running"
    if not record.HasField("error") or (record.error.code == 0 and not record.error.message):
        return "ok"
    cancelled = record.error.code == _CANCELLED_CODE or "context canceled" in record.error.message
    return "cancelled" if cancelled else "failed"


def record_from_proto(record) -> HistoryRecord:
    return HistoryRecord(
        ref=record.Ref, name=_name(record), frontend=record.Frontend,
        created=_seconds(record, "CreatedAt"), completed=_seconds(record, "CompletedAt"),
        error=_one_line(record.error.message) if record.HasField("error") else "",
        steps_total=record.numTotalSteps, steps_cached=record.numCachedSteps,
        steps_completed=record.numCompletedSteps, exporter_response=dict(record.ExporterResponse),
        pinned=record.pinned, status=_status(record))


def _raise(client, what: str, exc: grpc.RpcError, ref: str = "") -> None:
    code, details = exc.code(), exc.details() or ""
    if code == grpc.StatusCode.UNIMPLEMENTED:
        raise HistoryUnavailable(f"{client.address} has no build history (BuildKit 0.8, as in dockerd 20.10; "
                                 "history needs BuildKit >= 0.11)") from None
    if ref and (code == grpc.StatusCode.NOT_FOUND or "not found" in details or "does not exist" in details
                or "is deleted" in details):
        raise HistoryNotFound(f"no build {ref} in the history of {client.address}") from None
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        raise DaemonError(f"{what} on {client.address}: no complete answer in {client.timeout}s") from None
    raise DaemonError(f"{what} on {client.address}: {code.name}: {_one_line(details)}") from None


def _raw_records(client, *, ref: str = "", active_only: bool = False, limit: int = 0) -> list:
    """One record per ref: a build that completes while it is listed may come as active and as stored."""
    request = control_pb2.BuildHistoryRequest(EarlyExit=True, Ref=ref, ActiveOnly=active_only, Limit=limit)
    by_ref: dict[str, object] = {}
    try:
        for event in client.control.ListenBuildHistory(request, timeout=client.timeout):
            kept = by_ref.get(event.record.Ref)
            if event.type != control_pb2.DELETED and (kept is None or event.record.HasField("CompletedAt")):
                by_ref[event.record.Ref] = event.record
    except grpc.RpcError as exc:
        _raise(client, "ListenBuildHistory", exc, ref)
    return list(by_ref.values())


def history(client, *, ref: str | None = None, active_only: bool = False, limit: int | None = None,
            status: str | None = None, name: str | None = None) -> list[HistoryRecord]:
    """Records newest first; ``status`` (exact) and ``name`` (substring) filter on this side.

    A ``ref`` the daemon does not know (or just deleted) gives [].
    """
    # A daemon that honours Limit keeps the newest N; our own filters must see every record first.
    server_limit = 0 if (status or name) else max(0, limit or 0)
    try:
        raw = _raw_records(client, ref=ref or "", active_only=active_only, limit=server_limit)
    except HistoryNotFound:
        return []
    records = [record_from_proto(r) for r in raw]
    if ref:
        records = [r for r in records if r.ref == ref]
    if status:
        records = [r for r in records if r.status == status]
    if name:
        records = [r for r in records if name.lower() in r.name.lower()]
    records.sort(key=lambda r: (r.created or 0.0, r.ref), reverse=True)
    return records[:max(0, limit)] if limit is not None else records


def _one_raw(client, ref: str):
    for record in _raw_records(client, ref=ref):
        if record.Ref == ref:
            return record
    raise HistoryNotFound(f"no build {ref} in the history of {client.address}")


def history_logs(client, ref: str, *, timeout: float | None = None, log_cap: int = DEFAULT_LOG_CAP) -> BuildModel:
    """The build's progress and logs replayed by ``Status(ref)`` into a BuildModel (its caps bound it).

    A build still running is followed until it ends or ``timeout`` (default: the client's) passes;
    then what came is kept.
    """
    _one_raw(client, ref)  # an unknown ref would make Status wait for a job that never comes
    model = BuildModel(log_cap=log_cap)
    try:
        request = control_pb2.StatusRequest(Ref=ref)
        for response in client.control.Status(request, timeout=timeout or client.timeout):
            model.apply(response)
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED or not model.vertices:
            _raise(client, "Status", exc, ref)
    return model


def update_history(client, ref: str, *, pinned: bool = False, delete: bool = False) -> None:
    request = control_pb2.UpdateBuildHistoryRequest(Ref=ref, Pinned=pinned, Delete=delete)
    try:
        client.control.UpdateBuildHistory(request, timeout=client.timeout)
    except grpc.RpcError as exc:
        _raise(client, "UpdateBuildHistory", exc, ref)


def _read_blob(client, digest: str) -> bytes:
    stub = content_pb2_grpc.ContentStub(client.transport.channel)
    try:
        chunks = stub.Read(content_pb2.ReadContentRequest(digest=digest), timeout=client.timeout)
        return b"".join(chunk.data for chunk in chunks)
    except grpc.RpcError as exc:
        _raise(client, "content Read", exc)


_SOURCE_KINDS = {"docker-image": "image", "local": "local", "git": "git", "http": "http", "https": "http",
                 "oci-layout": "oci"}


def _without_credentials(identifier: str) -> str:
    """A source identifier with any ``user:password@`` removed (a URL may carry them)."""
    scheme, sep, rest = identifier.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rpartition('@')[2]}{slash}{path}" if sep else identifier


def _file_action(action: dict) -> str:
    kind, body = next(iter((action.get("Action") or {"file": {}}).items()))
    body = body or {}
    paths = [body[key] for key in ("src", "dest", "path", "oldpath", "newpath") if isinstance(body.get(key), str)]
    return " ".join([kind, *paths])


def _kind_and_summary(op: dict) -> tuple[str, str]:
    body = op.get("Op") or {}
    if "source" in body:
        identifier = body["source"].get("identifier", "")
        return _SOURCE_KINDS.get(identifier.partition("://")[0], "source"), _without_credentials(identifier)
    if "exec" in body:
        return "exec", " ".join(body["exec"].get("meta", {}).get("args", []))[:200]
    if "file" in body:
        return "file", "; ".join(_file_action(a) for a in body["file"].get("actions", []))[:200]
    for kind in ("merge", "diff", "build"):
        if kind in body:
            return kind, kind
    return "", ""


def provenance_steps(client, ref: str) -> list[HistoryStep]:
    """The LLB steps of the build's provenance attestation, [] when it has none with steps.

    BuildKit writes provenance only for builds with a result; buildx's default (mode=min) records
    materials but no LLB, so only mode=max attestations (our image exports, ``--provenance=mode=max``)
    give steps. Only kinds, a summary (source without credentials, exec argv, file actions and paths)
    and input digests are kept: no env, no mounts, no file contents.
    """
    record = _one_raw(client, ref)
    infos = [record.Result, *record.Results.values()]
    for descriptor in (d for info in infos for d in info.Attestations):
        predicate = descriptor.annotations.get("in-toto.io/predicate-type", "")
        if not predicate.startswith(PROVENANCE_TYPE_PREFIX) or descriptor.size > MAX_PROVENANCE_BYTES:
            continue
        try:
            document = json.loads(_read_blob(client, descriptor.digest))
        except ValueError:
            continue
        document = document.get("predicate", document)  # a bare predicate, or an in-toto statement
        config = document.get("buildConfig") or {}
        steps = _steps_from_config(config)
        if steps:
            return steps
    return []


def _steps_from_config(config: dict) -> list[HistoryStep]:
    digest_of = {step_id: digest for digest, step_id in (config.get("digestMapping") or {}).items()}
    steps = []
    for item in config.get("llbDefinition") or []:
        kind, summary = _kind_and_summary(item.get("op") or {})
        if not kind:
            continue  # the terminal op that only names the result
        inputs = tuple(digest_of.get(i.rpartition(":")[0], i) for i in item.get("inputs") or [])
        steps.append(HistoryStep(digest_of.get(item.get("id", ""), item.get("id", "")), kind, summary, inputs))
    return steps


class HistoryWatch:
    """Live history events in a thread of its own; ``close()`` ends the stream and waits for the thread.

    Builds already running when the watch starts are reported first as "started". A stream that ends
    on its own (the daemon went away) leaves ``error`` set to a one-line BuildKitError and calls ``on_error``.
    """

    def __init__(self, client, on_event: Callable[[str, HistoryRecord], None],
                 on_error: Callable[[BuildKitError], None] | None = None):
        self.error: BaseException | None = None
        self._client, self._on_event, self._on_error = client, on_event, on_error
        self._closing = threading.Event()
        self.ended = threading.Event()
        request = control_pb2.BuildHistoryRequest(ActiveOnly=True)  # no replay of the whole history
        self._call = client.control.ListenBuildHistory(request)
        self._thread = threading.Thread(target=self._run, name="envd-history-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self._call:
                self._on_event(EVENT_KINDS.get(event.type, "completed"), record_from_proto(event.record))
        except grpc.RpcError as exc:
            if not self._closing.is_set():
                try:
                    _raise(self._client, "ListenBuildHistory", exc)
                except BuildKitError as error:
                    self._fail(error)
        except Exception as exc:  # noqa: BLE001 - a failing callback ends the watch, reported, not lost
            self._call.cancel()
            self._fail(exc)
        else:
            if not self._closing.is_set():
                self._fail(DaemonError(f"history watch on {self._client.address}: the daemon ended the stream"))
        finally:
            self.ended.set()

    def _fail(self, error: BaseException) -> None:
        self.error = error
        if self._on_error is not None:
            self._on_error(error)

    def close(self, timeout: float = 5.0) -> None:
        self._closing.set()
        self._call.cancel()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def __enter__(self) -> "HistoryWatch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def watch_history(client, on_event: Callable[[str, HistoryRecord], None],
                  on_error: Callable[[BuildKitError], None] | None = None) -> HistoryWatch:
    """Start a watch; a daemon without history raises HistoryUnavailable here, not in the thread."""
    probe = control_pb2.BuildHistoryRequest(EarlyExit=True, ActiveOnly=True, Ref="envd-history-probe")
    try:
        for _ in client.control.ListenBuildHistory(probe, timeout=client.timeout):
            pass
    except grpc.RpcError as exc:
        _raise(client, "ListenBuildHistory", exc)
    return HistoryWatch(client, on_event, on_error)
