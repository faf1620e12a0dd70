"""One scheduling cycle: a profile's filters, then its weighted scorers, then its one picker.

total(e) = Σ wᵢ · clamp(sᵢ(e), 0, 1). Clamping is checked per scorer with C-level min/max/sum
and only done element-wise when a scorer strayed (NaN counts as 0); scorers whose formula
cannot leave [0, 1] declare ``bounded = True`` and skip the check (property tests hold them to
it). The weighted sum is one list comprehension per (up to) six scorers, a closure over the
profile's weights, which keeps the per-endpoint cost to one pass at hundreds of endpoints; no
code is generated (the scheduler has no ``eval``/``exec``). Scorers that read only the
reports (``per_report = True``) are recomputed when a report or a reservation changed, not on
every decision.
"""

from __future__ import annotations

import math
import random
from time import perf_counter_ns
from typing import TYPE_CHECKING, Any, Mapping

from .record import CycleRecord, ScorerStep
from .result import NoEndpointsError, ProfileRunResult

if TYPE_CHECKING:
    from .endpoint import Snapshot
    from .interfaces import Filter, Picker, Scorer
    from .request import BuildRequest


class Cycle:
    """What plugins see during one cycle: the request, the snapshot, a seeded RNG, scratch state,
    and the results of profiles that ran earlier in this decision (for multi-cycle handlers)."""

    __slots__ = ("profile", "request", "snapshot", "rng", "state", "results")

    def __init__(self, profile: str, request: "BuildRequest", snapshot: "Snapshot", rng: random.Random, results: Mapping[str, Any]) -> None:
        self.profile = profile
        self.request = request
        self.snapshot = snapshot
        self.rng = rng
        self.state: dict[str, Any] = {}
        self.results = results


def clamp_scores(raw: list[float]) -> list[float]:
    """Clamp into [0, 1]; NaN becomes 0."""
    return [0.0 if s != s else (0.0 if s < 0.0 else (1.0 if s > 1.0 else float(s))) for s in raw]


def _needs_clamp(raw: list[float]) -> bool:
    if not raw:
        return False
    total = sum(raw)  # NaN anywhere makes the sum NaN
    return total != total or min(raw) < 0.0 or max(raw) > 1.0


class Profile:
    """A named, ordered set of plugins; runs one cycle per call."""

    __slots__ = ("name", "filters", "scorers", "picker", "fallback", "_combine", "_per_report", "_last_reports")

    def __init__(
        self,
        name: str,
        filters: list["Filter"],
        scorers: list[tuple["Scorer", float]],
        picker: "Picker",
        fallback: str | None = None,
    ) -> None:
        for scorer, weight in scorers:
            if not (weight >= 0 and math.isfinite(weight)):
                raise ValueError(f"profile '{name}': scorer '{scorer.name}' needs a finite weight >= 0, got {weight}")
        self.name = name
        self.filters = filters
        self.scorers = scorers
        self.picker = picker
        self.fallback = fallback
        self._combine = _weighted_sum([weight for _, weight in scorers])
        self._per_report = any(scorer.per_report for scorer, _ in scorers)
        #: (candidates, reservations, column per scorer slot or None) of the last completed cycle,
        #: replaced as one tuple so concurrent decisions never pair columns with other reports.
        self._last_reports: tuple[tuple, dict, list[list[float] | None]] | None = None

    def run(self, cycle: Cycle) -> ProfileRunResult:
        """Filter, score, pick; raise ``NoEndpointsError`` naming the filter that emptied the set."""
        snapshot = cycle.snapshot
        record = CycleRecord(self.name, snapshot, snapshot.endpoints)
        timings = record.timings
        endpoints = snapshot.endpoints
        if not endpoints:
            record.error = "no endpoints offered"
            raise _with_record(NoEndpointsError(self.name, None, 0), record)

        for plugin in self.filters:
            start = perf_counter_ns()
            kept = plugin.filter(cycle, endpoints)
            timings.append((plugin, perf_counter_ns() - start))
            if len(kept) != len(endpoints):
                kept_ids = {id(e) for e in kept}
                record.removed.append((plugin.name, [e.name for e in endpoints if id(e) not in kept_ids]))
            endpoints = kept
            if not endpoints:
                record.error = f"filter '{plugin.name}' removed every endpoint"
                record.emptied_by = plugin.name
                raise _with_record(NoEndpointsError(self.name, plugin.name, len(snapshot.endpoints)), record)
        record.survivors = endpoints

        columns = []
        steps = record.scorers
        reusable, candidates = self._reusable_columns(snapshot, endpoints)
        fresh: list[list[float] | None] = [None] * len(self.scorers)
        for slot, (plugin, weight) in enumerate(self.scorers):
            start = perf_counter_ns()
            if reusable is not None and plugin.per_report:
                raw = reusable[slot][:]  # a copy: every record owns its numbers
            else:
                raw = plugin.score(cycle, endpoints)
                if type(raw) is not list:
                    raw = list(raw)
                if plugin.per_report:
                    fresh[slot] = raw[:]
            timings.append((plugin, perf_counter_ns() - start))
            if len(raw) != len(endpoints):
                raise ValueError(f"scorer '{plugin.name}' returned {len(raw)} scores for {len(endpoints)} endpoints")
            clamped = raw if plugin.bounded or not _needs_clamp(raw) else clamp_scores(raw)
            steps.append(ScorerStep(plugin.name, plugin.type_name, weight, raw, clamped))
            columns.append(clamped)
        if candidates is not None:
            self._last_reports = (candidates, dict(snapshot.reserved), fresh)
        totals = record.totals = self._combine(columns, len(endpoints))

        picker = self.picker
        start = perf_counter_ns()
        pick = picker.pick(cycle, endpoints, totals)
        timings.append((picker, perf_counter_ns() - start))
        if not pick.chosen:
            raise ValueError(f"picker '{picker.name}' chose nothing from {len(endpoints)} endpoints")
        record.picker = picker.name
        record.picked = pick.chosen
        record.tie_group = pick.tie_group
        return ProfileRunResult(self.name, tuple([endpoints[i] for i in pick.chosen]), record)

    def _reusable_columns(self, snapshot: "Snapshot", endpoints) -> tuple[list | None, tuple | None]:
        """(last per-report columns if the candidates' reports and reservations are equal, else
        None; the candidates to remember when this cycle computes fresh columns, else None)."""
        if not self._per_report:
            return None, None
        candidates = tuple(endpoints)
        last = self._last_reports
        if last is not None and last[0] == candidates and last[1] == snapshot.reserved:
            return last[2], None
        return None, candidates


