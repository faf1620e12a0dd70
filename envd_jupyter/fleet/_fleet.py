"""``Fleet``: several BuildKit daemons behind the scheduler; each build goes where it is scheduled.

A build is scheduled on the graph form the least capable daemon accepts (``minimum_caps``), then
marshalled for the pick's own caps. The pick keeps the build open as a ``Stage`` so its files can
be read afterwards; in-flight counts, reservations and the cache-affinity index are updated here,
so the next decision sees this one.
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from envd_jupyter import buildkit
from envd_jupyter.fleet._entries import builder_entry
from envd_jupyter.fleet._errors import FleetError
from envd_jupyter.fleet._stage import Stage
from envd_jupyter.scheduler import BuildRequest, Endpoint, Scheduler, SchedulingResult

_PROJECT_FLAVOURS = {"current": "ENVD_DOCKER_CURRENT", "classic": "ENVD_DOCKER_CLASSIC", "old": "ENVD_DOCKER_OLD"}
_EXPORT_KINDS = ("image", "dir", "tar")


@dataclass(frozen=True)
class BuilderInfo:
    """What one builder reports: ``error`` says why it is unhealthy."""

    name: str
    address: str
    healthy: bool
    version: str = ""
    platforms: tuple[str, ...] = ()
    caps: frozenset[str] = frozenset()
    in_flight: int = 0
    disk_bytes: int = 0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "healthy": self.healthy, "version": self.version,
                "platforms": list(self.platforms), "caps": sorted(self.caps), "in_flight": self.in_flight,
                "disk_bytes": self.disk_bytes, "error": self.error}


def project_builders(state_dir: str | Path | None = None) -> dict[str, str]:
    """The daemons ``scripts/buildkit-up`` started, by flavour name (current, classic, old)."""
    directory = Path(state_dir or os.environ.get("ENVD_JUPYTER_STATE", "/var/lib/envd-jupyter"))
    env_file = directory / "env"
    try:
        pairs = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    except OSError as exc:
        raise FleetError(f"no project daemons: cannot read {env_file} ({exc.strerror}); run scripts/buildkit-up") from None
    return {name: "docker+unix://" + pairs[key] for name, key in _PROJECT_FLAVOURS.items() if key in pairs}


def _definition_for(target: Any, caps: frozenset[str] | None):
    """Marshal ``target`` for ``caps`` when it can choose its graph form (lang states), else as it is."""
    marshal = getattr(target, "marshal", None)
    if marshal is None:
        return target
    if "caps" in inspect.signature(marshal).parameters:
        return marshal(caps=caps)
    return marshal()


def _request(target: Any) -> BuildRequest:
    """The scheduler's view of ``target`` in the graph form the least capable daemon accepts."""
    return BuildRequest.from_definition(_definition_for(target, frozenset()))


def _lowered(definition: Any, caps: frozenset[str]):
    """The graph exactly as the daemon will receive it, so progress digests match what is shown."""
    lower_for = getattr(definition, "lower_for", None)
    return lower_for(caps) if lower_for is not None else definition


