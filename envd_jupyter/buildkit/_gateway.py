"""Interactive builds over BuildKit's gateway (LLBBridge): solve states to refs, look inside, then export.

``with client.interactive(exports=...) as b:`` starts a ``Control.Solve`` that carries the session and
exporters but no definition (a ``SolveLifecycle``); the daemon then waits for LLBBridge calls tagged
with gRPC metadata ``buildkit-controlapi-buildid``. ``b.solve(state)`` builds to a ref without
exporting, ``b.solve_many(states)`` several at once, ``ref.read_file`` / ``read_dir`` / ``stat`` read
inside one, and ``b.finish(ref)`` (or leaving the block after ``b.set_result(ref)``) hands a ref back
with ``Return`` so the daemon exports it. Works on BuildKit 0.8 (dockerd 20.10) and current daemons.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Mapping, Sequence

import grpc

from envd_jupyter._proto import gateway_pb2, gateway_pb2_grpc, worker_pb2
from envd_jupyter.buildkit._container import ExecError, ExecResult, OutputCallback
from envd_jupyter.buildkit._container import run as run_in_container
from envd_jupyter.buildkit._errors import GatewayError, SolveCancelled, SolveError
from envd_jupyter.buildkit._interrupt import CANCEL_CONFIRM, Flag, deferred_interrupts, wait
from envd_jupyter.buildkit._lifecycle import SolveLifecycle, SolveResult
from envd_jupyter.buildkit._progress import BuildModel
from envd_jupyter.buildkit._ref import FileStat, Ref
from envd_jupyter.buildkit._request import lower, serialize
from envd_jupyter.buildkit._stepper import Stepper

BUILD_ID_METADATA = "buildkit-controlapi-buildid"
READ_TIMEOUT = 120.0  # seconds for ReadFile/ReadDir/StatFile/Ping/Return
FORWARDER_WAIT = 10.0  # the daemon registers the build id shortly after Control.Solve starts
_RETRY = 0.05  # seconds between Pings while the daemon registers the build id


class _Group:
    """Solves started together by ``solve_many``: the first failure cancels the others."""

    def __init__(self) -> None:
        self.cancelled = False
        self.failure: BaseException | None = None
        self.lock = threading.Lock()


class Build:
    """One interactive build; ``model`` is its live BuildModel, ``cancel()`` ends it on the daemon."""

    def __init__(self, lifecycle: SolveLifecycle):
        self._lifecycle = lifecycle
        self._bridge = gateway_pb2_grpc.LLBBridgeStub(lifecycle.client.transport.channel)
        self._metadata = ((BUILD_ID_METADATA, lifecycle.ref),)
        self._llb_caps = lifecycle.client.caps().llb  # States are lowered for them, as Client.solve does
        # The Control.Solve's cache imports do not reach gateway solves: each Solve names them itself.
        self._cache_imports = [gateway_pb2.CacheOptionsEntry(Type=c.Type, Attrs=dict(c.Attrs))
                               for c in lifecycle.cache_imports]
        self._result_ref: Ref | None = None
        self._returned = False
        self.caps = self._wait_for_forwarder()

    @property
    def ref(self) -> str:
        return self._lifecycle.ref

    @property
    def model(self) -> BuildModel:
        return self._lifecycle.model

    @property
    def address(self) -> str:
        """The daemon's address (what errors name)."""
        return str(self._lifecycle.client.address)

    @property
    def ended(self) -> bool:
        return self._lifecycle.ended

    def cancel(self) -> None:
        """End the build on the daemon (from any thread); calls waiting in it raise SolveCancelled."""
        self._lifecycle.cancel()

    # -- daemon calls -----------------------------------------------------------------------
    def _call(self, name: str, request, timeout: float | None = READ_TIMEOUT, *, group: _Group | None = None,
              on_interrupt: Callable[[], None] | None = None):
        """An LLBBridge call's answer (grpc.RpcError as the daemon gave it).

        The call ends early, raising the reason, when the build ends or is cancelled meanwhile or
        ``group`` is cancelled; Ctrl-C cancels the whole build (or calls ``on_interrupt`` instead).
        """
        future = getattr(self._bridge, name).future(request, metadata=self._metadata, timeout=timeout)
        answered = Flag()
        future.add_done_callback(lambda _: answered.set())

        def check() -> None:
            reason = self._lifecycle.stop_reason()
            if reason is None and group is not None and group.cancelled:
                reason = SolveCancelled(f"solve cancelled: another solve in build {self.ref} failed")
            if reason is not None:
                future.cancel()
                raise reason

        def interrupted() -> None:
            future.cancel()
            (on_interrupt or self.cancel)()

        wait(answered, None, on_interrupt=interrupted, check=check)
        try:
            return future.result(timeout=0)
        except grpc.FutureCancelledError:
            raise SolveCancelled(f"{name} cancelled") from None

    def _read(self, name: str, request, what: str):
        with deferred_interrupts():
            try:
                return self._call(name, request)
            except grpc.RpcError as exc:
                raise GatewayError(f"{name} {what}: {exc.details() or exc.code().name}") from None

    def _wait_for_forwarder(self) -> set[str]:
        deadline = time.monotonic() + FORWARDER_WAIT
        while True:
            try:
                pong = self._call("Ping", gateway_pb2.PingRequest(), timeout=FORWARDER_WAIT)
                return {cap.ID for cap in pong.FrontendAPICaps if cap.Enabled}
            except grpc.RpcError as exc:
                if "no such job" not in (exc.details() or "") or time.monotonic() > deadline:
                    raise GatewayError(f"Ping: {exc.details() or exc.code().name}") from None
                time.sleep(_RETRY)

    # -- the user's API -----------------------------------------------------------------------
    def solve(self, state: Any, *, evaluate: bool = True, timeout: float | None = None) -> Ref:
        """Build to a ref (not exported). ``evaluate`` runs it now, so progress and errors show here.

        A failing step raises SolveError (step, exit code, last log lines, the user's line), as Client.solve.
        """
        with deferred_interrupts():
            return self._solve(state, evaluate, timeout, None)

    def solve_many(self, states: Sequence[Any], *, evaluate: bool = True, timeout: float | None = None) -> list[Ref]:
        """Solve ``states`` at once; the first failure cancels the others and is raised. Refs in order."""
        if not states:
            return []
        group = _Group()
        refs: list = [None] * len(states)
        finished = [Flag() for _ in states]
        settled = Flag()  # every solve finished, or one failed

        def run(index: int, state: Any) -> None:
            try:
                refs[index] = self._solve(state, evaluate, timeout, group)
            except BaseException as exc:
                with group.lock:
                    if group.failure is None and not group.cancelled:
                        group.failure, group.cancelled = exc, True
                settled.set()
            finally:
                finished[index].set()
                if all(flag.is_set() for flag in finished):
                    settled.set()

        def interrupted() -> None:
            group.cancelled = True
            self.cancel()

        with deferred_interrupts():
            for index, state in enumerate(states):
                threading.Thread(target=run, args=(index, state), name=f"envd-solve-many-{index}", daemon=True).start()
            wait(settled, None, on_interrupt=interrupted)
            if group.failure is not None:
                for flag in finished:  # the others notice the cancel within one wait slice
                    wait(flag, CANCEL_CONFIRM, on_interrupt=interrupted)
                raise group.failure
        return refs

    def _solve(self, state: Any, evaluate: bool, timeout: float | None, group: _Group | None) -> Ref:
        lowered = state if isinstance(state, (bytes, bytearray)) else lower(state, self._llb_caps)
        data = serialize(lowered)
        solved = self._lifecycle.add_definition(lowered, data)
        request = gateway_pb2.SolveRequest(Definition=worker_pb2.OpaqueDefinition.FromString(data),
                                           allowResultReturn=True, allowResultArrayRef=True,
                                           CacheImports=self._cache_imports)
        native_evaluate = evaluate and "gateway.solve.evaluate" in self.caps
        request.Evaluate = native_evaluate
        started = time.monotonic()
        try:
            ref_id = _ref_id(self._call("Solve", request, timeout, group=group))
            if evaluate and not native_evaluate and ref_id:  # BuildKit 0.8: a stat forces the solve, as Go's client does
                self._call("StatFile", gateway_pb2.StatFileRequest(Ref=ref_id, Path="."), timeout, group=group)
        except grpc.RpcError as exc:
            raise self._lifecycle.explain_step(exc, solved) from None
        elapsed = time.monotonic() - started
        return Ref(ref_id, self, elapsed, self._lifecycle.head_cached(solved) if evaluate else None)

    def read_file(self, ref: Ref | str, path: str, *, offset: int | None = None,
                  length: int | None = None) -> bytes:
        request = gateway_pb2.ReadFileRequest(Ref=_id(ref), FilePath=path)
        if offset is not None or length is not None:
            request.Range.Offset = offset or 0
            request.Range.Length = length if length is not None else (1 << 62)
        return self._read("ReadFile", request, path).Data

    def read_dir(self, ref: Ref | str, path: str = "/", *, include: str | None = None) -> list[FileStat]:
        request = gateway_pb2.ReadDirRequest(Ref=_id(ref), DirPath=path, IncludePattern=include or "")
        return [FileStat.from_pb(entry) for entry in self._read("ReadDir", request, path).entries]

    def stat(self, ref: Ref | str, path: str) -> FileStat:
        return FileStat.from_pb(self._read("StatFile", gateway_pb2.StatFileRequest(Ref=_id(ref), Path=path), path).stat)

    def exec(self, ref: Ref | str | SolveError, argv: Sequence[str], *, user: str = "", cwd: str = "/",
             env: Mapping[str, str] | Sequence[str] = (), stdin: bytes | None = None,
             on_output: OutputCallback | None = None, network: str = "sandbox",
             timeout: float | None = None) -> ExecResult:
        """Run ``argv`` in a container over ``ref``'s filesystem; the ref itself never changes.

        ``ref`` may be the SolveError of a failed ``solve`` in this build: the command then runs over
        the failed step's own filesystems as they were when it failed (``error.mounts``; ExecError
        where the daemon did not report them, as BuildKit 0.8 does not).

        ``on_output(fd, data)`` (1 stdout, 2 stderr) is called in this thread as output arrives;
        ``env`` without PATH gets the usual one. A non-zero exit is a result, not an error; a
        daemon without the container API, a program that cannot start or ``timeout`` raise ExecError.
        Ctrl-C kills the process and raises KeyboardInterrupt; the build stays open.
        """
        if isinstance(ref, SolveError):
            if not ref.mounts:
                raise ExecError(f"the daemon at {self.address} did not report the failed step's filesystems "
                                "(BuildKit 0.8 does not): run the command in the state before the step instead")
            mounts = list(ref.mounts)
        else:
            mounts = [("/", _id(ref))]
        return run_in_container(self, mounts, argv, user=user, cwd=cwd, env=env, stdin=stdin,
                                on_output=on_output, network=network, timeout=timeout)

    def stepper(self, target: Any, *, breakpoints: Sequence[str] = ()) -> Stepper:
        """Solve ``target`` one vertex at a time in this build (``next()``), or on to a breakpoint (``resume()``)."""
        return Stepper(self, target, breakpoints)

    def set_result(self, ref: Ref | None) -> None:
        """The ref the daemon exports when the build ends (None: export nothing)."""
        self._result_ref = ref

    def finish(self, ref: Ref | None = None, *, metadata: Mapping[str, str | bytes] | None = None,
               timeout: float | None = None) -> SolveResult:
        """Return ``ref`` (or the one set) to the daemon and wait for its exports.

        ``metadata`` goes into the result's metadata, which exporters read: dockerd's ``moby``
        exporter takes the image config only from there (``containerimage.config``), not from attrs.
        """
        if ref is not None:
            self._result_ref = ref
        with deferred_interrupts():
            try:
                self._return(metadata)
                if not wait(self._lifecycle.answered, timeout, on_interrupt=self.cancel):
                    raise SolveError(f"build {self.ref} did not finish within {timeout}s")
            except BaseException:
                self.cancel()
                self._lifecycle.end(False)
                raise
            return self._lifecycle.conclude()

    def _return(self, metadata: Mapping[str, str | bytes] | None) -> None:
        if self._returned:
            return
        self._returned = True
        request = gateway_pb2.ReturnRequest()
        if self._result_ref is not None and self._result_ref.id:
            if "proto.refarray" in self.caps:
                request.result.ref.id = self._result_ref.id
            else:
                request.result.refDeprecated = self._result_ref.id
        else:
            request.result.refDeprecated = ""  # an empty result: nothing to export
        for key, value in (metadata or {}).items():
            request.result.metadata[key] = value.encode() if isinstance(value, str) else bytes(value)
        try:
            self._call("Return", request)
        except grpc.RpcError as exc:
            raise GatewayError(f"Return: {exc.details() or exc.code().name}") from None

    def close(self, error: BaseException | None = None) -> None:
        """End the build: export the result set, or (after ``error`` or a cancel) end it exporting nothing."""
        if self._lifecycle.ended:
            return
        if error is None and not self._returned and not self._lifecycle.cancelled:
            self.finish()
            return
        self.cancel()
        self._lifecycle.end(False)

    def __enter__(self) -> "Build":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
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


def open_build(lifecycle: SolveLifecycle) -> Build:
    """Start ``lifecycle`` as an interactive build; if anything fails on the way it is cancelled and ended."""
    try:
        with deferred_interrupts():
            lifecycle.start(None)
            return Build(lifecycle)
    except BaseException:
        lifecycle.cancel()
        lifecycle.end(False)
        raise


def interactive(client, **options) -> Build:
    """Start an interactive build on ``client`` (what ``Client.interactive`` returns).

    Options mean what they mean for ``Client.solve`` (``name``, ``exports``, caches, ``secrets``,
    ``local_dirs``, ``on_event``, ``timeout`` for the whole build); ``exports`` apply to the ref handed
    back with ``finish``/``set_result``. The session lives until the build ends. Ctrl-C while a call
    waits, or ``cancel()``, cancels the build on the daemon.
    """
    return open_build(SolveLifecycle(client, **options))
