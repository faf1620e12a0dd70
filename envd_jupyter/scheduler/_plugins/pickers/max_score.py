"""``max-score-picker``: the highest totals, ties broken by a seeded rotation.

tie group = {e : total(e) ≥ max − tieTolerance}. The group is rotated by an offset drawn from
the scheduler's seeded RNG, so equal endpoints share a burst instead of herding on the first,
yet a fixed seed replays the same choices. Returns the top ``maxNumOfEndpoints`` (rotated tie
group first, then the rest by total). Parameters: ``maxNumOfEndpoints`` (int ≥ 1, default 1),
``tieTolerance`` (float ≥ 0, default 1e-9).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import Pick, Picker
from ..._registry import ParamError, register
from ._params import PickerParams


@register("max-score-picker")
class MaxScorePicker(Picker):
    @dataclass(frozen=True)
    class Params(PickerParams):
        tie_tolerance: float = 1e-9

        def __post_init__(self) -> None:
            super().__post_init__()
            if not self.tie_tolerance >= 0:
                raise ParamError("tieTolerance", f"must be >= 0, got {self.tie_tolerance}")

    def pick(self, cycle, endpoints, totals):
        floor = max(totals) - self.params.tie_tolerance
        ties = [i for i, t in enumerate(totals) if t >= floor]
        offset = cycle.rng.randrange(len(ties)) if len(ties) > 1 else 0
        want = self.params.max_num_of_endpoints
        if want == 1:
            return Pick([ties[offset]], ties)
        rotated = ties[offset:] + ties[:offset]
        if want > len(rotated):
            in_ties = set(ties)
            rest = sorted((i for i in range(len(totals)) if i not in in_ties), key=lambda i: -totals[i])
            rotated += rest
        return Pick(rotated[:want], ties)
