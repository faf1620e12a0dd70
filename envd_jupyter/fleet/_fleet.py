"""``Fleet``: several BuildKit daemons behind the scheduler; each build goes where it is scheduled.

Decisions read the refresher's last snapshot (``_reports``), never a live call, so a dead daemon
costs at most the refresh timeout. A build is scheduled on the graph form the least capable daemon
accepts (``minimum_caps``), then marshalled for the pick's own caps, and fails over to the next
choice when the pick dies (``_routing``). After each solve the cache-affinity index learns what the
daemon reported as run or cached there, and a shared registry cache (``_cache``) what was exported.
"""

from __future__ import annotations

import inspect
import socket
import threading
import time
import uuid
from collections import Counter, OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from envd_jupyter import buildkit
from envd_jupyter.fleet._cache import SharedCache
from envd_jupyter.fleet._config import read_fleet_file
from envd_jupyter.fleet._entries import builder_entry
from envd_jupyter.fleet._errors import FleetError
from envd_jupyter.fleet._profiles import DEFAULT_CONFIG
from envd_jupyter.fleet._project import project_builders, project_env
from envd_jupyter.fleet._reports import BuilderInfo, Health, Refresher, probe
from envd_jupyter.scheduler import BuildRequest, Endpoint, Scheduler, SchedulingResult

CACHED_DIGESTS = 20000  # digests remembered per builder for the precise affinity mode


def definition_for(target: Any, caps: frozenset[str] | None, local_unique_id: str | None = None):
    """Marshal ``target`` for ``caps`` when it can choose its graph form (lang states), else as it is.

    ``local_unique_id``: for local sources that name none, so the request the scheduler weighs and
    the graph the daemon reports on have the same digests (a bare ``llb.local`` draws a new id per marshal).
    """
    marshal = getattr(target, "marshal", None)
    if marshal is None:
        return target
    params = inspect.signature(marshal).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    options: dict[str, Any] = {}
    if "caps" in params:
        options["caps"] = caps
    if local_unique_id and ("local_unique_id" in params or takes_any):
        options["local_unique_id"] = local_unique_id
    return marshal(**options)


def lowered(definition: Any, caps: frozenset[str]):
    """The graph exactly as the daemon will receive it, so progress digests match what is shown."""
    lower_for = getattr(definition, "lower_for", None)
    return lower_for(caps) if lower_for is not None else definition


