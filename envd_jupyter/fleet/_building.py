"""What the fleet does with a target: open stages, steppers, exports and routed solves.

Each goes through ``_routing.route``: scheduled on the last snapshot, run on the pick, failed over
when the pick dies. Afterwards the fleet learns what the daemon reported as run or cached there.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from envd_jupyter import buildkit
from envd_jupyter.fleet._fleet import lowered
from envd_jupyter.fleet._profiles import EXPORT_PROFILE
from envd_jupyter.fleet._routing import (FAILOVER_ERRORS, Reservation, RoutedResult, RoutedSolve, export_started,
                                         fresh_exports, route, unrepeatable)
from envd_jupyter.fleet._stage import Stage


def key_attributes(attributes: Mapping[str, str] | None, local_dirs: Mapping[str, Any] | None) -> dict[str, str]:
    """The request's attributes: the caller's, and ``context`` (the key sticky hashing routes by, as
    buildx hashes the build context's path) from the first of ``local_dirs`` when the caller gave none,
    so a notebook's builds (whose context is the workspace directory) keep one key."""
    found = dict(attributes or {})
    if "context" not in found and local_dirs:
        first = local_dirs[min(local_dirs)]
        found["context"] = str(Path(getattr(first, "path", first)).absolute())
    return found


def _shared_imports(fleet: Any, request: Any, builder: str) -> list:
    if fleet.shared_cache is None:
        return []
    return fleet.shared_cache.specs(request, fleet.solved_on(builder), False, ())[0]


def build(fleet: Any, target: Any, *, name: str | None = None, on_event: Any = None,
          on_scheduled: Callable[[Any, Any], None] | None = None, timeout: float | None = None,
          keep_on_failure: bool = False, on_failover: Callable[[str], None] | None = None,
          cache_imports: Sequence[Any] = (), attributes: Mapping[str, str] | None = None, **options: Any) -> Stage:
    """Schedule ``target``, solve it on the pick inside an interactive build, and keep that open.

    ``on_scheduled(scheduling, definition)`` is told each decision and the exact graph the pick runs
    (lowered for its caps) before the solve starts (again after a failover). ``options`` are
    ``Client.interactive``'s (local_dirs, secrets, entitlements, …); the shared cache is imported, and
    exported once the stage is built, in the background (``Stage.shared``, see ``share``).
    ``attributes``: the request's, as ``solve`` takes them (``context`` defaults to the first local dir).
    A failing step raises ``buildkit.SolveError``; with ``keep_on_failure`` its ``stage`` is the
    filesystem that step started from, kept open in the same build (close it when done), or None.
    Ctrl-C cancels the solve on the daemon.
    """
    request = fleet.request(target, key_attributes(attributes, options.get("local_dirs")))

    def attempt(builder: str, reservation: Reservation, failovers: tuple[str, ...]) -> Stage:
        client = fleet.client(builder)
        caps = client.caps().llb
        definition = lowered(fleet.definition(target, caps), caps)
        if on_scheduled is not None:
            on_scheduled(reservation.scheduling, definition)
        imports = [*cache_imports, *_shared_imports(fleet, request, builder)]
        with fleet.running(builder, reservation):
            opened = client.interactive(name=name, on_event=on_event, timeout=timeout, cache_imports=imports, **options)
            try:
                ref = opened.solve(definition, timeout=timeout)
            except buildkit.SolveError as error:
                error.model = opened.model  # what ran before the failure, for the caller's final view
                error.stage = None
                if keep_on_failure:
                    error.stage = _stage_before(error, builder, reservation.scheduling, definition, opened, timeout)
                else:
                    opened.cancel()
                fleet.learn(builder, request, opened.model)
                raise
            except BaseException as exc:
                opened.cancel()
                if isinstance(exc, buildkit.BuildKitError):
                    exc.model = opened.model
                raise
        fleet.learn(builder, request, opened.model)
        stage = Stage(builder, reservation.scheduling, definition, opened, ref, failovers=failovers)
        stage.shared = share(fleet, builder, definition, request, name=name, **options)
        return stage

    return route(fleet, request, attempt, max_attempts=fleet.max_attempts, on_failover=on_failover or fleet.on_failover)


SHARED_OPTIONS = ("local_dirs", "secrets", "entitlements", "credential_hosts")  # what a re-solve of the graph needs
SHARE_TIMEOUT = 600.0  # seconds a background cache export may take


def share(fleet: Any, builder: str, definition: Any, request: Any, *, name: str | None = None,
          **options: Any) -> Future | None:
    """Export a built stage's cache to the shared registry cache, from its own builder, in a thread.

    The stage stays open and the cell returns at once: every step is cached on ``builder``, so the
    re-solve only exports (``mode=max``). The Future holds the cache ref, or the error; None when
    there is nothing to share (no shared cache, the builder cannot export one, the registry holds it all).
    """
    if fleet.shared_cache is None:
        return None
    info = next((b for b in fleet.builders() if b.name == builder), None)
    _, exports = fleet.shared_cache.specs(request, frozenset(), info is not None and info.registry_cache, ())
    if not exports:
        return None
    passed = {key: value for key, value in options.items() if key in SHARED_OPTIONS}
    future: Future = Future()

    def run() -> None:
        try:
            with fleet.running(builder):
                result = fleet.client(builder).solve(definition, cache_exports=exports, timeout=SHARE_TIMEOUT,
                                                     name=f"{name or 'stage'} (shared cache export)", **passed)
            fleet.shared_cache.exported(request, exports, (), fleet.learn(builder, request, result.model))
            future.set_result(exports[0].attrs["ref"])
        except BaseException as exc:  # the stage is the user's result; a failed share is only reported here
            future.set_exception(exc)

    threading.Thread(target=run, name="envd-fleet-share", daemon=True).start()
    return future


def stepper(fleet: Any, target: Any, *, breakpoints: Sequence[str] = (), name: str | None = None,
            on_event: Any = None, timeout: float | None = None, attributes: Mapping[str, str] | None = None,
            **options: Any) -> "SteppedBuild":
    """Schedule ``target`` and open a build on the pick that solves it one vertex at a time.

    ``SteppedBuild.next()`` / ``resume()`` return each pause as a Stage; ``close()`` ends the build.
    """
    request = fleet.request(target, key_attributes(attributes, options.get("local_dirs")))

    def attempt(builder: str, reservation: Reservation, failovers: tuple[str, ...]) -> SteppedBuild:
        client = fleet.client(builder)
        caps = client.caps().llb
        definition = lowered(fleet.definition(target, caps), caps)
        opened = client.interactive(name=name, on_event=on_event, timeout=timeout, **options)
        return SteppedBuild(builder, reservation.scheduling, opened, opened.stepper(definition, breakpoints=breakpoints))

    return route(fleet, request, attempt, max_attempts=fleet.max_attempts, on_failover=fleet.on_failover)


def solve(fleet: Any, target: Any, *, exports: Sequence[Any] = (), cache_imports: Sequence[Any] = (),
          cache_exports: Sequence[Any] = (), on_failover: Callable[[str], None] | None = None,
          profile: str | None = None, attributes: Mapping[str, str] | None = None,
          handle: RoutedSolve | None = None, **options: Any) -> RoutedResult:
    """Route one solve: ``Client.solve``'s options; ``exports`` may be specs ("dir=PATH") or export objects.

    ``profile``: whose pick runs it (default: the config's primary, "build"); ``attributes``: the
    request's, for the scheduler's plugins (``context`` defaults to the first local dir). Cache is
    exported to the shared registry cache (mode=max, or inline with a push) and imported from it where
    it helps.
    """
    request = fleet.request(target, key_attributes(attributes, options.get("local_dirs")))
    specs = list(exports)

    def attempt(builder: str, reservation: Reservation, failovers: tuple[str, ...]) -> RoutedResult:
        client = fleet.client(builder)
        attempt_exports = fresh_exports(specs)
        shared_imports, shared_exports = [], []
        if fleet.shared_cache is not None:
            info = next((b for b in fleet.builders() if b.name == builder), None)
            shared_imports, shared_exports = fleet.shared_cache.specs(
                request, fleet.solved_on(builder), info is not None and info.registry_cache, attempt_exports)
        definition = fleet.definition(target, client.caps().llb)
        with fleet.running(builder, reservation):
            started = client.start_solve(definition, exports=attempt_exports,
                                         cache_imports=[*cache_imports, *shared_imports],
                                         cache_exports=[*cache_exports, *shared_exports], **options)
            if handle is not None:
                handle.attach(builder, started)
            try:
                result = started.result()
            except buildkit.BuildKitError as exc:
                exc.model = started.model
                exc.export_started = bool(attempt_exports) and export_started(started.model)
                if not isinstance(exc, FAILOVER_ERRORS):
                    fleet.learn(builder, request, started.model)
                raise
        keys = fleet.learn(builder, request, result.model)
        if fleet.shared_cache is not None:
            fleet.shared_cache.exported(request, shared_exports, attempt_exports, keys)
        return RoutedResult(builder, fleet.address(builder), reservation.scheduling, result, failovers)

    def blocked(error: BaseException) -> str:
        if getattr(error, "export_started", False):
            return "its exports had begun and could collide with a second run"
        if handle is not None and handle.cancelled:
            return "the solve was cancelled"
        return unrepeatable(specs)

    return route(fleet, request, attempt, max_attempts=fleet.max_attempts, profile=profile,
                 on_failover=on_failover or fleet.on_failover, retry_blocked=blocked)


def start_solve(fleet: Any, target: Any, **options: Any) -> RoutedSolve:
    return RoutedSolve(lambda handle: solve(fleet, target, handle=handle, **options))


def export(fleet: Any, target: Any, exports: Sequence[Any] | str, *, builder: str | None = None,
           **options: Any) -> buildkit.SolveResult | RoutedResult:
    """Solve ``target`` with exports (``"image=NAME"``, ``"dir=PATH"``, ``"tar=FILE"`` or export objects).

    ``builder`` (the stage's, to reuse its cache) runs it there; without it the "export" profile's
    pick does (a ``RoutedResult``, failing over like any routed solve).
    """
    specs = [exports] if isinstance(exports, str) else list(exports)
    if builder is None:
        has_export_profile = any(p.name == EXPORT_PROFILE for p in fleet.scheduler.config.profiles)
        return solve(fleet, target, exports=specs, profile=EXPORT_PROFILE if has_export_profile else None, **options)
    client = fleet.client(builder)
    with fleet.running(builder):
        return client.solve(fleet.definition(target, client.caps().llb), exports=fresh_exports(specs), **options)


class RoutedBuild:
    """``Fleet.interactive``'s build: a ``buildkit.Build`` on the pick, plus where and why it went there.

    Everything else is the Build's (``solve``, ``exec``, ``stepper``, ``finish``); ending it teaches the
    fleet what the daemon reported as run or cached.
    """

    def __init__(self, fleet: Any, request: Any, builder: str, scheduling: Any, build: Any, failovers=()):
        self._fleet, self._request = fleet, request
        self.builder, self.scheduling, self.build, self.failovers = builder, scheduling, build, failovers
        self._learned = False

    def __getattr__(self, name: str) -> Any:
        if name == "build":
            raise AttributeError(name)
        return getattr(self.build, name)

    def finish(self, *args: Any, **kwargs: Any):
        try:
            return self.build.finish(*args, **kwargs)
        finally:
            self._learn()

    def close(self, error: BaseException | None = None) -> None:
        try:
            self.build.close(error)
        finally:
            self._learn()

    def _learn(self) -> None:
        """Once, however the build ended (``finish`` then ``close`` from a ``with`` block is one build)."""
        if not self._learned:
            self._learned = True
            self._fleet.learn(self.builder, self._request, self.build.model)

    def __enter__(self) -> "RoutedBuild":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)


