"""``cpu-load-scorer``: idle CPUs are better.

score(e) = max(0, 1 − e.cpu_load), where cpu_load is the reported load normalised by core
count (0 = idle, 1 = every core busy, more = overloaded). No parameters.
"""

from __future__ import annotations

from ..._framework.interfaces import Scorer
from ..._registry import register


@register("cpu-load-scorer")
class CpuLoadScorer(Scorer):
    bounded = True  # Endpoint guarantees cpu_load >= 0
    per_report = True

    def score(self, cycle, endpoints):
        return [1.0 - load if (load := e.cpu_load) < 1.0 else 0.0 for e in endpoints]
