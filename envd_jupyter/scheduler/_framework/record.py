"""The record every cycle keeps: what each filter removed, every scorer's numbers, the pick.

Hot-path cost is a few list references per plugin: clamped and weighted values, per-endpoint
views and JSON are derived only when ``to_dict`` is called (by widgets, logs, tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .endpoint import Endpoint, Snapshot


class ScorerStep:
    """One scorer's output over the survivors: raw values and the clamped values used."""

    __slots__ = ("name", "type_name", "weight", "raw", "clamped")

    def __init__(self, name: str, type_name: str, weight: float, raw: list[float], clamped: list[float]) -> None:
        self.name = name
        self.type_name = type_name
        self.weight = weight
        self.raw = raw
        self.clamped = clamped


class CycleRecord:
    """Everything one profile cycle decided, in the order it decided it."""

    __slots__ = (
        "profile", "snapshot", "candidates", "removed", "survivors", "scorers",
        "totals", "tie_group", "picked", "picker", "timings", "error", "emptied_by",
    )

    def __init__(self, profile: str, snapshot: "Snapshot", candidates: tuple["Endpoint", ...]) -> None:
        self.profile = profile
        self.snapshot = snapshot
        self.candidates = candidates
        self.removed: list[tuple[str, list[str]]] = []
        self.survivors: "list[Endpoint] | tuple[Endpoint, ...]" = ()
        self.scorers: list[ScorerStep] = []
        self.totals: list[float] = []
        self.tie_group: list[int] = []
        self.picked: list[int] = []
        self.picker = ""
        self.timings: list[tuple[Any, int]] = []  # (plugin, nanoseconds)
        self.error: str | None = None
        self.emptied_by: str | None = None

    def removed_by(self) -> dict[str, str]:
        """Endpoint name → the filter that removed it."""
        return {endpoint: plugin for plugin, names in self.removed for endpoint in names}

    def to_dict(self) -> dict[str, Any]:
        names = [e.name for e in self.survivors]
        per_endpoint: dict[str, dict[str, Any]] = {}
        for i, name in enumerate(names):
            per_endpoint[name] = {
                "total": self.totals[i] if self.totals else 0.0,
                "scorers": {
                    s.name: {"raw": s.raw[i], "clamped": s.clamped[i], "weighted": s.weight * s.clamped[i]}
                    for s in self.scorers
                },
            }
        return {
            "profile": self.profile,
            "snapshot": {
                "version": self.snapshot.version,
                "age_s": round(self.snapshot.age_s, 6),
                "reserved": dict(self.snapshot.reserved),
            },
            "candidates": [e.name for e in self.candidates],
            "filters": [{"filter": plugin, "removed": removed} for plugin, removed in self.removed],
            "scorers": [{"name": s.name, "type": s.type_name, "weight": s.weight} for s in self.scorers],
            "scores": per_endpoint,
            "tie_group": [names[i] for i in self.tie_group],
            "picker": self.picker,
            "picked": [names[i] for i in self.picked],
            "latency_us": {f"{plugin.extension_point}/{plugin.name}": ns / 1000 for plugin, ns in self.timings},
            "error": self.error,
            "emptied_by": self.emptied_by,
        }
