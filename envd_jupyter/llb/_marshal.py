"""The one walk from a State to a Definition (Go's State.Marshal), iterative and linear.

Post-order depth-first over each op's inputs in Go's order, every op encoded once per
marshal (and remembered on the op for the next marshal with the same platform),
definitions de-duplicated by digest, metadata merged per digest, and the terminal op
(just an input pointing at the result) appended last.
"""

from __future__ import annotations

import gc
import hashlib
import secrets

from ._op import OpMeta, encode_input
from ._platform import Platform, default_platform

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def new_unique_id() -> str:
    """A random 25-character base36 id, the shape of BuildKit's identity.NewID()."""
    n = int.from_bytes(secrets.token_bytes(17), "big") | (1 << 135)
    digits = []
    while n:
        n, r = divmod(n, 36)
        digits.append(_ALPHABET[r])
    return "".join(reversed(digits))[1:26]


class MarshalContext:
    """Marshal-wide defaults: the platform of ops without one, and the local.unique id."""

    __slots__ = ("platform", "local_unique_id", "key", "local_key", "_inputs")

    def __init__(self, platform: Platform, local_unique_id: str):
        self.platform, self.local_unique_id = platform, local_unique_id
        self.key = (platform,)
        self.local_key = (platform, local_unique_id)
        self._inputs: dict = {}

    def input_field(self, digest: str, index: int) -> bytes:
        """The Op.inputs entry for (digest, index); a shared base is encoded once per walk."""
        key = (digest, index)
        data = self._inputs.get(key)
        if data is None:
            data = self._inputs[key] = encode_input(digest, index)
        return data


def marshal(state, *, platform=None, local_unique_id=None):
    """Walk ``state``'s graph into a Definition (see the module docstring).

    The cyclic garbage collector is paused during the walk: it allocates many small
    acyclic objects, and full collections over a large graph would make it superlinear.
    """
    from ._definition import Definition

    if state._out is None:
        return Definition([], {}, None)
    paused = gc.isenabled()
    gc.disable()
    try:
        return _walk(state, platform, local_unique_id)
    finally:
        if paused:
            gc.enable()


def _walk(state, platform, local_unique_id):
    from ._definition import Definition, SourceData

    ctx = MarshalContext(Platform.parse(platform) if platform is not None else default_platform(),
                         local_unique_id or new_unique_id())
    root, root_index = state._out
    digests: dict = {}
    defs, order, metadata, events = [], [], {}, []
    sha = hashlib.sha256
    stack = [[root, root.walk_inputs(), 0]]
    while stack:
        frame = stack[-1]
        inputs, i = frame[1], frame[2]
        while i < len(inputs) and inputs[i] in digests:
            i += 1
        if i < len(inputs):
            frame[2] = i + 1
            child = inputs[i]
            stack.append([child, child.walk_inputs(), 0])
            continue
        stack.pop()
        op = frame[0]
        key = ctx.local_key if op.uses_local else ctx.key
        if op._memo_key == key:
            dgst, data = op._memo
        else:
            data = op.encode(ctx, digests)
            dgst = "sha256:" + sha(data).hexdigest()
            op._memo_key, op._memo = key, (dgst, data)
        digests[op] = dgst
        known = metadata.get(dgst)
        if known is None:
            metadata[dgst] = op.meta
            defs.append(data)
            order.append(dgst)
        else:
            metadata[dgst] = known.merged(op.meta)
        if op.locations:
            events.extend((dgst, loc) for loc in op.locations)

    terminal = encode_input(digests[root], root_index)
    caps = {"constraints", "platform"}
    for meta in metadata.values():
        if meta.ignore_cache:
            caps.add("meta.ignorecache")
        if meta.description:
            caps.add("meta.description")
        if meta.export_cache is not None:
            caps.add("meta.exportcache")
    term_digest = "sha256:" + sha(terminal).hexdigest()
    metadata[term_digest] = OpMeta(caps)
    defs.append(terminal)
    order.append(term_digest)
    return Definition(defs, metadata, SourceData.collect(order[:-1], events), digests=order)
