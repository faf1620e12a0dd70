"""One solve: lower the definition for the daemon, open a session, follow Status, wait or cancel.

Three things run at once, as in BuildKit's own client: the session (daemon calls us), the
Status stream (merged into a BuildModel, fanned out as VertexEvents) and the Solve call.
Cancelling the Solve call (KeyboardInterrupt, a cancel event, a timeout) cancels the job on
the daemon; every thread started here is joined before returning.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import grpc
from google.protobuf.message import DecodeError

from envd_jupyter._proto import control_pb2, ops_pb2, worker_pb2
from envd_jupyter.buildkit._cache import cache_entry, plan_cache
from envd_jupyter.buildkit._errors import (CapsError, DaemonError, InvalidDefinitionError, SolveCancelled,
                                          SolveError)
from envd_jupyter.buildkit._progress import BuildModel, EventCallback
from envd_jupyter.buildkit._session import Export
from envd_jupyter.buildkit._session.transport import Session, new_id

POLL = 0.1  # seconds between cancel checks while the Solve call runs
STATUS_DRAIN = 3.0  # how long the Status stream may trail the Solve answer
LOG_TAIL_LINES = 10
MULTIPLE_EXPORTERS_CAP = "exporter.multiple"
_GONE_CODES = (grpc.StatusCode.UNAVAILABLE,)
_EXIT_CODE = re.compile(r"exit code: (\d+)")
_UNKNOWN_CACHE_EXPORTER = re.compile(r'unknown cache exporter: "([^"]*)"')
_REGISTRY_REFUSED = re.compile(r"401 Unauthorized|no basic auth credentials|authorization failed", re.IGNORECASE)


@dataclass
class SolveResult:
    ref: str
    exporter_response: dict[str, str]
    model: BuildModel
    exports: tuple = ()
    elapsed: float = 0.0


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


def locator(*definitions: Any):
    """digest -> "file:line" from llb Definitions' source maps (the first that knows it; "" when none does)."""
    maps = [d.locations for d in definitions if getattr(d, "locations", None) is not None]

    def locate(digest: str) -> str:
        found = next((hit for hit in (locations(digest) for locations in maps) if hit), [])
        return f"{found[0].filename}:{found[0].line}" if found else ""

    return locate


def source_digests(definition: bytes) -> frozenset[str]:
    """Digests of the source ops (image, local, git, http), which resolve rather than cache."""
    import hashlib

    try:
        parsed = ops_pb2.Definition.FromString(definition)
        return frozenset("sha256:" + hashlib.sha256(op).hexdigest() for op in getattr(parsed, "def")
                         if ops_pb2.Op.FromString(op).HasField("source"))
    except DecodeError as exc:
        raise InvalidDefinitionError(f"not an LLB Definition ({len(definition)} bytes): {exc}") from None


def session_services(local_dirs, secrets, exports: Sequence[Export]) -> list:
    """The services a solve's session needs for these options (shared by solve and gateway builds)."""
    services = []
    if local_dirs:
        from envd_jupyter.buildkit._session.filesync import FileSyncService

        services.append(FileSyncService(local_dirs))
    if secrets:
        from envd_jupyter.buildkit._session.secrets import SecretsService

        services.append(SecretsService(secrets))
    try:
        from envd_jupyter.buildkit._session.auth import AuthService
    except ImportError:
        pass
    else:
        services.append(AuthService())
    for index, export in enumerate(exports):
        services.extend(export.session_services(index))
    return services


def explain_failure(services, error: Exception) -> Exception:
    """What to raise for a failed solve, given what its session saw.

    A credential-helper failure wins (clearer than the daemon's wrapping of it); a registry that
    refused a host we sent no credentials for gets that said, so the user knows what to configure.
    """
    for service in services:
        if getattr(service, "failure", None) is not None:
            return service.failure
    if isinstance(error, SolveError) and _REGISTRY_REFUSED.search(str(error)):
        for service in services:
            hint = getattr(service, "anonymous_hint", lambda message: "")(str(error))
            if hint:
                error.args = (error.args[0] + hint, *error.args[1:])
                break
    return error


def result_metadata(exports: Sequence[Export]) -> dict[str, bytes]:
    """Result metadata the exports need (see ``session.Export``); two exports may not disagree on a key."""
    merged: dict[str, bytes] = {}
    for export in exports:
        for key, value in (getattr(export, "result_metadata", dict)() or {}).items():
            if merged.setdefault(key, value) != value:
                raise InvalidDefinitionError(f"exports disagree on result metadata {key!r}")
    return merged


