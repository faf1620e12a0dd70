"""What each builder reports, refreshed in the background so no decision waits on a dead daemon.

A ``Refresher`` probes every builder in a small thread pool (connect, Info, ListWorkers, caps,
DiskUsage) and keeps the last ``BuilderInfo`` of each. A round waits at most ``timeout``: a builder
whose probe has not answered by then is reported unhealthy, and is not probed again until that probe
ends (a hung daemon holds one thread, never a pile of them). ``Health`` keeps what the fleet saw
itself: recent solve outcomes and latencies, and a down mark with exponential backoff after a failover.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

RECENT = 20  # solve outcomes kept per builder for failures and latency
DISK_USAGE_EVERY = 60.0  # seconds between DiskUsage calls per builder (the other probes run every round)
BACKOFF_FIRST, BACKOFF_MAX = 2.0, 60.0  # seconds a failed-over builder stays down (doubling) before a re-probe


@dataclass(frozen=True)
class BuilderInfo:
    """One builder as last reported: ``error`` says why it is unhealthy; ``updated`` is unix time of the report."""

    name: str
    address: str
    healthy: bool
    version: str = ""
    platforms: tuple[str, ...] = ()
    caps: frozenset[str] = frozenset()
    in_flight: int = 0
    disk_bytes: int = 0  # build cache (DiskUsage: once a minute, 0 until the first background round)
    error: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    failures: int = 0  # failed solves among the last RECENT
    solves: int = 0  # solves among the last RECENT
    latency_ms: float | None = None  # the probe's round trip (ListWorkers)
    updated: float = 0.0
    registry_cache: bool = False  # can export cache to a registry (mode=max); else inline cache only

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "healthy": self.healthy, "version": self.version,
                "platforms": list(self.platforms), "caps": sorted(self.caps), "in_flight": self.in_flight,
                "disk_bytes": self.disk_bytes, "error": self.error, "labels": dict(self.labels),
                "failures": self.failures, "solves": self.solves, "latency_ms": self.latency_ms,
                "updated": self.updated, "registry_cache": self.registry_cache}


def exports_registry_cache(address: str, labels: Mapping[str, str]) -> bool:
    """buildkitd exports registry cache; dockerd only with the containerd image store (its worker says so).

    dockerd's classic-store worker labels itself ``...worker.moby.*`` without a containerd executor;
    20.10's reports no labels at all.
    """
    if not address.startswith("docker"):
        return True
    return labels.get("org.mobyproject.buildkit.worker.executor") == "containerd"


def probe(name: str, address: str, client: Any, disk_bytes: int | None = None) -> BuilderInfo:
    """Ask one connected daemon everything a decision reads (each call bounded by the client's timeout).

    ``disk_bytes``: a recent build-cache size to reuse (DiskUsage walks every cache record: a few hundred
    ms on a busy daemon, too dear for every round).
    """
    started = time.monotonic()
    workers = client.workers()
    latency_ms = (time.monotonic() - started) * 1000
    labels = {key: value for worker in workers for key, value in worker.labels.items()}
    return BuilderInfo(
        name, address, True, version=client.info().version,
        platforms=tuple(dict.fromkeys(p for w in workers for p in w.platforms)),
        caps=client.caps().llb, labels=labels,
        disk_bytes=sum(r.size for r in client.disk_usage()) if disk_bytes is None else disk_bytes,
        latency_ms=round(latency_ms, 1), updated=time.time(), registry_cache=exports_registry_cache(address, labels))


class Health:
    """The fleet's own view of one builder: recent outcomes, and whether it is marked down."""

    def __init__(self) -> None:
        self.outcomes: deque[bool] = deque(maxlen=RECENT)  # True: the solve succeeded (or failed in a step)
        self.down_until = 0.0  # time.monotonic() before which the builder is not used or probed
        self.backoff = 0.0
        self.reason = ""

    def mark_down(self, reason: str) -> float:
        """After a failover: down for the next backoff (2 s, doubling to 60 s); returns it."""
        self.backoff = min(BACKOFF_MAX, self.backoff * 2 or BACKOFF_FIRST)
        self.down_until = time.monotonic() + self.backoff
        self.reason = reason
        self.outcomes.append(False)
        return self.backoff

    def down(self) -> bool:
        return time.monotonic() < self.down_until

    def answered(self) -> None:
        """A probe answered after the backoff: usable again (the backoff restarts at its first step)."""
        self.down_until, self.backoff, self.reason = 0.0, 0.0, ""

    def overlay(self, info: BuilderInfo, in_flight: int) -> BuilderInfo:
        """The report with what the fleet saw itself (down mark, in-flight solves, recent failures)."""
        failures = sum(1 for ok in self.outcomes if not ok)
        info = replace(info, in_flight=in_flight, failures=failures, solves=len(self.outcomes))
        if self.down():
            info = replace(info, healthy=False, error=f"marked down for {self.down_until - time.monotonic():.0f}s "
                                                      f"more after a failover: {self.reason}")
        return info


class Refresher:
    """Keeps the last report of every builder, refreshed every ``interval`` seconds in a daemon thread."""

    def __init__(self, probe_one: Callable[[str, float], BuilderInfo], names: Callable[[], list[str]],
                 on_failed: Callable[[str, str], BuilderInfo], *, interval: float, timeout: float):
        self._probe_one, self._names, self._on_failed = probe_one, names, on_failed
        self.interval, self.timeout = interval, timeout
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="envd-fleet-probe")
        self._pending: dict[str, Future] = {}
        self._reports: dict[str, BuilderInfo] = {}
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reports(self) -> dict[str, BuilderInfo]:
        """The last snapshot; the first call (before the thread has one) refreshes once, bounded by ``timeout``."""
        with self._lock:
            missing = [name for name in self._names() if name not in self._reports]
        if missing:
            self.refresh(missing, disk_age=float("inf"))  # a first decision need not wait for DiskUsage
        self._start()
        with self._lock:
            return {name: self._reports[name] for name in self._names() if name in self._reports}

    def refresh(self, names: list[str] | None = None, *, disk_age: float = DISK_USAGE_EVERY) -> None:
        """Probe ``names`` (default: every builder) at most ``timeout`` seconds; a late probe reports unhealthy.

        DiskUsage is asked again when the last answer is older than ``disk_age`` seconds.
        """
        with self._refreshing:
            names = self._names() if names is None else names
            futures = {}
            for name in names:
                pending = self._pending.get(name)
                if pending is None or pending.done():
                    pending = self._pending[name] = self._pool.submit(self._probe_one, name, disk_age)
                futures[name] = pending
            wait(futures.values(), timeout=self.timeout)
            for name, future in futures.items():
                if future.cancelled():  # close() ended the pool under this round
                    continue
                if future.done():
                    report = future.result()
                else:
                    report = self._on_failed(name, f"no answer within {self.timeout:g}s")
                with self._lock:
                    if name in self._names():
                        self._reports[name] = report

    def replace(self, name: str, report: BuilderInfo) -> None:
        """What the fleet saw itself (a builder failed mid-solve) stands until the next probe answers."""
        with self._lock:
            if name in self._reports:
                self._reports[name] = report

    def forget(self, name: str) -> None:
        with self._lock:
            self._reports.pop(name, None)
            self._pending.pop(name, None)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="envd-fleet-refresher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        wait_for = 0.0  # the first round at once: it fills in the disk usage the first reports skipped
        while not self._stop.wait(wait_for):
            wait_for = self.interval
            try:
                self.refresh()
            except RuntimeError:  # the pool was shut down by close() between the wait and the submit
                return

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
