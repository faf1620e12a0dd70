"""Which endpoint holds which vertex chains: an LRU per endpoint plus an inverted index.

Like the prefix indexer of llm-d-router (block hash → servers), the inverted map
``chain key → endpoints`` makes a lookup cost O(request vertices + hits), not
O(endpoints × vertices). Each endpoint's LRU bounds what it is believed to keep; evicting a
key there removes the endpoint from the key's holder set.

Holder sets are immutable and shared: keys recorded together (a chain) end up pointing at
the same frozenset object, so a lookup adds a chain's work per distinct holder set and
expands each set to endpoint names once, however widely the chain is replicated.
"""

from __future__ import annotations

from collections import OrderedDict
from itertools import repeat
from typing import Iterable, Sequence

#: Holder names with this prefix are shared registry caches (``registry:host:port``), not endpoints:
#: an endpoint that reaches the registry (it reports an RTT to it) can import what they hold.
REGISTRY_HOLDER_PREFIX = "registry:"


class CacheIndex:
    """Approximate map of cached chains per endpoint, learned from routed picks and reports."""

    def __init__(self, default_capacity: int = 4096) -> None:
        if default_capacity <= 0:
            raise ValueError(f"default_capacity must be positive, got {default_capacity}")
        self.default_capacity = default_capacity
        self._holders: dict[int, frozenset[str]] = {}
        self._singles: dict[str, frozenset[str]] = {}
        self._lru: dict[str, OrderedDict[int, None]] = {}
        self._capacity: dict[str, int] = {}
        self.routed_work = 0.0
        self.routed_hit_work = 0.0
        self.evictions = 0

    def set_capacity(self, endpoint: str, capacity: int) -> None:
        """Bound what one endpoint is believed to keep (e.g. from its disk size)."""
        if capacity <= 0:
            raise ValueError(f"capacity for {endpoint} must be positive, got {capacity}")
        self._capacity[endpoint] = capacity
        self._evict(endpoint)

    def capacity(self, endpoint: str) -> int:
        return self._capacity.get(endpoint, self.default_capacity)

    @staticmethod
    def registry_holder(registry: str) -> str:
        """The holder name of what a shared registry cache at ``registry`` (host:port) holds."""
        return REGISTRY_HOLDER_PREFIX + registry

    def matched_work(self, keys: Sequence[int], work: Sequence[float]) -> dict[str, float]:
        """Endpoint name → sum of ``work`` over the keys it holds (only endpoints with a hit)."""
        acc: dict[str, float] = {}
        for held_by, w in self.matched_sets(keys, work).items():
            for name in held_by:
                acc[name] = acc.get(name, 0.0) + w
        return acc

    def matched_sets(self, keys: Sequence[int], work: Sequence[float]) -> dict[frozenset[str], float]:
        """Holder set → sum of ``work`` over the keys held by exactly that set."""
        per_set: dict[frozenset[str], float] = {}
        current, run_work = None, 0.0  # a chain's keys share one holder set: sum a run, store it once
        for held_by, w in zip(map(self._holders.get, keys), work):
            if held_by is None:
                continue
            if held_by is not current:
                if current is not None:
                    per_set[current] = run_work
                current, run_work = held_by, per_set.get(held_by, 0.0)
            run_work += w
        if current is not None:
            per_set[current] = run_work
        return per_set

    def record(self, endpoint: str, keys: Iterable[int], work: Sequence[float] | None = None) -> float:
        """Note that ``endpoint`` now holds ``keys``; returns the work that was already there."""
        lru = self._lru.get(endpoint)
        if lru is None:
            lru = self._lru[endpoint] = OrderedDict()
        single = self._single(endpoint)
        widened: dict[frozenset[str], frozenset[str]] = {}
        holders = self._holders
        touch = lru.move_to_end
        hit = 0.0
        total = 0.0
        for key, w in zip(keys, work if work is not None else repeat(1.0)):
            total += w
            if key in lru:
                touch(key)
                hit += w
                continue
            lru[key] = None
            held_by = holders.get(key)
            if held_by is None:
                holders[key] = single
            else:
                wider = widened.get(held_by)
                if wider is None:
                    wider = widened[held_by] = held_by | single
                holders[key] = wider
        self.routed_work += total
        self.routed_hit_work += hit
        if len(lru) > self._capacity.get(endpoint, self.default_capacity):
            self._evict(endpoint)
        return hit

    def _single(self, endpoint: str) -> frozenset[str]:
        single = self._singles.get(endpoint)
        if single is None:
            single = self._singles[endpoint] = frozenset((endpoint,))
        return single

    def forget(self, endpoint: str) -> None:
        """Drop everything known about an endpoint (it was pruned or replaced)."""
        lru = self._lru.pop(endpoint, None)
        if lru:
            self._drop(endpoint, list(lru))
        self._singles.pop(endpoint, None)

    def _evict(self, endpoint: str) -> None:
        lru = self._lru.get(endpoint)
        if lru is None:
            return
        excess = len(lru) - self.capacity(endpoint)
        if excess <= 0:
            return
        pop = lru.popitem
        self._drop(endpoint, [pop(last=False)[0] for _ in range(excess)])
        self.evictions += excess

    def _drop(self, endpoint: str, keys: list[int]) -> None:
        """Remove ``endpoint`` from the holder sets of ``keys`` (sharing narrowed sets)."""
        holders = self._holders
        single = self._single(endpoint)
        narrowed: dict[frozenset[str], frozenset[str]] = {}
        for key in keys:
            held_by = holders[key]
            if len(held_by) == 1:
                del holders[key]
                continue
            narrower = narrowed.get(held_by)
            if narrower is None:
                narrower = narrowed[held_by] = held_by - single
            holders[key] = narrower

    def holders(self, key: int) -> frozenset[str]:
        """Every endpoint (or registry holder) believed to hold ``key``."""
        return self._holders.get(key, frozenset())

    def holds(self, endpoint: str, key: int) -> bool:
        return key in self._lru.get(endpoint, ())

    @property
    def size(self) -> int:
        """Total (endpoint, key) entries."""
        return sum(len(lru) for lru in self._lru.values())

    @property
    def hit_ratio(self) -> float:
        """Share of routed work that the index believed was already cached where it was sent."""
        return self.routed_hit_work / self.routed_work if self.routed_work else 0.0

    def stats(self) -> dict[str, float]:
        return {
            "entries": self.size,
            "keys": len(self._holders),
            "endpoints": len(self._lru),
            "evictions": self.evictions,
            "hit_ratio": self.hit_ratio,
        }
