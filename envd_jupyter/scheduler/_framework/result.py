"""What ``Scheduler.schedule`` returns, and the typed errors it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from envd_jupyter._errors import ShortError

if TYPE_CHECKING:
    from .endpoint import Endpoint
    from .record import CycleRecord


class SchedulingError(ShortError):
    """Base of every scheduler error: a bad config or parameter, or no endpoint for the request."""


class NoEndpointsError(SchedulingError):
    """A profile's filters left nothing; names the filter that emptied the set."""

    def __init__(self, profile: str, filter_name: str | None, candidates: int) -> None:
        self.profile = profile
        self.filter_name = filter_name
        self.candidates = candidates
        self.record: "CycleRecord | None" = None
        where = f"filter '{filter_name}' removed the last endpoint" if filter_name else "no endpoints were offered"
        super().__init__(f"profile '{profile}': {where} (of {candidates} candidates)")


@dataclass(slots=True)
class ProfileRunResult:
    """One cycle's outcome: targets best first, and the record of how they were chosen."""

    profile: str
    targets: tuple["Endpoint", ...]
    record: "CycleRecord"
    fallback_for: str | None = None

    @property
    def endpoint(self) -> "Endpoint":
        return self.targets[0]


@dataclass(slots=True)
class SchedulingResult:
    """Profile name → run result (None if it failed); ``primary`` names the one that routes."""

    primary: str
    profile_results: dict[str, ProfileRunResult | None]
    records: list["CycleRecord"]
    shadows: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def endpoint(self) -> "Endpoint":
        """The endpoint the request goes to."""
        result = self.profile_results[self.primary]
        assert result is not None  # the scheduler raises before returning a failed primary
        return result.endpoint

    def to_dict(self) -> dict[str, Any]:
        return {
            "primary": self.primary,
            "endpoint": self.endpoint.name,
            "profiles": {
                name: (None if r is None else {"targets": [e.name for e in r.targets], "fallback_for": r.fallback_for})
                for name, r in self.profile_results.items()
            },
            "shadows": self.shadows,
            "cycles": [record.to_dict() for record in self.records],
        }
