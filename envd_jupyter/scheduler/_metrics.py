"""Scheduler metrics: latency histograms, attempts by status, cache-index size and hit ratio.

No client library: a histogram is fixed buckets and a sum, exported as a plain dict or as
Prometheus text exposition so any scraper (or a notebook) can read it.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cache_index import CacheIndex

#: Power-of-two buckets in nanoseconds: bucket k counts samples with ns.bit_length() == k, i.e.
#: values below 2**k ns. Picking a bucket is one C call, so a batch is binned by ``Counter``.
_FIRST_BIT, _LAST_BIT = 10, 31  # ≤ 1.02 µs ... ≤ 2.1 s
_BATCH = 256  # decisions buffered before their latencies are binned


class Histogram:
    """Latency histogram over nanosecond samples, exported in seconds."""

    __slots__ = ("counts", "sum_ns", "count")

    def __init__(self) -> None:
        self.counts = [0] * (_LAST_BIT + 2)
        self.sum_ns = 0
        self.count = 0

    def observe_many_ns(self, samples: list[int]) -> None:
        """Count each sample (nanoseconds) in its bucket, binned in one pass."""
        counts = self.counts
        for bit, n in Counter(map(int.bit_length, samples)).items():
            counts[bit if bit <= _LAST_BIT else _LAST_BIT + 1] += n
        self.sum_ns += sum(samples)
        self.count += len(samples)

    def merge(self, other: "Histogram") -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.sum_ns += other.sum_ns
        self.count += other.count

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound in seconds as text, cumulative count), ending with +Inf."""
        below = sum(self.counts[: _FIRST_BIT + 1])
        out = [(repr((1 << _FIRST_BIT) * 1e-9), below)]
        for bit in range(_FIRST_BIT + 1, _LAST_BIT + 1):
            below += self.counts[bit]
            out.append((repr((1 << bit) * 1e-9), below))
        out.append(("+Inf", self.count))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "sum": self.sum_ns * 1e-9, "buckets": dict(self.cumulative())}


class SchedulerMetrics:
    """Collected by ``Scheduler`` on every decision; read with ``to_dict`` or ``to_prometheus``."""

    def __init__(self, cache_index: "CacheIndex | None" = None) -> None:
        self.cache_index = cache_index
        self._e2e = Histogram()
        self._by_plugin: dict[Any, Histogram] = {}
        self.attempts: dict[str, int] = {}
        self.shadow_agreement: dict[tuple[str, bool], int] = {}
        self._pending: list[list[tuple[Any, int]]] = []
        self._pending_e2e: list[int] = []

    def add_decision(self, status: str, ns: int, timings: list[tuple[Any, int]]) -> None:
        """Count one ``schedule`` call; latencies are folded into histograms in batches."""
        self.attempts[status] = self.attempts.get(status, 0) + 1
        self._pending_e2e.append(ns)
        pending = self._pending
        pending.append(timings)
        if len(pending) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        """Fold buffered plugin timings into their histograms (readers call this first)."""
        pending, self._pending = self._pending, []
        e2e, self._pending_e2e = self._pending_e2e, []
        self._e2e.observe_many_ns(e2e)
        samples: dict[Any, list[int]] = {}
        for timings in pending:
            for plugin, ns in timings:
                batch = samples.get(plugin)
                if batch is None:
                    samples[plugin] = [ns]
                else:
                    batch.append(ns)
        by_plugin = self._by_plugin
        for plugin, batch in samples.items():
            histogram = by_plugin.get(plugin)
            if histogram is None:
                histogram = by_plugin[plugin] = Histogram()
            histogram.observe_many_ns(batch)

    @property
    def e2e(self) -> Histogram:
        """End-to-end ``schedule`` latency histogram."""
        self.flush()
        return self._e2e

    @property
    def plugin(self) -> dict[tuple[str, str, str], Histogram]:
        """(extension point, plugin type, plugin name) → latency histogram."""
        self.flush()
        merged: dict[tuple[str, str, str], Histogram] = {}
        for plugin, histogram in self._by_plugin.items():
            key = (plugin.extension_point, plugin.type_name, plugin.name)
            merged.setdefault(key, Histogram()).merge(histogram)
        return merged

    def count_shadow(self, profile: str, agrees: bool) -> None:
        key = (profile, agrees)
        self.shadow_agreement[key] = self.shadow_agreement.get(key, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "schedule_latency_seconds": self.e2e.to_dict(),
            "plugin_latency_seconds": {f"{ext}/{t}/{n}": h.to_dict() for (ext, t, n), h in sorted(self.plugin.items())},
            "attempts": dict(sorted(self.attempts.items())),
            "shadow_agreement": {f"{p}/{'agree' if a else 'disagree'}": n for (p, a), n in sorted(self.shadow_agreement.items())},
            "cache_index": self.cache_index.stats() if self.cache_index is not None else {},
        }

    def to_prometheus(self, prefix: str = "envd_scheduler") -> str:
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
        for le, count in histogram.cumulative():
            lines.append(f"{name}_bucket{_labels(labels, {'le': le})} {count}")
        lines.append(f"{name}_sum{_labels(labels)} {histogram.sum_ns * 1e-9:.9g}")
        lines.append(f"{name}_count{_labels(labels)} {histogram.count}")