class Fleet:
    """Builders by name, one scheduler, one client per builder (connected when first needed).

    ``builders``: name → address, or → ``{"address": ..., "tls": {ca, cert, key, server_name} | False}``.
    ``config``: the scheduler's EndpointPickerConfig (YAML text or a mapping); None is the fleet's
    "build" + "export" profiles (``_profiles``). ``registry_cache``: host:port of a registry every
    builder reaches, for the shared cache (None: no shared cache). Reports are refreshed every
    ``refresh_interval`` s, each round bounded by ``refresh_timeout`` s. A build fails over at most
    ``max_attempts - 1`` times. Thread-safe: a notebook may build in the background while another cell asks.
    """

    def __init__(self, builders: Mapping[str, Any], *, config: Any = None, timeout: float = 10.0, seed: int = 0,
                 registry_cache: str | None = None, refresh_interval: float = 5.0,
                 refresh_timeout: float | None = None, max_attempts: int = 3,
                 on_failover: Callable[[str], None] | None = None,
                 tls: Mapping[str, buildkit.TLSConfig | None] | None = None):
        if not builders:
            raise FleetError("a fleet needs at least one builder address")
        entries = {str(name): builder_entry(value, where=f"builders.{name}") for name, value in builders.items()}
        self._addresses = {name: address for name, (address, _) in entries.items()}
        self._tls = {name: setting for name, (_, setting) in entries.items() if setting is not None}
        self._tls.update({name: setting for name, setting in (tls or {}).items() if setting is not None})
        self.skipped: dict[str, str] = {}  # builders a source found but could not address, and why
        self._timeout = timeout
        self.scheduler = Scheduler(DEFAULT_CONFIG if config is None else config, seed=seed)
        self.max_attempts, self.on_failover = max_attempts, on_failover
        self._clients: dict[str, buildkit.Client] = {}
        self._retired: list[buildkit.Client] = []  # replaced while a solve still used them; closed with the fleet
        self._health = {name: Health() for name in self._addresses}
        self._cached: dict[str, OrderedDict[str, None]] = {}
        self._durations: OrderedDict[str, float] = OrderedDict()  # digest -> seconds its last real run took
        self._disk: dict[str, tuple[int, float]] = {}  # build-cache bytes and when DiskUsage said so
        self._registry_rtt: tuple[dict[str, float], float] = ({}, float("-inf"))  # and when it was measured
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.shared_cache = SharedCache(registry_cache, self.scheduler.cache_index) if registry_cache else None
        self.refresher = Refresher(self._probe, lambda: list(self._addresses), self._unhealthy,
                                   interval=refresh_interval, timeout=refresh_timeout or min(timeout, 5.0))
        self.last_scheduling: SchedulingResult | None = None
        self.last_scheduling_at = 0.0  # time.monotonic() of that decision
        # Unnamed local sources get this id (stable for the fleet's life): a rebuild of the same State is
        # the same graph, to the scheduler and to the daemon's incremental context transfer.
        self.local_unique_id = f"envd-fleet-{uuid.uuid4().hex[:16]}"

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
        """A YAML file: ``builders: {name: address | {address, tls}}``, optional ``scheduler:`` config and ``registry_cache:``."""
        builders, settings = read_fleet_file(path)
        try:
            return cls(builders, **settings, **options)
        except ValueError as exc:  # the scheduler's ConfigError names the path inside the config
            raise FleetError(f"{path}: scheduler: {exc}") from None

    @classmethod
    def from_project(cls, which: str = "fleet", state_dir: str | Path | None = None, **options: Any) -> "Fleet":
        """The project's daemons (``which``: "fleet" = fleet1..3 of scripts/fleet-up, or "flavours" =
        current/classic/old of scripts/buildkit-up), sharing cache through the project's loopback registry."""
        options.setdefault("registry_cache", project_env(state_dir).get("ENVD_REGISTRY"))
        return cls(project_builders(state_dir, which=which), **options)

    @classmethod
    def from_buildx(cls, environ: Mapping[str, str] | None = None, **options: Any) -> "Fleet":
        """The user's buildx builders (``~/.docker/buildx/instances``); ``skipped`` says which could not be used."""
        from envd_jupyter.fleet._sources import buildx_builders

        return cls._from_sources(buildx_builders(environ), "buildx builders", **options)

    @classmethod
    def from_docker_contexts(cls, environ: Mapping[str, str] | None = None, **options: Any) -> "Fleet":
        """The user's docker contexts (and the default one), each context's dockerd as a builder."""
        from envd_jupyter.fleet._sources import docker_contexts

        return cls._from_sources(docker_contexts(environ), "docker contexts", **options)

    @classmethod
    def _from_sources(cls, found: Any, what: str, **options: Any) -> "Fleet":
        if not found:
            reasons = "; ".join(f"{name}: {why}" for name, why in found.skipped.items())
            raise FleetError(f"no usable {what}" + (f" (skipped {reasons})" if reasons else ""))
        fleet = cls({name: source.address for name, source in found.items()},
                    tls={name: source.tls for name, source in found.items()}, **options)
        fleet.skipped = dict(found.skipped)
        return fleet

    # -- builders -----------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self._addresses)

    def address(self, name: str) -> str:
        return self._addresses[name]

    def add(self, name: str, address: str, *, tls: buildkit.TLSConfig | None = None) -> None:
        """A builder joins at runtime; it is probed (bounded) before the next decision."""
        with self._lock:
            if name in self._addresses:
                raise FleetError(f"builder {name!r} is already in the fleet ({self._addresses[name]})")
            self._addresses[name] = address
            if tls is not None:
                self._tls[name] = tls
            self._health[name] = Health()

    def remove(self, name: str) -> None:
        """A builder leaves: no new work goes there; solves running on it finish."""
        with self._lock:
            if name not in self._addresses:
                raise FleetError(f"no builder {name!r} in the fleet (builders: {', '.join(self._addresses)})")
            if len(self._addresses) == 1:
                raise FleetError(f"{name!r} is the fleet's last builder")
            del self._addresses[name]
            self._tls.pop(name, None)
            self._cached.pop(name, None)
            self._disk.pop(name, None)
        self._retire_client(name)
        self.refresher.forget(name)
        self.scheduler.cache_index.forget(name)

    def tls(self, name: str) -> buildkit.TLSConfig | bool | None:
        """Builder ``name``'s TLS: a TLSConfig, False (plain text allowed), None (the address's defaults)."""
        return self._tls.get(name)

    def client(self, name: str) -> buildkit.Client:
        """The connected client of builder ``name`` (ConnectError when its daemon does not answer)."""
        with self._lock:
            client = self._clients.get(name)
            address = self._addresses[name]
        if client is None:
            client = buildkit.connect(address, timeout=self._timeout, tls=self._tls.get(name))
            with self._lock:
                client = self._clients.setdefault(name, client)
        return client

    def _retire_client(self, name: str) -> None:
        """Forget a client whose daemon failed; the next use connects afresh (closed now if nothing uses it)."""
        with self._lock:
            client = self._clients.pop(name, None)
            busy = self._in_flight[name] > 0
            if client is not None and busy:
                self._retired.append(client)
        if client is not None and not busy:
            client.close()

    def _probe(self, name: str, disk_age: float) -> BuilderInfo:
        health, address = self._health.get(name), self._addresses.get(name, "")
        if health is None or health.down():
            return self._unhealthy(name, "marked down")
        self._measure_registry()
        last_disk = self._disk.get(name)
        if last_disk is not None and time.monotonic() - last_disk[1] < disk_age:
            reuse = last_disk[0]
        else:  # disk_age inf: a first report, which the background round completes at once
            reuse = 0 if disk_age == float("inf") else None
        try:
            info = probe(name, address, self.client(name), reuse)
        except buildkit.BuildKitError as exc:
            self._retire_client(name)
            return self._unhealthy(name, str(exc).splitlines()[0])
        if reuse is None:
            self._disk[name] = (info.disk_bytes, time.monotonic())
        health.answered()
        return info

    def _unhealthy(self, name: str, reason: str) -> BuilderInfo:
        return BuilderInfo(name, self._addresses.get(name, ""), False, error=reason, updated=time.time())

    def builders(self, *, refresh: bool = False) -> list[BuilderInfo]:
        """Each builder as last reported (version, platforms, caps, labels, disk, failures, latency, or its error).

        ``refresh``: probe every builder now, DiskUsage included (bounded by the refresh timeout), as a
        person asking wants current numbers; decisions read the snapshot.
        """
        if refresh:
            self.refresher.refresh(disk_age=0.0)
        reports = self.refresher.reports()
        with self._lock:
            return [self._health[name].overlay(reports[name], self._in_flight[name])
                    for name in self._addresses if name in reports]

    def endpoints(self) -> list[Endpoint]:
        """The scheduler's view: the last reports, in-flight solves counted here, down marks, known cache.

        Every report has version 0: the in-flight count is the fleet's own and live, so a pick's
        reservation must last until its solve is counted (``running``) or fails, never drop because a
        newer report came in (a burst of decisions would all see the same idle builder).
        """
        infos = self.builders()
        rtt = self._registry_rtt[0]
        with self._lock:
            cached = {name: frozenset(digests) for name, digests in self._cached.items()}
        now, wall = time.monotonic(), time.time()
        return [Endpoint(
            info.name, address=info.address, platforms=info.platforms or ("linux/amd64",), labels=info.labels,
            healthy=info.healthy, in_flight=info.in_flight, recent_solves=info.solves,
            recent_failures=info.failures, caps=info.caps if info.healthy else None,
            cached_digests=cached.get(info.name, frozenset()), registry_rtt_ms=rtt if info.healthy else {},
            reported_at=now - max(0.0, wall - info.updated)) for info in infos]

    def _measure_registry(self) -> None:
        """TCP connect time to the shared registry, from here (exact for local daemons, an estimate elsewhere).

        Measured in the refresher's threads at most once a round, so no decision waits on the registry.
        """
        if self.shared_cache is None or time.monotonic() - self._registry_rtt[1] < self.refresher.interval:
            return
        host, _, port = self.shared_cache.registry.rpartition(":")
        started = time.monotonic()
        try:
            socket.create_connection((host, int(port)), timeout=1.0).close()
            rtt = {self.shared_cache.registry: round((time.monotonic() - started) * 1000, 3)}
        except (OSError, ValueError):
            rtt = {}
        self._registry_rtt = (rtt, time.monotonic())

    def mark_down(self, name: str, reason: str) -> float:
        """A failover: no work goes to ``name`` for the backoff (seconds, returned), then it is probed again.

        Its report turns unhealthy too, so it stays out after the backoff until a probe answers (the
        last report may be from before it died).
        """
        with self._lock:
            health = self._health.get(name)
        backoff = health.mark_down(reason) if health is not None else 0.0
        self.refresher.replace(name, self._unhealthy(name, reason))
        self._retire_client(name)
        return backoff

    # -- scheduling ---------------------------------------------------------------------------
    def request(self, target: Any, attributes: Mapping[str, str] | None = None) -> BuildRequest:
        """The scheduler's view of ``target`` in the graph form the least capable daemon accepts.

        ``attributes``: free request attributes for the plugins that read them (``attribute-profile-handler``,
        ``registry-proximity-scorer``'s ``registry``, a sticky key).
        """
        # One dict lookup per vertex as the request is built (a single get is atomic; learn writes under the lock).
        request = BuildRequest.from_definition(self.definition(target, frozenset()), durations=self._durations)
        request.attributes.update(attributes or {})
        if self.shared_cache is not None:
            request.attributes.setdefault("registry", self.shared_cache.registry)
        return request

    def definition(self, target: Any, caps: frozenset[str] | None) -> Any:
        """``target`` marshalled for ``caps``, its unnamed local sources under this fleet's one id."""
        return definition_for(target, caps, self.local_unique_id)

    def schedule(self, target: Any) -> SchedulingResult:
        """Choose a builder for ``target`` (State or Definition); the result keeps every cycle's scores."""
        return self.schedule_request(self.request(target))

    def schedule_request(self, request: BuildRequest, *, exclude: Sequence[str] = ()) -> SchedulingResult:
        endpoints = [e if e.name not in exclude else Endpoint(e.name, address=e.address, healthy=False)
                     for e in self.endpoints()]
        result = self.scheduler.schedule(request, endpoints)
        self.last_scheduling, self.last_scheduling_at = result, time.monotonic()
        return result

    @contextmanager
    def running(self, builder: str, reservation: Any = None):
        """Count a solve in flight on ``builder`` (its reservation ends: the count now says it)."""
        with self._lock:
            self._in_flight[builder] += 1
        if reservation is not None:
            reservation.release()
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[builder] -= 1

    def learn(self, builder: str, request: BuildRequest, model: Any) -> list[int]:
        """What the daemon reported as run or cached is now known to be there; returns those chain keys.

        The steps that ran leave their durations: the next request weighs each step by what it cost
        (a cached step's report says nothing about its cost, so it keeps the last real run's).
        """
        vertices = [v for v in list(model.vertices.values()) if v.completed is not None and not v.error]
        done = {v.digest for v in vertices}
        ran = {v.digest: v.duration for v in vertices if not v.cached and v.duration}
        keys = [key for vertex, key in zip(request.vertices, request.chain_keys) if vertex.digest in done]
        with self._lock:
            health = self._health.get(builder)
            if health is not None:
                health.outcomes.append(True)
            cached = self._cached.setdefault(builder, OrderedDict())
            for digest in done:
                cached[digest] = None
                cached.move_to_end(digest)
            while len(cached) > CACHED_DIGESTS:
                cached.popitem(last=False)
            for digest, seconds in ran.items():
                self._durations[digest] = seconds
                self._durations.move_to_end(digest)
            while len(self._durations) > CACHED_DIGESTS:
                self._durations.popitem(last=False)
        if keys:
            self.scheduler.cache_index.record(builder, keys)
        return keys

    def solved_on(self, builder: str) -> frozenset[str]:
        """Digests ``builder`` reported running or serving from cache (the most recent CACHED_DIGESTS)."""
        with self._lock:
            return frozenset(self._cached.get(builder, ()))

    # -- building (Stage, stepper, export: _building; routed solves: _routing) ----------------
    def build(self, target: Any, **options: Any):
        """Schedule ``target``, solve it on the pick inside an interactive build, keep that open (``Stage``)."""
        from envd_jupyter.fleet._building import build

        return build(self, target, **options)

    def stepper(self, target: Any, **options: Any):
        from envd_jupyter.fleet._building import stepper

        return stepper(self, target, **options)

    def export(self, target: Any, exports: Sequence[Any] | str, **options: Any):
        from envd_jupyter.fleet._building import export

        return export(self, target, exports, **options)

    def solve(self, target: Any, **options: Any):
        """Route one solve (``Client.solve``'s options, plus ``on_failover``): a ``RoutedResult``."""
        from envd_jupyter.fleet._building import solve

        return solve(self, target, **options)

    def start_solve(self, target: Any, **options: Any):
        """``solve`` in its own thread: a ``RoutedSolve`` handle (``result()``, ``cancel()``, ``builder``)."""
        from envd_jupyter.fleet._building import start_solve

        return start_solve(self, target, **options)

    def interactive(self, target: Any, **options: Any):
        """Schedule ``target`` and open an interactive build on the pick (``Client.interactive``'s options)."""
        from envd_jupyter.fleet._building import interactive

        return interactive(self, target, **options)

    def close(self) -> None:
        self.refresher.close()
        with self._lock:
            clients, self._clients = [*self._clients.values(), *self._retired], {}
            self._retired = []
        for client in clients:
            client.close()

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<fleet.Fleet {', '.join(self._addresses)}>"


def parse_export(spec: str):
    """``image=NAME`` | ``dir=PATH`` | ``tar=FILE`` → the buildkit export object."""
    kind, sep, value = spec.partition("=")
    if not sep or kind not in ("image", "dir", "tar") or not value:
        raise FleetError(f"export {spec!r}: expected image=NAME, dir=PATH or tar=FILE")
    if kind == "image":
        return buildkit.Image(value)
    if kind == "dir":
        return buildkit.LocalDir(value)
    return buildkit.Tarball(value)
