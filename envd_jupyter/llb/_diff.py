"""DiffOp: the changes that turn ``lower`` into ``upper`` (Go client/llb diff.go).

diff(scratch, scratch) is scratch and diff(scratch, upper) is upper; otherwise the
result keeps ``lower``'s settings. Needs the daemon cap ``diffop``; there is no lowering.
"""

from __future__ import annotations

from . import _wire
from ._op import CONSTRAINTS, Op, current_locations, op_meta
from ._state import State, require_state


class DiffOp(Op):
    __slots__ = ("lower", "upper")

    def __init__(self, lower, upper, meta, locations):
        self.lower, self.upper = lower, upper
        self.init_op(meta, locations, [o[0] for o in (lower, upper) if o is not None])

    def walk_inputs(self):
        return [o[0] for o in (self.lower, self.upper) if o is not None]

    def encode(self, ctx, digest_of) -> bytes:
        (low_op, low_i), upper_index = self.lower, -1  # diff() never builds a scratch lower
        head = ctx.input_field(digest_of[low_op], low_i)
        if self.upper is not None:
            up_op, up_i = self.upper
            head += ctx.input_field(digest_of[up_op], up_i)
            upper_index = 1
        body = _wire.len_field(1, b"") + _wire.len_field(2, _wire.int_field(1, upper_index))
        return head + CONSTRAINTS + _wire.len_field(7, body)


def diff(lower: State, upper: State, *, name=None, ignore_cache=False, location=None) -> State:
    require_state(lower, "diff lower")
    require_state(upper, "diff upper")
    if lower._out is None:
        return upper if upper._out is not None else State()
    op = DiffOp(lower._out, upper._out, op_meta({"diffop"}, name=name, ignore_cache=ignore_cache),
                current_locations(location))
    return lower.with_output((op, 0))
