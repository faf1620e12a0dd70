"""One Control.Solve from start to end: its session, Status follower, exporters, cache and failure explanation.

Three things run at once, as in BuildKit's own client: the session (the daemon calls us), the
Status stream (merged into a BuildModel, fanned out as VertexEvents) and the Solve call. A plain
solve sends its Definition in that call; an interactive build sends none and the daemon waits for
LLBBridge calls (``_gateway``). Both start, cancel, end and explain a failed step here, so they
fail with the same SolveError and leave nothing behind.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import grpc

from envd_jupyter._proto import control_pb2
from envd_jupyter.buildkit._cache import plan_cache
from envd_jupyter.buildkit._errors import DaemonError, GatewayError, SolveCancelled, SolveError
from envd_jupyter.buildkit._failure import explain, failed_mounts, session_failure
from envd_jupyter.buildkit._interrupt import CANCEL_CONFIRM, Flag, wait
from envd_jupyter.buildkit._mask import SecretMask, secret_values
from envd_jupyter.buildkit._progress import BuildModel, EventCallback
from envd_jupyter.buildkit._request import Vertices, build_request, session_services, vertices
from envd_jupyter.buildkit._session.auth import AuthService
from envd_jupyter.buildkit._session.credscope import CredentialScope
from envd_jupyter.buildkit._session.transport import Session, new_id

STATUS_END_WAIT = 5.0  # bound on the Status stream ending by itself once the job is over (normally at once)
# A failed Solve whose job never reported anything: either the daemon refused the request before it made
# a job (no Status will ever come), or the first report is still on its way (seen 1-12 ms behind on 0.8).
FIRST_REPORT_WAIT = 0.5
REPORT_WAIT = 5.0  # bound on the Status stream catching up with a gateway Solve's reply (normally at once)
END_OF_EVENTS = None  # what a subscriber's queue receives last
# While a solve runs its daemon is asked a cheap question (ListWorkers) every LIVENESS_INTERVAL; two
# unanswered in a row (LIVENESS_TIMEOUT each) end the solve: a half-open TCP connection never answers,
# and a long RUN sends nothing on the Solve call to notice it by. Generous: a loaded daemon is not a dead one.
LIVENESS_INTERVAL = 30.0
LIVENESS_TIMEOUT = 60.0
LIVENESS_MISSES = 2


@dataclass
class SolveResult:
    ref: str
    exporter_response: dict[str, str]
    model: BuildModel
    exports: tuple = ()
    elapsed: float = 0.0


class StatusFollower:
    """Reads the Status stream into the model and calls the event callbacks, in one thread.

    A callback that raises ends the build: it is dropped, ``error`` holds its exception and
    ``on_callback_error`` cancels the solve, whose waiting side re-raises ``error`` (a user's bug
    must surface, not vanish or leave the build running). The other callbacks keep receiving
    events, so a renderer still shows the steps being cancelled.

    The daemon waits only so long for a job to appear (6 s; 3 s on BuildKit 0.8) before it ends a
    Status stream with "no such job"; a daemon that slow to start the job is followed again until
    the solve has ``answered``, instead of leaving the model and the callbacks silent.
    """

    def __init__(self, control, ref: str, model: BuildModel, callbacks: Sequence[EventCallback],
                 on_callback_error: Callable[[], None], answered: Flag):
        self.model, self._callbacks, self._on_callback_error = model, list(callbacks), on_callback_error
        self.error: BaseException | None = None
        self.reported = Flag()  # the daemon reported something: the job exists, so the stream will end
        self.ended = Flag()
        self.attempts = 0  # Status calls made
        self._watches: list[tuple[Callable[[BuildModel], bool], Flag]] = []
        self._control, self._ref, self._answered = control, ref, answered
        self._stopping = False
        self._applying = threading.Lock()  # the Status thread and client-side notes take turns
        self._call = self._follow()
        self._thread = threading.Thread(target=self._run, name=f"envd-status-{ref[:8]}", daemon=True)
        self._thread.start()

    def _follow(self):
        self.attempts += 1
        return self._control.Status(control_pb2.StatusRequest(Ref=self._ref))

    def _run(self) -> None:
        try:
            while True:
                try:
                    for response in self._call:
                        self.reported.set()
                        self.apply(response)
                    return
                except grpc.RpcError as exc:  # the Solve call reports daemon failures; Status only feeds progress
                    if (self.reported.is_set() or self._answered.is_set() or self._stopping
                            or "no such job" not in (exc.details() or "")):
                        return
                self._call = self._follow()
                if self._stopping:  # finish() cancelled the call before this one
                    self._call.cancel()
        finally:
            self.ended.set()
            for predicate, flag in list(self._watches):
                self._unwatch(predicate, flag)

    def apply(self, response) -> None:
        """Merge one StatusResponse (the daemon's, or a client-side note) and tell the callbacks."""
        with self._applying:
            for event in self.model.apply(response):
                self._deliver(event)
            for predicate, flag in list(self._watches):
                if predicate(self.model):
                    self._unwatch(predicate, flag)

    def _unwatch(self, predicate, flag: Flag) -> None:
        flag.set()
        try:
            self._watches.remove((predicate, flag))
        except ValueError:
            pass

    def watch(self, predicate: Callable[[BuildModel], bool]) -> Flag:
        """A Flag set once ``predicate(model)`` holds (checked after each update) or the stream has ended."""
        flag = Flag()
        self._watches.append((predicate, flag))
        if self.ended.is_set() or predicate(self.model):  # after the append: the thread cannot miss it
            self._unwatch(predicate, flag)
        return flag

    def _deliver(self, event) -> None:
        for callback in list(self._callbacks):
            try:
                callback(event)
            except Exception as exc:  # handed to the solving side, which re-raises it
                self._callbacks.remove(callback)
                if self.error is None:
                    self.error = exc
                    self._on_callback_error()

    def finish(self, *, expect_end: bool, bound: float) -> None:
        """Stop following: wait up to ``bound`` for the stream's own end when it will come, else end it now."""
        if expect_end:
            self.ended.wait(bound)
        self._stopping = True
        if not self.ended.is_set():
            self._call.cancel()
        self._thread.join(2.0)


class Liveness:
    """Asks the daemon ListWorkers while a solve runs; calls ``on_lost(reason)`` after LIVENESS_MISSES misses."""

    def __init__(self, control, on_lost: Callable[[str], None]):
        self._control, self._on_lost = control, on_lost
        self._stop = threading.Event()
        threading.Thread(target=self._run, name="envd-liveness", daemon=True).start()

    def _run(self) -> None:
        misses = 0
        while not self._stop.wait(LIVENESS_INTERVAL):
            try:
                self._control.ListWorkers(control_pb2.ListWorkersRequest(), timeout=LIVENESS_TIMEOUT)
                misses = 0
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                    continue  # it answered, if only to refuse
                misses += 1
                if misses >= LIVENESS_MISSES and not self._stop.is_set():
                    self._on_lost(f"{misses} liveness checks unanswered within {LIVENESS_TIMEOUT:g}s each")
                    return
            except ValueError:  # the client closed its channel: the build's own calls end with it
                return

    def stop(self) -> None:
        self._stop.set()


class SolveLifecycle:
    """One Control.Solve; the options are ``Client.solve``'s (see ``_solve.start_solve``).

    ``start`` opens the session, follows Status and sends the request; ``cancel`` ends it on the
    daemon from any thread; ``conclude`` turns the answer into a SolveResult or the error that
    explains it; ``end`` (exactly once, whatever happened) lets the Status stream finish, closes
    the session and tells the exports and the cache how it went.
    """

    def __init__(self, client, *, exports=(), cache_imports=(), cache_exports=(), secrets=None, local_dirs=None,
                 entitlements: Sequence[str] = (), on_event: EventCallback | Sequence[EventCallback] | None = None,
                 timeout: float | None = None, name: str | None = None, credential_hosts: Sequence[str] = ()):
        self.client = client
        self.ref = new_id()
        self.model = BuildModel(began=time.time(), mask=SecretMask(secret_values(secrets)))
        self.exports = list(exports)
        self.timeout = timeout
        self.definitions: list = []  # what was solved: their source maps name the user's line of a failed step
        self.cancelled = False
        self.lost: DaemonError | None = None  # the daemon stopped answering (Liveness)
        self.answered = Flag()  # the Control.Solve call has ended
        self.ended = False  # end() has run (or is running)
        self._started = time.monotonic()
        self._cache = plan_cache(cache_imports, cache_exports)
        # Registry credentials go only to hosts this solve names (or the user allowed), and each hand-out is noted.
        self.credentials = CredentialScope(credential_hosts)
        self.credentials.add_exports(self.exports)
        self.credentials.add_cache(self._cache.imports, export=False)
        self.credentials.add_cache(self._cache.exports, export=True)
        self._notes_lock = threading.Lock()
        self._early_notes: list = []  # notes made before the Status follower exists
        self._services = session_services(local_dirs, secrets, self.exports,
                                          AuthService(scope=self.credentials, note=self.note))
        self._services += self._cache.session_services()
        self._callbacks = [] if on_event is None else [on_event] if callable(on_event) else list(on_event)
        self._entitlements, self._name = list(entitlements), name
        self._session: Session | None = None
        self._follower: StatusFollower | None = None
        self._liveness: Liveness | None = None
        self._call = None
        self._subscribers: list[queue.SimpleQueue] = []
        self._events_over = False
        self._end_once = threading.Lock()
        self._definitions_lock = threading.Lock()

    @property
    def cache_imports(self) -> list:
        """The cache imports as sent (local ones pinned to a digest); gateway Solves name them again."""
        return self._cache.imports

    def add_definition(self, definition: Any, data: bytes) -> Vertices:
        """Record a Definition about to be solved (``data``: its bytes); what the Status stream will report."""
        found = vertices(data)
        self.credentials.add_definition(data)
        with self._definitions_lock:  # solve_many records from several threads at once
            self.definitions.append(definition)
            self.model.source_digests = self.model.source_digests | found.sources
        return found

    def start(self, definition: bytes | None) -> None:
        """Open the session, follow Status, send the Solve (``definition`` None: an interactive build)."""
        caps = self.client.caps()
        self._session = Session(self._services)
        request = build_request(self.ref, self._session.id, definition, self.exports, caps,
                                cache_imports=self._cache.imports, cache_exports=self._cache.exports,
                                entitlements=self._entitlements, name=self._name)
        try:
            self._session.start(self.client.transport)
        except OSError as exc:  # a refused, reset or timed-out socket: the daemon died or is dying
            raise session_failure(exc, self.client.address) from None
        follower = StatusFollower(self.client.control, self.ref, self.model, [*self._callbacks, self._publish],
                                  self.cancel, self.answered)
        with self._notes_lock:
            self._follower = follower
            early, self._early_notes = self._early_notes, []
        for response in early:
            follower.apply(response)
        self._call = self.client.control.Solve.future(request, timeout=self.timeout)
        self._call.add_done_callback(lambda _: self.answered.set())
        self._liveness = Liveness(self.client.control, self._daemon_lost)
        if self.cancelled:  # cancel() came while the call was being set up
            self._call.cancel()

    def note(self, text: str) -> None:
        """A client-side progress line, shown as a finished vertex of its own (as BuildKit's client shows
        "[auth] ..." lines); never counted as a step that ran or was cached. Safe from any thread."""
        digest = "sha256:" + hashlib.sha256(f"{self.ref}/{new_id()}".encode()).hexdigest()
        vertex = control_pb2.Vertex(digest=digest, name=text)
        vertex.started.GetCurrentTime()
        vertex.completed.CopyFrom(vertex.started)
        response = control_pb2.StatusResponse(vertexes=[vertex])
        with self._definitions_lock:
            self.model.source_digests = self.model.source_digests | {digest}
        with self._notes_lock:
            follower = self._follower
            if follower is None:
                self._early_notes.append(response)
        if follower is not None:
            follower.apply(response)

    def _daemon_lost(self, reason: str) -> None:
        self.lost = DaemonError(f"the daemon at {self.client.address} stopped answering mid-solve ({reason})")
        self.cancel()

    def cancel(self) -> None:
        """End the solve on the daemon; safe from any thread, and before ``start``."""
        self.cancelled = True
        if self._call is not None:
            self._call.cancel()

    # -- why work inside the solve must stop -----------------------------------------------
    def stop_reason(self) -> BaseException | None:
        """A callback's exception, a cancel, or the Control.Solve's own end; None while the solve goes on."""
        if self.lost is not None:
            return self.lost
        if self._follower is not None and self._follower.error is not None:
            return self._follower.error
        if self.cancelled:
            return SolveCancelled(f"build {self.ref} cancelled")
        if self.answered.is_set():
            try:
                self._call.result(timeout=0)
            except grpc.FutureCancelledError:
                return SolveCancelled(f"build {self.ref} cancelled")
            except grpc.RpcError as exc:
                return self.explain(exc)
            return GatewayError(f"build {self.ref} ended before the gateway call returned")
        return None

    def explain(self, error: grpc.RpcError, among: frozenset[str] | None = None) -> Exception:
        return explain(error, address=self.client.address, model=self.model, definitions=self.definitions,
                       services=self._services, timeout=self.timeout, among=among)

    def explain_step(self, error: grpc.RpcError, solved: Vertices) -> Exception:
        """A failed gateway Solve, explained once the Status stream reports its vertices settled (bounded)."""
        if self._follower is not None and error.code() not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE):
            def settled(model: BuildModel) -> bool:
                reported = [model.vertices.get(digest) for digest in solved.all]
                return all(v is None or v.done or v.started is None for v in reported)

            wait(self._follower.watch(settled), REPORT_WAIT, on_interrupt=self.cancel)
        failure = self.explain(error, among=solved.all)
        if isinstance(failure, SolveError):
            failure.mounts = failed_mounts(error)
        return failure

    def head_cached(self, solved: Vertices) -> bool | None:
        """Whether the Status stream reported the solved Definition's last op served from cache (None: unreported)."""
        head = solved.head
        if head is None or self._follower is None:
            return None
        reported = self._follower.watch(lambda model: head in model.vertices and model.vertices[head].done)
        wait(reported, REPORT_WAIT, on_interrupt=self.cancel)
        vertex = self.model.vertices.get(head)
        return vertex.cached if vertex is not None and vertex.done else None

    # -- the end ------------------------------------------------------------------------------
    def conclude(self) -> SolveResult:
        """Once ``answered``: end the lifecycle and return the result, or raise what explains the failure."""
        failure, response = None, None
        try:
            response = self._call.result(timeout=0)
        except grpc.FutureCancelledError:
            pass
        except grpc.RpcError as exc:
            failure = exc
        self.end(response is not None, response)
        if self.lost is not None:
            raise self.lost
        if self._follower.error is not None:
            raise self._follower.error
        if failure is not None:
            raise self.explain(failure) from None
        if response is None:
            raise SolveCancelled(f"solve {self.ref} cancelled")
        return SolveResult(self.ref, dict(response.ExporterResponse), self.model, tuple(self.exports),
                           time.monotonic() - self._started)

    def end(self, ok: bool, response=None) -> None:
        """Exactly once: let the Status stream finish, close the session, tell exports and cache the outcome."""
        if not self._end_once.acquire(blocking=False):
            return
        self.ended = True
        if self._liveness is not None:
            self._liveness.stop()
        try:
            if self._follower is not None:
                bound = CANCEL_CONFIRM if self.cancelled else STATUS_END_WAIT
                job = ok or self._follower.reported.wait(0 if self.cancelled else FIRST_REPORT_WAIT)
                self._follower.finish(expect_end=job, bound=bound)
                ok = ok and self._follower.error is None  # a callback that failed while the stream drained
            if self._session is not None:
                self._session.close()
            failure = self._finish_exports(ok, dict(response.ExporterResponse) if ok else {})
            if ok:
                try:
                    self._cache.finish(response.ExporterResponse)
                except Exception as exc:
                    failure = failure or exc
            if failure is not None:
                raise failure
        finally:
            self._events_over = True
            self._publish(END_OF_EVENTS)

    def _finish_exports(self, ok: bool, exporter_response: dict) -> Exception | None:
        """Every export is told (so a failed solve leaves no half-written output); returns the first failure."""
        failure = None
        for export in self.exports:
            try:
                export.finish(ok, exporter_response)
            except Exception as exc:
                failure = failure or exc
        return failure

    # -- events as a stream -------------------------------------------------------------------
    def subscribe(self) -> queue.SimpleQueue:
        """A queue of the VertexEvents from now on, then END_OF_EVENTS once the solve has ended."""
        events: queue.SimpleQueue = queue.SimpleQueue()
        self._subscribers.append(events)
        if self._events_over:  # after the append: end() either saw this queue or set the flag first
            events.put(END_OF_EVENTS)
        return events

    def unsubscribe(self, events: queue.SimpleQueue) -> None:
        try:
            self._subscribers.remove(events)
        except ValueError:
            pass

    def _publish(self, event) -> None:
        for events in list(self._subscribers):
            events.put(event)