def build_request(ref: str, session_id: str, definition: bytes, exports: Sequence[Export], caps,
                  *, cache_imports=(), cache_exports=(), entitlements=()) -> control_pb2.SolveRequest:
    """The SolveRequest in the shape this daemon reads (one legacy exporter before BuildKit 0.13)."""
    request = control_pb2.SolveRequest(
        Ref=ref, Session=session_id,
        Definition=worker_pb2.OpaqueDefinition.FromString(definition),
        Entitlements=list(entitlements),
        Cache=control_pb2.CacheOptions(Imports=[cache_entry(c) for c in cache_imports],
                                       Exports=[cache_entry(c) for c in cache_exports]),
    )
    if exports:
        request.ExporterDeprecated = exports[0].type
        request.ExporterAttrsDeprecated.update(exports[0].attrs)
    if caps.has(MULTIPLE_EXPORTERS_CAP):
        request.Exporters.extend(control_pb2.Exporter(Type=e.type, Attrs=dict(e.attrs)) for e in exports)
    elif len(exports) > 1:
        raise CapsError(f"this daemon exports one result per solve ({len(exports)} exports given); "
                        "BuildKit >= 0.13 accepts several")
    return request


class StatusFollower:
    """Reads the Status stream into the model and calls the event callbacks, in one thread.

    A callback that raises ends the build: it is dropped, ``error`` holds its exception and
    ``failed`` is set, so the thread waiting on the solve cancels it and re-raises ``error`` (a
    user's bug must surface, not vanish or leave the build running). The other callbacks keep
    receiving events, so a renderer still shows the steps being cancelled.
    """

    def __init__(self, control, ref: str, model: BuildModel, callbacks: Sequence[EventCallback]):
        self.model, self._callbacks = model, list(callbacks)
        self.error: BaseException | None = None
        self.failed = threading.Event()
        self._call = control.Status(control_pb2.StatusRequest(Ref=ref))
        self._thread = threading.Thread(target=self._run, name=f"envd-status-{ref[:8]}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for response in self._call:
                for event in self.model.apply(response):
                    self._deliver(event)
        except grpc.RpcError:
            pass  # the Solve call reports daemon failures; Status only feeds progress

    def _deliver(self, event) -> None:
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception as exc:  # handed to the solving thread, which cancels and re-raises it
                self._callbacks.remove(callback)
                if self.error is None:
                    self.error = exc
                    self.failed.set()

    def finish(self, ok: bool) -> None:
        """Stop following: after a finished solve let the stream trail by STATUS_DRAIN, else 0.5 s."""
        self._thread.join(STATUS_DRAIN if ok else 0.5)
        if self._thread.is_alive():
            self._call.cancel()
            self._thread.join(2.0)


def run_solve(client, target, *, exports: Sequence[Export] = (), cache_imports=(), cache_exports=(),
              secrets: Mapping | None = None, local_dirs: Mapping | None = None,
              entitlements: Sequence[str] = (), on_event: EventCallback | Sequence[EventCallback] | None = None,
              timeout: float | None = None, cancel: threading.Event | None = None) -> SolveResult:
    """Solve ``target`` (State, Definition or bytes) on ``client``'s daemon.

    ``exports``: ``session.Export`` objects (buildkit.exports); more than one needs BuildKit >= 0.13.
    ``cache_imports``/``cache_exports``: CacheSpec, (type, attrs) or {"type", "attrs"}.
    ``secrets``: {id: source}; ``local_dirs``: {name: path | LocalDir} for ``local()`` sources.
    ``on_event``: callback(s) receiving VertexEvents from the Status thread; one that raises
    cancels the solve on the daemon and its exception is re-raised here. ``timeout`` bounds the whole solve;
    ``cancel`` (a threading.Event) or KeyboardInterrupt cancels it on the daemon.
    Raises CapsError, InvalidDefinitionError, SolveError, SolveCancelled or DaemonError.
    """
    started = time.monotonic()
    caps = client.caps()
    lowered = lower(target, caps.llb)
    definition = serialize(lowered)
    exports = list(exports)
    metadata = result_metadata(exports)
    if metadata:
        from envd_jupyter.buildkit._gateway import solve_with_metadata

        return solve_with_metadata(client, definition, metadata, exports=exports, cache_imports=cache_imports,
                                   cache_exports=cache_exports, secrets=secrets, local_dirs=local_dirs,
                                   entitlements=entitlements, on_event=on_event, timeout=timeout, cancel=cancel)
    ref = new_id()
    callbacks = [] if on_event is None else [on_event] if callable(on_event) else list(on_event)
    model = BuildModel(source_digests=source_digests(definition))
    ok, response, follower, session, failure = False, None, None, None, None
    cache = plan_cache(cache_imports, cache_exports)
    services = session_services(local_dirs, secrets, exports) + cache.session_services()
    try:
        session = Session(services)
        request = build_request(ref, session.id, definition, exports, caps, cache_imports=cache.imports,
                                cache_exports=cache.exports, entitlements=entitlements)
        session.start(client.transport)
        follower = StatusFollower(client.control, ref, model, callbacks)
        call = client.control.Solve.future(request, timeout=timeout)
        try:
            response = _wait(call, cancel, follower.failed)
        except KeyboardInterrupt:
            call.cancel()
            raise
        ok = True  # a callback's failure is checked once, after the stream has drained
    except grpc.RpcError as exc:
        failure = exc  # classified below, once the Status stream has delivered the failed step
    except SolveCancelled:
        if follower is None or follower.error is None:
            raise  # else the callback's own exception is raised below
    finally:
        if follower is not None:
            follower.finish(ok or failure is not None)
            ok = ok and follower.error is None  # a callback that failed while the stream drained
        if session is not None:
            session.close()
        for export in exports:  # always told, so a failed solve leaves no half-written output
            export.finish(ok, dict(response.ExporterResponse) if ok else {})
        if ok:
            cache.finish(response.ExporterResponse)
    if follower is not None and follower.error is not None:
        raise follower.error
    if failure is not None:
        raise explain_failure(services, _classify(failure, client, model, timeout, locator(lowered))) from None
    return SolveResult(ref, dict(response.ExporterResponse), model, tuple(exports), time.monotonic() - started)


def _wait(call, *cancels: threading.Event | None):
    """The Solve answer; setting any of ``cancels`` cancels the call and raises SolveCancelled."""
    while True:
        try:
            return call.result(timeout=POLL)
        except grpc.FutureTimeoutError:
            if any(c is not None and c.is_set() for c in cancels):
                call.cancel()
                raise SolveCancelled("solve cancelled") from None
        except grpc.FutureCancelledError:
            raise SolveCancelled("solve cancelled") from None


def _classify(exc: grpc.RpcError, client, model: BuildModel, timeout: float | None, locate) -> Exception:
    code, details = exc.code(), exc.details() or ""
    if code in _GONE_CODES:
        return DaemonError(f"the daemon at {client.address} went away mid-solve ({details})")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return SolveError(f"solve timed out after {timeout}s", detail=details)
    if code == grpc.StatusCode.CANCELLED:
        return SolveCancelled(f"solve cancelled ({details})")
    return solve_error(details, model, locate)


def solve_error(details: str, model: BuildModel, locate=lambda digest: "") -> SolveError:
    """A one-line SolveError naming the failed step and its exit code, with its last log lines."""
    unknown_cache = _UNKNOWN_CACHE_EXPORTER.search(details)
    if unknown_cache:
        return SolveError(f"cache export type {unknown_cache.group(1)!r} is not supported by this daemon "
                          "(dockerd with the classic image store, 20.10 or 26, exports only inline cache): use "
                          "CacheSpec.inline(), a dockerd with the containerd image store, or buildkitd",
                          detail=details)
    match = _EXIT_CODE.search(details)
    exit_code = int(match.group(1)) if match else None
    failed = [v for v in model.failed() if not v.error.endswith("context canceled")] or model.failed()
    if not failed:
        return SolveError(f"solve failed: {details}", exit_code=exit_code, detail=details)
    step = failed[-1]
    location = locate(step.digest)
    head = f"step {step.name!r}{f' ({location})' if location else ''} failed"
    head += f" with exit code {exit_code}" if exit_code is not None else f": {step.error}"
    return SolveError(head, step=step.name, exit_code=exit_code, location=location,
                      log_tail=tuple(step.log_tail(LOG_TAIL_LINES)), detail=details)


async def solve_in_thread(client, target, **options) -> SolveResult:
    """Run ``run_solve`` in its own thread; task cancellation sets its cancel event and waits for it."""
    import asyncio

    if "cancel" in options:
        raise TypeError("solve_async is cancelled by cancelling its task, not with cancel=")
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    cancel = threading.Event()

    def settle(outcome, failed: bool) -> None:
        if not done.done():
            done.set_exception(outcome) if failed else done.set_result(outcome)

    def work() -> None:
        try:
            outcome, failed = run_solve(client, target, cancel=cancel, **options), False
        except BaseException as exc:  # handed to the awaiting task
            outcome, failed = exc, True
        if not loop.is_closed():
            loop.call_soon_threadsafe(settle, outcome, failed)

    thread = threading.Thread(target=work, name="envd-solve-async", daemon=True)
    thread.start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        done.cancel()  # the thread's SolveCancelled is expected: nothing left to retrieve it
        cancel.set()
        deadline = loop.time() + STATUS_DRAIN + 5  # the solve thread ends once the daemon confirms
        while thread.is_alive() and loop.time() < deadline:
            await asyncio.sleep(POLL)
        raise
