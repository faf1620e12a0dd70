"""``Scheduler.schedule(request, endpoints)``: the one public entry point.

Takes one snapshot, lets the profile handler choose profiles round by round, runs one cycle
per profile on that same snapshot, asks the handler which result routes, then reserves the
picked endpoints so a burst scheduled against one stale report spreads out.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .._cache_index import CacheIndex
from .._metrics import SchedulerMetrics
from .cycle import Cycle
from .endpoint import Endpoint, Reservations, Snapshot
from .interfaces import PluginHandle
from .result import NoEndpointsError, ProfileRunResult, SchedulingError, SchedulingResult

if TYPE_CHECKING:
    from .._config import Plan, SchedulerConfig
    from .record import CycleRecord
    from .request import BuildRequest

MAX_ROUNDS = 8


class Scheduler:
    """Places build requests on endpoints according to a (reloadable) ``EndpointPickerConfig``.

    ``seed`` (or an injected ``rng``) makes tie-breaking and random pickers reproducible.
    Safe to call from several threads: reservations and the cache index are updated under a
    lock (the order in which threads draw from the RNG is then up to the threads).
    """

    def __init__(
        self,
        config: "SchedulerConfig | str | Mapping[str, Any] | None" = None,
        *,
        seed: int | None = 0,
        rng: random.Random | None = None,
        cache_index: CacheIndex | None = None,
        clock=time.monotonic,
    ) -> None:
        from .._config import build_plan, parse_config, SchedulerConfig

        self.cache_index = cache_index if cache_index is not None else CacheIndex()
        self.metrics = SchedulerMetrics(self.cache_index)
        self.rng = rng if rng is not None else random.Random(seed)
        self._handle = PluginHandle(self.cache_index)
        self._clock = clock
        self._reservations = Reservations()
        self._lock = threading.Lock()
        parsed = config if isinstance(config, SchedulerConfig) else parse_config(config)
        self._plan: Plan = build_plan(parsed, self._handle)
        self.last_reload_error: str | None = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> "Scheduler":
        return cls(Path(path).read_text(), **kwargs)

    @property
    def config(self) -> "SchedulerConfig":
        return self._plan.config

    def effective_config(self) -> str:
        """The running config with every default filled in, as YAML."""
        return self._plan.config.to_yaml()

    def reload(self, source: "SchedulerConfig | str | Path | Mapping[str, Any]") -> None:
        """Swap in a new config atomically; on any error keep the running one and re-raise."""
        from .._config import ConfigError, build_plan, parse_config, SchedulerConfig

        try:
            text = source.read_text() if isinstance(source, Path) else source
            parsed = text if isinstance(text, SchedulerConfig) else parse_config(text)
            plan = build_plan(parsed, self._handle)
        except (ConfigError, OSError) as exc:
            self.last_reload_error = str(exc)
            raise
        self._plan = plan
        self.last_reload_error = None

    def schedule(self, request: "BuildRequest", endpoints: Sequence[Endpoint] | Snapshot) -> SchedulingResult:
        """Choose endpoint(s) for ``request``; raises ``NoEndpointsError``/``SchedulingError``."""
        start = perf_counter_ns()
        plan = self._plan
        timings: list[tuple[Any, int]] = []
        status = "error"
        try:
            if isinstance(endpoints, Snapshot):
                snapshot = endpoints
            else:
                if not isinstance(endpoints, (list, tuple)):
                    endpoints = tuple(endpoints)
                with self._lock:
                    snapshot = Snapshot(endpoints, self._reservations.overlay(endpoints), self._clock())
            result = self._decide(plan, request, snapshot, timings)
            status = "success"
            return result
        except NoEndpointsError:
            status = "no_endpoints"
            raise
        finally:
            self.metrics.add_decision(status, perf_counter_ns() - start, timings)

    def _decide(self, plan: "Plan", request: "BuildRequest", snapshot: Snapshot, timings: list) -> SchedulingResult:
        handler = plan.handler
        results: dict[str, ProfileRunResult | None] = {}
        errors: dict[str, SchedulingError] = {}
        records: list[CycleRecord] = []
        handler_ns = 0
        for _ in range(MAX_ROUNDS):
            t0 = perf_counter_ns()
            names = handler.pick_profiles(request, plan.profiles, results)
            handler_ns += perf_counter_ns() - t0
            if results:
                names = [n for n in names if n not in results]
            if not names:
                break
            for name in names:
                if name not in plan.profiles:
                    raise SchedulingError(f"profile handler '{handler.name}' picked unknown profile '{name}'")
                results[name] = self._run_profile(plan, name, request, snapshot, results, records, errors)
        else:
            raise SchedulingError(f"profile handler '{handler.name}' still picking profiles after {MAX_ROUNDS} rounds")
        for record in records:
            timings += record.timings
        if not results:
            raise SchedulingError(f"profile handler '{handler.name}' ran no profile")

        t0 = perf_counter_ns()
        decision = handler.process_results(request, results)
        timings.append((handler, handler_ns + perf_counter_ns() - t0))
        primary = results.get(decision.primary)
        if primary is None:
            error = errors.get(decision.primary) or SchedulingError(f"primary profile '{decision.primary}' produced no result")
            error.records = records  # type: ignore[attr-defined]
            raise error

        shadows: dict[str, dict[str, Any]] = {}
        for name in decision.shadows:
            shadow = results.get(name)
            picked = shadow.endpoint.name if shadow is not None else None
            agrees = picked == primary.endpoint.name
            shadows[name] = {"picked": picked, "agrees": agrees, "error": str(errors[name]) if name in errors else None}
            self.metrics.count_shadow(name, agrees)

        with self._lock:
            for name, result in results.items():
                if result is None or name in decision.shadows:
                    continue
                self._reservations.add(result.endpoint)
                for plugin in plan.observers[result.profile]:
                    plugin.on_picked(request, result.endpoint)
        return SchedulingResult(decision.primary, results, records, shadows)

    def _run_profile(self, plan, name, request, snapshot, results, records, errors) -> ProfileRunResult | None:
        """Run one profile's cycle; on an emptied set, record it and try its fallback profile."""
        profile = plan.profiles[name]
        try:
            result = profile.run(Cycle(name, request, snapshot, self.rng, results))
            records.append(result.record)
            return result
        except NoEndpointsError as exc:
            records.append(exc.record)
            errors[name] = exc
            fallback = profile.fallback
        if fallback is None:
            return None
        try:
            result = plan.profiles[fallback].run(Cycle(fallback, request, snapshot, self.rng, results))
        except NoEndpointsError as exc:
            records.append(exc.record)
            return None
        records.append(result.record)
        result.fallback_for = name
        return result

    def release(self, result: SchedulingResult | Endpoint | str) -> None:
        """A solve placed earlier has started showing in reports (or ended): drop its reservation."""
        with self._lock:
            if isinstance(result, SchedulingResult):
                for name, run in result.profile_results.items():
                    if run is not None and name not in result.shadows:
                        self._reservations.release(run.endpoint.name)
            else:
                self._reservations.release(result if isinstance(result, str) else result.name)

    def record_solved(self, endpoint: Endpoint | str, request: "BuildRequest") -> None:
        """Teach the cache index that ``endpoint`` finished ``request`` (when routing elsewhere)."""
        self.cache_index.record(endpoint if isinstance(endpoint, str) else endpoint.name, request.chain_keys)

