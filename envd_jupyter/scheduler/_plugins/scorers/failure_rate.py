"""``failure-rate-scorer``: endpoints whose recent solves failed less are better.

score(e) = 1 − f / (n + pseudoSolves), with f = recent failures and n = recent solves; the
pseudo-count keeps one early failure from condemning a fresh endpoint.
Parameters: ``pseudoSolves`` (float ≥ 0, default 2).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import Scorer
from ..._registry import ParamError, register


@register("failure-rate-scorer")
class FailureRateScorer(Scorer):
    bounded = True  # Endpoint guarantees failures <= solves
    per_report = True

    @dataclass(frozen=True)
    class Params:
        pseudo_solves: float = 2.0

        def __post_init__(self) -> None:
            if not self.pseudo_solves >= 0:
                raise ParamError("pseudoSolves", f"must be >= 0, got {self.pseudo_solves}")

    def score(self, cycle, endpoints):
        pseudo = self.params.pseudo_solves
        return [
            1.0 - e.recent_failures / (e.recent_solves + pseudo) if e.recent_failures else 1.0
            for e in endpoints
        ]
