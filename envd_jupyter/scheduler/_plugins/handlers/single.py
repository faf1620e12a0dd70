"""``single-profile-handler``: run the one profile; it is the primary.

Added automatically when the config has one profile and no handler. No parameters; a config
with several profiles is rejected.
"""

from __future__ import annotations

from ..._framework.interfaces import HandlerDecision, ProfileHandler
from ..._registry import ParamError, register


@register("single-profile-handler")
class SingleProfileHandler(ProfileHandler):
    @classmethod
    def check_profiles(cls, params, profile_names):
        if len(profile_names) != 1:
            raise ParamError("", f"single-profile-handler runs exactly one profile; {len(profile_names)} defined: {', '.join(profile_names)}")

    def pick_profiles(self, request, profiles, results):
        return [] if results else list(profiles)

    def process_results(self, request, results):
        return HandlerDecision(next(iter(results)))
