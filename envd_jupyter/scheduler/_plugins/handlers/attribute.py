"""``attribute-profile-handler``: the request chooses its profile by an attribute (a "header").

profile = request.attributes[attribute] if present, else ``default``. Parameters: ``attribute``
(str, default "profile"), ``default`` (profile name or null; null makes the attribute
mandatory). An attribute naming no profile is a ``SchedulingError``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import HandlerDecision, ProfileHandler
from ..._framework.result import SchedulingError
from ..._registry import ParamError, register


@register("attribute-profile-handler")
class AttributeProfileHandler(ProfileHandler):
    @dataclass(frozen=True)
    class Params:
        attribute: str = "profile"
        default: str | None = None

    @classmethod
    def check_profiles(cls, params, profile_names):
        if params.default is not None and params.default not in profile_names:
            raise ParamError("default", f"no profile named '{params.default}'; defined: {', '.join(profile_names)}")

    def _chosen(self, request, profiles) -> str:
        attribute = self.params.attribute
        name = request.attributes.get(attribute, self.params.default)
        if name is None:
            raise SchedulingError(f"request has no '{attribute}' attribute and no default profile is configured")
        if name not in profiles:
            raise SchedulingError(f"request attribute {attribute}={name!r} names no profile; defined: {', '.join(profiles)}")
        return name

    def pick_profiles(self, request, profiles, results):
        return [] if results else [self._chosen(request, profiles)]

    def process_results(self, request, results):
        return HandlerDecision(next(iter(results)))
