"""Scheduler metrics: latency histograms, attempts by status, cache-index size and hit ratio.

No client library: a histogram is fixed buckets and a sum, exported as a plain dict or as
Prometheus text exposition so any scraper (or a notebook) can read it.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cache_index import CacheIndex

#: Bucket upper bounds in seconds: 1 µs .. 1 s, roughly ×2.5 apart.
LATENCY_BUCKETS = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 0.1, 1.0)


class Histogram:
    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def to_dict(self) -> dict[str, Any]:
        cumulative, running = {}, 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts):
            running += n
            cumulative["+Inf" if bound == float("inf") else repr(bound)] = running
        return {"count": self.count, "sum": self.sum, "buckets": cumulative}


class SchedulerMetrics:
    """Collected by ``Scheduler`` on every decision; read with ``to_dict`` or ``to_prometheus``."""

    def __init__(self, cache_index: "CacheIndex | None" = None) -> None:
        self.cache_index = cache_index
        self.e2e = Histogram()
        self.plugin: dict[tuple[str, str, str], Histogram] = {}
        self.attempts: dict[str, int] = {}
        self.shadow_agreement: dict[tuple[str, bool], int] = {}
        self._pending: list[list[tuple[Any, int]]] = []

    def add_decision(self, status: str, seconds: float, timings: list[tuple[Any, int]]) -> None:
        """Count one ``schedule`` call; per-plugin timings are folded into histograms in batches."""
        self.attempts[status] = self.attempts.get(status, 0) + 1
        self.e2e.observe(seconds)
        pending = self._pending
        pending.append(timings)
        if len(pending) >= 64:
            self.flush()

    def flush(self) -> None:
        """Fold buffered plugin timings into their histograms (readers call this first)."""
        pending, self._pending = self._pending, []
        plugin = self.plugin
        for timings in pending:
            for p, ns in timings:
                key = (p.extension_point, p.type_name, p.name)
                histogram = plugin.get(key)
                if histogram is None:
                    histogram = plugin[key] = Histogram()
                histogram.observe(ns * 1e-9)

    def observe_plugin(self, extension_point: str, type_name: str, name: str, seconds: float) -> None:
        key = (extension_point, type_name, name)
        histogram = self.plugin.get(key)
        if histogram is None:
            histogram = self.plugin[key] = Histogram()
        histogram.observe(seconds)

    def count_attempt(self, status: str) -> None:
        self.attempts[status] = self.attempts.get(status, 0) + 1

    def count_shadow(self, profile: str, agrees: bool) -> None:
        key = (profile, agrees)
        self.shadow_agreement[key] = self.shadow_agreement.get(key, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        self.flush()
        return {
            "schedule_latency_seconds": self.e2e.to_dict(),
            "plugin_latency_seconds": {f"{ext}/{t}/{n}": h.to_dict() for (ext, t, n), h in sorted(self.plugin.items())},
            "attempts": dict(sorted(self.attempts.items())),
            "shadow_agreement": {f"{p}/{'agree' if a else 'disagree'}": n for (p, a), n in sorted(self.shadow_agreement.items())},
            "cache_index": self.cache_index.stats() if self.cache_index is not None else {},
        }

    def to_prometheus(self, prefix: str = "envd_scheduler") -> str:
        self.flush()
        lines: list[str] = []
        _histogram(lines, f"{prefix}_schedule_duration_seconds", "End-to-end schedule() latency.", [({}, self.e2e)])
        _histogram(
            lines, f"{prefix}_plugin_duration_seconds", "Latency of one plugin call.",
            [({"extension_point": e, "plugin_type": t, "plugin_name": n}, h) for (e, t, n), h in sorted(self.plugin.items())],
        )
        lines += [f"# HELP {prefix}_attempts_total Scheduling attempts by status.", f"# TYPE {prefix}_attempts_total counter"]
        lines += [f'{prefix}_attempts_total{{status="{s}"}} {n}' for s, n in sorted(self.attempts.items())]
        lines += [f"# HELP {prefix}_shadow_decisions_total Shadow profile picks by agreement with the primary.",
                  f"# TYPE {prefix}_shadow_decisions_total counter"]
        lines += [
            f'{prefix}_shadow_decisions_total{{profile="{p}",agrees="{str(a).lower()}"}} {n}'
            for (p, a), n in sorted(self.shadow_agreement.items())
        ]
        if self.cache_index is not None:
            stats = self.cache_index.stats()
            lines += [f"# HELP {prefix}_cache_index_entries Endpoint×chain entries in the cache index.",
                      f"# TYPE {prefix}_cache_index_entries gauge", f"{prefix}_cache_index_entries {stats['entries']}",
                      f"# HELP {prefix}_cache_index_hit_ratio Share of routed work already cached at the pick.",
                      f"# TYPE {prefix}_cache_index_hit_ratio gauge", f"{prefix}_cache_index_hit_ratio {stats['hit_ratio']:.6g}"]
        return "\n".join(lines) + "\n"


def _labels(labels: dict[str, str], extra: dict[str, str] | None = None) -> str:
    merged = {**labels, **(extra or {})}
    return "{" + ",".join(f'{k}="{v}"' for k, v in merged.items()) + "}" if merged else ""


def _histogram(lines: list[str], name: str, help_text: str, series: list[tuple[dict[str, str], Histogram]]) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for labels, histogram in series:
        running = 0
        for bound, n in zip((*histogram.bounds, float("inf")), histogram.counts):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f"{name}_bucket{_labels(labels, {'le': le})} {running}")
        lines.append(f"{name}_sum{_labels(labels)} {histogram.sum:.9g}")
        lines.append(f"{name}_count{_labels(labels)} {histogram.count}")
