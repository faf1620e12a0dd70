"""``sticky-hash-picker``: the build's key hashed onto a ring of the survivors (buildx's ``loadbalance=sticky``).

buildx's Kubernetes driver hashes the absolute context path onto a consistent-hash ring of the
running pods, so one project keeps landing on one pod while the pod set is unchanged, and a pod
going away remaps only the keys that pointed at it. Scores are ignored. Here each survivor owns
``virtualNodes`` points on the ring (MD5 of ``name-i``); the key's MD5 goes to the first point at or
after it, clockwise. The key: the request attribute ``keyAttribute`` (default ``context``), else the
digest of the build's first ``local`` source (its context: the digest names the context, not its
content), else the request's id; a request with none of them gets a random survivor, as buildx's
chooser falls back to random. With ``maxNumOfEndpoints`` > 1 the next distinct owners follow.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
from dataclasses import dataclass

from ..._framework.interfaces import Pick, Picker
from ..._registry import ParamError, register
from ._params import PickerParams

RINGS_KEPT = 64  # survivor sets whose ring is remembered (a fleet sees few distinct ones)


def ring_point(text: str) -> int:
    return int.from_bytes(hashlib.md5(text.encode(), usedforsecurity=False).digest()[:8], "big")


def build_key(request, attribute: str) -> str:
    """The text hashed for ``request``: its key attribute, its context's digest, or its id ("" when none)."""
    key = request.attributes.get(attribute)
    if key:
        return key
    for vertex in request.vertices:
        if vertex.kind == "local":
            return vertex.digest
    return request.id


@register("sticky-hash-picker")
class StickyHashPicker(Picker):
    @dataclass(frozen=True)
    class Params(PickerParams):
        key_attribute: str = "context"
        virtual_nodes: int = 40

        def __post_init__(self) -> None:
            super().__post_init__()
            if self.virtual_nodes < 1:
                raise ParamError("virtualNodes", f"must be >= 1, got {self.virtual_nodes}")
            if not self.key_attribute:
                raise ParamError("keyAttribute", "must name a request attribute")

    def __init__(self, name, params, handle) -> None:
        super().__init__(name, params, handle)
        self._rings: dict[tuple[str, ...], tuple[list[int], list[str]]] = {}
        self._lock = threading.Lock()

    def ring(self, names: tuple[str, ...]) -> tuple[list[int], list[str]]:
        """Sorted points and the name owning each, for this set of survivors (memoised)."""
        with self._lock:
            ring = self._rings.get(names)
        if ring is None:
            points = sorted((ring_point(f"{name}-{i}"), name) for name in names
                            for i in range(self.params.virtual_nodes))
            ring = ([p for p, _ in points], [n for _, n in points])
            with self._lock:
                if len(self._rings) >= RINGS_KEPT:
                    self._rings.clear()
                self._rings[names] = ring
        return ring

    def pick(self, cycle, endpoints, totals):
        everyone = list(range(len(endpoints)))
        count = min(self.params.max_num_of_endpoints, len(endpoints))
        key = build_key(cycle.request, self.params.key_attribute)
        if not key:
            return Pick(cycle.rng.sample(everyone, count), everyone)
        position = {e.name: i for i, e in enumerate(endpoints)}
        points, owners = self.ring(tuple(sorted(position)))
        start = bisect.bisect_left(points, ring_point(key))
        chosen: list[int] = []
        for step in range(len(points)):
            index = position[owners[(start + step) % len(points)]]
            if index not in chosen:
                chosen.append(index)
                if len(chosen) == count:
                    break
        return Pick(chosen, everyone)
