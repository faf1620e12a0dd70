"""Interactive builds over BuildKit's gateway (LLBBridge): solve states to refs, look inside, then export.

``with client.interactive(exports=...) as b:`` starts a ``Control.Solve`` that carries the session and
exporters but no definition; the daemon then waits for LLBBridge calls tagged with gRPC metadata
``buildkit-controlapi-buildid``. ``b.solve(state)`` builds to a ref without exporting,
``b.read_file`` / ``b.read_dir`` / ``b.stat`` read inside it, more solves may follow, and
``b.finish(ref)`` (or leaving the block after ``b.set_result(ref)``) hands the ref back with
``Return`` so the daemon exports it. Works on BuildKit 0.8 (dockerd 20.10) and current daemons.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import grpc

from envd_jupyter._proto import fsutil_pb2, gateway_pb2, gateway_pb2_grpc, worker_pb2
from envd_jupyter.buildkit._errors import SolveCancelled
from envd_jupyter.buildkit._progress import BuildModel

BUILD_ID_METADATA = "buildkit-controlapi-buildid"
READ_TIMEOUT = 120.0  # seconds for ReadFile/ReadDir/StatFile/Ping/Return
FORWARDER_WAIT = 10.0  # the daemon registers the build id shortly after Control.Solve starts
_POLL = 0.25


class GatewayError(RuntimeError):
    """A gateway call failed; the message names the call and the daemon's reason."""


@dataclass(frozen=True)
class Ref:
    """A solved result inside an interactive build (valid until the build ends)."""

    id: str
    build: "Build"

    def read_file(self, path: str, *, offset: int | None = None, length: int | None = None) -> bytes:
        return self.build.read_file(self, path, offset=offset, length=length)

    def read_dir(self, path: str = "/", *, include: str | None = None) -> list[fsutil_pb2.Stat]:
        return self.build.read_dir(self, path, include=include)

    def stat(self, path: str) -> fsutil_pb2.Stat:
        return self.build.stat(self, path)


def definition_bytes(state_or_definition: Any) -> bytes:
    """Serialized pb.Definition from a State, a Definition message or bytes."""
    value = state_or_definition
    if hasattr(value, "marshal"):
        value = value.marshal()
    for attribute in ("to_bytes", "SerializeToString"):
        if hasattr(value, attribute):
            return getattr(value, attribute)()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    raise TypeError(f"cannot solve {type(state_or_definition).__name__}: expected a State, Definition or bytes")


