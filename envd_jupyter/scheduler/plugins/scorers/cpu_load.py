"""``cpu-load-scorer``: idle CPUs are better.

score(e) = 1 − e.cpu_load, where cpu_load is the reported load normalised by core count
(0 = idle, 1 = every core busy; above 1 the framework clamps the score to 0). No parameters.
"""

from __future__ import annotations

from ...framework.interfaces import Scorer
from ...registry import register


@register("cpu-load-scorer")
class CpuLoadScorer(Scorer):
    def score(self, cycle, endpoints):
        return [1.0 - e.cpu_load for e in endpoints]
