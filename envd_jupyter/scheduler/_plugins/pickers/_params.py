"""Parameters every picker shares."""

from __future__ import annotations

from dataclasses import dataclass

from ..._registry import ParamError


@dataclass(frozen=True)
class PickerParams:
    max_num_of_endpoints: int = 1

    def __post_init__(self) -> None:
        if self.max_num_of_endpoints < 1:
            raise ParamError("maxNumOfEndpoints", f"must be >= 1, got {self.max_num_of_endpoints}")
