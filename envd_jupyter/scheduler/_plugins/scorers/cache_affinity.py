"""``cache-affinity-scorer``: share of the request's work already cached on the endpoint.

score(e) = Σ_{v cached on e} work(v) / Σ_v work(v), work(v) = recorded duration if known and
``useDurations``, else ``kindWeights[v.kind]`` (``"*"`` is the fallback weight). A vertex is
identified by its chain key: a hash of its digest and its inputs' chain keys, from the root.

Modes: ``approximate`` (default) reads the shared cache index, which this plugin feeds with the
chain of every request it routes (an LRU of ``lruCapacity`` keys per endpoint, or
disk_total_bytes / ``bytesPerEntry`` when that is > 0 and the endpoint reports its disk);
``precise`` reads what each daemon reported as cached (``Endpoint.cached_digests``).
``registryHitWeight`` (0..1, default 0.5): the share of a vertex's work counted when it is not
cached on the endpoint but in a shared registry cache the endpoint reaches (its import is cheaper
than running it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..._framework.interfaces import PickObserver, Scorer
from ..._framework.request import DEFAULT_KIND_WEIGHTS
from ..._registry import ParamError, register
from .._affinity import Mode, affinity_scores, check_kind_weights


@register("cache-affinity-scorer")
class CacheAffinityScorer(Scorer, PickObserver):
    bounded = True  # matched work is a subset of the request's non-negative work

    @dataclass(frozen=True)
    class Params:
        mode: Mode = "approximate"
        kind_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_KIND_WEIGHTS))
        use_durations: bool = True
        lru_capacity: int = 4096
        bytes_per_entry: int = 0
        registry_hit_weight: float = 0.5

        def __post_init__(self) -> None:
            if not 0.0 <= self.registry_hit_weight <= 1.0:
                raise ParamError("registryHitWeight", f"must be within [0, 1], got {self.registry_hit_weight}")
            if self.lru_capacity <= 0:
                raise ParamError("lruCapacity", f"must be > 0, got {self.lru_capacity}")
            if self.bytes_per_entry < 0:
                raise ParamError("bytesPerEntry", f"must be >= 0, got {self.bytes_per_entry}")
            check_kind_weights(self.kind_weights)

    def __init__(self, name, params, handle) -> None:
        super().__init__(name, params, handle)
        handle.cache_index.default_capacity = params.lru_capacity

    def score(self, cycle, endpoints):
        p = self.params
        return affinity_scores(cycle, self.handle.cache_index, endpoints, p.mode, p.kind_weights, p.use_durations,
                               p.registry_hit_weight)

    def on_picked(self, request, endpoint) -> None:
        if self.params.mode != "approximate":
            return
        index = self.handle.cache_index
        per_entry = self.params.bytes_per_entry
        if per_entry and endpoint.disk_total_bytes:
            index.set_capacity(endpoint.name, max(1, endpoint.disk_total_bytes // per_entry))
        work, _ = request.work(self.params.kind_weights, self.params.use_durations)
        index.record(endpoint.name, request.chain_keys, work)
