"""MergeOp: overlay several filesystems (Go client/llb merge.go).

Scratch inputs are dropped; merging nothing gives scratch and merging one State gives
that State. The result keeps the first input's settings. Needs the daemon cap
``mergeop``; ``Definition.lower_for`` rewrites it into copies for daemons without it.
"""

from __future__ import annotations

from . import _wire
from ._op import CONSTRAINTS, Op, current_locations, op_meta
from ._state import State, require_state


class MergeOp(Op):
    __slots__ = ("inputs",)

    def __init__(self, outs, meta, locations):
        self.inputs = outs
        self.init_op(meta, locations, [o[0] for o in outs])

    def walk_inputs(self):
        return [o[0] for o in self.inputs]

    def encode(self, ctx, digest_of) -> bytes:
        head = b"".join([ctx.input_field(digest_of[op], i) for op, i in self.inputs])
        body = b"".join(_wire.len_field(1, _wire.int_field(1, n)) for n in range(len(self.inputs)))
        return head + CONSTRAINTS + _wire.len_field(6, body)


def merge(states, *, name=None, ignore_cache=False, location=None) -> State:
    """One State whose filesystem is ``states`` layered in order (later ones win)."""
    if isinstance(states, State):
        states = [states]
    states = [require_state(s, "merge input") for s in states]
    kept = [s for s in states if s._out is not None]
    if not kept:
        return State()
    if len(kept) == 1:
        return kept[0]
    op = MergeOp([s._out for s in kept], op_meta({"mergeop"}, name=name, ignore_cache=ignore_cache),
                 current_locations(location))
    return kept[0].with_output((op, 0))
