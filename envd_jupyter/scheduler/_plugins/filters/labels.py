"""``label-filter``: keep endpoints carrying every required worker label.

Required = ``required`` parameter ∪ request.labels (request wins on conflict); keeps e when
e.labels[k] == v for each required (k, v). Parameters: ``required`` (map str→str, default {}).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..._framework.interfaces import Filter
from ..._registry import register


@register("label-filter")
class LabelFilter(Filter):
    @dataclass(frozen=True)
    class Params:
        required: dict[str, str] = field(default_factory=dict)

    def filter(self, cycle, endpoints):
        required = {**self.params.required, **cycle.request.labels}
        if not required:
            return endpoints
        wanted = required.items()
        return [e for e in endpoints if all(e.labels.get(k) == v for k, v in wanted)]
