"""``prior-pick-scorer``: prefer where an earlier profile of this decision sent the request.

score(e) = 1 if e is the pick of profile ``profile`` (already run in this decision), else 0.
Used by a later multi-cycle profile, e.g. "export from where it was built unless another
endpoint is much closer to the registry". Parameters: ``profile`` (str, required).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import Scorer
from ..._registry import register


@register("prior-pick-scorer")
class PriorPickScorer(Scorer):
    bounded = True

    @dataclass(frozen=True)
    class Params:
        profile: str

    def score(self, cycle, endpoints):
        earlier = cycle.results.get(self.params.profile)
        if earlier is None:
            return [0.0] * len(endpoints)
        chosen = earlier.endpoint.name
        return [1.0 if e.name == chosen else 0.0 for e in endpoints]
