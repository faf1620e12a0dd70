"""``in-flight-scorer``: fewer running solves is better, min-max normalised over the candidates.

score(e) = (max − n(e)) / (max − min) with n(e) = reported in-flight + reservations since the
report; every endpoint scores 1 when all are equally busy. No parameters.
"""

from __future__ import annotations

from ..._framework.interfaces import Scorer
from ..._registry import register


@register("in-flight-scorer")
class InFlightScorer(Scorer):
    bounded = True
    per_report = True

    def score(self, cycle, endpoints):
        snapshot = cycle.snapshot
        if snapshot.reserved:
            loads = [snapshot.in_flight(e) for e in endpoints]
        else:
            loads = [e.in_flight for e in endpoints]
        low, high = min(loads), max(loads)
        if high == low:
            return [1.0] * len(loads)
        span = float(high - low)  # division (not a reciprocal) keeps the best exactly at 1.0
        if high <= _TABLE_LIMIT:  # small counts: look the score up instead of dividing per endpoint
            table = [(high - n) / span for n in range(high + 1)]
            return [table[n] for n in loads]
        return [(high - n) / span for n in loads]


_TABLE_LIMIT = 4096
