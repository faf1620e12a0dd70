"""``free-disk-scorer``: more free disk in the cache's filesystem is better.

score(e) = e.disk_free_bytes / e.disk_total_bytes when the total is known, else ``unknownScore``.
Parameters: ``unknownScore`` (0..1, default 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import Scorer
from ..._registry import ParamError, register


@register("free-disk-scorer")
class FreeDiskScorer(Scorer):
    bounded = True  # Endpoint guarantees 0 <= free <= total
    per_report = True

    @dataclass(frozen=True)
    class Params:
        unknown_score: float = 0.0

        def __post_init__(self) -> None:
            if not 0.0 <= self.unknown_score <= 1.0:
                raise ParamError("unknownScore", f"must be within [0, 1], got {self.unknown_score}")

    def score(self, cycle, endpoints):
        unknown = self.params.unknown_score
        return [e.disk_free_bytes / total if (total := e.disk_total_bytes) > 0 else unknown for e in endpoints]