class Build:
    """One interactive build. ``control`` is the running Control.Solve: ``result(timeout)``/``cancel()``."""

    def __init__(self, channel: grpc.Channel, build_ref: str, control: Any, *,
                 on_end: Callable[[bool, Any], Any] | None = None, model: Any = None,
                 cancel: threading.Event | None = None, services: tuple = (), follower: Any = None,
                 cache_imports: tuple = (), llb_caps: frozenset[str] | None = None):
        self.ref = build_ref
        self.model = model
        self.services = services  # the session's services (their failures explain a failed build)
        self._bridge = gateway_pb2_grpc.LLBBridgeStub(channel)
        self._metadata = ((BUILD_ID_METADATA, build_ref),)
        self._control = control
        self._on_end = on_end
        self._cancel = cancel
        self._follower = follower  # a StatusFollower whose failed callback cancels the build
        # The Control.Solve's cache imports do not reach gateway solves: each Solve names them itself.
        self._cache_imports = [gateway_pb2.CacheOptionsEntry(Type=c.Type, Attrs=dict(c.Attrs)) for c in cache_imports]
        self._llb_caps = llb_caps  # llb States/Definitions are lowered for them, as Client.solve does
        self._result_ref: Ref | None = None
        self._returned = False
        self._ended = False
        self.response: Any = None
        try:
            self.caps = self._wait_for_forwarder()
        except BaseException:
            self._control.cancel()
            self._end(False)
            raise

    # -- daemon calls -----------------------------------------------------------------------
    def _call(self, name: str, request, timeout: float | None = READ_TIMEOUT):
        """Call an LLBBridge method; Ctrl-C cancels it; errors become GatewayError."""
        future = getattr(self._bridge, name).future(request, metadata=self._metadata, timeout=timeout)
        try:
            while True:
                try:
                    return future.result(timeout=_POLL)
                except grpc.FutureTimeoutError:
                    self._raise_if_control_failed()
                    self._raise_if_cancelled()
        except grpc.RpcError as exc:
            raise GatewayError(f"{name}: {exc.details() or exc.code().name}") from None
        except BaseException:
            future.cancel()
            raise

    def _raise_if_control_failed(self) -> None:
        done = getattr(self._control, "done", None)
        if done is not None and done():
            self._control.result(timeout=0)  # re-raises the solve's error
            raise GatewayError("the build ended before the gateway call returned")

    def _raise_if_cancelled(self) -> None:
        """Cancel on the daemon when the caller asked to, or an event callback raised (re-raised here)."""
        callback_error = self._follower.error if self._follower is not None else None
        if callback_error is not None or (self._cancel is not None and self._cancel.is_set()):
            self._control.cancel()
            self._end(False)
            if callback_error is not None:
                raise callback_error
            raise SolveCancelled(f"build {self.ref} cancelled")

    def _wait_for_forwarder(self) -> set[str]:
        deadline = time.monotonic() + FORWARDER_WAIT
        while True:
            try:
                pong = self._call("Ping", gateway_pb2.PingRequest(), timeout=FORWARDER_WAIT)
                return {cap.ID for cap in pong.FrontendAPICaps if cap.Enabled}
            except GatewayError as exc:
                if "no such job" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(_POLL)

    # -- the user's API -----------------------------------------------------------------------
    def solve(self, state_or_definition: Any, *, evaluate: bool = True, timeout: float | None = None) -> Ref:
        """Build to a ref (not exported). ``evaluate`` runs it now, so progress and errors show here."""
        if self._llb_caps is not None and not isinstance(state_or_definition, (bytes, bytearray)):
            from envd_jupyter.buildkit._solve import lower

            state_or_definition = lower(state_or_definition, self._llb_caps)
        definition = worker_pb2.OpaqueDefinition.FromString(definition_bytes(state_or_definition))
        request = gateway_pb2.SolveRequest(Definition=definition, allowResultReturn=True,
                                           allowResultArrayRef=True, CacheImports=self._cache_imports)
        native_evaluate = evaluate and "gateway.solve.evaluate" in self.caps
        request.Evaluate = native_evaluate
        response = self._call("Solve", request, timeout=timeout)
        ref = Ref(_ref_id(response), self)
        if evaluate and not native_evaluate and ref.id:
            self.stat(ref, ".")  # BuildKit 0.8: a stat forces the solve, like Go's client does
        return ref

    def read_file(self, ref: Ref | str, path: str, *, offset: int | None = None,
                  length: int | None = None) -> bytes:
        request = gateway_pb2.ReadFileRequest(Ref=_id(ref), FilePath=path)
        if offset is not None or length is not None:
            request.Range.Offset = offset or 0
            request.Range.Length = length if length is not None else (1 << 62)
        return self._call("ReadFile", request).Data

    def read_dir(self, ref: Ref | str, path: str = "/", *, include: str | None = None) -> list[fsutil_pb2.Stat]:
        request = gateway_pb2.ReadDirRequest(Ref=_id(ref), DirPath=path, IncludePattern=include or "")
        return list(self._call("ReadDir", request).entries)

    def stat(self, ref: Ref | str, path: str) -> fsutil_pb2.Stat:
        return self._call("StatFile", gateway_pb2.StatFileRequest(Ref=_id(ref), Path=path)).stat

    def set_result(self, ref: Ref | None) -> None:
        """The ref the daemon exports when the build ends (None: export nothing)."""
        self._result_ref = ref

    def finish(self, ref: Ref | None = None, *, metadata: Mapping[str, str | bytes] | None = None,
               timeout: float | None = None) -> Any:
        """Return ``ref`` (or the one set) to the daemon, wait for its exports; the Control.Solve answer.

        ``metadata`` goes into the result's metadata, which exporters read: dockerd's ``moby``
        exporter takes the image config only from there (``containerimage.config``), not from attrs.
        """
        if ref is not None:
            self._result_ref = ref
        self._return(None, metadata)
        return self._wait_control(timeout)

    # -- ending --------------------------------------------------------------------------------
    def _return(self, error: BaseException | None, metadata: Mapping[str, str | bytes] | None = None) -> None:
        if self._returned:
            return
        self._returned = True
        request = gateway_pb2.ReturnRequest()
        if error is not None:
            request.error.code = 2  # UNKNOWN, like BuildKit's Go client for plain errors
            request.error.message = f"{type(error).__name__}: {error}"
        elif self._result_ref is not None and self._result_ref.id:
            if "proto.refarray" in self.caps:
                request.result.ref.id = self._result_ref.id
            else:
                request.result.refDeprecated = self._result_ref.id
        else:
            request.result.refDeprecated = ""  # an empty result: nothing to export
        if error is None:
            for key, value in (metadata or {}).items():
                request.result.metadata[key] = value.encode() if isinstance(value, str) else bytes(value)
        self._call("Return", request)

    def _wait_control(self, timeout: float | None):
        """Wait for the Control.Solve to end; Ctrl-C or ``timeout`` cancels it on the daemon."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ok = False
        try:
            while True:
                try:
                    self.response = self._control.result(timeout=_POLL)
                    ok = True
                    return self.response
                except (TimeoutError, grpc.FutureTimeoutError):
                    self._raise_if_cancelled()
                    if deadline is not None and time.monotonic() > deadline:
                        self._control.cancel()
                        raise GatewayError(f"build {self.ref} did not finish within {timeout}s") from None
                except grpc.RpcError as exc:
                    raise GatewayError(f"build {self.ref} failed: {exc.details() or exc.code().name}") from None
        except KeyboardInterrupt:
            self._control.cancel()
            raise
        finally:
            self._end(ok)

    def _end(self, ok: bool) -> None:
        if not self._ended:
            self._ended = True
            if self._on_end is not None:
                self._on_end(ok, self.response)

    def close(self, error: BaseException | None = None) -> None:
        """End the build: return the result (or the error) and wait for the Control.Solve to end."""
        if self._ended:
            return
        if error is None:
            self._return(None)
            self._wait_control(None)
            return
        try:
            self._return(error)
            self._wait_control(READ_TIMEOUT)
        except Exception:
            self._control.cancel()  # the solve fails with the error we returned; the caller sees the original
            self._end(False)

    def __enter__(self) -> "Build":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if isinstance(exc, KeyboardInterrupt):
            self._control.cancel()
            self._end(False)
            return
        self.close(exc)


def _id(ref: Ref | str) -> str:
    return ref.id if isinstance(ref, Ref) else ref


def _ref_id(response: gateway_pb2.SolveResponse) -> str:
    if response.HasField("result"):
        which = response.result.WhichOneof("result")
        if which == "ref":
            return response.result.ref.id
        if which == "refDeprecated":
            return response.result.refDeprecated
        if which is not None:
            raise GatewayError(f"Solve returned a multi-ref result ({which}); interactive builds use one ref")
    return response.ref


def interactive(client, *, exports=(), cache_imports=(), cache_exports=(), secrets=None, local_dirs=None,
                entitlements=(), on_event=None, timeout: float | None = None,
                cancel: threading.Event | None = None) -> Build:
    """Start an interactive build on ``client`` (what ``Client.interactive`` returns).

    Options mean what they mean for ``Client.solve``; ``exports`` apply to the ref handed back
    with ``finish``/``set_result``. The session lives until the build ends. Setting ``cancel`` (or
    Ctrl-C) cancels the build on the daemon; the waiting call raises SolveCancelled.
    """
    from envd_jupyter.buildkit import _solve as solving
    from envd_jupyter.buildkit._cache import plan_cache
    from envd_jupyter.buildkit._session.transport import Session, new_id

    exports = list(exports)
    caps = client.caps()
    build_ref = new_id()
    cache = plan_cache(cache_imports, cache_exports)
    services = tuple(solving.session_services(local_dirs, secrets, exports) + cache.session_services())
    session = Session(services)
    request = solving.build_request(build_ref, session.id, b"", exports, caps, cache_imports=cache.imports,
                                    cache_exports=cache.exports, entitlements=entitlements)
    request.ClearField("Definition")  # no definition, no frontend: the daemon waits for LLBBridge calls
    callbacks = [] if on_event is None else [on_event] if callable(on_event) else list(on_event)
    model = BuildModel()
    session.start(client.transport)
    follower = solving.StatusFollower(client.control, build_ref, model, callbacks)
    control = client.control.Solve.future(request, timeout=timeout)

    def on_end(ok: bool, response) -> None:
        follower.finish(ok)
        session.close()
        for export in exports:
            export.finish(ok, dict(response.ExporterResponse) if ok and response is not None else {})
        if ok and response is not None:
            cache.finish(response.ExporterResponse)

    return Build(client.transport.channel, build_ref, control, on_end=on_end, model=model, cancel=cancel,
                 services=services, follower=follower, cache_imports=tuple(cache.imports), llb_caps=caps.llb)


def solve_with_metadata(client, definition: Any, metadata: Mapping[str, bytes], *, exports=(), on_event=None,
                        timeout: float | None = None, cancel: threading.Event | None = None, **options):
    """``Client.solve`` for exports that need result metadata: solve to a ref, Return it with ``metadata``.

    A plain Control.Solve cannot carry result metadata, and dockerd's ``moby`` exporter (20.10, 26
    classic) reads the image config only from there, so ``run_solve`` comes here for such exports.
    """
    from envd_jupyter.buildkit._solve import SolveResult

    started = time.monotonic()
    build = None
    try:
        with interactive(client, exports=exports, on_event=on_event, timeout=timeout, cancel=cancel,
                         **options) as build:
            response = build.finish(build.solve(definition, timeout=timeout), metadata=metadata, timeout=timeout)
    except GatewayError as exc:
        raise failure(build, exc, definition) from None
    return SolveResult(build.ref, dict(response.ExporterResponse), build.model, tuple(exports),
                       time.monotonic() - started)


def failure(build: Build | None, error: GatewayError, *definitions: Any) -> Exception:
    """What to raise for a failed interactive build: a SolveError naming the failed step, its exit code,
    last log lines and (from ``definitions``' source maps) the user's line; ``build`` None: it never started."""
    from envd_jupyter.buildkit._solve import explain_failure, locator, solve_error

    if build is None:
        return solve_error(str(error), BuildModel())
    return explain_failure(build.services, solve_error(str(error), build.model, locator(*definitions)))
