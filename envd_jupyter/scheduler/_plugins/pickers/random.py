"""``random-picker``: uniform choice among the survivors, ignoring scores.

Draws ``maxNumOfEndpoints`` distinct endpoints with the scheduler's seeded RNG; the tie group
is every survivor. Parameters: ``maxNumOfEndpoints`` (int ≥ 1, default 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import Pick, Picker
from ..._registry import register
from ._params import PickerParams


@register("random-picker")
class RandomPicker(Picker):
    @dataclass(frozen=True)
    class Params(PickerParams):
        pass

    def pick(self, cycle, endpoints, totals):
        count = min(self.params.max_num_of_endpoints, len(endpoints))
        everyone = list(range(len(endpoints)))
        return Pick(cycle.rng.sample(everyone, count), everyone)
