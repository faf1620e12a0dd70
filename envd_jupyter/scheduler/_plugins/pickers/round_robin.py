"""``round-robin-picker``: the survivors in turn, by name, ignoring scores (the naive baseline).

A cursor remembers the last name picked; the next pick is the first survivor after it in name
order, wrapping around. A builder that is filtered out (unhealthy, removed) is skipped without
disturbing the order of the rest. Parameters: ``maxNumOfEndpoints`` (int ≥ 1, default 1), that many
consecutive survivors from the cursor on.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

from ..._framework.interfaces import Pick, Picker
from ..._registry import register
from ._params import PickerParams


@register("round-robin-picker")
class RoundRobinPicker(Picker):
    @dataclass(frozen=True)
    class Params(PickerParams):
        pass

    def __init__(self, name, params, handle) -> None:
        super().__init__(name, params, handle)
        self._last: str | None = None
        self._lock = threading.Lock()

    def pick(self, cycle, endpoints, totals):
        order = sorted(range(len(endpoints)), key=lambda i: endpoints[i].name)
        names = [endpoints[i].name for i in order]
        count = min(self.params.max_num_of_endpoints, len(order))
        with self._lock:
            start = 0 if self._last is None else bisect.bisect_right(names, self._last) % len(names)
            chosen = [order[(start + k) % len(order)] for k in range(count)]
            self._last = endpoints[chosen[0]].name
        return Pick(chosen, order)