def interactive(fleet: Any, target: Any, *, cache_imports: Sequence[Any] = (),
                on_failover: Callable[[str], None] | None = None, attributes: Mapping[str, str] | None = None,
                **options: Any) -> RoutedBuild:
    """Schedule ``target`` and open an interactive build on the pick (failing over while it cannot be opened)."""
    request = fleet.request(target, key_attributes(attributes, options.get("local_dirs")))

    def attempt(builder: str, reservation: Reservation, failovers: tuple[str, ...]) -> RoutedBuild:
        client = fleet.client(builder)
        client.caps()  # reaches the daemon: a dead pick fails over here, not in the caller's first solve
        imports = [*cache_imports, *_shared_imports(fleet, request, builder)]
        opened = client.interactive(cache_imports=imports, **options)
        return RoutedBuild(fleet, request, builder, reservation.scheduling, opened, failovers)

    return route(fleet, request, attempt, max_attempts=fleet.max_attempts, on_failover=on_failover or fleet.on_failover)


class SteppedBuild:
    """A graph being stepped through on one builder; each pause is a Stage sharing the open build.

    A failing step raises ``buildkit.SolveError`` as ``Fleet.build(keep_on_failure=True)`` does: its
    ``stage`` is the filesystem the step started from (and ``exec`` runs over the failed step's own
    mounts where the daemon reported them), kept open in the build, which that stage now owns.
    """

    def __init__(self, builder: str, scheduling: Any, build: Any, stepper: Any):
        self.builder, self.scheduling, self.build, self.stepper = builder, scheduling, build, stepper

    @property
    def done(self) -> bool:
        return self.stepper.done

    def next(self) -> Stage:
        """The next vertex in dependency order, solved; StopIteration past the end."""
        return self._paused(self._solving(self.stepper.next))

    def resume(self) -> Stage | None:
        """On to the next breakpoint (or the end); None when there is nothing left."""
        step = self._solving(self.stepper.resume)
        return None if step is None else self._paused(step)

    def _solving(self, solve: Callable[[], Any]) -> Any:
        try:
            return solve()
        except buildkit.SolveError as error:
            error.model = self.build.model  # what ran before the failure, for the caller's final view
            error.stage = _stage_before(error, self.builder, self.scheduling, self.stepper.definition, self.build,
                                        None)
            raise

    def _paused(self, step: Any) -> Stage:
        definition = self.stepper.definition.up_to(step.vertex.digest)
        return Stage(self.builder, self.scheduling, definition, self.build, step.ref, owns_build=self.done,
                     note=f"paused at {step}")  # the last pause owns the build: closing it ends the build

    def close(self) -> None:
        self.build.close()


def _stage_before(error: Any, builder: str, scheduling: Any, definition: Any, opened: Any,
                  timeout: float | None) -> Stage | None:
    """The filesystem the failed step started from, solved in the same (still open) build; None ends the build.

    Its ops are the ones that just ran, so the daemon answers from the build's own results.
    """
    root = definition.root_input(error.digest) if error.digest in definition.digests else None
    if root is None:
        opened.cancel()
        return None
    before = definition.up_to(*root)
    try:
        ref = opened.solve(before, timeout=timeout)
    except buildkit.BuildKitError:
        opened.cancel()
        return None
    vertex = next((v for v in definition.vertices() if v.digest == error.digest), None)
    process = dict(vertex.attrs) if vertex is not None and vertex.kind == "exec" else None
    return Stage(builder, scheduling, before, opened, ref,
                 note=f"showing the filesystem before the failed step {error.step!r}", process=process, failure=error)

