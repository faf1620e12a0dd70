"""``caps-filter``: keep endpoints whose daemon can run the request's LLB at all.

Keeps e when request.required_caps ⊆ e.caps. An endpoint that has not reported its caps
(``caps is None``) is kept unless ``dropUnreported``, because most daemons run most builds and
the solve itself still fails clearly if one cannot. Parameters: ``dropUnreported`` (bool,
default false).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..._framework.interfaces import Filter
from ..._registry import register


@register("caps-filter")
class CapsFilter(Filter):
    @dataclass(frozen=True)
    class Params:
        drop_unreported: bool = False

    def filter(self, cycle, endpoints):
        required = cycle.request.required_caps
        if not required:
            return endpoints
        keep_unreported = not self.params.drop_unreported
        return [e for e in endpoints if (keep_unreported if e.caps is None else required <= e.caps)]