#: ``_FUSED[k - 1](w0, …, wk-1)`` -> ``f(columns, size)``: Σ wᵢ·cᵢ per endpoint, left to right,
#: in one comprehension over k columns.
_FUSED = (
    lambda w0: lambda columns, size: [w0 * a for a in columns[0]],
    lambda w0, w1: lambda columns, size: [w0 * a + w1 * b for a, b in zip(*columns)],
    lambda w0, w1, w2: lambda columns, size: [w0 * a + w1 * b + w2 * c for a, b, c in zip(*columns)],
    lambda w0, w1, w2, w3: lambda columns, size: [
        w0 * a + w1 * b + w2 * c + w3 * d for a, b, c, d in zip(*columns)],
    lambda w0, w1, w2, w3, w4: lambda columns, size: [
        w0 * a + w1 * b + w2 * c + w3 * d + w4 * e for a, b, c, d, e in zip(*columns)],
    lambda w0, w1, w2, w3, w4, w5: lambda columns, size: [
        w0 * a + w1 * b + w2 * c + w3 * d + w4 * e + w5 * f for a, b, c, d, e, f in zip(*columns)],
)


def _weighted_sum(weights: list[float]):
    """Build ``f(columns, n) -> totals`` for these weights: zero weights skipped, the rest summed
    left to right in fused passes of up to six columns, each later pass carrying the running
    total as its first (weight 1) column."""
    live = [(slot, float(weight)) for slot, weight in enumerate(weights) if weight != 0.0]
    if not live:
        return lambda columns, size: [0.0] * size
    widest = len(_FUSED)
    first = live[:widest]
    if len(first) == len(weights):  # every column, in one pass: no reshuffling per decision
        return _FUSED[len(first) - 1](*(weight for _, weight in first))
    passes = [([slot for slot, _ in first], _FUSED[len(first) - 1](*(weight for _, weight in first)))]
    for start in range(widest, len(live), widest - 1):
        chunk = live[start:start + widest - 1]
        passes.append(([slot for slot, _ in chunk], _FUSED[len(chunk)](1.0, *(weight for _, weight in chunk))))

    def combine(columns, size):
        (slots, fused), *later = passes
        totals = fused([columns[slot] for slot in slots], size)
        for slots, fused in later:
            totals = fused([totals, *[columns[slot] for slot in slots]], size)
        return totals

    return combine


def _with_record(error: NoEndpointsError, record: CycleRecord) -> NoEndpointsError:
    error.record = record
    return error
