"""``registry-proximity-scorer``: prefer the endpoint closest to the registry the result goes to.

The target registry is ``request.attributes[attribute]``; rtt(e) = e.registry_rtt_ms[target].
score(e) = (max − rtt(e)) / (max − min) over endpoints that reported an RTT (1 when all equal),
0 for endpoints that did not, and 0 for everyone when the request names no registry.
Parameters: ``attribute`` (str, default "registry").
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import Scorer
from ..._registry import register


@register("registry-proximity-scorer")
class RegistryProximityScorer(Scorer):
    bounded = True

    @dataclass(frozen=True)
    class Params:
        attribute: str = "registry"

    def score(self, cycle, endpoints):
        target = cycle.request.attributes.get(self.params.attribute)
        rtts = [e.registry_rtt_ms.get(target) if target else None for e in endpoints]
        known = [r for r in rtts if r is not None]
        if not known:
            return [0.0] * len(endpoints)
        low, high = min(known), max(known)
        span = high - low
        return [0.0 if r is None else (1.0 if span == 0 else (high - r) / span) for r in rtts]
