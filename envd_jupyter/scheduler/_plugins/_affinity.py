"""Cache-affinity score shared by the affinity scorer and the sticky filter (memoised per cycle).

score(e) = Σ_{v ∈ request, v cached on e} work(v) / Σ_{v ∈ request} work(v)
work(v)  = v's recorded duration when known (and useDurations), else kindWeights[v.kind]
"cached on e": approximate mode asks the cache index (chain key held in e's LRU);
precise mode asks the daemon's own report (v.digest ∈ e.cached_digests).
A vertex not cached on e but held by a shared registry cache that e reaches (the index's
``registry:host`` holders; e reports an RTT to that host) counts ``registryHitWeight`` of its work:
importing it is cheaper than running it, dearer than a local hit.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Mapping

from .._cache_index import REGISTRY_HOLDER_PREFIX
from .._registry import ParamError

if TYPE_CHECKING:
    from .._cache_index import CacheIndex
    from .._framework.cycle import Cycle
    from .._framework.endpoint import Endpoint

Mode = Literal["approximate", "precise"]


def check_kind_weights(kind_weights: Mapping[str, float]) -> None:
    """Kind weights are finite and non-negative (shared by the scorer and the filter)."""
    for kind, weight in kind_weights.items():
        if not (weight >= 0 and math.isfinite(weight)):
            raise ParamError(f"kindWeights.{kind}", f"must be a finite number >= 0, got {weight}")


def affinity_scores(
    cycle: "Cycle",
    index: "CacheIndex",
    endpoints: list["Endpoint"],
    mode: Mode,
    kind_weights: Mapping[str, float],
    use_durations: bool,
    registry_weight: float = 0.0,
) -> list[float]:
    request = cycle.request
    work, total = request.work(kind_weights, use_durations)
    if total <= 0:
        return [0.0] * len(endpoints)
    memo_key = ("affinity", mode, id(kind_weights), use_durations, registry_weight)
    matched = cycle.state.get(memo_key)
    if matched is None:
        if mode == "approximate":
            matched = index.matched_work(request.chain_keys, work)
        else:
            matched = _reported_work(request.vertices, work, cycle.snapshot.endpoints)
        if registry_weight > 0 and mode == "approximate":
            _add_registry_work(matched, index.matched_sets(request.chain_keys, work), cycle.snapshot.endpoints,
                               registry_weight)
        elif registry_weight > 0:
            _add_reported_registry_work(matched, request, work, index, cycle.snapshot.endpoints, registry_weight)
        matched = {name: min(1.0, hit / total) for name, hit in matched.items()}
        cycle.state[memo_key] = matched
    if not matched:
        return [0.0] * len(endpoints)
    get = matched.get
    return [get(e.name, 0.0) for e in endpoints]


def _reported_work(vertices, work, endpoints) -> dict[str, float]:
    matched: dict[str, float] = {}
    for endpoint in endpoints:
        cached = endpoint.cached_digests
        if cached:
            hit = sum(w for v, w in zip(vertices, work) if v.digest in cached)
            if hit:
                matched[endpoint.name] = hit
    return matched


def _reached(endpoint) -> set[str]:
    return {REGISTRY_HOLDER_PREFIX + host for host in endpoint.registry_rtt_ms}


def _add_registry_work(matched: dict[str, float], per_set: Mapping[frozenset[str], float], endpoints,
                       weight: float) -> None:
    """Add ``weight`` × the work held by a registry an endpoint reaches and not by the endpoint itself."""
    registry_sets = [(held_by, w) for held_by, w in per_set.items()
                     if any(name.startswith(REGISTRY_HOLDER_PREFIX) for name in held_by)]
    if not registry_sets:
        return
    for endpoint in endpoints:
        reached = _reached(endpoint)
        extra = sum(w for held_by, w in registry_sets if endpoint.name not in held_by and reached.intersection(held_by))
        if extra:
            matched[endpoint.name] = matched.get(endpoint.name, 0.0) + weight * extra


def _add_reported_registry_work(matched: dict[str, float], request, work, index: "CacheIndex", endpoints,
                                weight: float) -> None:
    """Precise mode: the same, for the vertices the endpoint did not report as cached."""
    holders = [index.holders(key) for key in request.chain_keys]
    if not any(name.startswith(REGISTRY_HOLDER_PREFIX) for held_by in holders for name in held_by):
        return
    for endpoint in endpoints:
        reached, cached = _reached(endpoint), endpoint.cached_digests
        extra = sum(w for vertex, w, held_by in zip(request.vertices, work, holders)
                    if vertex.digest not in cached and reached.intersection(held_by))
        if extra:
            matched[endpoint.name] = matched.get(endpoint.name, 0.0) + weight * extra
