"""Endpoint state as a daemon last reported it, and the snapshot every cycle of one decision reads.

Endpoints are immutable: a new report is a new ``Endpoint`` with a higher ``version``. A snapshot
therefore costs one tuple plus an overlay of in-flight reservations made since the last report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One BuildKit daemon as the scheduler sees it (all fields optional but ``name``).

    ``cpu_load`` is load normalised by core count (1.0 = every core busy); ``recent_*`` count
    solves in the daemon's recent window (failures are a subset of solves); ``reported_at`` is
    on the scheduler's clock (``time.monotonic`` unless the scheduler was given another);
    ``caps`` are the LLB capabilities the daemon advertises (``None``: not reported).
    """

    name: str
    address: str = ""
    platforms: tuple[str, ...] = ("linux/amd64",)
    labels: Mapping[str, str] = field(default_factory=dict)
    healthy: bool = True
    in_flight: int = 0
    max_in_flight: int = 0
    disk_free_bytes: int = 0
    disk_total_bytes: int = 0
    cpu_load: float = 0.0
    recent_solves: int = 0
    recent_failures: int = 0
    cached_digests: frozenset[str] = frozenset()
    caps: frozenset[str] | None = None
    registry_rtt_ms: Mapping[str, float] = field(default_factory=dict)
    version: int = 0
    reported_at: float | None = None

    def __post_init__(self) -> None:
        """Reject impossible reports once, here, so scorers can rely on sane ranges per decision."""
        problem = None
        if self.in_flight < 0 or self.max_in_flight < 0:
            problem = f"in_flight={self.in_flight}, max_in_flight={self.max_in_flight} must be >= 0"
        elif self.disk_free_bytes < 0 or self.disk_total_bytes < 0:
            problem = f"disk_free_bytes={self.disk_free_bytes}, disk_total_bytes={self.disk_total_bytes} must be >= 0"
        elif self.disk_total_bytes and self.disk_free_bytes > self.disk_total_bytes:
            problem = f"disk_free_bytes={self.disk_free_bytes} exceeds disk_total_bytes={self.disk_total_bytes}"
        elif not self.cpu_load >= 0.0 or self.cpu_load == float("inf"):
            problem = f"cpu_load={self.cpu_load} must be a finite number >= 0"
        elif not 0 <= self.recent_failures <= self.recent_solves:
            problem = f"recent_failures={self.recent_failures} must be within 0..recent_solves={self.recent_solves}"
        elif any(not 0.0 <= rtt < float("inf") for rtt in self.registry_rtt_ms.values()):
            problem = f"registry_rtt_ms={dict(self.registry_rtt_ms)} must hold finite numbers >= 0"
        if problem:
            raise ValueError(f"endpoint {self.name!r}: {problem}")


class Reservations:
    """Solves placed on an endpoint that its next report does not show yet.

    A reservation lives until ``release`` or until the endpoint reports a version newer than
    the one the reservation was made against (that report already counts the solve).
    """

    __slots__ = ("_by_name",)

    def __init__(self) -> None:
        self._by_name: dict[str, list[int]] = {}

    def add(self, endpoint: Endpoint) -> None:
        self._by_name.setdefault(endpoint.name, []).append(endpoint.version)

    def release(self, name: str) -> None:
        versions = self._by_name.get(name)
        if versions:
            versions.pop(0)
            if not versions:
                del self._by_name[name]

    def overlay(self, endpoints: Sequence[Endpoint]) -> dict[str, int]:
        """Extra in-flight per endpoint name, dropping reservations that a newer report covers."""
        if not self._by_name:
            return {}
        extra: dict[str, int] = {}
        by_name = self._by_name
        for endpoint in endpoints:
            versions = by_name.get(endpoint.name)
            if versions is None:
                continue
            live = [v for v in versions if v >= endpoint.version]
            if len(live) != len(versions):
                if live:
                    by_name[endpoint.name] = live
                else:
                    del by_name[endpoint.name]
            if live:
                extra[endpoint.name] = len(live)
        return extra


class Snapshot:
    """Every endpoint's state, frozen once per ``schedule`` call and shared by all its cycles.

    Version and age are derived on demand so taking a snapshot stays O(1) in the hot path.
    """

    __slots__ = ("endpoints", "taken_at", "_extra")

    def __init__(self, endpoints: Sequence[Endpoint], extra_in_flight: Mapping[str, int] | None = None, now: float | None = None) -> None:
        self.endpoints = tuple(endpoints)
        self._extra = extra_in_flight or {}
        self.taken_at = time.monotonic() if now is None else now

    @property
    def version(self) -> int:
        """Newest report version among the endpoints."""
        return max((e.version for e in self.endpoints), default=0)

    @property
    def age_s(self) -> float:
        """How old the oldest report was when the snapshot was taken."""
        reported = [e.reported_at for e in self.endpoints if e.reported_at is not None]
        return max(0.0, self.taken_at - min(reported)) if reported else 0.0

    def in_flight(self, endpoint: Endpoint) -> int:
        """Reported in-flight solves plus reservations made since that report."""
        extra = self._extra
        return endpoint.in_flight + extra.get(endpoint.name, 0) if extra else endpoint.in_flight

    @property
    def reserved(self) -> Mapping[str, int]:
        return self._extra
