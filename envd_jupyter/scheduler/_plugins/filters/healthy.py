"""``healthy-filter``: keep endpoints that report healthy and whose report is fresh enough.

Keeps e when e.healthy and (maxReportAgeSeconds == 0 or snapshot time − e.reported_at ≤
maxReportAgeSeconds). Parameters: ``maxReportAgeSeconds`` (float ≥ 0, default 0 = no limit).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import Filter
from ..._registry import ParamError, register


@register("healthy-filter")
class HealthyFilter(Filter):
    @dataclass(frozen=True)
    class Params:
        max_report_age_seconds: float = 0.0

        def __post_init__(self) -> None:
            if not self.max_report_age_seconds >= 0:
                raise ParamError("maxReportAgeSeconds", f"must be >= 0, got {self.max_report_age_seconds}")

    def filter(self, cycle, endpoints):
        max_age = self.params.max_report_age_seconds
        if not max_age:
            return [e for e in endpoints if e.healthy]
        oldest = cycle.snapshot.taken_at - max_age
        return [e for e in endpoints if e.healthy and (e.reported_at is None or e.reported_at >= oldest)]