class Fleet:
    """Builders by name, one scheduler, one client per builder (connected when first needed).

    ``builders``: name → address, or → ``{"address": ..., "tls": {ca, cert, key, server_name} | False}``.
    ``config``: the scheduler's EndpointPickerConfig (YAML text or a mapping); None is the default
    profile. Thread-safe: a notebook may build in the background while another cell asks.
    """

    def __init__(self, builders: Mapping[str, Any], *, config: Any = None, timeout: float = 10.0, seed: int = 0):
        if not builders:
            raise FleetError("a fleet needs at least one builder address")
        entries = {str(name): builder_entry(value, where=f"builders.{name}") for name, value in builders.items()}
        self._addresses = {name: address for name, (address, _) in entries.items()}
        self._tls = {name: tls for name, (_, tls) in entries.items()}
        self._timeout = timeout
        self.scheduler = Scheduler(config, seed=seed)
        self._clients: dict[str, buildkit.Client] = {}
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.last_scheduling: SchedulingResult | None = None
        self.last_scheduling_at = 0.0  # time.monotonic() of that decision

    @classmethod
    def single(cls, address: str | None = None, *, tls: Any = None, **options: Any) -> "Fleet":
        """One builder: ``address``, or the one ``buildkit.connect()`` discovers; ``tls`` as in ``connect``."""
        if address is None:
            client = buildkit.connect(tls=tls)
            fleet = cls({"default": {"address": str(client.address), "tls": tls}}, **options)
            fleet._clients["default"] = client
            return fleet
        return cls({"default": {"address": address, "tls": tls}}, **options)

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> "Fleet":
        """A YAML file with ``builders: {name: address | {address, tls}}`` and an optional ``scheduler:`` config.

        ``tls: {ca, cert, key, server_name, verify}`` (paths relative to the file) or ``tls: false``.
        """
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise FleetError(f"{path}: cannot read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise FleetError(f"{path}: not YAML ({' '.join(str(exc).split())})") from None
        if not isinstance(data, dict) or not isinstance(data.get("builders"), dict) or not data["builders"]:
            raise FleetError(f"{path}: builders: must map each builder's name to its address")
        unknown = sorted(set(data) - {"builders", "scheduler"})
        if unknown:
            raise FleetError(f"{path}: unknown key {unknown[0]!r} (expected builders, scheduler)")
        builders = {}
        for name, value in data["builders"].items():
            address, tls = builder_entry(value, where=f"{path}: builders.{name}", relative_to=path.parent)
            builders[str(name)] = {"address": address, "tls": tls}
        try:
            return cls(builders, config=data.get("scheduler"), **options)
        except ValueError as exc:  # the scheduler's ConfigError names the path inside the config
            raise FleetError(f"{path}: scheduler: {exc}") from None

    # -- builders -----------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self._addresses)

    def address(self, name: str) -> str:
        return self._addresses[name]

    def tls(self, name: str) -> buildkit.TLSConfig | bool | None:
        """Builder ``name``'s TLS: a TLSConfig, False (plain text allowed), None (the address's defaults)."""
        return self._tls[name]

    def client(self, name: str) -> buildkit.Client:
        """The connected client of builder ``name`` (ConnectError when its daemon does not answer)."""
        with self._lock:
            client = self._clients.get(name)
        if client is None:
            client = buildkit.connect(self._addresses[name], tls=self._tls[name], timeout=self._timeout)
            with self._lock:
                client = self._clients.setdefault(name, client)
        return client

    def endpoints(self) -> list[Endpoint]:
        """The scheduler's view now: caps and in-flight solves; an unreachable builder is unhealthy."""
        endpoints = []
        for name, address in self._addresses.items():
            try:
                caps = self.client(name).caps().llb
            except buildkit.BuildKitError:
                endpoints.append(Endpoint(name, address=address, healthy=False))
                continue
            endpoints.append(Endpoint(name, address=address, caps=caps, in_flight=self._in_flight[name]))
        return endpoints

    def builders(self) -> list[BuilderInfo]:
        """Each builder's version, platforms, caps, in-flight solves and build-cache size (or its error)."""
        infos = []
        for name, address in self._addresses.items():
            try:
                client = self.client(name)
                workers = client.workers()
                infos.append(BuilderInfo(
                    name, address, True, version=client.info().version,
                    platforms=tuple(dict.fromkeys(p for w in workers for p in w.platforms)),
                    caps=client.caps().llb, in_flight=self._in_flight[name],
                    disk_bytes=sum(r.size for r in client.disk_usage())))
            except buildkit.BuildKitError as exc:
                infos.append(BuilderInfo(name, address, False, in_flight=self._in_flight[name],
                                         error=str(exc).splitlines()[0]))
        return infos

    # -- building -----------------------------------------------------------------------------
    def schedule(self, target: Any) -> SchedulingResult:
        """Choose a builder for ``target`` (State or Definition); the result keeps every score."""
        return self._schedule(_request(target))

    def _schedule(self, request: BuildRequest) -> SchedulingResult:
        result = self.scheduler.schedule(request, self.endpoints())
        self.last_scheduling, self.last_scheduling_at = result, time.monotonic()
        return result

    def build(self, target: Any, *, name: str | None = None, on_event: Any = None,
              on_scheduled: Callable[[SchedulingResult, Any], None] | None = None, timeout: float | None = None,
              keep_on_failure: bool = False, **options: Any) -> Stage:
        """Schedule ``target``, solve it on the pick inside an interactive build, and keep that open.

        ``on_scheduled(scheduling, definition)`` is told the decision and the exact graph the pick runs
        (lowered for its caps) before the solve starts. ``options`` are ``Client.interactive``'s
        (local_dirs, secrets, entitlements, cache_imports, …).
        A failing step raises ``buildkit.SolveError``; with ``keep_on_failure`` its ``stage`` is the
        filesystem that step started from, kept open in the same build (``stage.note`` says so; close
        it when done), or None when there was none.
        Ctrl-C cancels the solve on the daemon.
        """
        request = _request(target)
        scheduling = self._schedule(request)
        builder = scheduling.endpoint.name
        try:
            client = self.client(builder)
            definition = _lowered(_definition_for(target, client.caps().llb), client.caps().llb)
            if on_scheduled is not None:
                on_scheduled(scheduling, definition)
            with self._running(builder):
                build = client.interactive(name=name, on_event=on_event, timeout=timeout, **options)
                try:
                    ref = build.solve(definition, timeout=timeout)
                except buildkit.SolveError as error:
                    error.model = build.model  # what ran before the failure, for the caller's final view
                    error.stage = None
                    if keep_on_failure:
                        error.stage = _stage_before(error, builder, scheduling, definition, build, timeout)
                    else:
                        build.cancel()
                    raise
                except BaseException as exc:
                    build.cancel()
                    if isinstance(exc, buildkit.BuildKitError):
                        exc.model = build.model  # what ran before the failure, for the caller's final view
                    raise
        finally:
            self.scheduler.release(scheduling)
        self.scheduler.record_solved(builder, request)
        return Stage(builder, scheduling, definition, build, ref)

    def stepper(self, target: Any, *, breakpoints: Sequence[str] = (), name: str | None = None, on_event: Any = None,
                timeout: float | None = None, **options: Any) -> "SteppedBuild":
        """Schedule ``target`` and open a build on the pick that solves it one vertex at a time.

        ``SteppedBuild.next()`` / ``resume()`` return each pause as a Stage; ``close()`` ends the build.
        """
        scheduling = self.schedule(target)
        builder = scheduling.endpoint.name
        try:
            client = self.client(builder)
            definition = _lowered(_definition_for(target, client.caps().llb), client.caps().llb)
            build = client.interactive(name=name, on_event=on_event, timeout=timeout, **options)
        finally:
            self.scheduler.release(scheduling)
        return SteppedBuild(builder, scheduling, build, build.stepper(definition, breakpoints=breakpoints))

    def export(self, target: Any, exports: Sequence[Any] | str, *, builder: str | None = None,
               name: str | None = None, on_event: Any = None, timeout: float | None = None,
               **options: Any) -> buildkit.SolveResult:
        """Solve ``target`` with exports (``"image=NAME"``, ``"dir=PATH"``, ``"tar=FILE"`` or export objects).

        ``builder`` defaults to a scheduled pick; pass the stage's builder to reuse its cache.
        """
        exports = [parse_export(e) if isinstance(e, str) else e
                   for e in ([exports] if isinstance(exports, str) else exports)]
        if builder is None:
            scheduling = self.schedule(target)
            self.scheduler.release(scheduling)  # counted as in flight below while it runs
            builder = scheduling.endpoint.name
        client = self.client(builder)
        with self._running(builder):
            return client.solve(_definition_for(target, client.caps().llb), exports=exports, name=name,
                                on_event=on_event, timeout=timeout, **options)

    @contextmanager
    def _running(self, builder: str):
        with self._lock:
            self._in_flight[builder] += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[builder] -= 1

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<fleet.Fleet {', '.join(self._addresses)}>"


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


def _stage_before(error: Any, builder: str, scheduling: Any, definition: Any, build: Any,
                  timeout: float | None) -> Stage | None:
    """The filesystem the failed step started from, solved in the same (still open) build; None ends the build.

    Its ops are the ones that just ran, so the daemon answers from the build's own results.
    """
    root = definition.root_input(error.digest) if error.digest in definition.digests else None
    if root is None:
        build.cancel()
        return None
    before = definition.up_to(*root)
    try:
        ref = build.solve(before, timeout=timeout)
    except buildkit.BuildKitError:
        build.cancel()
        return None
    vertex = next((v for v in definition.vertices() if v.digest == error.digest), None)
    process = dict(vertex.attrs) if vertex is not None and vertex.kind == "exec" else None
    return Stage(builder, scheduling, before, build, ref,
                 note=f"showing the filesystem before the failed step {error.step!r}", process=process, failure=error)


def parse_export(spec: str):
    """``image=NAME`` | ``dir=PATH`` | ``tar=FILE`` → the buildkit export object."""
    kind, sep, value = spec.partition("=")
    if not sep or kind not in _EXPORT_KINDS or not value:
        raise FleetError(f"export {spec!r}: expected image=NAME, dir=PATH or tar=FILE")
    if kind == "image":
        return buildkit.Image(value)
    if kind == "dir":
        return buildkit.LocalDir(value)
    return buildkit.Tarball(value)
