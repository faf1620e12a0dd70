"""``platform-filter``: keep endpoints that build for the request's platform.

Keeps e when the request names no platform, or some p in e.platforms has the same os/arch
and, if the request names a variant (linux/arm/v7), the same variant. Parameters:
``defaultPlatform`` (str | null, default null) — used for requests that name none.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import Filter
from ..._registry import register


def platform_matches(wanted: str, offered: str) -> bool:
    want, have = wanted.split("/"), offered.split("/")
    return want[:2] == have[:2] and (len(want) < 3 or (len(have) >= 3 and want[2] == have[2]))


@register("platform-filter")
class PlatformFilter(Filter):
    @dataclass(frozen=True)
    class Params:
        default_platform: str | None = None

    def filter(self, cycle, endpoints):
        wanted = cycle.request.platform or self.params.default_platform
        if not wanted:
            return endpoints
        return [e for e in endpoints if any(platform_matches(wanted, p) for p in e.platforms)]
