"""``multi-cycle-profile-handler``: run profiles in rounds; later rounds see earlier picks.

Round k runs once every profile of round k−1 produced a result (a failed round ends the
decision). Example: rounds [[build], [export]] where "export" uses ``prior-pick-scorer`` and
``registry-proximity-scorer``. Parameters: ``rounds`` (list of lists of profile names,
required), ``primary`` (profile whose pick routes the build, required).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import HandlerDecision, ProfileHandler
from ..._registry import ParamError, register


@register("multi-cycle-profile-handler")
class MultiCycleProfileHandler(ProfileHandler):
    @dataclass(frozen=True)
    class Params:
        rounds: tuple[tuple[str, ...], ...]
        primary: str

        def __post_init__(self) -> None:
            if not self.rounds or not all(self.rounds):
                raise ParamError("rounds", "needs at least one round, each naming at least one profile")

    @classmethod
    def check_profiles(cls, params, profile_names):
        seen: set[str] = set()
        for r, names in enumerate(params.rounds):
            for i, name in enumerate(names):
                if name not in profile_names:
                    raise ParamError(f"rounds[{r}][{i}]", f"no profile named '{name}'; defined: {', '.join(profile_names)}")
                if name in seen:
                    raise ParamError(f"rounds[{r}][{i}]", f"profile '{name}' already runs in an earlier round")
                seen.add(name)
        if params.primary not in seen:
            raise ParamError("primary", f"'{params.primary}' is not in any round; rounds name: {', '.join(sorted(seen))}")

    def pick_profiles(self, request, profiles, results):
        for names in self.params.rounds:
            if all(n in results for n in names):
                if any(results[n] is None for n in names):
                    return []
                continue
            return [n for n in names if n not in results]
        return []

    def process_results(self, request, results):
        return HandlerDecision(self.params.primary)
