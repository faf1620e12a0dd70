"""``weighted-random-picker``: chance proportional to total score (A-Res reservoir sampling).

key(e) = U^(1/total(e)) with U uniform in (0, 1) from the seeded RNG; the largest keys win.
Endpoints scoring 0 get key 0 (chosen only when every score is 0, then uniformly). The
record's tie group is the endpoints that had a positive score. Parameters:
``maxNumOfEndpoints`` (int ≥ 1, default 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import Pick, Picker
from ..._registry import register
from ._params import PickerParams


@register("weighted-random-picker")
class WeightedRandomPicker(Picker):
    @dataclass(frozen=True)
    class Params(PickerParams):
        pass

    def pick(self, cycle, endpoints, totals):
        rng = cycle.rng
        count = min(self.params.max_num_of_endpoints, len(endpoints))
        positive = [i for i, t in enumerate(totals) if t > 0.0]
        if not positive:
            everyone = list(range(len(endpoints)))
            return Pick(rng.sample(everyone, count), everyone)
        keys = [(max(rng.random(), 1e-12) ** (1.0 / t) if t > 0.0 else 0.0, i) for i, t in enumerate(totals)]
        keys.sort(reverse=True)
        return Pick([i for _, i in keys[:count]], positive)
