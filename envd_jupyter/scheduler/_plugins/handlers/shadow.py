"""``shadow-profile-handler``: dark-launch candidate profiles beside the primary.

Runs ``primary`` and every profile in ``shadows`` on the same snapshot in one round; only the
primary routes (and reserves). The result records each shadow's pick and whether it agrees
with the primary; metrics count agreement per shadow. A failing shadow never fails the
request. Parameters: ``primary`` (str, required), ``shadows`` (list of str, required).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import HandlerDecision, ProfileHandler
from ..._registry import ParamError, register


@register("shadow-profile-handler")
class ShadowProfileHandler(ProfileHandler):
    @dataclass(frozen=True)
    class Params:
        primary: str
        shadows: tuple[str, ...]

        def __post_init__(self) -> None:
            if self.primary in self.shadows:
                raise ParamError("shadows", f"'{self.primary}' is the primary; it cannot shadow itself")

    @classmethod
    def check_profiles(cls, params, profile_names):
        if params.primary not in profile_names:
            raise ParamError("primary", f"no profile named '{params.primary}'; defined: {', '.join(profile_names)}")
        for i, name in enumerate(params.shadows):
            if name not in profile_names:
                raise ParamError(f"shadows[{i}]", f"no profile named '{name}'; defined: {', '.join(profile_names)}")

    def pick_profiles(self, request, profiles, results):
        return [] if results else [self.params.primary, *self.params.shadows]

    def process_results(self, request, results):
        return HandlerDecision(self.params.primary, self.params.shadows)
