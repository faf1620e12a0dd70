"""``saturation-filter``: drop endpoints whose in-flight solves reached their limit.

limit(e) = e.max_in_flight if set, else ``maxInFlight``; e is dropped when limit > 0 and
in_flight(e) ≥ limit, where in_flight counts reservations made since e's last report.
Parameters: ``maxInFlight`` (int ≥ 0, default 0 = no limit unless the endpoint reports one).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import Filter
from ..._registry import ParamError, register


@register("saturation-filter")
class SaturationFilter(Filter):
    @dataclass(frozen=True)
    class Params:
        max_in_flight: int = 0

        def __post_init__(self) -> None:
            if self.max_in_flight < 0:
                raise ParamError("maxInFlight", f"must be >= 0, got {self.max_in_flight}")

    def filter(self, cycle, endpoints):
        default = self.params.max_in_flight
        in_flight = cycle.snapshot.in_flight
        kept = []
        for e in endpoints:
            limit = e.max_in_flight or default
            if not limit or in_flight(e) < limit:
                kept.append(e)
        return kept
