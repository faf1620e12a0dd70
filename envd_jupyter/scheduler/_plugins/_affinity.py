"""Cache-affinity score shared by the affinity scorer and the sticky filter (memoised per cycle).

score(e) = Σ_{v ∈ request, v cached on e} work(v) / Σ_{v ∈ request} work(v)
work(v)  = v's recorded duration when known (and useDurations), else kindWeights[v.kind]
"cached on e": approximate mode asks the cache index (chain key held in e's LRU);
precise mode asks the daemon's own report (v.digest ∈ e.cached_digests).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, Mapping

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
) -> list[float]:
    request = cycle.request
    work, total = request.work(kind_weights, use_durations)
    if total <= 0:
        return [0.0] * len(endpoints)
    memo_key = ("affinity", mode, id(kind_weights), use_durations)
    matched = cycle.state.get(memo_key)
    if matched is None:
        if mode == "approximate":
            matched = index.matched_work(request.chain_keys, work)
        else:
            matched = _reported_work(request.vertices, work, cycle.snapshot.endpoints)
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
