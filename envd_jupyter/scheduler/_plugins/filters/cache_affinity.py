"""``cache-affinity-filter``: sticky until saturated.

sticky = {e : affinity(e) > 0 and affinity(e) ≥ threshold} (affinity as in
``cache-affinity-scorer``); coldest = min in-flight over the other endpoints. Keeps the sticky
endpoints with in_flight(e) − coldest ≤ ``maxLoadGap``. If every sticky endpoint is busier
than that, keeps only the cold ones, so a hot chain is copied to a second builder instead of
queueing on the first. Without sticky (or without cold) endpoints, keeps everyone. Parameters: ``threshold`` (0..1, default 0.5),
``maxLoadGap`` (int ≥ 0, default 2), ``mode``, ``kindWeights``, ``useDurations`` (as the scorer).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..._framework.interfaces import Filter
from ..._framework.request import DEFAULT_KIND_WEIGHTS
from ..._registry import ParamError, register
from .._affinity import Mode, affinity_scores, check_kind_weights


@register("cache-affinity-filter")
class CacheAffinityFilter(Filter):
    @dataclass(frozen=True)
    class Params:
        threshold: float = 0.5
        max_load_gap: int = 2
        mode: Mode = "approximate"
        kind_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_KIND_WEIGHTS))
        use_durations: bool = True

        def __post_init__(self) -> None:
            if not 0.0 <= self.threshold <= 1.0:
                raise ParamError("threshold", f"must be within [0, 1], got {self.threshold}")
            if self.max_load_gap < 0:
                raise ParamError("maxLoadGap", f"must be >= 0, got {self.max_load_gap}")
            check_kind_weights(self.kind_weights)

    def filter(self, cycle, endpoints):
        p = self.params
        scores = affinity_scores(cycle, self.handle.cache_index, endpoints, p.mode, p.kind_weights, p.use_durations)
        threshold = p.threshold
        sticky = [e for e, s in zip(endpoints, scores) if s >= threshold and s > 0.0]
        if not sticky or len(sticky) == len(endpoints):
            return endpoints
        in_flight = cycle.snapshot.in_flight
        sticky_ids = {id(e) for e in sticky}
        cold = [e for e in endpoints if id(e) not in sticky_ids]
        ceiling = min(in_flight(e) for e in cold) + p.max_load_gap
        return [e for e in sticky if in_flight(e) <= ceiling] or cold
