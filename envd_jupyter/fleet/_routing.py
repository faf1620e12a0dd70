"""Routing one build: schedule on the last snapshot, run on the pick, fail over to the next choice.

A pick that cannot be reached (``ConnectError``) or dies mid-solve
(``DaemonError``: it went away or stopped answering the liveness checks) is marked down with a
backoff and the build is scheduled again without it, at most ``max_attempts`` times; each failover
is one line for ``on_failover``
(default: a ``FailoverWarning``, which a notebook prints). A failing step is the build's own
failure and is raised at once. A build whose exports may already have been written is never run
again: it is retried only while no "exporting to ..." step had started, and only with exports the
fleet can make afresh (``"dir=PATH"`` specs, ``Image``; not a used ``LocalDir``/``Tarball`` object,
nor ``PushViaDocker``, which pushes through one builder's dockerd).
"""

from __future__ import annotations

import threading
import time
import warnings
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

from envd_jupyter import buildkit
from envd_jupyter.fleet._errors import FleetError
from envd_jupyter.scheduler import NoEndpointsError, SchedulingResult

FAILOVER_ERRORS = (buildkit.ConnectError, buildkit.DaemonError)
WAIT_SLICE = 0.2  # seconds between checks for Ctrl-C while waiting for a routed solve
T = TypeVar("T")


class FailoverWarning(UserWarning):
    """A builder failed and the build moved to another (one line per failover)."""


def warn_failover(line: str) -> None:
    warnings.warn(line, FailoverWarning, stacklevel=4)


def one_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]


@dataclass
class RoutedResult:
    """A solve the fleet routed: where it ran, the decision (every cycle's record) and the daemon's result."""

    builder: str
    address: str
    scheduling: SchedulingResult
    result: buildkit.SolveResult
    failovers: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:  # model, exporter_response, elapsed, ... of the SolveResult
        if name == "result":
            raise AttributeError(name)
        return getattr(self.result, name)

    def to_dict(self) -> dict[str, Any]:
        return {"builder": self.builder, "address": self.address, "failovers": list(self.failovers),
                "scheduling": [record.to_dict() for record in self.scheduling.records]}


class Reservation:
    """The scheduler's reservation for one pick, released once (when the solve is counted in flight, or fails)."""

    def __init__(self, scheduler: Any, scheduling: SchedulingResult):
        self._scheduler, self.scheduling, self._released = scheduler, scheduling, False
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._scheduler.release(self.scheduling)


def route(fleet: Any, request: Any, attempt: Callable[[str, Reservation, tuple[str, ...]], T], *,
          max_attempts: int, on_failover: Callable[[str], None] | None, profile: str | None = None,
          retry_blocked: Callable[[BaseException], str] = lambda error: "") -> T:
    """Run ``attempt(builder, reservation, failovers)`` on successive picks until one does not fail over.

    ``profile``: the cycle whose pick runs it (default: the primary's).
    """
    tell = on_failover or warn_failover
    tried: list[str] = []
    failovers: list[str] = []
    pending = ""  # the failover line, said once the next pick is known
    for number in range(1, max_attempts + 1):
        try:
            scheduling = fleet.schedule_request(request, exclude=tried)
        except NoEndpointsError as exc:
            if not tried:
                raise
            raise FleetError(f"{pending}; no other builder can take the build ({one_line(exc)})") from None
        chosen = scheduling.profile_results.get(profile) if profile else None
        builder = (chosen or scheduling).endpoint.name
        if pending:
            line = f"{pending}; retrying on {builder} (attempt {number} of {max_attempts})"
            failovers.append(line)
            tell(line)
        reservation = Reservation(fleet.scheduler, scheduling)
        try:
            return attempt(builder, reservation, tuple(failovers))
        except FAILOVER_ERRORS as exc:
            backoff = fleet.mark_down(builder, one_line(exc))
            pending = f"fleet: {builder} failed ({one_line(exc)}); marked down for {backoff:g}s"
            blocked = retry_blocked(exc)
            if blocked:
                raise FleetError(f"{pending}; not retried: {blocked}") from exc
            tried.append(builder)
        finally:
            reservation.release()
    raise FleetError(f"{pending}; gave up after {max_attempts} attempts ({', '.join(tried)})")


def fresh_exports(specs: Sequence[Any]) -> list:
    """The export objects for one attempt: string specs are parsed anew, so a retry writes through new targets."""
    from envd_jupyter.fleet._fleet import parse_export

    return [parse_export(spec) if isinstance(spec, str) else spec for spec in specs]


def unrepeatable(specs: Sequence[Any]) -> str:
    """Why these exports cannot be made again on another builder ("" when they can)."""
    for spec in specs:
        if isinstance(spec, buildkit.PushViaDocker):
            return f"{spec!r} pushes through one builder's dockerd"
        if isinstance(spec, (buildkit.LocalDir, buildkit.Tarball)):
            return f"{spec!r} is used up by the failed attempt (pass 'dir=PATH' or 'tar=FILE' to allow a retry)"
    return ""


def export_started(model: Any) -> bool:
    """Whether the daemon had begun writing an export (not cache) before it failed."""
    return any(v.started is not None and v.name.startswith("exporting") and "cache" not in v.name
               for v in list(model.vertices.values()))


class RoutedSolve:
    """``Fleet.start_solve``'s handle: the routed solve in its own thread; ``result()``, ``cancel()``, ``builder``."""

    def __init__(self, run: Callable[["RoutedSolve"], RoutedResult]):
        self.builder: str | None = None  # the current attempt's pick
        self.handle: buildkit.SolveHandle | None = None  # the current attempt's buildkit handle
        self.cancelled = False
        self._future: Future = Future()
        self._lock = threading.Lock()
        threading.Thread(target=self._run, args=(run,), name="envd-fleet-solve", daemon=True).start()

    def _run(self, run: Callable[["RoutedSolve"], RoutedResult]) -> None:
        try:
            self._future.set_result(run(self))
        except BaseException as exc:  # handed to the caller of result()
            self._future.set_exception(exc)

    def attach(self, builder: str, handle: buildkit.SolveHandle) -> None:
        with self._lock:
            self.builder, self.handle = builder, handle
            cancelled = self.cancelled
        if cancelled:
            handle.cancel()

    @property
    def model(self) -> buildkit.BuildModel | None:
        return self.handle.model if self.handle is not None else None

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            handle = self.handle
        if handle is not None:
            handle.cancel()

    def done(self) -> bool:
        return self._future.done()

    def result(self, timeout: float | None = None) -> RoutedResult:
        """Wait (in slices, so Ctrl-C gets through and cancels the solve) for the routed result."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._future.done():
                left = WAIT_SLICE if deadline is None else min(WAIT_SLICE, deadline - time.monotonic())
                if left <= 0:
                    raise TimeoutError(f"the routed solve did not end within {timeout:g}s")
                wait([self._future], timeout=left)
        except KeyboardInterrupt:
            self.cancel()
            raise
        return self._future.result()
