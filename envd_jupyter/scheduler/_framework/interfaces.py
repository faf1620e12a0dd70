"""Extension points: Filter, Scorer, Picker and ProfileHandler, plus what they share.

Each kind has its own method with its own signature (the seed review's conclusion): filters
narrow, scorers return one number per endpoint, the picker chooses, the handler decides which
profiles run and which result routes. Scores never live on the endpoint; they live in the cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

if TYPE_CHECKING:
    from .._cache_index import CacheIndex
    from .cycle import Cycle, Profile
    from .endpoint import Endpoint
    from .request import BuildRequest
    from .result import ProfileRunResult


@dataclass(frozen=True)
class NoParams:
    """Parameter model of plugins that take none."""


@dataclass
class PluginHandle:
    """Shared services a plugin may hold on to: the cache index (kept across reloads)."""

    cache_index: "CacheIndex"


class Plugin:
    """Base of every plugin: a type name (set by ``@register``), an instance name, parameters."""

    type_name: ClassVar[str] = ""
    kind: ClassVar[str] = ""
    extension_point: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams

    def __init__(self, name: str, params: Any, handle: PluginHandle) -> None:
        self.name = name
        self.params = params
        self.handle = handle

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Filter(Plugin):
    """Drops endpoints unfit for the request. Must return a subset of its input, in order."""

    kind = "filter"
    extension_point = "Filter"

    def filter(self, cycle: "Cycle", endpoints: Sequence["Endpoint"]) -> Sequence["Endpoint"]:
        raise NotImplementedError


class Scorer(Plugin):
    """Scores every endpoint in [0, 1] (values outside are clamped); returns them in input order."""

    kind = "scorer"
    extension_point = "Scorer"
    #: True when the formula cannot leave [0, 1]; the framework then skips its range check.
    bounded: ClassVar[bool] = False
    #: True when the scores depend only on the candidates' reports, the snapshot's reservations and
    #: the plugin's parameters (not on the request or other state): a profile then reuses the last
    #: column while those are unchanged, so each new report costs one recomputation.
    per_report: ClassVar[bool] = False

    def score(self, cycle: "Cycle", endpoints: Sequence["Endpoint"]) -> Sequence[float]:
        raise NotImplementedError


@dataclass(slots=True)
class Pick:
    """A picker's answer: chosen endpoint positions, best first, and the tie group it chose from."""

    chosen: list[int]
    tie_group: list[int]


class Picker(Plugin):
    """Chooses from the scored survivors; must choose at least one."""

    kind = "picker"
    extension_point = "Picker"

    def pick(self, cycle: "Cycle", endpoints: Sequence["Endpoint"], totals: list[float]) -> Pick:
        raise NotImplementedError


class HandlerDecision:
    """Which profile's pick routes the request and which ran only to be observed."""

    __slots__ = ("primary", "shadows")

    def __init__(self, primary: str, shadows: tuple[str, ...] = ()) -> None:
        self.primary = primary
        self.shadows = shadows

    def __repr__(self) -> str:
        return f"HandlerDecision(primary={self.primary!r}, shadows={self.shadows!r})"


class ProfileHandler(Plugin):
    """Chooses the profiles to run (possibly over several rounds) and combines their results."""

    kind = "handler"
    extension_point = "ProfileHandler"

    @classmethod
    def check_profiles(cls, params: Any, profile_names: Sequence[str]) -> None:
        """Raise ``ParamError`` when ``params`` do not fit the configured profiles."""

    def pick_profiles(
        self,
        request: "BuildRequest",
        profiles: Mapping[str, "Profile"],
        results: Mapping[str, "ProfileRunResult | None"],
    ) -> list[str]:
        raise NotImplementedError

    def process_results(self, request: "BuildRequest", results: Mapping[str, "ProfileRunResult | None"]) -> HandlerDecision:
        raise NotImplementedError


class PickObserver:
    """Mixin for plugins that learn from the routed pick (e.g. the cache index records chains)."""

    def on_picked(self, request: "BuildRequest", endpoint: "Endpoint") -> None:
        raise NotImplementedError
